"""A new piece opens on its tonic: its first chord is the tonic triad, the tonic in the bass.

The model reads the key word after START but holds it loosely: in bench.quality's pieces most
end on the tonic of the key word (``tokenizer.ending`` steers the last chord there) while fewer
open in that key, and fewer are heard in minor than were asked to be. Bach's chorales open on
their tonic chord. ``OpenOnTonic`` wraps the sampler's constraint and narrows the first chord's
pitches to the tonic triad (the key's own third), the lowest of four voices to the tonic itself
(``tokenizer.tonic_chord.tonic_chord_pitches``), where the grammar and the rules leave room for them;
the rest of the piece is the model's.
"""

from __future__ import annotations

import numpy as np

from tokenizer.keys import scale_of
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH
from tokenizer.tonic_chord import chord_at, tonic_chord_pitches
from tokenizer.words import Grammar, WordVocabulary


class OpenOnTonic:
    """A constraint whose first chord is the tonic chord of ``key`` (see the module's docstring)."""

    def __init__(self, inner, key: str) -> None:
        self.inner = inner
        self.key = key
        self.grammar: Grammar = getattr(inner, "grammar", inner)
        self.vocab: WordVocabulary = self.grammar.vocab
        self._in_scale = scale_of(key)[np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1) % 12]  # its own third

    def reset(self) -> None:
        self.inner.reset()

    def advance(self, word_id: int) -> None:
        self.inner.advance(word_id)

    def logit_bias(self) -> np.ndarray | None:
        return self.inner.logit_bias()

    def _in_first_chord(self) -> bool:
        """True until a note could start after the first chord's onset."""
        grammar = self.grammar
        written = grammar.notes[:1] or ([pending] if (pending := grammar.pending_note()) else [])
        return not written or grammar.onset_of(LOWEST_PIANO_PITCH) == written[0].start

    def legal_mask(self) -> np.ndarray:
        mask = self.inner.legal_mask()
        pitches = slice(self.vocab.first_pitch_id, self.vocab.first_duration_id)
        if not mask[pitches].any() or not self._in_first_chord():
            return mask
        narrowed = mask.copy()
        first = self.grammar.onset_of(LOWEST_PIANO_PITCH)
        narrowed[pitches] &= tonic_chord_pitches(chord_at(self.grammar, first), self.key) & self._in_scale
        return narrowed if narrowed.any() else mask
