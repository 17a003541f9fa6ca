"""Prepare a word dataset: parse pieces in a process pool, encode them, write data/NAME/.

    python -m tokenizer.prepare                                   # the Bach chorales -> data/chorales
    python -m tokenizer.prepare --source ~/my_midi --name mine    # your own folder  -> data/mine

Pieces that cannot be read are skipped and listed with their reasons; the command exits 0 only
if at least one piece was prepared. Augmentation happens later, when training.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tokenizer.atomic import atomic_write_bytes, atomic_write_text
from tokenizer.cli import HelpFormatter
from tokenizer.dataset import SPLITS, split_of
from tokenizer.errors import CantorError
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH
from tokenizer.readers import MIDI_SUFFIXES, MUSIC21_SUFFIXES, read_piece
from tokenizer.words import WordVocabulary, encode

CHORALE_SUFFIXES = (".mxl", ".krn", ".xml")


def chorale_sources() -> list[tuple[str, str]]:
    """(name, path) of each Bach chorale in music21's corpus, one file per chorale."""
    from music21 import corpus

    by_stem: dict[str, Path] = {}
    for path in sorted(corpus.getComposer("bach")):
        if path.suffix in CHORALE_SUFFIXES and path.stem not in by_stem:
            by_stem[path.stem] = path
    return [(stem, str(path)) for stem, path in sorted(by_stem.items())]


def folder_sources(folder: Path) -> list[tuple[str, str]]:
    """(name, path) of each music file under ``folder``, named by its path inside it."""
    if not folder.is_dir():
        raise CantorError(f"{folder}: no such folder")
    suffixes = MIDI_SUFFIXES + MUSIC21_SUFFIXES
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
    return [(str(p.relative_to(folder)), str(p)) for p in files]


def _encode_one(job: tuple[str, str, int, int]) -> tuple[str, dict | str]:
    """Worker: (name, path, steps per quarter, dMAX) -> (name, entry with ids) or (name, reason)."""
    name, path, steps_per_quarter, max_duration = job
    try:
        piece = read_piece(path, steps_per_quarter)
        in_range = [n for n in piece.notes if LOWEST_PIANO_PITCH <= n.pitch <= HIGHEST_PIANO_PITCH]
        if not in_range:
            raise CantorError(f"{Path(path).name}: every note is outside the piano range 21-108")
        dropped = len(piece.notes) - len(in_range)
        piece.notes = in_range
        ids = encode(piece, WordVocabulary(max_duration))
    except CantorError as err:
        return name, str(err)
    return name, {
        "ids": ids,
        "time_signature": list(piece.time_signature),
        "qpm": piece.qpm,
        "notes": len(piece.notes),
        "dropped_out_of_range": dropped,
    }


def prepare(
    sources: list[tuple[str, str]],
    out: Path,
    steps_per_quarter: int = 4,
    workers: int | None = None,
) -> tuple[int, list[tuple[str, str]]]:
    """Encode ``sources`` into ``out``; returns (pieces prepared, [(name, reason skipped)])."""
    vocab = WordVocabulary(max_duration=4 * steps_per_quarter)
    jobs = [(name, path, steps_per_quarter, vocab.max_duration) for name, path in sources]
    results: dict[str, dict] = {}
    skipped: list[tuple[str, str]] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = pool.map(_encode_one, jobs, chunksize=4)
        for name, result in tqdm(done, total=len(jobs), desc=f"preparing {out.name}", unit="piece"):
            if isinstance(result, str):
                skipped.append((name, result))
            else:
                results[name] = result
    if not results:
        return 0, skipped
    pieces, arrays = [], {split: [] for split in SPLITS}
    offsets = dict.fromkeys(SPLITS, 0)
    for name in sorted(results):
        result, split = results[name], split_of(name)
        pieces.append(
            {
                "name": name,
                "split": split,
                "offset": offsets[split],
                "length": len(result["ids"]),
                "time_signature": result["time_signature"],
                "qpm": result["qpm"],
                "notes": result["notes"],
                "dropped_out_of_range": result["dropped_out_of_range"],
            }
        )
        arrays[split].append(np.asarray(result["ids"], dtype=np.uint16))
        offsets[split] += len(result["ids"])
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        ids = np.concatenate(arrays[split]) if arrays[split] else np.zeros(0, dtype=np.uint16)
        atomic_write_bytes(out / f"{split}.bin", ids.tobytes())
    vocab_json = {**vocab.to_json(), "steps_per_quarter": steps_per_quarter}
    atomic_write_text(out / "vocab.json", json.dumps(vocab_json, indent=1) + "\n")
    index = {"pieces": pieces, "skipped": [{"name": n, "reason": r} for n, r in skipped]}
    atomic_write_text(out / "index.json", json.dumps(index, indent=1) + "\n")
    return len(results), skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--source", type=Path, help="a folder of MIDI/MusicXML files (default: the Bach chorales)")
    parser.add_argument("--name", help="the dataset's name: writes data/NAME/ (default: chorales)")
    parser.add_argument("--steps-per-quarter", type=int, default=4, choices=(4, 8, 12))
    parser.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    args = parser.parse_args(argv)
    try:
        sources = folder_sources(args.source) if args.source else chorale_sources()
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    name = args.name or (args.source.name if args.source else "chorales")
    if not sources:
        print(f"error: {args.source}: no MIDI or MusicXML files found", file=sys.stderr)
        return 1
    out = args.data_root / name
    prepared, skipped = prepare(sources, out, args.steps_per_quarter, args.workers)
    for skipped_name, reason in skipped:
        print(f"skipped {skipped_name}: {reason}", file=sys.stderr)
    if not prepared:
        print(f"error: no piece could be prepared from {len(sources)} files", file=sys.stderr)
        return 1
    print(f"prepared {prepared} pieces into {out} ({len(skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
