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
- trigram: a Kneser-Ney trigram over the train split, sampled under the grammar mask: the floor;
- harmonize_folk: not a set of pieces but a task: ``FOLK_TUNES`` German folk songs from music21's
  Essen collection (not chorales), each moved to another key, harmonized at the studio's defaults
  (the four-part rules, the key the melody is in): melody kept, new notes in its key, the tonic in
  the bass under its last note, exactly four sounding.

The texture figures are defined in bench/metrics.py, the whole-piece figures (key, cadences, the
ending, repetition) in bench/form.py, the classifier two-sample test in bench/two_sample.py: it
tells each generated set's first 24 quarters from the same crop of real chorales, beside a control
that tries to tell real chorales from real chorales. Overlaps are Yang & Lerch's, against the test
set.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.form import form_summary, key_distance, piece_form
from bench.metrics import PieceFeatures, overlap, piece_features, summary
from bench.two_sample import two_sample_test
from models.codebooks import Codebooks
from models.fill import GapWriter
from models.ngram import KneserNeyTrigram
from models.sample import add_rule_arguments, rules_from
from models.sampling import SamplingSettings
from models.word_model import WordModel
from studio.engine import GenerationSettings
from tokenizer.augment import transpose
from tokenizer.cli import HelpFormatter, real, whole
from tokenizer.constraints import Rules
from tokenizer.dataset import WordDataset
from tokenizer.ending import FINAL_WORDS, STEER_SHARE
from tokenizer.errors import CantorError
from tokenizer.keys import scale_of, tonic_of
from tokenizer.notes import NoteSequence
from tokenizer.readers import read_music21
from tokenizer.repeat import BAR_FORM
from tokenizer.words import word_grammar

SETS = (
    "bach_test",
    "train",
    "word_new",
    "word_continued",
    "word_new_constrained",
    "codebook_new",
    "trigram",
    "harmonize_folk",
)
PIECE_SETS = SETS[:-1]
GENERATED = ("word_new", "word_continued", "word_new_constrained", "codebook_new", "trigram")
TITLES = {
    "bach_test": "Bach (test)",
    "train": "train (ceiling)",
    "word_new": "word, new",
    "word_continued": "word, continued",
    "word_new_constrained": "word, new, constrained",
    "codebook_new": "codebook, new",
    "trigram": "trigram (floor)",
    "harmonize_folk": "harmonized folk tunes",
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
    ("ended", "pieces that end by themselves", "{:.3f}"),
    ("ended_unsteered", "... before the sampler steers towards an end", "{:.3f}"),
    ("final_tonic", "last chord a root-position tonic (opening key)", "{:.3f}"),
    ("final_tonic_named", "... (the key it names: key word)", "{:.3f}"),
    ("cadences_per_8", "cadence-like arrivals per 8 quarters", "{:.2f}"),
    ("opening_repeated", "opening 2 bars repeated later", "{:.3f}"),
    ("keys_within_3", "keys of at most 3 sharps or flats", "{:.3f}"),
    ("key_distance", "key signatures: distance from Bach's (0-1)", "{:.2f}"),
    ("minor", "pieces in minor", "{:.3f}"),
    ("median_words", "length, median (words of the model)", "{:.0f}"),
    ("clash_resolved", "semitone clashes resolved as the style does", "{:.3f}"),
    ("two_sample", "classifier tells it from Bach (first 24 quarters)", "{:.2f}"),
    ("overlap pitch/rhythm/key", "overlap: pitch, rhythm, key", "{:.2f}"),
    ("overlap texture/voice leading", "overlap: texture, voice leading", "{:.2f}"),
    ("overlap all", "overlap: all", "{:.2f}"),
)
PRIMER_BARS = 4
CODEBOOK_QUARTERS = 48
FOLK_TUNES = 10
FOLK_SOURCE = "essenFolksong/altdeu10"  # German folk songs: melodies a chorale book could hold
FOLK_TONICS = (2, 7, 5, 9, 10, 0, 4, 3, 11, 8)  # D G F A Bb C E Eb B Ab: each tune moved to one


