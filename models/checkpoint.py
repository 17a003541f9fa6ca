"""Checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (config, vocabulary, model card).

No pickle anywhere. Loading checks the JSON against the code and refuses a mismatch with a
message that says what differs. The training state for ``--resume`` (weights, optimizer moments,
step, loss history) is one safetensors file with its JSON in the file's metadata, so that a
single atomic rename publishes all of it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from models.gpt import GPT, GPTConfig
from tokenizer.atomic import atomic_write, atomic_write_text
from tokenizer.errors import CantorError
from tokenizer.jsonfile import read_json
from tokenizer.readers import STEPS_PER_QUARTER_CHOICES

FORMAT_VERSION = 1
MAX_JSON_BYTES = 1 << 20  # a card is a few KB; anything past this is not one
FIELD_TYPES = {"int": int, "float": float, "bool": bool, "str": str}  # configs' annotations
GPT_LIMITS = {  # the ranges a GPTConfig in a checkpoint may take, checked before anything is built
    "vocab_size": (2, 65_536),
    "block_size": (1, 8_192),
    "n_layer": (1, 48),
    "n_head": (1, 64),
    "n_embd": (2, 4_096),
    "dropout": (0.0, 1.0),
    "phase_period": (0, 4_096),
}


def stem(path: str | Path) -> Path:
    """``checkpoints/NAME`` from NAME, NAME.json or NAME.safetensors."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


def file_of(path: str | Path, suffix: str) -> Path:
    """The checkpoint's file that ends in ``suffix`` (".json", ".png", ...). Not ``with_suffix``:
    a name with a dot of its own ("chorales.v2") would lose its end ("chorales.json")."""
    base = stem(path)
    return base.with_name(base.name + suffix)


def _as_os_error(save, *args, **kwargs) -> None:
    """Run a safetensors writer; its I/O failures (a full disk) are SafetensorError, not OSError,
    so they become OSError here and ``atomic_write`` reports them as it reports any other."""
    try:
        save(*args, **kwargs)
    except SafetensorError as err:
        cause = "no space left on the disk" if "StorageFull" in str(err) or "No space" in str(err) else str(err)
        raise OSError(cause) from None


def save_checkpoint(path: str | Path, model: torch.nn.Module, info: dict) -> Path:
    """Write the weights, then the JSON (``info`` plus the format version), each atomically."""
    base = stem(path)
    atomic_write(file_of(base, ".safetensors"), lambda temp: _as_os_error(save_model, model, str(temp)))
    atomic_write_text(file_of(base, ".json"), json.dumps({"format": FORMAT_VERSION, **info}, indent=1) + "\n")
    return base


def read_info(path: str | Path) -> dict:
    """The checkpoint's JSON; CantorError if it is missing, not a file, too large or not JSON."""
    json_path = file_of(path, ".json")
    if not json_path.exists():
        raise CantorError(f"{json_path.name}: no such checkpoint")
    info = read_json(json_path, MAX_JSON_BYTES)
    if not isinstance(info, dict) or info.get("format") != FORMAT_VERSION:
        raise CantorError(f"{json_path.name}: not a Cantor checkpoint of format {FORMAT_VERSION}")
    return info


def config_from(cls: type, raw: object, name: str, limits: dict[str, tuple[float, float]]):
    """An instance of the config dataclass ``cls`` from a checkpoint's JSON, every field checked
    for its type and range before anything is built; CantorError names the field."""
    known = {f.name: f for f in fields(cls)}
    if not isinstance(raw, dict) or set(raw) != set(known):
        have = set(raw) if isinstance(raw, dict) else set()
        raise CantorError(
            f"{name}: the model config does not match this code "
            f"(missing {sorted(set(known) - have)}, unexpected {sorted(have - set(known))})"
        )
    values = {}
    for key, field in known.items():
        value, expected = raw[key], FIELD_TYPES[str(field.type)]
        if expected is float and type(value) is int:
            value = float(value)
        if type(value) is not expected:
            raise CantorError(f"{name}: {key} must be a {expected.__name__} (got {str(value)[:40]!r})")
        if key in limits:
            low, high = limits[key]
            if not (math.isfinite(value) and low <= value <= high):
                raise CantorError(f"{name}: {key} = {value} is outside {low}-{high}")
        values[key] = value
    try:
        return cls(**values)
    except ValueError as err:
        raise CantorError(f"{name}: the model config is not valid ({err})") from None


def gpt_config_from(info: dict, name: str) -> GPTConfig:
    """The GPTConfig in a checkpoint's JSON, checked against the fields this code knows."""
    config = info.get("model_config")
    if isinstance(config, dict):
        config = {"positions": "learned", "phase_period": 0, **config}  # checkpoints from before both
    return config_from(GPTConfig, config, name, GPT_LIMITS)


def steps_per_quarter_of(info: dict, name: str) -> int:
    """The grid a checkpoint's card names (4 when it names none): one the readers quantize to."""
    tokenizer = info.get("tokenizer", {})
    value = tokenizer.get("steps_per_quarter", 4) if isinstance(tokenizer, dict) else None
    if type(value) is not int or value not in STEPS_PER_QUARTER_CHOICES:
        choices = ", ".join(map(str, STEPS_PER_QUARTER_CHOICES))
        raise CantorError(f"{name}: tokenizer.steps_per_quarter is {str(value)[:20]}; Cantor's grids are {choices}")
    return value


