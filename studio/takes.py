"""Takes: every finished or stopped generation, kept with its settings, autosaved to JSON.

The autosave file is rewritten atomically after each change, so a crash or a closed window
loses nothing. A corrupt file (unreadable, too large, too deeply nested, not a list of takes) is
moved aside under a name no earlier one has (``takes.json.corrupt``, ``takes.json.corrupt-2``, ...)
and the list starts empty, with a message; a single take that cannot be read (a value of the wrong
type, a piece no player could play) is set aside alone. Start-up never fails on it.
"""

from __future__ import annotations

import json
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path

from tokenizer.atomic import aside_path, atomic_write_text
from tokenizer.errors import CantorError
from tokenizer.notes import Note, NoteSequence

MAX_TAKES_BYTES = 256 << 20  # 256 MB: thousands of long takes
LABEL_CHARS = 26  # what the takes list shows of a label without cutting it (1000-1280 px windows)


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
    uid: str = field(default_factory=lambda: uuid.uuid4().hex)  # which take it is, whatever its number becomes

    @property
    def label(self) -> str:
        """Short enough for the takes list (LABEL_CHARS): number, mode and the primer's name, cut to
        fit (the seed is said when the take is picked)."""
        head, tail = f"#{self.number} {self.mode}", " (stopped)" if self.stopped else ""
        primer = f" {self.settings['primer']}" if self.settings.get("primer") else ""
        room = LABEL_CHARS - len(head) - len(tail)
        if len(primer) > room:
            primer = primer[: room - 1] + "…" if room > 2 else ""
        return head + primer + tail


def _piece_to_json(piece: NoteSequence) -> dict:
    return {
        "notes": [list(n) for n in piece.notes],
        "steps_per_quarter": piece.steps_per_quarter,
        "tempos": [list(t) for t in piece.tempos],
        "time_signature": list(piece.time_signature),
        "name": piece.name,
        "phrase_ends": list(piece.phrase_ends),
        "key": piece.key,
    }


def _piece_from_json(data: dict) -> NoteSequence:
    """A piece from its saved form; ValueError (or TypeError, KeyError) for anything else."""
    piece = NoteSequence(
        notes=[Note(*(_whole(v) for v in n)) for n in data["notes"]],
        steps_per_quarter=_whole(data["steps_per_quarter"]),
        tempos=[(_whole(step), float(qpm)) for step, qpm in data["tempos"]],
        time_signature=tuple(_whole(v) for v in data["time_signature"]),
        name=str(data.get("name", "")),
        phrase_ends=[_whole(step) for step in data.get("phrase_ends", [])],  # takes saved before phrases: none
        key=data.get("key"),
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
        uid=str(t.get("uid") or f"{t['number']}-{t.get('created', 0)}"),  # takes saved before uids
    )


