"""NoteSequence: the one type that carries notes through Cantor.

Times are integer *steps* on a grid of ``steps_per_quarter`` steps per quarter note.
Pitches are MIDI note numbers (0-127, middle C = 60).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import partial
from typing import NamedTuple

from tokenizer.keys import KEYS

DEFAULT_VELOCITY = 80
DEFAULT_TEMPO_QPM = 100.0
TEMPO_RANGE_QPM = (1.0, 1000.0)  # what a musician can play; outside it a file's tempo is broken
MAX_STEPS_PER_QUARTER = 96
LOWEST_PIANO_PITCH = 21  # A0
HIGHEST_PIANO_PITCH = 108  # C8


class Note(NamedTuple):
    """One note: pitch (MIDI number), start and duration in steps, velocity (1-127)."""

    pitch: int
    start: int
    duration: int
    velocity: int = DEFAULT_VELOCITY

    @property
    def end(self) -> int:
        return self.start + self.duration


@dataclass
class NoteSequence:
    """A quantized polyphonic piece.

    Attributes
    ----------
    notes : list of Note, sorted by (start, pitch) once ``normalized``.
    steps_per_quarter : grid resolution in steps per quarter note (4 = sixteenth notes).
    tempos : list of (step, quarter notes per minute); the first starts at step 0.
    time_signature : (numerator, denominator), e.g. (4, 4).
    name : where the piece came from (file name or corpus entry), for messages.
    phrase_ends : the steps at which a phrase ends (a chord under a fermata starts), sorted;
        only a score has them (MIDI files carry no fermatas).
    key : the key the piece is in ("D major", one of ``tokenizer.keys.KEYS``), or None: unknown.
    """

    notes: list[Note] = field(default_factory=list)
    steps_per_quarter: int = 4
    tempos: list[tuple[int, float]] = field(default_factory=lambda: [(0, DEFAULT_TEMPO_QPM)])
    time_signature: tuple[int, int] = (4, 4)
    name: str = ""
    phrase_ends: list[int] = field(default_factory=list)
    key: str | None = None

    @property
    def total_steps(self) -> int:
        """The step at which the last note ends (0 when there are no notes)."""
        return max((n.end for n in self.notes), default=0)

    @property
    def qpm(self) -> float:
        """The opening tempo in quarter notes per minute."""
        return self.tempos[0][1] if self.tempos else DEFAULT_TEMPO_QPM

    @property
    def steps_per_bar(self) -> int:
        num, den = self.time_signature
        return max(1, round(num * 4 * self.steps_per_quarter / den))

    def validate(self) -> None:
        """ValueError naming the first value that would break playing, drawing or saving the
        piece: a grid, tempo, time signature or note out of range. Called where pieces are made
        from outside data (readers, saved takes)."""
        if type(self.steps_per_quarter) is not int or not 1 <= self.steps_per_quarter <= MAX_STEPS_PER_QUARTER:
            raise ValueError(f"a grid of {self.steps_per_quarter!r} steps per quarter")
        low, high = TEMPO_RANGE_QPM
        for step, qpm in self.tempos or [(0, DEFAULT_TEMPO_QPM)]:
            if not (isinstance(qpm, int | float) and math.isfinite(qpm) and low <= qpm <= high):
                raise ValueError(f"a tempo of {qpm} quarter notes a minute (Cantor plays {low:g}-{high:g})")
            if not (isinstance(step, int) and step >= 0):
                raise ValueError(f"a tempo change at step {step}")
        signature = self.time_signature
        if not (
            isinstance(signature, tuple | list)
            and len(signature) == 2
            and all(type(v) is int for v in signature)
            and 1 <= signature[0] <= 64
            and signature[1] in (1, 2, 4, 8, 16, 32, 64)
        ):
            raise ValueError(f"a time signature of {signature} (a denominator must be a power of two)")
        if self.key is not None and self.key not in KEYS:
            raise ValueError(f"a key of {str(self.key)[:20]!r}")
        if any(type(step) is not int or step < 0 for step in self.phrase_ends):
            raise ValueError("a phrase end before the piece's start")
        for note in self.notes:
            if note.start < 0 or note.duration < 1 or not 0 <= note.pitch <= 127 or not 1 <= note.velocity <= 127:
                raise ValueError(f"a note {tuple(note)} (pitch, start, duration, velocity) out of range")

    def seconds_per_step(self) -> float:
        return 60.0 / (self.qpm * self.steps_per_quarter)

    def normalized(self) -> NoteSequence:
        """The canonical form the word tokenizer round-trips exactly.

        Notes sorted by (start, pitch); of two notes with the same pitch and start, the longer one
        is kept; durations at least one step; velocities kept. Phrase ends are kept where a note
        starts (a fermata over a rest marks nothing the words could carry).
        """
        longest: dict[tuple[int, int], Note] = {}
        for note in self.notes:
            note = note._replace(duration=max(1, note.duration))
            key = (note.start, note.pitch)
            if key not in longest or note.duration > longest[key].duration:
                longest[key] = note
        notes = [longest[key] for key in sorted(longest)]
        onsets = {note.start for note in notes}
        return replace(self, notes=notes, phrase_ends=sorted(onsets.intersection(self.phrase_ends)))

    def as_played(self) -> NoteSequence:
        """The notes as a keyboard sounds them: per key, the union of its notes cut at each onset.

        Two voices on one key at once (a unison) cannot both sound on a keyboard, nor be told
        apart on one MIDI channel or one piano-roll row; this is what remains of them.
        """
        by_pitch: dict[int, list[Note]] = {}
        for note in self.normalized().notes:  # sorted by start; one note per (start, pitch)
            by_pitch.setdefault(note.pitch, []).append(note)
        played: list[Note] = []
        for notes in by_pitch.values():
            sounding_until = 0  # the end of the key's current run of overlapping notes
            for note, following in zip(notes, [*notes[1:], None], strict=True):
                sounding_until = max(sounding_until, note.end)
                if following is not None and following.start < sounding_until:
                    played.append(note._replace(duration=following.start - note.start))  # struck again
                else:
                    played.append(note._replace(duration=sounding_until - note.start))
                    sounding_until = 0
        played.sort(key=lambda note: (note.start, note.pitch))
        return replace(self, notes=played)

    def __reduce__(self) -> tuple:
        """Pickle the notes as plain tuples: five times faster than Note by Note, which matters
        to the studio, whose engine process sends each growing piece to the window."""
        notes = list(map(tuple, self.notes))
        fields = (notes, self.steps_per_quarter, self.tempos, self.time_signature, self.name)
        fields += (self.phrase_ends, self.key)
        return _unpickle_sequence, fields

    def with_velocity(self, velocity: int = DEFAULT_VELOCITY) -> NoteSequence:
        return replace(self, notes=[n._replace(velocity=velocity) for n in self.notes])

    def merged(self, other: NoteSequence) -> NoteSequence:
        """This piece's notes together with ``other``'s (same grid and steps), sorted by (start, pitch);
        tempos, time signature, name and key are this piece's; the phrase ends are both pieces'."""
        notes = sorted(self.notes + other.notes, key=lambda n: (n.start, n.pitch))
        return replace(self, notes=notes, phrase_ends=sorted(set(self.phrase_ends) | set(other.phrase_ends)))

    def shifted(self, steps: int) -> NoteSequence:
        """The same notes, moved later in time by ``steps`` (earlier if negative)."""
        notes = [n._replace(start=n.start + steps) for n in self.notes]
        return replace(self, notes=notes, phrase_ends=[step + steps for step in self.phrase_ends])

    def cropped(self, start_step: int, end_step: int) -> NoteSequence:
        """Notes starting in [start_step, end_step), cut to end by end_step, moved to start at 0."""
        notes = [
            Note(n.pitch, n.start - start_step, min(n.end, end_step) - n.start, n.velocity)
            for n in self.notes
            if start_step <= n.start < end_step
        ]
        phrase_ends = [step - start_step for step in self.phrase_ends if start_step <= step < end_step]
        return replace(self, notes=notes, phrase_ends=phrase_ends)

    def extended(self, other: NoteSequence) -> NoteSequence:
        """This piece followed by ``other`` placed at this piece's total_steps (same grid)."""
        if other.steps_per_quarter != self.steps_per_quarter:
            raise ValueError("cannot join pieces on different grids")
        moved = other.shifted(self.total_steps)
        return replace(self, notes=self.notes + moved.notes, phrase_ends=self.phrase_ends + moved.phrase_ends)


_as_note = partial(tuple.__new__, Note)  # a Note from a plain tuple, without Python-level calls


def _unpickle_sequence(notes: list[tuple], *fields) -> NoteSequence:
    return NoteSequence(list(map(_as_note, notes)), *fields)
