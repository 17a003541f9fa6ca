"""Takes: every finished or stopped generation, kept with its settings, autosaved to JSON.

The autosave file is rewritten atomically after each change, so a crash or a closed window
loses nothing. A corrupt file is moved aside (``takes.json.corrupt``) and the list starts
empty, with a message; start-up never fails on it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from tokenizer.atomic import atomic_write_text
from tokenizer.notes import Note, NoteSequence


@dataclass
class Take:
    number: int
    mode: str  # "new", "continue", "retry" (or "prior" for the codebook tab)
    settings: dict  # temperature, words, top_k, top_p, seed ...
    checkpoint: str
    primer: NoteSequence
    generated: NoteSequence
    stopped: bool = False
    created: float = field(default_factory=time.time)

    @property
    def label(self) -> str:
        """Short enough for the takes list: number, mode, the primer's name, the seed."""
        s = self.settings
        primer = f" {s['primer']}" if s.get("primer") else ""
        stop = " · stopped" if self.stopped else ""
        return f"#{self.number} {self.mode}{primer} · seed {s.get('seed', '?')}{stop}"


def _piece_to_json(piece: NoteSequence) -> dict:
    return {
        "notes": [list(n) for n in piece.notes],
        "steps_per_quarter": piece.steps_per_quarter,
        "tempos": [list(t) for t in piece.tempos],
        "time_signature": list(piece.time_signature),
        "name": piece.name,
    }


def _piece_from_json(data: dict) -> NoteSequence:
    return NoteSequence(
        notes=[Note(*map(int, n)) for n in data["notes"]],
        steps_per_quarter=int(data["steps_per_quarter"]),
        tempos=[(int(s), float(q)) for s, q in data["tempos"]],
        time_signature=tuple(data["time_signature"]),
        name=data.get("name", ""),
    )


class TakeStore:
    """The takes, newest first, mirrored to ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.takes: list[Take] = []
        self.message = ""
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.takes = [
                Take(
                    number=int(t["number"]),
                    mode=t["mode"],
                    settings=dict(t["settings"]),
                    checkpoint=t["checkpoint"],
                    primer=_piece_from_json(t["primer"]),
                    generated=_piece_from_json(t["generated"]),
                    stopped=bool(t.get("stopped", False)),
                    created=float(t.get("created", 0)),
                )
                for t in data["takes"]
            ]
        except (OSError, ValueError, KeyError, TypeError) as err:
            aside = self.path.with_name(self.path.name + ".corrupt")
            self.path.replace(aside)
            self.takes = []
            self.message = f"{self.path.name} was unreadable ({type(err).__name__}); kept aside as {aside.name}"

    def save(self) -> None:
        data = {
            "takes": [
                {
                    **{f.name: getattr(t, f.name) for f in fields(t)},  # shallow: asdict would copy every note
                    "primer": _piece_to_json(t.primer),
                    "generated": _piece_to_json(t.generated),
                }
                for t in self.takes
            ]
        }
        atomic_write_text(self.path, json.dumps(data))

    def add(self, take: Take) -> Take:
        self.takes.insert(0, take)
        self.save()
        return take

    def next_number(self) -> int:
        return max((t.number for t in self.takes), default=0) + 1

    def delete(self, number: int) -> None:
        self.takes = [t for t in self.takes if t.number != number]
        self.save()

    def get(self, number: int) -> Take | None:
        return next((t for t in self.takes if t.number == number), None)
