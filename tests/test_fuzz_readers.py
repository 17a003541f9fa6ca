"""Fuzzing the readers with mutated real files (slow; run on demand):

    .venv/bin/python -m pytest -m slow tests/test_fuzz_readers.py -s

Every mutated file must end in a piece or in one CantorError: no other exception, no read past
its budget, and the reading process's memory stays flat (each parse runs in a child process with
its own memory limit, tokenizer/budget.py). The figures print with -s.
"""

from __future__ import annotations

import os
import random
import resource
import time
from pathlib import Path

import pytest

from tokenizer import CantorError
from tokenizer.budget import Budget
from tokenizer.readers import read_piece
from tokenizer.writers import write_midi

FILES = int(os.environ.get("CANTOR_FUZZ_FILES", "400"))
BUDGET = Budget(seconds=5, memory_bytes=512 << 20)
ABC = "X:1\nT:Fuzz\nM:3/4\nL:1/8\nK:G\nGAB c2d|e2d cBA|G6|]\n"


def seed_files(folder: Path, chorales) -> list[Path]:
    """Real files of every format the readers take: MIDI written by Cantor, the corpus's own
    compressed MusicXML (a chorale and a rag), uncompressed MusicXML, ABC, and the hanging ABC."""
    from music21 import corpus

    seeds = [write_midi(chorales.piece(name), folder / f"{name}.mid") for name in chorales.names()[:3]]
    for work in ("bach/bwv66.6", "joplin/maple_leaf_rag"):
        source = Path(corpus.getWork(work))
        seeds.append(folder / source.name)
        seeds[-1].write_bytes(source.read_bytes())
    xml = folder / "bwv66.musicxml"
    corpus.parse("bach/bwv66.6").write("musicxml", fp=str(xml))
    seeds.append(xml)
    (folder / "tune.abc").write_text(ABC)
    seeds.append(folder / "tune.abc")
    seeds.append(Path(__file__).parent / "data" / "hang.abc")
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One of the damages a download or a disk does: flipped bytes, a cut, a repeated or
    inserted run, a length field set to its largest value."""
    data = bytearray(data)
    kind = rng.randrange(5)
    if kind == 0:
        for _ in range(rng.randint(1, 20)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind == 1:
        data = data[: rng.randrange(len(data))]
    elif kind == 2:
        start = rng.randrange(len(data))
        run = data[start : start + rng.randint(1, 4096)]
        data[start:start] = run * rng.randint(1, 50)
    elif kind == 3:
        start = rng.randrange(len(data))
        data[start:start] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))
    else:
        start = rng.randrange(max(1, len(data) - 4))
        data[start : start + 4] = b"\xff\xff\xff\xff"
    return bytes(data)


@pytest.mark.slow
def test_mutated_files_end_in_a_piece_or_one_clear_error(tmp_path, chorales):
    rng = random.Random(0)
    seeds = seed_files(tmp_path, chorales)
    originals = {path: path.read_bytes() for path in seeds}
    memory_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = {"read": 0, "clear error": 0, "crash": 0, "hang": 0}
    crashes: list[str] = []
    slowest = 0.0
    for index in range(FILES):
        seed = rng.choice(seeds)
        path = tmp_path / f"fuzz{index}{seed.suffix}"
        path.write_bytes(mutate(originals[seed], rng))
        started = time.monotonic()
        try:
            read_piece(path, budget=BUDGET)
            outcomes["read"] += 1
        except CantorError:
            outcomes["clear error"] += 1
        except Exception as error:  # what this test looks for
            outcomes["crash"] += 1
            crashes.append(f"{seed.name}: {type(error).__name__}: {error}")
        elapsed = time.monotonic() - started
        slowest = max(slowest, elapsed)
        if elapsed > BUDGET.seconds + 10:
            outcomes["hang"] += 1
        path.unlink()
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - memory_before) / 1024
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        f"\n{FILES} mutated files from {len(seeds)} seeds: {outcomes}; slowest read {slowest:.1f} s "
        f"(budget {BUDGET.seconds:g} s); this process grew {grown_mb:.0f} MB; largest child {children_mb:.0f} MB"
    )
    assert not crashes, crashes[:5]
    assert outcomes["hang"] == 0
    assert grown_mb < 200
