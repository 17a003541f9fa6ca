"""Tokenizer speed and compactness: Cantor's words vs MidiTok's TSD on all chorales.

    python -m bench.tokenizer

Every chorale is written once as a MIDI file into a temp folder and loaded by each library
(loading is not timed). TSD is configured like Cantor's words: 4 steps per quarter, no velocity
and no time-signature tokens.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from tokenizer.dataset import WordDataset
from tokenizer.readers import read_midi
from tokenizer.words import decode, encode
from tokenizer.writers import write_midi


def timed(function, items, repeats: int = 3) -> float:
    """Best wall time of ``repeats`` passes of ``function`` over ``items``."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for item in items:
            function(item)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    from miditok import TSD, TokenizerConfig
    from symusic import Score

    dataset = WordDataset("data/chorales")
    vocab = dataset.vocab
    with tempfile.TemporaryDirectory() as folder:
        paths = [write_midi(dataset.piece(name), Path(folder) / f"{name}.mid") for name in dataset.names()]
        pieces = [read_midi(p) for p in paths]
        scores = [Score(str(p)) for p in paths]
    notes = sum(len(p.notes) for p in pieces)

    tsd = TSD(TokenizerConfig(beat_res={(0, 4): 4, (4, 12): 4}, use_velocities=False, use_time_signatures=False))
    tsd_tokens = [tsd.encode(s) for s in scores]
    tsd_words = sum(len(seq[0].ids) if isinstance(seq, list) else len(seq.ids) for seq in tsd_tokens)
    cantor_ids = [encode(p, vocab) for p in pieces]
    cantor_words = sum(len(ids) for ids in cantor_ids)

    rows = {
        "encode": (timed(lambda p: encode(p, vocab), pieces), timed(tsd.encode, scores)),
        "decode": (timed(lambda ids: decode(ids, vocab), cantor_ids), timed(tsd.decode, tsd_tokens)),
    }
    print(f"{len(pieces)} chorales, {notes} notes (4 steps per quarter)")
    print(f"{'':8} {'Cantor notes/s':>15} {'MidiTok TSD notes/s':>20} {'Cantor/TSD':>11}")
    for name, (cantor_s, tsd_s) in rows.items():
        print(f"{name:8} {notes / cantor_s:15,.0f} {notes / tsd_s:20,.0f} {tsd_s / cantor_s:10.2f}x")
    print(f"words per note: Cantor {cantor_words / notes:.3f}, MidiTok TSD {tsd_words / notes:.3f}")


if __name__ == "__main__":
    main()
