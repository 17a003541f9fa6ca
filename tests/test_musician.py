"""What a musician meets in the studio: keys, lengths in bars, Retry, opened files, the picker."""

from __future__ import annotations

import pytest

from studio.automation import choose, click, run_until
from tests.test_studio import copy_checkpoint, generate_and_wait, open_app


@pytest.fixture
def app(tmp_path, tiny_task_checkpoint):
    app = open_app(copy_checkpoint(tiny_task_checkpoint, tmp_path / "checkpoints", "tiny_tasks").parent)
    yield app
    app.close()


def test_a_key_asked_for_is_the_key_of_the_new_piece_and_is_said_beside_the_menu(app):
    panel = app.generate
    assert panel.key.label.text == "keys as Bach's"
    choose(app, panel.key.menu, "D major")
    app.step()
    assert panel.settings().key == "D major" and panel.key.label.text == "D major (asked)"
    generate_and_wait(app)
    assert app.engine.received[-1].settings.key == "D major"
    assert panel.result[1].key == "D major"  # the key word the model was given
    assert "Finished in D major" in panel.status_text or "Stopped at the length limit" in panel.status_text


def test_every_key_line_fits_beside_the_menu(app):
    """The longest key and source ("F# minor (as Bach)") and each mode's default are drawn whole."""
    from tokenizer.keys import KEYS

    key = app.generate.key
    room = key.label.rect.w - 8  # the button's border and padding
    lines = set()
    for mode in ("new", "continue", "harmonize"):
        key.show(mode)
        lines.add(key.label.text)
        for name in KEYS:
            for source in ("as Bach", "primer", "melody", "piece", "file"):
                key.show(mode, name, source)
                lines.add(key.label.text)
    assert "F# minor (as Bach)" in lines and "the melody's key" in lines
    too_wide = [line for line in lines if key.label.font.size(line)[0] > room]
    assert not too_wide, f"cut off beside the key menu: {too_wide[:5]}"


def test_picking_the_chosen_key_again_closes_the_menu_and_keeps_the_key(app):
    panel = app.generate
    choose(app, panel.key.menu, "D major")
    app.step()
    choose(app, panel.key.menu, "D major")  # the option already chosen
    run_until(app, lambda: panel.key.menu.current_state is panel.key.menu.menu_states["closed"], what="the menu")
    assert panel.settings().key == "D major" and panel.key.label.text == "D major (asked)"


def test_the_word_budget_says_its_bars_and_playing_time(app):
    label = app.generate.sampling.words.value_label.text
    words, bars, time = label.split(" · ")
    assert int(words) == 768 and bars == "16 bars" and time.count(":") == 1


def test_retry_continues_the_primer_on_the_roll_and_is_off_without_one(app, chorales):
    panel = app.generate
    click(app, panel.mode_buttons["continue"].rect.center)
    generate_and_wait(app)
    primer = panel.result[0]
    assert primer.notes and panel.retry_button.is_enabled
    generate_and_wait(app, panel.retry_button)
    job = app.engine.received[-1]
    assert job.mode == "retry" and sorted(job.primer.notes) == sorted(primer.notes)
    while app.takes.takes:  # every take deleted: nothing to retry
        app.takes_panel.selected = app.takes.takes[0].number
        app.takes_panel.delete_selected()
    assert not panel.retry_button.is_enabled


def test_a_file_opened_in_harmonize_mode_is_harmonized_and_shown_from_its_start(app, chorales):
    panel = app.generate
    click(app, panel.mode_buttons["harmonize"].rect.center)
    piece = chorales.piece("bwv66.6")
    panel.piano_roll.set_view(200.0, panel.piano_roll.steps_visible)
    panel.open_piece(piece)
    assert panel.mode == "harmonize" and "harmonize its top line" in panel.status_text
    assert panel.piano_roll.view_start == 0.0
    click(app, panel.mode_buttons["continue"].rect.center)
    assert not panel.primer_slider.slider.is_enabled  # an opened file is continued whole


def test_the_checkpoint_picker_finds_a_model_trained_while_the_studio_runs(app, tiny_task_checkpoint):
    panel = app.generate
    before = [c.label for c in panel.checkpoints]
    copy_checkpoint(tiny_task_checkpoint, panel.checkpoints_dir, "trained_meanwhile")
    click(app, panel.checkpoint_menu.rect.center)
    run_until(app, lambda: len(panel.checkpoints) == len(before) + 1, what="the rescan")
    options = [option[0] for option in panel.checkpoint_menu.options_list]
    assert any(option.startswith("trained_meanwhile") for option in options)


