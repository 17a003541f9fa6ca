"""The project's judge of the music: do Cantor's pieces sound like four-part chorales?

    python -m bench.quality                     # 40 pieces a set, about 15 minutes on 2 cores
    python -m bench.quality --n 8 --sets word_new,bach_test

Sets, each of N pieces with fixed seeds (0..N-1):
- bach_test: the dataset's test chorales (the reference every overlap is measured against);
- train: N train chorales, the ceiling;
- word_new: the word model from START at the studio's defaults (temperature 1, 768 words, no
  top-k or top-p; studio/engine's GenerationSettings);
- word_continued: the word model continuing the first 4 bars of each test chorale (only the
  continuation is judged, not Bach's primer);
- word_new_constrained: as word_new, with the sampler's rules (by default the studio's four-part
  rules: at most 4 voices, no semitone against a sounding note, no parallels; the rule flags of
  models.sample change them, e.g. --key "C major" --no-repeat 24), so the model's own figures
  stay visible beside them;
- codebook_new: the codebook pipeline, 48 quarters from nothing (temperature 1, top-k 8);
- trigram: a Kneser-Ney trigram over the train split, sampled under the grammar mask: the floor.

The figures are defined in bench/metrics.py. Overlaps are Yang & Lerch's, against the test set.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.metrics import PieceFeatures, overlap, piece_features, summary
from models.codebooks import Codebooks
from models.ngram import KneserNeyTrigram
from models.sample import add_rule_arguments, rules_from
from models.sampling import SamplingSettings
from models.word_model import WordModel
from studio.engine import GenerationSettings
from tokenizer.cli import HelpFormatter, whole
from tokenizer.constraints import Rules
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence
from tokenizer.words import word_grammar

SETS = ("bach_test", "train", "word_new", "word_continued", "word_new_constrained", "codebook_new", "trigram")
TITLES = {
    "bach_test": "Bach (test)",
    "train": "train (ceiling)",
    "word_new": "word, new",
    "word_continued": "word, continued",
    "word_new_constrained": "word, new, constrained",
    "codebook_new": "codebook, new",
    "trigram": "trigram (floor)",
}
ROWS = (  # (summary key, label, format)
    ("four_sounding", "time with exactly 4 notes sounding", "{:.3f}"),
    ("clash", "onsets with a semitone clash", "{:.3f}"),
    ("ninth_clash", "onsets with a semitone or minor-9th clash", "{:.3f}"),
    ("over_five", "onsets with more than 5 sounding", "{:.3f}"),
    ("max_sounding", "max notes sounding (any piece)", "{:.0f}"),
    ("top_step", "top line, mean step (semitones)", "{:.2f}"),
    ("top_leaps", "top line, leaps over a fifth", "{:.3f}"),
    ("bass_step", "bass line, mean step (semitones)", "{:.2f}"),
    ("bass_leaps", "bass line, leaps over a fifth", "{:.3f}"),
    ("parallels", "parallel 5ths/8ves per chord change", "{:.3f}"),
    ("scale_consistency", "scale consistency", "{:.3f}"),
    ("key_drift", "last quarter in the opening key", "{:.3f}"),
    ("mean_pitch", "mean pitch (MIDI)", "{:.1f}"),
    ("above_c6", "notes above C6", "{:.3f}"),
    ("quarters", "length, mean (quarters)", "{:.1f}"),
    ("median_quarters", "length, median (quarters)", "{:.1f}"),
    ("short_share", "pieces under 110 words", "{:.3f}"),
    ("repeated_bars", "bars repeating an earlier bar", "{:.3f}"),
    ("self_similarity", "best 4-bar self-similarity", "{:.3f}"),
    ("overlap pitch/rhythm/key", "overlap: pitch, rhythm, key", "{:.2f}"),
    ("overlap texture/voice leading", "overlap: texture, voice leading", "{:.2f}"),
    ("overlap all", "overlap: all", "{:.2f}"),
)
PRIMER_BARS = 4
CODEBOOK_QUARTERS = 48


def word_pieces(
    model: WordModel, n: int, words: int, primers: list[NoteSequence] | None, rules: Rules | None
) -> list[NoteSequence]:
    """N pieces (only the generated notes) from seeds 0..N-1, with or without primers and rules."""
    pieces = []
    for seed in tqdm(range(n), desc="word model", unit="piece", leave=False):
        primer = model.primer(primers[seed % len(primers)]) if primers else None
        studio = GenerationSettings()
        settings = SamplingSettings(studio.temperature, studio.top_k, studio.top_p, seed)
        ids = list(model.stream_words(words, settings, primer, rules=rules))
        pieces.append(model.continuation(ids, primer, name=f"seed {seed}").generated)
    return pieces


def codebook_pieces(codebooks: Codebooks, n: int) -> list[NoteSequence]:
    pieces = []
    for seed in tqdm(range(n), desc="codebooks", unit="piece", leave=False):
        settings = SamplingSettings(temperature=1.0, top_k=8, seed=seed)
        codes = list(codebooks.stream_codes(CODEBOOK_QUARTERS, settings))
        pieces.append(codebooks.piece_from_codes(codes)[1])
    return pieces


def trigram_pieces(dataset: WordDataset, n: int, words: int) -> list[NoteSequence]:
    train = [dataset.piece_ids(name).astype(np.int64) for name in dataset.names("train")]
    trigram = KneserNeyTrigram(train, dataset.vocab.size)
    pieces = []
    for seed in range(n):
        grammar = word_grammar(dataset.vocab)
        grammar.advance(dataset.vocab.start_id)
        trigram.sample(grammar, words, seed, dataset.vocab.end_id)
        pieces.append(NoteSequence(sorted(grammar.notes), dataset.steps_per_quarter, name=f"seed {seed}"))
    return pieces


def judge(pieces: list[NoteSequence]) -> tuple[list[PieceFeatures], int]:
    """Features of the pieces that have notes, and how many had none."""
    features = [piece_features(p) for p in pieces if p.notes]
    return features, len(pieces) - len(features)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--n", type=whole(1, 1000), default=40, help="pieces per set")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated, from: " + ", ".join(SETS))
    parser.add_argument("--data", type=Path, default=Path("data/chorales"))
    parser.add_argument("--word", type=Path, default=Path("checkpoints/chorales_small"), help="word checkpoint")
    parser.add_argument(
        "--words", type=whole(16, 100_000), default=GenerationSettings.words, help="word budget a piece (the studio's)"
    )
    parser.add_argument("--vqvae", type=Path, default=Path("checkpoints/chorales_vqvae"))
    parser.add_argument("--prior", type=Path, default=Path("checkpoints/chorales_prior"))
    parser.add_argument("--threads", type=whole(1, 256), default=None, help="torch CPU threads")
    add_rule_arguments(parser)
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = sorted(set(chosen) - set(SETS))
    if unknown or not chosen:
        parser.error(f"argument --sets: unknown set {', '.join(unknown) or '(none)'}; choose from {', '.join(SETS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        args.rules = rules_from(args)
        print(
            f"bench.quality: n={args.n}, data={args.data}, word={args.word}, words={args.words}, "
            f"vqvae={args.vqvae}, prior={args.prior}, threads={torch.get_num_threads()}\n"
            f"  rules of '{TITLES['word_new_constrained']}': {args.rules}"
        )
        results, timings = run_sets(args, chosen)
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print_table(results, chosen)
    print("seconds per set: " + ", ".join(f"{s} {timings[s]:.0f}" for s in chosen))
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0


def run_sets(args: argparse.Namespace, chosen: list[str]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    dataset = WordDataset(args.data)
    test_names = dataset.names("test")
    train_names = dataset.names("train")
    if not test_names:
        raise CantorError(f"{args.data}: the test split is empty; nothing to compare with")
    reference, _ = judge([dataset.piece(name) for name in test_names])
    word_model: WordModel | None = None

    def words_model() -> WordModel:
        nonlocal word_model
        if word_model is None:
            word_model = WordModel(args.word)
            word_model.check_grid(dataset)
        return word_model

    def primers() -> list[NoteSequence]:
        return [p.cropped(0, PRIMER_BARS * p.steps_per_bar) for p in (dataset.piece(name) for name in test_names)]

    makers: dict[str, Callable[[], list[NoteSequence]]] = {
        "bach_test": lambda: [dataset.piece(name) for name in test_names[: args.n]],
        "train": lambda: [dataset.piece(name) for name in train_names[:: max(1, len(train_names) // args.n)][: args.n]],
        "word_new": lambda: word_pieces(words_model(), args.n, args.words, None, None),
        "word_continued": lambda: word_pieces(words_model(), args.n, args.words, primers(), None),
        "word_new_constrained": lambda: word_pieces(words_model(), args.n, args.words, None, args.rules),
        "codebook_new": lambda: codebook_pieces(Codebooks(args.vqvae, args.prior), args.n),
        "trigram": lambda: trigram_pieces(dataset, args.n, args.words),
    }
    results, timings = {}, {}
    for name in chosen:
        began = time.perf_counter()
        features, silent = judge(makers[name]())
        if not features:
            raise CantorError(f"{TITLES[name]}: none of its {args.n} pieces has a note")
        figures = summary(features)
        figures["silent"] = silent
        if name != "bach_test" and len(reference) >= 2:
            figures.update({f"overlap {group}": value for group, value in overlap(reference, features).items()})
        results[name] = figures
        timings[name] = time.perf_counter() - began
        print(f"  {TITLES[name]}: {len(features)} pieces judged in {timings[name]:.0f} s", flush=True)
    return results, timings


def print_table(results: dict[str, dict[str, float]], chosen: list[str]) -> None:
    """One Markdown table: a row per figure, a column per set."""
    print()
    print("| | " + " | ".join(TITLES[s] for s in chosen) + " |")
    print("|---|" + "---|" * len(chosen))
    for key, label, fmt in ROWS:
        cells = [fmt.format(results[s][key]) if key in results[s] else "–" for s in chosen]
        print(f"| {label} | " + " | ".join(cells) + " |")
    silent = {s: int(results[s]["silent"]) for s in chosen if results[s]["silent"]}
    if silent:
        print("pieces with no notes (left out): " + ", ".join(f"{TITLES[s]} {n}" for s, n in silent.items()))


if __name__ == "__main__":
    sys.exit(main())
