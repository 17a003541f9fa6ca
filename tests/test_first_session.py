"""What a musician's first session trips over (issue 10): keys while typing, a file opened during
a generation, closing mid-generation, resizing, a file's own tempo, Retry, seeds, the primer
shown before generating, and an idle window that does not redraw for nothing."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pygame
import pytest

from studio.app import MIN_SIZE, App
from studio.automation import click, press, run_until, start_generating, type_text
from studio.takes import TakeStore
from tests.test_studio import generate_and_wait
from tokenizer.readers import read_midi
from tokenizer.writers import write_midi

ROOT = Path(__file__).resolve().parent.parent


def make_app(tmp_path: Path, checkpoint: Path, size=(1280, 800)) -> App:
    folder = tmp_path / "checkpoints"
    folder.mkdir(exist_ok=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(checkpoint.with_suffix(suffix), folder / f"tiny{suffix}")
    app = App(size=size, checkpoints_dir=folder, data_root=ROOT / "data", home=tmp_path / "home")
    run_until(app, lambda: app.generate.loaded is not None, what="the model")
    return app


@pytest.fixture
def app(tmp_path, tiny_word_checkpoint):
    app = make_app(tmp_path, tiny_word_checkpoint)
    yield app
    app.close()


def start_long_generation(app: App) -> None:
    app.generate.sampling.words.set_value(2048)
    start_generating(app, lambda: click(app, app.generate.generate_button.rect.center), notes=3)


def test_shortcut_keys_go_to_the_text_field_being_typed_in(app):
    panel = app.generate
    click(app, panel.sampling.seed_entry.rect.center)
    press(app, pygame.K_a, pygame.KMOD_CTRL)
    view = (panel.piano_roll.view_start, panel.piano_roll.steps_visible)
    keys = ((pygame.K_4, "4"), (pygame.K_2, "2"), (pygame.K_g, "g"), (pygame.K_SPACE, " "), (pygame.K_MINUS, "-"))
    for key, text in keys:
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=key, mod=0, unicode=text, scancode=0))
        pygame.event.post(pygame.event.Event(pygame.TEXTINPUT, text=text))
        app.step()
    assert not panel.generating  # "g" did not start a generation
    assert app.transport.player.state == "stopped"  # space did not play
    assert (panel.piano_roll.view_start, panel.piano_roll.steps_visible) == view  # "-" did not zoom
    assert panel.sampling.seed_entry.get_text() == "42"  # the field took the digits (and refused the rest)


def test_delete_after_the_app_replaced_a_selected_seed_does_not_crash(app):
    panel = app.generate
    click(app, panel.sampling.seed_entry.rect.center)
    press(app, pygame.K_a, pygame.KMOD_CTRL)  # the old seed selected
    assert panel.sampling.seed_entry.select_range[1] > 0
    panel.sampling.seed.roll(always=True)  # what Generate with random seeds, or Retry, does
    shown = panel.sampling.seed_entry.get_text()
    press(app, pygame.K_DELETE)  # pygame_gui raised IndexError: No selected rows
    app.step()
    assert panel.sampling.seed_entry.get_text() == shown  # the cursor sits at the start: Delete removes nothing


def test_escape_stops_reading_a_file_that_hangs_its_parser_and_the_studio_goes_on(app, tmp_path):
    hang = tmp_path / "hang.abc"
    hang.write_text("X:1\nM:4/4\nL:1/16\nK:C\n" + "CDEF GABc cBAG FEDC|" * 3000 + "\n")  # long for music21
    pygame.event.post(pygame.event.Event(pygame.DROPFILE, file=str(hang)))
    app.step()
    assert "Reading hang.abc" in app.generate.status_text and app.transport.task.busy
    for _ in range(5):
        app.step()  # the window keeps drawing while the file is read
    press(app, pygame.K_ESCAPE)
    assert not app.transport.task.busy
    assert "Stopped reading hang.abc" in app.generate.status_text
    click(app, app.generate.generate_button.rect.center)  # and the studio works on
    run_until(app, lambda: app.generate.result is not None and not app.generate.generating, what="a take")
    assert app.generate.result[1].notes


def test_a_file_opened_while_generating_is_refused_and_the_roll_keeps_the_job(app, tmp_path, chorales):
    start_long_generation(app)
    path = write_midi(chorales.piece("bwv66.6").cropped(0, 16), tmp_path / "mine.mid")
    pygame.event.post(pygame.event.Event(pygame.DROPFILE, file=str(path)))
    app.step()  # the drop is handled first, then the engine's news: a tiny model's take may end in this frame
    assert "generation is running" in app.generate.status_text or app.generate.status_text.startswith("Finished")
    assert app.generate.user_primer is None and not app.generate.piano_roll.primer
    assert not app.transport.task.busy  # the file is not being read
    press(app, pygame.K_ESCAPE)
    run_until(app, lambda: not app.generate.generating)
    assert app.takes.takes[0].generated.notes  # the finished take shows its notes


def test_closing_the_window_mid_generation_keeps_the_partial_piece(tmp_path, tiny_word_checkpoint):
    app = make_app(tmp_path, tiny_word_checkpoint)
    start_long_generation(app)
    shown = list(app.generate.piano_roll.generated)
    app.close()
    takes = TakeStore(tmp_path / "home" / "takes.json").takes  # newest first
    # start_generating retries when the tiny model ends a take by itself: those takes are finished
    assert takes[0].stopped and not any(take.stopped for take in takes[1:])
    assert len(takes[0].generated.notes) >= len(shown) >= 3


def test_the_window_resizes_and_every_panel_stays_inside_it(app, tmp_path):
    for size in ((1366 - 20, 768 - 80), MIN_SIZE, (1600, 1000)):
        pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, w=size[0], h=size[1], size=size))
        app.step()
        app.step()
        window = app.window.get_rect()
        assert window.size == size
        for element in (
            app.transport.save_wav_button,
            app.transport.soundfont_button,
            app.takes_panel.delete_button,
            app.takes_panel.list,
            app.generate.piano_roll,
            app.generate.generate_button,
        ):
            assert window.contains(element.rect), (size, element, element.rect)
        roll = app.generate.piano_roll
        assert not roll.rect.colliderect(app.takes_panel.list.rect)
        assert roll.image.get_size() == roll.rect.size  # the canvas repainted at its new size
        pygame.image.save(app.window, str(tmp_path / f"{size[0]}x{size[1]}.png"))
    pygame.event.post(pygame.event.Event(pygame.VIDEORESIZE, w=640, h=480, size=(640, 480)))
    app.step()
    assert app.window.get_size() == MIN_SIZE  # never smaller than the layout needs


def test_a_file_plays_and_exports_at_its_own_tempo(app, tmp_path, chorales):
    piece = chorales.piece("bwv66.6").cropped(0, 32)
    piece.tempos = [(0, 100.0)]
    path = write_midi(piece, tmp_path / "at100.mid")
    app.transport.open_path(path)
    run_until(app, lambda: app.generate.user_primer is not None, what="the file")
    assert app.transport.bpm == 100 and app.transport.bpm_entry.get_text() == "100"
    out = tmp_path / "out.mid"
    app.transport.save("midi", out)
    assert read_midi(out).qpm == pytest.approx(100)


def test_the_tempo_can_be_typed(app):
    type_text(app, app.transport.bpm_entry, "132")
    assert app.transport.bpm == 132 and app.settings.bpm == 132


def test_seeds_are_random_by_default_and_each_take_names_its_own(app):
    for _ in range(2):
        generate_and_wait(app)
    seeds = [job.settings.seed for job in app.engine.received if hasattr(job, "settings")]
    assert len(set(seeds)) == 2
    kept = [t.settings["seed"] for t in app.takes.takes]
    assert kept == list(reversed(seeds))  # each take keeps its seed (said when it is picked)
    click(app, app.generate.sampling.random_seed.rect.center)  # off: remembered
    assert app.settings.random_seed is False


def test_picking_a_piece_shows_its_opening_before_generating(app, chorales):
    panel = app.generate
    assert not panel.primer_slider.slider.is_enabled  # no primer for a new piece
    click(app, panel.piece_button.rect.center)
    type_text(app, panel.browser.search, "bwv66.6")
    run_until(app, lambda: bool(panel.piano_roll.primer), what="the primer on the roll")
    assert panel.mode == "continue" and panel.primer_slider.slider.is_enabled
    assert panel.piano_roll.primer == chorales.piece("bwv66.6").cropped(0, 32).notes
    assert "bwv66.6" in panel.status_text and "bwv66.6" in panel.piece_button.text
    generate_and_wait(app)
    assert "bwv66.6" in app.takes.takes[0].label


def test_an_idle_window_sleeps_and_wakes_on_input(app):
    run_until(app, lambda: app.idle, what="idleness")
    drawn, started = app.frames_drawn, time.monotonic()
    while time.monotonic() - started < 2.0:
        app.step()
    assert app.frames_drawn - drawn <= 12  # at most a few frames a second, not 60
    pygame.event.post(pygame.event.Event(pygame.MOUSEMOTION, pos=(400, 400), rel=(1, 1), buttons=(0, 0, 0)))
    app.step()
    assert not app.idle  # input wakes it at once
