"""Training speed: a word-model step in bfloat16 autocast against float32 (the baseline).

    python -m bench.training [--quick] [--threads 2]

For the small (5.4 M) and large (13 M) word models at the shipped models' training shape (8 rows
of 1,024 words, dropout 0.3, AdamW, clipping), runs ``models.training.train`` itself for a few
steps with ``--precision fp32`` and ``bf16``, the two taking turns so that a noisy machine slows
them alike, and prints the median time a step takes (the first step, which builds oneDNN's
kernels, left out) and the loss after the steps (the same batches and dropout for both: the
products' rounding is the only difference). The batches are random words of the chorale
vocabulary's size: a step's time does not depend on what the words are.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from models.gpt import GPT, SIZES, GPTConfig
from models.training import TrainSettings, train, uses_bf16
from tokenizer.cli import whole

VOCAB = 135  # the chorale vocabulary's size
BLOCK, ROWS = 1024, 8


def timed_run(size: str, precision: str, steps: int, threads: int, out: Path) -> tuple[float, float]:
    """(median seconds a step after the first, the last step's loss) of ``steps`` steps of train()."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK, dropout=0.3, **SIZES[size]))
    starts: list[float] = []
    losses: list[float] = []

    def loss_fn(m: torch.nn.Module, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        if m.training:  # the step's own forward pass, not the final evaluation
            starts.append(time.perf_counter())
        loss = m(batch[0], batch[1])[1]
        if m.training:
            losses.append(loss.item())
        return loss

    def get_batch(split: str, rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.from_numpy(rng.integers(0, VOCAB, (n, BLOCK + 1)))
        return ids[:, :-1], ids[:, 1:]

    settings = TrainSettings(
        steps=steps, batch_size=ROWS, lr=6e-4, warmup=1, eval_every=steps, eval_batches=1,
        checkpoint_every=steps, threads=threads, precision=precision,
    )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        train(model, loss_fn, get_batch, out, settings, {"kind": "word"}, items_per_batch=BLOCK)
    return float(np.median(np.diff(starts)[1:])), losses[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the small model only, fewer steps")
    parser.add_argument("--threads", type=whole(1, 1024), default=2)
    args = parser.parse_args()
    sizes, steps = (("small",), 4) if args.quick else (("small", "large"), 5)
    print(f"bench.training: {ROWS} x {BLOCK} words a step, {args.threads} threads, {steps} steps a run")
    print(f"native bfloat16 on this CPU (--precision auto picks bf16): {uses_bf16('auto', torch.device('cpu'))}")
    print("| model | float32 s/step (baseline) | bf16 s/step | speed-up | loss after the steps, float32 / bf16 |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            fp32, bf16 = [], []
            for turn in range(2):  # taking turns
                for precision, times in (("fp32", fp32), ("bf16", bf16)):
                    seconds, loss = timed_run(size, precision, steps, args.threads, Path(folder) / f"{size}{turn}")
                    times.append((seconds, loss))
            f, b = np.median([t for t, _ in fp32]), np.median([t for t, _ in bf16])
            print(f"| {size} | {f:.2f} | {b:.2f} | {f / b:.2f}x | {fp32[0][1]:.4f} / {bf16[0][1]:.4f} |")


if __name__ == "__main__":
    main()
