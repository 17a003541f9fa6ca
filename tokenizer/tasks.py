"""Filling a gap and harmonizing a melody: the word sequences that teach them, and their grammar.

One model writes, continues, fills and harmonizes. A task is a prompt in the marker words
(``tokenizer/words.py``)::

    [HOLE <the piece after the gap>] [MELODY <its top line>] FILL <the piece before the gap>

and the model writes the gap's words next, then END: the gap follows the chord it continues, as
in the FIM paper's "SPM" order (Bavarian et al. 2022). The piece after the gap and the melody are
timed from the gap's start, so the model knows how long the gap is and where each melody note
falls. ``FillGrammar`` keeps the gap's words inside it (notes start from its first step to
before its last; the last gap word lands exactly on its end) and, given a melody, writes the
melody's notes as the top voice, exactly.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from tokenizer.errors import CantorError
from tokenizer.keys import KEYS
from tokenizer.notes import Note, NoteSequence
from tokenizer.words import FILL, HOLE, MELODY, StepGrammar, WordVocabulary, duration_run, step_words

AFTER_WORDS = 128  # at most this many words of the piece after the gap
MELODY_WORDS = 96  # at most this many words of the melody
LOOKAHEAD_QUARTERS = 8  # the melody may run this far past the gap's end
MAX_GAP_QUARTERS = 16  # the longest gap the shipped model was trained to fill


def top_line(piece: NoteSequence) -> tuple[list[Note], bool]:
    """The melody of a piece: at each onset, its highest new note when it is above every note
    still sounding, each cut where the next begins. Also whether anything was left out (the
    piece had more than one voice)."""
    notes = piece.normalized().notes
    melody: list[Note] = []
    sounding: list[Note] = []
    first = 0
    for index, note in enumerate(notes):
        if index + 1 < len(notes) and notes[index + 1].start == note.start:
            continue  # not the highest of its onset
        sounding = [n for n in sounding if n.end > note.start]
        if all(n.pitch < note.pitch for n in sounding):
            if melody and melody[-1].end > note.start:
                melody[-1] = melody[-1]._replace(duration=note.start - melody[-1].start)
            melody.append(note)
        sounding += notes[first : index + 1]
        first = index + 1
    return melody, len(melody) < len(notes)


def _before(notes: list[Note], step: int) -> list[Note]:
    return [n for n in notes if n.start < step]


def _between(notes: list[Note], start: int, end: int, shift: int = 0) -> list[Note]:
    return [n._replace(start=n.start - shift) for n in notes if start <= n.start < end]


def cut_at_step(ids: list[int], limit: int, vocab: WordVocabulary, keep_end: bool) -> list[int]:
    """At most ``limit`` of ``ids``: the first ones (``keep_end=False``) or the last ones, cut
    where a step begins (before a sepxx), so that no note is cut in two."""
    if len(ids) <= limit:
        return ids
    if keep_end:
        for first in range(len(ids) - limit, len(ids)):
            if ids[first] == vocab.sep_id:
                return ids[first:]
        return []
    for stop in range(limit, -1, -1):
        if stop < len(ids) and ids[stop] == vocab.sep_id:
            return ids[:stop]
    return []


@dataclass(frozen=True)
class Gap:
    """Where a gap lies in a piece, in steps: notes may start from ``start`` to before ``end``."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start < self.end:
            raise CantorError(f"a gap must run forward from step 0 on (got {self.start}-{self.end})")


def context_ids(
    notes: list[Note], gap: Gap, vocab: WordVocabulary, key: str | None = None, phrase_ends=()
) -> list[int]:
    """START, the key word (where the vocabulary has form words and the key is known) and the
    words of every note that starts before the gap, its phrase ends marked."""
    key_word = [vocab.key_id(key)] if vocab.form and key is not None else []
    return [vocab.start_id, *key_word, *step_words(_before(notes, gap.start), vocab, 0, phrase_ends)]


def gap_ids(notes: list[Note], gap: Gap, vocab: WordVocabulary, phrase_ends=()) -> list[int]:
    """The gap's words as the model writes them after FILL: its notes' steps continuing the
    piece before it, a last gap landing on its end, END."""
    before = _before(notes, gap.start)
    last_step = before[-1].start if before else 0
    inside = _between(notes, gap.start, gap.end)
    words = step_words(inside, vocab, last_step, phrase_ends)
    last_step = inside[-1].start if inside else last_step
    return [*words, vocab.sep_id, *duration_run(vocab, gap.end - last_step), vocab.end_id]


