"""Training: resume, kill -9, DDP on gloo, checkpoints that do not match, and the CLIs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch

from models import training
from models.checkpoint import load_gpt, read_info
from models.evaluate import main as evaluate_main
from models.ngram import KneserNeyTrigram
from models.sample import main as sample_main
from models.train_gpt import main as train_main
from models.word_model import WordModel
from tokenizer import CantorError
from tokenizer.readers import read_midi
from tokenizer.writers import write_midi

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--size", "tiny", "--block-size", "32", "--batch-size", "4", "--eval-batches", "2", "--threads", "1"]
TINY += ["--warmup", "2", "--stretch", "1.0", "--max-transpose", "1"]


def run_module(module: str, *args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env, **kwargs)


class SimulatedCrash(Exception):
    pass


def test_resumed_run_continues_the_step_count_and_matches_an_uninterrupted_one(tmp_path, monkeypatch):
    args = [*TINY, "--steps", "8", "--eval-every", "2", "--checkpoint-every", "4"]
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    assert train_main([*args, "--out", str(whole)]) == 0

    save = training.save_training_state

    def save_then_crash(path, model, optimizer, state):
        save(path, model, optimizer, state)
        if state["step"] == 4:
            raise SimulatedCrash

    monkeypatch.setattr(training, "save_training_state", save_then_crash)
    with pytest.raises(SimulatedCrash):
        train_main([*args, "--out", str(crashed)])
    monkeypatch.undo()
    assert read_info(crashed)["model_card"]["steps"] == 4
    assert train_main([*args, "--out", str(crashed), "--resume"]) == 0
    card_whole, card_resumed = read_info(whole)["model_card"], read_info(crashed)["model_card"]
    assert card_resumed["steps"] == 8 and card_resumed["tokens_seen"] == card_whole["tokens_seen"]
    assert card_resumed["command"].count(" && ") == 1 and " && " not in card_whole["command"]  # both legs named
    assert card_resumed["val_loss"] == pytest.approx(card_whole["val_loss"], abs=1e-5)
    a, _ = load_gpt(whole, "word")
    b, _ = load_gpt(crashed, "word")
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(p, q, atol=1e-5), name
    assert (tmp_path / "crashed.png").stat().st_size > 1000


def test_bf16_steps_train_as_float32_ones_do_and_the_card_says_which_ran(tmp_path):
    args = [*TINY, "--steps", "6", "--eval-every", "3", "--checkpoint-every", "6"]
    cards = {}
    for precision in ("fp32", "bf16"):
        assert train_main([*args, "--precision", precision, "--out", str(tmp_path / precision)]) == 0
        cards[precision] = read_info(tmp_path / precision)["model_card"]
        assert cards[precision]["precision"] == precision
    fp32, bf16 = cards["fp32"]["val_loss"], cards["bf16"]["val_loss"]
    assert fp32 != bf16  # the products really ran in bfloat16
    assert bf16 == pytest.approx(fp32, rel=1e-3)  # and learnt the same
    a, _ = load_gpt(tmp_path / "fp32", "word")
    b, _ = load_gpt(tmp_path / "bf16", "word")
    assert all(p.dtype == torch.float32 for p in b.parameters())  # the weights stay float32
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(p, q, atol=0.02), name
    with pytest.raises(CantorError, match="precision must be one of auto, fp32, bf16"):
        training.uses_bf16("fp16", torch.device("cpu"))


def test_runs_whose_names_hold_a_dot_keep_their_files_apart(tmp_path):
    """--out runs/drop0.1 and runs/drop0.3 once both wrote runs/drop0.json (Path.with_suffix)."""
    args = [*TINY, "--steps", "2", "--eval-every", "2"]
    for dropout in ("0.1", "0.3"):
        assert train_main([*args, "--dropout", dropout, "--out", str(tmp_path / f"drop{dropout}")]) == 0
    names = sorted(path.name for path in tmp_path.iterdir())
    suffixes = (".json", ".png", ".safetensors", ".train.safetensors")
    assert names == [f"drop{d}{suffix}" for d in ("0.1", "0.3") for suffix in suffixes]
    assert [load_gpt(tmp_path / f"drop{d}", "word")[0].config.dropout for d in ("0.1", "0.3")] == [0.1, 0.3]


def test_a_run_killed_with_sigkill_leaves_loadable_files_and_resumes(tmp_path):
    out = tmp_path / "killed"
    args = [*TINY, "--steps", "400", "--eval-every", "1000", "--checkpoint-every", "1", "--out", str(out)]
    proc = run_module("models.train_gpt", *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "killed.train.safetensors").exists():
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    steps_before = read_info(out)["model_card"]["steps"]
    load_gpt(out, "word")  # never half-written, though the kill may have left a temp file beside it
    (tmp_path / ".killed.json.abc123.tmp").write_text("{")  # as a kill in mid-write would
    finish = [*TINY, "--steps", str(steps_before + 3), "--eval-every", "1000", "--checkpoint-every", "1"]
    assert train_main([*finish, "--out", str(out), "--resume"]) == 0
    assert read_info(out)["model_card"]["steps"] == steps_before + 3
    assert not list(tmp_path.glob(".*.tmp")), "the resumed run sweeps the killed run's temp files"


def test_sigterm_saves_like_ctrl_c_even_for_a_run_in_the_background(tmp_path):
    out = tmp_path / "stopped"
    args = [*TINY, "--steps", "4000", "--eval-every", "10000", "--checkpoint-every", "5", "--out", str(out)]
    proc = run_module("models.train_gpt", *args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "stopped.train.safetensors").exists():  # training runs
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    said = [line for line in err.splitlines() if "stopped at step" in line]
    assert said and "saved" in said[0]
    step = int(said[0].split("stopped at step ")[1].split(";")[0])
    assert step > 0 and read_info(out)["model_card"]["steps"] == step


def test_ddp_smoke_run_on_gloo_with_two_processes(tmp_path):
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).parent / "torchrun"
    args = [
        "--nproc_per_node=2",
        "-m",
        "models.train_gpt",
        *TINY,
        "--steps",
        "3",
        "--eval-every",
        "3",
        "--out",
        str(out),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    result = subprocess.run([str(torchrun), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    card = read_info(out)["model_card"]
    assert card["steps"] == 3 and "x2 processes" in card["hardware"]
    assert card["command"].startswith("torchrun --nproc_per_node=2 -m models.train_gpt")
    load_gpt(out, "word")


def edited_copy(checkpoint: Path, tmp_path: Path, edit) -> Path:
    target = tmp_path / "edited"
    info = json.loads(checkpoint.with_suffix(".json").read_text())
    edit(info)
    target.with_suffix(".json").write_text(json.dumps(info))
    target.with_suffix(".safetensors").write_bytes(checkpoint.with_suffix(".safetensors").read_bytes())
    return target


def test_checkpoint_mismatches_give_clear_errors(tiny_word_checkpoint, tmp_path):
    def other_vocab(info):
        info["vocabulary"]["words"][5] = "n999"

    with pytest.raises(CantorError, match="vocabulary"):
        WordModel(edited_copy(tiny_word_checkpoint, tmp_path, other_vocab))

    def wider(info):
        info["model_config"]["n_embd"] = 64

    words = len(json.loads(tiny_word_checkpoint.with_suffix(".json").read_text())["vocabulary"]["words"])
    with pytest.raises(CantorError, match=rf"lm_head.weight is \[{words}, 32\], the config says \[{words}, 64\]"):
        WordModel(edited_copy(tiny_word_checkpoint, tmp_path, wider))

    def unknown_field(info):
        info["model_config"]["rotary"] = True

    with pytest.raises(CantorError, match="unexpected \\['rotary'\\]"):
        WordModel(edited_copy(tiny_word_checkpoint, tmp_path, unknown_field))

    def prior(info):
        info["kind"] = "prior"

    with pytest.raises(CantorError, match="not a 'word' one"):
        WordModel(edited_copy(tiny_word_checkpoint, tmp_path, prior))


def test_missing_and_corrupt_checkpoints_give_clear_errors(tiny_word_checkpoint, tmp_path):
    with pytest.raises(CantorError, match="no such checkpoint"):
        WordModel(tmp_path / "nothing")
    broken = edited_copy(tiny_word_checkpoint, tmp_path, lambda info: None)
    data = broken.with_suffix(".safetensors").read_bytes()
    broken.with_suffix(".safetensors").write_bytes(data[: len(data) // 3])
    with pytest.raises(CantorError, match="corrupt"):
        WordModel(broken)
    broken.with_suffix(".json").write_text("{not json")
    with pytest.raises(CantorError, match="corrupt"):
        WordModel(broken)


def test_a_dataset_on_another_grid_is_refused_by_name(tiny_word_checkpoint, chorales, monkeypatch):
    monkeypatch.setattr(chorales, "steps_per_quarter", 8)
    with pytest.raises(CantorError, match="grid of 8"):
        WordModel(tiny_word_checkpoint).check_grid(chorales)


def test_continue_output_starts_with_exactly_the_primers_notes(tiny_word_checkpoint, chorales, tmp_path, capsys):
    primer_piece = chorales.piece("bwv66.6").cropped(0, 32)
    write_midi(primer_piece, tmp_path / "primer.mid")
    out = tmp_path / "out.mid"
    args = ["--checkpoint", str(tiny_word_checkpoint), "--continue", str(tmp_path / "primer.mid"), "--words", "60"]
    assert sample_main([*args, "--out", str(out), "--seed", "3"]) == 0
    midi = pretty_midi.PrettyMIDI(str(out))
    assert [i.name for i in midi.instruments] == ["primer", "generated"]
    everything = read_midi(out)
    primer_back = [n for n in everything.notes if n in set(primer_piece.notes)]
    assert sorted(primer_back) == sorted(primer_piece.notes)
    assert len(everything.notes) > len(primer_piece.notes)
    assert len(midi.instruments[0].notes) == len(primer_piece.notes)


def test_a_primer_longer_than_the_context_is_cut_and_the_output_says_so(tiny_word_checkpoint, tmp_path, capsys):
    args = ["--checkpoint", str(tiny_word_checkpoint), "--dataset-piece", "bwv66.6", "--quarters", "40"]
    assert sample_main([*args, "--words", "20", "--out", str(tmp_path / "x.mid")]) == 0
    assert "the model sees the most recent 63" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad",
    [
        ["--top-k", "0"],
        ["--top-p", "1.5"],
        ["--top-p", "0"],
        ["--temperature", "0"],
        ["--words", "0"],
        ["--window-shift", "0"],
        ["--window-shift", "64"],  # the tiny model's block
    ],
)
def test_bad_sampling_arguments_give_one_clear_error(tiny_word_checkpoint, tmp_path, capsys, bad):
    """A value outside a flag's range is argparse's one line (exit 2); one that only the model can
    judge (the window shift against its block) is the command's (exit 1)."""
    try:
        code = sample_main(["--checkpoint", str(tiny_word_checkpoint), "--out", str(tmp_path / "x.mid"), *bad])
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code in (1, 2) and "Traceback" not in err
    lines = [line for line in err.splitlines() if "error: " in line]
    assert len(lines) == 1 and (code == 1 or f"argument {bad[0]}: {bad[1]} is outside" in lines[0])


