"""The VQ-VAE of the codebook pipeline: a quarter-note slice (1 x 88 x 32) <-> 16 code indices.

Encoder: the 88 pitch rows are padded to 96, then strided convolutions bring the slice down to an
8 x 2 grid of latent vectors: 16 positions per quarter, each an octave-wide band over an eighth
note, the layout of the original design (chorales move in eighths, across several octaves).
Quantizer: K codes (16 by default, up to 1024), updated by exponential moving averages,
initialised by k-means on the first batch of encoder outputs, with dead codes restarted on the
recent encoder outputs it represents worst. It reports usage perplexity. Or, with ``fsq_levels``,
finite scalar quantization (Mentzer et al. 2023): no codebook to learn at all, K = the product
of the levels.
Decoder: the mirror image, back to 88 x 32 logits. Loss: BCE with positive weighting (notes
are sparse: most cells are empty) plus the commitment term.

``net="bands"`` replaces both convolutional stacks by one small MLP applied to each of the 16
patches on its own (12 pitch rows x 16 ticks, weights shared by every band and eighth). A note
lies in one row, so the patches partition a slice exactly and nothing is lost by cutting there;
the convolutional autoencoder, even without its quantizer, reconstructed only 42 % of held-out
chorale quarters exactly, and the MLP gives every cell of a patch its own weights.

``original=True`` builds the anchor configuration of the original design for comparison:
random codebook init, codebook learnt by gradient (no EMA), no restart, plain BCE.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

PITCH_ROWS, TICKS, PADDED_ROWS = 88, 32, 96
PAD_ROWS = (PADDED_ROWS - PITCH_ROWS) // 2  # empty rows added below and above the piano's 88
MAX_CODES = 1024
NETS = ("conv", "bands")
RESTARTS = ("latent", "recon")


@dataclass
class VQVAEConfig:
    codes: int = 16  # K
    code_dim: int = 64
    hidden: int = 64
    commitment: float = 0.25
    ema_decay: float = 0.99
    dead_threshold: float = 0.03  # EMA usage (expected uses per batch) below which a code restarts
    pos_weight: float = 8.0  # BCE weight of "on" cells
    original: bool = False  # the anchor: random init, gradient codebook, no restart, plain BCE
    fsq_levels: str = ""  # e.g. "8,5,5,5": finite scalar quantization with K = 8*5*5*5; "": a codebook
    net: str = "conv"  # "conv": strided convolutions; "bands": one MLP per 12 x 16 patch
    restart_by: str = "latent"  # a dead code restarts on the output worst served: "latent" distance or "recon" error

    def __post_init__(self) -> None:
        if not 2 <= self.codes <= MAX_CODES:
            raise ValueError(f"codes must be between 2 and {MAX_CODES}")
        if self.restart_by not in RESTARTS:
            raise ValueError(f"restart_by must be one of {', '.join(RESTARTS)}, not {self.restart_by!r}")
        if not (math.isfinite(self.pos_weight) and self.pos_weight > 0):
            raise ValueError(f"pos_weight must be more than 0 (got {self.pos_weight})")
        if not (math.isfinite(self.dead_threshold) and self.dead_threshold >= 0):
            raise ValueError(f"dead_threshold must be 0 or more (got {self.dead_threshold})")
        if self.net not in NETS or (self.original and self.net != "conv"):
            raise ValueError(f"net must be one of {', '.join(NETS)} (the original design: conv), not {self.net!r}")
        if self.fsq_levels:
            levels = self.levels
            if not (1 <= len(levels) <= 8 and all(2 <= level <= 32 for level in levels)):
                raise ValueError(f"fsq_levels must be 1-8 numbers of 2-32 levels (got {self.fsq_levels!r})")
            if math.prod(levels) != self.codes or self.original:
                raise ValueError(f"FSQ levels {self.fsq_levels} make {math.prod(levels)} codes, not {self.codes}")

    @property
    def levels(self) -> tuple[int, ...]:
        return parse_levels(self.fsq_levels)

    def to_json(self) -> dict:
        return asdict(self)


def parse_levels(text: str) -> tuple[int, ...]:
    """FSQ levels from "8,5,5,5"; ValueError if the text is not a comma-separated list of numbers."""
    try:
        return tuple(int(level) for level in text.split(","))
    except ValueError:
        raise ValueError(f"FSQ levels must look like 8,5,5,5 (got {text[:40]!r})") from None


class ResBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.GELU(), nn.Conv2d(channels, channels, 3, padding=1), nn.GELU(), nn.Conv2d(channels, channels, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


LATENT_GRID = (8, 2)  # (pitch bands, time steps) per quarter


class Encoder(nn.Module):
    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        h = c.hidden
        self.net = nn.Sequential(
            nn.Conv2d(1, h // 2, 4, stride=2, padding=1),  # (B, h/2, 48, 16)
            nn.GELU(),
            nn.Conv2d(h // 2, h, 4, stride=2, padding=1),  # (B, h, 24, 8)
            ResBlock(h),
            nn.Conv2d(h, h, (3, 4), stride=(3, 4)),  # (B, h, 8, 2): 16 positions
            ResBlock(h),
            nn.GELU(),
            nn.Conv2d(h, c.code_dim, 1),  # (B, D, 8, 2)
        )

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        x = F.pad(slices, (0, 0, PAD_ROWS, PAD_ROWS))  # (B, 1, 96, 32)
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        h = c.hidden
        self.net = nn.Sequential(
            nn.Conv2d(c.code_dim, h, 1),
            ResBlock(h),
            nn.ConvTranspose2d(h, h, (3, 4), stride=(3, 4)),  # (B, h, 24, 8)
            ResBlock(h),
            nn.GELU(),
            nn.ConvTranspose2d(h, h // 2, 4, stride=2, padding=1),  # (B, h/2, 48, 16)
            nn.GELU(),
            nn.ConvTranspose2d(h // 2, 1, 4, stride=2, padding=1),  # (B, 1, 96, 32)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)[:, :, PAD_ROWS : PAD_ROWS + PITCH_ROWS, :]  # logits (B, 1, 88, 32)


BAND_ROWS, EIGHTH_TICKS = PADDED_ROWS // LATENT_GRID[0], TICKS // LATENT_GRID[1]  # a patch: 12 x 16 cells


def mlp(inputs: int, width: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(inputs, width), nn.GELU(), nn.Linear(width, width), nn.GELU(), nn.Linear(width, outputs)
    )


class BandEncoder(nn.Module):
    """(B, 1, 88, 32) -> (B, D, 8, 2), each latent vector from its own 12 x 16 patch."""

    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        self.net = mlp(BAND_ROWS * EIGHTH_TICKS, 4 * c.hidden, c.code_dim)

    def forward(self, slices: torch.Tensor) -> torch.Tensor:
        x = F.pad(slices, (0, 0, PAD_ROWS, PAD_ROWS))  # (B, 1, 96, 32)
        bands, eighths = LATENT_GRID
        patches = x.reshape(-1, bands, BAND_ROWS, eighths, EIGHTH_TICKS).permute(0, 1, 3, 2, 4)
        z = self.net(patches.reshape(-1, bands, eighths, BAND_ROWS * EIGHTH_TICKS))  # (B, 8, 2, D)
        return z.permute(0, 3, 1, 2)


class BandDecoder(nn.Module):
    """(B, D, 8, 2) -> logits (B, 1, 88, 32), each patch from its own latent vector."""

    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        self.net = mlp(c.code_dim, 4 * c.hidden, BAND_ROWS * EIGHTH_TICKS)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        bands, eighths = LATENT_GRID
        patches = self.net(z.permute(0, 2, 3, 1)).reshape(-1, bands, eighths, BAND_ROWS, EIGHTH_TICKS)
        logits = patches.permute(0, 1, 3, 2, 4).reshape(-1, 1, PADDED_ROWS, TICKS)
        return logits[:, :, PAD_ROWS : PAD_ROWS + PITCH_ROWS, :]


def float32_products(z: torch.Tensor) -> torch.autocast:
    """Autocast off: the quantizer's matrix products stay float32 under training's bf16 autocast.
    Its distances are differences of large sums and its EMA sums add many vectors, which
    bfloat16's 8-bit mantissa would blur (a nearest code missed, a code drifting)."""
    return torch.autocast(z.device.type, enabled=False)


