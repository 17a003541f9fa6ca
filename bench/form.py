"""Whole pieces: the key, the phrases, the ending, what repeats.

Bars can sound like a chorale while the piece does not: ``bench/metrics.py`` judges the texture,
this module the form. Every figure is computed per piece on the judging grid (``on_grid``):

* key: Krumhansl-Kessler's estimate over the whole piece (``tokenizer.keys``); the *opening key*
  the same over its first ``OPENING_QUARTERS``;
* final chord: the pitches sounding at the last onset; *a root-position tonic* when the bass is the
  opening key's tonic and every pitch class is the tonic, its third (major or minor: a Picardy
  third counts) or its fifth, with a third among them; also judged against the key the piece
  names (its key word: the one a new piece was asked for, the one the data gives a chorale, i.e.
  the estimate over the whole chorale), to tell a piece that ends away from its key from one that
  the estimate hears opening in another;
* cadence-like arrival: an onset on the beat whose chord is a root-position triad (major or minor,
  three pitch classes or more, the third present), held for at least a quarter (no onset for a
  quarter after it), the bass arriving by a fourth or a fifth; counted per 8 quarters;
* opening repeated: the notes of the first ``OPENING_BARS`` bars (pitch, place in the span,
  duration) come back from a later bar line, with a Jaccard index of at least ``REPEAT_MATCH``
  (a repeated Stollen).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.metrics import GRID, on_grid, sounding
from tokenizer.keys import estimate_key, fifths_of, mode_of, tonic_of
from tokenizer.notes import NoteSequence

OPENING_QUARTERS = 16
OPENING_BARS = 2
REPEAT_MATCH = 0.8
CADENCE_HOLD = GRID  # steps a cadence chord holds: a quarter


@dataclass
class PieceForm:
    key: str
    opening_key: str
    final_tonic: bool  # the last chord is a root-position tonic triad of the opening key
    final_tonic_named: bool | None  # ... of the key the piece names (None: it names none)
    cadences_per_8: float
    opening_repeated: bool
    quarters: float


def _pitch_classes(pitches: np.ndarray) -> set[int]:
    return {int(p) % 12 for p in pitches}


def root_position_triad(pitches: np.ndarray) -> int | None:
    """The root of ``pitches`` (sorted) when they form a root-position major or minor triad,
    possibly with doublings and without its fifth; else None."""
    if len(pitches) < 3:
        return None
    root = int(pitches[0]) % 12
    classes = _pitch_classes(pitches)
    for third in (3, 4):
        triad = {root, (root + third) % 12, (root + 7) % 12}
        if classes <= triad and (root + third) % 12 in classes:
            return root
    return None


def piece_form(piece: NoteSequence) -> PieceForm:
    """The form figures of one piece; ValueError for a piece with no notes."""
    named_key = piece.key
    piece = on_grid(piece)
    if not piece.notes:
        raise ValueError(f"{piece.name or 'piece'}: no notes to judge")
    roll = sounding(piece)
    onsets = sorted({n.start for n in piece.notes})
    key, _ = estimate_key(piece.notes)
    opening_key, _ = estimate_key([n for n in piece.notes if n.start < OPENING_QUARTERS * GRID])
    tonic = tonic_of(opening_key)
    last = np.flatnonzero(roll[onsets[-1]])
    final_root = root_position_triad(last)
    final_tonic = final_root == tonic
    cadences, previous_bass = 0, None
    for index, step in enumerate(onsets):
        chord = np.flatnonzero(roll[step])
        if not len(chord):
            previous_bass = None
            continue
        bass = int(chord[0])
        held = (onsets[index + 1] if index + 1 < len(onsets) else piece.total_steps) - step >= CADENCE_HOLD
        leap = previous_bass is not None and (bass - previous_bass) % 12 in (5, 7)
        if step % GRID == 0 and held and leap and root_position_triad(chord) is not None:
            cadences += 1
        previous_bass = bass
    quarters = piece.total_steps / GRID
    return PieceForm(
        key=key,
        opening_key=opening_key,
        final_tonic=bool(final_tonic),
        final_tonic_named=None if named_key is None else final_root == tonic_of(named_key),
        cadences_per_8=cadences * 8 / max(quarters, 1.0),
        opening_repeated=opening_repeated(piece),
        quarters=quarters,
    )


def opening_repeated(piece: NoteSequence) -> bool:
    """True when the first OPENING_BARS bars come back later from a bar line (``REPEAT_MATCH``)."""
    span = OPENING_BARS * piece.steps_per_bar

    def notes_from(start: int) -> set[tuple[int, int, int]]:
        return {(n.pitch, n.start - start, n.duration) for n in piece.notes if start <= n.start < start + span}

    opening = notes_from(0)
    if not opening:
        return False
    for start in range(span, piece.total_steps - span + 1, piece.steps_per_bar):
        later = notes_from(start)
        if len(opening & later) / len(opening | later) >= REPEAT_MATCH:
            return True
    return False


def form_summary(forms: list[PieceForm], ended: list[bool] | None = None) -> dict[str, float]:
    """The form figures of a set: shares and means, and ``ended`` (pieces that ended by themselves;
    None for real music, which always does)."""
    fifths = np.array([abs(fifths_of(f.key)) for f in forms])
    named = [f.final_tonic_named for f in forms if f.final_tonic_named is not None]
    return {
        "ended": float(np.mean(ended)) if ended is not None else 1.0,
        "final_tonic": float(np.mean([f.final_tonic for f in forms])),
        "final_tonic_named": float(np.mean(named)) if named else float("nan"),
        "cadences_per_8": float(np.mean([f.cadences_per_8 for f in forms])),
        "opening_repeated": float(np.mean([f.opening_repeated for f in forms])),
        "keys_within_3": float(np.mean(fifths <= 3)),
        "minor": float(np.mean([mode_of(f.key) == "minor" for f in forms])),
    }


def key_distance(forms: list[PieceForm], reference: list[PieceForm]) -> float:
    """Total variation distance between the two sets' key-signature distributions (sharps or flats,
    -5..6): 0 the same, 1 disjoint."""

    def spread(items: list[PieceForm]) -> np.ndarray:
        counts = np.bincount([fifths_of(f.key) + 5 for f in items], minlength=12).astype(float)
        return counts / counts.sum()

    return float(0.5 * np.abs(spread(forms) - spread(reference)).sum())
