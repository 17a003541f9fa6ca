"""The one training loop behind every training command (word model, prior, VQ-VAE).

Warmup + cosine learning rate, AdamW, gradient clipping, periodic evaluation, a tqdm bar with
loss and items/s, atomic checkpoints every N steps and at the end, ``--resume`` from the last
training state, a loss-curve PNG, and DDP when started under ``torchrun`` (NCCL on GPU, gloo
on CPU). Batches are drawn from an RNG seeded by (seed, rank, step), so a resumed run continues
exactly as an uninterrupted one would.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from models.checkpoint import file_of, load_training_state, save_checkpoint, save_training_state
from tokenizer.atomic import atomic_write, remove_stale_temps
from tokenizer.cli import real, whole
from tokenizer.errors import CantorError

Batch = tuple[torch.Tensor, ...]


@dataclass
class TrainSettings:
    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_batches: int = 20
    checkpoint_every: int = 200
    seed: int = 1337
    threads: int | None = None
    compile: bool = False
    resume: bool = False
    precision: str = "auto"  # one of PRECISIONS (uses_bf16)


MAX_STEPS = 10_000_000
PRECISIONS = ("auto", "fp32", "bf16")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def add_train_arguments(parser: argparse.ArgumentParser, defaults: TrainSettings) -> None:
    """The flags every training command shares, each with its accepted range."""
    parser.add_argument("--steps", type=whole(1, MAX_STEPS), default=defaults.steps, help="optimizer steps in all")
    parser.add_argument("--batch-size", type=whole(1, 65536), default=defaults.batch_size)
    parser.add_argument("--lr", type=real(1e-8, 1.0), default=defaults.lr, help="peak learning rate")
    parser.add_argument("--min-lr", type=real(0.0, 1.0), default=defaults.min_lr, help="at the end of the cosine")
    parser.add_argument("--warmup", type=whole(0, MAX_STEPS), default=defaults.warmup, help="steps")
    parser.add_argument("--weight-decay", type=real(0.0, 10.0), default=defaults.weight_decay)
    parser.add_argument("--grad-clip", type=real(0.0, 1e6), default=defaults.grad_clip, help="0: off")
    parser.add_argument("--eval-every", type=whole(1, MAX_STEPS), default=defaults.eval_every, help="steps")
    parser.add_argument("--eval-batches", type=whole(1, 100_000), default=defaults.eval_batches)
    parser.add_argument("--checkpoint-every", type=whole(1, MAX_STEPS), default=defaults.checkpoint_every, help="steps")
    parser.add_argument("--seed", type=whole(0, 2**32 - 1), default=defaults.seed)
    parser.add_argument("--threads", type=whole(1, 1024), default=None, help="torch CPU threads (None: all cores)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--resume", action="store_true", help="continue from OUT.train.safetensors")
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults.precision,
        help="bf16: float32 weights, matrix products in bfloat16 (autocast); "
        "auto: bf16 on a GPU and on a CPU with native bfloat16 (AVX512-BF16 or AMX), float32 elsewhere",
    )


def settings_from(args: argparse.Namespace) -> TrainSettings:
    return TrainSettings(**{f: getattr(args, f) for f in TrainSettings.__dataclass_fields__})


@dataclass
class Distributed:
    """Where this process runs: rank, world size, device; set up from torchrun's variables."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup_distributed() -> Distributed:
    if "RANK" not in os.environ:
        return Distributed(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend=backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local)
        return Distributed(rank, world, torch.device("cuda", local))
    return Distributed(rank, world, torch.device("cpu"))


def uses_bf16(precision: str, device: torch.device) -> bool:
    """Whether the steps run their matrix products in bfloat16 (``TrainSettings.precision``).
    On a CPU with native bfloat16 (this project's AMD EPYC has AVX512-BF16) a word-model training
    step takes about half the float32 time (``bench.training``); a CPU without it would emulate
    bfloat16, slower."""
    if precision not in PRECISIONS:
        raise CantorError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision != "auto":
        return precision == "bf16"
    native = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch's own probes (private: absent is no)
    return device.type == "cuda" or any(getattr(torch.cpu, probe, lambda: False)() for probe in native)


