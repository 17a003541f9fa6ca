"""Data augmentation: transposition and time-stretch of a NoteSequence."""

from __future__ import annotations

from dataclasses import replace

from tokenizer.keys import transposed_key
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH, NoteSequence


def legal_transpositions(piece: NoteSequence, max_shift: int = 6) -> list[int]:
    """Intervals in [-max_shift, max_shift] (semitones) that keep every pitch within 21-108."""
    low = min(n.pitch for n in piece.notes)
    high = max(n.pitch for n in piece.notes)
    return [
        k for k in range(-max_shift, max_shift + 1) if low + k >= LOWEST_PIANO_PITCH and high + k <= HIGHEST_PIANO_PITCH
    ]


def transpose(piece: NoteSequence, semitones: int) -> NoteSequence:
    """``piece`` moved by ``semitones``; ValueError if a pitch would leave 21-108."""
    if semitones not in legal_transpositions(piece, abs(semitones)):
        raise ValueError(f"transposing by {semitones} leaves the piano range")
    key = None if piece.key is None else transposed_key(piece.key, semitones)
    return replace(piece, notes=[n._replace(pitch=n.pitch + semitones) for n in piece.notes], key=key)


def time_stretch(piece: NoteSequence, factor: float) -> NoteSequence:
    """``piece`` played ``factor`` times as long: starts and durations scaled and rounded to the
    grid, durations never below one step."""
    if factor <= 0:
        raise ValueError("the stretch factor must be positive")
    notes = [
        n._replace(start=round(n.start * factor), duration=max(1, round(n.duration * factor))) for n in piece.notes
    ]
    tempos = [(round(step * factor), qpm) for step, qpm in piece.tempos]
    phrase_ends = [round(step * factor) for step in piece.phrase_ends]
    return replace(piece, notes=notes, tempos=tempos, phrase_ends=phrase_ends).normalized()
