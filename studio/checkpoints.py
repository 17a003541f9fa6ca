"""The checkpoints the studio can offer: checkpoints/*.json of one kind, with their cards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizer.errors import CantorError
from tokenizer.jsonfile import read_json

MAX_CARD_BYTES = 1 << 20


@dataclass(frozen=True)
class CheckpointEntry:
    name: str
    path: Path  # the stem: checkpoints/NAME
    label: str  # what the dropdown shows: name, size and validation loss
    summary: str = ""  # a VQ-VAE's codebook size and held-out onset F1, from its card
    trained_on: str = ""  # a prior's VQ-VAE, from its card
    codes: int = 0  # a VQ-VAE's or a prior's codebook size K, from its card


def list_checkpoints(folder: Path, kind: str = "word") -> list[CheckpointEntry]:
    """Checkpoints of ``kind`` in ``folder``, by name. Unreadable JSON is listed as such, so that
    picking it gives the loader's clear message."""
    entries = []
    for json_path in sorted(Path(folder).glob("*.json")):
        try:
            info = read_json(json_path, MAX_CARD_BYTES)
            if info.get("kind") != kind:
                continue
            card = info.get("model_card", {})
            label = f"{json_path.stem} · {card.get('size', '?')} · val {card.get('val_loss', float('nan')):.3f}"
            summary, codes = "", 0
            if kind == "vqvae":
                codes = int(info["vqvae_config"]["codes"])
                summary = f"{codes} codes"
                if "onset_f1" in card:
                    summary += f", held-out onset F1 {float(card['onset_f1']):.3f}"
            elif kind == "prior":
                codes = int(info.get("codes", 0))
            trained_on = str(info.get("vqvae", ""))[:100]
        except (CantorError, AttributeError, KeyError, TypeError, ValueError):
            label, summary, trained_on, codes = f"{json_path.stem} · unreadable", "", "", 0
        entry = CheckpointEntry(json_path.stem, json_path.with_suffix(""), label, summary, trained_on, codes)
        entries.append(entry)
    return entries