@dataclass
class Made:
    """A set's pieces, and for generated ones whether each ended by itself (None: real music) and
    its length in the model's words."""

    pieces: list[NoteSequence]
    ended: list[bool] | None = None
    words: list[int] | None = None


def word_pieces(
    model: WordModel,
    n: int,
    words: int,
    primers: list[NoteSequence] | None,
    rules: Rules | None,
    temperature: float = GenerationSettings.temperature,
    open_on_tonic: bool = True,
    bar_form: bool | None = None,
) -> Made:
    """N pieces (only the generated notes) from seeds 0..N-1, with or without primers and rules;
    ``open_on_tonic``: as the studio, a new piece opens on its tonic chord; ``bar_form``: a new
    piece sings its first two phrases again (None: as often as Bach's chorales, as the studio)."""
    made = Made([], [], [])
    for seed in tqdm(range(n), desc="word model", unit="piece", leave=False):
        primer = model.primer(primers[seed % len(primers)]) if primers else None
        studio = GenerationSettings()
        settings = SamplingSettings(temperature, studio.top_k, studio.top_p, seed)
        ids = list(
            model.stream_words(words, settings, primer, rules=rules, open_on_tonic=open_on_tonic, bar_form=bar_form)
        )
        made.pieces.append(model.continuation(ids, primer, name=f"seed {seed}").generated)
        made.ended.append(bool(ids) and ids[-1] == model.vocab.end_id)
        made.words.append(len(ids))
    return made


def codebook_pieces(codebooks: Codebooks, n: int) -> Made:
    pieces = []
    for seed in tqdm(range(n), desc="codebooks", unit="piece", leave=False):
        settings = SamplingSettings(temperature=1.0, top_k=8, seed=seed)
        codes = list(codebooks.stream_codes(CODEBOOK_QUARTERS, settings))
        pieces.append(codebooks.piece_from_codes(codes)[1])
    return Made(pieces, [False] * n)  # the prior writes a fixed number of quarters


def trigram_pieces(dataset: WordDataset, n: int, words: int) -> Made:
    train = [dataset.piece_ids(name).astype(np.int64) for name in dataset.names("train")]
    trigram = KneserNeyTrigram(train, dataset.vocab.size)
    made = Made([], [], [])
    for seed in range(n):
        grammar = word_grammar(dataset.vocab)
        grammar.advance(dataset.vocab.start_id)
        written = trigram.sample(grammar, words, seed, dataset.vocab.end_id)
        made.pieces.append(NoteSequence(sorted(grammar.notes), dataset.steps_per_quarter, name=f"seed {seed}"))
        made.ended.append(grammar.ended)
        made.words.append(len(written))
    return made


def judge(pieces: list[NoteSequence]) -> tuple[list[PieceFeatures], int]:
    """Features of the pieces that have notes, and how many had none."""
    features = [piece_features(p) for p in pieces if p.notes]
    return features, len(pieces) - len(features)


def folk_tunes(n: int, steps_per_quarter: int) -> list[NoteSequence]:
    """The first ``n`` tunes of FOLK_SOURCE, each moved to a tonic of FOLK_TONICS (in turn) and
    to the octave where a chorale's soprano sings."""
    tunes = []
    for number in range(1, n + 1):
        tune = read_music21(FOLK_SOURCE, steps_per_quarter, number=number)
        shift = (FOLK_TONICS[(number - 1) % len(FOLK_TONICS)] - tonic_of(tune.key)) % 12
        mean = np.mean([note.pitch for note in tune.notes]) + shift
        shift += 12 * round((70 - mean) / 12)
        tunes.append(transpose(tune, shift))
    return tunes


