"""Playback, export, opening your own files, and takes: headless, driven through real events."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pygame
import pytest

from studio.app import App
from studio.automation import click, press, run_until, type_text
from studio.synth import EXPORT_PEAK_DBFS, SAMPLE_RATE, Voice, at_export_level, render
from tokenizer import Note, NoteSequence
from tokenizer.readers import read_midi
from tokenizer.writers import write_midi

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def make_app(tmp_path, checkpoint, home) -> App:
    folder = tmp_path / "checkpoints"
    folder.mkdir(exist_ok=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(checkpoint.with_suffix(suffix), (folder / "tiny").with_suffix(suffix))
    app = App(size=(1280, 800), checkpoints_dir=folder, data_root=ROOT / "data", home=home)
    app.settings.export_folder = str(tmp_path)  # dialogs open here, not in the real home
    run_until(app, lambda: app.generate.loaded is not None)
    return app


@pytest.fixture
def app(tmp_path, tiny_word_checkpoint, home):
    app = make_app(tmp_path, tiny_word_checkpoint, home)
    yield app
    app.close()


def generate(app: App, words: int = 96) -> None:
    """Press Generate once the engine is free and wait for that job's take: not for the
    ``generating`` flag, which a quick job can raise and lower within the click's own frames."""
    panel = app.generate
    panel.sampling.words.set_value(words)
    run_until(app, lambda: not app.engine.busy, what="the engine to be free")
    submitted_before, finished_before = panel.running_job, panel.last_finished
    click(app, panel.generate_button.rect.center)
    assert panel.running_job is not submitted_before, panel.status_text  # submitted, not refused
    job = panel.running_job  # the worker's Finished event carries a copy of it

    def finished() -> bool:
        return panel.last_finished is not finished_before and panel.last_finished.job == job

    run_until(app, finished, what="the take")


def save_through_dialog(app: App, button, path: Path) -> None:
    click(app, button.rect.center)
    dialog = app.transport._dialog
    assert dialog is not None
    type_text(app, dialog.file_path_text_line, str(path))
    click(app, dialog.ok_button.rect.center)
    app.step()


def test_play_and_stop_through_a_click_and_through_space(app):
    generate(app)
    transport = app.transport
    assert transport.player.available
    click(app, transport.play_button.rect.center)
    assert transport.player.state == "playing" and transport.play_button.text == "Stop"
    click(app, transport.play_button.rect.center)
    assert transport.player.state == "stopped"
    press(app, pygame.K_SPACE)
    assert transport.player.state == "playing"
    press(app, pygame.K_SPACE)
    assert transport.player.state == "stopped"


def test_playhead_advances_with_time_pauses_and_resets_on_stop(app):
    generate(app)
    transport, roll = app.transport, app.generate.piano_roll
    click(app, transport.play_button.rect.center)
    first = roll.playhead_step
    time.sleep(0.3)
    app.step()
    later = roll.playhead_step
    expected = 0.3 * transport.bpm * 4 / 60  # steps in 0.3 s
    assert later - first == pytest.approx(expected, abs=expected * 0.5)
    click(app, transport.pause_button.rect.center)
    paused = roll.playhead_step
    time.sleep(0.2)
    app.step()
    assert roll.playhead_step == pytest.approx(paused, abs=0.05)
    click(app, transport.pause_button.rect.center)  # resume
    assert transport.player.state == "playing"
    click(app, transport.play_button.rect.center)  # stop
    assert roll.playhead_step is None and transport.player.position_s() == 0.0


def test_clicking_the_ruler_seeks(app):
    generate(app)
    roll = app.generate.piano_roll
    x = int(roll.step_to_x(16))  # bar 2
    click(app, (x, roll.ruler_rect.centery))
    assert app.transport.player.state == "playing"
    assert roll.playhead_step == pytest.approx(16, abs=1.0)


def test_exported_midi_has_the_same_notes_and_named_tracks(app, tmp_path, chorales):
    click(app, app.generate.mode_buttons["continue"].rect.center)
    generate(app)
    path = tmp_path / "take.mid"
    save_through_dialog(app, app.transport.save_midi_button, path)
    assert path.exists(), app.generate.status_text
    primer, generated = app.generate.result
    back = read_midi(path)
    played = sorted(primer.as_played().notes + generated.as_played().notes, key=lambda n: (n.start, n.pitch))
    assert back.with_velocity().notes == NoteSequence(played).with_velocity().notes
    assert back.qpm == pytest.approx(app.transport.bpm)
    midi = __import__("pretty_midi").PrettyMIDI(str(path))
    assert [i.name for i in midi.instruments] == ["primer", "generated"]


