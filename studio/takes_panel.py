"""The takes list beside the piano roll: newest first; pick one to see, play and export it."""

from __future__ import annotations

from collections.abc import Callable

import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UILabel, UISelectionList

from studio.takes import Take, TakeStore


class TakesPanel:
    def __init__(
        self,
        rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container,
        store: TakeStore,
        on_pick: Callable[[Take], None],
    ) -> None:
        self.manager, self.container, self.store, self.on_pick = manager, container, store, on_pick
        UILabel(pygame.Rect(rect.x, rect.y, rect.w, 20), "TAKES", manager, container, object_id="#section_label")
        self._list_rect = pygame.Rect(rect.x, rect.y + 22, rect.w, rect.h - 22 - 36)
        self.list = UISelectionList(self._list_rect, [], manager, container=container)
        self.delete_button = UIButton(
            pygame.Rect(rect.x, rect.bottom - 30, rect.w, 30), "Delete take", manager, container
        )
        self.selected: int | None = None
        self.refresh()

    def _item_id(self, take: Take) -> str:
        return str(take.number)

    def refresh(self, select: int | None = None) -> None:
        items = [(t.label, self._item_id(t)) for t in self.store.takes]
        self.list.set_item_list(items)
        self.selected = select
        if select is not None:
            for item in self.list.item_list:
                if item["object_id"] == str(select) and item["button_element"] is not None:
                    item["selected"] = True
                    item["button_element"].select()
        self.delete_button.enable() if self.selected is not None else self.delete_button.disable()

    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_SELECTION_LIST_NEW_SELECTION and event.ui_element is self.list:
            take = self._take_for_label(event.text)
            if take is not None:
                self.selected = take.number
                self.delete_button.enable()
                self.on_pick(take)
            return True
        if event.type == pygame_gui.UI_BUTTON_PRESSED and event.ui_element is self.delete_button:
            if self.selected is not None:
                self.store.delete(self.selected)
                self.refresh()
            return True
        return False

    def _take_for_label(self, label: str) -> Take | None:
        return next((t for t in self.store.takes if t.label == label), None)