def test_a_file_s_tempo_belongs_to_the_file_and_a_new_piece_plays_at_the_studio_s(app, chorales):
    from dataclasses import replace

    transport, own = app.transport, app.settings.bpm
    piece = replace(chorales.piece("bwv66.6"), tempos=[(0, 60.0)])
    transport._opened(piece)
    assert transport.bpm == 60 and app.settings.bpm == own  # not saved as the studio's tempo
    click(app, app.generate.mode_buttons["new"].rect.center)
    generate_and_wait(app)
    assert transport.bpm == own


def test_the_open_dialog_lists_music_files_and_enter_on_a_full_path_opens_it(app, chorales, tmp_path):
    import pygame
    import pygame_gui

    from tokenizer.writers import write_midi

    path = write_midi(chorales.piece("bwv66.6").cropped(0, 32), tmp_path / "mine.mid")
    transport = app.transport
    transport.ask_open()
    dialog = transport._dialog
    assert ".mid" in dialog.allowed_suffixes and ".wav" not in dialog.allowed_suffixes
    event = pygame.event.Event(pygame_gui.UI_TEXT_ENTRY_FINISHED, text=str(path), ui_element=dialog.file_path_text_line)
    assert transport.process_event(event)
    run_until(app, lambda: app.generate.user_primer is not None, what="the file")
    assert app.settings.open_folder == str(tmp_path)


def test_a_take_s_label_fits_the_list_and_its_seed_is_said_when_picked(app):
    from studio.takes import LABEL_CHARS, Take
    from tokenizer.notes import NoteSequence

    long = Take(
        12,
        "continue",
        {"seed": 557742711, "primer": "a very long file name.mid"},
        "tiny",
        NoteSequence(),
        NoteSequence(),
        True,
    )
    assert (
        len(long.label) <= LABEL_CHARS
        and long.label.startswith("#12 continue a")
        and "…" in long.label
        and long.label.endswith("(stopped)")
    )
    generate_and_wait(app)
    take = app.takes.takes[0]
    app._show_take(take)
    assert f"seed {take.settings['seed']}" in app.generate.status_text


def test_rules_set_weeks_ago_are_shown_on_the_main_panel_and_defaults_resets_them(tmp_path, tiny_task_checkpoint):
    import json

    checkpoints = copy_checkpoint(tiny_task_checkpoint, tmp_path / "checkpoints", "tiny_tasks").parent
    home = checkpoints.parent / "home"
    home.mkdir()
    (home / "settings.json").write_text(json.dumps({"key": "D major", "lowest": 48}))
    app = open_app(checkpoints)
    try:
        panel = app.generate
        assert panel.rules_button.text == "Rules •"
        assert "rules in force" in panel.status_text and "D major" in panel.status_text
        click(app, panel.reset_button.rect.center)
        assert app.settings.key == "" and app.settings.lowest == 21 and panel.rules_button.text == "Rules…"
        assert json.loads((home / "settings.json").read_text())["key"] == ""
    finally:
        app.close()


def test_the_open_dialog_hides_hidden_folders(app, tmp_path):
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "scores").mkdir()
    app.settings.open_folder = str(tmp_path)
    app.transport.ask_open()
    names = [item[0] if isinstance(item, tuple) else item for item in app.transport._dialog.current_file_list]
    assert "scores" in names and ".hidden" not in names


def test_the_piece_browser_lists_chorales_by_title_and_finds_them_by_it(app, tmp_path):
    import pygame

    from studio.automation import type_text
    from tokenizer.titles import chorale_titles

    panel = app.generate
    titles = panel.loaded.titles
    assert titles and titles == chorale_titles(panel.piece_names)  # music21's titles, where it has them
    name, title = next(iter(titles.items()))
    click(app, panel.piece_button.rect.center)
    browser = panel.browser
    listed = [item["text"] for item in browser.list.item_list]
    assert f"{name} · {title}" in listed
    pygame.image.save(app.window, tmp_path / "browser.png")
    type_text(app, browser.search, title)  # found by its title; Return picks the first match
    assert titles.get(panel.piece_name) == title and not browser.alive()


def test_save_offers_a_name_with_the_take_number_and_key_and_an_opened_file_keeps_its_own(app, tmp_path, chorales):
    from pathlib import Path

    from tokenizer.writers import write_midi

    panel = app.generate
    choose(app, panel.key.menu, "D major")
    app.step()
    generate_and_wait(app)
    number = app.takes.takes[-1].number
    click(app, app.transport.save_midi_button.rect.center)
    offered = Path(app.transport._dialog.current_file_path).name
    assert offered == f"take{number}_new_D_major.mid"
    app.transport._dialog.kill()

    path = write_midi(chorales.piece("bwv66.6").cropped(0, 16), tmp_path / "bwv66.6.mid")
    app.transport.open_path(path)
    run_until(app, lambda: panel.result is not None and panel.result[0].name == "bwv66.6.mid", what="the file")
    click(app, app.transport.save_midi_button.rect.center)
    assert Path(app.transport._dialog.current_file_path).name == "bwv66.6.mid"
