"""Train the word model on a prepared dataset.

    python -m models.train_gpt --data data/chorales --size small --steps 3000 --out checkpoints/chorales_small
    torchrun --nproc_per_node=2 -m models.train_gpt --data data/chorales --size small

Training windows are drawn from the train split augmented in memory: every transposition that
stays within the piano range (up to +-6 semitones) of every time-stretched version (--stretch),
but, for a piece whose key word names its key, only into keys of at most --max-fifths sharps or
flats, so that the model's keys follow Bach's rather than all twelve alike. Half the plain rows
(--whole-pieces) start at a piece's START, so a long context sees whole pieces, their phrases and
their endings. Validation uses the val split as it is.

With ``--tasks SHARE`` that share of each batch teaches filling a gap and harmonizing a melody
(half each; ``tokenizer/tasks.py``), and the vocabulary gains the marker words. ``--init-from``
starts from a trained word model (its words must be the first of the new vocabulary), e.g. to
teach the shipped model the tasks::

    python -m models.train_gpt --tasks 0.5 --init-from checkpoints/chorales_small --block-size 512 ...
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import file_of, load_gpt
from models.gpt import GPT, SIZES, GPTConfig
from models.training import TrainSettings, add_train_arguments, settings_from, train
from tokenizer.augment import time_stretch
from tokenizer.cli import HelpFormatter, real, whole
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.keys import KEYS, fifths_of, transposed_key
from tokenizer.notes import NoteSequence
from tokenizer.tasks import training_example
from tokenizer.words import WordVocabulary, encode

DEFAULTS = TrainSettings(steps=3000, batch_size=16, lr=1e-3, min_lr=1e-4, warmup=100, eval_every=100)


def transposed_ids(ids: np.ndarray, semitones: int, vocab: WordVocabulary) -> np.ndarray | None:
    """Word ids of the same piece moved by ``semitones``, or None if a pitch would leave the range.

    Moving every pitch word (and the key word with them) keeps the encoding canonical: the
    encoder's choices depend only on times and on which of two pitches is higher.
    """
    ids = np.asarray(ids)
    is_pitch = (ids >= vocab.first_pitch_id) & (ids < vocab.first_duration_id)
    moved = ids.astype(np.int32) + semitones * is_pitch
    if (moved[is_pitch] < vocab.first_pitch_id).any() or (moved[is_pitch] >= vocab.first_duration_id).any():
        return None
    if vocab.form:
        first_key = vocab.phrase_id + 1
        is_key = (ids >= first_key) & (ids < first_key + len(KEYS))
        keys = moved[is_key] - first_key  # mode * 12 + tonic, as KEYS are ordered
        moved[is_key] = first_key + keys - keys % 12 + (keys + semitones) % 12
    return moved.astype(np.uint16)


def word_ids_in(vocab: WordVocabulary, data_vocab: WordVocabulary) -> np.ndarray:
    """(data_vocab.size,) uint16: the id in ``vocab`` of each word of ``data_vocab``, by name. The
    marker words come before the form words, so a dataset's PHRASE and key words (prepared without
    the markers) have other ids in the model's vocabulary."""
    lookup = {word: index for index, word in enumerate(vocab.words)}
    missing = [word for word in data_vocab.words if word not in lookup]
    if missing:
        raise CantorError(f"the data's words {missing[:3]} are not in the model's vocabulary")
    return np.array([lookup[word] for word in data_vocab.words], dtype=np.uint16)


def key_word_of(ids: np.ndarray, vocab: WordVocabulary) -> str | None:
    """The key a piece's words name (its second word), or None."""
    return vocab.key_of(int(ids[1])) if vocab.form and len(ids) > 1 and vocab.is_key(int(ids[1])) else None


def transpositions(key: str | None, max_transpose: int, max_fifths: int) -> list[int]:
    """The shifts in semitones a piece in ``key`` is trained in: up to ``max_transpose`` either way,
    and, where the key is known, only those that land in a key of at most ``max_fifths`` sharps or
    flats (Bach's chorales: 94 % within three); the piece's own key always."""
    shifts = range(-max_transpose, max_transpose + 1)
    if key is None:
        return list(shifts)
    return [k for k in shifts if k == 0 or abs(fifths_of(transposed_key(key, k))) <= max_fifths]


