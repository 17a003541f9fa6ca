"""Shared fixtures: the committed chorale dataset and tiny real checkpoints made on the spot."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ["CANTOR_HOME"] = tempfile.mkdtemp(prefix="cantor-home-")  # never the user's own takes

import pytest

from tokenizer.dataset import WordDataset

ROOT = Path(__file__).resolve().parent.parent
CHORALES = ROOT / "data" / "chorales"


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny test models run fastest on one thread, and never oversubscribe a 2-core machine."""
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def chorales() -> WordDataset:
    return WordDataset(CHORALES)


@pytest.fixture(scope="session")
def tiny_word_checkpoint(tmp_path_factory, chorales) -> Path:
    """A tiny word model (random weights, block 64) saved as a real checkpoint."""
    import torch

    from models.checkpoint import save_checkpoint
    from models.gpt import GPT, SIZES, GPTConfig

    torch.manual_seed(0)
    config = GPTConfig(vocab_size=chorales.vocab.size, block_size=64, dropout=0.0, **SIZES["tiny"])
    path = tmp_path_factory.mktemp("ckpt") / "tiny"
    info = {
        "kind": "word",
        "model_config": config.to_json(),
        "vocabulary": chorales.vocab.to_json(),
        "tokenizer": {"steps_per_quarter": chorales.steps_per_quarter},
        "model_card": {"size": "tiny", "data": str(CHORALES), "val_loss": 4.6},
    }
    return save_checkpoint(path, GPT(config), info)


def _tiny_task_checkpoint(tmp_path_factory, chorales, form: bool) -> Path:
    import torch

    from models.checkpoint import save_checkpoint
    from models.gpt import GPT, SIZES, GPTConfig
    from tokenizer.words import WordVocabulary

    vocab = WordVocabulary(max_duration=chorales.vocab.max_duration, encoding="steps", tasks=True, form=form)
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=vocab.size, block_size=256, dropout=0.0, **SIZES["tiny"])
    info = {
        "kind": "word",
        "model_config": config.to_json(),
        "vocabulary": vocab.to_json(),
        "tokenizer": {"steps_per_quarter": chorales.steps_per_quarter},
        "model_card": {"size": "tiny", "data": str(CHORALES), "val_loss": 4.7},
    }
    name = "tiny_tasks" if form else "tiny_tasks_no_form"
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / name, GPT(config), info)


@pytest.fixture(scope="session")
def tiny_task_checkpoint(tmp_path_factory, chorales) -> Path:
    """A tiny word model (random weights, block 256) over the vocabulary with the marker and form
    words, so that it can be asked to regenerate bars and harmonize: its choices are close to
    uniform, and only the grammar keeps a gap in place and a melody on top (and a piece ends
    only after a phrase, which such a model seldom writes: its pieces run long)."""
    return _tiny_task_checkpoint(tmp_path_factory, chorales, form=True)


@pytest.fixture(scope="session")
def tiny_no_form_task_checkpoint(tmp_path_factory, chorales) -> Path:
    """As ``tiny_task_checkpoint``, over the vocabulary of checkpoints trained before the form words."""
    return _tiny_task_checkpoint(tmp_path_factory, chorales, form=False)