def learning_rate(step: int, s: TrainSettings) -> float:
    """Linear warmup to s.lr, then cosine decay to s.min_lr at s.steps."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = min(1.0, (step - s.warmup) / max(1, s.steps - s.warmup))
    return s.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (s.lr - s.min_lr)


def hardware() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {cpu}, {torch.get_num_threads()} threads"


def command_line() -> str:
    """The command as typed: python -m MODULE ARGS."""
    module = Path(sys.argv[0]).with_suffix("").as_posix()
    if "RANK" in os.environ:
        prefix = f"torchrun --nproc_per_node={os.environ.get('LOCAL_WORLD_SIZE', '?')} -m "
    else:
        prefix = "python -m "
    module = module[module.rfind("models/") :].replace("/", ".") if "models/" in module else module
    return prefix + " ".join([module, *map(shlex.quote, sys.argv[1:])])


def plot_losses(history: list[dict], path: Path, title: str) -> None:
    """A loss-curve PNG: train and val loss at each evaluation, and, dashed, any other val loss
    the run measures (``val_fill``: the val loss on one kind of row alone)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(steps, [h["train"] for h in history], label="train")
    ax.plot(steps, [h["val"] for h in history], label="val")
    for key in (k for k in history[-1] if k.startswith("val_")):
        ax.plot(steps, [h.get(key, float("nan")) for h in history], "--", linewidth=1, label=key.replace("_", " "))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda temp: fig.savefig(temp, format="png"))
    plt.close(fig)


