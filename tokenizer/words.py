"""The word vocabulary of the word model, its canonical encoding and its grammar.

Words
-----
``START``, ``END``, ``n21``..``n108`` (pitch), ``d1``..``dMAX`` (duration in steps) and ``sepxx``.

How a piece is written
----------------------
A piece is read left to right as a list of *steps*: the moments at which notes start. Each note
is a pitch word followed by its duration run. A duration longer than dMAX is split into a run of
duration words that add up: every word but the last is ``dMAX`` (``n60 d16 d4`` is a note of
20 steps when dMAX = 16). ``sepxx`` followed by a duration run moves time forward by that many
steps; a rest at the start of the piece is written this way too. Two encodings order these words
(the vocabulary says which one a dataset and a checkpoint use):

**steps** (explicit time, the melody first). Every step after the first is announced by
``sepxx dN``, N the steps since the previous one; the notes of a step are written in strictly
descending pitch order, so the top voice comes first and the bass last::

    START n72 d4 n67 d4 n64 d8 n48 d8 sepxx d4 n74 d4 n65 d4 END

**implicit** (the seed's; time is implied, fewer words). Notes of a step are written in strictly
ascending pitch order, and time moves forward in one of two ways:

* implicitly: a pitch word that is *not higher* than the pitch before it opens a new step at the
  next moment any sounding note ends (the earliest end, after the current step, of every note
  written so far);
* explicitly: ``sepxx`` and a duration run, where the implicit move would not land on the next
  step (the gap differs from the distance to the next note end, or the next step's lowest pitch
  is higher than the current step's highest). The grammar forbids the explicit form where the
  implicit one applies, so every piece has exactly one word sequence.

  The seed's example ``START n60 d5 n62 d3 sepxx d2 n65 d4 END`` is legal: the chord n60/n62 at
  step 0, then a gap of 2 steps (not the 3 steps to the next note end, so it is explicit), then
  n65. In four-voice chorales almost every chord follows the previous one implicitly, which is
  why this encoding costs just over two words per note; but the model must add up every
  sounding note's duration to know where the next step is.

Both encodings round-trip exactly, and each has a grammar (``word_grammar``) that is both the
decoder and the sampler's mask.

Marker words (a vocabulary with ``tasks``)
------------------------------------------
``HOLE``, ``MELODY`` and ``FILL`` let one model harmonize a melody and fill a gap in a piece as
well as write and continue (steps encoding only; ``tokenizer/tasks.py`` builds the sequences)::

    [HOLE <the piece after the gap>] [MELODY <its melody>] FILL <the piece before the gap> <the gap> END

The gap's words continue the piece before it; its last gap word lands on the gap's end, then END.
What follows HOLE is the rest of the piece and what follows MELODY its top line (which may run past
the gap's end, so the model knows where the tune is going), each written as if the piece began at
the gap's start.

Form words (a vocabulary with ``form``)
---------------------------------------
``PHRASE`` and the 24 key words ``key:C`` .. ``key:B`` (major) and ``key:Cm`` .. ``key:Bm``
(minor) carry what a chorale is beyond its bars (steps encoding only):

* a key word, right after START, says the key the piece is in (``NoteSequence.key``); a piece
  whose key is unknown has none. The sampler draws it as any word, so the model's keys follow
  those it was trained on, or the studio writes it to ask for a key;
* ``PHRASE`` opens a step that ends a phrase (the chord under a fermata; ``NoteSequence.
  phrase_ends``): it comes after the step's ``sepxx dN`` (or right after START) and before its
  top note, so the model decides on a cadence before it writes the chord::

    START key:D n74 d4 n69 d4 n66 d4 n50 d4 sepxx d4 PHRASE n73 d8 n69 d8 n64 d8 n57 d8 END

A MIDI file has no fermatas: its words simply hold no PHRASE.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from tokenizer.errors import CantorError
from tokenizer.keys import KEYS
from tokenizer.notes import (
    DEFAULT_VELOCITY,
    HIGHEST_PIANO_PITCH,
    LOWEST_PIANO_PITCH,
    Note,
    NoteSequence,
)

START, END, SEP = "START", "END", "sepxx"
PITCHES = range(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH + 1)
ENCODINGS = ("steps", "implicit")
MAX_DURATION_LIMIT = 256  # dMAX: the longest duration word a vocabulary may have, in steps
MAX_WORDS = 200_000  # a piece: the longest real ones (20,000 notes) take about 50,000
HOLE, MELODY, FILL = "HOLE", "MELODY", "FILL"
MARKERS = (HOLE, MELODY, FILL)
PHRASE = "PHRASE"
KEY_WORDS = tuple(f"key:{key.split()[0]}{'m' if key.endswith('minor') else ''}" for key in KEYS)  # as KEYS


@dataclass(frozen=True)
class WordVocabulary:
    """Word <-> id tables. Ids: START=0, END=1, sepxx=2, then pitches, then durations d1..dMAX.

    ``encoding`` names the order the words of a piece are written in (see the module's docstring);
    the words themselves are the same in both. ``tasks`` adds the marker words after d1..dMAX,
    ``form`` then PHRASE and the key words."""

    max_duration: int = 16
    encoding: str = "implicit"
    tasks: bool = False
    form: bool = False
    words: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        if self.max_duration < 1:
            raise ValueError("max_duration must be at least 1 step")
        if self.encoding not in ENCODINGS:
            raise ValueError(f"unknown encoding {self.encoding!r}; Cantor knows {', '.join(ENCODINGS)}")
        if (self.tasks or self.form) and self.encoding != "steps":
            raise ValueError("the marker and form words need the steps encoding")
        words = (START, END, SEP, *(f"n{p}" for p in PITCHES), *tuple(f"d{d}" for d in range(1, self.max_duration + 1)))
        words += MARKERS if self.tasks else ()
        object.__setattr__(self, "words", words + ((PHRASE, *KEY_WORDS) if self.form else ()))

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

    @property
    def durations(self) -> slice:
        """The ids of d1..dMAX."""
        return slice(self.first_duration_id, self.first_duration_id + self.max_duration)

    def marker_id(self, marker: str) -> int:
        """The id of HOLE, MELODY or FILL; CantorError where the vocabulary has no marker words."""
        if not self.tasks:
            raise CantorError("this vocabulary has no marker words (the model was not trained to harmonize or fill)")
        return self.durations.stop + MARKERS.index(marker)

    @property
    def phrase_id(self) -> int | None:
        """The id of PHRASE; None where the vocabulary has no form words."""
        return self.durations.stop + len(MARKERS) * self.tasks if self.form else None

    def key_id(self, key: str) -> int:
        """The id of the key word of ``key`` ("D major"); CantorError without form words."""
        if not self.form:
            raise CantorError("this vocabulary has no key words (the model was not trained with them)")
        return self.phrase_id + 1 + KEYS.index(key)

    def is_key(self, word_id: int) -> bool:
        return self.form and 0 < word_id - self.phrase_id <= len(KEYS)

    def key_of(self, word_id: int) -> str:
        return KEYS[word_id - self.phrase_id - 1]

    def pitch_id(self, pitch: int) -> int:
        return self.first_pitch_id + pitch - LOWEST_PIANO_PITCH

    def duration_id(self, steps: int) -> int:
        return self.first_duration_id + steps - 1

    def is_pitch(self, word_id: int) -> bool:
        return self.first_pitch_id <= word_id < self.first_duration_id

    def is_duration(self, word_id: int) -> bool:
        return self.first_duration_id <= word_id < self.durations.stop

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
        return {
            "max_duration": self.max_duration,
            "encoding": self.encoding,
            "tasks": self.tasks,
            "form": self.form,
            "words": list(self.words),
        }

    @classmethod
    def from_json(cls, data: object) -> WordVocabulary:
        """The vocabulary a dataset or a checkpoint names; CantorError for anything else."""
        if not isinstance(data, dict):
            raise CantorError("no word vocabulary is given")
        max_duration = data.get("max_duration")
        if type(max_duration) is not int or not 1 <= max_duration <= MAX_DURATION_LIMIT:
            raise CantorError(f"the vocabulary's max_duration must be a whole number 1-{MAX_DURATION_LIMIT}")
        encoding = data.get("encoding", "implicit")  # files written before the steps encoding
        if encoding not in ENCODINGS:
            raise CantorError(f"the words are in an encoding ({encoding!r}) this version of Cantor does not know")
        tasks = data.get("tasks", False)  # files written before the marker words
        if type(tasks) is not bool or (tasks and encoding != "steps"):
            raise CantorError("the vocabulary's tasks flag must be true or false, and true only in the steps encoding")
        form = data.get("form", False)  # files written before the form words
        if type(form) is not bool or (form and encoding != "steps"):
            raise CantorError("the vocabulary's form flag must be true or false, and true only in the steps encoding")
        vocab = cls(max_duration=max_duration, encoding=encoding, tasks=tasks, form=form)
        if list(vocab.words) != list(data.get("words", vocab.words)):
            raise CantorError("the vocabulary's words differ from this version of Cantor's")
        return vocab


def duration_run(vocab: WordVocabulary, steps: int) -> list[int]:
    """Ids of the duration words that add up to ``steps``: dMAX ... dMAX d(rest)."""
    full, rest = divmod(steps - 1, vocab.max_duration)
    return [vocab.duration_id(vocab.max_duration)] * full + [vocab.duration_id(rest + 1)]


def encode(piece: NoteSequence, vocab: WordVocabulary) -> list[int]:
    """The canonical word ids of ``piece`` (normalized first), START ... END, in the
    vocabulary's encoding.

    Raises CantorError for a piece with no notes or notes outside the piano range 21-108.
    Velocities are not encoded; the key and the phrase ends are where the vocabulary has form words.
    """
    piece = piece.normalized()
    notes = piece.notes
    if not notes:
        raise CantorError(f"{piece.name or 'piece'}: no notes to encode")
    outside = sum(not (LOWEST_PIANO_PITCH <= n.pitch <= HIGHEST_PIANO_PITCH) for n in notes)
    if outside:
        raise CantorError(f"{piece.name or 'piece'}: {outside} notes outside the piano range 21-108")
    words = 2 + sum(1 + -(-n.duration // vocab.max_duration) for n in notes)  # at least this many
    if words > MAX_WORDS:
        raise CantorError(
            f"{piece.name or 'piece'}: its notes alone would take {words:,} words, more than Cantor "
            f"writes for one piece ({MAX_WORDS:,}); is there a stuck note?"
        )
    steps = [notes[i:j] for i, j in _step_bounds(notes)]
    if vocab.encoding == "implicit":
        return [vocab.start_id, *_encode_implicit(steps, vocab), vocab.end_id]
    key = [vocab.key_id(piece.key)] if vocab.form and piece.key is not None else []
    return [vocab.start_id, *key, *_encode_steps(steps, vocab, 0, piece.phrase_ends), vocab.end_id]


def step_words(notes: list[Note], vocab: WordVocabulary, previous: int = 0, phrase_ends=()) -> list[int]:
    """The steps encoding's words of ``notes`` (sorted by start, then pitch, one per start and
    pitch), without START or END; the first step is announced by a gap from step ``previous``.
    A step in ``phrase_ends`` is marked PHRASE where the vocabulary has form words."""
    return _encode_steps([notes[i:j] for i, j in _step_bounds(notes)], vocab, previous, phrase_ends)


def _step_bounds(notes: list[Note]) -> list[tuple[int, int]]:
    """(first, end) indices of each run of notes that start together (notes sorted by start)."""
    bounds, first = [], 0
    for i in range(1, len(notes) + 1):
        if i == len(notes) or notes[i].start != notes[first].start:
            bounds.append((first, i))
            first = i
    return bounds


def _encode_steps(steps: list[list[Note]], vocab: WordVocabulary, previous: int = 0, phrase_ends=()) -> list[int]:
    """The steps encoding's words of ``steps``, the first announced from step ``previous``."""
    ids: list[int] = []
    phrase_ends = set(phrase_ends) if vocab.form else set()
    for chord in steps:
        if chord[0].start > previous:  # every step but one at step 0
            ids.append(vocab.sep_id)
            ids += duration_run(vocab, chord[0].start - previous)
        previous = chord[0].start
        if previous in phrase_ends:
            ids.append(vocab.phrase_id)
        for note in reversed(chord):  # the top voice first
            ids.append(vocab.pitch_id(note.pitch))
            ids += duration_run(vocab, note.duration)
    return ids


