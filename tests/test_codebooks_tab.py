"""The Codebooks tab, driven headless through real pygame events."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pygame
import pytest

from models.checkpoint import save_checkpoint
from models.codebooks import Codebooks
from models.vqvae import VQVAE, VQVAEConfig
from studio.app import App
from studio.automation import choose, click, press, run_until, type_text
from studio.codebooks_panel import THUMBNAIL_GAP, thumbnail_grid
from tests.test_codebooks import SHIPPED_VQVAE, make_prior
from tests.test_studio import generate_and_wait
from tokenizer import Note
from tokenizer.slices import slices_to_piece

ROOT = Path(__file__).resolve().parent.parent


def copy(stem: Path, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".json", ".safetensors"):
        shutil.copy(stem.with_suffix(suffix), folder / (stem.name + suffix))


def open_tab(folder: Path, home: Path) -> App:
    app = App(size=(1280, 800), checkpoints_dir=folder, data_root=ROOT / "data", home=home)
    click(app, app.tabs.get_tab(1)["button"].rect.center)
    assert not app.on_generate_tab
    return app


@pytest.fixture
def app(tmp_path):
    folder = tmp_path / "checkpoints"
    copy(SHIPPED_VQVAE, folder)
    make_prior(folder, block=64)
    app = open_tab(folder, tmp_path / "home")
    run_until(app, lambda: app.codebooks.reconstruction is not None, what="the first reconstruction")
    yield app
    app.close()


def test_picking_a_piece_shows_both_rolls_and_the_pipelines_own_f1(app, chorales):
    panel = app.codebooks
    name = chorales.names()[1]
    click(app, panel.piece_button.rect.center)
    browser = panel.browser
    type_text(app, browser.search, name)  # Return picks the first match
    run_until(app, lambda: panel.reconstruction.original.name == name)
    assert not browser.alive()
    pipeline = Codebooks(SHIPPED_VQVAE)
    slices, _ = pipeline.slices_of(chorales.piece(name))
    expected = pipeline.scores(slices, pipeline.decode_slices(pipeline.encode(slices)))
    assert panel.reconstruction.onset_f1 == pytest.approx(expected["onset_f1"])
    assert f"Onset F1 {expected['onset_f1']:.3f}" in panel.f1_label.text
    original_notes = sum(len(v) for v in panel.original_roll.layers.values())
    assert original_notes == len(chorales.piece(name).as_played().notes)
    assert sum(len(v) for v in panel.recon_roll.layers.values()) == len(panel.reconstruction.reconstruction.notes)


def test_editing_a_code_changes_the_decoded_quarter(app):
    panel = app.codebooks
    before = panel.reconstruction.codes.copy()
    x = int(panel.recon_roll.step_to_x(1))  # quarter 1, first eighth
    y = panel.grid.rect.y + panel.grid.rect.h * 3 // 16  # the second band from the top
    click(app, (x, y))
    quarter, position = panel.grid.selected
    assert quarter == 0 and position == 6 * 2
    press(app, pygame.K_UP)
    run_until(app, lambda: not np.array_equal(panel.reconstruction.codes, before))
    after = panel.reconstruction.codes
    assert after[0, position] == (before[0, position] + 1) % 16
    assert np.array_equal(np.delete(after.reshape(-1), position), np.delete(before.reshape(-1), position))
    pipeline = Codebooks(SHIPPED_VQVAE)
    old_slice, new_slice = pipeline.decode_slices(before[:1]), pipeline.decode_slices(after[:1])
    assert not np.allclose(old_slice, new_slice)
    expected = slices_to_piece(pipeline.decode_slices(after), 4).cropped(0, 4).notes
    assert panel.reconstruction.reconstruction.cropped(0, 4).notes == expected


@pytest.mark.parametrize("mode", ["new", "continue"])
def test_new_and_continue_generate_the_requested_quarters(app, mode):
    panel = app.codebooks
    panel.quarters.set_value(5)
    click(app, panel.mode_buttons[mode].rect.center)
    generate_and_wait(app, panel=panel)
    finished = app.engine.received[-1]
    assert finished.mode == mode and finished.quarters == 5
    primer, generated = panel.generated
    assert panel.status_text.startswith("Done")
    assert app.takes.takes[0].mode == f"prior {mode}"
    if mode == "continue":
        assert primer.notes and min(n.start for n in generated.notes) >= 4 * 4
    assert generated.total_steps <= (4 * 4 if mode == "continue" else 0) + 5 * 4 + 4


def test_stop_keeps_the_partial_result(app):
    panel = app.codebooks
    panel.quarters.set_value(96)
    click(app, panel.generate_button.rect.center)
    run_until(app, lambda: panel.generating and panel.generated is not None)
    press(app, pygame.K_ESCAPE)
    run_until(app, lambda: not panel.generating)
    assert panel.status_text.startswith("Stopped")
    assert panel.generated is not None and app.takes.takes[0].stopped


def test_missing_checkpoints_give_the_message_and_the_studio_works(tmp_path, tiny_word_checkpoint):
    folder = tmp_path / "checkpoints"
    copy(tiny_word_checkpoint, folder)
    app = open_tab(folder, tmp_path / "home")
    try:
        app.step()
        assert "python -m models.train_vqvae" in app.codebooks.status_text
        click(app, app.tabs.get_tab(0)["button"].rect.center)
        run_until(app, lambda: app.generate.loaded is not None)
    finally:
        app.close()


def test_a_mismatched_pair_gives_a_clear_message(tmp_path):
    folder = tmp_path / "checkpoints"
    copy(SHIPPED_VQVAE, folder)
    make_prior(folder, codes=32)
    app = open_tab(folder, tmp_path / "home")
    try:
        run_until(app, lambda: "matching pair" in app.codebooks.status_text)
        assert app.codebooks.loaded is None
    finally:
        app.close()


def test_notes_outside_the_piano_are_counted_and_shown(app, chorales):
    piece = chorales.piece("bwv66.6").cropped(0, 16)
    piece.notes += [Note(10, 0, 4), Note(115, 4, 4)]
    app.codebooks.open_piece(piece)
    run_until(app, lambda: "2 notes outside 21-108" in app.codebooks.status_text)


def test_quick_arrow_presses_all_land(app):
    panel = app.codebooks
    before = panel.reconstruction.codes.copy()
    x, y = int(panel.recon_roll.step_to_x(5)), panel.grid.rect.y + panel.grid.rect.h // 16  # quarter 2, top band
    click(app, (x, y))
    quarter, position = panel.grid.selected
    for _ in range(5):  # faster than the engine re-decodes
        pygame.event.post(pygame.event.Event(pygame.KEYDOWN, key=pygame.K_UP, mod=0, unicode="", scancode=0))
    app.step()
    expected = (before[quarter, position] + 5) % 16
    assert panel.grid.codes[quarter, position] == expected  # the grid shows every press at once
    run_until(app, lambda: panel.reconstruction.codes[quarter, position] == expected and not app.engine.busy)
    assert panel.cell_label.text == f"quarter 2 · band 8 · first eighth · code {expected}"


def test_continuing_with_the_prior_draws_the_primer_and_shows_the_new_codes(app):
    panel = app.codebooks
    panel.quarters.set_value(4)
    click(app, panel.mode_buttons["continue"].rect.center)
    generate_and_wait(app, panel=panel)
    primer = panel.generated[0]
    assert panel.original_roll.primer == primer.notes and primer.notes  # the primer quarters are drawn
    primer_quarters = int(panel.primer_quarters.value)
    assert panel.grid.codes.shape == (primer_quarters + 4, 16)  # the generated piece's own codes
    assert np.array_equal(panel.grid.codes[:primer_quarters], panel.codes[:primer_quarters])
    assert not panel.listen_buttons["A"].is_enabled  # no original and rebuilt to compare for it
    assert "original" not in panel.original_roll.title


def test_a_prior_trained_on_another_vqvae_is_reported(tmp_path):
    folder = tmp_path / "checkpoints"
    copy(SHIPPED_VQVAE, folder)
    prior = make_prior(folder, block=64)
    card = json.loads(prior.with_suffix(".json").read_text())
    card["vqvae"] = "someone_elses_vqvae"
    prior.with_suffix(".json").write_text(json.dumps(card))
    app = open_tab(folder, tmp_path / "home")
    try:
        run_until(app, lambda: app.codebooks.loaded is not None)
        assert "trained on the codes of someone_elses_vqvae" in app.codebooks.status_text
    finally:
        app.close()


def test_picking_a_vqvae_brings_its_own_prior_and_shows_its_f1(tmp_path):
    folder = tmp_path / "checkpoints"
    copy(SHIPPED_VQVAE, folder)
    config = VQVAEConfig(codes=32, hidden=16, code_dim=8)
    card = {"kind": "vqvae", "vqvae_config": config.to_json(), "model_card": {"onset_f1": 0.5}}
    save_checkpoint(folder / "another_vqvae", VQVAE(config), card)
    make_prior(folder, codes=32, block=64, name="a_prior_for_another", vqvae="another_vqvae")
    make_prior(folder, codes=16, block=64, name="b_prior_for_chorales")
    app = open_tab(folder, tmp_path / "home")
    panel = app.codebooks
    try:
        run_until(app, lambda: panel.loaded is not None, what="the first pair")
        assert (panel.loaded.vqvae, panel.loaded.prior) == ("another_vqvae", "a_prior_for_another")
        assert "Ready: another_vqvae (32 codes, held-out onset F1 0.500), a_prior_for_another" in panel.status_text
        choose(app, panel.vqvae_menu, "chorales_vqvae_k16")
        run_until(app, lambda: panel.loaded.vqvae == "chorales_vqvae_k16", what="the picked pair")
        assert panel.loaded.prior == "b_prior_for_chorales"
        assert panel._menu_text(panel.prior_menu) == "b_prior_for_chorales"
        assert "Error" not in panel.status_text and "held-out onset F1" in panel.status_text
    finally:
        app.close()


@pytest.mark.parametrize("count", [16, 256, 512, 1024])
def test_the_explorer_fits_every_code_in_its_canvas(count):
    width, height = 140, 560
    label_h = 14 if count <= 32 else 0
    columns, thumb_w, thumb_h = thumbnail_grid(count, width, height, label_h)
    rows = -(-count // columns)
    assert columns * (thumb_w + THUMBNAIL_GAP) + THUMBNAIL_GAP <= width
    assert rows * (thumb_h + label_h + THUMBNAIL_GAP) <= height
    assert thumb_w >= 6 and thumb_w * 3 // 4 == thumb_h  # as wide as a pattern's 16 ticks by 12 pitches


def test_a_single_voice_stays_visible_in_a_thumbnail_a_few_pixels_high(app):
    """With 1024 codes a thumbnail is about 8 x 6 pixels for 16 ticks x 12 pitches; a voice on one
    pitch must still show at full brightness there, where averaging would fade it to a sixth."""
    explorer = app.codebooks.explorer
    voice, silence = np.zeros((12, 16)), np.zeros((12, 16))
    voice[7] = 1.0  # one pitch held over the eighth
    explorer.show_patterns([voice, silence], [(255, 0, 0)] * 2)
    lit, dark = (pygame.surfarray.array3d(t)[:, :, 1] for t in explorer._thumbnails_of_size(8, 6))
    assert (lit.max(axis=1) == 255).all() and (lit == 255).any(axis=0).sum() == 1  # one full row, every tick
    assert dark.max() == 0


def test_the_explorer_draws_each_code_of_the_loaded_vqvae(app):
    explorer = app.codebooks.explorer
    patterns = Codebooks(SHIPPED_VQVAE).code_patterns()
    assert len(explorer.patterns) == len(patterns) == 16
    app.step()
    frame = pygame.surfarray.array3d(app.window)
    columns, width, height = thumbnail_grid(16, explorer.rect.w - 4, explorer.rect.h - 24, 14)
    brightness = []
    for code in range(16):  # each code's thumbnail, inside its frame
        row, column = divmod(code, columns)
        x = explorer.rect.x + 2 + THUMBNAIL_GAP + column * (width + THUMBNAIL_GAP)
        y = explorer.rect.y + 22 + row * (height + 14 + THUMBNAIL_GAP)
        brightness.append(frame[x + 1 : x + width - 1, y + 1 : y + height - 1, 1].mean())
    sounding = patterns.reshape(16, -1).mean(axis=1)
    assert np.corrcoef(brightness, sounding)[0, 1] > 0.9  # bright where the code's pattern sounds


def test_the_code_under_the_pointer_is_shown_enlarged(app):
    explorer = app.codebooks.explorer
    voice = np.zeros((12, 16))
    voice[3, :8] = 1.0  # one pitch over the first half of the eighth
    explorer.show_patterns([np.zeros((12, 16)), voice], [(255, 0, 0)] * 2)
    explorer.highlight(1)
    surface = pygame.Surface(explorer.rect.size)
    explorer.paint(surface)
    cell = max(2, min(surface.get_width() - 12, 16 * 10) // 16)
    x, y = 6, surface.get_height() - 12 * cell - 22
    green = pygame.surfarray.array3d(surface)[:, :, 1]
    row = 12 - 1 - 3  # high notes on top
    assert green[x + cell // 2, y + row * cell + cell // 2] == 255  # the voice, a cell of 10 pixels
    assert green[x + 12 * cell, y + row * cell + cell // 2] == 0  # silent after half the eighth


def test_after_a_prior_piece_one_take_is_selected_everywhere(app):
    panel = app.codebooks
    panel.quarters.set_value(4)
    generate_and_wait(app, panel=panel)
    prior = app.takes.takes[-1]
    assert app.takes_panel.selected == prior.number  # the take the Codebooks roll shows
    click(app, app.tabs.get_tab(0)["button"].rect.center)
    app.step()
    assert app.on_generate_tab and app.takes_panel.selected is None  # the Generate roll shows no take
    item = app.takes_panel.list.item_list[0]
    assert not item["selected"]
    click(app, item["button_element"].rect.center)  # picked in the list: shown on the roll, and selected
    assert app.generate.piano_roll.generated == prior.generated.notes and app.takes_panel.selected == prior.number
    click(app, item["button_element"].rect.center)  # clicked again: still shown, still selected
    assert app.takes_panel.list.get_single_selection() is not None and app.takes_panel.selected == prior.number
