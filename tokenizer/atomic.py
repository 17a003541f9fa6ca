"""Atomic file writes: temp file beside the target, then rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from tokenizer.errors import CantorError


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temp_path)`` on a temp file beside ``path``, then rename it onto ``path``.

    A crash or a full disk never leaves a half-written file at ``path``.
    """
    path = Path(path)
    temp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        temp = Path(temp_name)
        write(temp)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as err:
        raise CantorError(f"{path.name}: could not write ({err.strerror or err})") from None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return path


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete temp files that a killed writer of ``path`` left behind (a SIGKILL skips every cleanup).

    Call it only where no other live process writes ``path``, e.g. when a training run starts.
    """
    path = Path(path)
    stale = sorted(path.parent.glob(f".{path.name}.*.tmp"))
    for temp in stale:
        temp.unlink(missing_ok=True)
    return stale


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda temp: temp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def aside_path(path: str | Path) -> Path:
    """``NAME.corrupt``, or ``NAME.corrupt-2``, ... : a name beside ``path`` that no file has yet,
    to keep an unreadable file under rather than overwrite it."""
    path = Path(path)
    aside = path.with_name(path.name + ".corrupt")
    count = 1
    while aside.exists():
        count += 1
        aside = path.with_name(f"{path.name}.corrupt-{count}")
    return aside
