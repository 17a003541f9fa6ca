"""The codebook pipeline: reconstruction by codebook, the prior's alignment, and generation speed.

    python -m bench.codebooks                                  # the shipped models
    python -m bench.codebooks --compare runs/vq/k64 runs/vq/k256 --prior runs/prior/k256

- encode and decode throughput in quarters/s over the val split's quarters (batches of 256);
- for each VQ-VAE (the shipped one, the original-configuration anchor and every ``--compare``):
  note-onset F1, frame F1, the share of quarters reconstructed exactly, code perplexity and dead
  codes, on the chorale val split's quarters and on five pieces that are not chorales (piano
  and string-quartet works from music21's corpus);
- the share of quarters in the VQ-VAE's layout (8 pitch bands x 2 eighths): each quarter's best
  cyclic shift against the per-position code frequencies of the train split must be 0. Measured
  on real val quarters, on ``--seeds`` pieces of 48 quarters written by the prior, and on as many
  continuations (12 quarters after 4 real ones);
- the prior's loss on the val split's codes in bits per quarter (16 codes), comparable across K;
- the time to write 48 quarters with the prior (``--speed``: only this): the sampler (a rotary
  prior rolls its KV cache, one traced step per code, always the full 192-code context), beside the
  same sampler on the eager step and a full recompute of the last 192 codes for every code
  (nanoGPT's generate) over the same weights.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import file_of
from models.codebooks import CODES_PER_QUARTER, Codebooks, load_vqvae
from models.decoding import stepping_eagerly
from models.sampling import SamplingSettings
from models.slice_data import dataset_slices
from models.train_prior import BLOCK, code_streams
from models.vqvae import reconstruction_scores
from tokenizer.cli import HelpFormatter, whole
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.readers import read_music21
from tokenizer.slices import piece_to_slices

VQVAE = Path("checkpoints/chorales_vqvae")
ORIGINAL = Path("checkpoints/chorales_vqvae_original")
PRIOR = Path("checkpoints/chorales_prior")
NOT_CHORALES = (  # keyboard and instrumental works the project never trains on
    "joplin/maple_leaf_rag.mxl",
    "chopin/mazurka06-2.krn",
    "beethoven/opus18no1/movement1.mxl",
    "mozart/k155/movement1.mxl",
    "haydn/opus1no1/movement1.mxl",
)
QUARTERS = 48


def layout_table(quarters: np.ndarray, codes: int) -> np.ndarray:
    """(16, K) log-frequencies of each code at each of a quarter's 16 positions (add-one)."""
    counts = np.ones((CODES_PER_QUARTER, codes))
    for position in range(CODES_PER_QUARTER):
        counts[position] += np.bincount(quarters[:, position], minlength=codes)
    return np.log(counts / counts.sum(axis=1, keepdims=True))


def in_layout(quarters: np.ndarray, table: np.ndarray) -> np.ndarray:
    """(Q,) bool: whether each quarter's codes fit the layout best at no shift. A quarter is 8
    pitch bands x 2 eighths; a prior that lost the phase writes code j where position j + s
    belongs, and then fits best at shift s."""
    positions = np.arange(CODES_PER_QUARTER)
    scores = np.stack(
        [table[(positions + shift) % CODES_PER_QUARTER, quarters].sum(axis=1) for shift in range(CODES_PER_QUARTER)],
        axis=1,
    )
    return scores.argmax(axis=1) == 0


@torch.inference_mode()
def full_recompute(model, prompt: list[int], count: int, codes: int, seed: int) -> None:
    """nanoGPT's generate: the whole window through the model for every new code (top-k 8)."""
    generator = torch.Generator().manual_seed(seed)
    block, period = model.config.block_size, model.config.phase_period
    idx = torch.tensor([prompt])
    for _ in range(count):
        window = idx[:, -block:]
        phases = None
        if period:
            first = idx.size(1) - window.size(1)
            phases = ((torch.arange(first, idx.size(1)) - 1) % period)[None, :]
        logits, _ = model(window, phases=phases)
        logits = logits[0, -1, :codes]  # never the start token
        kth = torch.topk(logits, 8).values[-1]
        probs = torch.softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
        idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)[None]], dim=1)


