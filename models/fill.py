"""Regenerate a selection of a piece, and harmonize a melody, with a word model that knows the
marker words (trained with ``models.train_gpt --tasks``; the sequences are in tokenizer/tasks.py).

Regenerating fills one gap from both sides: the model reads HOLE, the piece after the gap, FILL,
the piece before it, and writes the gap. Harmonizing writes a melody's lower voices a window at a
time (``WINDOW_QUARTERS``): each window reads MELODY and the melody from the window's start up to
``LOOKAHEAD_QUARTERS`` past its end, FILL, the harmony so far, and writes the window with the
melody's notes forced in place as the top voice (``FillGrammar``).

    python -m models.fill --checkpoint checkpoints/chorales_small harmonize tune.mid --out harmonized.mid
    python -m models.fill --checkpoint checkpoints/chorales_small regenerate song.mid --bars 5-6 --out new.mid

A task keeps the key of its piece, or of its melody (the key the melody closes in): the key word
says it, and with the rules on and no key chosen, new notes outside it are weighed as the Rules
window weighs them. A harmonization ends on the tonic chord, the tonic in the bass, held to the
melody's end (``tokenizer.ending.CloseOnTonic``).

The four-part rules are on by default, as in the studio (--no-rules: the model alone). The MIDI
file holds what was kept (the melody, or the piece around the selection) and what is new as two
named tracks.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from tqdm import tqdm

from models.sample import add_rule_arguments, add_sampling_arguments, rules_from, sampling_from
from models.sampling import SamplingSettings, stream
from models.word_model import WordModel
from tokenizer.cli import HelpFormatter, stopped_by_ctrl_c
from tokenizer.constraints import RuleConstraint, Rules
from tokenizer.ending import CloseOnTonic
from tokenizer.errors import CantorError
from tokenizer.keys import estimate_key, estimate_melody_key
from tokenizer.notes import Note, NoteSequence
from tokenizer.readers import read_piece
from tokenizer.tasks import (
    LOOKAHEAD_QUARTERS,
    MAX_GAP_QUARTERS,
    FillGrammar,
    FullTexture,
    Gap,
    after_ids,
    context_ids,
    fill_prompt,
    melody_ids,
    top_line,
)
from tokenizer.writers import write_midi

WINDOW_QUARTERS = 8  # harmonize: the quarters one window writes
MELODY_RANGE = (48, 96)  # C3-C7: where a top voice the model learnt may lie (chorale sopranos, transposed)
TEXTURE_WEIGHT = 1.5  # nats against moving on while fewer than four voices sound (tokenizer.tasks.FullTexture)
WORDS_PER_QUARTER = 40  # a gap stops if it has not ended after this many words a quarter (chorales: ~12)


class GapWriter:
    """One regeneration or harmonization in progress. Iterate ``regenerate(...)`` or
    ``harmonize(...)`` for the word ids as they are made; ``new_notes()`` are the notes written so
    far (in the gap, or under the melody), ``piece()`` the whole result so far."""

    def __init__(
        self,
        model: WordModel,
        settings: SamplingSettings,
        rules: Rules | None = None,
        cancel: threading.Event | None = None,
    ) -> None:
        if not model.vocab.tasks:
            raise CantorError(f"{model.path.name} was not trained to fill or harmonize (train it with --tasks)")
        settings.validate()
        self.model, self.settings, self.rules, self.cancel = model, settings, rules, cancel
        self.kept: list[Note] = []  # the notes the task keeps: around the gap, or the melody
        self._done: list[Note] = []  # new notes of finished windows
        self._grammar: FillGrammar | None = None  # the window being written
        self._context_count = 0  # of the window grammar's notes, those read from its context
        self._fields: dict = {}
        self._melody_onsets: set[tuple[int, int]] = set()  # (pitch, start) of the melody's notes
        self._span = (0, 1)  # the steps the whole task writes
        self.key: str | None = None  # the key the task keeps: the piece's or the melody's
        self.key_estimated = False  # True where the input did not say its key and Cantor estimated it
        self._phrases: list[int] = []  # phrase ends kept, and those of finished windows
        self._melody_phrases: list[int] | None = None  # a harmonized melody's fermatas, where phrases end

    # -- the two tasks -------------------------------------------------------------------------
    def regenerate(self, piece: NoteSequence, gap: Gap, keep_melody: bool = False) -> Iterator[int]:
        """Rewrite the notes of ``piece`` that start inside ``gap``; keep every other note, and with
        ``keep_melody`` the top line inside the gap too (a harmonization's tune)."""
        notes = self._checked(piece).normalized().notes
        end = max(n.end for n in notes)
        if gap.start >= end:
            raise CantorError(f"the selection starts at step {gap.start}, after the piece's end (step {end})")
        gap = Gap(gap.start, min(gap.end, end))
        quarters = (gap.end - gap.start) / piece.steps_per_quarter
        if quarters > MAX_GAP_QUARTERS:
            raise CantorError(
                f"the selection spans {quarters:g} quarters; the model fills at most {MAX_GAP_QUARTERS} at once"
            )
        melody = [n for n in top_line(piece)[0] if gap.start <= n.start < gap.end] if keep_melody else []
        self.kept = [n for n in notes if not gap.start <= n.start < gap.end] + melody
        self._melody_onsets = {(n.pitch, n.start) for n in melody}
        self._span = (gap.start, gap.end)
        self._keep_key(piece, notes)
        self._phrases = [step for step in piece.phrase_ends if not gap.start <= step < gap.end]
        vocab = self.model.vocab
        after = after_ids(notes, gap, vocab, piece.phrase_ends)
        context = context_ids(notes, gap, vocab, self.key, piece.phrase_ends)
        melody_words = melody_ids(melody, gap, gap.end, vocab, piece.phrase_ends) if melody else None
        yield from self._window(context, gap, after, melody_words, melody or None, 0)

    def harmonize(self, melody_piece: NoteSequence, key: str | None = None) -> Iterator[int]:
        """Write the voices under a melody (the top line of ``melody_piece``), in ``key`` if one is
        asked for, else in the key the melody closes in (whatever key the rest of the piece says)."""
        melody = self.melody_of(melody_piece)
        self.kept = melody
        self._melody_onsets = {(n.pitch, n.start) for n in melody}
        self.key_estimated = key is None
        self.key = key if key is not None else estimate_melody_key(melody)[0]
        fermatas = melody_piece.normalized().phrase_ends
        self._melody_phrases = fermatas or None  # a melody with fermatas says where its phrases end
        step = melody_piece.steps_per_quarter
        end = max(n.end for n in melody)
        self._span = (0, end)
        vocab = self.model.vocab
        start, window = 0, 0
        while start < end:
            if self.cancel is not None and self.cancel.is_set():
                return
            gap = Gap(start, min(start + WINDOW_QUARTERS * step, end))
            if gap.end > melody[-1].start:  # the last chord in one window, held to the end
                gap = Gap(start, end)
            written = sorted(self._done + self.kept, key=lambda n: (n.start, n.pitch))
            context = context_ids(written, gap, vocab, self.key, sorted(set(self._phrases) | set(fermatas)))
            melody_words = melody_ids(melody, gap, gap.end + LOOKAHEAD_QUARTERS * step, vocab, fermatas)
            yield from self._window(context, gap, None, melody_words, melody, window, (melody[-1].start, end))
            if self._grammar is None or not self._grammar.ended:
                return  # cancelled, or the window ran out of words
            self._phrases = self.phrase_ends()
            self._done = self.new_notes()
            self._grammar = None
            start, window = gap.end, window + 1

    def melody_of(self, piece: NoteSequence) -> list[Note]:
        """The top line of ``piece``, checked: CantorError for no notes, or notes outside
        ``MELODY_RANGE``."""
        self._checked(piece)
        melody, _ = top_line(piece)
        lowest, highest = MELODY_RANGE
        outside = [n for n in melody if not lowest <= n.pitch <= highest]
        if outside:
            raise CantorError(
                f"{piece.name or 'the melody'}: {len(outside)} of its notes lie outside {lowest}-{highest} "
                f"(C3-C7), where the model never saw a top voice; transpose it"
            )
        return melody

    # -- what has been written -----------------------------------------------------------------
    def new_notes(self) -> list[Note]:
        """The notes written so far: finished windows', then the current window's (with the note
        whose duration is being read), the melody left out."""
        notes = list(self._done)
        if self._grammar is not None:
            current = self._grammar.notes[self._context_count :]
            if (pending := self._grammar.pending_note()) is not None:
                current = [*current, pending]
            notes += [n for n in current if not self._is_melody(n)]
        return sorted(notes, key=lambda n: (n.start, n.pitch))

    def phrase_ends(self) -> list[int]:
        """The phrase ends kept and those written so far."""
        written = self._grammar.phrase_ends if self._grammar is not None else []
        return sorted(set(self._phrases) | set(written))

    def progress(self) -> tuple[int, int]:
        """(steps written, steps to write) of the whole task."""
        if self._grammar is None:
            return 0, self._span[1] - self._span[0]
        done = min(self._grammar.step, self._span[1]) - self._span[0]
        return max(0, done), self._span[1] - self._span[0]

    def piece(self) -> NoteSequence:
        """The kept notes and the new ones, on the grid and in the tempo of the input."""
        notes = sorted(self.kept + self.new_notes(), key=lambda n: (n.start, n.pitch))
        return NoteSequence(notes=notes, phrase_ends=self.phrase_ends(), key=self.key, **self._fields)

    # -- inside ------------------------------------------------------------------------------
    def _checked(self, piece: NoteSequence) -> NoteSequence:
        if piece.steps_per_quarter != self.model.steps_per_quarter:
            raise CantorError(
                f"{piece.name or 'the piece'}: on a grid of {piece.steps_per_quarter} steps a quarter; "
                f"this model uses {self.model.steps_per_quarter}"
            )
        if not piece.notes:
            raise CantorError(f"{piece.name or 'the piece'}: no notes")
        self._fields = dict(
            steps_per_quarter=piece.steps_per_quarter,
            tempos=piece.tempos,
            time_signature=piece.time_signature,
            name=piece.name,
        )
        return piece

    def _keep_key(self, piece: NoteSequence, notes: list[Note]) -> None:
        """The key the task keeps: the one ``piece`` says, else the best estimate from ``notes``."""
        self.key_estimated = piece.key is None
        self.key = piece.key if piece.key is not None else estimate_key(notes)[0]

    def _is_melody(self, note: Note) -> bool:
        return (note.pitch, note.start) in self._melody_onsets

    def _window(
        self,
        context: list[int],
        gap: Gap,
        after: list[int] | None,
        melody_words: list[int] | None,
        melody: list[Note] | None,
        window: int,
        close: tuple[int, int] | None = None,
    ) -> Iterator[int]:
        vocab, block = self.model.vocab, self.model.block_size
        grammar = FillGrammar(vocab, gap, melody, self._melody_phrases)
        for word_id in context:
            grammar.advance(word_id)
        grammar.seal()
        self._grammar, self._context_count = grammar, len(grammar.notes)
        quarters = -(-(gap.end - gap.start) // self.model.steps_per_quarter)
        budget = max(block - 16 * quarters, block // 2)  # leave the gap about the room it took in training
        prompt = fill_prompt(context, after, melody_words, vocab, budget)
        rules = self.rules
        if rules is not None and rules.key is None and self.key is not None:  # the key kept, as if chosen
            rules = replace(rules, key=self.key)
        constraint = RuleConstraint(grammar, rules, self.model.steps_per_quarter) if rules else grammar
        if close is not None:  # a harmonization: four voices under the melody, its last chord the tonic's
            constraint = CloseOnTonic(FullTexture(constraint, weight=TEXTURE_WEIGHT), self.key, *close)
        settings = replace(self.settings, seed=self.settings.seed + window)
        yield from stream(
            self.model.model,
            prompt,
            WORDS_PER_QUARTER * quarters,
            settings,
            constraint,
            cancel=self.cancel,
            end_id=vocab.end_id,
        )


def bars_gap(text: str, piece: NoteSequence) -> Gap:
    """The gap of bars "A-B" (from 1, both included; "A" alone: one bar) in ``piece``'s metre."""
    try:
        first, _, last = text.partition("-")
        first_bar, last_bar = int(first), int(last or first)
    except ValueError:
        raise CantorError(f"--bars takes A-B, bar numbers from 1 (got {text!r})") from None
    if not 1 <= first_bar <= last_bar:
        raise CantorError(f"--bars must run forward from bar 1 (got {text!r})")
    bar = piece.steps_per_bar
    return Gap((first_bar - 1) * bar, last_bar * bar)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/chorales_small"))
    add_sampling_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("filled.mid"))
    tasks = parser.add_subparsers(dest="task", required=True)
    harmonize = tasks.add_parser("harmonize", help="write alto, tenor and bass under a melody")
    harmonize.add_argument("melody", type=Path, help="a MIDI or MusicXML file; its top line is the melody")
    regenerate = tasks.add_parser("regenerate", help="rewrite some bars of a piece, keeping the rest")
    regenerate.add_argument("piece", type=Path, help="a MIDI or MusicXML file")
    regenerate.add_argument("--bars", required=True, help="A-B: the bars to rewrite, from 1, both included")
    add_rule_arguments(parser)
    args = parser.parse_args(argv)
    try:
        writer = GapWriter(WordModel(args.checkpoint), sampling_from(args), rules_from(args))
        grid = writer.model.steps_per_quarter
        if args.task == "harmonize":
            source = read_piece(args.melody, grid)
            if top_line(source)[1]:
                print(f"note: {args.melody.name} has more than one voice; harmonizing its top line")
            words = writer.harmonize(source, args.key)
            kept_name = "melody"
        else:
            source = read_piece(args.piece, grid)
            words = writer.regenerate(source, bars_gap(args.bars, source))
            kept_name = "kept"
        with tqdm(desc=args.task, unit="word") as bar, stopped_by_ctrl_c():
            for _ in words:
                bar.update(1)
        result = writer.piece()
        kept = replace(result, notes=writer.kept)
        new = replace(result, notes=writer.new_notes())
        write_midi(result, args.out, parts=[(kept_name, kept), ("new", new)])
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {len(kept.notes)} {kept_name} notes + {len(new.notes)} new notes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
