"""Prepare a word dataset: parse pieces in a process pool, encode them, write data/NAME/.

    python -m tokenizer.prepare                                   # the Bach chorales -> data/chorales
    python -m tokenizer.prepare --source ~/my_midi --name mine    # your own folder  -> data/mine

Pieces that cannot be read are skipped and listed with their reasons; the command exits 0 only
if at least one piece was prepared. Augmentation happens later, when training. In the steps
encoding each piece's words begin with its key (as the reader estimated it) and mark its
phrase ends (a score's fermatas; tokenizer/words.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import numpy as np
from tqdm import tqdm

from tokenizer.atomic import atomic_write_bytes, atomic_write_text
from tokenizer.budget import DEFAULT_BUDGET, Budget
from tokenizer.cli import HelpFormatter, real, whole
from tokenizer.dataset import SPLITS, split_of
from tokenizer.errors import CantorError
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH
from tokenizer.readers import MIDI_SUFFIXES, MUSIC21_SUFFIXES, read_piece
from tokenizer.words import ENCODINGS, WordVocabulary, encode

CHORALE_SUFFIXES = (".mxl", ".krn", ".xml")
BUILT_IN = "chorales"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def chorale_sources() -> list[tuple[str, str]]:
    """(name, path) of each Bach chorale in music21's corpus, one file per chorale."""
    from music21 import corpus

    by_stem: dict[str, Path] = {}
    for path in sorted(corpus.getComposer("bach")):
        if path.suffix in CHORALE_SUFFIXES and path.stem not in by_stem:
            by_stem[path.stem] = path
    return [(stem, str(path)) for stem, path in sorted(by_stem.items())]


def folder_sources(folder: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, path) of each music file under ``folder``, named by its path inside it; and
    (name, reason) of the files passed over: links (which may lead anywhere) and names that
    are not valid UTF-8 (which no index could hold)."""
    if not folder.is_dir():
        raise CantorError(f"{folder}: no such folder")
    suffixes = MIDI_SUFFIXES + MUSIC21_SUFFIXES
    sources, passed_over = [], []
    for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes):
        name = str(path.relative_to(folder))
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            passed_over.append((ascii(name), "the file name is not valid UTF-8; rename it"))
            continue
        if path.is_symlink():
            passed_over.append((name, "a link; Cantor reads only the files inside the folder"))
        elif path.is_file():
            sources.append((name, str(path)))
    return sources, passed_over


def check_name(name: str, data_root: Path, from_folder: bool, overwrite: bool) -> Path:
    """The dataset's folder, data_root/NAME; CantorError for a name that is a path, for the
    built-in set when preparing a folder of one's own, and for an existing set without
    ``overwrite``."""
    if not NAME_PATTERN.fullmatch(name):
        raise CantorError(f"--name {name!r}: use a plain folder name (letters, digits, - _ .), not a path")
    out = data_root / name
    if from_folder and name == BUILT_IN:
        raise CantorError(f"--name {BUILT_IN} is the built-in Bach set; give your dataset another name")
    if (out / "index.json").exists() and not overwrite:
        raise CantorError(f"{out} already holds a dataset; add --overwrite to replace it")
    return out


def _encode_one(job: tuple[str, str, int, WordVocabulary, Budget]) -> tuple[str, dict | str]:
    """Worker: (name, path, steps per quarter, vocabulary, budget) -> (name, entry with ids) or
    (name, reason)."""
    name, path, steps_per_quarter, vocab, budget = job
    try:
        piece = read_piece(path, steps_per_quarter, budget)
        in_range = [n for n in piece.notes if LOWEST_PIANO_PITCH <= n.pitch <= HIGHEST_PIANO_PITCH]
        if not in_range:
            raise CantorError(f"{Path(path).name}: every note is outside the piano range 21-108")
        dropped = len(piece.notes) - len(in_range)
        piece.notes = in_range
        ids = encode(piece, vocab)
    except CantorError as err:
        return name, str(err)
    return name, {
        "ids": ids,
        "time_signature": list(piece.time_signature),
        "qpm": piece.qpm,
        "notes": len(piece.notes),
        "dropped_out_of_range": dropped,
        "key": piece.key,
        "phrases": len(piece.phrase_ends),
    }


def prepare(
    sources: list[tuple[str, str]],
    out: Path,
    steps_per_quarter: int = 4,
    workers: int | None = None,
    encoding: str = "steps",
    budget: Budget = DEFAULT_BUDGET,
) -> tuple[int, list[tuple[str, str]]]:
    """Encode ``sources`` into ``out``; returns (pieces prepared, [(name, reason skipped)]).
    Each file is read within ``budget`` (time and memory), so one bad file costs at most that."""
    vocab = WordVocabulary(max_duration=4 * steps_per_quarter, encoding=encoding, form=encoding == "steps")
    jobs = [(name, path, steps_per_quarter, vocab, budget) for name, path in sources]
    results: dict[str, dict] = {}
    skipped: list[tuple[str, str]] = []
    pending = [(job, 0) for job in jobs]  # (job, times a pool broke under it)
    with tqdm(total=len(jobs), desc=f"preparing {out.name}", unit="piece") as bar:
        while pending:  # a dead worker breaks its pool: what it left undone goes to a new pool once
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(_encode_one, job): (job, breaks) for job, breaks in pending}
                pending = []
                for future in as_completed(futures):
                    job, breaks = futures[future]
                    try:
                        name, result = future.result()
                    except BrokenProcessPool:
                        if breaks:
                            skipped.append((job[0], "the process reading it died twice"))
                            bar.update(1)
                        else:
                            pending.append((job, breaks + 1))
                        continue
                    if isinstance(result, str):
                        skipped.append((name, result))
                    else:
                        results[name] = result
                    bar.update(1)
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
                "key": result["key"],
                "phrases": result["phrases"],
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
    parser.add_argument("--encoding", choices=ENCODINGS, default="steps", help="word order (tokenizer/words.py)")
    parser.add_argument("--workers", type=whole(1, 256), default=None, help="processes (default: all cores)")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--overwrite", action="store_true", help="replace a dataset of the same name")
    parser.add_argument("--timeout", type=real(1, 3600), default=60.0, help="seconds to read one file")
    args = parser.parse_args(argv)
    passed_over: list[tuple[str, str]] = []
    try:
        name = args.name if args.name is not None else (args.source.name if args.source else BUILT_IN)
        out = check_name(name, args.data_root, args.source is not None, args.overwrite)
        if args.source:
            sources, passed_over = folder_sources(args.source)
        else:
            sources = chorale_sources()
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if not sources:
        print(f"error: {args.source}: no MIDI or MusicXML files found", file=sys.stderr)
        return 1
    budget = Budget(seconds=args.timeout)
    prepared, skipped = prepare(sources, out, args.steps_per_quarter, args.workers, args.encoding, budget)
    skipped = passed_over + skipped
    for skipped_name, reason in skipped:
        print(f"skipped {skipped_name}: {reason}", file=sys.stderr)
    if not prepared:
        print(f"error: no piece could be prepared from {len(sources)} files", file=sys.stderr)
        return 1
    print(f"prepared {prepared} pieces into {out} ({len(skipped)} skipped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