def test_saving_over_an_existing_file_asks_first(app, tmp_path):
    generate(app)
    path = tmp_path / "keep.mid"
    path.write_bytes(b"precious")
    save_through_dialog(app, app.transport.save_midi_button, path)
    assert path.read_bytes() == b"precious"  # not yet: a confirmation is showing
    confirm = app.transport._confirm
    assert confirm is not None
    click(app, confirm.confirm_button.rect.center)
    run_until(app, lambda: path.read_bytes() != b"precious", what="the confirmed save")
    assert read_midi(path).notes


def test_exported_wav_is_audible_and_as_long_as_the_piece(app, tmp_path):
    generate(app)
    path = tmp_path / "take.wav"
    save_through_dialog(app, app.transport.save_wav_button, path)
    assert "Rendering take.wav" in app.generate.status_text  # the busy sign: it renders in the background
    run_until(app, lambda: app.generate.status_text.startswith("Saved"), what="the WAV")
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == SAMPLE_RATE and wav.getnchannels() == 2
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
        seconds = wav.getnframes() / SAMPLE_RATE
    piece = app.generate.current_piece().combined()
    expected = piece.total_steps * 60 / (app.transport.bpm * piece.steps_per_quarter)
    assert abs(seconds - expected) <= 1.0 + 1.5  # within 1 s, plus the release tail we add
    assert abs(seconds - 1.5 - expected) <= 1.0
    # The file is the synth's own rendering of the piece (FluidSynth is deterministic), at a bounce's
    # level: its peak at -1 dBFS, nothing clipped ...
    assert np.array_equal(samples, at_export_level(render(piece, Voice(qpm=app.transport.bpm))).reshape(-1))
    peak = np.abs(samples.astype(np.int32)).max()
    assert abs(20 * np.log10(peak / 32767) - EXPORT_PEAK_DBFS) < 0.01 and peak < 32767
    # ... and loud while notes sound (a sampled piece may rest a while, so not over the whole file).
    frames_per_step = SAMPLE_RATE * 60 / (app.transport.bpm * piece.steps_per_quarter)
    sounding = np.zeros(len(samples) // 2, dtype=bool)
    for note in piece.notes:
        sounding[round(note.start * frames_per_step) : round(note.end * frames_per_step)] = True
    stereo = samples.reshape(-1, 2).astype(np.float64)
    lone_note = render(NoteSequence([Note(60, 0, 16)]), Voice()).astype(np.float64)[:SAMPLE_RATE]
    audible = np.sqrt(np.mean(lone_note**2)) / 2  # half the level of one middle C held for a second
    assert sounding.mean() > 0.2 and np.sqrt(np.mean(stereo[sounding] ** 2)) > audible


def test_wav_follows_the_chosen_tempo():
    piece = NoteSequence([Note(60, 0, 16), Note(64, 16, 16)])
    slow = render(piece, Voice(qpm=60))
    fast = render(piece, Voice(qpm=120))
    assert (len(slow) / SAMPLE_RATE - 1.5) == pytest.approx(8.0, abs=0.05)
    assert (len(fast) / SAMPLE_RATE - 1.5) == pytest.approx(4.0, abs=0.05)


def test_opening_a_midi_file_and_continuing_keeps_its_notes_as_the_primer(app, tmp_path, chorales):
    mine = chorales.piece("bwv66.6").cropped(0, 24)
    path = write_midi(mine, tmp_path / "my song.mid")
    pygame.event.post(pygame.event.Event(pygame.DROPFILE, file=str(path)))
    run_until(app, lambda: app.generate.user_primer is not None, what="the file to be read")
    assert app.generate.mode == "continue"
    assert app.generate.piano_roll.primer == mine.with_velocity(mine.notes[0].velocity).notes
    generate(app)
    primer, generated = app.generate.result
    assert primer.with_velocity().notes == mine.with_velocity().notes and generated.notes
    assert app.engine.received[-1].primer is not None


def test_a_long_file_is_cut_to_the_context_and_the_status_says_so(app, tmp_path, chorales):
    path = write_midi(chorales.piece("bwv66.6"), tmp_path / "long.mid")
    app.transport.open_path(path)
    run_until(app, lambda: app.generate.user_primer is not None, what="the file to be read")
    generate(app, words=32)
    assert "primer cut to its last 63 words" in app.generate.status_text


@pytest.mark.parametrize("content", [b"", b"MThd garbage"], ids=["empty", "unreadable"])
def test_dropping_a_bad_file_gives_a_message_and_keeps_going(app, tmp_path, content):
    path = tmp_path / "bad.mid"
    path.write_bytes(content)
    pygame.event.post(pygame.event.Event(pygame.DROPFILE, file=str(path)))
    app.step()
    run_until(app, lambda: not app.transport.task.busy, what="the file to be read")
    assert app.generate.status_text.startswith("bad.mid") and app.generate.user_primer is None
    generate(app)
    assert app.generate.result[1].notes


def test_takes_survive_a_restart_and_can_be_picked_and_deleted(tmp_path, tiny_word_checkpoint, home):
    app = make_app(tmp_path, tiny_word_checkpoint, home)
    generate(app)
    generate(app)
    kept = [(t.number, t.generated.notes) for t in app.takes.takes]
    app.close()
    assert len(kept) == 2 and kept[0][0] == 2  # newest first
    app = make_app(tmp_path, tiny_word_checkpoint, home)
    try:
        assert [(t.number, t.generated.notes) for t in app.takes.takes] == kept
        older = app.takes_panel.list.item_list[1]["button_element"]
        click(app, older.rect.center)
        assert app.generate.result[1].notes == kept[1][1]
        click(app, app.takes_panel.delete_button.rect.center)
        assert len(app.takes.takes) == 2  # not yet: it asks first
        click(app, app.takes_panel.confirm.confirm_button.rect.center)
        assert [t.number for t in app.takes.takes] == [2]
        assert app.generate.result[1].notes == kept[0][1]  # the roll moved to the take that is left
        assert app.takes_panel.selected == 2
    finally:
        app.close()


def test_a_corrupt_autosave_is_kept_aside_and_the_studio_starts_empty(tmp_path, tiny_word_checkpoint, home):
    home.mkdir(parents=True)
    (home / "takes.json").write_text("{ this is not json")
    app = make_app(tmp_path, tiny_word_checkpoint, home)
    try:
        assert app.takes.takes == []
        assert (home / "takes.json.corrupt").read_text() == "{ this is not json"
        generate(app)
        assert json.loads((home / "takes.json").read_text())["takes"]
    finally:
        app.close()


def test_a_soundfont_that_fails_to_load_falls_back_to_the_default(app, tmp_path):
    bad = tmp_path / "broken.sf2"
    bad.write_bytes(b"RIFF nonsense")
    app.settings.soundfont = str(bad)
    generate(app)
    click(app, app.transport.play_button.rect.center)
    assert app.transport.player.state == "playing"
    assert "back to the default SoundFont" in app.generate.status_text
    assert app.settings.soundfont == ""


def test_export_to_an_unwritable_folder_gives_a_message(app, tmp_path):
    generate(app)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    app.transport.save("midi", blocker / "inside.mid")
    assert "could not write" in app.generate.status_text


def test_without_an_audio_device_the_studio_runs_and_export_still_works(tmp_path):
    code = (
        "from studio.app import App; from pathlib import Path; import sys;"
        "app = App(size=(1280, 800), checkpoints_dir=Path(sys.argv[1]), home=Path(sys.argv[2]));"
        "app.step(); print(app.transport.player.available, '|', app.generate.status_text);"
        "from studio.synth import write_wav, Voice; from tokenizer import Note, NoteSequence;"
        "write_wav(NoteSequence([Note(60, 0, 8)]), Voice(), Path(sys.argv[2]) / 'x.wav'); app.close()"
    )
    env = {**os.environ, "SDL_AUDIODRIVER": "nosuchdriver", "SDL_VIDEODRIVER": "dummy"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "none"), str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-1500:]
    assert result.stdout.strip().splitlines()[-1].startswith("False | no audio device; playback disabled")
    assert (tmp_path / "x.wav").stat().st_size > 10_000
