"""Train the codebook pipeline's VQ-VAE on the quarter slices of a prepared dataset.

    python -m models.train_vqvae --data data/chorales --codes 16 --steps 3000 --out checkpoints/chorales_vqvae
    python -m models.train_vqvae --original ...   # the original design, as an anchor to compare with

Each evaluation reports, on the val split's quarters: note-onset F1 and frame F1 of the rounded
reconstruction, codebook perplexity and dead codes.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

from models.slice_data import SliceBatches, dataset_slices
from models.training import TrainSettings, add_train_arguments, settings_from, train
from models.vqvae import MAX_CODES, NETS, RESTARTS, VQVAE, VQVAEConfig, parse_levels, reconstruction_scores
from tokenizer.cli import HelpFormatter, real, whole
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError

DEFAULTS = TrainSettings(
    steps=3000,
    batch_size=64,
    lr=1e-3,
    min_lr=1e-4,
    warmup=50,
    weight_decay=0.0,
    eval_every=250,
    eval_batches=8,
    checkpoint_every=500,
    # bfloat16 ran its small band nets only 1.25x faster and reconstructed a little worse after
    # 1,500 steps (held-out onset F1 0.955 against 0.960, docs/benchmarks.md): float32 unless asked
    precision="fp32",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("data/chorales"))
    parser.add_argument("--codes", type=whole(2, MAX_CODES), default=16, help="codebook size K")
    parser.add_argument(
        "--fsq", default="", metavar="LEVELS", help="finite scalar quantization, e.g. 8,5,5,5 (K = 1000)"
    )
    parser.add_argument("--hidden", type=whole(1, 1024), default=VQVAEConfig.hidden)
    parser.add_argument(
        "--net", choices=NETS, default=VQVAEConfig.net, help="conv: strided convolutions; bands: an MLP per patch"
    )
    parser.add_argument(
        "--dead-threshold",
        type=real(0.0, 1e6),
        default=VQVAEConfig.dead_threshold,
        help="a code whose EMA use falls below this share of an even share of a batch is restarted",
    )
    parser.add_argument(
        "--restart-by",
        choices=RESTARTS,
        default=VQVAEConfig.restart_by,
        help="a dead code restarts on the encoder output farthest from its code, or worst reconstructed",
    )
    parser.add_argument("--original", action="store_true", help="random init, gradient codebook, no restart, BCE")
    parser.add_argument("--max-transpose", type=whole(0, 24), default=6)
    parser.add_argument("--out", type=Path, default=Path("checkpoints/chorales_vqvae"))
    add_train_arguments(parser, DEFAULTS)
    args = parser.parse_args(argv)
    try:
        codes = math.prod(parse_levels(args.fsq)) if args.fsq else args.codes
        config = VQVAEConfig(
            codes=codes,
            hidden=args.hidden,
            original=args.original,
            fsq_levels=args.fsq,
            net=args.net,
            dead_threshold=args.dead_threshold,
            restart_by=args.restart_by,
        )
        dataset = WordDataset(args.data)
        train_slices, _ = dataset_slices(dataset, "train")
        val_slices, _ = dataset_slices(dataset, "val")
    except (CantorError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    batches = {"train": SliceBatches(train_slices, args.max_transpose), "val": SliceBatches(val_slices, 0)}
    held_out = torch.from_numpy(val_slices.astype(np.float32))
    torch.manual_seed(args.seed)
    model = VQVAE(config)
    card = {
        "kind": "vqvae",
        "vqvae_config": config.to_json(),
        "tokenizer": {"steps_per_quarter": dataset.steps_per_quarter},
        "items": "quarters",
        "model_card": {
            "params": sum(p.numel() for p in model.parameters()),
            "data": str(args.data),
            "data_hash": dataset.content_hash(),
            "train_quarters": len(train_slices),
            "val_quarters": len(val_slices),
            "configuration": "original (anchor)" if args.original else "Cantor",
        },
    }
    try:
        train(
            model,
            loss_fn=lambda m, batch: m(batch[0])[2],
            get_batch=lambda split, rng, n: (batches[split].batch(rng, n, augment=split == "train"),),
            out=args.out,
            settings=settings_from(args),
            card=card,
            items_per_batch=1,
            evaluate_extra=lambda m: reconstruction_scores(m, held_out),
        )
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
