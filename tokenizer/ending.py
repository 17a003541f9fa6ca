"""An ending within the length asked: steer a piece towards a cadence and END before its words run out.

The model learnt to end (END after the chord of a final phrase), but not within the number of
words a musician asks for. ``EndWithin`` wraps the sampler's constraint (a grammar, or the rules
on top of one) and, over the last ``STEER_SHARE`` of the words:

* weighs PHRASE (a cadence) more and more, and END once a phrase's chord is written (with a
  vocabulary without form words, END after any step);
* over the last ``FINAL_WORDS`` words, insists: the next step ends a phrase, on a beat once every
  note sounding has ended, and after its chord comes END rather than another step;
* where the key is known (the key word), leans a closing chord towards the tonic triad and lets
  the piece end only on a root-position tonic chord with its third (in minor, a Picardy third
  counts); over the last ``FINAL_WORDS`` the last chord is written as ``tonic_chord_pitches`` says
  (the triad with its third, the fourth voice the tonic in the bass): a piece ends as a chorale
  does, on its tonic, unless the rules leave no room for one.

With form words, END comes only after a phrase's chord, wherever the piece ends.

So a piece stops where the budget runs out only if the model would not end even then, and the
studio says so ("stopped at the length limit"). The weights are log-weights added to the logits
(``models.sampling`` multiplies them by the temperature, so they mean the same at any temperature).
"""

from __future__ import annotations

import numpy as np

from tokenizer.notes import LOWEST_PIANO_PITCH
from tokenizer.tonic_chord import (
    PITCHES,
    VOICES,
    chord_at,
    held_at,
    off_the_triad,
    on_tonic,
    tonic_chord_pitches,
    tonic_triad,
)
from tokenizer.words import Grammar, WordVocabulary

STEER_SHARE = 0.25  # of the words asked for: where the steering begins
FINAL_WORDS = 24  # where it insists: a four-voice closing chord takes about 10 words
PHRASE_WEIGHT = 3.0  # nats added to PHRASE at the last word
END_WEIGHT = 5.0  # nats added to END, after a phrase's chord, at the last word
TRIAD_WEIGHT = 3.0  # nats taken from a closing chord's notes outside the tonic triad, at the last word
TONIC_WEIGHT = 1.5  # nats added to a harmonization's last chord's tonic notes


def without_voice_leading(constraint) -> np.ndarray:
    """The grammar's mask under ``constraint`` with only the rules' limits that the last chord must
    keep (the range, a key that must be kept, the voices at most): where the voice-leading rules (a
    dissonance to resolve, parallels) leave a piece no tonic chord to close on, the close wins over
    them."""
    grammar = getattr(constraint, "grammar", constraint)
    mask = grammar.legal_mask()
    while constraint is not None and getattr(constraint, "pitch_limits", None) is None:
        constraint = getattr(constraint, "inner", None)
    if constraint is None:
        return mask
    limited = mask.copy()
    pitches = slice(grammar.vocab.first_pitch_id, grammar.vocab.first_duration_id)
    limited[pitches] &= constraint.pitch_limits
    step = grammar.onset_of(LOWEST_PIANO_PITCH)
    sounding = len(held_at(grammar, step)) + len(chord_at(grammar, step))
    if constraint.rules.max_voices is not None and sounding >= constraint.rules.max_voices:
        limited[pitches] = False
    return limited


def only_duration(mask: np.ndarray, vocab: WordVocabulary, steps_left: int) -> None:
    """Let the run being read last ``steps_left`` more steps exactly: the duration word towards
    them and nothing else until then (where ``mask`` allows it); after them, no more."""
    if steps_left <= 0:
        mask[vocab.durations] = False
        return
    word = vocab.duration_id(min(steps_left, vocab.max_duration))
    if mask[word]:
        mask[:] = False
        mask[word] = True


class CloseOnTonic:
    """A harmonization's last chord, at ``step`` (the melody's last note, which lasts until ``end``),
    as a chorale's:

    * no voice is held into it: a note begun under the melody before ``step`` ends by then;
    * its voices under the melody are the tonic triad's with its third, the lowest the tonic
      (``tonic_chord_pitches``): the step closes only on a root-position tonic chord of four voices;
    * every voice holds until ``end``, and nothing moves after it.

    Where the voice-leading rules leave no tonic chord (a dissonance they would resolve into
    another), the close wins over them (``without_voice_leading``), not over the range or a key
    that must be kept; where nothing is left, the mask is kept as it was."""

    def __init__(self, inner, key: str | None, step: int, end: int | None = None) -> None:
        self.inner, self.key, self.step, self.end = inner, key, step, end
        self.grammar: Grammar = getattr(inner, "grammar", inner)
        self.vocab: WordVocabulary = self.grammar.vocab

    def reset(self) -> None:
        self.inner.reset()

    def advance(self, word_id: int) -> None:
        self.inner.advance(word_id)

    def _at_the_close(self) -> bool:
        return self.grammar.onset_of(LOWEST_PIANO_PITCH) == self.step

    def legal_mask(self) -> np.ndarray:
        mask = self.inner.legal_mask()
        if self.key is None or not mask.any():
            return mask
        narrowed = self._narrowed(mask)
        if not narrowed.any() and self.inner is not self.grammar:  # the voice leading leaves no tonic chord
            narrowed = self._narrowed(without_voice_leading(self.inner))
        return narrowed if narrowed.any() and (narrowed != mask).any() else mask  # the mask itself: cached

    def _narrowed(self, mask: np.ndarray) -> np.ndarray:
        grammar, vocab = self.grammar, self.vocab
        kind, total = grammar.reading
        narrowed = mask.copy()
        if kind == "note" and grammar.step < self.step:  # no voice held into the last chord
            for steps in range(max(1, self.step - grammar.step - total + 1), vocab.max_duration + 1):
                narrowed[vocab.duration_id(steps)] = False
        elif self.end is not None and grammar.step >= self.step and kind is not None:  # held to the end
            only_duration(narrowed, vocab, self.end - grammar.step - total)
        onset = grammar.onset_of(LOWEST_PIANO_PITCH)
        if onset > self.step:  # nothing starts after the last chord
            narrowed[vocab.first_pitch_id : vocab.first_duration_id] = False
        chord = chord_at(grammar, self.step) if onset == self.step else []
        if chord and not off_the_triad(grammar, self.key):
            pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
            if len(chord) + len(held_at(grammar, self.step)) >= VOICES:  # four voices: no fifth
                narrowed[pitches] = False
            elif (voice := tonic_chord_pitches(chord, self.key, held_at(grammar, self.step))).any():
                narrowed[pitches] &= voice
                narrowed[[vocab.sep_id, vocab.end_id]] = False
            else:  # no room for another voice
                narrowed[pitches] = False
        return narrowed

    def logit_bias(self) -> np.ndarray | None:
        bias = self.inner.logit_bias()
        triad = tonic_triad(self.key)
        if triad is None or not self._at_the_close():
            return bias
        steer = np.zeros(self.vocab.size, dtype=np.float32) if bias is None else bias.copy()
        pitches = slice(self.vocab.first_pitch_id, self.vocab.first_duration_id)
        steer[pitches] += TONIC_WEIGHT * (PITCHES % 12 == triad[0])
        return steer


