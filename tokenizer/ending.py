"""An ending within the length asked: steer a piece towards a cadence and END before its words run out.

The model learnt to end (END after the chord of a final phrase), but not within the number of
words a musician asks for. ``EndWithin`` wraps the sampler's constraint (a grammar, or the rules
on top of one) and, over the last ``STEER_SHARE`` of the words:

* weighs PHRASE (a cadence) more and more, and END once a phrase's chord is written (with a
  vocabulary without form words, END after any step);
* over the last ``FINAL_WORDS`` words, insists: the next step ends a phrase, and after its chord
  comes END rather than another step.

With form words, END comes only after a phrase's chord, wherever the piece ends.

So a piece stops where the budget runs out only if the model would not end even then, and the
studio says so ("stopped at the length limit"). The weights are log-weights added to the logits
(``models.sampling`` multiplies them by the temperature, so they mean the same at any temperature).
"""

from __future__ import annotations

import numpy as np

from tokenizer.words import Grammar, WordVocabulary

STEER_SHARE = 0.25  # of the words asked for: where the steering begins
FINAL_WORDS = 24  # where it insists: a four-voice closing chord takes about 10 words
PHRASE_WEIGHT = 3.0  # nats added to PHRASE at the last word
END_WEIGHT = 5.0  # nats added to END, after a phrase's chord, at the last word


class EndWithin:
    """A constraint that ends a piece within ``words`` new words (see the module's docstring)."""

    def __init__(self, inner, words: int) -> None:
        self.inner = inner
        self.grammar: Grammar = getattr(inner, "grammar", inner)
        self.vocab: WordVocabulary = self.grammar.vocab
        self.words = words
        self.made = 0
        self._steer_from = min(max(FINAL_WORDS, round(words * STEER_SHARE)), words)

    def reset(self) -> None:
        self.inner.reset()
        self.made = 0

    def advance(self, word_id: int) -> None:
        self.inner.advance(word_id)
        self.made += 1

    @property
    def remaining(self) -> int:
        return self.words - self.made

    def _closing(self) -> bool:
        """True where END would close a phrase (or, without form words, a step)."""
        return self.vocab.phrase_id is None or self.grammar.in_phrase_end

    def legal_mask(self) -> np.ndarray:
        mask = self.inner.legal_mask()
        vocab = self.vocab
        ends_early = vocab.phrase_id is not None and mask[vocab.end_id] and not self.grammar.in_phrase_end
        if (self.remaining > FINAL_WORDS and not ends_early) or not mask.any():
            return mask
        narrowed = mask.copy()
        if self.remaining > FINAL_WORDS:  # a piece ends after a phrase's chord, as every chorale does
            narrowed[vocab.end_id] = False
            return narrowed if narrowed.any() else mask
        if self._closing():
            narrowed[vocab.sep_id] = False  # this chord is the last
            narrowed[vocab.end_id] = self.grammar.legal_mask()[vocab.end_id]  # even with a dissonance unresolved
        else:
            narrowed[vocab.end_id] = self.remaining <= 2 and mask[vocab.end_id]  # END only as a last resort
            if mask[vocab.phrase_id]:  # where a step may begin, it ends the phrase
                narrowed[vocab.first_pitch_id : vocab.first_duration_id] = False
                narrowed[vocab.sep_id] = False
        return narrowed if narrowed.any() else mask

    def logit_bias(self) -> np.ndarray | None:
        bias = self.inner.logit_bias()
        if self.remaining > self._steer_from:
            return bias
        progress = 1.0 - max(0, self.remaining - FINAL_WORDS) / max(1, self._steer_from - FINAL_WORDS)
        steer = np.zeros(self.vocab.size, dtype=np.float32) if bias is None else bias.copy()
        if self.vocab.phrase_id is not None and not self.grammar.in_phrase_end:
            steer[self.vocab.phrase_id] += PHRASE_WEIGHT * progress
        if self._closing():
            steer[self.vocab.end_id] += END_WEIGHT * progress
        return steer