def test_window_shift_one_writes_past_the_context_with_the_full_context(tiny_word_checkpoint, tmp_path):
    out = tmp_path / "long.mid"
    args = ["--checkpoint", str(tiny_word_checkpoint), "--words", "100", "--window-shift", "1", "--through-end"]
    assert sample_main([*args, "--out", str(out)]) == 0  # 100 words: three times the tiny block of 32
    assert read_midi(out).notes


def test_the_rule_flags_hold_in_the_written_file(tiny_word_checkpoint, tmp_path):
    from bench.metrics import piece_features
    from tokenizer.keys import scale_of

    out = tmp_path / "ruled.mid"
    args = ["--checkpoint", str(tiny_word_checkpoint), "--words", "300", "--through-end", "--seed", "3"]
    rules = ["--key", "D minor", "--out-of-key-weight", "0", "--lowest", "50", "--highest", "74", "--max-voices", "3"]
    assert sample_main([*args, *rules, "--out", str(out)]) == 0
    piece = read_midi(out)
    pitches = [note.pitch for note in piece.notes]
    assert len(pitches) > 30 and 50 <= min(pitches) and max(pitches) <= 74
    assert scale_of("D minor")[[p % 12 for p in pitches]].all()
    assert piece_features(piece).max_sounding <= 3 and piece_features(piece).clash == 0.0


