"""Every dialog, menu and tooltip is drawn above the piano roll, and takes the clicks over it.

Each test opens one the way a user would, draws a frame and reads the frame's pixels: where the
element lies over the roll, the window shows the element's own pixels, not the roll's. The
frames are saved under the test's tmp folder, to look at.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pygame
import pytest

from studio.app import App
from studio.automation import click, move, press, run_until
from tests.test_studio import generate_and_wait

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def app(tmp_path, tiny_word_checkpoint):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for suffix in (".json", ".safetensors"):
        shutil.copy(tiny_word_checkpoint.with_suffix(suffix), folder / f"tiny{suffix}")
    app = App(size=(1280, 800), checkpoints_dir=folder, data_root=ROOT / "data", home=tmp_path / "home")
    run_until(app, lambda: app.generate.loaded is not None, what="the model")
    app.generate.sampling.words.set_value(96)
    generate_and_wait(app)
    yield app
    app.close()


def overlap_with_roll(app: App, element) -> pygame.Rect:
    """Where ``element`` lies over the roll, inside its few pixels of translucent shadow."""
    shadow = getattr(element, "shadow_width", 0) + 2
    area = element.rect.inflate(-2 * shadow, -2 * shadow).clip(app.generate.piano_roll.rect)
    assert area.w > 10 and area.h > 10, f"{element} does not lie over the roll"
    return area


MAGENTA = (255, 0, 255, 255)


def assert_drawn_on_top(app: App, element, frame: Path, area: pygame.Rect | None = None) -> None:
    """Nothing of the roll shows through ``element``: with the roll's surface painted magenta and
    the UI drawn again, no magenta pixel is left where the element lies over the roll."""
    app.step()
    pygame.image.save(app.window, str(frame))
    area = area or overlap_with_roll(app, element)
    roll = app.generate.piano_roll
    roll.image.fill(MAGENTA)
    app.manager.draw_ui(app.window)
    try:
        showing = [
            (x, y)
            for x in range(area.left, area.right, 3)
            for y in range(area.top, area.bottom, 3)
            if app.window.get_at((x, y)) == MAGENTA
        ]
        assert not showing, f"the roll shows through {element} at {showing[:5]}"
        outside = roll.rect.move(0, 0)
        assert any(  # the test can fail: outside the element, the magenta roll does show
            app.window.get_at((x, y)) == MAGENTA
            for x in range(outside.left, outside.right, 5)
            for y in range(outside.top, outside.bottom, 5)
            if not area.collidepoint(x, y)
        )
    finally:
        roll.invalidate()
        app.step()


def test_save_midi_dialog_is_above_the_roll_and_takes_its_clicks(app, tmp_path):
    click(app, app.transport.save_midi_button.rect.center)
    dialog = app.transport._dialog
    assert dialog is not None and dialog.alive()
    assert_drawn_on_top(app, dialog, tmp_path / "save_midi.png")
    view = app.generate.piano_roll.view_start
    point = overlap_with_roll(app, dialog).center
    click(app, point)  # on the dialog, over the roll: the roll does not pan or seek
    assert app.generate.piano_roll.view_start == view and app.transport.player.state == "stopped"


@pytest.mark.parametrize("opener", ["save_wav", "ctrl_s", "open", "soundfont"])
def test_every_file_dialog_is_above_the_roll(app, tmp_path, opener):
    if opener == "ctrl_s":
        press(app, pygame.K_s, pygame.KMOD_CTRL)
    else:
        click(app, getattr(app.transport, f"{opener}_button").rect.center)
    dialog = app.transport._dialog
    assert dialog is not None and dialog.alive()
    assert_drawn_on_top(app, dialog, tmp_path / f"{opener}.png")


def test_the_replace_prompt_is_above_the_roll(app, tmp_path):
    path = tmp_path / "keep.mid"
    path.write_bytes(b"precious")
    app.transport._open_dialog("midi", "Save MIDI", path)
    app.transport._picked(path)
    confirm = app.transport._confirm
    assert_drawn_on_top(app, confirm, tmp_path / "replace.png")
    click(app, overlap_with_roll(app, confirm).bottomleft)  # a click beside its buttons answers nothing
    assert path.read_bytes() == b"precious"


def test_the_error_window_is_above_the_roll(app, tmp_path):
    app.generate.show_error("bwv66.mid: no notes on any non-drum track")
    windows = app.manager.get_window_stack().get_full_stack()
    assert windows and windows[-1].window_display_title == "Something went wrong"
    assert_drawn_on_top(app, windows[-1], tmp_path / "error.png")


def test_the_instrument_menu_opens_above_the_roll_with_every_choice(app, tmp_path):
    menu = app.transport.instrument_menu
    click(app, menu.rect.center)
    options = menu.current_state.options_selection_list
    texts = [item["text"] for item in options.item_list]
    assert texts == ["Piano", "Harpsichord", "Organ", "Choir", "Strings"]
    assert_drawn_on_top(app, options, tmp_path / "instruments.png")
    organ = next(item["button_element"] for item in options.item_list if item["text"] == "Organ")
    click(app, organ.rect.center)
    run_until(app, lambda: app.settings.instrument == "Organ", what="the choice")


def test_a_tooltip_is_drawn_above_everything(app, tmp_path):
    button = app.generate.regenerate_button  # the sidebar's button nearest the roll
    button.enable()
    move(app, button.rect.center)
    run_until(app, lambda: button.tool_tip is not None, what="the tooltip")
    assert_drawn_on_top(app, button.tool_tip, tmp_path / "tooltip.png")


def test_the_piece_browser_is_above_the_roll(app, tmp_path):
    click(app, app.generate.piece_button.rect.center)
    assert_drawn_on_top(app, app.generate.browser, tmp_path / "browser.png")


def test_the_rules_window_is_above_the_roll(app, tmp_path):
    click(app, app.generate.rules_button.rect.center)
    assert_drawn_on_top(app, app.generate.rules_window, tmp_path / "rules.png")


def test_the_delete_prompt_is_above_the_roll(app, tmp_path):
    item = app.takes_panel.list.item_list[0]["button_element"]
    click(app, item.rect.center)
    click(app, app.takes_panel.delete_button.rect.center)
    assert_drawn_on_top(app, app.takes_panel.confirm, tmp_path / "delete.png")