def train(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, Batch], torch.Tensor],
    get_batch: Callable[[str, np.random.Generator, int], Batch],
    out: Path,
    settings: TrainSettings,
    card: dict,
    items_per_batch: int,
    evaluate_extra: Callable[[torch.nn.Module], dict] | None = None,
    optimizer_factory: Callable[[torch.nn.Module, TrainSettings], torch.optim.Optimizer] | None = None,
    env: Distributed | None = None,
) -> dict:
    """Train ``model`` and write ``out``.safetensors/.json/.png; returns the model card.

    ``loss_fn(model, batch)`` gives the mean loss; ``get_batch(split, rng, batch_size)`` draws a
    batch on the CPU; ``card`` holds what the checkpoint's JSON must say besides the training
    record (kind, config, vocabulary, data); ``evaluate_extra`` adds metrics at each evaluation.
    """
    env = env or setup_distributed()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    torch.set_flush_denormal(True)  # denormal floats ran the VQ-VAE's CPU training steps 3.5x slower
    model.to(env.device)
    raw_model = model
    optimizer = (
        optimizer_factory(model, settings)
        if optimizer_factory
        else raw_model.configure_optimizer(settings.weight_decay, settings.lr, (0.9, 0.95))
    )
    state = {"step": 0, "wall_time_s": 0.0, "items_seen": 0, "history": []}
    resume_path = file_of(out, ".train.safetensors")
    if env.is_main:
        for suffix in (".safetensors", ".json", ".png", ".train.safetensors"):
            remove_stale_temps(file_of(out, suffix))
    if settings.resume and resume_path.exists():
        state = load_training_state(resume_path, raw_model, optimizer)
        if env.is_main:
            print(f"resuming from {resume_path} at step {state['step']}")
    state["commands"] = [*state.get("commands", []), command_line()]  # a resumed run's card names each leg
    if env.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    if settings.compile:
        model = torch.compile(model)
    use_bf16 = uses_bf16(settings.precision, env.device)
    per_rank = max(1, settings.batch_size // env.world_size)

    def to_device(batch: Batch) -> Batch:
        return tuple(t.to(env.device, non_blocking=True) for t in batch)

    def compute_loss(batch: Batch) -> torch.Tensor:
        with torch.autocast(env.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            return loss_fn(model, to_device(batch))

    @torch.no_grad()
    def evaluate(step: int) -> dict:
        model.eval()
        result = {"step": step}
        for split_index, split in enumerate(("train", "val")):
            rng = np.random.default_rng([settings.seed, 999_999, split_index])  # the same batches each time
            losses = [compute_loss(get_batch(split, rng, per_rank)).item() for _ in range(settings.eval_batches)]
            result[split] = float(np.mean(losses))
        if evaluate_extra is not None:
            result.update(evaluate_extra(raw_model))
        model.train()
        return result

    def publish(final: bool) -> None:
        if not env.is_main:
            return
        record = {
            "command": " && ".join(state["commands"]),
            "steps": state["step"],
            f"{card.get('items', 'items')}_seen": state["items_seen"],
            "wall_time_s": round(state["wall_time_s"], 1),
            "hardware": hardware() + (f" x{env.world_size} processes" if env.world_size > 1 else ""),
            "precision": "bf16" if use_bf16 else "fp32",
            "final": final,
        }
        if state["history"]:
            last = state["history"][-1]
            record["train_loss"], record["val_loss"] = last["train"], last["val"]
            record.update({k: v for k, v in last.items() if k not in ("step", "train", "val")})
        try:
            save_checkpoint(out, raw_model, {**card, "model_card": {**card.get("model_card", {}), **record}})
            save_training_state(resume_path, raw_model, optimizer, state)
        except CantorError as err:
            kept = f"step {state['saved_step']}" if state.get("saved_step") else "none yet"
            raise CantorError(f"{err}; the checkpoint saved before is kept ({kept})") from None
        state["saved_step"] = state["step"]
        if state["history"]:
            plot_losses(state["history"], file_of(out, ".png"), f"{out.name}: loss")

    def run_steps(bar: tqdm) -> None:
        window_start, window_items = time.time(), 0
        while state["step"] < settings.steps:
            step = state["step"]
            started = time.time()
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, settings)
            torch.manual_seed(settings.seed * 1_000_003 + step * 101 + env.rank)  # dropout, resumable
            rng = np.random.default_rng([settings.seed, env.rank, step])
            loss = compute_loss(get_batch("train", rng, per_rank))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
            optimizer.step()
            state["step"] = step + 1
            state["items_seen"] += items_per_batch * per_rank * env.world_size
            window_items += items_per_batch * per_rank * env.world_size
            state["wall_time_s"] += time.time() - started
            rate = window_items / max(1e-9, time.time() - window_start)
            bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{learning_rate(step, settings):.1e}", per_s=f"{rate:.0f}")
            bar.update(1)
            done = state["step"] == settings.steps
            if state["step"] % settings.eval_every == 0 or done:
                eval_started = time.time()
                result = evaluate(state["step"])
                state["history"].append(result)
                state["wall_time_s"] += time.time() - eval_started
                if env.is_main:
                    shown = ", ".join(f"{k} {v:.4f}" for k, v in result.items() if k != "step")
                    bar.write(f"step {state['step']}: {shown}")
            if state["step"] % settings.checkpoint_every == 0 or done:
                publish(final=done)

    model.train()
    bar = tqdm(total=settings.steps, initial=state["step"], desc=out.name, disable=not env.is_main, dynamic_ncols=True)
    # SIGTERM (a kill, a scheduler's stop) is handled like Ctrl+C, which a run started in the
    # background with & never receives: the steps since the last checkpoint are kept
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        run_steps(bar)
    except KeyboardInterrupt:  # Ctrl+C or SIGTERM: keep what was learnt since the last checkpoint
        bar.close()
        if env.is_main:
            if state["step"] == 0:
                print("stopped; nothing saved yet (no step was finished)", file=sys.stderr)
            else:
                publish(final=False)
                saved = f"saved {out}.safetensors: continue with --resume"
                print(f"stopped at step {state['step']}; {saved}", file=sys.stderr)
        raise SystemExit(130) from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    bar.close()
    if env.world_size > 1:
        dist.destroy_process_group()
    if env.is_main:
        curve = f" and its loss curve {out}.png" if state["history"] else ""
        print(f"wrote {out}.safetensors, its model card {out}.json{curve}")
    return state
