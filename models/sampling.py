"""Streaming sampling from a GPT with a KV cache, a grammar mask and cancellation.

The prompt is prefilled once; then each step feeds one position through the cache. When the
cache is full:

* a model with rotary positions rolls it: the new position replaces the oldest, so every step
  sees the last ``block_size`` ids, exactly as a full recompute would, at the cost of one step;
* a model with learned absolute positions (the first checkpoints) cannot slide, so the window
  is re-prefilled from the most recent ``block_size - window_shift + 1`` ids. ``window_shift=1``
  sees the full context at every step (a full prefill each); the default, a quarter of the
  block, keeps at least three quarters of it and pays the prefill every ``block_size / 4`` steps.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from models.choice import Choice, draw
from models.decoding import Decoder
from models.gpt import GPT
from tokenizer.errors import CantorError

MAX_ROWS = 8  # variations a batch may hold


@dataclass(frozen=True)
class SamplingSettings:
    temperature: float = 1.0
    top_k: int | None = None  # None: off
    top_p: float = 1.0  # 1.0: off
    seed: int = 0

    def validate(self) -> None:
        if not self.temperature > 0:
            raise CantorError(f"temperature must be above 0 (got {self.temperature})")
        if self.top_k is not None and self.top_k <= 0:
            raise CantorError(f"top-k must be at least 1 (got {self.top_k})")
        if not 0 < self.top_p <= 1:
            raise CantorError(f"top-p must be in (0, 1] (got {self.top_p})")


class Constraint(Protocol):
    """What the sampler needs of a grammar: the legal next ids, and to be told the id chosen;
    optionally log-weights for the next ids (e.g. a key's, tokenizer/constraints.py)."""

    def legal_mask(self) -> np.ndarray: ...

    def logit_bias(self) -> np.ndarray | None: ...

    def advance(self, word_id: int) -> None: ...

    def reset(self) -> None: ...


class ContextWatcher(Protocol):
    def __call__(self, context_length: int) -> None: ...


class RowChoices:
    """Each step's ``Choice`` for the rows of a batch: each drawing row's legal words and
    log-weights (its constraint's), and noise from its own generator, seeded ``settings.seed + row``
    (a row not drawing takes none, so its generator stays where it was)."""

    def __init__(
        self, constraints: list[Constraint | None], settings: SamplingSettings, vocab_size: int, device: torch.device
    ) -> None:
        rows = len(constraints)
        self.constraints = constraints
        self.generators = [torch.Generator(device="cpu").manual_seed(settings.seed + row) for row in range(rows)]
        self.device = device
        self.vocab_size = vocab_size
        self._illegal: dict[tuple[int, ...], torch.Tensor] = {}  # stacked masks of the grammar's cached states
        self._all_legal = np.ones(vocab_size, dtype=bool)
        self._all_legal.flags.writeable = False
        self._no_bias = torch.zeros((rows, vocab_size), device=device)
        self._settings = dict(
            temperature=torch.tensor(settings.temperature, device=device),
            top_k=torch.tensor([min(settings.top_k or vocab_size, vocab_size)], device=device),
            top_p=torch.tensor(settings.top_p, device=device),
        )

    def __call__(self, drawing: list[int]) -> Choice:
        masks, biases = [], []
        noise = torch.ones((len(self.constraints), self.vocab_size))
        for row, constraint in enumerate(self.constraints):
            if row not in drawing or constraint is None:
                masks.append(self._all_legal)  # a row not drawing: its choice is not read
                biases.append(None)
            else:
                mask = constraint.legal_mask()
                if not mask.any():
                    raise CantorError("no word may follow here (the piece has ended: pass end_id to stop)")
                masks.append(mask)
                biases.append(constraint.logit_bias())
            if row in drawing:
                noise[row].exponential_(1, generator=self.generators[row])
        return Choice(
            illegal=self._illegal_of(masks),
            bias=self._no_bias if all(b is None for b in biases) else self._bias_of(biases),
            noise=noise.to(self.device),
            **self._settings,
        )

    def _illegal_of(self, masks: list[np.ndarray]) -> torch.Tensor:
        """(rows, V) bool: the masks' complements. The grammar's masks are cached and read-only, so
        equal states share one array: their stack is made once."""
        if any(mask.flags.writeable for mask in masks):  # made for this word alone (a musical constraint's)
            return torch.from_numpy(~np.stack(masks)).to(self.device)
        key = tuple(id(mask) for mask in masks)
        if key not in self._illegal:
            self._illegal[key] = torch.from_numpy(~np.stack(masks)).to(self.device)
        return self._illegal[key]

    def _bias_of(self, biases: list[np.ndarray | None]) -> torch.Tensor:
        zero = np.zeros(self.vocab_size, dtype=np.float32)
        return torch.from_numpy(np.stack([zero if b is None else b for b in biases])).to(self.device)


def stream(
    model: GPT,
    prompt: list[int],
    count: int,
    settings: SamplingSettings,
    constraint: Constraint | None = None,
    cancel: threading.Event | None = None,
    window_shift: int | None = None,
    restart_id: int | None = None,
    end_id: int | None = None,
    on_context: ContextWatcher | None = None,
) -> Iterator[int]:
    """Yield up to ``count`` new ids after ``prompt``, one at a time, as they are made.

    ``constraint`` (already fed the prompt) masks illegal ids and is advanced with each new id.
    Setting ``cancel`` (from any thread) stops the stream between two steps; ids yielded so far
    stand. At ``end_id`` the stream stops, or, when ``restart_id`` is given, yields
    ``restart_id`` next (a new piece begins) and goes on. ``on_context`` is told how many ids of
    context the model sees for each new id (for tests and diagnostics).
    The caller sets torch's thread count; the stream runs under inference mode. Bad arguments
    raise CantorError here, before the first id is asked for.
    """
    rows = stream_rows(
        model, prompt, count, settings, [constraint], cancel, window_shift, restart_id, end_id, on_context
    )
    return (ids[0] for ids in rows)


def stream_rows(
    model: GPT,
    prompt: list[int],
    count: int,
    settings: SamplingSettings,
    constraints: list[Constraint | None],
    cancel: threading.Event | None = None,
    window_shift: int | None = None,
    restart_id: int | None = None,
    end_id: int | None = None,
    on_context: ContextWatcher | None = None,
) -> Iterator[list[int | None]]:
    """``stream`` for ``len(constraints)`` variations of one prompt in one batch: each step
    yields one new id per row, or None for a row that has ended. Row r draws from its own
    generator seeded ``settings.seed + r``, so a variation is the piece its seed makes alone
    (up to the rounding of a batched matrix product). The rows move in lockstep: one forward
    pass a step for all of them, which on a CPU costs little more than for one row, since each
    step reads every weight once whatever the batch."""
    settings.validate()
    if count <= 0:
        raise CantorError(f"the number of words to generate must be at least 1 (got {count})")
    if not prompt:
        raise CantorError("the prompt must hold at least one id")
    if not 1 <= len(constraints) <= MAX_ROWS:
        raise CantorError(f"variations must be from 1 to {MAX_ROWS} (got {len(constraints)})")
    block = model.config.block_size
    shift = window_shift if window_shift is not None else max(1, block // 4)
    if not 1 <= shift < block:
        raise CantorError(f"the window shift must be from 1 to {block - 1} (got {shift})")
    return _steps(model, prompt, count, settings, constraints, cancel, shift, restart_id, end_id, on_context)


def _steps(
    model: GPT,
    prompt: list[int],
    count: int,
    settings: SamplingSettings,
    constraints: list[Constraint | None],
    cancel: threading.Event | None,
    shift: int,
    restart_id: int | None,
    end_id: int | None,
    on_context: ContextWatcher | None,
) -> Iterator[list[int | None]]:
    """The generator behind ``stream_rows``, for arguments already checked."""
    rows, block = len(constraints), model.config.block_size
    device = model.lm_head.weight.device
    histories = [list(prompt[-(block - 1) :]) for _ in range(rows)]  # each row's view, all one length
    model.eval()
    choices = RowChoices(constraints, settings, model.config.vocab_size, device)
    period = model.config.phase_period
    total = len(prompt)  # ids in the whole sequence so far (in each row)

    phases = (torch.arange(total + count, device=device) - 1) % max(1, period)  # of every id the stream will see

    def phases_of(length: int) -> torch.Tensor | None:
        """The phases of the newest ``length`` ids: an id's index in the whole sequence less one
        (the start token comes first), modulo the period; the same in every row."""
        return phases[total - length : total][None].expand(rows, -1) if period else None

    with torch.inference_mode():
        decoder = Decoder(model, rows)
        restarting = [False] * rows
        ended = [False] * rows  # a row that met end_id with no restart: fed end_id, never read again

        def drawing() -> list[int]:
            return [r for r in range(rows) if not (ended[r] or restarting[r])]

        def prefill(ids: list[list[int]]) -> torch.Tensor:
            logits = decoder.prefill(torch.tensor(ids, dtype=torch.long, device=device), phases_of(len(ids[0])))
            return draw(logits.float(), *choices(drawing()).tensors())

        drawn_ids = prefill(histories)
        drawn = drawn_ids.tolist()
        made = 0
        while made < count:
            if cancel is not None and cancel.is_set():
                return
            if on_context is not None:
                on_context(decoder.cache.length)
            chosen: list[int | None] = []
            for row in range(rows):
                if ended[row]:
                    chosen.append(None)
                    continue
                if restarting[row]:
                    next_id, restarting[row] = restart_id, False
                    if constraints[row] is not None:
                        constraints[row].reset()
                else:
                    next_id = drawn[row]
                if constraints[row] is not None:
                    constraints[row].advance(next_id)
                chosen.append(next_id)
            made += 1
            total += 1
            yield chosen
            for row, next_id in enumerate(chosen):
                if next_id is not None and next_id == end_id:
                    ended[row] = restart_id is None
                    restarting[row] = restart_id is not None
            if all(ended) or made == count:
                return
            fed = [end_id if next_id is None else next_id for next_id in chosen]
            if decoder.full and model.config.positions == "learned":
                for row_history, next_id in zip(histories, fed, strict=True):
                    row_history.append(next_id)
                    del row_history[: len(row_history) - (block - shift + 1)]
                drawn_ids = prefill(histories)
            else:
                if model.config.positions == "learned":
                    for row_history, next_id in zip(histories, fed, strict=True):
                        row_history.append(next_id)
                same = fed == drawn  # as drawn: the step's own output feeds the next
                ids = drawn_ids[:, None] if same else torch.tensor(fed, dtype=torch.long, device=device)[:, None]
                drawn_ids = decoder.step(ids, phases_of(1), choices(drawing()))[1]
            drawn = drawn_ids.tolist()


def generate(model: GPT, prompt: list[int], count: int, settings: SamplingSettings, **kwargs) -> list[int]:
    """The ids ``stream`` yields, as a list."""
    return list(stream(model, prompt, count, settings, **kwargs))
