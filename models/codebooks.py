"""The codebook pipeline as the CLIs and the studio use it: a VQ-VAE and a prior that fit.

piece -> quarter slices -> VQ-VAE codes (16 a quarter) -> prior writes more codes -> VQ-VAE
decoder -> slices -> piece. The prior is the shared GPT over the K codes plus one start-of-piece
token (id K), so that it can begin a piece from nothing. Generation slides the window one code at
a time with the full context (``window_shift=1`` in models.sampling): no seams, no reseeding.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from models.checkpoint import (
    build_checked,
    config_from,
    load_gpt,
    read_info,
    stem,
    steps_per_quarter_of,
)
from models.decoding import prepare
from models.sampling import SamplingSettings, stream
from models.vqvae import (
    BAND_ROWS,
    EIGHTH_TICKS,
    MAX_CODES,
    PAD_ROWS,
    VQVAE,
    VQVAEConfig,
    f1,
    onsets,
)
from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence
from tokenizer.slices import piece_to_slices, slices_to_piece

CODES_PER_QUARTER = 16
SHOWN_BAND = 3  # the octave band the codebook explorer shows: MIDI 53-64, around middle C
VQVAE_LIMITS = {  # the ranges a VQVAEConfig in a checkpoint may take
    "codes": (2, MAX_CODES),
    "code_dim": (1, 1_024),
    "hidden": (1, 1_024),
    "commitment": (0.0, 100.0),
    "ema_decay": (0.0, 1.0),
    "dead_threshold": (0.0, 1e6),
    "pos_weight": (0.0, 1e6),
}


def load_vqvae(path: str | Path) -> tuple[VQVAE, dict]:
    info = read_info(path)
    name = stem(path).name
    if info.get("kind") != "vqvae":
        raise CantorError(f"{name}: a {info.get('kind')!r} checkpoint, not a VQ-VAE")
    config = info.get("vqvae_config")
    if isinstance(config, dict):
        before = {"fsq_levels": "", "net": "conv", "restart_by": "latent"}  # checkpoints from before these fields
        config = {**before, **config}
    config = config_from(VQVAEConfig, config, name, VQVAE_LIMITS)
    return build_checked(path, lambda: VQVAE(config)), info


class NoStart:
    """Constraint for the prior: every code is legal, the start-of-piece token never is."""

    def __init__(self, codes: int) -> None:
        self._mask = np.ones(codes + 1, dtype=bool)
        self._mask[codes] = False
        self._mask.flags.writeable = False  # one state: the sampler keeps its tensor

    def legal_mask(self) -> np.ndarray:
        return self._mask

    def logit_bias(self) -> None:
        return None

    def advance(self, word_id: int) -> None:
        pass

    def reset(self) -> None:
        pass


class Codebooks:
    """A VQ-VAE, and optionally a prior trained on its codes."""

    def __init__(self, vqvae_path: str | Path, prior_path: str | Path | None = None) -> None:
        self.vqvae, self.vqvae_info = load_vqvae(vqvae_path)
        self.codes = self.vqvae.config.codes
        self.steps_per_quarter = steps_per_quarter_of(self.vqvae_info, stem(vqvae_path).name)
        self.prior = None
        self.prior_info: dict = {}
        self.warning = ""  # a pair that loads but may not belong together
        if prior_path is not None:
            self.prior, self.prior_info = load_gpt(prior_path, "prior")
            prepare(self.prior)
            self.warning = self._check_pair(stem(vqvae_path).name, stem(prior_path).name)

    def _check_pair(self, vqvae: str, prior: str) -> str:
        """CantorError if the prior cannot write this VQ-VAE's codes: another K, another number
        of codes a quarter, or phases of another period. A warning (or "") for a pair that fits
        but was not trained together, or a prior that does not know where a quarter begins."""
        info, config = self.prior_info, self.prior.config
        prior_codes = info.get("codes")
        per_quarter = info.get("codes_per_quarter", CODES_PER_QUARTER)
        for field, value in (("codes", prior_codes), ("codes_per_quarter", per_quarter)):
            if type(value) is not int:
                raise CantorError(f"{prior}: its card's {field} must be a whole number (got {str(value)[:20]!r})")
        if config.block_size <= CODES_PER_QUARTER:
            raise CantorError(
                f"{prior}: its context of {config.block_size} codes is shorter than a quarter "
                f"({CODES_PER_QUARTER} codes) and the next code"
            )
        if prior_codes != self.codes or config.vocab_size != self.codes + 1:
            raise CantorError(
                f"{prior} was trained on {prior_codes} codes, but {vqvae} has {self.codes}: pick a matching pair"
            )
        if per_quarter != CODES_PER_QUARTER:
            raise CantorError(
                f"{prior} writes {per_quarter} codes a quarter, but {vqvae}'s layout has {CODES_PER_QUARTER}"
            )
        if config.phase_period not in (0, CODES_PER_QUARTER):
            raise CantorError(
                f"{prior} counts phases over {config.phase_period} codes, "
                f"but a quarter of {vqvae} is {CODES_PER_QUARTER}"
            )
        trained_on = info.get("vqvae")
        if trained_on != vqvae:
            other = trained_on or "another VQ-VAE"
            return f"{prior} was trained on the codes of {other}, not of {vqvae}: its pieces may not make sense"
        if not config.phase_period:
            return (
                f"{prior} does not know where a quarter begins (no phases): its codes may drift out of {vqvae}'s layout"
            )
        return ""

    @property
    def start_id(self) -> int:
        return self.codes

    # -- pieces <-> codes ------------------------------------------------------------------------
    def slices_of(self, piece: NoteSequence) -> tuple[np.ndarray, int]:
        """Quarter slices and the count of notes dropped as outside 21-108; CantorError if the
        piece is shorter than one quarter."""
        if piece.total_steps < piece.steps_per_quarter:
            raise CantorError(f"{piece.name or 'the piece'}: shorter than one quarter note")
        return piece_to_slices(piece)

    def encode(self, slices: np.ndarray) -> np.ndarray:
        """(Q, 88, 32) slices -> (Q, 16) codes."""
        return self.vqvae.encode(torch.from_numpy(slices.astype(np.float32))).numpy()

    def decode_slices(self, codes: np.ndarray) -> np.ndarray:
        """(Q, 16) codes -> (Q, 88, 32) note probabilities."""
        return self.vqvae.decode(torch.from_numpy(np.asarray(codes, dtype=np.int64))).numpy()

    def code_patterns(self) -> np.ndarray:
        """(K, 12, 16) note probabilities, lowest pitch first: what each code means, decoded at
        every position of a quarter and read in one octave band (F3-E4) over one eighth."""
        slices = self.decode_slices(np.repeat(np.arange(self.codes)[:, None], CODES_PER_QUARTER, axis=1))
        top = SHOWN_BAND * BAND_ROWS - PAD_ROWS
        return slices[:, top : top + BAND_ROWS, :EIGHTH_TICKS]

    def decode(self, codes: np.ndarray, **piece_fields) -> NoteSequence:
        """(Q, 16) codes -> notes, on the VQ-VAE's grid unless ``steps_per_quarter`` is given."""
        piece_fields.setdefault("steps_per_quarter", self.steps_per_quarter)
        return slices_to_piece(self.decode_slices(codes), **piece_fields)

    def scores(self, slices: np.ndarray, reconstruction: np.ndarray) -> dict[str, float]:
        """Note-onset and frame F1 of a rounded reconstruction against the original slices."""
        truth = torch.from_numpy(slices > 0.5)
        recon = torch.from_numpy(reconstruction > 0.5)
        return {
            "onset_f1": f1(onsets(recon.float()), onsets(truth.float())),
            "frame_f1": f1(recon, truth),
        }

    # -- generation ------------------------------------------------------------------------------
    def stream_codes(
        self,
        quarters: int,
        settings: SamplingSettings,
        primer_codes: np.ndarray | None = None,
        cancel: threading.Event | None = None,
        on_context=None,
    ) -> Iterator[int]:
        """New codes, one at a time: ``quarters`` x 16 of them, after the primer's if given."""
        if self.prior is None:
            raise CantorError("no prior is loaded: train one with python -m models.train_prior")
        if quarters <= 0:
            raise CantorError(f"the number of quarters must be at least 1 (got {quarters})")
        prompt = [self.start_id]
        if primer_codes is not None:
            prompt += np.asarray(primer_codes).reshape(-1).tolist()
        return stream(
            self.prior,
            prompt,
            quarters * CODES_PER_QUARTER,
            settings,
            constraint=NoStart(self.codes),
            cancel=cancel,
            window_shift=1,
            on_context=on_context,
        )

    def piece_from_codes(
        self, codes: list[int], primer: NoteSequence | None = None, primer_quarters: int = 0
    ) -> tuple[NoteSequence, NoteSequence]:
        """(primer, generated) notes: the complete quarters of ``codes`` decoded and laid after
        the primer's quarters, on the primer's grid, time signature and tempo (4/4, 96 otherwise)."""
        whole = len(codes) // CODES_PER_QUARTER
        template = primer or NoteSequence(steps_per_quarter=self.steps_per_quarter, tempos=[(0, 96.0)])
        fields_ = dict(
            steps_per_quarter=self.steps_per_quarter, tempos=template.tempos, time_signature=template.time_signature
        )
        if whole == 0:
            generated = NoteSequence(**fields_, name="generated")
        else:
            block = np.asarray(codes[: whole * CODES_PER_QUARTER]).reshape(whole, CODES_PER_QUARTER)
            generated = self.decode(block, **fields_, name="generated")
            generated = generated.shifted(primer_quarters * self.steps_per_quarter)
        primer_piece = replace(primer, name="primer") if primer else NoteSequence(**fields_, name="primer")
        return primer_piece, generated