def test_variations_write_one_file_each_and_each_is_the_piece_of_its_seed(tiny_word_checkpoint, tmp_path, capsys):
    args = ["--checkpoint", str(tiny_word_checkpoint), "--words", "120", "--through-end", "--seed", "5"]
    assert sample_main([*args, "--variations", "3", "--out", str(tmp_path / "take.mid")]) == 0
    written = [read_midi(tmp_path / f"take-{row}.mid").notes for row in (1, 2, 3)]
    assert all(written) and len({tuple(notes) for notes in written}) == 3
    assert sample_main([*args[:-1], "7", "--out", str(tmp_path / "alone.mid")]) == 0  # seed 5 + 2
    assert read_midi(tmp_path / "alone.mid").notes == written[2]
    assert capsys.readouterr().out.count("wrote ") == 4


@pytest.mark.parametrize(
    "bad, said",
    [
        (["--variations", "9"], "argument --variations: 9 is outside 1-8"),
        (["--key", "C major", "--out-of-key-weight", "0", "--lowest", "61", "--highest", "61"], "holds no note"),
        (["--lowest", "80", "--highest", "60"], "the range must run upward"),
        (["--key", "H major"], "argument --key: invalid choice"),
        (["--no-repeat", "1"], "2 words or more"),
    ],
)
def test_contradictory_rule_flags_give_one_line(tiny_word_checkpoint, tmp_path, capsys, bad, said):
    try:
        code = sample_main(["--checkpoint", str(tiny_word_checkpoint), "--out", str(tmp_path / "x.mid"), *bad])
    except SystemExit as exit_info:
        code = exit_info.code
    err = capsys.readouterr().err
    assert code in (1, 2) and said in err and len([line for line in err.splitlines() if "error: " in line]) == 1
    assert not (tmp_path / "x.mid").exists()


