"""Read a JSON file a user may have handed in (a checkpoint's card), within a size budget."""

from __future__ import annotations

import json
from pathlib import Path

from tokenizer.errors import CantorError


def read_json(path: Path, max_bytes: int) -> object:
    """The parsed file; CantorError naming the file and the cause: missing, not a regular file
    (a link to /dev/zero reads forever), larger than ``max_bytes``, nested too deeply, or not JSON."""
    path = Path(path)
    if not path.exists():
        raise CantorError(f"{path.name}: no such file")
    if not path.is_file():
        raise CantorError(f"{path.name}: not a regular file")
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise CantorError(f"{path.name}: larger than {max_bytes // 1024} KB")
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise CantorError(f"{path.name}: the JSON is corrupt (nested too deeply)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as err:
        raise CantorError(f"{path.name}: the JSON is corrupt ({err})") from None
