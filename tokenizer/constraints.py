"""Musical constraints on the sampler: the grammar's mask, narrowed at every note onset.

The grammar knows, before each word, where a pitch word would start its note and which notes
will still be sounding then. ``VoiceConstraint`` uses that to refuse

* a note that would make more than ``max_voices`` different pitches sound at once;
* a note a semitone away from a pitch sounding at its onset (``no_clash``);
* a note that moves in parallel fifths or octaves with a voice already known at its onset,
  after a four-voice chord (``no_parallels``). Voices are counted by pitch from the side the
  encoding writes first (the top in the steps encoding, the bass in the implicit one), so a
  new note's voice, and every voice on that side of it, are known when it is chosen;
* a gap (``sepxx dN``) after which no note could start that both the grammar and the rules allow.

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


@dataclass(frozen=True)
class VoiceRules:
    """What a ``VoiceConstraint`` enforces: the defaults suit four-part chorales."""

    max_voices: int | None = 4  # None: any number
    no_clash: bool = True
    no_parallels: bool = True

    def __post_init__(self) -> None:
        if self.max_voices is not None and self.max_voices < 1:
            raise ValueError(f"max_voices must be at least 1 (got {self.max_voices})")


class VoiceConstraint:
    """A grammar with musical rules on top; the sampler's ``Constraint``."""

    def __init__(self, grammar: Grammar, rules: VoiceRules) -> None:
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

    # -- the Constraint protocol ---------------------------------------------------------------
    def reset(self) -> None:
        self.grammar.reset()
        self._active, self._seen = [], 0
        self._onset = self._previous_onset = None

    def advance(self, word_id: int) -> None:
        self.grammar.advance(word_id)
        if self.vocab.is_pitch(word_id) and self.grammar.step != self._onset:
            self._previous_onset, self._onset = self._onset, self.grammar.step

    def legal_mask(self) -> np.ndarray:
        mask = self.grammar.legal_mask()
        vocab = self.vocab
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        durations = slice(vocab.first_duration_id, vocab.size)
        in_gap = self.grammar.in_gap
        if not mask[pitches].any() and not in_gap:
            return mask
        narrowed = mask.copy()
        if mask[pitches].any():
            narrowed[pitches] &= self._allowed_pitches()
        if in_gap and mask[durations].any():
            narrowed[durations] &= self._allowed_gap_ends(mask[durations])
        if not narrowed.any():
            self.relaxed += 1
            return mask
        return narrowed

    # -- the rules -----------------------------------------------------------------------------
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
        allowed = np.ones(PITCH_COUNT, dtype=bool)
        sounding = self.sounding_at(step)
        index = sounding - LOWEST_PIANO_PITCH
        max_voices = self.rules.max_voices
        if max_voices is not None and len(sounding) >= max_voices:
            allowed[:] = False
            if len(sounding) == max_voices:
                allowed[index] = True  # striking a sounding pitch again adds no voice
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
        for slot, pitch in enumerate(range(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)):
            new = self._side * pitch
            written = known[known < new]  # the voices between the written side and this note
            voice = len(written)
            if voice > 3:
                continue
            for other in range(voice):
                moves = (new - before[voice], written[other] - before[other])
                if moves[0] == 0 or moves[1] == 0 or (moves[0] > 0) != (moves[1] > 0):
                    continue
                interval = abs(new - written[other]) % 12
                if interval in (0, 7) and abs(before[voice] - before[other]) % 12 == interval:
                    allowed[slot] = False
                    break
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
            allowed[steps - 1] = bool((probe.legal_mask()[pitches] & self._allowed_at(landing)).any())
        return allowed
