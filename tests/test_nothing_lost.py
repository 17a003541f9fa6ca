"""Nothing the user made is lost, and nothing closes the window: takes, settings, crashes, full disks."""

from __future__ import annotations

import errno
import json

import numpy as np
import pygame
import pytest

from studio.automation import click, run_until
from studio.settings import Settings
from studio.takes import Take, TakeStore
from tests.conftest import ROOT
from tests.test_studio import copy_checkpoint, open_app
from tokenizer.errors import CantorError
from tokenizer.notes import Note, NoteSequence


def take(number: int, created: float, pitch: int = 60) -> Take:
    piece = NoteSequence([Note(pitch, 0, 4)])
    return Take(number, "new", {"seed": number}, "tiny", NoteSequence(), piece, created=created)


def full_disk(monkeypatch) -> None:
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("tokenizer.atomic.tempfile.mkstemp", no_space)


def test_two_studios_on_one_home_keep_every_take(tmp_path):
    path = tmp_path / "takes.json"
    first, second = TakeStore(path), TakeStore(path)
    for index in range(3):
        first.add(take(first.next_number(), 100 + index))
        second.add(take(second.next_number(), 200 + index, pitch=70))
    on_disk = TakeStore(path).takes
    assert len(on_disk) == 6
    assert len({t.number for t in on_disk}) == 6  # the numbers both used are told apart
    first.delete(first.takes[-1].number)  # a take deleted in one studio is not brought back by the other
    second.add(take(second.next_number(), 300))
    assert len(TakeStore(path).takes) == 6


def test_one_unreadable_take_is_set_aside_alone(tmp_path):
    path = tmp_path / "takes.json"
    store = TakeStore(path)
    for index in range(5):
        store.add(take(index + 1, index))
    data = json.loads(path.read_text())
    data["takes"][2]["generated"]["notes"][0][1] = -1  # a note at step -1
    path.write_text(json.dumps(data))
    reloaded = TakeStore(path)
    assert len(reloaded.takes) == 4 and "1 of the takes" in reloaded.message
    aside = json.loads((tmp_path / "takes.json.corrupt").read_text())
    assert len(aside["takes"]) == 1 and aside["takes"][0]["generated"]["notes"][0][1] == -1
    assert len(json.loads(path.read_text())["takes"]) == 4


def test_repeated_take_numbers_are_renumbered_and_a_delete_removes_one(tmp_path):
    path = tmp_path / "takes.json"
    store = TakeStore(path)
    store.add(take(1, 1.0))
    store.add(take(2, 2.0))
    data = json.loads(path.read_text())
    data["takes"][0]["number"] = 1
    path.write_text(json.dumps(data))
    reloaded = TakeStore(path)
    assert sorted(t.number for t in reloaded.takes) == [1, 2] and "renumbered" in reloaded.message
    reloaded.delete(1)
    assert [(t.number, t.created) for t in TakeStore(path).takes] == [(2, 2.0)]  # the later one, renumbered


def test_a_delete_the_disk_refuses_keeps_the_take(tmp_path, monkeypatch):
    store = TakeStore(tmp_path / "takes.json")
    store.add(take(1, 1.0))
    full_disk(monkeypatch)
    with pytest.raises(CantorError, match="No space left"):
        store.delete(1)
    assert [t.number for t in store.takes] == [1]


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        '{"bpm": 120}'.encode("utf-16"),  # a Windows editor's UTF-16
        b" " * (70 * 1024),  # larger than a settings file is
    ],
)
def test_an_unreadable_settings_file_is_set_aside_before_anything_is_written(tmp_path, content):
    path = tmp_path / "settings.json"
    path.write_bytes(content)
    settings = Settings.load(path)
    assert "kept aside as settings.json.corrupt" in settings.message
    settings.bpm = 120
    settings.save()
    assert (tmp_path / "settings.json.corrupt").read_bytes() == content
    assert json.loads(path.read_text())["bpm"] == 120


