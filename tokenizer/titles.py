"""The titles of Bach's chorales, so that a musician can find one by its hymn.

music21 names each chorale by its BWV number ("bwv1.6"); its table of the Riemenschneider
edition (``music21.corpus.chorales.ChoraleListRKBWV``) gives the titles of 341 of the 410 in the
built-in data. The rest keep their number alone.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

log = logging.getLogger(__name__)
_BWV = re.compile(r"bwv(\d+(?:\.\d+)?)", re.IGNORECASE)


def chorale_titles(names: Iterable[str]) -> dict[str, str]:
    """{name: title} for the names that are BWV numbers with a title in music21's table ("bwv1.6-a"
    is a version of BWV 1.6); {} where music21's table cannot be read."""
    try:
        from music21.corpus.chorales import ChoraleListRKBWV

        table = ChoraleListRKBWV().byBWV
    except Exception as err:  # the titles are a courtesy: never a reason not to load
        log.info("no chorale titles: %s", err)
        return {}
    titles = {}
    for name in names:
        match = _BWV.fullmatch(name.split("-")[0])
        entry = table.get(match.group(1)) if match else None
        if entry and entry.get("title"):
            titles[name] = str(entry["title"])
    return titles