def _encode_implicit(steps: list[list[Note]], vocab: WordVocabulary) -> list[int]:
    ids: list[int] = []
    ends: list[int] = []  # heap of end steps of the notes written so far
    step = 0
    for index, chord in enumerate(steps):
        start = chord[0].start
        if index == 0:
            implicit = start == 0
        else:
            while ends[0] <= step:
                heapq.heappop(ends)
            implicit = start == ends[0] and chord[0].pitch <= steps[index - 1][-1].pitch
        if not implicit:
            ids.append(vocab.sep_id)
            ids += duration_run(vocab, start - step)
        step = start
        for note in chord:
            ids.append(vocab.pitch_id(note.pitch))
            ids += duration_run(vocab, note.duration)
            heapq.heappush(ends, note.end)
    return ids


class Grammar:
    """Reads word ids one at a time; knows the legal next words and the notes written so far.

    The decoder and the sampler's mask are the same state machine, so every sequence the
    sampler can produce decodes, and every sequence that decodes is canonical. What both
    encodings share lives here; ``StepGrammar`` and ``ImplicitGrammar`` say where a pitch word
    starts its note and which words may come next.
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
        self._ends: list[int] = []  # heap of the end steps of the notes written so far
        self._run: str | None = None  # "note" or "sep": the duration run being read
        self._run_total = 0
        self._run_open = False  # True after a dMAX word: another duration word may follow
        self._pitch = 0
        self._last_in_step: int | None = None  # the step's last pitch; None: the step has no notes yet
        self.key: str | None = None  # from a key word
        self.phrase_ends: list[int] = []  # the steps marked PHRASE
        self._fresh = False  # True right after START: a key word may come
        self._phrase_open = False  # True after PHRASE, until the step's top note

    # -- reading words -------------------------------------------------------------------------
    def advance(self, word_id: int) -> None:
        """Read one word; raises CantorError if it is not legal here."""
        if not self.legal_mask()[word_id]:
            raise CantorError(f"{self.vocab.words[word_id]!r} cannot follow here")
        vocab = self.vocab
        fresh, self._fresh = self._fresh, False
        if word_id == vocab.start_id:
            self.started = self._fresh = True
        elif vocab.is_key(word_id):
            self.key = vocab.key_of(word_id)
            self._fresh = fresh  # PHRASE may still follow
        elif word_id == vocab.phrase_id:
            self._close_run()
            self.phrase_ends.append(self.step)
            self._phrase_open = True
        elif vocab.is_duration(word_id):
            steps = vocab.duration_of(word_id)
            self._run_total += steps
            self._run_open = steps == vocab.max_duration
        elif vocab.is_pitch(word_id):
            self._close_run()
            self._phrase_open = False
            pitch = vocab.pitch_of(word_id)
            self.step = self.onset_of(pitch)
            self._last_in_step = pitch
            self._start_run("note")
            self._pitch = pitch
        elif word_id == vocab.sep_id:
            self._close_run()
            self._at_sep()
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
            self._last_in_step = None
        self._run = None

    def _at_sep(self) -> None:
        """What an encoding notes when a sepxx begins."""

    def _next_note_end(self) -> int:
        while self._ends[0] <= self.step:
            heapq.heappop(self._ends)
        return self._ends[0]

    def onset_of(self, pitch: int) -> int:
        """The step at which a pitch word read now would start its note."""
        if self._run == "sep":
            return self.step + self._run_total
        return self._onset_in_step(pitch)

    def _onset_in_step(self, pitch: int) -> int:
        return self.step

    @property
    def in_phrase_end(self) -> bool:
        """True once the step PHRASE announced has a note: its chord is being written."""
        return bool(self.phrase_ends) and self.phrase_ends[-1] == self.step and self._last_in_step is not None

    @property
    def reading(self) -> tuple[str | None, int]:
        """What the duration words being read belong to ("note", "sep", or None between runs) and
        the steps they add up to so far."""
        return self._run, self._run_total

    @property
    def in_gap(self) -> bool:
        """True while a sepxx run is read: a duration word may end it and move time on."""
        return self._run == "sep"

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
    def logit_bias(self) -> None:
        """The grammar weighs no word above another (see models.sampling.Constraint)."""
        return None

    def legal_mask(self) -> np.ndarray:
        """Boolean mask over word ids: True where the word may come next. Read-only."""
        if not self.started:
            key: tuple = ("start",)
        elif self.ended:
            key = ("none",)
        else:
            key = self._state_key()
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = self._build_mask(key)
        return mask

    def _state_key(self) -> tuple:
        """The key of the legal words after START: the masks of equal keys are shared."""
        raise NotImplementedError

    def _build_mask(self, key: tuple) -> np.ndarray:
        vocab = self.vocab
        mask = np.zeros(vocab.size, dtype=bool)
        kind = key[0]
        if kind == "start":
            mask[vocab.start_id] = True
        elif kind != "none":
            self._build_run_mask(key, mask)
        mask.flags.writeable = False
        return mask

    def _build_run_mask(self, key: tuple, mask: np.ndarray) -> None:
        raise NotImplementedError

    def _pitch_ids(self, lowest: int = LOWEST_PIANO_PITCH, highest: int = HIGHEST_PIANO_PITCH) -> slice:
        """The ids of the pitch words from ``lowest`` to ``highest`` (empty when lowest > highest)."""
        lowest, highest = max(lowest, LOWEST_PIANO_PITCH), min(highest, HIGHEST_PIANO_PITCH)
        return slice(self.vocab.pitch_id(lowest), self.vocab.pitch_id(max(highest, lowest - 1)) + 1)


class StepGrammar(Grammar):
    """The steps encoding: ``sepxx dN`` before every step after the first, notes top down."""

    def _state_key(self) -> tuple:
        if self._phrase_open:
            return ("phrase",)
        if self._run is None:  # after START, or after a sealed primer
            fresh = self._fresh and self.key is None and not self.phrase_ends
            return ("first", self._last_in_step, fresh)
        if self._run_total == 0:
            return ("durations",)
        if self._run == "note":
            return ("after_note", self._run_open, self._last_in_step)
        return ("after_sep", self._run_open)

    def _build_run_mask(self, key: tuple, mask: np.ndarray) -> None:
        vocab = self.vocab
        durations = vocab.durations
        if key[0] == "phrase":  # the top note of the step that ends a phrase
            mask[self._pitch_ids()] = True
        elif key[0] == "first":  # a note (below the primer's last, in its step) or a gap
            mask[self._pitch_ids(highest=HIGHEST_PIANO_PITCH if key[1] is None else key[1] - 1)] = True
            mask[vocab.sep_id] = True
            if vocab.form and key[1] is None:  # the first step may end a phrase; START may name the key
                mask[vocab.phrase_id] = True
                mask[vocab.phrase_id + 1 : vocab.phrase_id + 1 + len(KEYS)] = key[2]
        elif key[0] == "durations":
            mask[durations] = True
        elif key[0] == "after_note":  # a lower pitch in this step, the next step, or the end
            mask[durations] = key[1]
            mask[self._pitch_ids(highest=key[2] - 1)] = True
            mask[vocab.sep_id] = True
            mask[vocab.end_id] = True
        else:  # after a gap: the new step's top note, or PHRASE before it
            mask[durations] = key[1]
            mask[self._pitch_ids()] = True
            if vocab.form:
                mask[vocab.phrase_id] = True


class ImplicitGrammar(Grammar):
    """The implicit encoding: notes bottom up; a pitch not above the last one opens a new step."""

    def reset(self) -> None:
        super().reset()
        self._highest_before_sep: int | None = None
        self._implicit_gap: int | None = None  # at a sepxx: the gap an implicit step would make

    def _onset_in_step(self, pitch: int) -> int:
        if self._last_in_step is not None and pitch <= self._last_in_step:
            return self._next_note_end_with_pending()
        return self.step

    def _next_note_end_with_pending(self) -> int:
        """The next note end, counting the note whose run is being read as closed now."""
        while self._ends and self._ends[0] <= self.step:
            heapq.heappop(self._ends)
        ends = self._ends[:1]
        if self._run == "note" and self._run_total > 0:
            ends.append(self.step + self._run_total)
        return min(ends)

    def _at_sep(self) -> None:
        self._implicit_gap = self._next_note_end() - self.step if self._ends else None
        self._highest_before_sep = self._last_in_step

    def _state_key(self) -> tuple:
        if self._run is None:  # after START, or after a sealed primer
            return ("first",)
        if self._run == "note":
            return ("durations", None) if self._run_total == 0 else ("after_note", self._run_open)
        if self._run_total == 0:
            return ("durations", self._dead_end_duration())
        constrained = self._highest_before_sep is not None and (self._run_total == self._implicit_gap)
        highest = self._highest_before_sep if constrained else None
        return ("after_sep", self._run_open, highest, self._dead_end_duration())

    def _dead_end_duration(self) -> int | None:
        """The duration word that would close a sepxx run with no legal pitch after it.

        An explicit gap equal to the implicit one must be followed by a pitch above the last
        step's highest; when that was n108 there is none, so the word closing that gap is barred.
        """
        if self._highest_before_sep != HIGHEST_PIANO_PITCH or self._implicit_gap is None:
            return None
        remaining = self._implicit_gap - self._run_total
        return remaining if 1 <= remaining < self.vocab.max_duration else None

    def _build_run_mask(self, key: tuple, mask: np.ndarray) -> None:
        vocab = self.vocab
        durations = vocab.durations
        kind = key[0]
        if kind == "first":
            mask[self._pitch_ids()] = True
            mask[vocab.sep_id] = True
        elif kind == "durations":
            mask[durations] = True
        elif kind == "after_note":
            mask[durations] = key[1]
            mask[self._pitch_ids()] = True
            mask[vocab.sep_id] = True
            mask[vocab.end_id] = True
        elif kind == "after_sep":
            mask[durations] = key[1]
            mask[self._pitch_ids(LOWEST_PIANO_PITCH if key[2] is None else key[2] + 1)] = True
        if kind in ("durations", "after_sep") and key[-1] is not None:
            mask[vocab.duration_id(key[-1])] = False


def word_grammar(vocab: WordVocabulary) -> Grammar:
    """A fresh grammar for the vocabulary's encoding."""
    return StepGrammar(vocab) if vocab.encoding == "steps" else ImplicitGrammar(vocab)


