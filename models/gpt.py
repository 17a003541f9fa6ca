"""A nanoGPT-style decoder-only transformer, shared by the word model and the codebook prior.

Pre-LayerNorm blocks, causal self-attention through F.scaled_dot_product_attention, a GELU MLP
and input/output embeddings tied together. Positions are rotary (RoPE, Su et al. 2021: queries
and keys are rotated by an angle proportional to their position, so attention depends on the
distance between two words only) or, in checkpoints made before, learned absolute embeddings.
Incremental decoding prefills a preallocated KVCache (``forward`` with a cache), then adds one
position at a time with ``step``, in tensor operations only so that models/decoding.py can trace
it. With rotary positions the cache rolls: once full, each new position overwrites the oldest.
Every layer then attends to the last block_size positions of the layer below, which, past the
first layer, already saw further back: this is sliding-window attention, and it is exactly what
``forward`` computes for a sequence longer than the block (a banded causal mask). It is not a
recompute of the last block_size words alone, which would forget what the lower layers knew.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {
    "tiny": dict(n_layer=2, n_head=2, n_embd=32),  # for tests
    "mini": dict(n_layer=4, n_head=4, n_embd=128),  # the codebook prior: about 0.8M parameters
    "small": dict(n_layer=3, n_head=6, n_embd=384),  # about 5.6M parameters with the word vocabulary
    "large": dict(n_layer=4, n_head=8, n_embd=512),  # about 13M
}


@dataclass
class GPTConfig:
    vocab_size: int
    block_size: int = 256
    n_layer: int = 3
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.1
    bias: bool = True
    positions: str = "rope"  # "rope" or "learned" (absolute embeddings, the first checkpoints')
    phase_period: int = 0  # > 0: each id also gets an embedding of its phase (the prior: 16 codes a quarter)

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS} (got {self.positions!r})")
        if self.phase_period < 0:
            raise ValueError(f"phase_period must be 0 (off) or more (got {self.phase_period})")
        if self.n_head < 1 or self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.positions == "rope" and (self.n_embd // self.n_head) % 2:
            raise ValueError(
                f"rotary positions need an even head size (n_embd / n_head = {self.n_embd // self.n_head})"
            )

    def to_json(self) -> dict:
        return asdict(self)


POSITIONS = ("rope", "learned")
ROPE_BASE = 10000.0


class KVCache:
    """Keys and values of every layer for up to block_size positions, allocated once.

    Shapes: (n_layer, B, n_head, block_size, head_size). ``length`` slots are filled;
    ``position`` is the position of the next word. They are equal until a rotary cache rolls:
    then position ``p`` lives in slot ``p % block_size``.
    """

    def __init__(self, config: GPTConfig, batch_size: int, device: torch.device, dtype: torch.dtype) -> None:
        shape = (config.n_layer, batch_size, config.n_head, config.block_size, config.n_embd // config.n_head)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.block_size = config.block_size
        self.length = 0
        self.position = 0

    def reset(self) -> None:
        self.length = self.position = 0

    @property
    def full(self) -> bool:
        return self.length == self.block_size


def rotary_angles(positions: torch.Tensor, head_size: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (len(positions), head_size/2): channel pair i of a position p turned by
    p * ROPE_BASE^(-2i/head_size), computed in float64 so that positions far past the block stay exact."""
    half = head_size // 2
    inverse = ROPE_BASE ** (-torch.arange(half, dtype=torch.float64, device=positions.device) / half)
    angles = positions.to(torch.float64)[:, None] * inverse[None, :]
    return angles.cos().to(dtype), angles.sin().to(dtype)


