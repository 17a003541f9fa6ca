"""Musical constraints on the sampler: the grammar's mask, narrowed at every note onset.

The grammar knows, before each word, where a pitch word would start its note and which notes
will still be sounding then. ``RuleConstraint`` uses that to refuse

* a note that would make more than ``max_voices`` different pitches sound at once;
* a note a semitone away from a pitch sounding at its onset (``no_clash``);
* a note that moves in parallel fifths or octaves with a voice already known at its onset,
  after a four-voice chord (``no_parallels``). Voices are counted by pitch from the side the
  encoding writes first (the top in the steps encoding, the bass in the implicit one), so a
  new note's voice, and every voice on that side of it, are known when it is chosen;
* a note outside the piece's range (``lowest``-``highest``);
* a word that would repeat, exactly, a run of ``no_repeat`` words already written since the
  rules took over (as Composer's Assistant offers);
* a gap (``sepxx dN``) after which no note could start that both the grammar and the rules allow.

A ``key`` does not refuse: it weighs every pitch outside its scale by ``out_of_key_weight`` (the
sampler adds ``logit_bias``), so chromatic passing notes stay possible; a weight of 0 forbids them.
A constraint never leads the sampler into a dead end: where it would leave no legal word at all,
it lets the grammar's own mask through for that word and counts it in ``relaxed``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH, Note
from tokenizer.words import Grammar

PITCH_COUNT = HIGHEST_PIANO_PITCH - LOWEST_PIANO_PITCH + 1


TONICS = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MAJOR_SCALE, MINOR_SCALE = (0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10, 11)  # minor: with its leading tone
KEYS = tuple(f"{tonic} {mode}" for mode in ("major", "minor") for tonic in TONICS)  # "D minor"


def scale_of(key: str) -> np.ndarray:
    """(12,) bool: the pitch classes of ``key`` ("D minor"; the minor scale keeps both its sixth
    and its raised seventh, as chorales use them); ValueError for a key not in ``KEYS``."""
    if key not in KEYS:
        raise ValueError(f"unknown key {key[:20]!r} (try one of: C major, A minor, F# major, Bb minor)")
    tonic, mode = key.split()
    in_scale = np.zeros(12, dtype=bool)
    in_scale[[(TONICS.index(tonic) + degree) % 12 for degree in (MAJOR_SCALE if mode == "major" else MINOR_SCALE)]] = (
        True
    )
    return in_scale


@dataclass(frozen=True)
class Rules:
    """What a ``RuleConstraint`` enforces. The defaults are the four-part rules for chorales;
    range, key and repeats are free."""

    max_voices: int | None = 4  # None: any number
    no_clash: bool = True
    no_parallels: bool = True
    lowest: int = LOWEST_PIANO_PITCH
    highest: int = HIGHEST_PIANO_PITCH
    key: str | None = None  # one of KEYS; None: any
    out_of_key_weight: float = 0.1  # what a pitch outside the key's scale is weighed by (0: forbidden)
    no_repeat: int = 0  # words; 0: off

    def __post_init__(self) -> None:
        if self.max_voices is not None and self.max_voices < 1:
            raise ValueError(f"max_voices must be at least 1 (got {self.max_voices})")
        if not LOWEST_PIANO_PITCH <= self.lowest <= self.highest <= HIGHEST_PIANO_PITCH:
            raise ValueError(
                f"the range must run upward within {LOWEST_PIANO_PITCH}-{HIGHEST_PIANO_PITCH} "
                f"(got {self.lowest}-{self.highest})"
            )
        if not 0.0 <= self.out_of_key_weight <= 1.0:
            raise ValueError(f"the out-of-key weight must be from 0 to 1 (got {self.out_of_key_weight})")
        if self.no_repeat != 0 and not 2 <= self.no_repeat <= 10_000:
            raise ValueError(f"no_repeat must be 0 (off) or 2 words or more (got {self.no_repeat})")
        if self.key is not None:
            in_scale = scale_of(self.key)
            if self.out_of_key_weight == 0 and not in_scale[np.arange(self.lowest, self.highest + 1) % 12].any():
                raise ValueError(f"the range {self.lowest}-{self.highest} holds no note of {self.key}")


NO_RULES = Rules(max_voices=None, no_clash=False, no_parallels=False)  # the grammar alone


class RuleConstraint:
    """A grammar with musical rules on top; the sampler's ``Constraint``."""

    def __init__(self, grammar: Grammar, rules: Rules) -> None:
        self.grammar = grammar
        self.vocab = grammar.vocab
        self.rules = rules
        self.relaxed = 0  # words for which the rules stepped aside
        self._active: list[Note] = []  # closed notes that may still sound (or did at the last onset)
        self._seen = 0  # of grammar.notes, how many are in _active already
        written = grammar.notes + ([pending] if (pending := grammar.pending_note()) else [])
        onsets = sorted({note.start for note in written})  # a primer's, read before the rules came
        self._onset: int | None = onsets[-1] if onsets else None  # the step of the latest note
        self._previous_onset: int | None = onsets[-2] if len(onsets) > 1 else None  # the onset before it
        self._side = -1 if grammar.vocab.encoding == "steps" else 1  # -1: a step is written top down
        pitches = np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)
        self._in_range = (pitches >= rules.lowest) & (pitches <= rules.highest)  # and in the key, if it must be
        if rules.key is not None and rules.out_of_key_weight == 0:
            self._in_range &= scale_of(rules.key)[pitches % 12]
        self._bias = self._key_bias()
        self._written: list[int] = []  # words since the rules took over (for no_repeat)
        self._followers: dict[tuple[int, ...], set[int]] = {}  # each run of no_repeat - 1 words: what followed it

    # -- the Constraint protocol ---------------------------------------------------------------
    def reset(self) -> None:
        self.grammar.reset()
        self._active, self._seen = [], 0
        self._onset = self._previous_onset = None
        self._written, self._followers = [], {}

    def advance(self, word_id: int) -> None:
        self.grammar.advance(word_id)
        if self.vocab.is_pitch(word_id) and self.grammar.step != self._onset:
            self._previous_onset, self._onset = self._onset, self.grammar.step
        n = self.rules.no_repeat
        if n:
            self._written.append(word_id)
            if len(self._written) >= n:
                self._followers.setdefault(tuple(self._written[-n:-1]), set()).add(word_id)

    def logit_bias(self) -> np.ndarray | None:
        """Log-weights to add to the logits: the key's, or None."""
        return self._bias

    def legal_mask(self) -> np.ndarray:
        mask = self.grammar.legal_mask()
        vocab = self.vocab
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        durations = vocab.durations
        in_gap = self.grammar.in_gap
        repeated = self._repeating_words()
        if not mask[pitches].any() and not in_gap and not repeated:
            return mask  # read-only and cached by the grammar: the sampler caches it too
        narrowed = mask.copy()
        if mask[pitches].any():
            narrowed[pitches] &= self._allowed_pitches()
        if in_gap and mask[durations].any():
            narrowed[durations] &= self._allowed_gap_ends(mask[durations])
        narrowed[repeated] = False
        if not narrowed.any():
            self.relaxed += 1
            return mask
        return narrowed

    # -- the rules -----------------------------------------------------------------------------
    def _repeating_words(self) -> list[int]:
        """The words that would end a run of ``no_repeat`` words written before."""
        n = self.rules.no_repeat
        return sorted(self._followers.get(tuple(self._written[-(n - 1) :]), ())) if n else []

    def _key_bias(self) -> np.ndarray | None:
        """(V,) float32 log-weights: 0, and log(out_of_key_weight) on pitch words outside the key.
        None without a key, or where the weight is 1 (no change) or 0 (the mask refuses them)."""
        weight = self.rules.out_of_key_weight
        if self.rules.key is None or weight in (0.0, 1.0):
            return None
        bias = np.zeros(self.vocab.size, dtype=np.float32)
        pitches = np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)
        outside = ~scale_of(self.rules.key)[pitches % 12]
        bias[self.vocab.first_pitch_id + np.flatnonzero(outside)] = np.log(weight)
        return bias

    def sounding_at(self, step: int) -> np.ndarray:
        """Pitches sounding at ``step`` (not before the previous onset), sorted, counting the
        note whose duration is being read as ending where it stands."""
        grammar = self.grammar
        if self._seen < len(grammar.notes):
            self._active += grammar.notes[self._seen :]
            self._seen = len(grammar.notes)
        keep_from = min(grammar.step, self._previous_onset if self._previous_onset is not None else grammar.step)
        self._active = [n for n in self._active if n.end > keep_from]
        notes = self._active
        if (pending := grammar.pending_note()) is not None:
            notes = [*notes, pending]
        return np.unique([n.pitch for n in notes if n.start <= step < n.end]).astype(int)

    def _allowed_at(self, step: int) -> np.ndarray:
        """(88,) bool over pitches 21-108: may a note start at ``step`` on this pitch?"""
        allowed = self._in_range.copy()
        sounding = self.sounding_at(step)
        index = sounding - LOWEST_PIANO_PITCH
        max_voices = self.rules.max_voices
        if max_voices is not None and len(sounding) >= max_voices:
            allowed[:] = False
            if len(sounding) == max_voices:
                allowed[index] = self._in_range[index]  # striking a sounding pitch again adds no voice
        if self.rules.no_clash:
            for neighbour in (index - 1, index + 1):
                allowed[neighbour[(neighbour >= 0) & (neighbour < PITCH_COUNT)]] = False
        if self.rules.no_parallels:
            allowed &= self._without_parallels(step, sounding)
        return allowed

    def _without_parallels(self, step: int, sounding: np.ndarray) -> np.ndarray:
        """(88,) bool: False where a note at ``step`` would move in parallel fifths or octaves,
        after a four-voice chord, with a voice on the side of it already written."""
        allowed = np.ones(PITCH_COUNT, dtype=bool)
        previous = self._onset if self._onset is not None and step > self._onset else self._previous_onset
        if previous is None:
            return allowed
        before = np.sort(self._side * self.sounding_at(previous))  # voices from the side written first
        if len(before) != 4:
            return allowed
        known = np.sort(self._side * sounding)
        new = self._side * np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)  # every candidate at once
        voice = np.searchsorted(known, new)  # the voices between the written side and each candidate
        moved = new - before[np.minimum(voice, 3)]  # how far each candidate's voice moves
        for other in range(min(3, len(known))):  # a voice written before the candidate's
            other_moved = known[other] - before[other]
            interval = np.abs(new - known[other]) % 12
            allowed &= ~(
                (voice > other)
                & (voice <= 3)
                & (moved != 0)
                & (other_moved != 0)
                & ((moved > 0) == (other_moved > 0))
                & ((interval == 0) | (interval == 7))
                & (np.abs(before[np.minimum(voice, 3)] - before[other]) % 12 == interval)
            )
        return allowed

    def _allowed_pitches(self) -> np.ndarray:
        """(88,) bool: the pitches whose note, started where the grammar would start it, obeys
        the rules. In the implicit encoding a pitch's onset depends on the pitch."""
        grammar = self.grammar
        onsets = np.array([grammar.onset_of(p) for p in (LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH)])
        if onsets[0] == onsets[1]:
            return self._allowed_at(int(onsets[0]))
        per_pitch = np.array([grammar.onset_of(p) for p in range(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)])
        allowed = np.zeros(PITCH_COUNT, dtype=bool)
        for onset in np.unique(per_pitch):
            allowed[per_pitch == onset] = self._allowed_at(int(onset))[per_pitch == onset]
        return allowed

    def _allowed_gap_ends(self, legal: np.ndarray) -> np.ndarray:
        """(dMAX,) bool over the duration words that may come next in a gap: one that ends the
        gap must leave a note the grammar and the rules both allow (in the implicit encoding a
        gap may demand a pitch above the last step's, where only held pitches may sound)."""
        vocab, grammar = self.vocab, self.grammar
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        allowed = legal.copy()
        for steps in range(1, vocab.max_duration):  # dMAX keeps the gap open: nothing to check yet
            if not legal[steps - 1]:
                continue
            probe = copy.copy(grammar)  # a duration word changes only the probe's own counters
            probe.advance(vocab.duration_id(steps))
            landing = probe.onset_of(LOWEST_PIANO_PITCH)
            after = probe.legal_mask()  # a note, or END where a gap must end (tokenizer/tasks.py)
            allowed[steps - 1] = bool((after[pitches] & self._allowed_at(landing)).any() or after[vocab.end_id])
        return allowed
