"""Ship a trained word model or prior: its weights in 16-bit floats, its card and its loss curve.

    python -m models.ship runs/word/form1024b checkpoints/chorales_small

The weights are stored as float16 (half the bytes; the repository keeps every shipped model) and
read back into float32, so the model computes as it was trained; the card says so
(``model_card.weights``). A float16 weight differs from its float32 value by at most about 0.05 %,
so a seed's piece may differ a little from the one the training run would write: the shipped
checkpoint's figures are measured on the shipped file.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

from models.checkpoint import file_of, load_gpt, read_info, save_checkpoint, stem
from tokenizer.cli import HelpFormatter
from tokenizer.errors import CantorError


def ship(source: Path, target: Path) -> Path:
    """Write ``source``'s GPT with float16 weights to ``target`` (+ .json, + .png if there is one)."""
    kind = read_info(source).get("kind")
    if kind not in ("word", "prior"):
        raise CantorError(f"{stem(source).name}: a {kind!r} checkpoint; only word models and priors ship this way")
    model, info = load_gpt(source, kind)
    model.half()
    card = {**info.get("model_card", {}), "weights": "float16", "shipped_from": str(stem(source))}
    info = {key: value for key, value in info.items() if key != "format"}
    saved = save_checkpoint(target, model, {**info, "model_card": card})
    curve = file_of(source, ".png")
    if curve.exists():
        shutil.copyfile(curve, file_of(target, ".png"))
    return saved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("source", type=Path, help="a trained checkpoint (stem)")
    parser.add_argument("target", type=Path, help="where it ships (stem), e.g. checkpoints/chorales_small")
    args = parser.parse_args(argv)
    try:
        torch.set_num_threads(1)
        saved = ship(args.source, args.target)
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"shipped {saved}.safetensors (float16), its card and loss curve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
