"""Train the prior: the shared GPT over VQ-VAE codes (K codes plus a start-of-piece token).

    python -m models.train_prior --codes data/chorales/codes --out checkpoints/chorales_prior

Windows of 192 codes (12 quarters) start every 16 codes (one quarter) of each piece, as in the
original; each draw adds a random offset of 0-15 codes, so the prior also learns windows that
begin mid-quarter, which is what the one-code sliding generator shows it. Every code also gets
its phase, its place in the quarter (0-15; the start token counts as 15), so the prior always
knows where a quarter begins: without it, a window that starts mid-quarter looks like one that
starts on the beat, and the generated codes drift out of the VQ-VAE's layout of 8 pitch bands
x 2 eighths.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from models.codebooks import CODES_PER_QUARTER
from models.gpt import GPT, SIZES, GPTConfig
from models.training import TrainSettings, add_train_arguments, settings_from, train
from tokenizer.cli import HelpFormatter, real
from tokenizer.errors import CantorError

DEFAULTS = TrainSettings(steps=2000, batch_size=32, lr=2e-3, min_lr=2e-4, warmup=100, eval_every=200, eval_batches=10)
BLOCK = 192


def code_streams(folder: Path, split: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """The split's pieces as one stream, each piece as [start] + its codes; each id's phase;
    window starts every 16 codes of each piece; K."""
    try:
        index = json.loads((folder / "index.json").read_text())
        codes = np.fromfile(folder / f"{split}.bin", dtype=np.uint16)
    except (OSError, ValueError) as err:
        raise CantorError(f"{folder}: not a codes folder from models.encode_codes ({err})") from None
    k = int(index["codes"])
    stream, phases, starts = [], [], []
    position = 0
    for piece in index["pieces"]:
        if piece["split"] != split:
            continue
        ids = np.concatenate([[k], codes[piece["offset"] : piece["offset"] + piece["length"]]]).astype(np.int64)
        starts += range(position, position + len(ids), CODES_PER_QUARTER)
        stream.append(ids)
        phases.append((np.arange(len(ids)) - 1) % CODES_PER_QUARTER)
        position += len(ids)
    if not stream:
        raise CantorError(f"{folder}: the {split} split has no codes")
    stream = np.concatenate(stream)
    starts = np.array([s for s in starts if s + BLOCK + CODES_PER_QUARTER < len(stream)])
    return stream, np.concatenate(phases), starts, k


def windows(stream: np.ndarray, phases: np.ndarray, starts: np.ndarray, rng: np.random.Generator, n: int):
    """(inputs, targets, the inputs' phases), (n, BLOCK) each."""
    picks = starts[rng.integers(0, len(starts), size=n)] + rng.integers(0, CODES_PER_QUARTER, size=n)
    batch = np.stack([stream[p : p + BLOCK + 1] for p in picks])
    batch_phases = np.stack([phases[p : p + BLOCK] for p in picks])
    return torch.from_numpy(batch[:, :-1]), torch.from_numpy(batch[:, 1:]), torch.from_numpy(batch_phases)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--codes", type=Path, default=Path("data/chorales/codes"))
    parser.add_argument("--size", choices=sorted(SIZES), default="mini")
    parser.add_argument("--dropout", type=real(0.0, 0.9), default=0.1)
    parser.add_argument("--out", type=Path, default=Path("checkpoints/chorales_prior"))
    add_train_arguments(parser, DEFAULTS)
    args = parser.parse_args(argv)
    try:
        data = {split: code_streams(args.codes, split) for split in ("train", "val")}
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    k = data["train"][3]
    index = json.loads((args.codes / "index.json").read_text())
    config = GPTConfig(
        vocab_size=k + 1, block_size=BLOCK, dropout=args.dropout, phase_period=CODES_PER_QUARTER, **SIZES[args.size]
    )
    torch.manual_seed(args.seed)
    model = GPT(config)
    card = {
        "kind": "prior",
        "model_config": config.to_json(),
        "codes": k,
        "codes_per_quarter": CODES_PER_QUARTER,
        "vqvae": index["vqvae"],
        "items": "codes",
        "model_card": {
            "size": args.size,
            "params": model.num_params(),
            "data": str(args.codes),
            "train_codes": len(data["train"][0]),
        },
    }
    try:
        train(
            model,
            loss_fn=lambda m, batch: m(batch[0], batch[1], phases=batch[2])[1],
            get_batch=lambda split, rng, n: windows(*data[split][:3], rng, n),
            out=args.out,
            settings=settings_from(args),
            card=card,
            items_per_batch=BLOCK,
        )
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