@torch.inference_mode()
def bits_per_quarter(model, codes_folder: Path) -> float:
    """The prior's mean negative log-likelihood of the val codes, in bits per 16 codes: windows of
    192 codes laid end to end over the split, every code predicted (the start token is never a
    target). A K-way choice costs log2(K) bits a code, so this is what compares priors across K."""
    stream, phases, _, k = code_streams(codes_folder, "val")
    nats, count = 0.0, 0
    for start in range(0, len(stream) - 1, BLOCK):
        inputs = torch.from_numpy(stream[start : start + BLOCK])[None]
        targets = torch.from_numpy(stream[start + 1 : start + BLOCK + 1])[None]
        inputs = inputs[:, : targets.size(1)]
        window_phases = (
            torch.from_numpy(phases[start : start + inputs.size(1)])[None] if model.config.phase_period else None
        )
        logits, _ = model(inputs, phases=window_phases)
        losses = torch.nn.functional.cross_entropy(logits[0].float(), targets[0], reduction="none")
        keep = targets[0] != k
        nats += losses[keep].sum().item()
        count += int(keep.sum())
    return nats / count * CODES_PER_QUARTER / math.log(2)


def not_chorale_slices() -> np.ndarray:
    return np.concatenate([piece_to_slices(read_music21(name))[0] for name in NOT_CHORALES])


def reconstruction_rows(paths: list[Path], held_out: dict[str, torch.Tensor]) -> None:
    print(
        f"\n{'VQ-VAE':34} {'K':>4} {'steps':>6} | {'set':12} {'onset F1':>8} {'frame F1':>8} "
        f"{'exact':>6} {'perplexity':>10} {'dead':>5}"
    )
    for path in paths:
        model, info = load_vqvae(path)
        steps = info.get("model_card", {}).get("steps", "?")
        for name, slices in held_out.items():
            s = reconstruction_scores(model, slices)
            print(
                f"{path.name:34} {model.config.codes:>4} {steps:>6} | {name:12} {s['onset_f1']:8.3f} "
                f"{s['frame_f1']:8.3f} {s['exact_quarters']:6.3f} {s['perplexity']:10.2f} {s['dead_codes']:5d}"
            )


def prior_rows(
    pipeline: Codebooks, val_codes: np.ndarray, train_codes: np.ndarray, codes_folder: Path, seeds: int
) -> None:
    table = layout_table(train_codes, pipeline.codes)
    print(f"\nquarters in the layout: real val quarters {in_layout(val_codes, table).mean():.1%}", end="")
    if pipeline.prior is None:
        print()
        return
    generated, seconds = [], []
    for seed in range(seeds):
        started = time.perf_counter()
        codes = list(pipeline.stream_codes(QUARTERS, SamplingSettings(top_k=8, seed=seed)))
        seconds.append(time.perf_counter() - started)
        generated.append(np.asarray(codes).reshape(-1, CODES_PER_QUARTER))
    quarters = np.concatenate(generated)
    print(f", the prior's {len(quarters)} quarters ({seeds} seeds) {in_layout(quarters, table).mean():.1%}", end="")
    continued = []
    for seed in range(seeds):  # 4 real quarters from across the val split, then 12 of the prior's
        start = seed * (len(val_codes) - 4) // seeds
        codes = pipeline.stream_codes(12, SamplingSettings(top_k=8, seed=seed), val_codes[start : start + 4])
        continued.append(np.asarray(list(codes)).reshape(-1, CODES_PER_QUARTER))
    continued = np.concatenate(continued)
    print(f", its {len(continued)} quarters continuing val pieces {in_layout(continued, table).mean():.1%}")
    bits = bits_per_quarter(pipeline.prior, codes_folder)
    print(f"the prior on the val codes: {bits:.1f} bits per quarter ({bits / CODES_PER_QUARTER:.3f} a code)")
    speed_rows(pipeline)


