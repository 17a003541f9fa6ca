"""Encode a prepared dataset's quarters into VQ-VAE codes, for training the prior.

    python -m models.encode_codes --vqvae checkpoints/chorales_vqvae --data data/chorales

Writes DATA/codes/train.bin and val.bin (uint16, 16 codes a quarter, pieces one after another)
and index.json (the VQ-VAE, K, and each piece's split, offset and length in codes).

``--transpose N`` adds to the train split every transposition of each train piece by up to N
semitones either way that stays on the piano (``name@+3``): the prior sees each piece in up to
2N + 1 keys, as the word model does. Val and test stay as written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.codebooks import Codebooks
from tokenizer.atomic import atomic_write_bytes, atomic_write_text
from tokenizer.augment import legal_transpositions, transpose
from tokenizer.cli import HelpFormatter, whole
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--vqvae", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("data/chorales"))
    parser.add_argument("--out", type=Path, default=None, help="default: DATA/codes")
    parser.add_argument("--transpose", type=whole(0, 12), default=0, help="train pieces also in keys up to N away")
    args = parser.parse_args(argv)
    out = args.out or args.data / "codes"
    try:
        codebooks = Codebooks(args.vqvae)
        dataset = WordDataset(args.data)
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": []}
    offsets = dict.fromkeys(parts, 0)
    pieces = []
    for name in tqdm(dataset.names(), desc="encoding quarters", unit="piece"):
        split = dataset.entry(name).split
        piece = dataset.piece(name)
        shifts = legal_transpositions(piece, args.transpose) if split == "train" else [0]
        for shift in sorted(shifts, key=abs):  # the piece as written first
            slices, _ = codebooks.slices_of(transpose(piece, shift))
            codes = codebooks.encode(slices).reshape(-1).astype(np.uint16)
            label = name if shift == 0 else f"{name}@{shift:+d}"
            pieces.append({"name": label, "split": split, "offset": offsets[split], "length": len(codes)})
            parts[split].append(codes)
            offsets[split] += len(codes)
    out.mkdir(parents=True, exist_ok=True)
    for split, arrays in parts.items():
        ids = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.uint16)
        atomic_write_bytes(out / f"{split}.bin", ids.tobytes())
    index = {
        "vqvae": args.vqvae.name,
        "codes": codebooks.codes,
        "data": str(args.data),
        "transpose": args.transpose,
        "pieces": pieces,
    }
    atomic_write_text(out / "index.json", json.dumps(index, indent=1) + "\n")
    print(f"wrote {sum(offsets.values())} codes of {len(pieces)} pieces into {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
