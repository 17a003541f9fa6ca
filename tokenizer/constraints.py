"""Musical constraints on the sampler: the grammar's mask, narrowed at every note onset.

The grammar knows, before each word, where a pitch word would start its note and which notes
will still be sounding then. ``VoiceConstraint`` uses that to refuse

* a note that would make more than ``max_voices`` different pitches sound at once;
* a note a semitone away from a pitch sounding at its onset (``no_clash``).

Striking a sounding pitch again adds no voice, so a new step always has a note it may start.

A constraint never leads the sampler into a dead end: where it would leave no legal word at all,
it lets the grammar's own mask through for that word and counts it in ``relaxed``.
"""

from __future__ import annotations

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

    def __post_init__(self) -> None:
        if self.max_voices is not None and self.max_voices < 1:
            raise ValueError(f"max_voices must be at least 1 (got {self.max_voices})")


class VoiceConstraint:
    """A grammar with musical rules on top; the sampler's ``Constraint``."""

    def __init__(self, grammar: Grammar, rules: VoiceRules) -> None:
        self.grammar = grammar
        self.vocab = grammar.vocab
        self.max_voices = rules.max_voices
        self.no_clash = rules.no_clash
        self.relaxed = 0  # words for which the rules stepped aside
        self._active: list[Note] = []  # closed notes that may still sound
        self._seen = 0  # of grammar.notes, how many are in _active already

    # -- the Constraint protocol ---------------------------------------------------------------
    def reset(self) -> None:
        self.grammar.reset()
        self._active, self._seen = [], 0

    def advance(self, word_id: int) -> None:
        self.grammar.advance(word_id)

    def legal_mask(self) -> np.ndarray:
        mask = self.grammar.legal_mask()
        vocab = self.vocab
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        if not mask[pitches].any():
            return mask
        narrowed = mask.copy()
        narrowed[pitches] &= self._allowed_pitches()
        if not narrowed.any():
            self.relaxed += 1
            return mask
        return narrowed

    # -- the rules -----------------------------------------------------------------------------
    def sounding_at(self, step: int) -> np.ndarray:
        """Pitches sounding at ``step`` (not before the current one), counting the note whose
        duration is being read as ending where it stands."""
        grammar = self.grammar
        if self._seen < len(grammar.notes):
            self._active += grammar.notes[self._seen :]
            self._seen = len(grammar.notes)
        self._active = [n for n in self._active if n.end > grammar.step]
        notes = self._active
        if (pending := grammar.pending_note()) is not None:
            notes = [*notes, pending]
        return np.unique([n.pitch for n in notes if n.start <= step < n.end]).astype(int)

    def _allowed_at(self, step: int) -> np.ndarray:
        """(88,) bool over pitches 21-108: may a note start at ``step`` on this pitch?"""
        allowed = np.ones(PITCH_COUNT, dtype=bool)
        sounding = self.sounding_at(step)
        index = sounding - LOWEST_PIANO_PITCH
        if self.max_voices is not None and len(sounding) >= self.max_voices:
            allowed[:] = False
            if len(sounding) == self.max_voices:
                allowed[index] = True  # striking a sounding pitch again adds no voice
        if self.no_clash:
            for neighbour in (index - 1, index + 1):
                allowed[neighbour[(neighbour >= 0) & (neighbour < PITCH_COUNT)]] = False
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
