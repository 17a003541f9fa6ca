"""One new id per row at a time, without Python's cost per operator: ``GPT.step`` and the choice
of the next id (models/choice.py), traced.

Eager PyTorch pays a Python call for every module and operator, and a one-id step of a small
model is mostly that: about 200 operators whose arithmetic takes microseconds. TorchScript's
tracer records the tensor operations of the step once, when the model loads (``prepare``), and
replays them from C++: no compiler, any CPU. The trace keeps no Python branch and reads every size
from its inputs, so one serves every length of context, every batch size and every setting.
Frozen and optimized for inference, its weights are packed for the CPU's matrix kernels, which
changes the logits in the last bits; it is used only where its ids equal the eager step's and its
logits are within 1e-4, else the plain trace, which must match exactly.

Where tracing fails (a torch without TorchScript, an operator it cannot record) or does not match,
the decoder calls the step eagerly instead, after one line in the log; ``CANTOR_EAGER=1`` asks for
that. Both run the same operations on the same tensors, so a seed gives the same ids either way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
import weakref
from collections.abc import Iterator

import torch
import torch.nn as nn

from models.choice import Choice, draw
from models.gpt import GPT, KVCache

log = logging.getLogger(__name__)
STEP_INPUTS = 5  # GPT.step's: ids, phases, position, keys, values; then the Choice's


class _Step(nn.Module):
    """``GPT.step`` and the choice of the next ids (models/choice.py) as a module's forward, which
    is what the tracer records: (logits, ids)."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model.step(*inputs[:STEP_INPUTS]).float()
        return logits, draw(logits, *inputs[STEP_INPUTS:])


_traced: weakref.WeakKeyDictionary[GPT, torch.jit.ScriptModule | None] = weakref.WeakKeyDictionary()


def eager_forced() -> bool:
    return os.environ.get("CANTOR_EAGER", "") not in ("", "0")


@contextlib.contextmanager
def stepping_eagerly(eager: bool = True) -> Iterator[None]:
    """Within it, decoders step eagerly (or, ``eager=False``, on the fast path): the benches'
    baseline, measured in the same process."""
    before = os.environ.get("CANTOR_EAGER")
    os.environ["CANTOR_EAGER"] = "1" if eager else "0"
    try:
        yield
    finally:
        if before is None:
            del os.environ["CANTOR_EAGER"]
        else:
            os.environ["CANTOR_EAGER"] = before


def fast_step(model: GPT, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule | None:
    """The traced step of ``model`` (made once per model, on ``example`` inputs), or None where it
    is not wanted (``CANTOR_EAGER``), cannot be made, or does not match the eager step: then the
    caller steps eagerly."""
    if eager_forced():
        return None
    if model not in _traced:
        try:
            _traced[model] = _trace(model, example)
        except Exception as error:  # any failure to build the fast path falls back, never crashes
            log.warning("the fast step could not be built (%s: %s); stepping eagerly", type(error).__name__, error)
            _traced[model] = None
    return _traced[model]


def _trace(model: GPT, example: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """The trace of ``_Step``, frozen and optimized for inference (weights packed for the CPU's
    matrix kernels) where that gives the eager step's ids and logits to float rounding; else the
    plain trace, which must give them exactly."""
    keys, values = example[3], example[4]
    saved = keys.clone(), values.clone()

    def run(step) -> tuple[torch.Tensor, torch.Tensor]:  # on a copy of the cache: the example's stays as it was
        return step(*example[:3], saved[0].clone(), saved[1].clone(), *example[5:])

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notices: the trace is checked below
        traced = torch.jit.trace(_Step(model).eval(), example, check_trace=False)
        keys.copy_(saved[0])
        values.copy_(saved[1])
        expected, got = run(_Step(model)), run(traced)
        if not all(torch.equal(a, b) for a, b in zip(expected, got, strict=True)):
            raise ValueError(f"its logits differ from the eager step's by {(expected[0] - got[0]).abs().max():.2e}")
        try:
            optimized = torch.jit.optimize_for_inference(torch.jit.freeze(traced))
            logits, ids = run(optimized)
        except Exception as error:  # a CPU or build without the packed kernels
            log.info("the step is traced but not optimized (%s: %s)", type(error).__name__, error)
            return traced
    if torch.equal(ids, expected[1]) and torch.allclose(logits, expected[0], rtol=1e-4, atol=1e-4):
        return optimized
    return traced


class Decoder:
    """A batch of ``rows`` sequences through ``model``: ``prefill`` a prompt into the KV cache, then
    ``step`` one id per row. A rotary model's cache rolls once full (the new position takes the
    oldest's slot); a learned-position model's cannot, and the caller re-prefills."""

    def __init__(self, model: GPT, rows: int) -> None:
        self.model = model
        self.cache: KVCache = model.new_cache(rows)
        self.rows = rows
        self.block = model.config.block_size
        self.device = model.lm_head.weight.device
        self.fast = None  # the traced step, once the first step found one
        self._eager = _Step(model)
        self._ready = False

    @property
    def full(self) -> bool:
        return self.cache.full

    def prefill(self, ids: torch.Tensor, phases: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (rows, V) after ``ids`` (rows, T), which start the cache afresh."""
        self.cache.reset()
        return self.model(ids, cache=self.cache, last_only=True, phases=phases)[0][:, -1]

    def step(
        self, ids: torch.Tensor, phases: torch.Tensor | None = None, choice: Choice | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (rows, V), the next id of each row (rows,)) after one more id per row (``ids``:
        rows, 1); the next ids are ``choice``'s (the likeliest where None)."""
        cache = self.cache
        if cache.full and self.model.config.positions != "rope":
            raise ValueError("a full cache takes one position at a time, and only with rotary positions")
        span = cache.length + 1 if not cache.full else self.block  # the filled slots and the new one
        choice = choice or Choice.greedy(self.rows, self.model.config.vocab_size, self.device)
        inputs = (
            ids,
            phases if phases is not None else torch.zeros_like(ids),
            torch.tensor([cache.position], device=self.device),
            cache.keys[:, :, :, :span],
            cache.values[:, :, :, :span],
            *choice.tensors(),
        )
        if not self._ready:
            self.fast, self._ready = fast_step(self.model, inputs), True
        logits, chosen = (self.fast or self._eager)(*inputs)
        cache.position += 1
        cache.length = min(cache.length + 1, self.block)
        return logits, chosen


def prepare(model: GPT, steps: int = 3) -> None:
    """Build the model's fast step now, as a decoder's first step would, and run it a few times so
    that TorchScript's executor has settled: a musician's first note then comes at full speed."""
    with torch.inference_mode():
        decoder = Decoder(model, 1)
        ids = torch.zeros((1, 1), dtype=torch.long, device=decoder.device)
        decoder.prefill(ids, ids)
        for _ in range(steps):
            decoder.step(ids, ids)
