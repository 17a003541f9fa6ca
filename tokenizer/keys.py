"""Keys: their names, scales and key signatures, and an estimate of the key a piece is in.

A key is named as a musician writes it, ``"D major"`` or ``"F# minor"`` (one of ``KEYS``). The
estimate is Krumhansl and Kessler's: the duration-weighted pitch-class histogram is correlated
with their probe-tone profile of each of the 24 keys, and the best fit wins. Chorales are judged
by it in ``bench/quality.py``, the built-in data's key words come from it, and the studio uses it
to keep a primer's key.

A melody alone says less: ``estimate_melody_key`` also hears where it ends. In Bach's chorales the
bass of the last chord sounds the soprano's last note in 91 % of them; the tonic of the key the
soprano's notes fit best is that bass in 64 %, and with ``FINAL_NOTE_BONUS`` added to the keys
whose tonic is the last note, in 90 % (0.1: 82 %, 0.5: 91 %, which no longer listens to the other
notes at all).
"""

from __future__ import annotations

import numpy as np

TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MODES = ("major", "minor")
MAJOR_SCALE, MINOR_SCALE = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10, 11)  # minor: with its leading tone
KEYS = tuple(f"{tonic} {mode}" for mode in MODES for tonic in TONICS)  # "D minor"

# probe-tone ratings from the tonic up (Krumhansl & Kessler 1982)
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
FINAL_NOTE_BONUS = 0.3  # added to the fit of the keys whose tonic a melody ends on
_MAJOR_FIFTHS = (0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5)  # sharps (+) or flats (-) of each major tonic


def pitch_name(pitch: float) -> str:
    """A note's name as a musician reads it: 'C4' for 60 (middle C), 'F#5' for 78."""
    pitch = int(pitch)
    return f"{TONICS[pitch % 12]}{pitch // 12 - 1}"


def check_key(key: str) -> str:
    """``key`` itself; ValueError for a name not in ``KEYS``."""
    if key not in KEYS:
        raise ValueError(f"unknown key {key[:20]!r} (try one of: C major, A minor, F# major, Bb minor)")
    return key


def tonic_of(key: str) -> int:
    """The pitch class (0 = C) of a key's tonic."""
    return TONICS.index(check_key(key).split()[0])


def mode_of(key: str) -> str:
    return check_key(key).split()[1]


def key_named(tonic: int, mode: str) -> str:
    """The key on pitch class ``tonic`` (any integer, taken modulo 12) in ``mode``."""
    return f"{TONICS[tonic % 12]} {mode}"


def transposed_key(key: str, semitones: int) -> str:
    return key_named(tonic_of(key) + semitones, mode_of(key))


def fifths_of(key: str) -> int:
    """Sharps (positive) or flats (negative) in the key signature, -5 to 6 (F# major: 6; its
    relative, D# minor, is written Eb minor here, so -6 never occurs)."""
    tonic = tonic_of(key)
    return _MAJOR_FIFTHS[(tonic + 3) % 12 if mode_of(key) == "minor" else tonic]


def scale_of(key: str) -> np.ndarray:
    """(12,) bool: the pitch classes of ``key`` (the minor scale keeps both its sixth and its raised
    seventh, as chorales use them); ValueError for a key not in ``KEYS``."""
    degrees = MAJOR_SCALE if mode_of(key) == "major" else MINOR_SCALE
    in_scale = np.zeros(12, dtype=bool)
    in_scale[[(tonic_of(key) + degree) % 12 for degree in degrees]] = True
    return in_scale


def key_scores(pitches: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(24,) correlation of the weighted pitch-class histogram with each key's profile, in the
    order of ``KEYS``; all zero for no notes or a single pitch class."""
    histogram = np.bincount(np.asarray(pitches, dtype=int) % 12, weights=weights, minlength=12).astype(float)
    scores = np.zeros(len(KEYS))
    if np.count_nonzero(histogram) < 2:
        return scores
    centred = histogram - histogram.mean()
    for mode_index, profile in enumerate((MAJOR_PROFILE, MINOR_PROFILE)):
        for tonic in range(12):
            rotated = np.roll(profile, tonic) - profile.mean()
            denominator = np.linalg.norm(centred) * np.linalg.norm(rotated)
            scores[mode_index * 12 + tonic] = float(centred @ rotated / denominator)
    return scores


def estimate_key(notes: list) -> tuple[str, float]:
    """The key that best fits ``notes`` (anything with pitch and duration) and how well, as a
    correlation from -1 to 1. A piece too plain to tell (no notes, one pitch class) gets the key
    of its lowest note in major, with a fit of 0, so that a key is always chosen."""
    if not notes:
        return "C major", 0.0
    pitches = np.array([n.pitch for n in notes])
    scores = key_scores(pitches, np.array([n.duration for n in notes], dtype=float))
    if not scores.any():
        return key_named(int(pitches.min()), "major"), 0.0
    best = int(np.argmax(scores))
    return KEYS[best], float(scores[best])


def estimate_melody_key(melody: list) -> tuple[str, float]:
    """The key a melody (notes one at a time, in order) closes in: the best fit of its notes, with
    ``FINAL_NOTE_BONUS`` for a key whose tonic is its last note (see the module's docstring), and the
    plain fit; a melody too plain to tell gets the major key of its last note."""
    if not melody:
        return "C major", 0.0
    pitches = np.array([n.pitch for n in melody])
    scores = key_scores(pitches, np.array([n.duration for n in melody], dtype=float))
    last = int(max(melody, key=lambda n: n.start).pitch) % 12
    if not scores.any():
        return key_named(last, "major"), 0.0
    ends_on_tonic = np.array([tonic_of(key) == last for key in KEYS])
    best = int(np.argmax(scores + FINAL_NOTE_BONUS * ends_on_tonic))
    return KEYS[best], float(scores[best])
