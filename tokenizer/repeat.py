"""Bar form: a new piece sings its opening phrases again, as most chorale tunes do.

A chorale tune is mostly in bar form, A A B: its first two phrases (the Stollen) come twice, to
new words, before the rest (the Abgesang). As music21 gives the 410 chorales (repeat signs not
written out), the first two bars come back note for note in 39 of them (``bench.form.
opening_repeated``); the model never repeats its opening. ``RepeatOpening`` wraps the sampler's
constraint (inside ``EndWithin``):

* it records the words of the piece's first ``PHRASES`` phrases, up to the end of the chord that
  closes the last of them (the step PHRASE marks);
* that chord (the fermata) holds to the next step that stands where the opening began in its bar
  (bars counted from the piece's start), and the gap after it lands there: no rest before the
  repeat and nothing held into it;
* then the recorded words follow one by one. Its first chord may follow the chord before it
  against the voice-leading rules (parallels across the fermata), as a piece's last chord may
  (``tokenizer.ending.without_voice_leading``: never against the range, a key that must be kept or
  the voices at most); after it every step follows the opening's own. A word the rules still
  refuse (an exact repeat the Rules window forbids) ends the repeat there, and the rest is the
  model's.

``WordModel.draw_bar_form`` decides "as Bach". It repeats only where the opening fits twice
before the ending's steering begins (``tokenizer.ending.STEER_SHARE``), and only with form words
(PHRASE). The steps encoding's words move time by relative steps, so the same words write the
same notes a whole number of bars later.
"""

from __future__ import annotations

import numpy as np

from tokenizer.ending import STEER_SHARE, only_duration, without_voice_leading
from tokenizer.words import Grammar, WordVocabulary

PHRASES = 2  # the Stollen: a chorale's first two phrases
BACH_SHARE = 39 / 410  # of the chorales, those whose first two bars come back: "as Bach", a new piece's chance
BAR_FORM = {"bach": None, "always": True, "never": False}  # a musician's choice -> ``bar_form`` (None: drawn)
QUARTERS_PER_BAR = 4  # a new piece is in 4/4


class RepeatOpening:
    """A constraint that repeats a new piece's first ``PHRASES`` phrases (see the module's
    docstring); ``words``: the words the piece may take, ``steps_per_quarter`` its grid."""

    def __init__(self, inner, words: int, steps_per_quarter: int) -> None:
        self.inner = inner
        self.grammar: Grammar = getattr(inner, "grammar", inner)
        self.vocab: WordVocabulary = self.grammar.vocab
        self.words = words
        self.bar = QUARTERS_PER_BAR * steps_per_quarter
        self.reset_state()

    def reset_state(self) -> None:
        self.recorded: list[int] = []  # the opening's words, from its first pitch word
        self.phrases = 0
        self.made = 0
        self.phase = "recording"  # then "gap" (landing where the repeat begins), "repeating", "done"
        self.offset = 0  # where the opening's first note stands in its bar, in steps
        self.target = 0  # the step the repeat begins at
        self.position = 0  # the next recorded word to write
        self.first_chord = 0  # how many of the recorded words write the opening's first chord

    def reset(self) -> None:
        self.inner.reset()
        self.reset_state()

    @property
    def repeated(self) -> int:
        """How many of the opening's words have been written again."""
        return self.position

    def advance(self, word_id: int) -> None:
        self.inner.advance(word_id)
        self.made += 1
        vocab = self.vocab
        if self.phase == "recording":
            self._record(word_id)
        elif self.phase == "gap" and not vocab.is_duration(word_id):
            self.phase = "repeating" if self.grammar.step == self.target else "done"
        if self.phase == "repeating":
            if word_id != self.recorded[self.position]:
                self.phase = "done"  # the rules refused the opening's next word: the rest is the model's
                return
            self.position += 1
            if self.position == len(self.recorded):
                self.phase = "done"

    def _record(self, word_id: int) -> None:
        vocab = self.vocab
        if not self.recorded and not vocab.is_pitch(word_id) and word_id != vocab.phrase_id:
            return  # words before the first note (a rest at the start) are not the opening
        if not self.recorded:
            self.offset = self.grammar.step % self.bar
        if word_id == vocab.sep_id and self.phrases >= PHRASES:  # the opening's last chord is written
            fits = self.made + len(self.recorded) + self.bar <= self.words * (1 - STEER_SHARE)
            held_until = max((n.end for n in self.grammar.notes), default=0)
            self.target = self._in_place_after(max(held_until, self.grammar.step + 1) - 1)
            self.first_chord = (
                self.recorded.index(vocab.sep_id) if vocab.sep_id in self.recorded else len(self.recorded)
            )
            self.phase = "gap" if fits else "done"
            return
        self.recorded.append(word_id)
        self.phrases += word_id == self.vocab.phrase_id
        if word_id == self.vocab.end_id:
            self.phase = "done"

    def _in_place_after(self, step: int) -> int:
        """The first step after ``step`` that stands in its bar where the opening began."""
        return self.offset + -(-(step + 1 - self.offset) // self.bar) * self.bar

    def legal_mask(self) -> np.ndarray:
        mask = self.inner.legal_mask()
        grammar = self.grammar
        kind, total = grammar.reading
        if self.phase == "recording" and self.phrases >= PHRASES and grammar.in_phrase_end and kind == "note":
            narrowed = mask.copy()  # the fermata: the chord holds to where the repeat begins
            only_duration(narrowed, self.vocab, self._in_place_after(grammar.step) - grammar.step - total)
            return narrowed if narrowed.any() else mask
        if self.phase == "gap":
            left = self.target - grammar.step - total
            if left > 0:  # the gap's next duration word towards where the repeat begins
                return _only(mask, self.vocab.duration_id(min(left, self.vocab.max_duration)))
            return self._next_recorded(mask)
        if self.phase == "repeating":
            return self._next_recorded(mask)
        return mask

    def _next_recorded(self, mask: np.ndarray) -> np.ndarray:
        word = self.recorded[self.position]
        if not mask[word] and self.position < self.first_chord and self.inner is not self.grammar:
            mask = without_voice_leading(self.inner)  # the seam: the repeat wins over the voice leading
        return _only(mask, word)

    def logit_bias(self) -> np.ndarray | None:
        return self.inner.logit_bias()


def _only(mask: np.ndarray, word: int) -> np.ndarray:
    """``word`` alone, where ``mask`` allows it; else ``mask``: the model's choice."""
    if not mask[word]:
        return mask
    narrowed = np.zeros_like(mask)
    narrowed[word] = True
    return narrowed
