"""The word model as a musician uses it: load a checkpoint, then write, continue or retry pieces.

The CLI (models.sample) and the studio's engine both go through here, so that a continuation
made in one is the same as in the other.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from models.checkpoint import check_grid, load_gpt, steps_per_quarter_of
from models.decoding import prepare
from models.sampling import SamplingSettings, stream_rows
from tokenizer.constraints import RuleConstraint, Rules
from tokenizer.dataset import WordDataset
from tokenizer.ending import EndWithin
from tokenizer.errors import CantorError
from tokenizer.keys import KEYS, estimate_key
from tokenizer.notes import NoteSequence
from tokenizer.opening import OpenOnTonic
from tokenizer.repeat import BACH_SHARE, RepeatOpening
from tokenizer.words import NoteStream, WordVocabulary, encode, word_grammar


@dataclass
class Continuation:
    """A generation: the primer's notes (if any) and the notes generated after them."""

    primer: NoteSequence
    generated: NoteSequence

    def combined(self) -> NoteSequence:
        return self.generated.merged(self.primer)


@dataclass
class Primer:
    """The words a continuation starts from, and what was cut to fit the context."""

    ids: list[int]  # START and the primer's words, without its END
    piece: NoteSequence  # the primer's notes (all of them, even when the model sees fewer words)
    dropped_words: int  # words before the most recent context the model sees