class EndWithin:
    """A constraint that ends a piece within ``words`` new words (see the module's docstring)."""

    def __init__(self, inner, words: int, steps_per_quarter: int | None = None) -> None:
        self.inner = inner
        self.grammar: Grammar = getattr(inner, "grammar", inner)
        self.vocab: WordVocabulary = self.grammar.vocab
        self.words = words
        self.steps_per_quarter = steps_per_quarter  # where known, the last chord sounds on a beat
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

    def _tonic(self) -> tuple[int, np.ndarray] | None:
        return tonic_triad(self.grammar.key)

    def _on_tonic(self) -> bool:
        """Whether what sounds at the step being written is a root-position tonic triad so far."""
        return on_tonic(self.grammar, self.grammar.key)

    def _in_final_chord(self) -> bool:
        """True from the last PHRASE to the end of its chord, where the key is known."""
        grammar = self.grammar
        at_phrase = bool(grammar.phrase_ends) and grammar.phrase_ends[-1] == grammar.step and not grammar.in_gap
        return at_phrase and self._tonic() is not None

    def legal_mask(self) -> np.ndarray:
        mask = self.inner.legal_mask()
        final = self.remaining <= FINAL_WORDS
        if not mask.any() or not (mask[self.vocab.end_id] or final):
            return mask
        narrowed = self._narrowed(mask, final)
        if final and not narrowed.any() and self.inner is not self.grammar:  # the voice leading leaves no last chord
            narrowed = self._narrowed(without_voice_leading(self.inner), final)
        return narrowed if narrowed.any() else mask

    def _narrowed(self, mask: np.ndarray, final: bool) -> np.ndarray:
        vocab, grammar = self.vocab, self.grammar
        narrowed = mask.copy()
        # END may close a phrase's chord on the tonic; at the very end, even with a dissonance unresolved
        allowed = (grammar.legal_mask() if final else mask)[vocab.end_id]
        narrowed[vocab.end_id] = allowed and (self.remaining <= 2 or (self._closing() and self._on_tonic()))
        if not final:
            return narrowed
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        if self._closing() and not off_the_triad(grammar, grammar.key):
            narrowed[vocab.sep_id] = False  # this chord is the last (where a tonic chord can sound in it)
        if self._in_final_chord():  # the tonic triad with its third, the tonic in the bass, held together
            chord = chord_at(grammar, grammar.step)
            narrowed[pitches] &= tonic_chord_pitches(chord, grammar.key, held_at(grammar, grammar.step))
            kind, total = grammar.reading
            top = next((n for n in grammar.notes[-VOICES:] if n.start == grammar.step), None)
            if kind == "note" and top is not None:
                only_duration(narrowed, vocab, top.duration - total)
        elif vocab.phrase_id is not None and grammar.in_gap and self.steps_per_quarter:
            self._land_on_a_beat(narrowed)
        elif vocab.phrase_id is not None and mask[vocab.phrase_id]:  # the next step ends the phrase
            narrowed[pitches] = False
            narrowed[vocab.sep_id] = False
        return narrowed

    def _land_on_a_beat(self, mask: np.ndarray) -> None:
        """The gap being read reaches the step of the last chord: the first beat by which every note
        sounding has ended (none held into it, no rest before it); there, PHRASE."""
        grammar, vocab = self.grammar, self.vocab
        _, total = grammar.reading
        held_until = max((n.end for n in grammar.notes[-4 * VOICES :] if n.end > grammar.step), default=0)
        beat = self.steps_per_quarter
        last_chord = -(-max(held_until, grammar.step + 1) // beat) * beat
        mask[vocab.first_pitch_id : vocab.first_duration_id] = False
        only_duration(mask, vocab, last_chord - grammar.step - total)  # there: PHRASE

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
            if (tonic := self._tonic()) is not None and self.vocab.phrase_id is not None:
                pitches = slice(self.vocab.first_pitch_id, self.vocab.first_duration_id)
                steer[pitches] -= TRIAD_WEIGHT * progress * ~tonic[1]
        return steer
