"""Can a simple classifier tell Cantor's pieces from Bach's? A classifier two-sample test.

Each piece is cropped to its first ``CROP_QUARTERS`` quarters and described by ``FEATURES``
(``describe``): pitch classes relative to its estimated tonic, the mode and how many sharps or
flats, the intervals of its top line and bass, note lengths, how many notes sound at once,
clashes and parallels, cadence-like arrivals and repetition. An L2-regularised logistic
regression on standardised features is cross-validated (``FOLDS`` folds) on as many real pieces
as generated ones, drawn afresh ``DRAWS`` times. Accuracy near 0.5: the classifier cannot tell;
1.0: anyone can. The control runs the same test between two disjoint sets of real chorales.

The accuracy comes with its binomial standard error over the 2n pieces judged (as in Lopez-Paz &
Oquab's classifier two-sample tests): at n = 40 and 0.70 it is 0.05, so two models a few hundredths
apart at n = 40 are not told apart by this test; more pieces narrow it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.form import piece_form
from bench.metrics import DURATION_BINS, GRID, on_grid, piece_features, sounding
from tokenizer.keys import estimate_key, fifths_of, mode_of, tonic_of
from tokenizer.notes import NoteSequence

CROP_QUARTERS = 24
FOLDS = 5
DRAWS = 10
L2 = 1.0  # the penalty on the squared weights (the data term is a mean over pieces)
INTERVAL_BINS = (0, 1, 2, 3, 4, 5, 7, 12)  # semitones; each bin holds the intervals up to the next
SCALARS = (
    "four_sounding",
    "over_five",
    "clash",
    "ninth_clash",
    "parallels",
    "top_step",
    "top_leaps",
    "bass_step",
    "bass_leaps",
    "scale_consistency",
    "key_drift",
    "mean_pitch",
    "pitch_range",
    "mean_ioi",
    "repeated_bars",
    "self_similarity",
)
FEATURES = (
    *(f"pitch class {d} above the tonic" for d in range(12)),
    "minor mode",
    "sharps or flats",
    *(f"top line interval {b}+" for b in INTERVAL_BINS),
    *(f"bass interval {b}+" for b in INTERVAL_BINS),
    *(f"note length {b}+ sixteenths" for b in DURATION_BINS),
    *(f"{n} sounding" for n in ("0", "1", "2", "3", "4", "5", "6", "7+")),
    *SCALARS,
    "cadences per 8 quarters",
    "opening repeated",
)


def _line_intervals(piece: NoteSequence, top: bool) -> np.ndarray:
    """Histogram of the absolute intervals of the top line (or the bass) over INTERVAL_BINS."""
    roll = sounding(piece)
    line = []
    for step in sorted({n.start for n in piece.notes}):
        pitches = np.flatnonzero(roll[step])
        if len(pitches):
            line.append(int(pitches[-1] if top else pitches[0]))
    steps = np.abs(np.diff(line))
    counts = np.bincount(np.searchsorted(INTERVAL_BINS, steps, side="right") - 1, minlength=len(INTERVAL_BINS))
    return counts / max(1, counts.sum())


def describe(piece: NoteSequence) -> np.ndarray:
    """The feature vector of a piece's first CROP_QUARTERS quarters (``FEATURES``, in order)."""
    crop = on_grid(piece).cropped(0, CROP_QUARTERS * GRID)
    key, _ = estimate_key(crop.notes)
    tonic = tonic_of(key)
    classes = np.bincount([(n.pitch - tonic) % 12 for n in crop.notes], minlength=12) / len(crop.notes)
    features = piece_features(crop)
    form = piece_form(crop)
    return np.concatenate(
        [
            classes,
            [mode_of(key) == "minor", abs(fifths_of(key))],
            _line_intervals(crop, top=True),
            _line_intervals(crop, top=False),
            features.duration_histogram,
            features.sounding_histogram,
            [float(getattr(features, name)) for name in SCALARS],
            [form.cadences_per_8, form.opening_repeated],
        ]
    ).astype(float)


def _fit(x: np.ndarray, y: np.ndarray, iterations: int = 25) -> np.ndarray:
    """Weights (bias last) of an L2-regularised logistic regression, by Newton's method."""
    x = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], L2)
    penalty[-1] = 0.0
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-x @ w))
        gradient = x.T @ (p - y) / len(y) + penalty * w / len(y)
        hessian = (x.T * (p * (1 - p))) @ x / len(y) + np.diag(penalty) / len(y)
        w -= np.linalg.solve(hessian + 1e-9 * np.eye(len(w)), gradient)
    return w


def _standardise(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    mean, spread = train.mean(axis=0), train.std(axis=0)
    spread[spread == 0] = 1.0
    return [(a - mean) / spread for a in (train, *others)]


def cross_validated_accuracy(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> float:
    """Accuracy of telling rows of ``a`` from rows of ``b`` (equal counts), FOLDS-fold."""
    x = np.vstack([a, b])
    y = np.concatenate([np.zeros(len(a)), np.ones(len(b))])
    order = rng.permutation(len(y))
    correct = 0
    for fold in np.array_split(order, FOLDS):
        train = np.setdiff1d(order, fold)
        x_train, x_test = _standardise(x[train], x[fold])
        w = _fit(x_train, y[train])
        predicted = (np.hstack([x_test, np.ones((len(fold), 1))]) @ w) > 0
        correct += int((predicted == y[fold]).sum())
    return correct / len(y)


@dataclass
class TwoSampleResult:
    accuracy: float  # generated against real
    control: float  # real against other real
    telling: list[tuple[str, float]]  # the ten features that separate them most: (name, weight)
    pieces: int  # generated pieces judged (as many real ones beside them)

    @property
    def standard_error(self) -> float:
        """The binomial standard error of ``accuracy`` over the 2 * pieces it was measured on."""
        return float(np.sqrt(self.accuracy * (1 - self.accuracy) / (2 * self.pieces)))


def two_sample_test(generated: list[NoteSequence], real: list[NoteSequence], seed: int = 0) -> TwoSampleResult:
    """The test of the module's docstring. ``real`` must hold at least twice as many pieces as
    ``generated`` (the control draws two disjoint sets of that size)."""
    rng = np.random.default_rng(seed)
    fake = np.array([describe(p) for p in generated])
    pool = np.array([describe(p) for p in real])
    n = len(fake)
    if len(pool) < 2 * n:
        raise ValueError(f"the two-sample test needs {2 * n} real pieces for {n} generated ones (got {len(pool)})")
    accuracies, controls, weights = [], [], []
    for _ in range(DRAWS):
        drawn = rng.permutation(len(pool))
        ours, others = pool[drawn[:n]], pool[drawn[n : 2 * n]]
        accuracies.append(cross_validated_accuracy(ours, fake, rng))
        controls.append(cross_validated_accuracy(ours, others, rng))
        (x_all,) = _standardise(np.vstack([ours, fake]))
        weights.append(_fit(x_all, np.concatenate([np.zeros(n), np.ones(n)]))[:-1])
    mean_weights = np.mean(weights, axis=0)
    order = np.argsort(-np.abs(mean_weights))[:10]
    telling = [(FEATURES[i], float(mean_weights[i])) for i in order]
    return TwoSampleResult(float(np.mean(accuracies)), float(np.mean(controls)), telling, n)
