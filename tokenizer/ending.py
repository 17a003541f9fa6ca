"""An ending within the length asked: steer a piece towards a cadence and END before its words run out.

The model learnt to end (END after the chord of a final phrase), but not within the number of
words a musician asks for. ``EndWithin`` wraps the sampler's constraint (a grammar, or the rules
on top of one) and, over the last ``STEER_SHARE`` of the words:

* weighs PHRASE (a cadence) more and more, and END once a phrase's chord is written (with a
  vocabulary without form words, END after any step);
* over the last ``FINAL_WORDS`` words, insists: the next step ends a phrase, and after its chord
  comes END rather than another step;
* where the key is known (the key word), leans a closing chord towards the tonic triad and lets
  the piece end only on a root-position tonic chord (a Picardy third counts); over the last
  ``FINAL_WORDS`` the last chord's notes are the triad's, and its fourth (lowest) the tonic: a piece
  ends as a chorale does, on its tonic, unless the rules leave no room for one.

With form words, END comes only after a phrase's chord, wherever the piece ends.

So a piece stops where the budget runs out only if the model would not end even then, and the
studio says so ("stopped at the length limit"). The weights are log-weights added to the logits
(``models.sampling`` multiplies them by the temperature, so they mean the same at any temperature).
"""

from __future__ import annotations

import numpy as np

from tokenizer.keys import tonic_of
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH
from tokenizer.words import Grammar, WordVocabulary

STEER_SHARE = 0.25  # of the words asked for: where the steering begins
FINAL_WORDS = 24  # where it insists: a four-voice closing chord takes about 10 words
PHRASE_WEIGHT = 3.0  # nats added to PHRASE at the last word
END_WEIGHT = 5.0  # nats added to END, after a phrase's chord, at the last word
TRIAD_WEIGHT = 3.0  # nats taken from a closing chord's notes outside the tonic triad, at the last word
TONIC_WEIGHT = 1.5  # nats added to a harmonization's last chord's tonic notes
VOICES = 4  # the voices of a harmonization's last chord
FINAL_BASS = (36, 55)  # C2-G3: the bass of Bach's last chords, 1st to 99th percentile
PITCHES = np.arange(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)


def tonic_triad(key: str | None) -> tuple[int, np.ndarray] | None:
    """(tonic pitch class, (88,) bool over pitches 21-108: the tonic triad's, with either third), or
    None for no key."""
    if key is None:
        return None
    tonic = tonic_of(key)
    classes = [tonic, (tonic + 3) % 12, (tonic + 4) % 12, (tonic + 7) % 12]
    return tonic, np.isin(PITCHES % 12, classes)


def tonic_chord_pitches(grammar: Grammar, key: str) -> np.ndarray:
    """(88,) bool: the pitches a chord on the tonic may take at the grammar's step, written top
    down: the tonic triad's; only the tonic's once three voices are written, so that the lowest
    (the last written) is the tonic."""
    tonic, triad = tonic_triad(key)
    step = grammar.step
    written = sum(1 for n in grammar.notes[-8:] if n.start == step) + (grammar.pending_note() is not None)
    return triad & (PITCHES % 12 == tonic) if written >= 3 else triad


def on_tonic(grammar: Grammar, key: str | None) -> bool:
    """Whether what sounds at the grammar's current step is a root-position tonic triad of ``key``
    so far (True where there is no key to judge by)."""
    triad = tonic_triad(key)
    if triad is None:
        return True
    step = grammar.step
    chord = [n.pitch for n in grammar.notes if n.start <= step < n.end]
    if (pending := grammar.pending_note()) is not None:
        chord.append(pending.pitch)
    return bool(chord) and min(chord) % 12 == triad[0] and bool(triad[1][np.asarray(chord) - LOWEST_PIANO_PITCH].all())


def closing_chord_pitches(chord: list[int], key: str) -> np.ndarray:
    """(88,) bool: the pitches the next voice (down) of a harmonization's last chord may take, under
    ``chord`` (its pitches so far, the melody's first), so that it ends as Bach's do (92 % four voices,
    97 % with the third, the bass the tonic between C2 and G3): the tonic triad's, the third among
    the upper voices, the fourth voice the tonic in ``FINAL_BASS``, each leaving room for it."""
    tonic, triad = tonic_triad(key)
    lowest, highest = FINAL_BASS
    bass = (PITCHES % 12 == tonic) & (PITCHES >= lowest) & (PITCHES <= highest) & (PITCHES < min(chord))
    if len(chord) >= VOICES - 1 or not bass.any():
        return bass
    upper = triad & (PITCHES < min(chord)) & (PITCHES > PITCHES[bass].min())
    thirds = np.isin(PITCHES % 12, [(tonic + 3) % 12, (tonic + 4) % 12])
    if len(chord) == VOICES - 2 and not thirds[np.asarray(chord) - LOWEST_PIANO_PITCH].any():
        upper &= thirds  # the last upper voice: the third, if no voice has it yet
    return upper if upper.any() else bass  # no room for another upper voice: the bass


