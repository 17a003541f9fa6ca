"""The studio, driven headless through real pygame events (SDL_VIDEODRIVER=dummy)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pygame
import pytest

from studio import engine as eng
from studio.app import MIN_SIZE, App
from studio.automation import choose, click, drag, press, run_until, start_generating
from studio.piano_roll import COLOURS

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints" / "chorales_small"


def copy_checkpoint(source: Path, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(source.with_suffix(suffix), (folder / name).with_suffix(suffix))
    return folder / name


def open_app(checkpoints: Path) -> App:
    """The studio on ``checkpoints``, with a home of its own beside them (settings and takes)."""
    app = App(size=(1280, 800), checkpoints_dir=checkpoints, data_root=ROOT / "data", home=checkpoints.parent / "home")
    run_until(app, lambda: app.generate.loaded is not None or "No checkpoint" in app.generate.status_text)
    return app


@pytest.fixture
def app(tmp_path, tiny_word_checkpoint):
    app = open_app(copy_checkpoint(tiny_word_checkpoint, tmp_path / "checkpoints", "tiny").parent)
    yield app
    app.close()


def generate_and_wait(app: App, button=None, panel=None) -> None:
    """Press Generate (or ``button``) of ``panel`` (the Generate tab's unless given) and wait for
    the job to be sent and to finish. (A tiny model's short take may finish within the click's own
    frames: "generating" is not waited for.)"""
    from studio.engine import Generate, GenerateCodes

    panel = panel or app.generate
    before = {id(job) for job in app.engine.received}

    def sent() -> bool:
        return any(isinstance(job, (Generate, GenerateCodes)) and id(job) not in before for job in app.engine.received)

    click(app, (button or panel.generate_button).rect.center)
    run_until(app, sent, what="the job to start")
    run_until(app, lambda: not panel.generating, what="the job to finish")


def pixel(app: App, note) -> tuple[int, int, int]:
    rect = app.generate.piano_roll.note_rect(note)
    return tuple(app.window.get_at(rect.center))[:3]


def test_moving_each_slider_changes_the_settings_the_engine_receives(app):
    panel = app.generate
    targets = {
        "temperature": 1.0,  # fraction of the slider's width to drag the handle to
        "words": 0.0,
        "top_k": 0.5,
        "top_p": 0.0,
    }
    for name, fraction in targets.items():
        slider = getattr(panel.sampling, name).slider
        left, right = slider.left_button.rect.right, slider.right_button.rect.left  # the track's ends
        start = slider.sliding_button.rect.center
        x = left + int(fraction * (right - left)) + (30 if fraction == 1.0 else -30 if fraction == 0.0 else 0)
        drag(app, start, (x, start[1]))
    generate_and_wait(app)
    received = app.engine.received[-1]
    assert isinstance(received, eng.Generate) and received.mode == "new"
    settings = received.settings
    assert settings == panel.settings()
    assert settings.temperature == pytest.approx(2.0, abs=0.05)
    assert settings.words == 32
    assert settings.top_k is not None and 30 <= settings.top_k <= 75
    assert settings.top_p == pytest.approx(0.5, abs=0.02)
    assert panel.sampling.temperature.value_label.text == f"{settings.temperature:.2f}"


def test_new_piece_generates_notes_and_the_canvas_shows_them(app):
    generate_and_wait(app)
    primer, generated = app.generate.result
    assert not primer.notes and generated.notes
    assert app.generate.piano_roll.generated == generated.notes
    assert "Finished" in app.generate.status_text or "Stopped at the length limit" in app.generate.status_text
    app.step()
    visible = [
        n for n in generated.notes if app.generate.piano_roll.notes_rect.contains(app.generate.piano_roll.note_rect(n))
    ]
    assert visible
    assert sum(pixel(app, n) == COLOURS["generated"] for n in visible) >= len(visible) // 2


def test_the_voice_rules_box_constrains_the_take_and_is_remembered(app):
    from bench.metrics import piece_features

    panel = app.generate
    assert panel.sampling.voice_rules.get_state()  # on by default
    generate_and_wait(app)
    constrained = piece_features(panel.result[1])
    assert constrained.max_sounding <= 4 and constrained.parallels == 0.0
    click(app, panel.sampling.voice_rules.rect.center)
    assert panel.settings().rules is None
    assert json.loads(app.settings.path.read_text())["voice_rules"] is False
    for _ in range(8):  # the tiny model alone breaks the rules, once a take runs long enough to
        generate_and_wait(app)
        assert app.engine.received[-1].settings.rules is None
        free = piece_features(panel.result[1])
        if free.max_sounding > 4 or free.parallels > 0:
            break
    assert free.max_sounding > 4 or free.parallels > 0


def set_slider(app: App, slider, share: float) -> float:
    """Drag ``slider``'s handle to ``share`` of its track (0: the left end) with the mouse; its value."""
    track = slider.slider.rect.inflate(-2 * slider.slider.rect.h, 0)  # between the arrow buttons
    start = slider.slider.sliding_button.rect.center
    drag(app, start, (track.x + round(share * track.w), start[1]))
    return slider.value


def test_the_rules_window_sets_key_range_and_repeats_and_the_take_obeys_them(app):
    from bench.metrics import piece_features
    from tokenizer.keys import scale_of

    panel = app.generate
    click(app, panel.rules_button.rect.center)
    window = panel.rules_window
    assert window is not None and window.alive()
    d_major = next(item for item in window.keys.item_list if item["text"] == "D major")
    click(app, d_major["button_element"].rect.center)
    assert set_slider(app, window.weight, 0.0) == 0.0  # "never"
    assert window.weight.value_label.text == "never"
    lowest = set_slider(app, window.lowest, 0.35)
    highest = set_slider(app, window.highest, 0.6)
    assert 40 < lowest < highest < 90
    saved = json.loads(app.settings.path.read_text())
    assert (saved["key"], saved["out_of_key_weight"], saved["lowest"], saved["highest"]) == (
        "D major",
        0.0,
        int(lowest),
        int(highest),
    )
    assert "D major (other notes never)" in panel.status_text
    pitches = []
    for _ in range(8):  # the tiny model's pieces end after their first phrase: takes until there are notes to judge
        generate_and_wait(app)
        rules = app.engine.received[-1].settings.rules
        assert (rules.key, rules.lowest, rules.highest, rules.max_voices) == ("D major", int(lowest), int(highest), 4)
        pitches += [note.pitch for note in panel.result[1].notes]
        assert piece_features(panel.result[1]).max_sounding <= 4
        if len(pitches) > 10:
            break
    assert len(pitches) > 10
    assert min(pitches) >= lowest and max(pitches) <= highest  # what the roll shows obeys the range
    assert scale_of("D major")[[p % 12 for p in pitches]].all()


def test_the_rules_window_refuses_a_range_with_no_note_of_the_key_and_keeps_the_last_good_rules(app):
    from studio.rules_window import APPLIES

    panel = app.generate
    click(app, panel.rules_button.rect.center)
    window = panel.rules_window
    inner = window.get_container().get_rect()
    assert window.message.text == APPLIES and inner.bottom - window.message.rect.bottom <= 8  # no empty band
    c_major = next(item for item in window.keys.item_list if item["text"] == "C major")
    click(app, c_major["button_element"].rect.center)
    set_slider(app, window.weight, 0.0)
    good = app.settings.rules()
    window.lowest.set_value(61)  # C#4 alone: no note of C major
    window.highest.set_value(61)
    window._apply()
    assert "holds no note of C major" in window.message.text
    assert app.settings.rules() == good


def test_the_rules_window_asks_for_bar_form_and_the_next_take_is_sent_with_it(app):
    panel = app.generate
    assert panel.settings().bar_form is None  # as Bach: drawn for each new piece
    click(app, panel.rules_button.rect.center)
    window = panel.rules_window
    assert window.bar_form["bach"].is_selected and not window.bar_form["always"].is_selected
    click(app, window.bar_form["always"].rect.center)
    assert window.bar_form["always"].is_selected and not window.bar_form["bach"].is_selected
    assert json.loads(app.settings.path.read_text())["bar_form"] == "always"
    assert "opening sung again" in panel.status_text and panel.rules_button.text == "Rules •"
    generate_and_wait(app)
    assert app.engine.received[-1].settings.bar_form is True
    click(app, panel.reset_button.rect.center)  # Defaults: as Bach again
    assert app.settings.bar_form == "bach" and panel.settings().bar_form is None


def test_continue_keeps_the_primer_notes_in_the_primer_colour(app, chorales):
    panel = app.generate
    click(app, panel.mode_buttons["continue"].rect.center)
    generate_and_wait(app)
    primer, generated = panel.result
    name = primer.name
    expected = chorales.piece(name).cropped(0, 8 * 4)
    assert primer.notes == expected.notes and generated.notes
    app.step()
    inside = [n for n in primer.notes if panel.piano_roll.notes_rect.contains(panel.piano_roll.note_rect(n))]
    assert inside and all(pixel(app, n) == COLOURS["primer"] for n in inside[:10])
    assert panel.retry_button.is_enabled


def test_retry_is_an_action_that_keeps_the_primer_and_gives_a_different_continuation(app):
    panel = app.generate
    assert not panel.retry_button.is_enabled  # nothing to retry yet
    click(app, panel.sampling.random_seed.rect.center)  # random seeds off: Retry still draws a new one
    click(app, panel.mode_buttons["continue"].rect.center)
    generate_and_wait(app)
    first_primer, first = panel.result
    first_seed = app.engine.received[-1].settings.seed
    generate_and_wait(app, panel.retry_button)
    second_primer, second = panel.result
    assert app.engine.received[-1].mode == "retry"
    assert app.engine.received[-1].settings.seed != first_seed
    assert second_primer.notes == first_primer.notes
    assert second.notes != first.notes


def test_g_generates_and_escape_stops_keeping_the_partial_piece(app):
    panel = app.generate
    slider = panel.sampling.words.slider
    drag(app, slider.sliding_button.rect.center, (slider.rect.right - 5, slider.sliding_button.rect.centery))
    assert panel.settings().words == 2048
    for _ in range(10):  # the tiny model may end its piece before Escape arrives: then another take
        start_generating(app, lambda: press(app, pygame.K_g))
        press(app, pygame.K_ESCAPE)
        run_until(app, lambda: not panel.generating)
        if panel.status_text.startswith("Stopped"):
            break
    _, generated = panel.result
    assert generated.notes and panel.status_text.startswith("Stopped")
    assert panel.piano_roll.generated == generated.notes
    assert panel.generate_button.text == "Generate"


def test_frames_keep_coming_while_the_shipped_model_generates(tmp_path):
    app = open_app(copy_checkpoint(SHIPPED, tmp_path / "checkpoints", "small").parent)
    try:
        app.generate.sampling.words.set_value(256)
        click(app, app.generate.generate_button.rect.center)
        run_until(app, lambda: app.generate.generating)
        first = len(app.frame_times)
        run_until(app, lambda: not app.generate.generating)
        during = np.array(app.frame_times[first:])
        assert len(during) > 10
        assert np.percentile(during, 95) < 0.100
    finally:
        app.close()


def test_no_checkpoint_says_how_to_train_one(tmp_path):
    app = open_app(tmp_path / "empty")
    try:
        assert "python -m models.train_gpt" in app.generate.status_text
        assert not app.generate.generate_button.is_enabled
        press(app, pygame.K_g)  # nothing happens, nothing breaks
        assert not app.generate.generating
    finally:
        app.close()


def test_a_checkpoint_that_fails_to_load_gives_a_message_and_the_menu_stays_usable(tmp_path, tiny_word_checkpoint):
    folder = tmp_path / "checkpoints"
    broken = copy_checkpoint(tiny_word_checkpoint, folder, "a_broken")
    broken.with_suffix(".safetensors").write_bytes(b"not weights")
    copy_checkpoint(tiny_word_checkpoint, folder, "b_good")
    app = App(size=(1280, 800), checkpoints_dir=folder, data_root=ROOT / "data")
    try:
        run_until(app, lambda: "a_broken.safetensors" in app.generate.status_text)
        assert app.generate.loaded is None
        good = next(c.label for c in app.generate.checkpoints if c.name == "b_good")
        choose(app, app.generate.checkpoint_menu, good)
        run_until(app, lambda: app.generate.loaded is not None)
        generate_and_wait(app)
        assert app.generate.result[1].notes
    finally:
        app.close()


def test_a_generation_error_is_shown_and_the_ui_returns_to_idle(tmp_path, tiny_word_checkpoint):
    folder = tmp_path / "checkpoints"
    path = copy_checkpoint(tiny_word_checkpoint, folder, "nodata")
    info = json.loads(path.with_suffix(".json").read_text())
    info["model_card"]["data"] = str(tmp_path / "gone")
    path.with_suffix(".json").write_text(json.dumps(info))
    app = open_app(folder)
    try:
        click(app, app.generate.mode_buttons["continue"].rect.center)
        click(app, app.generate.generate_button.rect.center)
        run_until(app, lambda: "dataset is not here" in app.generate.status_text)
        assert not app.generate.generating and app.generate.generate_button.is_enabled
        assert app.generate.generate_button.text == "Generate"
    finally:
        app.close()


def test_closing_the_window_while_generating_stops_the_worker_cleanly(app):
    app.generate.sampling.words.set_value(2048)
    click(app, app.generate.generate_button.rect.center)
    run_until(app, lambda: app.generate.generating)
    pygame.event.post(pygame.event.Event(pygame.QUIT))
    app.run()  # returns once the window is closed; close() joins the worker
    assert not app.engine.alive


def test_a_crashed_worker_is_reported_restarted_and_reloads_the_model(app):
    app.generate.sampling.words.set_value(2048)
    for _ in range(5):
        first_load, first_pid = app.generate.loaded, app.engine.pid
        start_generating(app, lambda: click(app, app.generate.generate_button.rect.center), notes=3)
        os.kill(first_pid, signal.SIGKILL)  # as the out-of-memory killer would
        run_until(app, lambda: not app.generate.generating, what="the crash to be noticed")
        if "engine process stopped (exit code -9)" in app.generate.status_text:
            break

        # the tiny model's take ended by itself just before the kill: wait for the restart, try again
        def reloaded(old=first_load) -> bool:
            return app.generate.loaded is not None and app.generate.loaded is not old

        run_until(app, reloaded, what="the model to load again")
    assert "engine process stopped (exit code -9)" in app.generate.status_text
    kept = app.takes.takes[0]  # the notes written before the crash are a stopped take
    assert kept.stopped and len(kept.generated.notes) >= 3 and app.generate.result[1] == kept.generated
    run_until(app, lambda: app.generate.loaded is not first_load, what="the model to load again")
    assert app.engine.pid not in (None, first_pid)
    app.generate.sampling.words.set_value(64)
    generate_and_wait(app)
    assert app.generate.result is not None and app.generate.result[1].notes


def test_a_worker_that_cannot_start_is_reported_once(tmp_path):
    engine = eng.Engine(data_root=ROOT / "data")

    def refuse() -> None:
        raise RuntimeError("no processes left\nmore detail")

    engine._process.start = refuse
    engine.start()
    engine._starter.join(5)
    assert [e.message for e in engine.poll()] == ["the engine process could not start: RuntimeError: no processes left"]
    assert engine.poll() == [] and not engine.alive
    engine.shutdown(timeout=1)


def test_the_worker_finds_a_checkpoints_data_from_any_folder(tmp_path, monkeypatch):
    from studio.engine.worker import Worker

    monkeypatch.chdir(tmp_path)  # the studio started from elsewhere: data/chorales is not under the cwd
    worker = Worker(lambda event: None, None, ROOT / "data")
    dataset = worker._dataset_of({"model_card": {"data": "data/chorales"}})
    assert dataset is not None and "bwv66.6" in dataset.names()
    assert worker._dataset_of({"model_card": {"data": str(tmp_path / "nowhere")}}) is None


def test_the_roll_does_not_redraw_everything_each_frame(app):
    generate_and_wait(app)
    roll = app.generate.piano_roll
    app.step()
    before = roll.full_redraws
    for _ in range(20):
        app.step()
    assert roll.full_redraws == before
    press(app, pygame.K_RIGHT)  # scrolling does redraw
    assert roll.full_redraws == before + 1


def test_studio_modules_do_not_import_torch():
    code = "import sys, studio.app, studio.engine, studio.engine.worker; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.parametrize("tab", ["generate", "codebooks"])
def test_smoke_mode_exits_zero_and_writes_a_screenshot(tmp_path, tab):
    shot = tmp_path / f"{tab}.png"
    home = tmp_path / "home"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy", "CANTOR_HOME": str(home)}
    result = subprocess.run(
        [sys.executable, "main.py", "--smoke", "--tab", tab, "--screenshot", str(shot)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1].startswith("smoke test passed")
    assert shot.stat().st_size > 10_000
    width, height = pygame.image.load(str(shot)).get_size()
    assert width >= MIN_SIZE[0] and height >= MIN_SIZE[1]
    assert not (home / "takes.json").exists(), "a smoke run keeps its takes out of the user's home"