def check_grid(name: str, steps_per_quarter: int, dataset) -> None:
    """CantorError if ``dataset`` (the data a checkpoint's card names) lies on another grid than the
    ``steps_per_quarter`` the card gives its notes: a card that contradicts its own data."""
    if dataset.steps_per_quarter != steps_per_quarter:
        raise CantorError(
            f"{name} writes {steps_per_quarter} steps a quarter, but "
            f"{dataset.folder.name} holds pieces on a grid of {dataset.steps_per_quarter}"
        )


def check_shapes(path: str | Path, model: torch.nn.Module) -> None:
    """Compare every tensor in the safetensors header with ``model`` (built on the meta device,
    so nothing is allocated yet); CantorError naming the first tensor that differs."""
    weights = file_of(path, ".safetensors")
    if not weights.is_file():
        raise CantorError(f"{weights.name}: the weights file is missing")
    try:
        with safe_open(str(weights), framework="pt") as handle:
            stored = {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise CantorError(f"{weights.name}: the weights are corrupt ({err})") from None
    aliases: dict[int, list[str]] = {}  # tied weights are stored once, under one of their names
    for key, tensor in model.state_dict(keep_vars=True).items():
        aliases.setdefault(id(tensor), []).append(key)
    expected = {key: list(tensor.shape) for key, tensor in model.state_dict(keep_vars=True).items()}
    for key, shape in stored.items():
        if key not in expected:
            raise CantorError(f"{weights.name}: holds {key!r}, which this config has no place for")
        if shape != expected[key]:
            raise CantorError(f"{weights.name}: {key} is {shape}, the config says {expected[key]}")
    for names in aliases.values():
        if not any(key in stored for key in names):
            raise CantorError(f"{weights.name}: {names[0]} is missing")


def load_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Load ``NAME.safetensors`` into ``model`` strictly; CantorError on any mismatch."""
    weights = file_of(path, ".safetensors")
    if not weights.exists():
        raise CantorError(f"{weights.name}: the weights file is missing")
    try:
        missing, unexpected = load_model(model, str(weights), strict=False)
    except (SafetensorError, RuntimeError, OSError) as err:
        raise CantorError(f"{weights.name}: the weights are corrupt or do not fit the config ({err})") from None
    if missing or unexpected:
        raise CantorError(
            f"{weights.name}: the weights do not fit the config (missing {sorted(missing)[:3]}, "
            f"unexpected {sorted(unexpected)[:3]})"
        )
    for key, tensor in model.state_dict().items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CantorError(f"{weights.name}: {key} holds NaN or infinite values")


def load_gpt(path: str | Path, kind: str) -> tuple[GPT, dict]:
    """A GPT checkpoint of ``kind`` ("word" or "prior"), in eval mode, and its JSON."""
    info = read_info(path)
    name = stem(path).name
    if info.get("kind") != kind:
        raise CantorError(f"{name}: a {info.get('kind')!r} checkpoint, not a {kind!r} one")
    config = gpt_config_from(info, name)
    return build_checked(path, lambda: GPT(config)), info


def build_checked(path: str | Path, make: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """``make()``'s model with the checkpoint's weights, in eval mode: the shapes are compared on
    the meta device first, so a card that does not match its weights allocates nothing."""
    with torch.device("meta"):
        check_shapes(path, make())
    model = make()
    load_weights(path, model)
    return model.eval()


# -- training state for --resume ---------------------------------------------------------------


def save_training_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Weights, optimizer moments and ``state`` (JSON-able) in one file, written atomically."""
    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    tensors = _dedupe_shared(tensors)
    opt_state = optimizer.state_dict()
    for index, moments in opt_state["state"].items():
        for key, value in moments.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().contiguous().clone()
    metadata = {"state": json.dumps(state), "param_groups": json.dumps(opt_state["param_groups"])}
    atomic_write(path, lambda temp: _as_os_error(save_file, tensors, str(temp), metadata=metadata))


def _dedupe_shared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Clone tensors that share storage (tied embeddings), which save_file refuses."""
    seen: set[int] = set()
    result = {}
    for key, value in tensors.items():
        pointer = value.untyped_storage().data_ptr()
        result[key] = value.clone() if pointer in seen else value
        seen.add(pointer)
    return result


def load_training_state(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Restore what ``save_training_state`` wrote; returns the state dict."""
    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata()
    except (SafetensorError, OSError) as err:
        raise CantorError(f"{path.name}: the training state is corrupt ({err})") from None
    model_state = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    try:
        model.load_state_dict(model_state)
    except RuntimeError as err:
        raise CantorError(f"{path.name}: the training state does not fit this model ({err})") from None
    try:
        opt_state: dict = {"state": {}, "param_groups": json.loads(metadata["param_groups"])}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, index, name = key.split(".", 2)
                opt_state["state"].setdefault(int(index), {})[name] = value
        optimizer.load_state_dict(opt_state)
        state = json.loads(metadata["state"])
        if not isinstance(state, dict) or type(state.get("step")) is not int or state["step"] < 0:
            raise ValueError("no step count")
    except (KeyError, TypeError, ValueError, RuntimeError, RecursionError) as err:
        reason = f"{type(err).__name__}: {err}"[:120]
        raise CantorError(f"{path.name}: the training state is corrupt ({reason}); delete it to start over") from None
    return state
