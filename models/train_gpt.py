"""Train the word model on a prepared dataset.

    python -m models.train_gpt --data data/chorales --size small --steps 3000 --out checkpoints/chorales_small
    torchrun --nproc_per_node=2 -m models.train_gpt --data data/chorales --size small

Training windows are drawn from the train split augmented in memory: every transposition that
stays within the piano range (up to +-6 semitones) of every time-stretched version (--stretch).
Validation uses the val split as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from models.gpt import GPT, SIZES, GPTConfig
from models.training import TrainSettings, add_train_arguments, settings_from, train
from tokenizer.augment import time_stretch
from tokenizer.cli import HelpFormatter, real, whole
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.words import encode

DEFAULTS = TrainSettings(steps=3000, batch_size=16, lr=1e-3, min_lr=1e-4, warmup=100, eval_every=100)


def transposed_ids(ids: np.ndarray, semitones: int, first_pitch_id: int, last_pitch_id: int) -> np.ndarray | None:
    """Word ids of the same piece moved by ``semitones``, or None if a pitch would leave the range.

    Moving every pitch word keeps the encoding canonical: the encoder's choices depend only on
    times and on which of two pitches is higher.
    """
    is_pitch = (ids >= first_pitch_id) & (ids <= last_pitch_id)
    moved = ids.astype(np.int32) + semitones * is_pitch
    if (moved[is_pitch] < first_pitch_id).any() or (moved[is_pitch] > last_pitch_id).any():
        return None
    return moved.astype(np.uint16)


def augmented_train_ids(dataset: WordDataset, max_transpose: int, stretch: list[float]) -> np.ndarray:
    """The train split, every piece in every legal transposition of every stretch, concatenated."""
    vocab = dataset.vocab
    last_pitch = vocab.first_duration_id - 1
    parts = []
    for name in dataset.names("train"):
        versions = [dataset.piece_ids(name)]
        versions += [np.asarray(encode(time_stretch(dataset.piece(name), f), vocab)) for f in stretch if f != 1.0]
        for ids in versions:
            for k in range(-max_transpose, max_transpose + 1):
                moved = transposed_ids(ids, k, vocab.first_pitch_id, last_pitch)
                if moved is not None:
                    parts.append(moved)
    if not parts:
        raise CantorError(f"{dataset.folder}: the train split is empty")
    return np.concatenate(parts)


def random_windows(ids: np.ndarray, rng: np.random.Generator, batch_size: int, block: int):
    """Inputs and next-word targets, (batch_size, block) each, from random offsets."""
    if len(ids) <= block + 1:
        raise CantorError(f"the data holds {len(ids)} words, fewer than one window of {block + 1}")
    offsets = rng.integers(0, len(ids) - block - 1, size=batch_size)
    windows = np.stack([ids[o : o + block + 1] for o in offsets]).astype(np.int64)
    return torch.from_numpy(windows[:, :-1]), torch.from_numpy(windows[:, 1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/chorales"), help="a folder from tokenizer.prepare")
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--block-size", type=whole(8, 8192), default=256, help="context in words")
    parser.add_argument("--dropout", type=real(0.0, 0.9), default=0.1)
    parser.add_argument("--max-transpose", type=whole(0, 24), default=6, help="semitones up and down")
    parser.add_argument(
        "--stretch",
        type=float,
        nargs="+",
        default=[1.0],
        help="time-stretch factors (2.0 writes rhythms Bach never wrote)",
    )
    parser.add_argument("--out", type=Path, default=None, help="checkpoint path stem (default checkpoints/DATA_SIZE)")
    add_train_arguments(parser, DEFAULTS)
    args = parser.parse_args(argv)
    try:
        dataset = WordDataset(args.data)
        train_ids = augmented_train_ids(dataset, args.max_transpose, args.stretch)
        val_ids = np.asarray(dataset.split("val"))
        if len(val_ids) <= args.block_size + 1:
            val_ids = train_ids  # a tiny folder of your own: no separate validation possible
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    out = args.out or Path("checkpoints") / f"{dataset.folder.name}_{args.size}"
    config = GPTConfig(
        vocab_size=dataset.vocab.size, block_size=args.block_size, dropout=args.dropout, **SIZES[args.size]
    )
    torch.manual_seed(args.seed)  # the same initial weights for the same seed
    model = GPT(config)
    splits = {"train": train_ids, "val": val_ids}
    card = {
        "kind": "word",
        "model_config": config.to_json(),
        "vocabulary": dataset.vocab.to_json(),
        "tokenizer": {"steps_per_quarter": dataset.steps_per_quarter},
        "items": "tokens",
        "model_card": {
            "size": args.size,
            "params": model.num_params(),
            "data": str(args.data),
            "data_hash": dataset.content_hash(),
            "train_words_augmented": len(train_ids),
            "augmentation": {"max_transpose": args.max_transpose, "stretch": args.stretch},
        },
    }
    try:
        train(
            model,
            loss_fn=lambda m, batch: m(batch[0], batch[1])[1],
            get_batch=lambda split, rng, n: random_windows(splits[split], rng, n, args.block_size),
            out=out,
            settings=settings_from(args),
            card=card,
            items_per_batch=args.block_size,
        )
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