def fill_prompt(
    context: list[int],
    after: list[int] | None,
    melody: list[int] | None,
    vocab: WordVocabulary,
    budget: int,
) -> list[int]:
    """The prompt of a task: HOLE and the start of ``after``, MELODY and the start of ``melody``,
    FILL, then the end of ``context``; at most ``budget`` words (cut at steps; the after part and
    the melody take at most a third of it each)."""
    head: list[int] = []
    if after is not None:
        cap = min(AFTER_WORDS, budget // 3)
        head += [vocab.marker_id(HOLE), *cut_at_step(after, cap, vocab, keep_end=False)]
    if melody is not None:
        cap = min(MELODY_WORDS, budget // 3)
        head += [vocab.marker_id(MELODY), *cut_at_step(melody, cap, vocab, keep_end=False)]
    head.append(vocab.marker_id(FILL))
    room = budget - len(head)
    if room < 1:
        raise CantorError(f"the model's context ({budget} words) cannot hold this task")
    if len(context) > room:
        context = cut_at_step(context, room, vocab, keep_end=True)
    return [*head, *context]


def _shifted(steps, by: int) -> list[int]:
    return [step - by for step in steps]


def after_ids(notes: list[Note], gap: Gap, vocab: WordVocabulary, phrase_ends=()) -> list[int] | None:
    """The words of the piece after the gap, timed from the gap's start (its first gap word is
    at least as long as the gap), END included; None when nothing starts after the gap."""
    after = _between(notes, gap.end, max(n.end for n in notes) + 1, shift=gap.start)
    return [*step_words(after, vocab, 0, _shifted(phrase_ends, gap.start)), vocab.end_id] if after else None


def melody_ids(melody: list[Note], gap: Gap, until: int, vocab: WordVocabulary, phrase_ends=()) -> list[int]:
    """The words of the melody's notes that start from the gap's start to before ``until``,
    as if the piece began at the gap's start, its phrase ends (fermatas) marked."""
    return step_words(_between(melody, gap.start, until, shift=gap.start), vocab, 0, _shifted(phrase_ends, gap.start))


def training_example(
    piece: NoteSequence,
    vocab: WordVocabulary,
    rng: np.random.Generator,
    length: int,
    harmonize: bool,
) -> list[int]:
    """One task sequence from a (normalized) piece: a random gap of 2 to MAX_GAP_QUARTERS quarters
    on quarter lines, filled from both sides (``harmonize=False``) or from the left and the melody
    (True); at most ``length`` words. Half the melodies come without their fermatas, as a melody
    from a MIDI file would."""
    notes, steps_per_quarter, phrases = piece.notes, piece.steps_per_quarter, piece.phrase_ends
    end = max(n.end for n in notes)
    quarters = -(-end // steps_per_quarter)
    start = int(rng.integers(0, quarters)) * steps_per_quarter
    size = int(rng.integers(2, MAX_GAP_QUARTERS + 1)) * steps_per_quarter
    gap = Gap(start, min(start + size, end))
    middle = gap_ids(notes, gap, vocab, phrases)
    budget = max(length - len(middle), length // 2)
    context = context_ids(notes, gap, vocab, piece.key, phrases)
    if harmonize:
        melody, _ = top_line(piece)
        until = gap.end + int(rng.integers(0, LOOKAHEAD_QUARTERS + 1)) * steps_per_quarter
        marked = phrases if rng.random() < 0.5 else ()
        prompt = fill_prompt(context, None, melody_ids(melody, gap, until, vocab, marked), vocab, budget)
    else:
        prompt = fill_prompt(context, after_ids(notes, gap, vocab, phrases), None, vocab, budget)
    return (prompt + middle)[:length]


class FillGrammar(StepGrammar):
    """The steps grammar inside a gap, read after the piece before it (sealed).

    Notes start only from ``gap.start`` to before ``gap.end``; a gap word may not run past the
    end, and one landing on it is followed by END. With a ``melody`` (notes in steps, one at a
    time), each of its onsets inside the gap is a step whose first (top) note is the melody's
    pitch with the melody's duration, and every other step's notes lie below the melody note
    sounding then. The melody's own notes are never in question: this mask is the grammar's, so
    rules layered on top (``RuleConstraint``) step aside rather than refuse them. Given the melody's
    ``phrase_ends`` (its fermatas), a phrase ends only where the melody's does.
    """

    def __init__(
        self, vocab: WordVocabulary, gap: Gap, melody: list[Note] | None = None, phrase_ends: list[int] | None = None
    ) -> None:
        self.gap = gap
        self._phrase_ends = set(phrase_ends) if phrase_ends else None  # a melody's fermatas: phrases end there only
        melody = sorted(melody or [], key=lambda n: n.start)
        self._melody_starts = [n.start for n in melody]
        self._melody = melody
        super().__init__(vocab)

    def reset(self) -> None:
        super().reset()
        self._in_gap = False

    def seal(self) -> None:
        super().seal()
        self._in_gap = True

    def _melody_at(self, step: int) -> Note | None:
        """The melody note sounding at ``step``."""
        index = bisect.bisect_right(self._melody_starts, step) - 1
        if index >= 0 and self._melody[index].end > step:
            return self._melody[index]
        return None

    def _next_melody_onset(self, step: int) -> int:
        """The first melody onset after ``step`` inside the gap, else the gap's end."""
        index = bisect.bisect_right(self._melody_starts, step)
        if index < len(self._melody_starts) and self._melody_starts[index] < self.gap.end:
            return max(self._melody_starts[index], self.gap.start)
        return self.gap.end

    def _room_under_melody(self) -> int:
        """How long the note being read may last: until the first melody onset after it at or
        below its pitch (the voices never cross the melody)."""
        index = bisect.bisect_right(self._melody_starts, self.step)
        for note in self._melody[index:]:
            if note.pitch <= self._pitch:
                return note.start - self.step
        return 1 << 30

    def legal_mask(self) -> np.ndarray:
        base = super().legal_mask()
        if not self._in_gap or self.ended:
            return base
        vocab, gap = self.vocab, self.gap
        mask = base.copy()
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        mask[vocab.end_id] = False
        if vocab.form:  # the key was the context's to say; a phrase may end only inside the gap
            mask[vocab.phrase_id + 1 : vocab.phrase_id + 1 + len(KEYS)] = False
            land = self.step + self._run_total if self._run == "sep" else self.step
            closing = self._run != "sep" or self._run_total > 0
            mask[vocab.phrase_id] &= closing and gap.start <= land < gap.end
            if self._phrase_ends is not None:
                mask[vocab.phrase_id] &= land in self._phrase_ends
        if self._run == "note":
            melody = self._melody_at(self.step)
            if melody is not None and melody.start == self.step and melody.pitch == self._pitch:
                left = melody.duration - self._run_total  # the melody's note: its duration exactly
                mask[vocab.durations] = False
                if left > 0:
                    mask[vocab.duration_id(min(left, vocab.max_duration))] = True
                    mask[pitches] = False
                    mask[vocab.sep_id] = False
            elif self._melody:  # another voice's note: it ends before the melody comes down to it
                room = self._room_under_melody() - self._run_total
                for steps in range(max(1, room + 1), vocab.max_duration + 1):
                    mask[vocab.duration_id(steps)] = False
            return mask
        if self._run == "sep":
            land = self.step + self._run_total
            limit = self._next_melody_onset(self.step)
            for steps in range(1, vocab.max_duration + 1):
                closes_early = steps < vocab.max_duration and land + steps < gap.start
                if land + steps > limit or closes_early:
                    mask[vocab.duration_id(steps)] = False
            if self._run_total > 0 and land == gap.end:
                mask[vocab.end_id] = True
        onset = self.onset_of(0)
        if not gap.start <= onset < gap.end or (self._run == "sep" and self._run_total == 0):
            mask[pitches] = False
            return mask
        if self._run == "sep" or self._last_in_step is None:  # the step's first (top) note
            melody = self._melody_at(onset)
            if melody is not None:
                allowed = np.zeros(mask[pitches].shape, dtype=bool)
                if melody.start == onset:
                    allowed[vocab.pitch_id(melody.pitch) - vocab.first_pitch_id] = True
                else:
                    allowed[: vocab.pitch_id(melody.pitch) - vocab.first_pitch_id] = True
                mask[pitches] &= allowed
        return mask


class FullTexture:
    """A harmonization's lean to four voices: after a note, while fewer than ``voices`` notes sound
    at its step, moving on to the next step (sepxx) is weighed down by ``weight`` nats. Bach's
    chorales sound four voices 87 % of the time; harmonizations of folk tunes, three in a quarter
    of theirs (``bench.quality --sets harmonize_folk``)."""

    def __init__(self, inner, voices: int = 4, weight: float = 1.5) -> None:
        self.inner, self.voices, self.weight = inner, voices, weight
        self.grammar = getattr(inner, "grammar", inner)

    def reset(self) -> None:
        self.inner.reset()

    def advance(self, word_id: int) -> None:
        self.inner.advance(word_id)

    def legal_mask(self) -> np.ndarray:
        return self.inner.legal_mask()

    def logit_bias(self) -> np.ndarray | None:
        bias = self.inner.logit_bias()
        grammar = self.grammar
        kind, total = grammar.reading
        if kind != "note" or total == 0:  # sepxx may follow only a note's duration
            return bias
        step = grammar.step
        sounding = sum(1 for n in grammar.notes[-4 * self.voices :] if n.start <= step < n.end) + 1  # + this note
        if sounding >= self.voices:
            return bias
        steer = np.zeros(grammar.vocab.size, dtype=np.float32) if bias is None else bias.copy()
        steer[grammar.vocab.sep_id] -= self.weight
        return steer
