"""The takes list beside the piano roll: newest first; pick one to see, play and export it.

Deleting asks first; afterwards the roll shows the take that took its place in the list (or
nothing, when it was the last).
"""

from __future__ import annotations

from collections.abc import Callable

import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UILabel, UISelectionList
from pygame_gui.windows import UIConfirmationDialog

from studio.takes import Take, TakeStore
from studio.widgets import centred
from tokenizer.errors import CantorError

RIGHT = {"left": "right", "right": "right"}


class TakesPanel:
    """``rect`` is measured from its container's right edge (x < 0): the panel stays at the right."""

    def __init__(
        self,
        rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container,
        store: TakeStore,
        on_pick: Callable[[Take], None],
        on_delete: Callable[[Take | None], None],
        on_error: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.manager, self.container, self.store = manager, container, store
        self.on_pick, self.on_delete, self.on_error = on_pick, on_delete, on_error
        title = pygame.Rect(rect.x, rect.y, rect.w, 20)
        UILabel(title, "TAKES", manager, container, object_id="#section_label", anchors=RIGHT)
        self._list_rect = pygame.Rect(rect.x, rect.y + 22, rect.w, rect.h - 22 - 36)
        self.list = UISelectionList(
            self._list_rect, [], manager, container=container, anchors={**RIGHT, "top": "top", "bottom": "bottom"}
        )
        self.delete_button = UIButton(
            pygame.Rect(rect.x, -(container.get_container().get_rect().h - rect.bottom) - 30, rect.w, 30),
            "Delete take…",
            manager,
            container,
            anchors={**RIGHT, "top": "bottom", "bottom": "bottom"},
        )
        self.selected: int | None = None
        self.confirm: UIConfirmationDialog | None = None
        self.refresh()

    def refresh(self, select: int | None = None) -> None:
        items = [(t.label, str(t.number)) for t in self.store.takes]
        self.list.set_item_list(items)
        self.selected = select
        if select is not None:
            for item in self.list.item_list:
                if item["object_id"] == str(select) and item["button_element"] is not None:
                    item["selected"] = True
                    item["button_element"].select()
        self.delete_button.enable() if self.selected is not None else self.delete_button.disable()

    def ask_delete(self) -> None:
        if self.selected is None:
            return
        self.confirm = UIConfirmationDialog(
            centred(self.manager, 360, 180),
            f"Delete take #{self.selected}? This cannot be undone.",
            self.manager,
            window_title="Delete take?",
            action_short_name="Delete",
        )

    def delete_selected(self) -> None:
        numbers = [t.number for t in self.store.takes]
        if self.selected not in numbers:
            return
        index = numbers.index(self.selected)
        try:
            self.store.delete(self.selected)
        except CantorError as err:  # a read-only or full home: the take stays, and it is said
            self.on_error(f"Take #{self.selected} was not deleted: {err}")
            return
        following = self.store.takes[min(index, len(self.store.takes) - 1)] if self.store.takes else None
        self.refresh(select=following.number if following else None)
        self.on_delete(following)

    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_SELECTION_LIST_NEW_SELECTION and event.ui_element is self.list:
            take = self.store.get(int(self.list.get_single_selection(include_object_id=True)[1]))
            if take is not None:
                self.selected = take.number
                self.delete_button.enable()
                self.on_pick(take)
            return True
        if event.type == pygame_gui.UI_SELECTION_LIST_DROPPED_SELECTION and event.ui_element is self.list:
            take = self.store.get(self.selected) if self.selected is not None else None
            if take is not None:  # the selected take clicked again: it stays selected, and is shown
                self.refresh(select=take.number)
                self.on_pick(take)
            return True
        if event.type == pygame_gui.UI_BUTTON_PRESSED and event.ui_element is self.delete_button:
            self.ask_delete()
            return True
        if event.type == pygame_gui.UI_CONFIRMATION_DIALOG_CONFIRMED and event.ui_element is self.confirm:
            self.confirm = None
            self.delete_selected()
            return True
        return False