def test_continue_on_an_empty_or_bad_file_gives_a_clear_error(tiny_word_checkpoint, tmp_path, capsys):
    (tmp_path / "empty.mid").write_bytes(b"")
    args = ["--checkpoint", str(tiny_word_checkpoint), "--out", str(tmp_path / "x.mid")]
    assert sample_main([*args, "--continue", str(tmp_path / "empty.mid")]) == 1
    assert "empty.mid: the file is empty" in capsys.readouterr().err


def test_kneser_ney_trigram_is_a_proper_distribution(chorales):
    pieces = [chorales.piece_ids(n).astype(np.int64) for n in chorales.names("train")[:50]]
    model = KneserNeyTrigram(pieces, chorales.vocab.size)
    totals = np.exp(model.log_probs).sum(axis=2)
    assert np.allclose(totals, 1.0)


def test_evaluate_prints_model_and_baselines(tiny_word_checkpoint, capsys):
    assert evaluate_main(["--checkpoint", str(tiny_word_checkpoint), "--split", "val"]) == 0
    out = capsys.readouterr().out
    for name in ("word model", "trigram (Kneser-Ney)", "unigram (add-one)", "bits/note"):
        assert name in out


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("n_layer", 1000, "n_layer = 1000 is outside 1-48"),
        ("n_layer", 10**6, "n_layer = 1000000 is outside"),
        ("n_head", 0, "n_head = 0 is outside"),
        ("n_embd", "wide", "n_embd must be a int"),
        ("dropout", float("nan"), "dropout = nan is outside"),
        ("bias", 1, "bias must be a bool"),
        ("positions", "absolute", "positions must be one of"),
        ("n_head", 3, "multiple of n_head"),
    ],
)
def test_hostile_model_configs_are_refused_before_anything_is_allocated(
    tiny_word_checkpoint, tmp_path, field, value, said
):
    def edit(info):
        info["model_config"][field] = value

    with pytest.raises(CantorError, match=said.replace("(", r"\(").replace("[", r"\[")):
        WordModel(edited_copy(tiny_word_checkpoint, tmp_path, edit))


