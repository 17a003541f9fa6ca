"""Thumbnails of the variations one Generate writes at once: small piano rolls side by side,
growing as the words come in. A click on one shows that variation on the big roll.

A Canvas (a UI element of the one UIManager), so windows and menus stay above it.
"""

from __future__ import annotations

from collections.abc import Callable

import pygame
import pygame_gui

from studio.canvas import Canvas
from studio.piano_roll import COLOURS
from tokenizer.notes import NoteSequence

GAP = 6  # pixels between two thumbnails
CHOSEN = (236, 236, 240)


class Thumbnails(Canvas):
    """``pieces`` are the variations' generated notes; ``primer`` the notes they share."""

    def __init__(
        self,
        relative_rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container=None,
        anchors: dict | None = None,
        on_pick: Callable[[int], None] = lambda index: None,
    ) -> None:
        self.primer = NoteSequence()
        self.pieces: list[NoteSequence] = []
        self.chosen = 0
        self.on_pick = on_pick
        self.wanted = False  # shown only while True: a tab being shown shows its elements, not this one
        self._font = pygame.font.Font(None, 16)
        super().__init__(relative_rect, manager, container, anchors)

    def show(self, *args, **kwargs) -> None:
        if self.wanted:
            super().show(*args, **kwargs)

    def set_pieces(self, primer: NoteSequence, pieces: list[NoteSequence]) -> None:
        self.primer, self.pieces = primer, list(pieces)
        self.chosen = min(self.chosen, max(0, len(self.pieces) - 1))
        self.invalidate()

    def choose(self, index: int) -> None:
        if index != self.chosen:
            self.chosen = index
            self.invalidate()

    def box(self, index: int) -> pygame.Rect:
        """Where thumbnail ``index`` lies, in window coordinates."""
        count = max(1, len(self.pieces))
        width = (self.rect.w - GAP * (count - 1)) // count
        return pygame.Rect(self.rect.x + index * (width + GAP), self.rect.y, width, self.rect.h)

    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and self.under_pointer(event.pos):
            for index in range(len(self.pieces)):
                if self.box(index).collidepoint(event.pos):
                    self.choose(index)
                    self.on_pick(index)
                    return True
        return False

    def paint(self, surface: pygame.Surface) -> None:
        surface.fill(COLOURS["ruler"])
        notes = [n for piece in self.pieces for n in piece.notes] + list(self.primer.notes)
        if not notes:
            return
        end = max(n.end for n in notes)
        low, high = min(n.pitch for n in notes) - 1, max(n.pitch for n in notes) + 1
        for index, piece in enumerate(self.pieces):
            box = self.local(self.box(index))
            pygame.draw.rect(surface, COLOURS["background"], box)
            x_scale, y_scale = box.w / max(1, end), box.h / (high - low + 1)
            for kind, layer in (("primer", self.primer.notes), ("generated", piece.notes)):
                for note in layer:
                    x = box.x + note.start * x_scale
                    y = box.y + (high - note.pitch) * y_scale
                    pygame.draw.rect(surface, COLOURS[kind], (x, y, max(1, note.duration * x_scale), max(1, y_scale)))
            border = CHOSEN if index == self.chosen else COLOURS["bar"]
            pygame.draw.rect(surface, border, box, width=2 if index == self.chosen else 1)
            label = self._font.render(str(index + 1), True, border)
            surface.blit(label, (box.x + 4, box.y + 3))