def decode(ids: list[int], vocab: WordVocabulary, partial: bool = False, **piece_fields) -> NoteSequence:
    """The NoteSequence written by word ids ``ids``.

    With ``partial=False`` the ids must be a whole piece (START ... END). With ``partial=True``
    any legal prefix decodes to the notes complete so far, plus the note being written.
    ``piece_fields`` (steps_per_quarter, tempos, time_signature, name) pass to the NoteSequence.
    """
    grammar = word_grammar(vocab)
    for position, word_id in enumerate(ids):
        if not isinstance(word_id, int | np.integer) or isinstance(word_id, bool):
            raise CantorError(f"word id {str(word_id)[:20]!r} at position {position} is not a whole number")
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
    piece_fields.setdefault("key", grammar.key)
    return NoteSequence(notes=notes, phrase_ends=list(grammar.phrase_ends), **piece_fields)


class NoteStream:
    """Notes from word ids as they stream in, after an optional primer.

    Several pieces may follow one another (END, then START): each is laid after the last.
    ``primer_notes`` are the primer's; ``generated_notes`` everything written after it,
    including the note whose duration is still being read.
    """

    def __init__(self, vocab: WordVocabulary, primer_ids: list[int] | None = None) -> None:
        self.vocab = vocab
        self.grammar = word_grammar(vocab)
        for word_id in primer_ids or [vocab.start_id]:
            self.grammar.advance(word_id)
        self.grammar.seal()
        self._primer_count = len(self.grammar.notes)
        self._primer_phrases = len(self.grammar.phrase_ends)
        self._earlier: list[Note] = []  # notes of pieces already ENDed, in place
        self._earlier_phrases: list[int] = []  # and their phrase ends
        self._offset = 0

    def feed(self, word_id: int) -> None:
        """Read one new word; CantorError if it is not legal here."""
        if word_id == self.vocab.start_id and self.grammar.ended:
            self._earlier += [n._replace(start=n.start + self._offset) for n in self.grammar.notes]
            self._earlier_phrases += [step + self._offset for step in self.grammar.phrase_ends]
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

    @property
    def generated_phrase_ends(self) -> list[int]:
        """The phrase ends written after the primer (in every piece so far, each laid in place)."""
        ends = self._earlier_phrases + [step + self._offset for step in self.grammar.phrase_ends]
        return ends[self._primer_phrases :]


def is_legal(ids: list[int], vocab: WordVocabulary) -> bool:
    """True when ``ids`` is a legal prefix of a piece."""
    grammar = word_grammar(vocab)
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