class CloseOnTonic:
    """A harmonization's last chord, at ``step`` (the melody's last note, which lasts until ``end``),
    as a chorale's:

    * no voice is held into it: a note begun under the melody before ``step`` ends by then;
    * its voices under the melody are the tonic triad's with its third, the lowest the tonic
      (``closing_chord_pitches``): the step closes only on a root-position tonic chord of four voices;
    * every voice holds until ``end``, and nothing moves after it.

    Where the rules leave no tonic chord (a dissonance they would resolve into another), the close
    wins over them; where the grammar leaves none, the grammar's mask is kept."""

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

    def _chord(self) -> list[int]:
        """The pitches written at the close so far, the one being read included."""
        grammar = self.grammar
        chord = [n.pitch for n in grammar.notes[-VOICES:] if n.start == self.step]
        if (pending := grammar.pending_note()) is not None and pending.start == self.step:
            chord.append(pending.pitch)
        return chord

    def _off_the_triad(self, chord: list[int]) -> bool:
        """Whether a note sounds at the close outside the tonic triad (one held from before, or the
        melody's own): then no tonic chord can be written there."""
        triad = tonic_triad(self.key)[1]
        held = [n.pitch for n in self.grammar.notes if n.start < self.step < n.end]
        return any(not triad[p - LOWEST_PIANO_PITCH] for p in held + chord[:1])

    def _only_duration(self, mask: np.ndarray, steps_left: int) -> None:
        """Let the run being read last ``steps_left`` more steps exactly: the duration word towards
        them and nothing else until then; after them, no more."""
        vocab = self.vocab
        if steps_left <= 0:
            mask[vocab.durations] = False
            return
        word = vocab.duration_id(min(steps_left, vocab.max_duration))
        if mask[word]:
            mask[:] = False
            mask[word] = True

    def legal_mask(self) -> np.ndarray:
        mask = self.inner.legal_mask()
        if self.key is None or not mask.any():
            return mask
        narrowed = self._narrowed(mask)
        if not narrowed.any() and self.inner is not self.grammar:  # the rules leave no tonic chord: it wins
            narrowed = self._narrowed(self.grammar.legal_mask())
        return narrowed if narrowed.any() and (narrowed != mask).any() else mask  # the mask itself: cached

    def _narrowed(self, mask: np.ndarray) -> np.ndarray:
        grammar, vocab = self.grammar, self.vocab
        kind, total = grammar.reading
        narrowed = mask.copy()
        if kind == "note" and grammar.step < self.step:  # no voice held into the last chord
            for steps in range(max(1, self.step - grammar.step - total + 1), vocab.max_duration + 1):
                narrowed[vocab.duration_id(steps)] = False
        elif self.end is not None and grammar.step >= self.step and kind is not None:  # held to the end
            self._only_duration(narrowed, self.end - grammar.step - total)
        onset = grammar.onset_of(LOWEST_PIANO_PITCH)
        if onset > self.step:  # nothing starts after the last chord
            narrowed[vocab.first_pitch_id : vocab.first_duration_id] = False
        chord = self._chord() if onset == self.step else []
        if chord and not self._off_the_triad(chord):
            pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
            if len(chord) >= VOICES:  # four voices: no fifth
                narrowed[pitches] = False
            elif (voice := closing_chord_pitches(chord, self.key)).any():  # the triad with its third, the tonic below
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
        vocab = self.vocab
        final = self.remaining <= FINAL_WORDS
        if not mask.any() or not (mask[vocab.end_id] or final):
            return mask
        narrowed = mask.copy()
        # END may close a phrase's chord on the tonic; at the very end, even with a dissonance unresolved
        allowed = (self.grammar.legal_mask() if final else mask)[vocab.end_id]
        narrowed[vocab.end_id] = allowed and (self.remaining <= 2 or (self._closing() and self._on_tonic()))
        if final and self._closing():
            narrowed[vocab.sep_id] = False  # this chord is the last
        if final and self._in_final_chord():  # it is the tonic triad, the tonic in the bass
            narrowed[vocab.first_pitch_id : vocab.first_duration_id] &= tonic_chord_pitches(
                self.grammar, self.grammar.key
            )
        elif final and vocab.phrase_id is not None and mask[vocab.phrase_id]:  # the next step ends the phrase
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
            if (tonic := self._tonic()) is not None and self.vocab.phrase_id is not None:
                pitches = slice(self.vocab.first_pitch_id, self.vocab.first_duration_id)
                steer[pitches] -= TRIAD_WEIGHT * progress * ~tonic[1]
        return steer
