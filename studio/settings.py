"""The studio's small settings file (SoundFont, instrument, tempo, export folder), in JSON.

Lives in the studio's home folder (``$CANTOR_HOME``, default ``~/.cantor``) beside the takes.
An unreadable file is ignored (defaults are used) rather than stopping the studio.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from tokenizer.atomic import atomic_write_text
from tokenizer.errors import CantorError


def studio_home() -> Path:
    return Path(os.environ.get("CANTOR_HOME", Path.home() / ".cantor"))


@dataclass
class Settings:
    soundfont: str = ""  # empty: the default TimGM6mb.sf2
    instrument: str = "Piano"
    bpm: int = 96
    export_folder: str = ""
    path: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Settings:
        known = {f.name for f in fields(cls)} - {"path"}
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            values = {k: v for k, v in data.items() if k in known}
            return cls(**values, path=Path(path))
        except (OSError, ValueError, TypeError):
            return cls(path=Path(path))

    def save(self) -> None:
        if self.path is None:
            return
        data = {k: v for k, v in asdict(self).items() if k != "path"}
        try:
            atomic_write_text(self.path, json.dumps(data, indent=1))
        except CantorError:
            pass  # settings are a convenience: an unwritable home must not stop the music

    def soundfont_path(self) -> Path | None:
        return Path(self.soundfont) if self.soundfont else None