def augmented_train_ids(
    dataset: WordDataset, max_transpose: int, stretch: list[float], max_fifths: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """The train split, every piece in every transposition it is trained in (``transpositions``)
    of every stretch, concatenated; and the offset of each version's START."""
    vocab = dataset.vocab
    parts = []
    for name in dataset.names("train"):
        versions = [dataset.piece_ids(name)]
        versions += [np.asarray(encode(time_stretch(dataset.piece(name), f), vocab)) for f in stretch if f != 1.0]
        for ids in versions:
            for k in transpositions(key_word_of(ids, vocab), max_transpose, max_fifths):
                moved = transposed_ids(ids, k, vocab)
                if moved is not None:
                    parts.append(moved)
    if not parts:
        raise CantorError(f"{dataset.folder}: the train split is empty")
    starts = np.cumsum([0, *(len(part) for part in parts[:-1])])
    return np.concatenate(parts), starts


def random_windows(
    ids: np.ndarray, rng: np.random.Generator, batch_size: int, block: int, starts: np.ndarray | None = None
):
    """Inputs and next-word targets, (batch_size, block) each, from random offsets; with ``starts``
    (offsets of pieces' START), each row begins at a piece's start, so it sees a whole piece from
    its first word (a chorale fits a 1024-word block)."""
    if len(ids) <= block + 1:
        raise CantorError(f"the data holds {len(ids)} words, fewer than one window of {block + 1}")
    if starts is not None:
        starts = starts[starts < len(ids) - block - 1]
    if starts is not None and len(starts):
        offsets = starts[rng.integers(0, len(starts), size=batch_size)]
    else:
        offsets = rng.integers(0, len(ids) - block - 1, size=batch_size)
    windows = np.stack([ids[o : o + block + 1] for o in offsets]).astype(np.int64)
    return torch.from_numpy(windows[:, :-1]), torch.from_numpy(windows[:, 1:])


@dataclass
class TaskWindows:
    """Batches in which a share of the rows are task sequences (a gap to fill from both sides, or
    a melody to harmonize) drawn from random pieces in random transpositions (``shifts``), the rest
    plain windows of the stream, ``whole`` of them from a piece's start (``starts``). Rows shorter
    than the block end in targets of -1 (not scored)."""

    ids: np.ndarray
    pieces: list[NoteSequence]
    vocab: WordVocabulary
    share: float
    shifts: Callable[[str | None], list[int]] = lambda key: list(range(-6, 7))
    starts: np.ndarray | None = None
    whole: float = 0.0

    def task_row(self, rng: np.random.Generator, block: int, harmonize: bool) -> np.ndarray:
        vocab = self.vocab
        piece = self.pieces[int(rng.integers(len(self.pieces)))]
        row = np.asarray(training_example(piece, vocab, rng, block + 1, harmonize))
        for shift in rng.permutation(self.shifts(piece.key)):
            moved = transposed_ids(row, int(shift), vocab)
            if moved is not None:
                return moved.astype(np.int64)
        return row.astype(np.int64)

    def batch(self, rng: np.random.Generator, batch_size: int, block: int, kind: str = "mixed"):
        """``kind``: "mixed", or only "plain", "fill" or "harmonize" rows."""
        inputs, targets = (t.clone() for t in random_windows(self.ids, rng, batch_size, block))  # views of one array
        if self.starts is not None and self.whole > 0:
            whole = torch.from_numpy(rng.random(batch_size) < self.whole)
            from_start = random_windows(self.ids, rng, batch_size, block, self.starts)
            inputs[whole], targets[whole] = from_start[0][whole], from_start[1][whole]
        for row in range(batch_size):
            task = kind if kind != "mixed" else ("fill", "harmonize")[row % 2] if rng.random() < self.share else "plain"
            if task == "plain":
                continue
            words = self.task_row(rng, block, task == "harmonize")
            inputs[row] = self.vocab.end_id
            targets[row] = -1
            inputs[row, : len(words) - 1] = torch.from_numpy(words[:-1])
            targets[row, : len(words) - 1] = torch.from_numpy(words[1:])
        return inputs, targets


def init_from(model: GPT, path: Path, vocab: WordVocabulary) -> str:
    """Copy a trained word model's weights into ``model``, whose vocabulary may add words after
    the checkpoint's (their embeddings keep their fresh initialisation); CantorError on a mismatch."""
    trained, info = load_gpt(path, "word")
    old_words = WordVocabulary.from_json(info.get("vocabulary")).words
    if tuple(vocab.words[: len(old_words)]) != tuple(old_words):
        raise CantorError(f"{path.name}: its words are not the first words of this dataset's vocabulary")
    same_shape = replace(trained.config, vocab_size=model.config.vocab_size, dropout=model.config.dropout)
    if model.config.positions == "rope":  # rotary positions have no table: any context length goes
        same_shape = replace(same_shape, block_size=model.config.block_size)
    if same_shape != model.config:
        raise CantorError(f"{path.name}: its shape ({trained.config}) differs from the model to train ({model.config})")
    state = trained.state_dict()
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            source = state[name]
            tensor[: source.shape[0]].copy_(source)
    return str(info.get("model_card", {}).get("command", path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/chorales"), help="a folder from tokenizer.prepare")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--block-size", type=whole(8, 8192), default=256, help="context in words")
    parser.add_argument("--dropout", type=real(0.0, 0.9), default=0.1)
    parser.add_argument("--max-transpose", type=whole(0, 24), default=6, help="semitones up and down")
    parser.add_argument(
        "--max-fifths",
        type=whole(0, 6),
        default=3,
        help="transpose a piece whose key is known only into keys of this many sharps or flats at most (6: any)",
    )
    parser.add_argument(
        "--whole-pieces", type=real(0.0, 1.0), default=0.5, help="share of plain rows that start at a piece's start"
    )
    parser.add_argument(
        "--stretch",
        type=float,
        nargs="+",
        default=[1.0],
        help="time-stretch factors (2.0 writes rhythms Bach never wrote)",
    )
    parser.add_argument("--out", type=Path, default=None, help="checkpoint path stem (default checkpoints/DATA_SIZE)")
    parser.add_argument(
        "--tasks", type=real(0.0, 1.0), default=0.0, help="share of rows that fill a gap or harmonize a melody"
    )
    parser.add_argument("--init-from", type=Path, default=None, help="a word checkpoint to start from")
    add_train_arguments(parser, DEFAULTS)
    args = parser.parse_args(argv)
    try:
        dataset = WordDataset(args.data)
        vocab = replace(dataset.vocab, tasks=args.tasks > 0) if args.tasks > 0 else dataset.vocab
        to_model = word_ids_in(vocab, dataset.vocab)
        train_ids, train_starts = augmented_train_ids(dataset, args.max_transpose, args.stretch, args.max_fifths)
        train_ids = to_model[train_ids]
        val_ids = to_model[np.asarray(dataset.split("val"))]
        val_starts = np.flatnonzero(val_ids == vocab.start_id)
        val_split = "val"
        if len(val_ids) <= args.block_size + 1:  # a tiny folder of your own: no separate validation possible
            val_ids, val_starts, val_split = train_ids, train_starts, "train"
        if args.tasks > 0 and vocab.encoding != "steps":
            raise CantorError(f"{args.data}: the tasks need a dataset in the steps encoding")
        splits = {
            split: TaskWindows(
                ids,
                [dataset.piece(n).normalized() for n in dataset.names(source)] if args.tasks > 0 else [],
                vocab,
                args.tasks,
                lambda key: transpositions(key, args.max_transpose, args.max_fifths),
                starts,
                args.whole_pieces,
            )
            for split, ids, starts, source in (
                ("train", train_ids, train_starts, "train"),
                ("val", val_ids, val_starts, val_split),
            )
        }
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = args.out or Path("checkpoints") / f"{dataset.folder.name}_{args.size}"
    config = GPTConfig(vocab_size=vocab.size, block_size=args.block_size, dropout=args.dropout, **SIZES[args.size])
    torch.manual_seed(args.seed)  # the same initial weights for the same seed
    model = GPT(config)
    started_from = None
    if args.init_from is not None and not (args.resume and file_of(out, ".train.safetensors").exists()):
        try:
            started_from = init_from(model, args.init_from, vocab)
        except CantorError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    card = {
        "kind": "word",
        "model_config": config.to_json(),
        "vocabulary": vocab.to_json(),
        "tokenizer": {"steps_per_quarter": dataset.steps_per_quarter},
        "items": "tokens",
        "model_card": {
            "size": args.size,
            "params": model.num_params(),
            "data": str(args.data),
            "data_hash": dataset.content_hash(),
            "train_words_augmented": len(train_ids),
            "augmentation": {
                "max_transpose": args.max_transpose,
                "max_fifths": args.max_fifths,
                "stretch": args.stretch,
            },
            "whole_pieces": args.whole_pieces,
            "key_shares": dataset.key_shares("train"),  # the sampler draws a new piece's key from these
            "tasks": args.tasks,
        },
    }
    if args.init_from is not None:
        card["model_card"]["init_from"] = str(args.init_from)
        if started_from:
            card["model_card"]["init_from_command"] = started_from

    def task_losses(model: GPT) -> dict:
        """Val loss on plain windows alone and on each task alone (the same rows each time)."""
        if args.tasks == 0:
            return {}
        result = {}
        for index, kind in enumerate(("plain", "fill", "harmonize")):
            rng = np.random.default_rng([args.seed, 4242, index])
            losses = []
            for _ in range(max(1, args.eval_batches // 2)):
                inputs, targets = splits["val"].batch(rng, args.batch_size, args.block_size, kind)
                losses.append(
                    model(inputs.to(model.lm_head.weight.device), targets.to(model.lm_head.weight.device))[1].item()
                )
            result[f"val_{kind}"] = float(np.mean(losses))
        return result

    try:
        train(
            model,
            loss_fn=lambda m, batch: m(batch[0], batch[1])[1],
            get_batch=lambda split, rng, n: splits[split].batch(rng, n, args.block_size),
            out=out,
            settings=settings_from(args),
            card=card,
            items_per_batch=args.block_size,
            evaluate_extra=task_losses,
        )
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
