"""A prepared word dataset on disk (written by ``python -m tokenizer.prepare``).

Layout of ``data/NAME/``::

    vocab.json    the word vocabulary and the grid (steps per quarter)
    index.json    one entry per piece: name, split, offset and length in its split's .bin
    train.bin     uint16 word ids, the split's pieces one after another (START ... END each)
    val.bin
    test.bin
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence
from tokenizer.words import WordVocabulary, decode

SPLITS = ("train", "val", "test")


def split_of(name: str) -> str:
    """The split a piece belongs to, fixed by its name: about 80/10/10 train/val/test."""
    bucket = int(hashlib.sha1(name.encode()).hexdigest(), 16) % 10
    return "val" if bucket == 0 else "test" if bucket == 1 else "train"


@dataclass(frozen=True)
class PieceEntry:
    name: str
    split: str
    offset: int
    length: int
    time_signature: tuple[int, int]
    qpm: float


class WordDataset:
    """Read access to a prepared folder: its vocabulary, pieces and memory-mapped splits."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            vocab_json = json.loads((self.folder / "vocab.json").read_text())
            index = json.loads((self.folder / "index.json").read_text())
        except FileNotFoundError as err:
            raise CantorError(
                f"{self.folder}: not a prepared dataset ({Path(err.filename).name} is missing); "
                "run python -m tokenizer.prepare first"
            ) from None
        except (json.JSONDecodeError, OSError) as err:
            raise CantorError(f"{self.folder}: the dataset index is corrupt ({err})") from None
        if not isinstance(vocab_json, dict) or not isinstance(index, dict) or not isinstance(index.get("pieces"), list):
            raise CantorError(f"{self.folder}: the dataset index is corrupt; run python -m tokenizer.prepare again")
        try:
            self.vocab = WordVocabulary.from_json(vocab_json)
        except CantorError as err:
            raise CantorError(f"{self.folder / 'vocab.json'}: {err}") from None
        self.steps_per_quarter = vocab_json.get("steps_per_quarter")
        if self.steps_per_quarter not in (4, 8, 12) or type(self.steps_per_quarter) is not int:
            raise CantorError(f"{self.folder / 'vocab.json'}: steps_per_quarter must be 4, 8 or 12")
        try:
            self.pieces = [
                PieceEntry(p["name"], p["split"], p["offset"], p["length"], tuple(p["time_signature"]), p["qpm"])
                for p in index["pieces"]
            ]
        except (KeyError, TypeError) as err:
            raise CantorError(f"{self.folder / 'index.json'}: a piece's entry lacks {err}") from None
        self._by_name = {p.name: p for p in self.pieces}
        self._splits: dict[str, np.ndarray] = {}

    def split(self, split: str) -> np.ndarray:
        """The word ids of a split, memory-mapped (uint16); CantorError where one lies outside the
        vocabulary (a file from another preparation)."""
        if split not in self._splits:
            path = self.folder / f"{split}.bin"
            if not path.exists() or path.stat().st_size == 0:
                ids = np.zeros(0, dtype=np.uint16)
            else:
                ids = np.memmap(path, dtype=np.uint16, mode="r")
                if len(ids) and int(ids.max()) >= self.vocab.size:
                    raise CantorError(
                        f"{path}: word id {int(ids.max())} is outside its vocabulary of {self.vocab.size} words; "
                        "run python -m tokenizer.prepare again"
                    )
            self._splits[split] = ids
        return self._splits[split]

    def names(self, split: str | None = None) -> list[str]:
        return [p.name for p in self.pieces if split is None or p.split == split]

    def piece_ids(self, name: str) -> np.ndarray:
        entry = self.entry(name)
        return np.asarray(self.split(entry.split)[entry.offset : entry.offset + entry.length])

    def entry(self, name: str) -> PieceEntry:
        try:
            return self._by_name[name]
        except KeyError:
            raise CantorError(f"{self.folder.name} has no piece named {name!r}") from None

    def piece(self, name: str) -> NoteSequence:
        """The piece's notes, decoded from its words (velocities are not stored)."""
        entry = self.entry(name)
        return decode(
            self.piece_ids(name).tolist(),
            self.vocab,
            steps_per_quarter=self.steps_per_quarter,
            tempos=[(0, entry.qpm)],
            time_signature=entry.time_signature,
            name=name,
        )

    def key_shares(self, split: str = "train") -> dict[str, float]:
        """How often each key opens the split's pieces (their key words), as shares; {} for a
        vocabulary without key words."""
        if not self.vocab.form:
            return {}
        keys = [
            ids[1] for ids in map(self.piece_ids, self.names(split)) if len(ids) > 1 and self.vocab.is_key(int(ids[1]))
        ]
        counts = {self.vocab.key_of(int(k)): 0 for k in keys}
        for k in keys:
            counts[self.vocab.key_of(int(k))] += 1
        return {key: round(count / len(keys), 4) for key, count in sorted(counts.items(), key=lambda kv: -kv[1])}

    def content_hash(self) -> str:
        """A short hash of the vocabulary, index and ids, for model cards."""
        digest = hashlib.sha256()
        for file in ("vocab.json", "index.json", *(f"{s}.bin" for s in SPLITS)):
            path = self.folder / file
            if path.exists():
                digest.update(path.read_bytes())
        return digest.hexdigest()[:16]
