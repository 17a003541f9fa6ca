"""Quarter slices for the codebook pipeline: a piece as 88 x 32 binary piano-roll slices.

Each slice is one quarter note: 88 rows (MIDI pitches 21..108, lowest first) by 32 ticks.
A note fills the ticks it sounds. To keep a repeated note apart from a held one, the tick just
before an onset is left blank whenever that key is sounding there (the original blanked the
tick before every onset; here a note only loses a tick when something starts right after it).
Reading back, a single blank tick between two runs of one row is such a boundary.

One roll holds what a keyboard can play: one sounding note per key. Two voices on the same key
at once (a unison) become that key's sounding span cut at each onset (``NoteSequence.as_played``),
and the round trip is exact onto that view. For pieces without unisons it is the piece itself,
on the 32-tick grid, except a 1-tick note followed at once by the same key and a 1-tick rest
between two notes of one key (both far below the 4- and 8-step grids of the datasets). Notes
crossing quarter boundaries survive: the slices are cut from one roll.
"""

from __future__ import annotations

import numpy as np

from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH, Note, NoteSequence

TICKS_PER_QUARTER = 32
SLICE_PITCHES = HIGHEST_PIANO_PITCH - LOWEST_PIANO_PITCH + 1  # 88


def ticks_per_step(steps_per_quarter: int) -> int:
    if TICKS_PER_QUARTER % steps_per_quarter:
        raise ValueError(f"{steps_per_quarter} steps per quarter does not divide 32 ticks")
    return TICKS_PER_QUARTER // steps_per_quarter


def piece_to_slices(piece: NoteSequence) -> tuple[np.ndarray, int]:
    """Slices of shape (quarters, 88, 32), uint8, and the number of notes dropped as out of range.

    Grids that do not divide 32 ticks (e.g. 12 steps per quarter) are rounded onto it.
    """
    spq = piece.steps_per_quarter
    scale = TICKS_PER_QUARTER / spq
    in_range = [n for n in piece.normalized().notes if LOWEST_PIANO_PITCH <= n.pitch <= HIGHEST_PIANO_PITCH]
    dropped = len(piece.notes) - len(in_range)
    spans = [(n.pitch - LOWEST_PIANO_PITCH, round(n.start * scale), max(1, round(n.end * scale))) for n in in_range]
    total_ticks = max((end for _, _, end in spans), default=0)
    quarters = -(-total_ticks // TICKS_PER_QUARTER)
    roll = np.zeros((SLICE_PITCHES, quarters * TICKS_PER_QUARTER), dtype=np.uint8)
    for row, start, end in spans:
        roll[row, start : max(start + 1, end)] = 1
    onset_rows = np.array([row for row, start, _ in spans if start > 0], dtype=np.int64)
    onset_ticks = np.array([start for _, start, _ in spans if start > 0], dtype=np.int64)
    roll[onset_rows, onset_ticks - 1] = 0
    slices = roll.reshape(SLICE_PITCHES, quarters, TICKS_PER_QUARTER).transpose(1, 0, 2)
    return np.ascontiguousarray(slices), dropped


def slices_to_piece(slices: np.ndarray, steps_per_quarter: int = 4, **piece_fields) -> NoteSequence:
    """The notes drawn in ``slices`` (quarters, 88, 32), rounded to ``steps_per_quarter``.

    Any value above 0.5 counts as on, so decoder probabilities can be passed directly.
    """
    slices = np.asarray(slices) > 0.5
    quarters = slices.shape[0]
    roll = slices.transpose(1, 0, 2).reshape(SLICE_PITCHES, quarters * TICKS_PER_QUARTER)
    scale = steps_per_quarter / TICKS_PER_QUARTER
    notes: list[Note] = []
    padded = np.zeros((SLICE_PITCHES, roll.shape[1] + 2), dtype=np.int8)
    padded[:, 1:-1] = roll
    changes = np.diff(padded, axis=1)
    for row in np.flatnonzero(roll.any(axis=1)):
        run_starts = np.flatnonzero(changes[row] == 1)
        run_ends = np.flatnonzero(changes[row] == -1)
        runs = list(zip(run_starts.tolist(), run_ends.tolist(), strict=True))
        for i, (start, end) in enumerate(runs):
            if i + 1 < len(runs) and runs[i + 1][0] == end + 1:
                end += 1  # a single blank tick before the next run: a repeated note
            first, last = round(start * scale), round(end * scale)
            if last > first:
                notes.append(Note(int(row) + LOWEST_PIANO_PITCH, first, last - first))
    return NoteSequence(notes=notes, steps_per_quarter=steps_per_quarter, **piece_fields).normalized()
