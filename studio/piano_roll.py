"""The piano-roll canvas: pitch up the side (a keyboard strip with C labels), time across
(a ruler with bar numbers, bar and beat lines), notes as rectangles as long as they last.

Notes come in named layers, each with its colour: primer and generated notes, or, in the
reconstruction view, matched, missed and extra notes. The notes and grid live on a cached layer:
notes that stream in are drawn onto it one by one, and the layer is redrawn whole only when
the view moves or zooms, so a 2000-note piece costs one blit a frame.
While generating, the view follows the newest notes; afterwards the mouse wheel scrolls
(Shift: pitch, Ctrl: zoom), dragging pans, and the arrow keys, +/- and Home move the view.
A click on the time ruler plays from there and clears the selection; a drag across it selects
whole bars (for Regenerate). With ``editing`` on, the mouse enters notes
instead of panning: a click adds a quarter note on the beat (drag to lengthen it, by sixteenths),
a drag on a note lengthens or shortens it, a right-click deletes it.

The roll is a Canvas (a UI element of the one UIManager): it repaints only when its notes, its
view or its playhead change, and windows and menus lie above it.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable

import pygame
import pygame_gui

from studio.canvas import Canvas
from tokenizer.keys import pitch_name
from tokenizer.notes import DEFAULT_VELOCITY, Note, NoteSequence

KEYBOARD_W = 46
RULER_H = 22
BLACK_KEYS = {1, 3, 6, 8, 10}
COLOURS = {
    "background": (27, 29, 35),
    "white_row": (35, 38, 46),
    "black_row": (29, 31, 38),
    "c_row_line": (58, 62, 74),
    "beat": (46, 50, 60),
    "bar": (84, 90, 106),
    "ruler": (22, 23, 28),
    "ruler_text": (170, 176, 190),
    "white_key": (226, 228, 234),
    "black_key": (40, 42, 48),
    "key_text": (70, 74, 84),
    "primer": (232, 164, 72),
    "generated": (84, 184, 222),
    "matched": (84, 184, 222),  # reconstruction view: notes both rolls have
    "missed": (236, 88, 96),  # in the original, not in the reconstruction
    "extra": (240, 210, 80),  # in the reconstruction, not in the original
    "playhead": (250, 90, 90),
    "empty_text": (120, 126, 140),
    "title": (150, 156, 170),
    "selection": (110, 210, 150),
    "phrase": (240, 206, 120),  # a phrase's end (a fermata) on the ruler
}
NAMED_ROW_H = 11  # pixels: rows at least this tall name every white key, not only the Cs
SELECTION_ALPHA = 48  # the selected bars' band over the notes
DRAG_PX = 4  # a press on the ruler that moves this far is a selection, not a click


def darker(colour: tuple[int, int, int], amount: int = 60) -> tuple[int, int, int]:
    return tuple(max(0, c - amount) for c in colour)


class PianoRoll(Canvas):
    """Notes in named layers on a time grid. Geometry methods answer in window coordinates.

    ``on_seek(step)`` is called when the time ruler is clicked; ``on_view_changed()`` after the
    user scrolls or zooms (the Codebooks tab keeps its two rolls in step with it).
    """

    def __init__(
        self,
        relative_rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container=None,
        anchors: dict | None = None,
        title: str = "",
    ) -> None:
        self.layers: dict[str, list[Note]] = {"primer": [], "generated": []}
        self.phrase_ends: list[int] = []  # steps where a phrase ends: a fermata on the ruler
        self.steps_per_quarter = 4
        self.steps_per_bar = 16
        self.view_start = 0.0  # step at the left edge of the notes area
        self.steps_visible = 128.0  # zoom: steps across the notes area
        self.low_pitch, self.high_pitch = 36, 84  # inclusive, bottom and top rows
        self.follow = False
        self._playhead_step: float | None = None
        self._empty_message = "Press Generate to write a piece."
        self.title = title
        self._font = pygame.font.Font(None, 16)
        self._notes_layer: pygame.Surface | None = None
        self._drawn: dict[str, int] = {}  # per layer: how many of its notes are on the cached layer
        self._drag_from: tuple[int, float] | None = None
        self.full_redraws = 0  # for tests and the benchmark
        self.on_seek: Callable[[float], None] | None = None
        self.on_view_changed: Callable[[], None] = lambda: None
        self.selection: tuple[int, int] | None = None  # selected bars, in steps [start, end)
        self.on_select: Callable[[tuple[int, int] | None], None] | None = None  # None: no selecting
        self._select_from: tuple[int, float] | None = None  # (x, step) where a press on the ruler began
        self.editing = False  # the mouse enters notes (into the primer layer) instead of panning
        self.on_edit: Callable[[], None] = lambda: None  # after each added, lengthened or deleted note
        self._held: tuple[str, Note] | None = None  # (layer, note) being lengthened
        self.hover: tuple[int, int] | None = None  # while entering notes: the pointer, to name its note
        super().__init__(relative_rect, manager, container, anchors)

    # -- geometry (window coordinates) ---------------------------------------------------------
    @property
    def notes_rect(self) -> pygame.Rect:
        r = self.rect
        return pygame.Rect(r.x + KEYBOARD_W, r.y + RULER_H, r.w - KEYBOARD_W, r.h - RULER_H)

    @property
    def ruler_rect(self) -> pygame.Rect:
        return pygame.Rect(self.rect.x + KEYBOARD_W, self.rect.y, self.rect.w - KEYBOARD_W, RULER_H)

    def _px_per_step(self) -> float:
        return max(1, self.notes_rect.w) / self.steps_visible

    def _row_h(self) -> float:
        return max(1, self.notes_rect.h) / (self.high_pitch - self.low_pitch + 1)

    def step_to_x(self, step: float) -> float:
        """Window x of a time step."""
        return self.notes_rect.x + (step - self.view_start) * self._px_per_step()

    def x_to_step(self, x: float) -> float:
        return self.view_start + (x - self.notes_rect.x) / self._px_per_step()

    def pitch_to_y(self, pitch: int) -> float:
        """Window y of the top of a pitch's row."""
        return self.notes_rect.y + (self.high_pitch - pitch) * self._row_h()

    def note_rect(self, note: Note) -> pygame.Rect:
        """Where ``note`` is drawn in the window (it may lie outside the visible area)."""
        x0, x1 = self.step_to_x(note.start), self.step_to_x(note.end)
        y = self.pitch_to_y(note.pitch)
        return pygame.Rect(round(x0), round(y), max(2, round(x1 - x0) - 1), max(2, round(self._row_h()) - 1))

    # -- content -------------------------------------------------------------------------------
    @property
    def primer(self) -> list[Note]:
        return self.layers.get("primer", [])

    @property
    def generated(self) -> list[Note]:
        return self.layers.get("generated", [])

    @property
    def playhead_step(self) -> float | None:
        return self._playhead_step

    @playhead_step.setter
    def playhead_step(self, step: float | None) -> None:
        if step != self._playhead_step:
            self._playhead_step = step
            self.invalidate()

    @property
    def empty_message(self) -> str:
        return self._empty_message

    @empty_message.setter
    def empty_message(self, text: str) -> None:
        self._empty_message = text
        self.invalidate()

    def show_piece(self, primer: NoteSequence, generated: NoteSequence, fit: bool = True) -> None:
        """Show a whole piece (replacing what was shown); ``fit`` frames its pitch range."""
        self.phrase_ends = sorted(set(primer.phrase_ends) | set(generated.phrase_ends))
        self.show_layers({"primer": primer.notes, "generated": generated.notes}, generated, fit)

    def show_layers(self, layers: dict[str, list[Note]], grid: NoteSequence, fit: bool = True) -> None:
        """Show notes in named layers (colours by name, drawn in order) on ``grid``'s time grid."""
        self.layers = {name: sorted(notes, key=lambda n: (n.start, n.pitch)) for name, notes in layers.items()}
        self.steps_per_quarter = grid.steps_per_quarter
        self.steps_per_bar = grid.steps_per_bar
        if fit:
            self._fit_pitches()
            self.view_start = 0.0
        self._invalidate()

    def update_generated(self, generated: NoteSequence) -> None:
        """The generated notes so far; draws only what is new (notes only grow at the end)."""
        new = list(generated.notes)
        old = self.generated
        if generated.phrase_ends and not set(generated.phrase_ends) <= set(self.phrase_ends):
            self.phrase_ends = sorted(set(self.phrase_ends) | set(generated.phrase_ends))
            self.invalidate()
        same = 0
        while same < min(len(old), len(new)) and old[same] == new[same]:
            same += 1
        self.layers["generated"] = new
        if same < len(old) - 1:  # an earlier note changed: rare, redraw all
            self._invalidate()
        else:
            self._drawn["generated"] = min(self._drawn.get("generated", 0), same)
            self.invalidate()
        if self._fit_needed(new[same:]):
            self._fit_pitches()
            self._invalidate()
        if self.follow and new:
            newest_end = max(n.end for n in new[-8:])
            if newest_end > self.view_start + 0.9 * self.steps_visible:
                self.view_start = max(0.0, newest_end - 0.4 * self.steps_visible)
                self._invalidate()

    def frame_piece(self) -> None:
        """Show the whole piece if it fits at a readable zoom, else where the primer meets the
        generated notes (the start, for a new piece)."""
        end = max((n.end for n in self.all_notes()), default=0)
        if end <= 384:
            self.steps_visible = max(64.0, end * 1.04)
            self.view_start = 0.0
        else:
            primer_end = max((n.end for n in self.primer), default=0)
            self.view_start = max(0.0, primer_end - self.steps_visible / 4)
        self.follow = False
        self._invalidate()

    def all_notes(self) -> list[Note]:
        return [note for notes in self.layers.values() for note in notes]

    def _fit_needed(self, notes: list[Note]) -> bool:
        return any(not self.low_pitch <= n.pitch <= self.high_pitch for n in notes)

    def _fit_pitches(self) -> None:
        notes = self.all_notes()
        if not notes:
            return
        low, high = min(n.pitch for n in notes), max(n.pitch for n in notes)
        middle, span = (low + high) // 2, max(30, high - low + 7)
        self.low_pitch = max(21, middle - span // 2)
        self.high_pitch = min(108, self.low_pitch + span)
        self.low_pitch = max(21, self.high_pitch - span)

    def _invalidate(self) -> None:
        """The view or the notes changed: the cached note layer is redrawn whole."""
        self._notes_layer = None
        self._drawn = {}
        self.invalidate()

    def set_view(self, view_start: float, steps_visible: float) -> None:
        if (view_start, steps_visible) != (self.view_start, self.steps_visible):
            self.view_start, self.steps_visible = view_start, steps_visible
            self._invalidate()

    # -- input ---------------------------------------------------------------------------------
    @property
    def dragging(self) -> bool:
        return self._drag_from is not None

    def process_event(self, event: pygame.event.Event) -> bool:
        """Mouse input, given by the UIManager: scroll, zoom, pan, and seek on the ruler."""
        mods = pygame.key.get_mods()
        if event.type == pygame.MOUSEWHEEL and self.under_pointer(pygame.mouse.get_pos()):
            if mods & pygame.KMOD_CTRL:
                self.zoom(0.8 if event.y > 0 else 1.25, pygame.mouse.get_pos()[0])
            elif mods & pygame.KMOD_SHIFT:
                self.scroll_pitch(2 * event.y)
            else:
                self.scroll_steps(-event.y * self.steps_visible / 8 + event.x * self.steps_visible / 8)
            return True
        if self.editing and event.type == pygame.MOUSEMOTION:
            inside = self.notes_rect.collidepoint(event.pos) and self.under_pointer(event.pos)
            hover = event.pos if inside else None
            if hover != self.hover:
                self.hover = hover
                self.invalidate()
        if self.editing and self._select_from is None and self._edit(event):
            return True
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1:
            on_ruler = self.ruler_rect.collidepoint(event.pos) and self.under_pointer(event.pos)
            if on_ruler and (self.on_seek is not None or self.on_select is not None):
                self._select_from = (event.pos[0], max(0.0, self.x_to_step(event.pos[0])))
                return True
            if self.notes_rect.collidepoint(event.pos) and self.under_pointer(event.pos):
                self._drag_from = (event.pos[0], self.view_start)
                self.follow = False
                return True
        if self._select_from is not None and event.type in (pygame.MOUSEMOTION, pygame.MOUSEBUTTONUP):
            x0, step0 = self._select_from
            dragged = abs(event.pos[0] - x0) >= DRAG_PX
            if dragged and self.on_select is not None:
                self.set_selection(self._bars_between(step0, max(0.0, self.x_to_step(event.pos[0]))))
            if event.type == pygame.MOUSEBUTTONUP:
                self._select_from = None
                if not dragged and self.on_seek is not None:
                    self.on_seek(step0)  # a click, not a drag: play from there
                if self.on_select is not None:
                    if not dragged:
                        self.set_selection(None)
                    self.on_select(self.selection)
            return True
        if event.type == pygame.MOUSEMOTION and self._drag_from is not None:
            x0, start0 = self._drag_from
            self.set_view(max(0.0, start0 - (event.pos[0] - x0) / self._px_per_step()), self.steps_visible)
            self.on_view_changed()
            return True
        if event.type == pygame.MOUSEBUTTONUP and event.button == 1 and self._drag_from is not None:
            self._drag_from = None
            return True
        return False

    def pitch_at(self, y: float) -> int:
        """The pitch of the row at window ``y``."""
        return self.high_pitch - int((y - self.notes_rect.y) // self._row_h())

    def note_at(self, position: tuple[int, int]) -> tuple[str, Note] | None:
        """(layer, note) drawn at ``position``, if any."""
        for layer in reversed(list(self.layers)):
            for note in self.layers[layer]:
                if self.note_rect(note).collidepoint(position):
                    return layer, note
        return None

    def _replace_note(self, layer: str, old: Note | None, new: Note | None) -> None:
        notes = [n for n in self.layers.setdefault(layer, []) if n != old]
        self.layers[layer] = sorted(notes + ([new] if new else []), key=lambda n: (n.start, n.pitch))
        self._invalidate()

    def _edit(self, event: pygame.event.Event) -> bool:
        """Note entry (``editing``): add, lengthen, delete. True if the event was used."""
        spq = max(1, self.steps_per_quarter)
        if event.type == pygame.MOUSEBUTTONDOWN and event.button in (1, 3):
            if not (self.notes_rect.collidepoint(event.pos) and self.under_pointer(event.pos)):
                return False
            hit = self.note_at(event.pos)
            if event.button == 3:
                if hit is not None:
                    self._replace_note(hit[0], hit[1], None)
                    self.on_edit()
                return True
            if hit is None:
                start = int(max(0.0, self.x_to_step(event.pos[0])) // spq) * spq
                hit = ("primer", Note(self.pitch_at(event.pos[1]), start, spq, DEFAULT_VELOCITY))
                self._replace_note("primer", None, hit[1])
            self._held = hit
            return True
        if event.type == pygame.MOUSEMOTION and self._held is not None:
            layer, note = self._held
            duration = max(1, math.ceil(self.x_to_step(event.pos[0]) - note.start))
            if duration != note.duration:
                longer = note._replace(duration=duration)
                self._replace_note(layer, note, longer)
                self._held = (layer, longer)
            return True
        if event.type == pygame.MOUSEBUTTONUP and event.button == 1 and self._held is not None:
            self._held = None
            self.on_edit()
            return True
        return False

    def _bars_between(self, a: float, b: float) -> tuple[int, int]:
        """The whole bars that ``a`` to ``b`` (steps, either way round) touch."""
        bar = max(1, self.steps_per_bar)
        first = int(min(a, b) // bar) * bar
        last = -(-int(max(a, b)) // bar) * bar
        return first, max(last, first + bar)

    def set_selection(self, selection: tuple[int, int] | None) -> None:
        if selection != self.selection:
            self.selection = selection
            self.invalidate()

    def handle_key(self, event: pygame.event.Event) -> bool:
        """Arrows, +/- and Home move the view; True if the key was the roll's."""
        if event.type != pygame.KEYDOWN:
            return False
        keys = {
            pygame.K_LEFT: lambda: self.scroll_steps(-self.steps_visible / 8),
            pygame.K_RIGHT: lambda: self.scroll_steps(self.steps_visible / 8),
            pygame.K_UP: lambda: self.scroll_pitch(2),
            pygame.K_DOWN: lambda: self.scroll_pitch(-2),
            pygame.K_PLUS: lambda: self.zoom(0.8),
            pygame.K_EQUALS: lambda: self.zoom(0.8),
            pygame.K_KP_PLUS: lambda: self.zoom(0.8),
            pygame.K_MINUS: lambda: self.zoom(1.25),
            pygame.K_KP_MINUS: lambda: self.zoom(1.25),
            pygame.K_HOME: lambda: self.scroll_steps(-self.view_start),
        }
        if event.key in keys:
            keys[event.key]()
            return True
        return False

    def scroll_steps(self, steps: float) -> None:
        self.follow = False
        self.set_view(max(0.0, self.view_start + steps), self.steps_visible)
        self.on_view_changed()

    def scroll_pitch(self, semitones: int) -> None:
        span = self.high_pitch - self.low_pitch
        self.high_pitch = max(21 + span, min(108, self.high_pitch + semitones))
        self.low_pitch = self.high_pitch - span
        self._invalidate()

    def zoom(self, factor: float, anchor_x: float | None = None) -> None:
        anchor = self.x_to_step(anchor_x) if anchor_x is not None else self.view_start
        steps_visible = min(4096.0, max(16.0, self.steps_visible * factor))
        view_start = self.view_start
        if anchor_x is not None:
            view_start = max(0.0, anchor - (anchor_x - self.notes_rect.x) * steps_visible / max(1, self.notes_rect.w))
        self.set_view(view_start, steps_visible)
        self.on_view_changed()

    # -- painting (the canvas's own coordinates) ------------------------------------------------
    def paint(self, surface: pygame.Surface) -> None:
        notes_area = self.local(self.notes_rect)
        if self._notes_layer is None or self._notes_layer.get_size() != notes_area.size:
            self._notes_layer = self._draw_grid(notes_area.size)
            self.full_redraws += 1
        self._draw_new_notes()
        surface.blit(self._notes_layer, notes_area.topleft)
        self._draw_keyboard(surface)
        self._draw_ruler(surface)
        if self.selection is not None:
            self._draw_selection(surface, notes_area)
        if self.title:
            label = self._font.render(self.title, True, COLOURS["title"], COLOURS["ruler"])
            surface.blit(label, (surface.get_width() - label.get_width() - 6, 5))
        if not self.all_notes():
            text = self._font.render(self.empty_message, True, COLOURS["empty_text"])
            surface.blit(text, text.get_rect(center=notes_area.center))
        if self.playhead_step is not None:
            x = self.step_to_x(self.playhead_step) - self.rect.x
            if notes_area.left <= x <= notes_area.right:
                pygame.draw.line(surface, COLOURS["playhead"], (x, 0), (x, surface.get_height() - 1), 2)

    def _draw_grid(self, size: tuple[int, int]) -> pygame.Surface:
        width, height = max(1, size[0]), max(1, size[1])
        layer = pygame.Surface((width, height))
        layer.fill(COLOURS["background"])
        row_h = self._row_h()
        for pitch in range(self.low_pitch, self.high_pitch + 1):
            y = (self.high_pitch - pitch) * row_h
            colour = COLOURS["black_row"] if pitch % 12 in BLACK_KEYS else COLOURS["white_row"]
            pygame.draw.rect(layer, colour, (0, round(y), width, max(1, round(row_h) - 1)))
            if pitch % 12 == 0:
                pygame.draw.line(layer, COLOURS["c_row_line"], (0, round(y + row_h) - 1), (width, round(y + row_h) - 1))
        spq = max(1, self.steps_per_quarter)
        step = int(self.view_start // spq) * spq
        while step <= self.view_start + self.steps_visible:
            x = round((step - self.view_start) * self._px_per_step())
            colour = COLOURS["bar"] if step % max(1, self.steps_per_bar) == 0 else COLOURS["beat"]
            pygame.draw.line(layer, colour, (x, 0), (x, height))
            step += spq
        self._drawn = {}
        return layer

    def _draw_new_notes(self) -> None:
        for kind, notes in self.layers.items():
            start = self._drawn.get(kind, 0)
            if start >= len(notes):
                continue
            colour = COLOURS[kind]
            border = darker(colour)
            offset = self.notes_rect.topleft
            view_end = self.view_start + self.steps_visible
            # notes are sorted by start: skip those that begin after the view
            stop = bisect_left(notes, view_end, lo=start, key=lambda n: n.start)
            for note in notes[start:stop]:
                if note.end < self.view_start or not self.low_pitch <= note.pitch <= self.high_pitch:
                    continue
                rect = self.note_rect(note).move(-offset[0], -offset[1])
                pygame.draw.rect(self._notes_layer, colour, rect, border_radius=2)
                pygame.draw.rect(self._notes_layer, border, rect, width=1, border_radius=2)
            self._drawn[kind] = stop if stop < len(notes) else len(notes)

    def _draw_keyboard(self, surface: pygame.Surface) -> None:
        notes_area = self.local(self.notes_rect)
        strip = pygame.Rect(0, notes_area.y, KEYBOARD_W, notes_area.h)
        pygame.draw.rect(surface, COLOURS["white_key"], strip)
        row_h = self._row_h()
        for pitch in range(self.low_pitch, self.high_pitch + 1):
            y = self.pitch_to_y(pitch) - self.rect.y
            if pitch % 12 in BLACK_KEYS:
                pygame.draw.rect(surface, COLOURS["black_key"], (strip.x, round(y), KEYBOARD_W * 0.62, round(row_h)))
            if pitch % 12 == 0:
                line_y = round(y + row_h)
                pygame.draw.line(surface, COLOURS["key_text"], (strip.x, line_y), (strip.right, line_y))
            if pitch % 12 == 0 or (row_h >= NAMED_ROW_H and pitch % 12 not in BLACK_KEYS):
                label = self._font.render(pitch_name(pitch), True, COLOURS["key_text"])
                surface.blit(label, (strip.right - label.get_width() - 3, round(y + (row_h - label.get_height()) / 2)))
        if self.editing and self.hover is not None:
            self._draw_hover_name(surface)
        pygame.draw.rect(surface, COLOURS["ruler"], (0, 0, KEYBOARD_W, RULER_H))

    def _draw_hover_name(self, surface: pygame.Surface) -> None:
        """While entering notes: the row under the pointer lit on the keyboard, and its note's name
        beside the pointer, so a click lands on the note meant."""
        pitch = self.pitch_at(self.hover[1])
        if not self.low_pitch <= pitch <= self.high_pitch:
            return
        y = round(self.pitch_to_y(pitch) - self.rect.y)
        pygame.draw.rect(surface, COLOURS["selection"], (0, y, KEYBOARD_W, max(2, round(self._row_h()))))
        label = self._font.render(pitch_name(pitch), True, COLOURS["title"], COLOURS["ruler"])
        x = self.hover[0] - self.rect.x + 12
        surface.blit(label, (x, y + (round(self._row_h()) - label.get_height()) // 2))

    def _draw_ruler(self, surface: pygame.Surface) -> None:
        ruler = self.local(self.ruler_rect)
        pygame.draw.rect(surface, COLOURS["ruler"], ruler)
        steps_per_bar = max(1, self.steps_per_bar)
        bar = int(self.view_start // steps_per_bar)
        while bar * steps_per_bar <= self.view_start + self.steps_visible:
            x = self.step_to_x(bar * steps_per_bar) - self.rect.x
            if x >= ruler.x:
                pygame.draw.line(surface, COLOURS["bar"], (x, ruler.y + 8), (x, ruler.bottom))
                label = self._font.render(str(bar + 1), True, COLOURS["ruler_text"])
                right_of_line = x + 3 + label.get_width() <= ruler.right  # else left of it: never cut
                surface.blit(label, (x + 3 if right_of_line else x - 3 - label.get_width(), ruler.y + 4))
            bar += 1
        for step in self.phrase_ends:
            x = self.step_to_x(step) - self.rect.x
            if ruler.x <= x - 6 and x + 6 <= ruler.right:
                self._draw_fermata(surface, round(x), ruler)

    @staticmethod
    def _draw_fermata(surface: pygame.Surface, x: int, ruler: pygame.Rect) -> None:
        """A fermata (an arc over a dot) at the foot of the ruler: a phrase ends on this chord."""
        arc = pygame.Rect(x - 6, ruler.bottom - 10, 12, 12)
        pygame.draw.arc(surface, COLOURS["phrase"], arc, 0.0, 3.1416, 2)
        pygame.draw.circle(surface, COLOURS["phrase"], (x, ruler.bottom - 3), 2)

    def _draw_selection(self, surface: pygame.Surface, notes_area: pygame.Rect) -> None:
        """The selected bars: a band over the notes and a solid mark on the ruler."""
        x0 = max(notes_area.left, round(self.step_to_x(self.selection[0]) - self.rect.x))
        x1 = min(notes_area.right, round(self.step_to_x(self.selection[1]) - self.rect.x))
        if x1 <= x0:
            return
        band = pygame.Surface((x1 - x0, notes_area.h), pygame.SRCALPHA)
        band.fill((*COLOURS["selection"], SELECTION_ALPHA))
        surface.blit(band, (x0, notes_area.y))
        pygame.draw.rect(surface, COLOURS["selection"], (x0, 0, x1 - x0, 5))
        for x in (x0, x1 - 1):
            pygame.draw.line(surface, COLOURS["selection"], (x, 0), (x, surface.get_height() - 1))
