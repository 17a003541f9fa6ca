"""Harmonize and Regenerate in the studio, driven through real pygame events."""

from __future__ import annotations

import pygame
import pytest

from studio import engine as eng
from studio.automation import click, drag, run_until, type_text
from studio.piano_roll import COLOURS
from tests.test_studio import copy_checkpoint, generate_and_wait, open_app
from tokenizer.tasks import top_line
from tokenizer.writers import write_midi


@pytest.fixture
def app(tmp_path, tiny_task_checkpoint):
    app = open_app(copy_checkpoint(tiny_task_checkpoint, tmp_path / "checkpoints", "tiny_tasks").parent)
    yield app
    app.close()


def test_dragging_the_ruler_selects_bars_and_regenerate_rewrites_only_them(app):
    panel, roll = app.generate, app.generate.piano_roll
    generate_and_wait(app)
    before = panel.current_piece().combined()
    assert not panel.regenerate_button.is_enabled  # nothing selected yet
    y = roll.ruler_rect.centery
    drag(app, (round(roll.step_to_x(20)), y), (round(roll.step_to_x(40)), y))  # inside bars 2 and 3
    assert roll.selection == (16, 48)
    assert "Bars 2–3 selected" in panel.status_text
    app.step()
    mark = (round(roll.step_to_x(32)), roll.rect.y + 2)
    assert tuple(app.window.get_at(mark))[:3] == COLOURS["selection"]
    takes_before = len(app.takes.takes)
    generate_and_wait(app, panel.regenerate_button)
    job = app.engine.received[-1]
    assert job.mode == "regenerate" and job.gap == (16, 48)
    kept, new = panel.result
    assert sorted(kept.notes) == sorted(n for n in before.notes if not 16 <= n.start < 48)
    assert new.notes and all(16 <= n.start < 48 for n in new.notes)
    assert len(app.takes.takes) == takes_before + 1  # the earlier version stays a take
    earlier = next(t for t in app.takes.takes if t.mode == "new")
    assert sorted(earlier.primer.notes + earlier.generated.notes) == sorted(before.notes)
    click(app, (round(roll.step_to_x(8)), y))  # a click without a drag clears the selection
    assert roll.selection is None and not panel.regenerate_button.is_enabled


def test_harmonize_writes_voices_under_a_dropped_melody_and_keeps_it_exactly(app, chorales, tmp_path):
    panel = app.generate
    melody, _ = top_line(chorales.piece(chorales.names("test")[0]))
    melody_piece = chorales.piece(chorales.names("test")[0])
    path = write_midi(type(melody_piece)(notes=melody, steps_per_quarter=4), tmp_path / "tune.mid")
    pygame.event.post(pygame.event.Event(pygame.DROPFILE, file=str(path)))
    run_until(app, lambda: panel.user_primer is not None, what="the melody to open")
    click(app, panel.mode_buttons["harmonize"].rect.center)
    generate_and_wait(app)
    job = app.engine.received[-1]
    assert isinstance(job, eng.Generate) and job.mode == "harmonize"
    kept, lower = panel.result
    assert [(n.pitch, n.start, n.duration) for n in kept.notes] == [(n.pitch, n.start, n.duration) for n in melody]
    assert len(lower.notes) > len(melody)
    for note in lower.notes:
        assert all(note.pitch < m.pitch for m in melody if m.start < note.end and note.start < m.end), note
    app.step()
    roll = panel.piano_roll
    shown = [n for n in kept.notes if roll.notes_rect.contains(roll.note_rect(n))]
    assert shown and all(tuple(app.window.get_at(roll.note_rect(n).center))[:3] == COLOURS["primer"] for n in shown[:8])


def test_a_model_without_the_marker_words_says_so(tmp_path, tiny_word_checkpoint):
    app = open_app(copy_checkpoint(tiny_word_checkpoint, tmp_path / "checkpoints", "tiny").parent)
    try:
        click(app, app.generate.mode_buttons["harmonize"].rect.center)
        click(app, app.generate.generate_button.rect.center)
        run_until(app, lambda: "not trained to fill or harmonize" in app.generate.status_text, what="the message")
        assert not app.generate.generating and app.generate.generate_button.is_enabled
    finally:
        app.close()


