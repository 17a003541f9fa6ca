"""Harmonize and regenerate, measured on the test chorales.

    python -m bench.tasks --word checkpoints/chorales_small --n 20
    python -m bench.tasks --word runs/word/chorales_tasks --baseline checkpoints/chorales_small_plain

**Speed** (``--speed``: only this). Harmonizing the first test chorale's 16 first bars and
regenerating 2 of its bars, timed on the traced step and on the eager one (the baseline).

**Harmonize.** Each test chorale's own soprano (its top line) is harmonized whole, with the
studio's four-part rules and with the model alone. Figures from bench/metrics.py on the whole
result, the share of the melody's notes kept exactly, and, as a plain reference, the share of
Bach's bass notes (pitch and onset; and pitch class) the harmonization also has. Bach's own
chorales are the reference row.

**Regenerate.** In each test chorale, 2 bars from the bar nearest its middle are blanked.
- Bits per note of Bach's own middle (the words of its notes), given both sides (HOLE, the
  piece after, FILL, the piece before) and given the left side only (the piece before, as a
  continuation). ``--baseline`` adds the left-only figure of another word model (one trained
  without the tasks).
- The middle is regenerated (four-part rules, as in the studio) and the texture figures are
  measured on the 2 bars and a quarter either side (the seams), against the same span of Bach.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.metrics import piece_features, summary
from models.decoding import stepping_eagerly
from models.fill import GapWriter
from models.sampling import SamplingSettings
from models.word_model import WordModel
from tokenizer.cli import HelpFormatter, whole
from tokenizer.constraints import Rules
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.notes import Note, NoteSequence
from tokenizer.tasks import Gap, after_ids, context_ids, cut_at_step, fill_prompt, top_line
from tokenizer.words import FILL, step_words

GAP_BARS = 2
TEXTURE = (  # (summary key, label, format)
    ("four_sounding", "time with exactly 4 notes sounding", "{:.3f}"),
    ("clash", "onsets with a semitone clash", "{:.3f}"),
    ("over_five", "onsets with more than 5 sounding", "{:.3f}"),
    ("parallels", "parallel 5ths/8ves per chord change", "{:.3f}"),
    ("bass_step", "bass mean step (semitones)", "{:.2f}"),
)


def bass_line(piece: NoteSequence) -> list[Note]:
    """The lowest voice: the top line of the piece turned upside down."""
    flipped = [n._replace(pitch=127 - n.pitch) for n in piece.notes]
    line, _ = top_line(NoteSequence(notes=flipped, steps_per_quarter=piece.steps_per_quarter))
    return [n._replace(pitch=127 - n.pitch) for n in line]


def bass_kept(real: NoteSequence, made: NoteSequence) -> tuple[float, float]:
    """Shares of Bach's bass notes that the made piece's bass has at the same onset: the same
    pitch, and the same pitch class."""
    real_bass = bass_line(real)
    made_bass = {n.start: n.pitch for n in bass_line(made)}
    same = [made_bass.get(n.start) == n.pitch for n in real_bass]
    same_class = [n.start in made_bass and (made_bass[n.start] - n.pitch) % 12 == 0 for n in real_bass]
    return float(np.mean(same)), float(np.mean(same_class))


def middle_gap(piece: NoteSequence) -> Gap:
    """``GAP_BARS`` bars from the bar line nearest the middle of the piece."""
    bar = piece.steps_per_bar
    middle = round(piece.total_steps / 2 / bar) * bar
    return Gap(middle, middle + GAP_BARS * bar)


def middle_nats(model: WordModel, notes: list[Note], gap: Gap, given: str) -> tuple[float, int]:
    """Nats the model gives Bach's middle (the words of the notes that start in the gap), and
    the number of those notes. ``given``: "both" sides (the left side cut to leave room for the
    right), "left" side only (as much as the context holds), or "left, as in both" (the left
    side only, cut where "both" cuts it)."""
    vocab, block = model.vocab, model.block_size
    before = [n for n in notes if n.start < gap.start]
    inside = [n for n in notes if gap.start <= n.start < gap.end]
    middle = step_words(inside, vocab, previous=before[-1].start if before else 0)
    context = context_ids(notes, gap, vocab)
    budget = block - len(middle)
    if given == "left":
        prompt = cut_at_step(context, budget, vocab, keep_end=True)  # a plain continuation
    else:
        prompt = fill_prompt(context, after_ids(notes, gap, vocab), None, vocab, budget)
        if given != "both":
            prompt = prompt[prompt.index(vocab.marker_id(FILL)) + 1 :]
    ids = torch.tensor([prompt + middle])
    with torch.inference_mode():
        logits = model.model(ids[:, :-1])[0][0].float()
    targets = ids[0, 1:]
    nats = -torch.log_softmax(logits, dim=-1)[torch.arange(len(targets)), targets]
    return float(nats[-len(middle) :].sum()), len(inside)


def harmonize_set(model: WordModel, pieces: list[NoteSequence], rules: Rules | None, what: str) -> dict:
    made, kept, bass, bass_class = [], [], [], []
    for seed, piece in enumerate(tqdm(pieces, desc=what, unit="piece")):
        writer = GapWriter(model, SamplingSettings(seed=seed), rules)
        for _ in writer.harmonize(piece):
            pass
        result = writer.piece()
        melody = set(top_line(piece)[0])
        notes = {(n.pitch, n.start, n.duration) for n in result.notes}
        kept.append(np.mean([(n.pitch, n.start, n.duration) in notes for n in melody]))
        same, same_class = bass_kept(piece, result)
        bass.append(same)
        bass_class.append(same_class)
        made.append(piece_features(result))
    return {
        **summary(made),
        "melody_kept": float(np.mean(kept)),
        "bass": float(np.mean(bass)),
        "bass_class": float(np.mean(bass_class)),
    }


def regenerate_set(model: WordModel, pieces: list[NoteSequence]) -> tuple[dict, dict]:
    """Texture of the regenerated spans and of Bach's same spans."""
    made, real = [], []
    for seed, piece in enumerate(tqdm(pieces, desc="regenerate", unit="piece")):
        gap = middle_gap(piece)
        writer = GapWriter(model, SamplingSettings(seed=seed), Rules())
        for _ in writer.regenerate(piece, gap):
            pass
        quarter = piece.steps_per_quarter
        span = (gap.start - quarter, gap.end + quarter)
        made.append(piece_features(writer.piece().cropped(*span)))
        real.append(piece_features(piece.normalized().cropped(*span)))
    return summary(made), summary(real)


