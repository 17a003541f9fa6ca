"""Write a piece with the word model, or continue one.

    python -m models.sample --checkpoint checkpoints/chorales_small --words 512 --temperature 1.0 \\
        --top-k 20 --top-p 0.95 --seed 1 --out piece.mid
    python -m models.sample --checkpoint ... --continue my_song.mid --out continued.mid
    python -m models.sample --checkpoint ... --dataset-piece bwv66.6 --quarters 8 --out continued.mid
    python -m models.sample --checkpoint ... --key "D minor" --lowest 40 --highest 81 --no-repeat 24
    python -m models.sample --checkpoint ... --variations 4 --out piece.mid   # piece-1.mid ... piece-4.mid

The four-part rules (at most 4 voices, no semitone clash, no parallel fifths or octaves) are on
by default, as in the studio; --no-rules samples the model alone. Range, key and repeats are free
unless given. The MIDI file has the primer and the generated notes as two named tracks.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from models.sampling import MAX_ROWS, SamplingSettings
from models.word_model import Continuation, WordModel
from tokenizer.cli import HelpFormatter, real, stopped_by_ctrl_c, whole
from tokenizer.constraints import NO_RULES, Rules
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.keys import KEYS
from tokenizer.notes import HIGHEST_PIANO_PITCH, LOWEST_PIANO_PITCH
from tokenizer.readers import read_piece
from tokenizer.repeat import BAR_FORM
from tokenizer.writers import write_midi


def write_continuation(result: Continuation, path: Path) -> Path:
    """MIDI with the primer and the generated notes as separate, named tracks."""
    parts = [("generated", result.generated)]
    if result.primer.notes:
        parts.insert(0, ("primer", result.primer))
    return write_midi(result.combined(), path, parts=parts)


def variation_path(out: Path, row: int) -> Path:
    """piece.mid -> piece-1.mid, piece-2.mid, ... (row 0 is 1)."""
    return out.with_name(f"{out.stem}-{row + 1}{out.suffix}")


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """Temperature, top-k, top-p, seed and threads: what every word-model sampling command takes."""
    parser.add_argument("--temperature", type=real(0.01, 100.0), default=1.0)
    parser.add_argument("--top-k", type=whole(1, 100_000), default=None)
    parser.add_argument("--top-p", type=real(1e-6, 1.0), default=1.0)
    parser.add_argument("--seed", type=whole(0, 2**63 - 1), default=1)
    parser.add_argument("--threads", type=whole(1, 1024), default=None)


def sampling_from(args: argparse.Namespace) -> SamplingSettings:
    """The sampling settings the arguments ask for (torch's thread count is set here too);
    CantorError for a bad combination."""
    if args.threads:
        torch.set_num_threads(args.threads)
    settings = SamplingSettings(args.temperature, args.top_k, args.top_p, args.seed)
    settings.validate()
    return settings


def add_rule_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("musical rules (tokenizer/constraints.py)")
    group.add_argument("--no-rules", action="store_true", help="none of the four-part rules: the model alone")
    group.add_argument("--max-voices", type=whole(0, 88), default=4, help="pitches sounding at once; 0: any")
    group.add_argument("--allow-clash", action="store_true", help="allow a semitone against a sounding note")
    group.add_argument("--allow-parallels", action="store_true", help="allow parallel fifths and octaves")
    group.add_argument("--lowest", type=whole(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH), default=LOWEST_PIANO_PITCH)
    group.add_argument("--highest", type=whole(LOWEST_PIANO_PITCH, HIGHEST_PIANO_PITCH), default=HIGHEST_PIANO_PITCH)
    group.add_argument(
        "--key",
        choices=KEYS,
        metavar="KEY",
        default=None,
        help='e.g. "D minor": a new piece is in it (a model with key words) and other pitches are weighed down; '
        "default: the model's choice, as Bach's",
    )
    group.add_argument(
        "--out-of-key-weight", type=real(0.0, 1.0), default=0.1, help="with --key: the weight of other pitches"
    )
    group.add_argument("--no-repeat", type=whole(0, 10_000), default=0, help="words no run of may repeat; 0: off")
    group.add_argument(
        "--bar-form",
        choices=sorted(BAR_FORM),
        default="bach",
        help="a new piece sings its first two phrases again: always, never, or as often as Bach's chorales (1 in 10)",
    )


def rules_from(args: argparse.Namespace) -> Rules | None:
    """The rules the arguments ask for; None where they ask for none. CantorError for a
    contradiction (a range with no note of the key, a range upside down)."""
    four_part = not args.no_rules
    try:
        rules = Rules(
            max_voices=(args.max_voices or None) if four_part else None,
            no_clash=four_part and not args.allow_clash,
            no_parallels=four_part and not args.allow_parallels,
            lowest=args.lowest,
            highest=args.highest,
            key=args.key,
            out_of_key_weight=args.out_of_key_weight,
            no_repeat=args.no_repeat,
        )
    except ValueError as err:
        raise CantorError(f"the rules: {err}") from None
    return None if rules == NO_RULES else rules


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--words", type=whole(1, 100_000), default=768, help="words to generate")
    add_sampling_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("piece.mid"))
    primer = parser.add_mutually_exclusive_group()
    primer.add_argument("--continue", dest="continue_file", type=Path, help="a MIDI or MusicXML file to continue")
    primer.add_argument("--dataset-piece", help="a piece of the prepared dataset to continue")
    parser.add_argument("--data", type=Path, default=None, help="with --dataset-piece (default: the checkpoint's)")
    parser.add_argument(
        "--quarters", type=whole(1, 10_000), default=8, help="with --dataset-piece: quarters of it to keep"
    )
    parser.add_argument("--through-end", action="store_true", help="at END, start a new piece until --words")
    parser.add_argument(
        "--variations", type=whole(1, MAX_ROWS), default=1, help="pieces written at once (seeds SEED, SEED+1, ...)"
    )
    parser.add_argument(
        "--window-shift",
        type=int,
        default=None,
        help="past the context, words dropped per re-prefill: 1 keeps the full context at every word "
        "(slowest); default a quarter of the context",
    )
    add_rule_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = sampling_from(args)
        rules = rules_from(args)
        if args.words <= 0:
            raise CantorError(f"--words must be at least 1 (got {args.words})")
        word_model = WordModel(args.checkpoint)
        primer = None
        if args.continue_file:
            primer = word_model.primer(read_piece(args.continue_file, word_model.steps_per_quarter))
        elif args.dataset_piece:
            if args.quarters <= 0:
                raise CantorError(f"--quarters must be at least 1 (got {args.quarters})")
            dataset = WordDataset(args.data or word_model.info["model_card"]["data"])
            word_model.check_grid(dataset)
            piece = dataset.piece(args.dataset_piece)
            primer = word_model.primer(piece.cropped(0, args.quarters * piece.steps_per_quarter))
        if primer and primer.dropped_words:
            print(
                f"note: the primer has {len(primer.ids)} words; the model sees the most recent "
                f"{len(primer.ids) - primer.dropped_words} (its context is {word_model.block_size})"
            )
        rows = word_model.stream_variations(
            args.words,
            settings,
            args.variations,
            primer,
            stop_at_end=not args.through_end,
            window_shift=args.window_shift,
            rules=rules,
            key=args.key,
            bar_form=BAR_FORM[args.bar_form],
        )
        words: list[list[int]] = [[] for _ in range(args.variations)]
        with tqdm(total=args.words, desc="generating", unit="word") as bar, stopped_by_ctrl_c():
            for ids in rows:
                for row, word_id in enumerate(ids):
                    if word_id is not None:
                        words[row].append(word_id)
                bar.update(1)
        outs = [args.out] if args.variations == 1 else [variation_path(args.out, r) for r in range(args.variations)]
        results = [word_model.continuation(w, primer, name=out.stem) for w, out in zip(words, outs, strict=True)]
        for result, out in zip(results, outs, strict=True):
            write_continuation(result, out)
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for result, out, row_words in zip(results, outs, words, strict=True):
        ending = (
            "ended by itself"
            if row_words and row_words[-1] == word_model.vocab.end_id
            else "stopped at the length limit"
        )
        key = f" in {result.generated.key}" if result.generated.key else ""
        print(
            f"wrote {out}: {len(result.primer.notes)} primer notes + {len(result.generated.notes)} generated notes "
            f"from {len(row_words)} words{key}; {ending}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
