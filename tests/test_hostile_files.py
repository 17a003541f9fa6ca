"""Broken and hostile files the user's home or a download may hold: each gets one clear message
or is set aside, and nothing the user made is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.settings import Settings
from studio.takes import TakeStore
from tokenizer import CantorError, Note, NoteSequence
from tokenizer.readers import read_midi
from tokenizer.writers import write_midi

GOOD_PIECE = {"notes": [[60, 0, 4, 80]], "steps_per_quarter": 4, "tempos": [[0, 100.0]], "time_signature": [4, 4]}


def take(**piece_changes) -> dict:
    piece = {**GOOD_PIECE, **piece_changes}
    return {
        "number": 1,
        "mode": "new",
        "settings": {"seed": 1},
        "checkpoint": "tiny",
        "primer": GOOD_PIECE,
        "generated": piece,
    }


def test_a_good_take_loads(tmp_path):
    store_file = tmp_path / "takes.json"
    store_file.write_text(json.dumps({"takes": [take()]}))
    assert TakeStore(store_file).takes[0].generated.notes == [Note(60, 0, 4, 80)]


@pytest.mark.parametrize(
    "text",
    ["[" * 100_000 + "]" * 100_000, json.dumps([1]), "{not json", json.dumps({"takes": 3})],
    ids=["deep nesting", "a list", "not json", "takes not a list"],
)
def test_a_corrupt_takes_file_is_set_aside_with_one_message(tmp_path, text):
    path = tmp_path / "takes.json"
    path.write_text(text)
    store = TakeStore(path)
    assert store.takes == []
    assert "takes.json was unreadable" in store.message and "kept aside as takes.json.corrupt" in store.message
    assert (tmp_path / "takes.json.corrupt").read_text() == text
    assert not path.exists()


@pytest.mark.parametrize(
    "bad",
    [
        json.dumps(take()).replace('"number": 1', '"number": Infinity'),
        json.dumps(take(steps_per_quarter=0)),
        json.dumps(take(steps_per_quarter=-4)),
        json.dumps(take(time_signature=[0, 0])),
        json.dumps(take(time_signature=[4, 4, 4])),
        json.dumps(take(time_signature=[4, 3])),
        json.dumps(take(tempos=[[0, -5.0]])),
        json.dumps(take(notes=[[60, -8, 4, 80]])),
        json.dumps({**take(), "settings": [1, 2]}),
    ],
    ids=[
        "infinite number",
        "grid 0",
        "grid -4",
        "signature 0/0",
        "signature of three",
        "signature 4/3",
        "negative tempo",
        "negative start",
        "settings a list",
    ],
)
def test_a_corrupt_take_is_set_aside_alone_and_the_good_ones_load(tmp_path, bad):
    path = tmp_path / "takes.json"
    good = {**take(), "number": 2}
    path.write_text('{"takes": [' + json.dumps(good) + ", " + bad + "]}")
    store = TakeStore(path)
    assert [t.number for t in store.takes] == [2]
    assert "1 of the takes in takes.json could not be read, kept aside in takes.json.corrupt" in store.message
    assert len(json.loads((tmp_path / "takes.json.corrupt").read_text(), parse_constant=str)["takes"]) == 1
    assert [t["number"] for t in json.loads(path.read_text())["takes"]] == [2]


def test_a_second_corruption_does_not_overwrite_the_first(tmp_path):
    path = tmp_path / "takes.json"
    for attempt in ("first", "second", "third"):
        path.write_text(f"{{ {attempt} broken")
        TakeStore(path)
    kept = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))  # not the lock
    assert kept == ["takes.json.corrupt", "takes.json.corrupt-2", "takes.json.corrupt-3"]
    assert (tmp_path / "takes.json.corrupt").read_text() == "{ first broken"


@pytest.mark.parametrize(
    "text",
    [
        '{"bpm": "fast"}',
        "[1]",
        "[" * 100_000 + "]" * 100_000,
        '{"bpm": 1e400}',
        '{"voice_rules": "yes"}',
        '{"key": "H major"}',
        '{"lowest": 90, "highest": 30}',
        '{"out_of_key_weight": 1e400}',
        '{"key": "C major", "out_of_key_weight": 0, "lowest": 61, "highest": 61}',
        '{"bar_form": "sometimes"}',
        '{"bar_form": true}',
        '{"bar_form": []}',
    ],
)
def test_bad_settings_fall_back_to_defaults_with_a_message(tmp_path, text):
    path = tmp_path / "settings.json"
    path.write_text(text)
    settings = Settings.load(path)
    assert settings.bpm == Settings().bpm and settings.voice_rules is True
    assert settings.message.startswith("settings.json")
    assert settings.rules() == Settings().rules()  # the four-part rules, and nothing else
    assert settings.bar_form == "bach"


@pytest.mark.parametrize(
    ("piece", "said"),
    [
        (NoteSequence([Note(60, 0, 4)], tempos=[(0, 6e7)]), "tempo of 60000000"),
        (NoteSequence([Note(60, 0, 4)], tempos=[(0, float("inf"))]), "tempo of inf"),
        (NoteSequence([Note(60, 0, 4)], time_signature=(4, 3)), "time signature of"),
        (NoteSequence([Note(60, 0, 4)], time_signature=(0, 0)), "time signature of"),
        (NoteSequence([Note(60, -4, 4)]), "out of range"),
    ],
)
def test_pieces_that_would_break_later_are_refused_where_they_are_made(piece, said):
    with pytest.raises(ValueError, match=said):
        piece.validate()


def test_a_midi_file_with_an_absurd_tempo_is_refused_by_name(tmp_path):
    import mido

    midi = mido.MidiFile()
    track = mido.MidiTrack()
    track.append(mido.MetaMessage("set_tempo", tempo=1))  # 1 microsecond a quarter: 6e7 qpm
    track.append(mido.Message("note_on", note=60, velocity=80, time=0))
    track.append(mido.Message("note_off", note=60, velocity=0, time=480))
    midi.tracks.append(track)
    midi.save(tmp_path / "fast.mid")
    with pytest.raises(CantorError, match=r"fast\.mid: a tempo of"):
        read_midi(tmp_path / "fast.mid")


def test_saving_twenty_thousand_notes_round_trips(tmp_path):
    notes = [Note(40 + i % 50, i, 1 + i % 8) for i in range(20_000)]
    piece = NoteSequence(notes, tempos=[(0, 97.0)])
    path = write_midi(piece, tmp_path / "long.mid")
    back = read_midi(path)
    assert back.notes == piece.as_played().with_velocity().notes


def prepare_main(*args: str) -> int:
    from tokenizer.prepare import main

    return main([*args, "--workers", "1"])


def a_folder_of_music(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    write_midi(NoteSequence([Note(60, 0, 4), Note(64, 4, 4)]), folder / "one.mid")
    return folder


@pytest.mark.parametrize("name", ["../../x", "/tmp/elsewhere", "a/b", ".hidden", ""])
def test_prepare_refuses_a_name_that_is_a_path(tmp_path, capsys, name):
    folder = a_folder_of_music(tmp_path)
    assert prepare_main("--source", str(folder), "--name", name, "--data-root", str(tmp_path / "data")) == 1
    assert "plain folder name" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not Path("/tmp/elsewhere").exists()


def test_prepare_never_replaces_the_built_in_set_or_an_existing_one_unasked(tmp_path, capsys):
    folder, root = a_folder_of_music(tmp_path), tmp_path / "data"
    assert prepare_main("--source", str(folder), "--name", "chorales", "--data-root", str(root)) == 1
    assert "built-in" in capsys.readouterr().err
    assert prepare_main("--source", str(folder), "--name", "mine", "--data-root", str(root)) == 0
    before = (root / "mine" / "index.json").read_bytes()
    assert prepare_main("--source", str(folder), "--name", "mine", "--data-root", str(root)) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (root / "mine" / "index.json").read_bytes() == before
    assert prepare_main("--source", str(folder), "--name", "mine", "--data-root", str(root), "--overwrite") == 0


def test_prepare_skips_odd_names_links_and_secrets_and_reports_without_quoting_them(tmp_path, capsys):
    import os

    folder, root = a_folder_of_music(tmp_path), tmp_path / "data"
    secret = tmp_path / "secret.txt"
    secret.write_text("X:1\nAPI_KEY=hunter2-very-secret\n")
    os.symlink(secret, folder / "linked.abc")
    (folder / "notes.abc").write_text("password=hunter2-very-secret\n")
    odd = os.fsencode(folder) + b"/caf\xe9.mid"
    with open(odd, "wb") as handle:
        handle.write((folder / "one.mid").read_bytes())
    assert prepare_main("--source", str(folder), "--name", "mine", "--data-root", str(root)) == 0
    said = capsys.readouterr()
    assert "linked.abc: a link" in said.err and "not valid UTF-8" in said.err
    index = (root / "mine" / "index.json").read_text()
    assert "hunter2" not in said.out + said.err + index
    assert [p["name"] for p in json.loads(index)["pieces"]] == ["one.mid"]


HANGING_ABC = (Path(__file__).parent / "data" / "hang.abc").read_text()  # 64 KB of tune; music21 takes minutes


def test_a_score_that_hangs_its_parser_is_stopped_at_the_budget(tmp_path):
    import time

    from tokenizer.budget import Budget
    from tokenizer.readers import read_piece

    path = tmp_path / "hang.abc"
    path.write_text(HANGING_ABC)
    started = time.monotonic()
    with pytest.raises(CantorError, match=r"hang\.abc: still reading after 3 s"):
        read_piece(path, budget=Budget(seconds=3))
    assert time.monotonic() - started < 30


def test_reading_can_be_cancelled_from_another_thread(tmp_path):
    import threading
    import time

    from tokenizer.budget import Cancelled
    from tokenizer.readers import read_piece

    path = tmp_path / "hang.abc"
    path.write_text(HANGING_ABC)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    with pytest.raises(Cancelled, match="cancelled"):
        read_piece(path, cancel=cancel)
    assert time.monotonic() - started < 20


def test_an_mxl_zip_bomb_and_a_huge_file_are_refused_before_parsing(tmp_path):
    import zipfile

    from tokenizer.readers import read_piece

    bomb = tmp_path / "bomb.mxl"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("score.xml", b"\0" * (40 << 20))
    assert bomb.stat().st_size < 1 << 20
    with pytest.raises(CantorError, match=r"bomb\.mxl: unpacks to 40 MB"):
        read_piece(bomb)
    huge = tmp_path / "huge.mid"
    with open(huge, "wb") as handle:
        handle.truncate(64 << 20)
    with pytest.raises(CantorError, match=r"huge\.mid: 64 MB is larger"):
        read_piece(huge)


def test_a_reader_that_runs_out_of_its_memory_gives_a_message_and_this_process_lives():
    import numpy as np

    from tokenizer.budget import Budget, run_within

    with pytest.raises(CantorError, match="needs more than 64 MB"):
        run_within(Budget(seconds=60, memory_bytes=64 << 20), "test", np.ones, 1 << 31)


def test_stuck_notes_cannot_become_millions_of_words():
    from tokenizer.words import WordVocabulary, encode

    stuck = NoteSequence([Note(21 + i % 88, i, 40_000) for i in range(19_999)], name="stuck.mid")
    with pytest.raises(CantorError, match=r"stuck\.mid: its notes alone would take .* is there a stuck note"):
        encode(stuck, WordVocabulary())


def test_prepare_goes_on_past_a_file_that_hangs(tmp_path, capsys):
    folder, root = a_folder_of_music(tmp_path), tmp_path / "data"
    (folder / "hang.abc").write_text(HANGING_ABC)
    args = ("--source", str(folder), "--name", "mine", "--data-root", str(root), "--timeout", "3")
    assert prepare_main(*args) == 0
    said = capsys.readouterr()
    assert "hang.abc: still reading after 3 s" in said.err and "prepared 1 pieces" in said.out


def test_the_checkpoint_list_survives_nested_and_endless_cards(tmp_path, tiny_word_checkpoint):
    import os
    import shutil

    from studio.checkpoints import list_checkpoints

    for suffix in (".json", ".safetensors"):
        shutil.copy(tiny_word_checkpoint.with_suffix(suffix), (tmp_path / "good").with_suffix(suffix))
    (tmp_path / "nested.json").write_text("[" * 100_000 + "]" * 100_000)
    os.symlink("/dev/zero", tmp_path / "endless.json")
    labels = {entry.name: entry.label for entry in list_checkpoints(tmp_path)}
    assert labels["nested"] == "nested · unreadable" and labels["endless"] == "endless · unreadable"
    assert labels["good"].startswith("good · tiny")
