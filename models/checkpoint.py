"""Checkpoints: ``NAME.safetensors`` (weights) + ``NAME.json`` (config, vocabulary, model card).

No pickle anywhere. Loading checks the JSON against the code and refuses a mismatch with a
message that says what differs. The training state for ``--resume`` (weights, optimizer moments,
step, loss history) is one safetensors file with its JSON in the file's metadata, so that a
single atomic rename publishes all of it.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, load_model, save_file, save_model

from models.gpt import GPT, GPTConfig
from tokenizer.atomic import atomic_write, atomic_write_text
from tokenizer.errors import CantorError

FORMAT_VERSION = 1


def stem(path: str | Path) -> Path:
    """``checkpoints/NAME`` from NAME, NAME.json or NAME.safetensors."""
    path = Path(path)
    return path.with_suffix("") if path.suffix in (".json", ".safetensors") else path


def save_checkpoint(path: str | Path, model: torch.nn.Module, info: dict) -> Path:
    """Write the weights, then the JSON (``info`` plus the format version), each atomically."""
    base = stem(path)
    atomic_write(base.with_suffix(".safetensors"), lambda temp: save_model(model, str(temp)))
    atomic_write_text(base.with_suffix(".json"), json.dumps({"format": FORMAT_VERSION, **info}, indent=1) + "\n")
    return base


def read_info(path: str | Path) -> dict:
    """The checkpoint's JSON; CantorError if it is missing or not valid JSON."""
    json_path = stem(path).with_suffix(".json")
    if not json_path.exists():
        raise CantorError(f"{json_path.name}: no such checkpoint")
    try:
        info = json.loads(json_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CantorError(f"{json_path.name}: the checkpoint's JSON is corrupt ({err})") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_VERSION:
        raise CantorError(f"{json_path.name}: not a Cantor checkpoint of format {FORMAT_VERSION}")
    return info


def gpt_config_from(info: dict, name: str) -> GPTConfig:
    """The GPTConfig in a checkpoint's JSON, checked against the fields this code knows."""
    config = info.get("model_config")
    known = {f.name for f in fields(GPTConfig)}
    if not isinstance(config, dict) or set(config) != known:
        have = set(config) if isinstance(config, dict) else set()
        raise CantorError(
            f"{name}: the model config does not match this code "
            f"(missing {sorted(known - have)}, unexpected {sorted(have - known)})"
        )
    return GPTConfig(**config)


def load_weights(path: str | Path, model: torch.nn.Module) -> None:
    """Load ``NAME.safetensors`` into ``model`` strictly; CantorError on any mismatch."""
    weights = stem(path).with_suffix(".safetensors")
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


def load_gpt(path: str | Path, kind: str) -> tuple[GPT, dict]:
    """A GPT checkpoint of ``kind`` ("word" or "prior"), in eval mode, and its JSON."""
    info = read_info(path)
    name = stem(path).name
    if info.get("kind") != kind:
        raise CantorError(f"{name}: a {info.get('kind')!r} checkpoint, not a {kind!r} one")
    model = GPT(gpt_config_from(info, name))
    load_weights(path, model)
    return model.eval(), info


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
    atomic_write(path, lambda temp: save_file(tensors, str(temp), metadata=metadata))


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
    opt_state: dict = {"state": {}, "param_groups": json.loads(metadata["param_groups"])}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            opt_state["state"].setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(opt_state)
    return json.loads(metadata["state"])
