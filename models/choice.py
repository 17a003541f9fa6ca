"""Choosing the next id from a model's logits, in tensor operations only.

Illegal ids are masked, a constraint's log-weights added, then temperature, top-k and top-p, and
a seeded draw. The draw is torch.multinomial's own for one sample: each probability divided by an
exponential(1) noise drawn from the row's generator, and the largest taken; the noise is drawn
before the step, so a traced step (models/decoding.py) can end with the choice and give the ids
multinomial gives for a seed. The settings come in as tensors, so one trace serves them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def filter_logits(
    logits: torch.Tensor, temperature: torch.Tensor, top_k: torch.Tensor, top_p: torch.Tensor
) -> torch.Tensor:
    """Logits (..., V) after temperature, top-k (``top_k`` (1,): V keeps all) and top-p (``top_p``:
    1.0 keeps all), row by row; filtered entries are -inf."""
    logits = logits / temperature
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    kth = sorted_logits.gather(-1, (top_k - 1).expand(*logits.shape[:-1], 1))
    logits = logits.masked_fill(logits < kth, float("-inf"))
    sorted_logits = sorted_logits.masked_fill(sorted_logits < kth, float("-inf"))  # still in order
    probs = torch.softmax(sorted_logits, dim=-1)
    before = torch.cumsum(probs, dim=-1) - probs  # mass of the more likely ids
    drop = (before >= top_p) & (top_p < 1.0)  # the most likely id is always kept
    return logits.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), float("-inf"))


def draw(
    logits: torch.Tensor,
    illegal: torch.Tensor,
    bias: torch.Tensor,
    noise: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
) -> torch.Tensor:
    """The chosen id of each row (R,) from logits (R, V): see the module's docstring. ``bias``: log-weights;
    a weight w multiplies a probability by w at any temperature."""
    logits = logits.masked_fill(illegal, float("-inf")) + temperature * bias
    probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)
    return (probs / noise).argmax(dim=-1)


@dataclass
class Choice:
    """What ``draw`` takes besides the logits, one row per sequence of a batch."""

    illegal: torch.Tensor  # (R, V) bool
    bias: torch.Tensor  # (R, V) float: log-weights
    noise: torch.Tensor  # (R, V) float: exponential(1), from each row's generator
    temperature: torch.Tensor  # () float
    top_k: torch.Tensor  # (1,) long: V when off
    top_p: torch.Tensor  # () float: 1.0 when off

    @classmethod
    def greedy(cls, rows: int, vocab_size: int, device: torch.device) -> Choice:
        """The likeliest id of every row, nothing masked."""
        return cls(
            illegal=torch.zeros((rows, vocab_size), dtype=torch.bool, device=device),
            bias=torch.zeros((rows, vocab_size), device=device),
            noise=torch.ones((rows, vocab_size), device=device),
            temperature=torch.tensor(1.0, device=device),
            top_k=torch.tensor([vocab_size], device=device),
            top_p=torch.tensor(1.0, device=device),
        )

    def tensors(self) -> tuple[torch.Tensor, ...]:
        return self.illegal, self.bias, self.noise, self.temperature, self.top_k, self.top_p