def speed_rows(pipeline: Codebooks, runs: int = 3) -> None:
    """The time to write 48 quarters: the sampler on its traced step, on the eager one (the same
    sampler, stepping through GPT.step in eager PyTorch: the fallback), and a full recompute of the
    window for every code; median of ``runs``, the three taking turns."""
    times: dict[str, list[float]] = {"fast": [], "eager": [], "full": []}
    codes = {}
    count = QUARTERS * CODES_PER_QUARTER
    for run in range(runs):
        for path in ("fast", "eager"):
            with stepping_eagerly(path == "eager"):
                started = time.perf_counter()
                codes[path] = list(pipeline.stream_codes(QUARTERS, SamplingSettings(top_k=8, seed=run)))
                times[path].append(time.perf_counter() - started)
        started = time.perf_counter()
        full_recompute(pipeline.prior, [pipeline.start_id], count, pipeline.codes, run)
        times["full"].append(time.perf_counter() - started)
    fast, eager, full = (float(np.median(times[path])) for path in ("fast", "eager", "full"))
    positions = pipeline.prior.config.positions
    same = "yes" if codes["fast"] == codes["eager"] else "NO"
    print(
        f"write {QUARTERS} quarters ({positions} positions, median of {runs}): the sampler {fast:.2f} s "
        f"({count / fast:.0f} codes/s; the same codes as the eager step: {same}), "
        f"eager step {eager:.2f} s ({eager / fast:.1f}x slower), full recompute of the window {full:.2f} s "
        f"({full / fast:.1f}x slower; the eager step {full / eager:.1f}x)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--vqvae", type=Path, default=VQVAE)
    parser.add_argument("--prior", type=Path, default=PRIOR)
    parser.add_argument("--codes", type=Path, default=Path("data/chorales/codes"), help="the prior's codes")
    parser.add_argument("--compare", type=Path, nargs="*", default=[], help="more VQ-VAEs for the table")
    parser.add_argument("--seeds", type=whole(1, 100), default=12, help="pieces the prior writes")
    parser.add_argument("--speed", action="store_true", help="only the time to write 48 quarters")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.speed:
        speed_rows(Codebooks(args.vqvae, args.prior))
        return 0
    try:
        val, _ = dataset_slices(WordDataset("data/chorales"), "val")
        pipeline = Codebooks(args.vqvae, args.prior)
        for path in args.compare:
            load_vqvae(path)
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    started = time.perf_counter()
    codes = np.concatenate([pipeline.encode(val[i : i + 256]) for i in range(0, len(val), 256)])
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, len(codes), 256):
        pipeline.decode_slices(codes[i : i + 256])
    decode_s = time.perf_counter() - started
    print(f"{len(val)} held-out chorale quarters, 1 torch thread")
    print(f"encode {len(val) / encode_s:,.0f} quarters/s   decode {len(val) / decode_s:,.0f} quarters/s")

    held_out = {
        "chorales": torch.from_numpy(val.astype(np.float32)),
        "not chorales": torch.from_numpy(not_chorale_slices().astype(np.float32)),
    }
    paths = [p for p in (args.vqvae, ORIGINAL, *args.compare) if file_of(p, ".json").exists()]
    print(f"{len(held_out['not chorales'])} quarters of {len(NOT_CHORALES)} pieces that are not chorales")
    reconstruction_rows(paths, held_out)

    train_codes = np.fromfile(args.codes / "train.bin", dtype=np.uint16).reshape(-1, CODES_PER_QUARTER)
    prior_rows(pipeline, codes, train_codes.astype(np.int64), args.codes, args.seeds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