def speed_rows(model: WordModel, piece: NoteSequence, runs: int = 3) -> None:
    """Seconds to harmonize the first 16 bars of ``piece``'s top line and to regenerate 2 bars from
    its bar 5, with the four-part rules, on the traced step and on the eager one (the baseline: the
    same writer stepping through GPT.step in eager PyTorch); median of ``runs`` seeds, the two paths
    taking turns, and whether they wrote the same words."""
    bar = piece.steps_per_bar
    sixteen = piece.cropped(0, 16 * bar)
    melody = replace(sixteen, notes=top_line(sixteen)[0])
    tasks = {
        "harmonize 16 bars": lambda writer: writer.harmonize(melody),
        "regenerate 2 bars": lambda writer: writer.regenerate(piece, Gap(4 * bar, 6 * bar)),
    }
    print(f"\nSpeed: {piece.name}, four-part rules, median of {runs} seeds")
    print("| task | words | traced step | eager step | faster | the same words |\n|---|---|---|---|---|---|")
    for label, task in tasks.items():
        seconds: dict[bool, list[float]] = {True: [], False: []}
        words: dict[bool, list[list[int]]] = {True: [], False: []}
        for seed in range(runs):
            for eager in (False, True):
                with stepping_eagerly(eager):
                    writer = GapWriter(model, SamplingSettings(seed=seed), Rules())
                    started = time.perf_counter()
                    words[eager].append(list(task(writer)))
                    seconds[eager].append(time.perf_counter() - started)
        fast, slow = float(np.median(seconds[False])), float(np.median(seconds[True]))
        count = int(np.median([len(w) for w in words[False]]))
        same = "yes" if words[False] == words[True] else "NO"
        print(f"| {label} | {count} | {fast:.2f} s | {slow:.2f} s | {slow / fast:.2f}x | {same} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument(
        "--word", type=Path, default=Path("checkpoints/chorales_small"), help="a word model trained with --tasks"
    )
    parser.add_argument("--baseline", type=Path, default=None, help="a word model for the left-only bits/note row")
    parser.add_argument("--data", type=Path, default=Path("data/chorales"))
    parser.add_argument("--n", type=whole(1, 10_000), default=20, help="test chorales")
    parser.add_argument("--threads", type=whole(1, 1024), default=1)
    parser.add_argument("--speed", action="store_true", help="only the time to harmonize and to regenerate")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        model = WordModel(args.word)
        baseline = WordModel(args.baseline) if args.baseline else None
        dataset = WordDataset(args.data)
        model.check_grid(dataset)
        names = dataset.names("test")[: args.n]
        if not names:
            raise CantorError(f"{args.data}: the test split is empty")
        pieces = [dataset.piece(name) for name in names]
        GapWriter(model, SamplingSettings())  # refuses a model without the marker words, before any work
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"bench.tasks: {args.word} on {len(pieces)} test chorales of {args.data}, {args.threads} thread(s)")
    speed_rows(model, pieces[0])
    if args.speed:
        return 0

    rows = {}
    scorings = [
        ("both sides", model, "both"),
        ("left side only, as much as the context holds", model, "left"),
        ("left side only, as far back as with both sides", model, "left, as in both"),
    ]
    if baseline:
        scorings.append(("left side only, as much as the context holds, baseline", baseline, "left"))
    for label, scorer, given in scorings:
        nats, notes = 0.0, 0
        for piece in pieces:
            n, count = middle_nats(scorer, piece.normalized().notes, middle_gap(piece), given)
            nats, notes = nats + n, notes + count
        rows[label] = nats / math.log(2) / notes
    print(f"\nRegenerate: bits per note of Bach's own {GAP_BARS} middle bars ({notes} notes)")
    print("| given | bits/note |\n|---|---|")
    for label, bits in rows.items():
        name = args.baseline.name if "baseline" in label else args.word.name
        print(f"| {label} ({name}) | {bits:.3f} |")

    regenerated, bach_spans = regenerate_set(model, pieces)
    print(f"\nRegenerate: texture of the {GAP_BARS} regenerated bars and a quarter either side (four-part rules)")
    print("| | regenerated | Bach, same bars |\n|---|---|---|")
    for key, label, form in TEXTURE:
        print(f"| {label} | {form.format(regenerated[key])} | {form.format(bach_spans[key])} |")

    bach = summary([piece_features(p) for p in pieces])
    sets = {
        "rules": harmonize_set(model, pieces, Rules(), "harmonize, four-part rules"),
        "alone": harmonize_set(model, pieces, None, "harmonize, model alone"),
    }
    print("\nHarmonize each test chorale's own soprano")
    print("| | four-part rules | model alone | Bach |\n|---|---|---|---|")
    print(f"| melody kept exactly | {sets['rules']['melody_kept']:.3f} | {sets['alone']['melody_kept']:.3f} | 1.000 |")
    for key, label, form in TEXTURE:
        figures = " | ".join(form.format(s[key]) for s in (sets["rules"], sets["alone"], bach))
        print(f"| {label} | {figures} |")
    for key, label in (("bass", "Bach's bass notes reproduced (pitch)"), ("bass_class", "… (pitch class)")):
        print(f"| {label} | {sets['rules'][key]:.3f} | {sets['alone'][key]:.3f} | 1.000 |")
    print(f"\nwall time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