class WordModel:
    """A loaded word-model checkpoint with its vocabulary."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.model, self.info = load_gpt(path, "word")
        try:
            self.vocab = WordVocabulary.from_json(self.info.get("vocabulary"))
        except CantorError as err:
            raise CantorError(f"{self.path.name}: {err}") from None
        if self.vocab.size != self.model.config.vocab_size:
            raise CantorError(
                f"{self.path.name}: the vocabulary has {self.vocab.size} words "
                f"but the model {self.model.config.vocab_size}"
            )
        self.steps_per_quarter = steps_per_quarter_of(self.info, self.path.name)
        self.key_shares = self._key_shares()
        prepare(self.model)

    def _key_shares(self) -> dict[str, float]:
        """The keys of the pieces the model learnt from, as shares (its card's ``key_shares``), from
        which a new piece's key is drawn; {} where the card has none or the model no key words."""
        shares = self.info.get("model_card", {}).get("key_shares", {})
        if not self.vocab.form or not isinstance(shares, dict):
            return {}
        valid = {k: float(v) for k, v in shares.items() if k in KEYS and isinstance(v, int | float) and v > 0}
        return valid if valid and math.isfinite(sum(valid.values())) else {}

    def draw_key(self, seed: int) -> str | None:
        """A key for a new piece, drawn as often as it opens the pieces the model learnt from."""
        if not self.key_shares:
            return None
        keys, shares = zip(*self.key_shares.items(), strict=True)
        return random.Random(seed).choices(keys, weights=shares)[0]

    def draw_bar_form(self, seed: int) -> bool:
        """Whether a new piece repeats its opening phrases, as often as Bach's chorales do."""
        return self.vocab.form and random.Random(f"bar form {seed}").random() < BACH_SHARE

    @property
    def block_size(self) -> int:
        return self.model.config.block_size

    def check_grid(self, dataset: WordDataset) -> None:
        """CantorError if the dataset's pieces lie on another grid than the model's. Pieces pass
        between a dataset and a model as notes, so their encodings may differ."""
        check_grid(self.path.name, self.steps_per_quarter, dataset)

    def primer(self, piece: NoteSequence) -> Primer:
        """The primer words of ``piece`` (its END removed), cut to the model's context. A primer
        whose key is not known (notes entered by hand) gets the key its notes fit best, which the
        continuation keeps."""
        if piece.steps_per_quarter != self.steps_per_quarter:
            raise CantorError(
                f"{piece.name or 'the primer'}: on a grid of {piece.steps_per_quarter} steps per quarter; "
                f"this model uses {self.steps_per_quarter}"
            )
        if piece.key is None:
            piece = replace(piece, key=estimate_key(piece.notes)[0])
        ids = encode(piece, self.vocab)[:-1]
        dropped = max(0, len(ids) - (self.block_size - 1))
        return Primer(ids=ids, piece=piece.normalized(), dropped_words=dropped)

    def stream_words(
        self,
        count: int,
        settings: SamplingSettings,
        primer: Primer | None = None,
        cancel: threading.Event | None = None,
        stop_at_end: bool = True,
        window_shift: int | None = None,
        rules: Rules | None = None,
        key: str | None = None,
        open_on_tonic: bool = True,
        bar_form: bool | None = False,
    ) -> Iterator[int]:
        """New word ids, one at a time; with a primer they continue it, else a new piece begins.

        ``rules``: musical constraints on top of the grammar (tokenizer/constraints.py).
        ``window_shift``: see ``models.sampling.stream`` (checkpoints with learned positions only).
        ``key``: the key a new piece is in (a model with form words); None: drawn as often as it
        opens the pieces the model learnt from (``draw_key``). With ``stop_at_end`` the piece is
        steered to end within ``count`` words (``tokenizer.ending``), and (``open_on_tonic``) a new
        piece opens on its tonic chord (``tokenizer.opening``); with ``bar_form`` a new piece
        sings its first two phrases again, in bar form (``tokenizer.repeat``; None: as often as
        Bach's chorales do, ``draw_bar_form``)."""
        rows = self.stream_variations(
            count, settings, 1, primer, cancel, stop_at_end, window_shift, rules, key, open_on_tonic, bar_form
        )
        return (ids[0] for ids in rows)

    def stream_variations(
        self,
        count: int,
        settings: SamplingSettings,
        variations: int,
        primer: Primer | None = None,
        cancel: threading.Event | None = None,
        stop_at_end: bool = True,
        window_shift: int | None = None,
        rules: Rules | None = None,
        key: str | None = None,
        open_on_tonic: bool = True,
        bar_form: bool | None = False,
    ) -> Iterator[list[int | None]]:
        """``variations`` pieces at once, in one batch (``models.sampling.stream_rows``): each step
        a list of one new id per variation (None once one has ended). Variation r is the piece
        seed ``settings.seed + r`` makes alone. ``key``, ``open_on_tonic`` and
        ``bar_form`` as in ``stream_words``."""
        prompt = primer.ids if primer else [self.vocab.start_id]
        key = key if key is not None else self.draw_key(settings.seed)
        key_word = [self.vocab.key_id(key)] if key is not None and primer is None and self.vocab.form else []
        prompt = [*prompt, *key_word]  # the new piece's first word, written for the model: yielded as its own below
        repeat = bar_form if bar_form is not None else self.draw_bar_form(settings.seed)
        constraints = []
        for _ in range(variations):
            grammar = word_grammar(self.vocab)
            for word_id in prompt:
                grammar.advance(word_id)
            grammar.seal()
            constraint = RuleConstraint(grammar, rules, self.steps_per_quarter) if rules else grammar
            if key_word and stop_at_end and open_on_tonic:  # a new piece opens on its tonic chord
                constraint = OpenOnTonic(constraint, key)
            if key_word and stop_at_end and repeat:  # bar form: the first two phrases again
                constraint = RepeatOpening(constraint, count - len(key_word), self.steps_per_quarter)
            ending = EndWithin(constraint, count - len(key_word), self.steps_per_quarter)
            constraints.append(ending if stop_at_end else constraint)
        if count <= len(key_word):
            return iter([key_word * variations])
        rows = stream_rows(
            self.model,
            prompt,
            count - len(key_word),
            settings,
            constraints,
            cancel=cancel,
            end_id=self.vocab.end_id,
            restart_id=None if stop_at_end else self.vocab.start_id,
            window_shift=window_shift,
        )
        return itertools.chain([key_word * variations], rows) if key_word else rows

    def continuation(self, words: list[int], primer: Primer | None = None, name: str = "") -> Continuation:
        """The primer's notes and the notes of ``words`` written after it (as far as they go)."""
        notes = NoteStream(self.vocab, primer.ids if primer else None)
        for word_id in words:
            notes.feed(word_id)
        fields = dict(steps_per_quarter=self.steps_per_quarter, name=name, key=notes.grammar.key)
        if primer:
            fields.update(tempos=primer.piece.tempos, time_signature=primer.piece.time_signature)
        primer_notes = list(primer.piece.notes) if primer else []
        return Continuation(
            primer=NoteSequence(notes=primer_notes, phrase_ends=primer.piece.phrase_ends if primer else [], **fields),
            generated=NoteSequence(notes=notes.generated_notes, phrase_ends=notes.generated_phrase_ends, **fields),
        )
