"""Tokenizer speed and compactness: Cantor's words vs MidiTok's TSD on all chorales.

    python -m bench.tokenizer

Every chorale is written once as a MIDI file into a temp folder and loaded by each library
(loading is not timed). TSD is configured like Cantor's words: 4 steps per quarter, no velocity
and no time-signature tokens. The last row saves a 20,000-note piece with Cantor's MIDI writer and
with pretty_midi's (best of 3 each).
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from tokenizer.dataset import WordDataset
from tokenizer.notes import Note, NoteSequence
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
    print_write_row()


def print_write_row(count: int = 20_000) -> None:
    """Saving a long piece: Cantor's writer against pretty_midi's, on the same notes."""
    import pretty_midi

    rng = random.Random(0)
    piece = NoteSequence([Note(rng.randint(36, 84), 2 * (i // 4), rng.randint(1, 8)) for i in range(count)])
    played = piece.as_played()
    seconds_per_step = piece.seconds_per_step()

    def write_pretty_midi(path: Path) -> None:
        midi = pretty_midi.PrettyMIDI(resolution=480, initial_tempo=piece.qpm)
        instrument = pretty_midi.Instrument(program=0)
        instrument.notes = [
            pretty_midi.Note(n.velocity, n.pitch, n.start * seconds_per_step, n.end * seconds_per_step)
            for n in played.notes
        ]
        midi.instruments.append(instrument)
        midi.write(str(path))

    with tempfile.TemporaryDirectory() as folder:
        cantor_s = timed(lambda _: write_midi(piece, Path(folder) / "cantor.mid"), [None])
        pretty_s = timed(lambda _: write_pretty_midi(Path(folder) / "pretty.mid"), [None])
    print(f"write {len(played.notes):,} notes to a MIDI file: Cantor {cantor_s:.2f} s, pretty_midi {pretty_s:.2f} s")


if __name__ == "__main__":
    main()
