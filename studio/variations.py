"""The variations of one request: their thumbnails above the roll, which one is on the roll,
and the take each became.

The strip shows only when a request asks for more than one; the roll moves down to make room.
"""

from __future__ import annotations

from collections.abc import Callable

import pygame
import pygame_gui
from pygame_gui.elements import UIButton

from studio.piano_roll import PianoRoll
from studio.thumbnails import Thumbnails
from tokenizer.notes import NoteSequence

THUMBNAILS_H = 84  # the strip's height


class VariationStrip:
    """Thumbnails over the top of ``roll_rect``; ``roll`` and ``edit_button`` move below them."""

    def __init__(
        self,
        roll_rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container,
        roll: PianoRoll,
        edit_button: UIButton,
        on_pick: Callable[[int], None],
    ) -> None:
        self.roll_rect, self.roll, self.edit_button = roll_rect, roll, edit_button
        self.thumbnails = Thumbnails(
            pygame.Rect(roll_rect.x, roll_rect.y, roll_rect.w, THUMBNAILS_H),
            manager,
            container,
            anchors={"left": "left", "right": "right", "top": "top"},
            on_pick=on_pick,
        )
        self.thumbnails.hide()
        self.takes: list[tuple[NoteSequence, NoteSequence]] = []  # the last request's (primer, generated)
        self.numbers: list[int | None] = []  # the take number each of them became

    @property
    def chosen(self) -> int:
        """The variation on the roll."""
        return self.thumbnails.chosen

    def holds(self, generated: NoteSequence) -> bool:
        """Whether ``generated`` is one of the last request's variations."""
        return any(piece is generated for _, piece in self.takes)

    def begin(self, primer: NoteSequence, empty: NoteSequence, count: int) -> None:
        """A request for ``count`` variations starts: empty thumbnails (none for a single piece)."""
        self.show(count > 1)
        self.thumbnails.choose(0)
        self.thumbnails.set_pieces(primer, [empty] * count)

    def grow(self, primer: NoteSequence, variations: list[NoteSequence]) -> NoteSequence:
        """The variations so far; the one chosen, for the roll."""
        self.thumbnails.set_pieces(primer, variations)
        return variations[self.chosen]

    def keep(self, primer: NoteSequence, generated: NoteSequence, variations: tuple) -> NoteSequence:
        """The request's result: its one piece, or the variation chosen while it ran."""
        self.takes = [(primer, piece) for piece in variations]
        if not variations:
            return generated
        return self.grow(primer, list(variations))

    def show(self, show: bool) -> None:
        """Show the strip, the roll moving down to make room (or hide it, the roll moving back up)."""
        if show == self.thumbnails.wanted:
            return
        self.thumbnails.wanted = show
        top = self.roll_rect.y + (THUMBNAILS_H + 6 if show else 0)
        height = self.roll.rect.bottom - self.roll.rect.top + (self.roll.relative_rect.y - top)
        self.roll.set_relative_position((self.roll_rect.x, top))
        self.edit_button.set_relative_position((self.roll_rect.x, top))
        self.roll.set_dimensions((self.roll.rect.w, height))
        self.thumbnails.show() if show else self.thumbnails.hide()
