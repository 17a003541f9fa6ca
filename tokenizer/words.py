"""The word vocabulary of the word model, its canonical encoding and its grammar.

Words
-----
``START``, ``END``, ``n21``..``n108`` (pitch), ``d1``..``dMAX`` (duration in steps) and ``sepxx``.

How a piece is written
----------------------
A piece is read left to right as a list of *steps*: the moments at which notes start.

* Each note is a pitch word followed by its duration run. A duration longer than dMAX is split
  into a run of duration words that add up: every word but the last is ``dMAX``
  (``n60 d16 d4`` is a note of 20 steps when dMAX = 16).
* Notes that start at the same step are written in strictly ascending pitch order.
* Time moves forward in one of two ways:

  - **implicitly**: a pitch word that is *not higher* than the pitch before it opens a new step
    at the next moment any sounding note ends (the earliest end, after the current step,
    of every note written so far);
  - **explicitly**: ``sepxx`` followed by a duration run moves time forward by that many steps.
    A rest at the start of the piece is written this way too.

* The encoder moves time implicitly whenever that lands on the next step (the gap equals the
  distance to the next note end, and the next step's lowest pitch is not higher than the current
  step's highest), and explicitly otherwise. The grammar forbids the explicit form where the
  implicit one applies, so every piece has exactly one word sequence.

The seed's example ``START n60 d5 n62 d3 sepxx d2 n65 d4 END`` is legal: the chord n60/n62 at
step 0, then a gap of 2 steps (not the 3 steps to the next note end, so it is explicit), then n65.
In four-voice chorales almost every chord follows the previous one implicitly, which is why
the encoding costs just over two words per note.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from tokenizer.errors import CantorError
from tokenizer.notes import (
    DEFAULT_VELOCITY,
    HIGHEST_PIANO_PITCH,
    LOWEST_PIANO_PITCH,
    Note,
    NoteSequence,
)

START, END, SEP = "START", "END", "sepxx"
PITCHES = range(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)


@dataclass(frozen=True)
class WordVocabulary:
    """Word <-> id tables. Ids: START=0, END=1, sepxx=2, then pitches, then durations d1..dMAX."""

    max_duration: int = 16
    words: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.max_duration < 1:
            raise ValueError("max_duration must be at least 1 step")
        words = (START, END, SEP, *(f"n{p}" for p in PITCHES), *tuple(f"d{d}" for d in range(1, self.max_duration + 1)))
        object.__setattr__(self, "words", words)

    @property
    def size(self) -> int:
        return len(self.words)

    start_id: ClassVar[int] = 0
    end_id: ClassVar[int] = 1
    sep_id: ClassVar[int] = 2

    @property
    def first_pitch_id(self) -> int:
        return 3

    @property
    def first_duration_id(self) -> int:
        return 3 + len(PITCHES)

    def pitch_id(self, pitch: int) -> int:
        return self.first_pitch_id + pitch - LOWEST_PIANO_PITCH

    def duration_id(self, steps: int) -> int:
        return self.first_duration_id + steps - 1

    def is_pitch(self, word_id: int) -> bool:
        return self.first_pitch_id <= word_id < self.first_duration_id

    def is_duration(self, word_id: int) -> bool:
        return self.first_duration_id <= word_id < self.size

    def pitch_of(self, word_id: int) -> int:
        return word_id - self.first_pitch_id + LOWEST_PIANO_PITCH

    def duration_of(self, word_id: int) -> int:
        return word_id - self.first_duration_id + 1

    def ids(self, words: list[str] | str) -> list[int]:
        """Word ids of a list of words, or of the text form (words separated by spaces)."""
        if isinstance(words, str):
            words = words.split()
        lookup = {w: i for i, w in enumerate(self.words)}
        try:
            return [lookup[w] for w in words]
        except KeyError as missing:
            raise CantorError(f"{missing.args[0]!r} is not a word of this vocabulary") from None

    def text(self, ids: list[int]) -> str:
        """The text form: words separated by single spaces."""
        return " ".join(self.words[i] for i in ids)

    def to_json(self) -> dict:
        return {"max_duration": self.max_duration, "words": list(self.words)}

    @classmethod
    def from_json(cls, data: dict) -> WordVocabulary:
        vocab = cls(max_duration=int(data["max_duration"]))
        if list(vocab.words) != list(data.get("words", vocab.words)):
            raise CantorError("the vocabulary's words differ from this version of Cantor's")
        return vocab


def _duration_run(vocab: WordVocabulary, steps: int) -> list[int]:
    """Ids of the duration words that add up to ``steps``: dMAX ... dMAX d(rest)."""
    full, rest = divmod(steps - 1, vocab.max_duration)
    return [vocab.duration_id(vocab.max_duration)] * full + [vocab.duration_id(rest + 1)]


def encode(piece: NoteSequence, vocab: WordVocabulary) -> list[int]:
    """The canonical word ids of ``piece`` (normalized first), START ... END.

    Raises CantorError for a piece with no notes or notes outside the piano range 21-108.
    Velocities are not encoded.
    """
    notes = piece.normalized().notes
    if not notes:
        raise CantorError(f"{piece.name or 'piece'}: no notes to encode")
    outside = sum(not (LOWEST_PIANO_PITCH <= n.pitch <= HIGHEST_PIANO_PITCH) for n in notes)
    if outside:
        raise CantorError(f"{piece.name or 'piece'}: {outside} notes outside the piano range 21-108")
    ids = [vocab.start_id]
    ends: list[int] = []  # heap of end steps of the notes written so far
    step = 0
    highest_in_step: int | None = None
    i = 0
    while i < len(notes):
        start = notes[i].start
        j = i
        while j < len(notes) and notes[j].start == start:
            j += 1
        if highest_in_step is None:
            if start > 0:
                ids.append(vocab.sep_id)
                ids += _duration_run(vocab, start)
        else:
            while ends[0] <= step:
                heapq.heappop(ends)
            implicit = start - step == ends[0] - step and notes[i].pitch <= highest_in_step
            if not implicit:
                ids.append(vocab.sep_id)
                ids += _duration_run(vocab, start - step)
        step = start
        for note in notes[i:j]:
            ids.append(vocab.pitch_id(note.pitch))
            ids += _duration_run(vocab, note.duration)
            heapq.heappush(ends, note.end)
        highest_in_step = notes[j - 1].pitch
        i = j
    ids.append(vocab.end_id)
    return ids


class WordGrammar:
    """Reads word ids one at a time; knows the legal next words and the notes written so far.

    The decoder and the sampler's mask are the same state machine, so every sequence the
    sampler can produce decodes, and every sequence that decodes is canonical.
    """

    def __init__(self, vocab: WordVocabulary) -> None:
        self.vocab = vocab
        self._masks: dict[tuple, np.ndarray] = {}
        self.reset()

    def reset(self) -> None:
        self.started = False
        self.ended = False
        self.step = 0
        self.notes: list[Note] = []
        self._ends: list[int] = []
        self._highest_in_step: int | None = None  # None: the current step has no notes yet
        self._highest_before_sep: int | None = None
        self._run: str | None = None  # "note" or "sep": the duration run being read
        self._run_total = 0
        self._run_open = False  # True after a dMAX word: another duration word may follow
        self._pitch = 0
        self._implicit_gap: int | None = None  # at a sepxx: the gap an implicit step would make

    # -- reading words -------------------------------------------------------------------------
    def advance(self, word_id: int) -> None:
        """Read one word; raises CantorError if it is not legal here."""
        if not self.legal_mask()[word_id]:
            raise CantorError(f"{self.vocab.words[word_id]!r} cannot follow here")
        vocab = self.vocab
        if word_id == vocab.start_id:
            self.started = True
        elif vocab.is_duration(word_id):
            steps = vocab.duration_of(word_id)
            self._run_total += steps
            self._run_open = steps == vocab.max_duration
        elif vocab.is_pitch(word_id):
            self._close_run()
            pitch = vocab.pitch_of(word_id)
            if self._highest_in_step is not None and pitch <= self._highest_in_step:
                self.step = self._next_note_end()
            self._highest_in_step = pitch
            self._start_run("note")
            self._pitch = pitch
        elif word_id == vocab.sep_id:
            self._close_run()
            self._implicit_gap = self._next_note_end() - self.step if self._ends else None
            self._highest_before_sep = self._highest_in_step
            self._start_run("sep")
        elif word_id == vocab.end_id:
            self._close_run()
            self.ended = True

    def _start_run(self, kind: str) -> None:
        self._run, self._run_total, self._run_open = kind, 0, True

    def _close_run(self) -> None:
        if self._run == "note":
            self.notes.append(Note(self._pitch, self.step, self._run_total, DEFAULT_VELOCITY))
            heapq.heappush(self._ends, self.step + self._run_total)
        elif self._run == "sep":
            self.step += self._run_total
            self._highest_in_step = None
        self._run = None

    def _next_note_end(self) -> int:
        while self._ends[0] <= self.step:
            heapq.heappop(self._ends)
        return self._ends[0]

    def seal(self) -> None:
        """Treat the words so far as final (a primer): its last note may not be lengthened.

        After sealing, the next word starts a note or a gap; END must wait for a new note.
        """
        if self._run == "note" and self._run_total > 0:
            self._close_run()

    def pending_note(self) -> Note | None:
        """The note whose duration run is still being read, with the duration read so far."""
        if self._run == "note" and self._run_total > 0:
            return Note(self._pitch, self.step, self._run_total, DEFAULT_VELOCITY)
        return None

    # -- legal next words ----------------------------------------------------------------------
    def legal_mask(self) -> np.ndarray:
        """Boolean mask over word ids: True where the word may come next. Read-only."""
        if not self.started:
            key: tuple = ("start",)
        elif self.ended:
            key = ("none",)
        elif self._run is None:
            key = ("first",)
        elif self._run == "note":
            key = ("durations", None) if self._run_total == 0 else ("after_note", self._run_open)
        elif self._run_total == 0:
            key = ("durations", self._dead_end_duration())
        else:
            constrained = self._highest_before_sep is not None and (self._run_total == self._implicit_gap)
            highest = self._highest_before_sep if constrained else None
            key = ("after_sep", self._run_open, highest, self._dead_end_duration())
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = self._build_mask(key)
        return mask

    def _dead_end_duration(self) -> int | None:
        """The duration word that would close a sepxx run with no legal pitch after it.

        An explicit gap equal to the implicit one must be followed by a pitch above the last
        step's highest; when that was n108 there is none, so the word closing that gap is barred.
        """
        if self._highest_before_sep != HIGHEST_PIANO_PITCH or self._implicit_gap is None:
            return None
        remaining = self._implicit_gap - self._run_total
        return remaining if 1 <= remaining < self.vocab.max_duration else None

    def _build_mask(self, key: tuple) -> np.ndarray:
        vocab = self.vocab
        mask = np.zeros(vocab.size, dtype=bool)
        pitches = slice(vocab.first_pitch_id, vocab.first_duration_id)
        durations = slice(vocab.first_duration_id, vocab.size)
        kind = key[0]
        if kind == "start":
            mask[vocab.start_id] = True
        elif kind == "first":
            mask[pitches] = True
            mask[vocab.sep_id] = True
        elif kind == "durations":
            mask[durations] = True
        elif kind == "after_note":
            mask[durations] = key[1]
            mask[pitches] = True
            mask[vocab.sep_id] = True
            mask[vocab.end_id] = True
        elif kind == "after_sep":
            mask[durations] = key[1]
            lowest_allowed = LOWEST_PIANO_PITCH if key[2] is None else key[2] + 1
            mask[vocab.pitch_id(min(lowest_allowed, HIGHEST_PIANO_PITCH + 1)) : pitches.stop] = True
        if kind in ("durations", "after_sep") and key[-1] is not None:
            mask[vocab.duration_id(key[-1])] = False
        mask.flags.writeable = False
        return mask


def decode(ids: list[int], vocab: WordVocabulary, partial: bool = False, **piece_fields) -> NoteSequence:
    """The NoteSequence written by word ids ``ids``.

    With ``partial=False`` the ids must be a whole piece (START ... END). With ``partial=True``
    any legal prefix decodes to the notes complete so far, plus the note being written.
    ``piece_fields`` (steps_per_quarter, tempos, time_signature, name) pass to the NoteSequence.
    """
    grammar = WordGrammar(vocab)
    for position, word_id in enumerate(ids):
        if not 0 <= word_id < vocab.size:
            raise CantorError(f"word id {word_id} at position {position} is not in the vocabulary")
        try:
            grammar.advance(int(word_id))
        except CantorError as err:
            raise CantorError(f"word {position}: {err}") from None
    notes = list(grammar.notes)
    if not grammar.ended:
        if not partial:
            raise CantorError("the words end before END")
        if (pending := grammar.pending_note()) is not None:
            notes.append(pending)
    notes.sort(key=lambda n: (n.start, n.pitch))
    return NoteSequence(notes=notes, **piece_fields)


class NoteStream:
    """Notes from word ids as they stream in, after an optional primer.

    Several pieces may follow one another (END, then START): each is laid after the last.
    ``primer_notes`` are the primer's; ``generated_notes`` everything written after it,
    including the note whose duration is still being read.
    """

    def __init__(self, vocab: WordVocabulary, primer_ids: list[int] | None = None) -> None:
        self.vocab = vocab
        self.grammar = WordGrammar(vocab)
        for word_id in primer_ids or [vocab.start_id]:
            self.grammar.advance(word_id)
        self.grammar.seal()
        self._primer_count = len(self.grammar.notes)
        self._earlier: list[Note] = []  # notes of pieces already ENDed, in place
        self._offset = 0

    def feed(self, word_id: int) -> None:
        """Read one new word; CantorError if it is not legal here."""
        if word_id == self.vocab.start_id and self.grammar.ended:
            self._earlier += [n._replace(start=n.start + self._offset) for n in self.grammar.notes]
            self._offset = max((n.end for n in self._earlier), default=0)
            self.grammar.reset()
        self.grammar.advance(word_id)

    @property
    def primer_notes(self) -> list[Note]:
        notes = self._earlier if self._earlier else self.grammar.notes
        return notes[: self._primer_count]

    @property
    def generated_notes(self) -> list[Note]:
        current = list(self.grammar.notes)
        if (pending := self.grammar.pending_note()) is not None:
            current.append(pending)
        current = [n._replace(start=n.start + self._offset) for n in current]
        notes = (self._earlier + current)[self._primer_count :]
        return sorted(notes, key=lambda n: (n.start, n.pitch))


def is_legal(ids: list[int], vocab: WordVocabulary) -> bool:
    """True when ``ids`` is a legal prefix of a piece."""
    grammar = WordGrammar(vocab)
    for word_id in ids:
        if not 0 <= word_id < vocab.size or not grammar.legal_mask()[word_id]:
            return False
        grammar.advance(word_id)
    return True


def text_lines(pieces_ids: list[list[int]], vocab: WordVocabulary) -> str:
    """The text form of several pieces: one piece per line."""
    return "".join(vocab.text(ids) + "\n" for ids in pieces_ids)


def parse_text_lines(text: str, vocab: WordVocabulary) -> list[list[int]]:
    """Word ids of each non-empty line of a text form."""
    return [vocab.ids(line) for line in text.splitlines() if line.strip()]