def test_nested_huge_and_special_checkpoint_json_is_refused(tiny_word_checkpoint, tmp_path):
    import os

    copy = edited_copy(tiny_word_checkpoint, tmp_path, lambda info: None)
    card = copy.with_suffix(".json")
    card.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CantorError, match="nested too deeply"):
        WordModel(copy)
    card.write_text(" " * (2 << 20))
    with pytest.raises(CantorError, match="larger than"):
        WordModel(copy)
    card.unlink()
    os.symlink("/dev/zero", card)
    with pytest.raises(CantorError, match="not a regular file"):
        WordModel(copy)


def test_missing_vocabulary_and_nan_weights_are_refused(tiny_word_checkpoint, tmp_path):
    from safetensors.torch import load_file, save_file

    def no_vocabulary(info):
        del info["vocabulary"]

    with pytest.raises(CantorError, match="vocabulary"):
        WordModel(edited_copy(tiny_word_checkpoint, tmp_path, no_vocabulary))
    copy = edited_copy(tiny_word_checkpoint, tmp_path, lambda info: None)
    weights = {key: value.clone() for key, value in load_file(str(copy.with_suffix(".safetensors"))).items()}
    weights["transformer.h.0.mlp.c_fc.weight"][0, 0] = float("nan")
    save_file(weights, str(copy.with_suffix(".safetensors")))
    with pytest.raises(CantorError, match=r"c_fc\.weight holds NaN"):
        WordModel(copy)


def test_resuming_from_a_corrupt_training_state_says_so_in_one_line(tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    out = tmp_path / "run"
    args = [*TINY, "--steps", "2", "--eval-every", "2", "--checkpoint-every", "2", "--out", str(out)]
    assert train_main(args) == 0
    capsys.readouterr()
    state = out.with_suffix(".train.safetensors")
    good = state.read_bytes()
    tensors = {key: value.clone() for key, value in load_file(str(state)).items()}  # not a view of the file
    corruptions = {
        "truncated": lambda: state.write_bytes(good[: len(good) // 2]),
        "garbage": lambda: state.write_bytes(b"\x00\xff" * 4096),
        "no metadata": lambda: save_file(tensors, str(state)),
        "bad metadata": lambda: save_file(tensors, str(state), metadata={"state": "{", "param_groups": "[]"}),
        "other model": lambda: save_file({"model.wte": torch.zeros(3)}, str(state), metadata={"state": "{}"}),
    }
    for name, corrupt in corruptions.items():
        corrupt()
        assert train_main([*args, "--resume"]) == 1, name
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("error:")]
        assert lines and lines[0].startswith("error: run.train.safetensors: the training state"), name


def test_a_shipped_checkpoint_holds_half_the_bytes_and_computes_as_trained(tiny_word_checkpoint, tmp_path):
    import torch

    from models.ship import ship

    shipped = ship(tiny_word_checkpoint, tmp_path / "shipped")
    full, half = WordModel(tiny_word_checkpoint), WordModel(shipped)
    size = shipped.with_suffix(".safetensors").stat().st_size
    assert size < 0.6 * tiny_word_checkpoint.with_suffix(".safetensors").stat().st_size
    assert half.model.lm_head.weight.dtype == torch.float32 and half.info["model_card"]["weights"] == "float16"
    ids = torch.randint(0, full.vocab.size, (1, 48))
    assert torch.allclose(full.model(ids)[0], half.model(ids)[0], atol=2e-2)
