"""Write a piece with the codebook pipeline: the prior writes codes, the VQ-VAE turns them into notes.

    python -m models.sample_codes --vqvae checkpoints/chorales_vqvae --prior checkpoints/chorales_prior \\
        --quarters 48 --temperature 1.0 --top-k 8 --seed 1 --out piece.mid
    python -m models.sample_codes ... --continue my_song.mid     # its quarters are the primer
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from tqdm import tqdm

from models.codebooks import CODES_PER_QUARTER, Codebooks
from models.sample import write_continuation
from models.sampling import SamplingSettings
from models.word_model import Continuation
from tokenizer.cli import HelpFormatter, real, stopped_by_ctrl_c, whole
from tokenizer.errors import CantorError
from tokenizer.readers import read_piece


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--vqvae", type=Path, required=True)
    parser.add_argument("--prior", type=Path, required=True)
    parser.add_argument("--quarters", type=whole(1, 10_000), default=48, help="quarter notes to generate")
    parser.add_argument("--temperature", type=real(0.01, 100.0), default=1.0)
    parser.add_argument("--top-k", type=whole(1, 100_000), default=None)
    parser.add_argument("--top-p", type=real(1e-6, 1.0), default=1.0)
    parser.add_argument("--seed", type=whole(0, 2**63 - 1), default=1)
    parser.add_argument("--continue", dest="continue_file", type=Path, help="a MIDI or MusicXML file to continue")
    parser.add_argument("--out", type=Path, default=Path("piece.mid"))
    parser.add_argument("--threads", type=whole(1, 1024), default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        if args.quarters <= 0:
            raise CantorError(f"--quarters must be at least 1 (got {args.quarters})")
        settings = SamplingSettings(args.temperature, args.top_k, args.top_p, args.seed)
        settings.validate()
        codebooks = Codebooks(args.vqvae, args.prior)
        if codebooks.warning:
            print(f"warning: {codebooks.warning}", file=sys.stderr)
        primer, primer_codes = None, None
        if args.continue_file:
            primer = read_piece(args.continue_file, codebooks.steps_per_quarter)
            slices, dropped = codebooks.slices_of(primer)
            if dropped:
                print(f"warning: {dropped} notes outside the piano range 21-108 were dropped from the primer")
            primer_codes = codebooks.encode(slices)
        codes = []
        with tqdm(total=args.quarters * CODES_PER_QUARTER, desc="generating", unit="code") as bar, stopped_by_ctrl_c():
            for code in codebooks.stream_codes(args.quarters, settings, primer_codes):
                codes.append(code)
                bar.update(1)
        codes = codes[: len(codes) // CODES_PER_QUARTER * CODES_PER_QUARTER]  # whole quarters (after a Ctrl+C)
        primer_quarters = 0 if primer_codes is None else len(primer_codes)
        primer_piece, generated = codebooks.piece_from_codes(codes, primer, primer_quarters)
        if not generated.notes:
            print(f"warning: {args.vqvae} decoded the {len(codes)} codes to silence: no notes", file=sys.stderr)
        write_continuation(Continuation(primer_piece, generated), args.out)
    except CantorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(
        f"wrote {args.out}: {len(primer_piece.notes)} primer notes + {len(generated.notes)} generated notes "
        f"from {len(codes)} codes ({len(codes) // CODES_PER_QUARTER} of {args.quarters} quarters)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