def test_out_of_range_settings_are_clamped_and_said(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"max_voices": 500, "bpm": 9}))
    settings = Settings.load(path)
    assert settings.max_voices == 16 and settings.bpm == 20
    assert "max_voices 500 is out of range" in settings.message and "bpm 9" in settings.message


def test_a_full_disk_while_training_is_one_line_naming_the_file_and_the_checkpoint_kept(tmp_path, monkeypatch):
    import torch
    from safetensors import SafetensorError

    from models.checkpoint import save_checkpoint

    def storage_full(*args, **kwargs):
        raise SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space" })'
        )

    monkeypatch.setattr("models.checkpoint.save_model", storage_full)
    with pytest.raises(CantorError, match=r"model\.safetensors: could not write \(no space left on the disk\)"):
        save_checkpoint(tmp_path / "model", torch.nn.Linear(2, 2), {"kind": "word"})


@pytest.fixture
def app(tmp_path, tiny_word_checkpoint):
    app = open_app(copy_checkpoint(tiny_word_checkpoint, tmp_path / "checkpoints", "tiny").parent)
    yield app
    app.close()


def test_zero_width_characters_in_the_search_field_do_not_close_the_studio(app):
    click(app, app.generate.piece_button.rect.center)
    browser = app.generate.browser
    for text in ("\u200b", "\u200d", "\u202e", "b\u200dw\u200bv"):
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=text))
        app.step()
    app.step()
    assert browser.search.get_text() == "bwv" and app.running and not app.bugs_seen


def test_an_exception_in_a_handler_is_said_once_and_the_studio_goes_on(app, monkeypatch):
    def broken(event):
        raise RuntimeError("a bug")

    shown = len(app.takes.takes)
    monkeypatch.setattr(app.generate, "process_event", broken)
    for _ in range(3):
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_x, mod=0, unicode="x", scancode=0))
        app.step()
    assert app.running and app.bugs_seen == {"RuntimeError: a bug"}
    windows = [w for w in app.manager.get_root_container().elements if "message" in type(w).__name__.lower()]
    assert len(windows) == 1
    monkeypatch.undo()
    run_until(app, lambda: app.generate.loaded is not None)
    assert len(app.takes.takes) == shown


def test_an_absurd_abc_metre_is_refused_before_music21_parses_it(tmp_path):
    import time

    from tokenizer.readers import read_piece

    path = tmp_path / "hang.abc"
    path.write_text("X:1\nM:99999/1\nL:1/8\nK:C\nCDEF|\n")
    began = time.monotonic()
    with pytest.raises(CantorError, match=r"hang.abc: a metre or note length of 99999/1"):
        read_piece(path)
    assert time.monotonic() - began < 30  # refused at the header, not at the end of the 60 s budget