def harmonize_folk(model: WordModel, n: int, rules: Rules | None) -> dict[str, float]:
    """Harmonize ``folk_tunes`` at the studio's defaults; the task's figures (see the docstring)."""
    studio = GenerationSettings()
    kept, in_key, tonic_bass, four = [], [], [], []
    for seed, tune in enumerate(tqdm(folk_tunes(n, model.steps_per_quarter), desc="folk tunes", leave=False)):
        writer = GapWriter(model, SamplingSettings(studio.temperature, studio.top_k, studio.top_p, seed), rules)
        for _ in writer.harmonize(tune):
            pass
        melody, result, new = writer.kept, writer.piece(), writer.new_notes()
        notes = set(result.notes)
        kept.append(np.mean([note in notes for note in melody]))
        scale = scale_of(writer.key)
        in_key.append(np.mean([scale[note.pitch % 12] for note in new]) if new else 0.0)
        last = melody[-1].start
        under = [note.pitch for note in result.notes if note.start <= last < note.end]
        tonic_bass.append(bool(under) and min(under) % 12 == tonic_of(writer.key))
        four.append(piece_features(result).four_sounding)
    return {
        "melody_kept": float(np.mean(kept)),
        "new_in_key": float(np.mean(in_key)),
        "tonic_in_bass": float(np.mean(tonic_bass)),
        "four_sounding": float(np.mean(four)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--n", type=whole(1, 1000), default=40, help="pieces per set")
    parser.add_argument("--sets", default=",".join(SETS), help="comma-separated, from: " + ", ".join(SETS))
    parser.add_argument("--data", type=Path, default=Path("data/chorales"))
    parser.add_argument("--word", type=Path, default=Path("checkpoints/chorales_small"), help="word checkpoint")
    parser.add_argument(
        "--words", type=whole(16, 100_000), default=GenerationSettings.words, help="word budget a piece (the studio's)"
    )
    parser.add_argument(
        "--temperature", type=real(0.01, 10.0), default=GenerationSettings.temperature, help="the word model's"
    )
    parser.add_argument("--vqvae", type=Path, default=Path("checkpoints/chorales_vqvae"))
    parser.add_argument("--prior", type=Path, default=Path("checkpoints/chorales_prior"))
    parser.add_argument("--threads", type=whole(1, 256), default=None, help="torch CPU threads")
    parser.add_argument(
        "--free-opening", action="store_true", help="a new piece's first chord not steered to its tonic"
    )
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
            f"temperature={args.temperature}, bar form: {args.bar_form}, "
            f"vqvae={args.vqvae}, prior={args.prior}, threads={torch.get_num_threads()}\n"
            f"  rules of '{TITLES['word_new_constrained']}' and of the harmonized tunes: {args.rules}"
        )
        results, timings, telling = run_sets(args, chosen)
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print_table(results, [s for s in chosen if s in PIECE_SETS])
    for name, features in telling.items():
        print(f"what tells {TITLES[name]} from Bach: " + ", ".join(f"{f} ({w:+.2f})" for f, w in features))
    if "harmonize_folk" in results:
        print(f"\n{TITLES['harmonize_folk']} ({FOLK_SOURCE} 1-{args.n if args.n < FOLK_TUNES else FOLK_TUNES}):")
        print(
            "| melody kept | new notes in the melody's key | tonic in the bass at its last note | exactly 4 sounding |"
        )
        print("|---|---|---|---|")
        folk = results["harmonize_folk"]
        cells = (folk["melody_kept"], folk["new_in_key"], folk["tonic_in_bass"], folk["four_sounding"])
        print("| " + " | ".join(f"{value:.3f}" for value in cells) + " |")
    print("seconds per set: " + ", ".join(f"{s} {timings[s]:.0f}" for s in chosen))
    print(f"wall time {time.perf_counter() - started:.0f} s")
    return 0


def run_sets(
    args: argparse.Namespace, chosen: list[str]
) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, list[tuple[str, float]]]]:
    """Each chosen set's figures, its seconds, and for each generated set the features that tell it
    from Bach."""
    dataset = WordDataset(args.data)
    test_names = dataset.names("test")
    train_names = dataset.names("train")
    if not test_names:
        raise CantorError(f"{args.data}: the test split is empty; nothing to compare with")
    real = [dataset.piece(name) for name in dataset.names()]
    reference, _ = judge([dataset.piece(name) for name in test_names])
    reference_forms = [piece_form(p) for p in real]
    word_model: WordModel | None = None

    def words_model() -> WordModel:
        nonlocal word_model
        if word_model is None:
            word_model = WordModel(args.word)
            word_model.check_grid(dataset)
        return word_model

    def primers() -> list[NoteSequence]:
        return [p.cropped(0, PRIMER_BARS * p.steps_per_bar) for p in (dataset.piece(name) for name in test_names)]

    def new_pieces(rules: Rules | None) -> Made:
        opening = not args.free_opening
        return word_pieces(
            words_model(), args.n, args.words, None, rules, args.temperature, opening, BAR_FORM[args.bar_form]
        )

    makers: dict[str, Callable[[], Made]] = {
        "bach_test": lambda: Made([dataset.piece(name) for name in test_names[: args.n]]),
        "train": lambda: Made(
            [dataset.piece(name) for name in train_names[:: max(1, len(train_names) // args.n)][: args.n]]
        ),
        "word_new": lambda: new_pieces(None),
        "word_continued": lambda: word_pieces(words_model(), args.n, args.words, primers(), None, args.temperature),
        "word_new_constrained": lambda: new_pieces(args.rules),
        "codebook_new": lambda: codebook_pieces(Codebooks(args.vqvae, args.prior), args.n),
        "trigram": lambda: trigram_pieces(dataset, args.n, args.words),
    }
    results, timings, telling = {}, {}, {}
    for name in chosen:
        began = time.perf_counter()
        if name == "harmonize_folk":
            results[name] = harmonize_folk(words_model(), min(args.n, FOLK_TUNES), args.rules)
            timings[name] = time.perf_counter() - began
            continue
        made = makers[name]()
        features, silent = judge(made.pieces)
        if not features:
            raise CantorError(f"{TITLES[name]}: none of its {args.n} pieces has a note")
        figures = summary(features)
        figures["silent"] = silent
        sounding = [p for p in made.pieces if p.notes]
        forms = [piece_form(p) for p in sounding]
        figures.update(form_summary(forms, made.ended))
        figures["key_distance"] = key_distance(forms, reference_forms)
        clashes = sum(f.clash_onsets for f in features)
        figures["clash_resolved"] = sum(f.clash_resolved for f in features) / clashes if clashes else 1.0
        if made.words:
            figures["median_words"] = float(np.median(made.words))
            steered_from = args.words - max(FINAL_WORDS, round(args.words * STEER_SHARE))
            figures["ended_unsteered"] = float(
                np.mean([e and w < steered_from for e, w in zip(made.ended, made.words, strict=True)])
            )
        if name != "bach_test" and len(reference) >= 2:
            figures.update({f"overlap {group}": value for group, value in overlap(reference, features).items()})
        if name in GENERATED and len(real) >= 2 * len(sounding):
            test = two_sample_test(sounding, real)
            figures["two_sample"], figures["two_sample_control"] = test.accuracy, test.control
            figures["two_sample_error"] = test.standard_error
            telling[name] = test.telling
        results[name] = figures
        timings[name] = time.perf_counter() - began
        print(f"  {TITLES[name]}: {len(features)} pieces judged in {timings[name]:.0f} s", flush=True)
    return results, timings, telling


def _cell(figures: dict[str, float], key: str, fmt: str) -> str:
    """A figure as the table shows it, with its standard error where it has one (``key_error``)."""
    if key not in figures:
        return "–"
    error = figures.get(f"{key}_error")
    return fmt.format(figures[key]) + ("" if error is None else f" ± {error:.2f}")


def print_table(results: dict[str, dict[str, float]], chosen: list[str]) -> None:
    """One Markdown table: a row per figure, a column per set."""
    if not chosen:
        return
    print()
    print("| | " + " | ".join(TITLES[s] for s in chosen) + " |")
    print("|---|" + "---|" * len(chosen))
    for key, label, fmt in ROWS:
        cells = [_cell(results[s], key, fmt) for s in chosen]
        print(f"| {label} | " + " | ".join(cells) + " |")
    controls = [results[s]["two_sample_control"] for s in chosen if "two_sample_control" in results[s]]
    if controls:
        print(f"the classifier's control, real chorales against real chorales: {np.mean(controls):.2f}")
    silent = {s: int(results[s]["silent"]) for s in chosen if results[s]["silent"]}
    if silent:
        print("pieces with no notes (left out): " + ", ".join(f"{TITLES[s]} {n}" for s, n in silent.items()))


if __name__ == "__main__":
    sys.exit(main())