class TakeStore:
    """The takes, newest first, mirrored to ``path``.

    Two studios may share a home: each save merges with what the other wrote since (under a lock
    where the platform has one), so neither loses the other's takes, and a take deleted here is not
    brought back. A take that cannot be read is set aside alone (in ``takes.json.corrupt``) and
    the others load; two takes with one number are told apart by renumbering the later.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.takes: list[Take] = []
        self.message = ""
        self._deleted: set[str] = set()  # the uids of takes deleted here
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            with _locked(self.path):
                self.takes, bad, self._deleted = self._read()
        except Exception as err:  # whatever is in the file, the studio starts
            cause = "nested too deeply" if isinstance(err, RecursionError) else f"{type(err).__name__}: {err}"
            self.message = f"{self.path.name} was unreadable ({cause[:120]}); {self._set_aside()}"
            self.takes = []
            return
        if bad:
            aside = aside_path(self.path)
            try:
                atomic_write_text(aside, json.dumps({"takes": bad}))
                kept = f"kept aside in {aside.name}"
            except CantorError:
                kept = "and could not be kept aside"
            self.message = f"{len(bad)} of the takes in {self.path.name} could not be read, {kept}; the others are here"
            self.save()
        renumbered = self._renumber()
        if renumbered:
            self.message = (
                self.message + "; " if self.message else ""
            ) + f"{renumbered} takes renumbered (numbers repeated)"
            self.save()

    def _read(self) -> tuple[list[Take], list, set[str]]:
        """The takes on disk that can be read, the raw ones that cannot, and the uids of the takes
        deleted (by any studio); an exception for a file that is not a list of takes at all."""
        if not self.path.is_file() or self.path.stat().st_size > MAX_TAKES_BYTES:
            raise ValueError(f"not a file of at most {MAX_TAKES_BYTES >> 20} MB")
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("takes"), list):
            raise ValueError("no list of takes")
        takes, bad = [], []
        for raw in data["takes"]:
            try:
                takes.append(_take_from_json(raw))
            except Exception:  # this take alone is unreadable
                bad.append(raw)
        deleted = data.get("deleted", [])
        return takes, bad, {str(uid) for uid in deleted} if isinstance(deleted, list) else set()

    def _set_aside(self) -> str:
        aside = aside_path(self.path)
        try:
            self.path.replace(aside)
            return f"kept aside as {aside.name}"
        except OSError:
            return "and could not be moved aside"

    def _renumber(self) -> int:
        """Give every take but the first of a repeated number a new one; how many were renumbered."""
        seen, renumbered = set(), 0
        for take in sorted(self.takes, key=lambda t: t.created):
            if take.number in seen:
                take.number = self.next_number()
                renumbered += 1
            seen.add(take.number)
        return renumbered

    def save(self) -> None:
        """Write the takes, merged with what another studio wrote: its new takes are added, the
        takes it deleted are dropped, and a take both know keeps the number on disk. CantorError if
        the file cannot be written."""
        with _locked(self.path):
            if self.path.exists():
                try:
                    on_disk, _, deleted_there = self._read()
                except Exception:  # an unreadable file is replaced by what this studio holds
                    on_disk, deleted_there = [], set()
                self._deleted |= deleted_there
                numbers = {t.uid: t.number for t in on_disk}
                merged = [t for t in self.takes if t.uid not in self._deleted]
                for t in merged:
                    t.number = numbers.get(t.uid, t.number)
                known = {t.uid for t in merged} | self._deleted
                merged += [t for t in on_disk if t.uid not in known]
                self.takes = sorted(merged, key=lambda t: t.created, reverse=True)
                self._renumber()
            data = {
                "takes": [
                    {
                        **{f.name: getattr(t, f.name) for f in fields(t)},  # shallow: asdict would copy every note
                        "primer": _piece_to_json(t.primer),
                        "generated": _piece_to_json(t.generated),
                    }
                    for t in self.takes
                ],
                "deleted": sorted(self._deleted),
            }
            atomic_write_text(self.path, json.dumps(data))

    def add(self, take: Take) -> Take:
        self.takes.insert(0, take)
        self.save()
        return take

    def next_number(self) -> int:
        return max((t.number for t in self.takes), default=0) + 1

    def delete(self, number: int) -> None:
        """Delete take ``number``; if the file cannot be written, the take stays (CantorError)."""
        kept = list(self.takes)
        gone = [t for t in self.takes if t.number == number]
        self.takes = [t for t in self.takes if t.number != number]
        self._deleted |= {t.uid for t in gone}
        try:
            self.save()
        except CantorError:
            self.takes = kept
            self._deleted -= {t.uid for t in gone}
            raise

    def get(self, number: int) -> Take | None:
        return next((t for t in self.takes if t.number == number), None)


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock on ``path``'s lock file while its takes are read and written, so two
    studios' saves take turns (where fcntl exists; elsewhere the merge alone)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(f".{path.name}.lock"), "a")
    except OSError:  # a read-only home: reading needs no lock, and writing fails on its own
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
