"""The key a piece is in: a menu to ask for one, and beside it the key in force.

"Key: as Bach" (the default) leaves the key to the piece: a new piece takes a key as often as
Bach's chorales do, a continuation or a harmonization keeps its primer's or melody's. Whatever
the key turns out to be is said beside the menu, with where it came from.
"""

from __future__ import annotations

import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UIDropDownMenu

from tokenizer.keys import KEYS

AS_BACH = "Key: as Bach"
UNKNOWN = {"new": "keys as Bach's", "continue": "its primer's key"}  # else: the melody's key


class KeyChoice:
    """The key menu and its label, side by side in ``row``."""

    def __init__(self, row: pygame.Rect, manager: pygame_gui.UIManager, container) -> None:
        self.menu = UIDropDownMenu([AS_BACH, *KEYS], AS_BACH, pygame.Rect(row.x, row.y, 132, 30), manager, container)
        self.label = UIButton(  # a button only for its tooltip: it reads as a label
            pygame.Rect(row.x + 138, row.y, row.w - 138, 30),
            "",
            manager,
            container,
            object_id="#key_label",
            tool_tip_text="The key the piece is in. As Bach: a new piece takes a key as often as Bach's chorales "
            "do; a continuation or a harmonization keeps the key of its primer or melody. Pick a key to ask for it.",
        )

    @property
    def asked(self) -> str | None:
        """The key picked in the menu; None for "as Bach"."""
        chosen = self.menu.selected_option[0]
        return None if chosen == AS_BACH else chosen

    def show(self, mode: str, key: str | None = None, source: str = "") -> None:
        """Say the key in force: the one asked for, else ``key`` (what the model chose, or the
        primer's or melody's) with where it came from, else what ``mode`` will take it from."""
        asked = self.asked
        if asked is not None:
            text = asked + (" (asked)" if key in (None, asked) else "")
        elif key is not None:
            text = key + (f" ({source})" if source else "")
        else:
            text = UNKNOWN.get(mode, "the melody's key")
        self.label.set_text(text)