@functools.cache
def angle_table(
    head_size: int, length: int, device: torch.device, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """``rotary_angles`` of positions 0..length-1, made once for a power-of-two length: a prefill
    asks for a run of positions, and a dozen ops to compute them cost more than the lookup."""
    with torch.inference_mode(False):  # plain tensors, whichever mode asks first
        return rotary_angles(torch.arange(length, device=device), head_size, dtype)


def rotation(
    start: int, count: int, head_size: int, dtype: torch.dtype, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (count, head_size/2): the rotary angles of positions start..start+count-1."""
    length = 1 << max(10, (start + count - 1).bit_length())
    cos, sin = angle_table(head_size, length, device, dtype)
    return cos[start : start + count], sin[start : start + count]


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x (..., T, hs) with each channel pair (i, i + hs/2) rotated by its angle."""
    first, second = x.chunk(2, dim=-1)
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.block_size = config.block_size

    def _heads(
        self, x: torch.Tensor, angles: tuple[torch.Tensor, torch.Tensor] | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries, keys and values (B, nh, T, hs) of ``x`` (B, T, C), queries and keys turned."""
        qkv = self.c_attn(x).unflatten(-1, (3, self.n_head, -1)).permute(2, 0, 3, 1, 4)  # (3, B, nh, T, hs)
        if angles is None:
            return qkv.unbind(0)
        q, k = rotate(qkv[:2], *angles).unbind(0)  # queries and keys turned at once
        return q, k, qkv[2]

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        """The heads' outputs (B, nh, T, hs) merged and projected: (B, T, C)."""
        return self.resid_dropout(self.c_proj(y.transpose(1, 2).flatten(-2)))  # no sizes read: fewer traced ops

    def forward(
        self, x: torch.Tensor, angles: tuple[torch.Tensor, torch.Tensor] | None, cache: KVCache | None, layer: int
    ) -> torch.Tensor:
        q, k, v = self._heads(x, angles)
        T = x.size(1)
        # no dropout on the attention weights: on the CPU it makes a 512-word block 2.7x slower
        if cache is None and T > self.block_size:  # sliding-window attention
            rows = torch.arange(T, device=x.device)[:, None]
            distance = rows - torch.arange(T, device=x.device)[None, :]
            band = (distance >= 0) & (distance < self.block_size)  # (T, T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=band)
        elif cache is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:
            start = cache.length
            cache.keys[layer, :, :, start : start + T] = k
            cache.values[layer, :, :, start : start + T] = v
            k = cache.keys[layer, :, :, : start + T]  # (B, nh, L, hs), L = start + T
            v = cache.values[layer, :, :, : start + T]
            if start == 0:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            elif T == 1:  # one new position sees every cached one: no mask needed
                y = F.scaled_dot_product_attention(q, k, v)
            else:  # query and key lengths differ: is_causal would align them wrongly
                rows = torch.arange(start, start + T, device=x.device)[:, None]
                mask = torch.arange(start + T, device=x.device)[None, :] <= rows  # (T, L)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self._out(y)

    def step(
        self,
        x: torch.Tensor,
        angles: tuple[torch.Tensor, torch.Tensor] | None,
        slot: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        """``forward`` for one new position (x: B, 1, C), in tensor operations only: its key and
        value are written at ``slot`` of ``keys`` and ``values`` (B, nh, S, hs: this layer's cached
        positions, the new one's slot among them), and it attends to all S."""
        q, k, v = self._heads(x, angles)
        keys.index_copy_(2, slot, k)
        values.index_copy_(2, slot, v)
        return self._out(F.scaled_dot_product_attention(q, keys, values))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, angles: tuple[torch.Tensor, torch.Tensor] | None, cache: KVCache | None, layer: int
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), angles, cache, layer)
        return x + self.mlp(self.ln_2(x))

    def step(
        self,
        x: torch.Tensor,
        angles: tuple[torch.Tensor, torch.Tensor] | None,
        slot: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        x = x + self.attn.step(self.ln_1(x), angles, slot, keys, values)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        layers = dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, bias=config.bias),
        )
        if config.positions == "learned":
            layers["wpe"] = nn.Embedding(config.block_size, config.n_embd)
        if config.phase_period:
            layers["wphase"] = nn.Embedding(config.phase_period, config.n_embd)
        self.transformer = nn.ModuleDict(layers)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied input/output embeddings
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):  # scaled residual projections, as in GPT-2
                torch.nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                torch.nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            torch.nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self) -> int:
        """Parameters, counting the tied embedding once."""
        return sum(p.numel() for p in self.parameters())

    def forward(
        self,
        idx: torch.Tensor,
        targets: torch.Tensor | None = None,
        cache: KVCache | None = None,
        last_only: bool = False,
        phases: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (B, T, vocab) and, given targets (B, T), the mean cross-entropy in nats.

        With a cache, ``idx`` continues the cached positions, which are then extended by T, up to
        the block size (a prefill; one position at a time, and past a full cache, is ``step``'s).
        Without a cache, a rotary model takes any length, attending to the last block_size
        positions at each layer.
        ``last_only`` computes logits for the last position only (for sampling).
        """
        _B, T = idx.size()
        start = cache.position if cache is not None else 0
        filled = cache.length if cache is not None else 0
        if filled + T > self.config.block_size and (cache is not None or self.config.positions != "rope"):
            raise ValueError(f"{start + T} positions exceed the block size {self.config.block_size}")
        x = self.transformer.wte(idx)  # (B, T, C)
        angles = None
        if self.config.phase_period:
            if phases is None:
                raise ValueError("this model needs the phase of every id")
            x = x + self.transformer.wphase(phases)
        if self.config.positions == "learned":
            x = x + self.transformer.wpe(torch.arange(start, start + T, device=idx.device))
        else:
            angles = rotation(start, T, self.config.n_embd // self.config.n_head, x.dtype, x.device)
        x = self.transformer.drop(x)
        for layer, block in enumerate(self.transformer.h):
            x = block(x, angles, cache, layer)
        if cache is not None:
            cache.position += T
            cache.length = min(cache.length + T, self.config.block_size)
        x = self.transformer.ln_f(x)
        if last_only:
            x = x[:, -1:, :]
        logits = self.lm_head(x)  # (B, T, vocab)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
        return logits, loss

    def step(
        self,
        idx: torch.Tensor,
        phases: torch.Tensor,
        position: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
    ) -> torch.Tensor:
        """Logits (B, vocab) after one new id per row (``idx``: B, 1) at ``position`` (1,), in tensor
        operations only, so that it can be traced (models/decoding.py). ``keys`` and ``values``
        (n_layer, B, nh, S, hs) are the KV cache's first S slots, the ones it attends to; its own
        key and value are written among them, at the position's slot (a rolling cache's position
        p lives in slot p % block_size). ``phases`` (B, 1) is read only by a phase model."""
        slot = position % self.config.block_size
        x = self.transformer.wte(idx)
        if self.config.phase_period:
            x = x + self.transformer.wphase(phases)
        angles = None
        if self.config.positions == "learned":
            x = x + self.transformer.wpe(position)
        else:
            angles = rotary_angles(position, self.config.n_embd // self.config.n_head, x.dtype)
        for layer, block in enumerate(self.transformer.h):
            x = block.step(x, angles, slot, keys[layer], values[layer])
        return self.lm_head(self.transformer.ln_f(x))[:, -1]

    def new_cache(self, batch_size: int = 1) -> KVCache:
        weight = self.lm_head.weight
        return KVCache(self.config, batch_size, weight.device, weight.dtype)

    def configure_optimizer(self, weight_decay: float, lr: float, betas: tuple[float, float]) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices only (not on biases and LayerNorm gains)."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr, betas=betas)
