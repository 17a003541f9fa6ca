"""Takes: every finished or stopped generation, kept with its settings, autosaved to JSON.

The autosave file is rewritten atomically after each change, so a crash or a closed window
loses nothing. A corrupt file (unreadable, too large, too deeply nested, a value of the wrong
type, a piece no player could play) is moved aside under a name no earlier one has
(``takes.json.corrupt``, ``takes.json.corrupt-2``, ...) and the list starts empty, with a
message; start-up never fails on it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

from tokenizer.atomic import atomic_write_text
from tokenizer.notes import Note, NoteSequence

MAX_TAKES_BYTES = 256 << 20  # 256 MB: thousands of long takes


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
    """A piece from its saved form; ValueError (or TypeError, KeyError) for anything else."""
    piece = NoteSequence(
        notes=[Note(*(_whole(v) for v in n)) for n in data["notes"]],
        steps_per_quarter=_whole(data["steps_per_quarter"]),
        tempos=[(_whole(step), float(qpm)) for step, qpm in data["tempos"]],
        time_signature=tuple(_whole(v) for v in data["time_signature"]),
        name=str(data.get("name", "")),
    )
    piece.validate()
    return piece


def _whole(value: object) -> int:
    if type(value) is not int:  # JSON's Infinity and NaN are floats, and so is 4.5
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _take_from_json(t: dict) -> Take:
    if not isinstance(t.get("settings"), dict) or not all(isinstance(t.get(k), str) for k in ("mode", "checkpoint")):
        raise ValueError("a take's mode, checkpoint or settings are of the wrong type")
    return Take(
        number=_whole(t["number"]),
        mode=t["mode"],
        settings=t["settings"],
        checkpoint=t["checkpoint"],
        primer=_piece_from_json(t["primer"]),
        generated=_piece_from_json(t["generated"]),
        stopped=bool(t.get("stopped", False)),
        created=float(t.get("created", 0)),
    )


def aside_path(path: Path) -> Path:
    """``NAME.corrupt``, or ``NAME.corrupt-2``, ... : a name no file has yet."""
    aside = path.with_name(path.name + ".corrupt")
    count = 1
    while aside.exists():
        count += 1
        aside = path.with_name(f"{path.name}.corrupt-{count}")
    return aside


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
            if not self.path.is_file() or self.path.stat().st_size > MAX_TAKES_BYTES:
                raise ValueError(f"not a file of at most {MAX_TAKES_BYTES >> 20} MB")
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.takes = [_take_from_json(t) for t in data["takes"]]
        except Exception as err:  # whatever is in the file, the studio starts
            aside = aside_path(self.path)
            try:
                self.path.replace(aside)
                kept = f"kept aside as {aside.name}"
            except OSError:
                kept = "and could not be moved aside"
            self.takes = []
            cause = "nested too deeply" if isinstance(err, RecursionError) else f"{type(err).__name__}: {err}"
            self.message = f"{self.path.name} was unreadable ({cause[:120]}); {kept}"

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
