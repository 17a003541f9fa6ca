"""A window to pick a dataset piece by name or title, with a search field.

Only the matches are listed (at most MAX_SHOWN), so opening it costs the same with 10 pieces or
10,000; the old drop-down built a button for each of the 410 chorales and took seconds to open.
"""

from __future__ import annotations

from collections.abc import Callable

import pygame
import pygame_gui
from pygame_gui.elements import UILabel, UISelectionList, UITextEntryLine, UIWindow

from studio.widgets import centred

MAX_SHOWN = 60


def matching(names: list[str], query: str, limit: int = MAX_SHOWN) -> list[str]:
    """Names containing every word of ``query`` (case-insensitive), in their order, up to ``limit``."""
    words = query.lower().split()
    return [name for name in names if all(word in name.lower() for word in words)][:limit]


def label(name: str, titles: dict[str, str]) -> str:
    """How a piece is listed: its name, and its title where known ("bwv1.6 · Wie schön leuchtet …")."""
    return f"{name} · {titles[name]}" if name in titles else name


class PieceBrowser(UIWindow):
    """``on_pick(name)`` is called with the chosen name (or ``first_option`` itself), then the window
    closes. Pieces are listed and searched by name and ``titles``."""

    def __init__(
        self,
        manager: pygame_gui.UIManager,
        names: list[str],
        on_pick: Callable[[str], None],
        title: str = "Pick a piece",
        first_option: str | None = None,
        titles: dict[str, str] | None = None,
    ) -> None:
        super().__init__(centred(manager, 460, 520), manager, window_display_title=title, object_id="#piece_browser")
        self.labels = {label(name, titles or {}): name for name in names}
        self.names, self.on_pick, self.first_option = list(self.labels), on_pick, first_option
        inner = self.get_container().get_rect()
        UILabel(pygame.Rect(8, 6, 60, 28), "Search", manager, self)
        self.search = UITextEntryLine(pygame.Rect(70, 6, inner.w - 80, 28), manager, self)
        self.count = UILabel(pygame.Rect(8, 38, inner.w - 16, 20), "", manager, self, object_id="#value_label")
        self.list = UISelectionList(pygame.Rect(8, 60, inner.w - 16, inner.h - 68), [], manager, container=self)
        self.search.focus()
        self.refresh()

    def refresh(self) -> None:
        shown = matching(self.names, self.search.get_text())
        total = len(matching(self.names, self.search.get_text(), limit=len(self.names)))
        options = ([self.first_option] if self.first_option and not self.search.get_text() else []) + shown
        self.list.set_item_list(options)
        more = f" (first {len(shown)} shown: type to narrow)" if total > len(shown) else ""
        self.count.set_text(f"{total} of {len(self.names)} pieces{more}")

    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_TEXT_ENTRY_CHANGED and event.ui_element is self.search:
            self.refresh()
            return True
        if event.type == pygame_gui.UI_SELECTION_LIST_NEW_SELECTION and event.ui_element is self.list:
            self.on_pick(self.labels.get(event.text, event.text))
            self.kill()
            return True
        if event.type == pygame_gui.UI_TEXT_ENTRY_FINISHED and event.ui_element is self.search:
            shown = matching(self.names, self.search.get_text(), limit=1)
            if shown:
                self.on_pick(self.labels[shown[0]])
                self.kill()
            return True
        return super().process_event(event)
