"""The codebook pipeline: throughput, generation time, and Cantor's VQ-VAE vs the original design.

    python -m bench.codebooks

- encode and decode throughput in quarters/s over the val split's quarters (batches of 256);
- time to generate 48 quarters with the shipped prior, sliding one code at a time with the full
  context (the studio's path), beside a full recompute of the window for every code (nanoGPT's
  generate) over the same weights;
- note-onset F1, frame F1, codebook perplexity and dead codes on the same held-out quarters for
  the shipped VQ-VAE and for the original configuration (random init, gradient codebook,
  no restart, plain BCE) trained by the same command with ``--original`` for the same steps.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from models.codebooks import CODES_PER_QUARTER, Codebooks, load_vqvae
from models.sampling import SamplingSettings
from models.slice_data import dataset_slices
from models.vqvae import reconstruction_scores
from tokenizer.dataset import WordDataset

VQVAE = Path("checkpoints/chorales_vqvae")
ORIGINAL = Path("checkpoints/chorales_vqvae_original")
PRIOR = Path("checkpoints/chorales_prior")


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
    generator = torch.Generator().manual_seed(seed)
    idx = torch.tensor([prompt])
    for _ in range(count):
        logits, _ = model(idx[:, -model.config.block_size :])
        logits = logits[0, -1, :codes]  # never the start token
        kth = torch.topk(logits, 8).values[-1]
        probs = torch.softmax(logits.masked_fill(logits < kth, float("-inf")), dim=-1)
        idx = torch.cat([idx, torch.multinomial(probs, 1, generator=generator)[None]], dim=1)


def main() -> None:
    torch.set_num_threads(1)
    val, _ = dataset_slices(WordDataset("data/chorales"), "val")
    held_out = torch.from_numpy(val.astype(np.float32))
    pipeline = Codebooks(VQVAE, PRIOR if PRIOR.with_suffix(".json").exists() else None)
    started = time.perf_counter()
    codes = np.concatenate([pipeline.encode(val[i : i + 256]) for i in range(0, len(val), 256)])
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(0, len(codes), 256):
        pipeline.decode_slices(codes[i : i + 256])
    decode_s = time.perf_counter() - started
    print(f"{len(val)} held-out quarters, 1 torch thread")
    print(f"encode {len(val) / encode_s:,.0f} quarters/s   decode {len(val) / decode_s:,.0f} quarters/s")

    if pipeline.prior is not None:
        settings = SamplingSettings(top_k=8, seed=1)
        started = time.perf_counter()
        made = sum(1 for _ in pipeline.stream_codes(48, settings))
        ours = time.perf_counter() - started
        started = time.perf_counter()
        full_recompute(pipeline.prior, [pipeline.start_id], 48 * 16, pipeline.codes, 1)
        theirs = time.perf_counter() - started
        print(
            f"generate 48 quarters ({made} codes): Cantor sliding with KV cache {ours:.1f} s, "
            f"full recompute {theirs:.1f} s, ratio {theirs / ours:.2f}x"
        )

    rows = {}
    for name, path in (("Cantor", VQVAE), ("original", ORIGINAL)):
        if path.with_suffix(".json").exists():
            model, info = load_vqvae(path)
            rows[name] = (reconstruction_scores(model, held_out), info["model_card"].get("steps"))
    print(f"{'VQ-VAE (16 codes x 16)':24} {'steps':>6} {'onset F1':>9} {'frame F1':>9} {'perplexity':>11} {'dead':>5}")
    for name, (scores, steps) in rows.items():
        print(
            f"{name:24} {steps:>6} {scores['onset_f1']:9.3f} {scores['frame_f1']:9.3f} "
            f"{scores['perplexity']:11.2f} {scores['dead_codes']:5d}"
        )


if __name__ == "__main__":
    main()