class Quantizer(nn.Module):
    """Nearest-code quantization of (N, D) vectors with EMA updates and dead-code restart."""

    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        self.config = c
        self.codebook = nn.Parameter(torch.randn(c.codes, c.code_dim), requires_grad=c.original)
        self.register_buffer("ema_count", torch.ones(c.codes))
        self.register_buffer("ema_sum", self.codebook.detach().clone())
        self.register_buffer("initialised", torch.tensor(c.original))
        self.restarts = 0  # codes restarted so far (for logs)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The code vectors (..., D) of ``indices``."""
        return self.codebook[indices]

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of z (N, D)."""
        z = z.float()  # latents made under bf16 autocast are bfloat16; free when z is float32 already
        with float32_products(z):
            distances = z.pow(2).sum(1, keepdim=True) - 2 * z @ self.codebook.t() + self.codebook.pow(2).sum(1)[None, :]
        return distances.argmin(dim=1)

    @torch.no_grad()
    def _kmeans_init(self, z: torch.Tensor, iterations: int = 10) -> None:
        """Codes start as k-means centroids of the first batch of encoder outputs."""
        codes = self.config.codes
        picks = (  # a first batch smaller than the codebook repeats some outputs
            torch.randperm(len(z), device=z.device)[:codes]
            if len(z) >= codes
            else torch.randint(len(z), (codes,), device=z.device)
        )
        centroids = z[picks].clone()
        for _ in range(iterations):
            assign = ((z[:, None, :] - centroids[None]) ** 2).sum(-1).argmin(1)
            for k in range(self.config.codes):
                members = z[assign == k]
                centroids[k] = members.mean(0) if len(members) else z[torch.randint(len(z), (1,))][0]
        self.codebook.data.copy_(centroids)
        self.ema_sum.copy_(centroids)
        self.ema_count.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, indices: torch.Tensor) -> None:
        c = self.config
        one_hot = F.one_hot(indices, c.codes).type(z.dtype)  # (N, K)
        self.ema_count.mul_(c.ema_decay).add_(one_hot.sum(0), alpha=1 - c.ema_decay)
        with float32_products(z):
            self.ema_sum.mul_(c.ema_decay).add_(one_hot.t() @ z, alpha=1 - c.ema_decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + 1e-5) / (n + c.codes * 1e-5) * n  # Laplace smoothing
        self.codebook.data.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def restart_dead(self, z: torch.Tensor, badness: torch.Tensor | None = None) -> None:
        """Restart each code whose EMA use fell below the threshold on one of this batch's
        encoder outputs z (N, D) that is served worst: by ``badness`` (N,) where given (the
        reconstruction error of each output's patch), else by its distance to its code. Most
        positions of a slice are empty bands, so random outputs would mostly be silence; and a
        rare patch whose output lies close to a frequent one's shares its code and is decoded as
        the frequent patch while its distance stays small, so only its reconstruction error shows it."""
        c = self.config
        z = z.float()  # as in forward
        threshold = c.dead_threshold * len(z) / c.codes
        dead = self.ema_count < threshold
        if not dead.any():
            return
        if badness is None:
            badness = (z - self.codebook[self.nearest(z)]).pow(2).sum(1)
        worst = badness.topk(min(len(z), 8 * int(dead.sum()))).indices
        replacement = z[worst[torch.randperm(len(worst), device=z.device)[: int(dead.sum())]]]
        self.codebook.data[dead] = replacement
        self.ema_sum[dead] = replacement * 2 * threshold
        self.ema_count[dead] = 2 * threshold  # retried soon if it is still not used
        self.restarts += int(dead.sum())

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (N, D) -> (quantized with straight-through gradient, indices (N,), loss)."""
        c = self.config
        z = z.float()  # bf16 autocast hands it bfloat16 encoder outputs: the codebook stays float32
        if self.training and not bool(self.initialised):
            self._kmeans_init(z.detach())
        indices = self.nearest(z.detach())
        quantized = self.codebook[indices]
        loss = c.commitment * F.mse_loss(z, quantized.detach())
        if c.original:
            loss = loss + F.mse_loss(quantized, z.detach())  # the codebook learns by gradient
        elif self.training:
            self._ema_update(z.detach(), indices)
        quantized = z + (quantized - z).detach()
        return quantized, indices, loss


class ScalarQuantizer(nn.Module):
    """Finite scalar quantization: each latent vector is projected to one number per level count,
    bounded with tanh and rounded to one of that many levels (straight-through gradient); the
    code is the index of the grid point. There is no codebook to learn, so no code can die
    and no commitment loss is needed."""

    def __init__(self, c: VQVAEConfig) -> None:
        super().__init__()
        levels = torch.tensor(c.levels)
        self.project_in = nn.Linear(c.code_dim, len(levels))
        self.project_out = nn.Linear(len(levels), c.code_dim)
        self.register_buffer("levels", levels, persistent=False)
        basis = torch.cumprod(torch.cat([torch.ones(1, dtype=torch.long), levels[:-1]]), 0)  # mixed radix
        self.register_buffer("basis", basis, persistent=False)

    def _grid(self, z: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N, len(levels)) integer grid values in 0..level-1, as floats with a
        straight-through gradient."""
        levels = self.levels.to(z.dtype)
        half = (levels - 1) / 2
        offset = (self.levels % 2 == 0).to(z.dtype) * 0.5  # an even count has no level at zero
        bounded = torch.tanh(self.project_in(z) + torch.atanh(offset / half)) * half - offset
        rounded = bounded + (bounded.round() - bounded).detach()
        return rounded + (self.levels // 2).to(z.dtype)

    def _vectors(self, grid: torch.Tensor) -> torch.Tensor:
        half_width = (self.levels // 2).to(grid.dtype)
        return self.project_out((grid - half_width) / half_width)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        grid = (indices[..., None] // self.basis) % self.levels
        return self._vectors(grid.float())

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        return (self._grid(z).round().long() * self.basis).sum(-1)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        grid = self._grid(z)
        indices = (grid.detach().round().long() * self.basis).sum(-1)
        return self._vectors(grid), indices, z.new_zeros(())


class VQVAE(nn.Module):
    def __init__(self, config: VQVAEConfig) -> None:
        super().__init__()
        self.config = config
        bands = config.net == "bands"
        self.encoder = BandEncoder(config) if bands else Encoder(config)
        self.quantizer = ScalarQuantizer(config) if config.fsq_levels else Quantizer(config)
        self.decoder = BandDecoder(config) if bands else Decoder(config)

    def _latents(self, slices: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
        z = self.encoder(slices)  # (B, D, 8, 2)
        B, D, H, W = z.shape
        return z.permute(0, 2, 3, 1).reshape(B * H * W, D), (B, D, H, W)

    def forward(self, slices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """slices (B, 1, 88, 32) in {0, 1} -> (logits, indices (B, 16), loss)."""
        flat, (B, D, H, W) = self._latents(slices)
        quantized, indices, vq_loss = self.quantizer(flat)
        z_q = quantized.reshape(B, H, W, D).permute(0, 3, 1, 2)
        logits = self.decoder(z_q)
        c = self.config
        pos_weight = None if c.original else torch.tensor(c.pos_weight, device=slices.device)
        cells = F.binary_cross_entropy_with_logits(logits, slices, pos_weight=pos_weight, reduction="none")
        if self.training and isinstance(self.quantizer, Quantizer) and not c.original:
            badness = None
            if c.restart_by == "recon":  # each latent's patch: 12 x 16 cells of the padded slice
                padded = F.pad(cells.detach(), (0, 0, PAD_ROWS, PAD_ROWS))
                patches = F.avg_pool2d(padded, (BAND_ROWS, EIGHTH_TICKS))
                badness = patches.reshape(-1)  # (B * 8 * 2,), in the order of flat's rows
            self.quantizer.restart_dead(flat.detach(), badness)
        return logits, indices.reshape(B, H * W), cells.mean() + vq_loss

    @torch.no_grad()
    def encode(self, slices: torch.Tensor) -> torch.Tensor:
        """slices (B, 88, 32) or (B, 1, 88, 32) -> code indices (B, 16)."""
        if slices.dim() == 3:
            slices = slices[:, None]
        flat, (B, _, H, W) = self._latents(slices.float())
        return self.quantizer.nearest(flat).reshape(B, H * W)

    @torch.no_grad()
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """code indices (B, 16) -> note probabilities (B, 88, 32).

        The BCE that weighs "on" cells by pos_weight w is least where sigmoid(logit) is
        w p / (w p + 1 - p), p the cell's true probability, so the logits are shifted back by
        log w: a cell is "on" past 0.5 when the decoder thinks it more likely on than off. Without
        the shift every doubtful cell would sound (held-out chorales: 87.2 % of quarters exact
        against 87.7 % with it; non-chorale onset F1 0.821 against 0.857)."""
        B = codes.shape[0]
        z_q = self.quantizer.lookup(codes.reshape(-1)).reshape(B, *LATENT_GRID, -1).permute(0, 3, 1, 2)
        logits = self.decoder(z_q)[:, 0]
        if not self.config.original:
            logits = logits - math.log(self.config.pos_weight)
        return torch.sigmoid(logits)

    def configure_optimizer(self, weight_decay: float, lr: float, betas: tuple[float, float]) -> torch.optim.AdamW:
        params = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay)


def onsets(slices: torch.Tensor) -> torch.Tensor:
    """Cells where a note starts: on, and off in the tick before (or at the slice's first tick)."""
    before = F.pad(slices[..., :-1], (1, 0))
    return (slices > 0.5) & ~(before > 0.5)


def f1(predicted: torch.Tensor, truth: torch.Tensor) -> float:
    hits = (predicted & truth).sum().item()
    wrong, missed = (predicted & ~truth).sum().item(), (~predicted & truth).sum().item()
    return 1.0 if hits + wrong + missed == 0 else 2 * hits / (2 * hits + wrong + missed)


@torch.no_grad()
def reconstruction_scores(model: VQVAE, slices: torch.Tensor, batch: int = 512) -> dict[str, float]:
    """On held-out slices (N, 88, 32): note-onset F1 and frame F1 of the rounded reconstruction,
    the share of quarters reconstructed exactly (every cell), codebook usage perplexity and the
    number of codes never used."""
    model.eval()
    codes = torch.cat([model.encode(slices[i : i + batch]) for i in range(0, len(slices), batch)])
    recon = torch.cat([model.decode(codes[i : i + batch]) for i in range(0, len(codes), batch)]) > 0.5
    truth = slices > 0.5
    usage = torch.bincount(codes.reshape(-1), minlength=model.config.codes).float()
    p = usage / usage.sum()
    perplexity = torch.exp(-(p[p > 0] * p[p > 0].log()).sum()).item()
    return {
        "onset_f1": f1(onsets(recon.float()), onsets(truth.float())),
        "frame_f1": f1(recon, truth),
        "exact_quarters": (recon == truth).flatten(1).all(dim=1).float().mean().item(),
        "perplexity": perplexity,
        "dead_codes": int((usage == 0).sum()),
    }