def test_a_midi_file_with_too_many_notes_is_refused_while_counting(tmp_path):
    from tokenizer.readers import MAX_NOTES, read_midi

    notes = MAX_NOTES + 10
    events = b"\x00\x90\x3c\x40" + b"\x01\x3c\x00\x00\x3c\x40" * notes + b"\x00\xff\x2f\x00"  # running status
    track = b"MTrk" + len(events).to_bytes(4, "big") + events
    path = tmp_path / "many.mid"
    path.write_bytes(b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01\x01\xe0" + track)
    with pytest.raises(CantorError, match=f"many.mid: more than {MAX_NOTES} notes"):
        read_midi(path)


def test_bad_ids_and_datasets_get_one_clear_message(tmp_path, chorales):
    import shutil

    from tokenizer.dataset import WordDataset
    from tokenizer.words import decode

    with pytest.raises(CantorError, match="'x' at position 1 is not a whole number"):
        decode([0, "x"], chorales.vocab)
    folder = tmp_path / "mine"
    shutil.copytree(chorales.folder, folder, ignore=shutil.ignore_patterns("codes*"))
    vocab = json.loads((folder / "vocab.json").read_text())
    (folder / "vocab.json").write_text(json.dumps({k: v for k, v in vocab.items() if k != "steps_per_quarter"}))
    with pytest.raises(CantorError, match=r"vocab\.json: steps_per_quarter must be 4, 8 or 12"):
        WordDataset(folder)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    ids = np.fromfile(folder / "val.bin", dtype=np.uint16)
    ids[5] = 60000
    ids.tofile(folder / "val.bin")
    with pytest.raises(CantorError, match=r"val\.bin: word id 60000 is outside its vocabulary"):
        WordDataset(folder).split("val")


def test_cards_that_contradict_themselves_are_refused_by_name(tmp_path, tiny_word_checkpoint):
    from models.word_model import WordModel
    from tests.test_training import edited_copy

    def grid_of_one(info):
        info["tokenizer"]["steps_per_quarter"] = 1

    with pytest.raises(CantorError, match=r"edited: tokenizer.steps_per_quarter is 1; Cantor's grids are 4, 8, 12"):
        WordModel(edited_copy(tiny_word_checkpoint, tmp_path, grid_of_one))


def test_ctrl_c_while_sampling_writes_what_was_made(tmp_path, tiny_word_checkpoint, monkeypatch):
    from models import sample
    from models.word_model import WordModel

    real = WordModel.stream_variations

    def interrupted(self, *args, **kwargs):
        for made, ids in enumerate(real(self, *args, **kwargs)):
            if made == 40:
                raise KeyboardInterrupt
            yield ids

    monkeypatch.setattr(WordModel, "stream_variations", interrupted)
    out = tmp_path / "piece.mid"
    assert sample.main(["--checkpoint", str(tiny_word_checkpoint), "--words", "400", "--out", str(out)]) == 0
    assert out.exists() and out.stat().st_size > 0


def test_a_studio_that_reads_the_end_of_a_job_finds_the_worker_free(tmp_path):
    """The worker marks itself free before it sends a job's last event: a Generate pressed the moment
    a take finishes is taken, not refused as "Busy"."""
    import queue
    import threading

    from studio.engine import Error, Generate, GenerationSettings, Progress
    from studio.engine.worker import Outbox, serve

    busy = threading.Event()

    class Events:
        def __init__(self) -> None:
            self.seen: list[tuple[object, bool]] = []

        def put(self, event) -> None:
            self.seen.append((event, busy.is_set()))

    jobs, events = queue.Queue(), Events()
    busy.set()
    jobs.put(Generate(mode="new", settings=GenerationSettings()))  # no model loaded: it ends with an Error
    jobs.put(None)
    serve(jobs, events, threading.Event(), busy, tmp_path, 1)
    (last, busy_then), *_ = events.seen[-1:]
    assert isinstance(last, Error) and not busy_then

    sent = []
    outbox = Outbox(sent.append)
    outbox.post(Progress(1, 2))
    outbox.post(Error("no model"))
    assert sent == [Progress(1, 2)]  # the end waits ...
    outbox.post(Progress(2, 2))
    assert sent == [Progress(1, 2), Error("no model"), Progress(2, 2)]  # ... for the next event, in order
    outbox.post(Error("again"))
    outbox.flush()
    assert sent[-1] == Error("again")


def test_a_vqvae_card_whose_grid_contradicts_its_data_is_refused_by_name(tmp_path, chorales):
    import threading

    from studio.engine import LoadCodebooks
    from studio.engine.worker import Worker

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for suffix in (".json", ".safetensors"):
        shipped = ROOT / "checkpoints" / f"chorales_vqvae{suffix}"
        (folder / shipped.name).write_bytes(shipped.read_bytes())
    card = json.loads((folder / "chorales_vqvae.json").read_text())
    card["tokenizer"]["steps_per_quarter"] = 8  # its data, data/chorales, lies on a grid of 4
    card["model_card"]["data"] = str(chorales.folder)
    (folder / "chorales_vqvae.json").write_text(json.dumps(card))
    events = []
    Worker(events.append, threading.Event(), ROOT / "data").run(LoadCodebooks(folder / "chorales_vqvae", None))
    assert [type(e).__name__ for e in events] == ["Error"]
    said = f"chorales_vqvae writes 8 steps a quarter, but {chorales.folder.name} holds pieces on a grid of 4"
    assert said in events[0].message
