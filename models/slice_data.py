"""Quarter slices of a prepared dataset, for the VQ-VAE, with transposition on the fly."""

from __future__ import annotations

import numpy as np
import torch

from tokenizer.dataset import WordDataset
from tokenizer.slices import piece_to_slices


def dataset_slices(dataset: WordDataset, split: str) -> tuple[np.ndarray, list[tuple[str, int, int]]]:
    """All quarter slices of a split, (N, 88, 32) uint8, and (piece, first slice, count) for each piece."""
    slices, index, start = [], [], 0
    for name in dataset.names(split):
        piece_slices, _ = piece_to_slices(dataset.piece(name))
        slices.append(piece_slices)
        index.append((name, start, len(piece_slices)))
        start += len(piece_slices)
    return np.concatenate(slices), index


class SliceBatches:
    """Random batches of slices; training batches are transposed by up to +-``max_transpose``
    semitones, never pushing a note off the 88 rows."""

    def __init__(self, slices: np.ndarray, max_transpose: int = 6) -> None:
        self.slices = slices
        rows = slices.any(axis=2)  # (N, 88): which pitch rows hold notes
        has_notes = rows.any(axis=1)
        self.low = np.where(has_notes, rows.argmax(axis=1), 0)
        self.high = np.where(has_notes, 87 - rows[:, ::-1].argmax(axis=1), 87)
        self.max_transpose = max_transpose

    def batch(self, rng: np.random.Generator, size: int, augment: bool) -> torch.Tensor:
        picks = rng.integers(0, len(self.slices), size=size)
        out = self.slices[picks].copy()
        if augment and self.max_transpose:
            for i, k in enumerate(picks):
                lowest = max(-self.max_transpose, -int(self.low[k]))
                highest = min(self.max_transpose, 87 - int(self.high[k]))
                shift = int(rng.integers(lowest, highest + 1))
                out[i] = np.roll(out[i], shift, axis=0)
        return torch.from_numpy(out[:, None].astype(np.float32))
