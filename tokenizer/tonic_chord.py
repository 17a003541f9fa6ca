"""The tonic chord a piece opens and closes on, as Bach writes it.

Bach's 410 chorales close on a tonic chord: four voices in 92 % of their last chords, a third in
97 %, the bass the tonic between C2 and G3 in 98 % (the soprano's last note sounds in the bass in
91 %). ``tonic_chord_pitches`` says which pitch the next voice of such a chord may take, written top
down; ``tokenizer.opening`` opens a new piece on it and ``tokenizer.ending`` closes pieces and
harmonizations on it. The helpers read what sounds at a grammar's step.
"""

from __future__ import annotations

import numpy as np

from tokenizer.keys import mode_of, tonic_of
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH
from tokenizer.words import Grammar

VOICES = 4  # the voices of a chorale's tonic chord
FINAL_BASS = (36, 55)  # C2-G3: the bass of Bach's last chords, 1st to 99th percentile
PITCHES = np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)


def tonic_triad(key: str | None) -> tuple[int, np.ndarray] | None:
    """(tonic pitch class, (88,) bool over pitches 21-108: the tonic triad's), or None for no key.
    A minor key's triad takes either third (a Picardy third closes many of Bach's minor chorales); a
    major key's only its own."""
    if key is None:
        return None
    tonic = tonic_of(key)
    thirds = [(tonic + 3) % 12, (tonic + 4) % 12] if mode_of(key) == "minor" else [(tonic + 4) % 12]
    return tonic, np.isin(PITCHES % 12, [tonic, *thirds, (tonic + 7) % 12])


def chord_at(grammar: Grammar, step: int) -> list[int]:
    """The pitches of the notes begun at ``step`` so far (top down, the one being read included)."""
    chord = [n.pitch for n in grammar.notes[-2 * VOICES :] if n.start == step]
    if (pending := grammar.pending_note()) is not None and pending.start == step:
        chord.append(pending.pitch)
    return chord


def held_at(grammar: Grammar, step: int) -> list[int]:
    """The pitches of the notes begun before ``step`` that still sound at it."""
    return [n.pitch for n in grammar.notes if n.start < step < n.end]


def tonic_chord_pitches(chord: list[int], key: str, held: list[int] = ()) -> np.ndarray:
    """(88,) bool: the pitches the next voice (down) of a tonic chord may take under ``chord`` (its
    pitches so far, top down; ``held``: notes from before that sound in it), so that it sounds as
    Bach's last chords do (92 % four voices, 97 % with the third, the bass the tonic between C2 and
    G3): the tonic triad's, the third among the upper voices, the fourth voice the tonic in
    ``FINAL_BASS``, each leaving room for it; none once the chord is whole."""
    tonic, triad = tonic_triad(key)
    lowest, highest = FINAL_BASS
    voices = len(chord) + len(held)
    under = PITCHES < (min(chord) if chord else HIGHEST_PIANO_PITCH + 1)
    bass = (PITCHES % 12 == tonic) & (PITCHES >= lowest) & (PITCHES <= highest) & under
    if voices >= VOICES - 1 or not bass.any():
        return bass if voices < VOICES else np.zeros_like(bass)
    upper = triad & under & (PITCHES > PITCHES[bass].min())
    thirds = triad & ~np.isin(PITCHES % 12, [tonic, (tonic + 7) % 12])
    if voices == VOICES - 2 and not thirds[np.asarray([*chord, *held]) - LOWEST_PIANO_PITCH].any():
        upper &= thirds  # the last upper voice: the third, if no voice has it yet
    return upper if upper.any() else bass  # no room for another upper voice: the bass


def sounding(grammar: Grammar) -> list[int]:
    """The pitches sounding at the grammar's step: held from before, begun there, being read."""
    step = grammar.step
    pitches = [n.pitch for n in grammar.notes if n.start <= step < n.end]
    if (pending := grammar.pending_note()) is not None:
        pitches.append(pending.pitch)
    return pitches


def on_tonic(grammar: Grammar, key: str | None) -> bool:
    """Whether what sounds at the grammar's current step is a root-position tonic triad of ``key``
    with its third, of three notes or more (True where there is no key to judge by)."""
    triad = tonic_triad(key)
    if triad is None:
        return True
    chord = sounding(grammar)
    pitches = np.asarray(chord, dtype=int) - LOWEST_PIANO_PITCH
    classes = (pitches + LOWEST_PIANO_PITCH) % 12
    third = np.isin(classes, [(triad[0] + 3) % 12, (triad[0] + 4) % 12]).any()
    return len(chord) >= 3 and min(chord) % 12 == triad[0] and bool(triad[1][pitches].all()) and bool(third)


def off_the_triad(grammar: Grammar, key: str | None) -> bool:
    """Whether a note sounding at the grammar's step (held from before, or begun there) lies outside
    the tonic triad of ``key``: then no tonic chord can sound there."""
    triad = tonic_triad(key)
    if triad is None:
        return False
    return any(not triad[1][p - LOWEST_PIANO_PITCH] for p in sounding(grammar))