def test_variations_grow_side_by_side_and_a_click_shows_one(tmp_path, tiny_word_checkpoint):
    from tests.test_studio import set_slider

    app = open_app(copy_checkpoint(tiny_word_checkpoint, tmp_path / "checkpoints", "tiny").parent)
    try:
        panel = app.generate
        set_slider(app, panel.sampling.words, 0.0)  # 32 words: quick
        assert set_slider(app, panel.variations, 0.45) == 4
        takes_before = len(app.takes.takes)
        generate_and_wait(app)
        job = app.engine.received[-1]
        assert job.settings.variations == 4
        thumbs, roll = panel.variations_strip.thumbnails, panel.piano_roll
        assert thumbs.visible and len(thumbs.pieces) == 4
        assert roll.rect.top >= thumbs.rect.bottom  # the roll made room: nothing hidden under the strip
        assert len(app.takes.takes) == takes_before + 4
        assert {t.settings["seed"] for t in app.takes.takes[-4:]} == {job.settings.seed + i for i in range(4)}
        assert len({tuple(p.notes) for p in thumbs.pieces}) == 4  # four different pieces
        click(app, thumbs.box(2).center)
        assert thumbs.chosen == 2 and panel.result[1] is panel.variations_strip.takes[2][1]
        assert roll.generated == thumbs.pieces[2].notes
        shown = app.takes.get(app.takes_panel.selected)  # one selection: the list marks the take on show
        assert shown.settings["seed"] == job.settings.seed + 2 and shown.generated.notes == roll.generated
        app.step()
        assert tuple(app.window.get_at((thumbs.box(2).x, thumbs.box(2).centery)))[:3] == (236, 236, 240)
        set_slider(app, panel.variations, 0.0)
        generate_and_wait(app)
        assert not thumbs.visible and roll.rect.top == thumbs.rect.top  # one piece: the strip goes away
    finally:
        app.close()


def test_notes_entered_on_the_roll_are_harmonized_with_the_melody_kept(app):
    panel, roll = app.generate, app.generate.piano_roll
    click(app, panel.edit_button.rect.center)
    assert roll.editing
    app.step()
    centre = panel.edit_button.rect.center
    assert tuple(app.window.get_at(centre))[:3] != tuple(app.window.get_at((roll.rect.x + 2, roll.rect.bottom - 2)))[:3]
    tune = [(72, 0), (74, 4), (76, 8), (72, 12), (71, 16), (72, 20)]  # (pitch, start step)

    def at(pitch: int, step: float) -> tuple[int, int]:
        return round(roll.step_to_x(step)), round(roll.pitch_to_y(pitch) + roll._row_h() / 2)

    for pitch, start in tune:
        click(app, at(pitch, start + 1))  # anywhere in the beat: snapped to it
    drag(app, at(72, 22), at(72, 27.5))  # lengthen the last note to 8 steps
    click(app, at(60, 30))
    click(app, at(60, 30), button=3)  # a stray note, deleted
    entered = sorted((n.pitch, n.start, n.duration) for n in roll.primer)
    assert entered == sorted((p, s, 8 if s == 20 else 4) for p, s in tune)
    assert panel.user_primer is not None and "your notes" in panel.piece_button.text
    click(app, panel.mode_buttons["harmonize"].rect.center)
    generate_and_wait(app)
    assert not roll.editing  # generating ends note entry
    kept, lower = panel.result
    assert sorted((n.pitch, n.start, n.duration) for n in kept.notes) == entered
    assert lower.notes
    for note in lower.notes:
        assert all(note.pitch < m.pitch for m in kept.notes if m.start < note.end and note.start < m.end), note


def test_a_piece_picked_in_harmonize_mode_is_harmonized_and_the_mode_stays(app, chorales):
    panel = app.generate
    click(app, panel.mode_buttons["harmonize"].rect.center)
    click(app, panel.piece_button.rect.center)
    assert panel.browser.window_display_title == "Pick a piece to harmonize"
    type_text(app, panel.browser.search, "bwv66.6")  # Return picks the first match
    run_until(app, lambda: "bwv66.6" in panel.piece_button.text, what="the pick")
    assert panel.mode == "harmonize" and not panel.primer_slider.slider.is_enabled
    generate_and_wait(app)
    job = app.engine.received[-1]
    assert job.mode == "harmonize" and job.piece_name == "bwv66.6"
    melody, _ = top_line(chorales.piece("bwv66.6"))
    assert [(n.pitch, n.start) for n in panel.result[0].notes] == [(n.pitch, n.start) for n in melody]


def test_the_variations_slider_ends_where_the_sampler_does():
    from models.sampling import MAX_ROWS
    from studio.generate_panel import MAX_VARIATIONS

    assert MAX_VARIATIONS == MAX_ROWS  # the studio imports no torch, so it keeps its own copy
