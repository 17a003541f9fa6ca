"""What makes a piece sound like a four-part chorale, measured on its notes.

Every figure is computed per piece on the grid of the sounding notes (``NoteSequence.as_played``:
two voices on one key sound as one), so that word-model, codebook and real pieces are judged
alike. ``piece_features`` gives the per-piece table; ``overlap`` compares two sets of pieces the
way Yang & Lerch (2018, "On the evaluation of generative models in music") do: the overlapping
area of the intra-set and inter-set distance densities, feature by feature.

Definitions (a *chord* is the set of pitches sounding at an onset, an *onset* a step where a
note starts):

* clash: two sounding pitches a semitone apart; ninth clash: a semitone or a minor ninth apart
  (Bach writes minor ninths over dominants: 3.5 % of the test chorales' onsets, against 1.2 %
  for semitones);
* top and bass line: the highest (lowest) sounding pitch at each onset where that note starts;
  a step is the absolute interval between consecutive notes of a line (repeats count 0);
* parallel fifths/octaves: two consecutive onsets with exactly 4 pitches sounding and different
  chords; voices by pitch order; a pair of voices that both move in the same direction and are
  a perfect fifth (or octave), plus octaves, apart before and after; counted per chord change;
* a clash is *resolved as the style resolves it* when, for every semitone pair sounding at the onset
  with a note new there, the new note is a passing or neighbour note (off the beat, a step from a
  note ending at its onset, and a note a step from it starts where it ends), or the other note is
  a suspension (held from before, and a note one or two semitones below it starts where it ends);
* scale consistency: the largest share of notes inside one major or harmonic-minor scale;
  key drift: the share of the last quarter's notes inside the scale that fits the first quarter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

from tokenizer.notes import NoteSequence
from tokenizer.words import WordVocabulary, encode

C6 = 84  # MIDI number
GRID = 4  # steps per quarter of the judging grid (sixteenth notes)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONIC_MINOR = (0, 2, 3, 5, 7, 8, 11)
DURATION_BINS = (1, 2, 3, 4, 6, 8, 12, 16)  # note lengths in sixteenths; longer ones fall in the last bin
SHORT_PIECE_WORDS = 110
WORD_YARDSTICK = WordVocabulary(encoding="implicit")  # lengths in words: the yardstick (Bach's shortest: 207)


def _scales() -> np.ndarray:
    """(24, 12) bool: the 12 major and the 12 harmonic-minor scales."""
    rows = []
    for degrees in (MAJOR, HARMONIC_MINOR):
        for tonic in range(12):
            row = np.zeros(12, dtype=bool)
            row[[(tonic + d) % 12 for d in degrees]] = True
            rows.append(row)
    return np.array(rows)


SCALES = _scales()


def on_grid(piece: NoteSequence) -> NoteSequence:
    """The piece as played, moved onto the judging grid of sixteenth notes."""
    played = piece.as_played()
    if played.steps_per_quarter == GRID:
        return played
    scale = GRID / played.steps_per_quarter
    notes = []
    for note in played.notes:
        start = round(note.start * scale)
        notes.append(note._replace(start=start, duration=max(1, round(note.end * scale) - start)))
    return NoteSequence(notes, GRID, played.tempos, played.time_signature, played.name).as_played()


def sounding(piece: NoteSequence) -> np.ndarray:
    """(steps, 128) bool: which pitches sound at each step (piece already on the grid)."""
    roll = np.zeros((piece.total_steps, 128), dtype=bool)
    for note in piece.notes:
        roll[note.start : note.end, note.pitch] = True
    return roll


def has_clash(pitches: np.ndarray, intervals: tuple[int, ...] = (1,)) -> bool:
    """True when two of ``pitches`` are one of ``intervals`` (semitones) apart."""
    gaps = np.abs(pitches[:, None] - pitches[None, :])
    return bool(np.isin(gaps, intervals).any())


def _is_step(a: int, b: int) -> bool:
    return 1 <= abs(a - b) <= 2


def resolved_clashes(piece: NoteSequence) -> tuple[int, int]:
    """(onsets with a semitone clash, of them those resolved as the style resolves them), the
    piece on the grid. A clash between two notes both held from before was judged where it began."""
    clashes = resolved = 0
    for step in sorted({n.start for n in piece.notes}):
        sounding_notes = [n for n in piece.notes if n.start <= step < n.end]
        pairs = [
            (a, b)
            for a in sounding_notes
            for b in sounding_notes
            if b.pitch - a.pitch == 1 and (a.start == step or b.start == step)
        ]
        if pairs:
            clashes += 1
            resolved += all(
                _explained(a, b, step, piece.notes) or _explained(b, a, step, piece.notes) for a, b in pairs
            )
    return clashes, resolved


def _explained(note, other, step: int, notes) -> bool:
    """True when ``note`` is a passing or neighbour note at ``step`` (off the beat, approached by
    step from a note sounding just before, left by step to a note starting where it ends), or a
    suspension against ``other`` (held from before, and resolved down by step where it ends)."""
    if note.start < step:
        return any(n.start == note.end and 1 <= note.pitch - n.pitch <= 2 for n in notes)
    if step % GRID == 0:
        return False
    approached = any(n.start < step <= n.end and _is_step(n.pitch, note.pitch) for n in notes)
    left = any(n.start == note.end and _is_step(n.pitch, note.pitch) for n in notes)
    return approached and left


def line_steps(roll: np.ndarray, onset_steps: np.ndarray, starts: set[tuple[int, int]], top: bool) -> np.ndarray:
    """Absolute intervals between consecutive notes of the top (or bass) line."""
    line = []
    for step in onset_steps:
        pitches = np.flatnonzero(roll[step])
        pitch = int(pitches[-1] if top else pitches[0])
        if (step, pitch) in starts:
            line.append(pitch)
    return np.abs(np.diff(np.array(line, dtype=int)))


def count_parallels(chords: Sequence[tuple[int, ...] | None]) -> tuple[int, int]:
    """(parallel fifths/octaves, chord changes) over consecutive 4-note chords.

    ``chords`` holds, per onset, the sorted pitches when exactly 4 sound, else None (which breaks
    the chain)."""
    parallels = changes = 0
    for before, after in pairwise(chords):
        if before is None or after is None or before == after:
            continue
        changes += 1
        for low in range(4):
            for high in range(low + 1, 4):
                moves = (after[low] - before[low], after[high] - before[high])
                if moves[0] == 0 or moves[1] == 0 or (moves[0] > 0) != (moves[1] > 0):
                    continue
                interval_before = (before[high] - before[low]) % 12
                interval_after = (after[high] - after[low]) % 12
                if interval_before == interval_after and interval_before in (0, 7):
                    parallels += 1
    return parallels, changes


def best_scale(pitch_classes: np.ndarray) -> tuple[int, float]:
    """(index into SCALES, share of the notes inside it) for a list of pitch classes."""
    if len(pitch_classes) == 0:
        return 0, 1.0
    inside = SCALES[:, pitch_classes].mean(axis=1)
    best = int(np.argmax(inside))
    return best, float(inside[best])


def bar_repeats(piece: NoteSequence) -> tuple[float, float]:
    """(share of non-empty bars that repeat an earlier bar exactly, best 4-bar self-similarity).

    Self-similarity: the Jaccard index of the (pitch, offset, duration) sets of two
    non-overlapping 4-bar spans, best over all pairs."""
    bar = piece.steps_per_bar
    bars: dict[int, set] = {}
    for note in piece.notes:
        bars.setdefault(note.start // bar, set()).add((note.pitch, note.start % bar, note.duration))
    seen: set[frozenset] = set()
    repeats = 0
    for index in sorted(bars):
        key = frozenset(bars[index])
        repeats += key in seen
        seen.add(key)
    last = max(bars, default=-1)

    def span(first: int) -> set:
        return {(p, o + (b - first) * bar, d) for b in range(first, first + 4) for p, o, d in bars.get(b, ())}

    spans = [span(first) for first in range(0, last - 2)]
    best = 0.0
    for i in range(len(spans)):
        for j in range(i + 4, len(spans)):
            union = spans[i] | spans[j]
            if union:
                best = max(best, len(spans[i] & spans[j]) / len(union))
    return repeats / max(1, len(bars)), best


@dataclass
class PieceFeatures:
    """Everything measured on one piece. Scalars are per-piece figures; the histograms feed
    the overlap only."""

    four_sounding: float  # share of the piece's time with exactly 4 pitches sounding
    max_sounding: int
    over_five: float  # share of onsets with more than 5 pitches sounding
    clash: float  # share of onsets with a semitone clash sounding
    clash_onsets: int
    clash_resolved: int  # of those, resolved as the style resolves them (``resolved_clashes``)
    ninth_clash: float  # share of onsets with a semitone or minor-ninth clash sounding
    top_step: float  # top line: mean absolute step in semitones
    top_leaps: float  # top line: share of steps larger than a fifth
    bass_step: float
    bass_leaps: float
    parallels: float  # parallel 5ths/8ves per 4-voice chord change
    scale_consistency: float
    key_drift: float  # share of the last quarter's notes in the opening key (1: no drift)
    quarters: float
    words: int  # in the default word encoding, whatever made the piece
    repeated_bars: float
    self_similarity: float
    pitch_range: float
    used_pitches: float
    mean_pitch: float
    above_c6: float  # share of notes above C6 (MIDI 84), where no chorale voice goes
    mean_ioi: float  # mean time between consecutive onsets, in sixteenths
    note_count: float
    pitch_class_histogram: np.ndarray
    duration_histogram: np.ndarray
    sounding_histogram: np.ndarray  # share of time with 0, 1, ..., 7 or more pitches sounding


def piece_features(piece: NoteSequence) -> PieceFeatures:
    """All the figures of one piece; ValueError for a piece with no notes."""
    piece = on_grid(piece)
    if not piece.notes:
        raise ValueError(f"{piece.name or 'piece'}: no notes to judge")
    roll = sounding(piece)
    counts = roll.sum(axis=1)
    starts = {(n.start, n.pitch) for n in piece.notes}
    onset_steps = np.array(sorted({n.start for n in piece.notes}))
    chords_at = [np.flatnonzero(roll[s]) for s in onset_steps]
    top, bass = line_steps(roll, onset_steps, starts, True), line_steps(roll, onset_steps, starts, False)
    chords = [tuple(int(p) for p in chord) if len(chord) == 4 else None for chord in chords_at]
    parallels, changes = count_parallels(chords)
    pitches = np.array([n.pitch for n in piece.notes])
    classes = pitches % 12
    quarter = max(1, piece.total_steps // 4)
    opening = np.array([n.pitch % 12 for n in piece.notes if n.start < quarter])
    closing = np.array([n.pitch % 12 for n in piece.notes if n.start >= piece.total_steps - quarter], dtype=int)
    key, _ = best_scale(opening)
    repeated, similarity = bar_repeats(piece)
    clash_onsets, clash_resolved = resolved_clashes(piece)
    durations = np.minimum(np.searchsorted(DURATION_BINS, [n.duration for n in piece.notes]), len(DURATION_BINS) - 1)
    return PieceFeatures(
        four_sounding=float(np.mean(counts == 4)),
        max_sounding=int(counts.max()),
        over_five=float(np.mean([len(c) > 5 for c in chords_at])),
        clash=float(np.mean([has_clash(c) for c in chords_at])),
        clash_onsets=clash_onsets,
        clash_resolved=clash_resolved,
        ninth_clash=float(np.mean([has_clash(c, (1, 13)) for c in chords_at])),
        top_step=float(top.mean()) if len(top) else 0.0,
        top_leaps=float(np.mean(top > 7)) if len(top) else 0.0,
        bass_step=float(bass.mean()) if len(bass) else 0.0,
        bass_leaps=float(np.mean(bass > 7)) if len(bass) else 0.0,
        parallels=parallels / changes if changes else 0.0,
        scale_consistency=best_scale(classes)[1],
        key_drift=float(SCALES[key, closing].mean()) if len(closing) else 1.0,
        quarters=piece.total_steps / GRID,
        words=len(encode(piece, WORD_YARDSTICK)),
        repeated_bars=repeated,
        self_similarity=similarity,
        pitch_range=float(pitches.max() - pitches.min()),
        used_pitches=float(len(set(pitches.tolist()))),
        mean_pitch=float(pitches.mean()),
        above_c6=float(np.mean(pitches > C6)),
        mean_ioi=float(np.diff(onset_steps).mean()) if len(onset_steps) > 1 else 0.0,
        note_count=float(len(pitches)),
        pitch_class_histogram=np.bincount(classes, minlength=12) / len(classes),
        duration_histogram=np.bincount(durations, minlength=len(DURATION_BINS)) / len(durations),
        sounding_histogram=np.bincount(np.minimum(counts, 7), minlength=8) / len(counts),
    )


# -- the set-against-set comparison --------------------------------------------------------------
GROUPS = {
    "pitch/rhythm/key": (
        "pitch_class_histogram",
        "duration_histogram",
        "pitch_range",
        "used_pitches",
        "mean_pitch",
        "mean_ioi",
        "note_count",
        "scale_consistency",
        "key_drift",
    ),
    "texture/voice leading": (
        "sounding_histogram",
        "four_sounding",
        "over_five",
        "clash",
        "top_step",
        "top_leaps",
        "bass_step",
        "bass_leaps",
        "parallels",
    ),
}


def _values(features: list[PieceFeatures], name: str) -> np.ndarray:
    """(pieces, dims) of one feature."""
    return np.array([np.atleast_1d(np.asarray(getattr(f, name), dtype=float)) for f in features])


def _distances(a: np.ndarray, b: np.ndarray, same: bool) -> np.ndarray:
    """Euclidean distances between the rows of a and b (without the diagonal when same)."""
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1))
    if same:
        d = d[~np.eye(len(a), dtype=bool)]
    return d.reshape(-1)


def _bandwidth(samples: np.ndarray, scale: float) -> float:
    """Scott's rule, with a floor of 1 % of the data's scale for a set with no spread."""
    return max(samples.std() * len(samples) ** (-1 / 5), 0.01 * scale)


def _density(samples: np.ndarray, bandwidth: float, grid: np.ndarray) -> np.ndarray:
    """A Gaussian kernel density estimate on ``grid``."""
    z = (grid[:, None] - samples[None, :]) / bandwidth
    return np.exp(-0.5 * z**2).sum(axis=1) / (len(samples) * bandwidth * np.sqrt(2 * np.pi))


def overlap_area(intra: np.ndarray, inter: np.ndarray, points: int = 2000) -> float:
    """The area under both densities at once (1: the same distribution, 0: disjoint)."""
    scale = max(float(np.abs(intra).max()), float(np.abs(inter).max()), 1e-9)
    widths = _bandwidth(intra, scale), _bandwidth(inter, scale)
    lo = min(intra.min(), inter.min()) - 4 * max(widths)
    hi = max(intra.max(), inter.max()) + 4 * max(widths)
    grid = np.linspace(lo, hi, points)
    both = np.minimum(_density(intra, widths[0], grid), _density(inter, widths[1], grid))
    return float(np.clip(np.sum((both[1:] + both[:-1]) / 2 * np.diff(grid)), 0.0, 1.0))


def overlap(reference: list[PieceFeatures], candidate: list[PieceFeatures]) -> dict[str, float]:
    """Per group (and "all"): the mean over its features of the overlap between the reference's
    intra-set distances and the reference-to-candidate distances."""
    if len(reference) < 2 or not candidate:
        raise ValueError("the overlap needs at least 2 reference pieces and 1 candidate")
    scores = {}
    for group, names in GROUPS.items():
        per_feature = []
        for name in names:
            ref, cand = _values(reference, name), _values(candidate, name)
            per_feature.append(overlap_area(_distances(ref, ref, True), _distances(cand, ref, False)))
        scores[group] = float(np.mean(per_feature))
    scores["all"] = float(np.mean([scores[g] for g in GROUPS]))
    return scores


def summary(features: list[PieceFeatures]) -> dict[str, float]:
    """The figures of a set of pieces: means of the per-piece figures, and the length figures."""
    mean = {name: float(np.mean([getattr(f, name) for f in features])) for name in SUMMARY_MEANS}
    quarters = np.array([f.quarters for f in features])
    return {
        **mean,
        "max_sounding": float(max(f.max_sounding for f in features)),
        "median_quarters": float(np.median(quarters)),
        "short_share": float(np.mean([f.words < SHORT_PIECE_WORDS for f in features])),
    }


SUMMARY_MEANS = (
    "four_sounding",
    "clash",
    "ninth_clash",
    "over_five",
    "top_step",
    "top_leaps",
    "bass_step",
    "bass_leaps",
    "parallels",
    "scale_consistency",
    "key_drift",
    "mean_pitch",
    "above_c6",
    "quarters",
    "repeated_bars",
    "self_similarity",
)
