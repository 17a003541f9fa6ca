"""The Generate tab: model, mode (New piece | Continue | Harmonize), Retry and Regenerate,
primer and variations, Generate/Stop, progress, status and the piano roll. Its parts live
beside it: the key menu (``key_choice``), the SAMPLING section (``sampling_controls``) and the
strip of variations above the roll (``variations``).

Picking a piece to continue shows its opening on the roll at once, cut as the model will use it.
Retry is an action: it writes another continuation of the primer on the roll straight away, and is
enabled once a continuation exists. Harmonize writes three voices under a melody: the top line
of the file you opened, else of the piece picked, else of the take on the roll. Regenerate
rewrites the bars selected on the roll's ruler and keeps the rest; the earlier version stays a
take. The seed is random by default (the choice is remembered) and each take keeps the seed it
was made with.
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UIDropDownMenu
from pygame_gui.windows import UIMessageWindow

from studio import engine as eng
from studio.checkpoints import CheckpointEntry, list_checkpoints
from studio.key_choice import KeyChoice
from studio.piano_roll import KEYBOARD_W, RULER_H, PianoRoll
from studio.piece_browser import PieceBrowser
from studio.rules_window import RulesWindow, describe
from studio.sampling_controls import SamplingControls
from studio.settings import Settings
from studio.transport import Piece
from studio.variations import VariationStrip
from studio.widgets import (
    SIDEBAR_W,
    SLIDER_ROW_H,
    Column,
    LabeledSlider,
    PercentBar,
    refresh_moved_slider,
    set_running,
    sidebar,
)
from tokenizer.notes import NoteSequence
from tokenizer.readers import MIDI_SUFFIXES, MUSIC21_SUFFIXES
from tokenizer.repeat import BAR_FORM

MARGIN = 12
RANDOM_PIECE = "Random piece"
STRETCH = {"left": "left", "right": "right", "top": "top", "bottom": "bottom"}
DEFAULT_PRIMER = 8  # quarters
MAX_VARIATIONS = 8  # models.sampling.MAX_ROWS: the studio imports no torch
NO_CHECKPOINT = "No checkpoint found"
TASK_MODES = {"harmonize": "Harmonizing", "regenerate": "Regenerating"}  # modes that keep notes and write around them
TRAIN_HINT = "No checkpoint in checkpoints/. Train one: python -m models.train_gpt --data data/chorales --size small"


class GeneratePanel:
    """Builds the Generate tab inside ``container`` and reacts to its widgets' events."""

    def __init__(
        self,
        rect: pygame.Rect,
        roll_rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container,
        engine: eng.Engine,
        checkpoints_dir: Path,
        settings: Settings,
        on_take: Callable[[NoteSequence, NoteSequence, eng.Generate, bool], int | None] = lambda *args: None,
        on_select_take: Callable[[int], None] = lambda number: None,
        vocabulary_size: int = 107,
    ) -> None:
        self.manager, self.engine, self.checkpoints_dir = manager, engine, Path(checkpoints_dir)
        self.app_settings = settings
        self.mode = "new"
        self.generating = False
        self.loaded: eng.Loaded | None = None
        self.result: tuple[NoteSequence, NoteSequence] | None = None  # (primer, generated)
        self.primer_shown = NoteSequence()
        self.on_take, self.on_select_take = on_take, on_select_take  # a take kept (its number back); shown
        self.user_primer: NoteSequence | None = None  # a file the user opened, to continue
        self.piece_name = RANDOM_PIECE  # the dataset piece Continue uses
        self.piece_names: list[str] = []
        self.last_finished: eng.Finished | None = None
        self.job_note = ""  # e.g. that the primer was cut to fit the context
        self.notice = ""  # something said during a job: it stays under the progress line
        self.running_job: eng.Generate | None = None  # the last job submitted
        self.browser: PieceBrowser | None = None
        self.running_label = ""  # the primer of the running job: a piece's name, a file's, or ""
        self.last_primer_label = ""  # the primer Retry continues again
        self.shown_mode = ""  # the job that made the piece on the roll ("harmonize": Regenerate keeps its tune)
        self.shown_take: int | None = None  # the take on the roll, named in the file Save offers
        side = sidebar(manager, container, rect.h)
        self.sidebar = side
        inner_w = SIDEBAR_W - 2 * MARGIN
        column = Column(manager, side, MARGIN, inner_w, MARGIN)
        column.section("MODEL")
        self.checkpoints: list[CheckpointEntry] = list_checkpoints(self.checkpoints_dir)
        options = [c.label for c in self.checkpoints] or [NO_CHECKPOINT]
        self.checkpoint_menu = UIDropDownMenu(options, options[0], column.row(30, 10), manager, side)
        self._side = side

        column.section("MODE")
        row = column.row(30, 6)
        widths = (60, 72, 84, row.w - 60 - 72 - 84 - 12)
        lefts = [row.x + sum(widths[:i]) + 4 * i for i in range(4)]
        self.mode_buttons = {
            mode: UIButton(pygame.Rect(left, row.y, width, 30), label, manager, side, tool_tip_text=tip)
            for left, width, (mode, label, tip) in zip(
                lefts,
                widths,
                (
                    ("new", "New", "Write a new piece"),
                    ("continue", "Continue", "Continue a piece: the one picked below, or a file you opened"),
                    ("harmonize", "Harmonize", "Write alto, tenor and bass under a melody (its top line)"),
                ),
                strict=False,
            )
        }
        self.retry_button = UIButton(
            pygame.Rect(lefts[3], row.y, widths[3], 30),
            "Retry",
            manager,
            side,
            tool_tip_text="Another continuation of the last primer, with a new seed",
        )
        self.retry_button.disable()
        row = column.row(30, 4)
        self.piece_button = UIButton(
            pygame.Rect(row.x, row.y, row.w - 104, 30),
            f"Piece: {RANDOM_PIECE}…",
            manager,
            side,
            tool_tip_text="Pick the piece to continue or harmonize",
        )
        self.regenerate_button = UIButton(
            pygame.Rect(row.right - 100, row.y, 100, 30),
            "Regenerate",
            manager,
            side,
            tool_tip_text="Rewrite the bars selected on the ruler (drag across it), keeping the rest",
        )
        self.regenerate_button.disable()
        row = column.row(SLIDER_ROW_H, 2)
        half = (row.w - 12) // 2
        self.primer_slider = LabeledSlider(
            pygame.Rect(row.x, row.y, half, row.h),
            "Primer",
            (1, 32),
            DEFAULT_PRIMER,
            manager,
            side,
            lambda v: f"{int(v)} quarters",
        )
        self.variations = LabeledSlider(
            pygame.Rect(row.right - half, row.y, half, row.h),
            "Variations",
            (1, MAX_VARIATIONS),
            1,
            manager,
            side,
            lambda v: f"{int(v)}",
            value_w=24,
        )

        self.key = KeyChoice(column.row(30, 4), manager, side)
        self.sampling = SamplingControls(column, manager, side, settings, vocabulary_size)
        row = column.row(42, 8)
        self.generate_button = UIButton(
            pygame.Rect(row.x, row.y, row.w - 144, row.h), "Generate", manager, side, object_id="#generate_button"
        )
        self.rules_button = UIButton(
            pygame.Rect(row.right - 140, row.y, 66, row.h),
            "Rules…",
            manager,
            side,
            tool_tip_text="Voices, key, range and repeats the sampler must obey",
        )
        self.rules_window: RulesWindow | None = None
        self.reset_button = UIButton(
            pygame.Rect(row.right - 70, row.y, 70, row.h),
            "Defaults",
            manager,
            side,
            tool_tip_text="Put the sampling sliders, and the rules beyond the four-part ones (key, range, "
            "repeats, voices), back to their defaults",
        )
        self.progress = PercentBar(column.row(20, 6), manager, side)
        self.status = column.status_box("Loading the model…", rect.h, 62)
        self.status_text = "Loading the model…"
        self.sliders = [self.primer_slider, self.variations]
        self.piano_roll = PianoRoll(roll_rect, manager, container, anchors=STRETCH)
        self.piano_roll.on_select = self._selected
        self.piano_roll.on_edit = self._notes_edited
        self.edit_button = UIButton(  # on the roll's corner, above the keyboard
            pygame.Rect(roll_rect.x, roll_rect.y, KEYBOARD_W, RULER_H),
            "Edit",
            manager,
            container,
            tool_tip_text="Enter notes: click to add a quarter note, drag to lengthen, right-click to delete",
        )
        self.variations_strip = VariationStrip(
            roll_rect, manager, container, self.piano_roll, self.edit_button, self._pick_variation
        )
        self._select_mode("new")
        self.generate_button.disable()

    def rescan_checkpoints(self) -> bool:
        """Look in the checkpoints folder again (a model trained while the studio runs shows up),
        rebuilding the picker where the list changed; whether it did."""
        found = list_checkpoints(self.checkpoints_dir)
        if [c.label for c in found] == [c.label for c in self.checkpoints] or not found:
            return False
        shown = self.checkpoint_menu.selected_option[0]
        self.checkpoints = found
        options = [c.label for c in found]
        rect = self.checkpoint_menu.relative_rect
        self.checkpoint_menu.kill()
        start = shown if shown in options else options[0]
        self.checkpoint_menu = UIDropDownMenu(options, start, rect, self.manager, self._side)
        return True

    # -- start-up ------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the first checkpoint in the background, or say how to train one."""
        if self.checkpoints:
            self._load(self.checkpoints[0])
        else:
            self.set_status(TRAIN_HINT)
            self.piano_roll.empty_message = "No model yet: see the status line for how to train one."

    def _load(self, entry: CheckpointEntry) -> None:
        if self.generating:
            self.set_status("Busy: stop the generation before loading another model")
            return
        self.loaded = None
        self.generate_button.disable()
        self.set_status(f"Loading {entry.name}…")
        self.engine.enqueue(eng.LoadCheckpoint(entry.path))

    # -- settings -------------------------------------------------------------------------------
    def settings(self) -> eng.GenerationSettings:
        """What the sliders, the seed field, the key menu and the rules say now."""
        return self.sampling.settings(
            rules=self.app_settings.rules(),
            variations=int(self.variations.value) if self.mode in ("new", "continue") else 1,
            key=self.key.asked,
            bar_form=BAR_FORM[self.app_settings.bar_form],
        )

    def reset_sliders(self) -> None:
        """Defaults: the sliders, and the rules set in the Rules window (the four-part box stays)."""
        self.sampling.reset()
        self.primer_slider.set_value(DEFAULT_PRIMER)
        self.variations.set_value(1)
        if self.app_settings.reset_extra_rules():
            if self.rules_window is not None and self.rules_window.alive():
                self.rules_window.kill()
            self._rules_changed()

    def show_rules_in_force(self) -> None:
        """The Rules… button says whether rules beyond the four-part ones are in force, and its
        tooltip which; they are also said in the status when the studio opens."""
        extra = self.app_settings.extra_rules()
        self.rules_button.set_text("Rules •" if extra else "Rules…")
        summary = describe(self.app_settings.rules(), self.app_settings.bar_form)
        self.rules_button.set_tooltip(f"Rules in force: {summary}. Defaults resets the key, range and repeats")

    def _select_mode(self, mode: str) -> None:
        self.mode = mode
        for name, button in self.mode_buttons.items():
            button.select() if name == mode else button.unselect()
        if mode == "continue" and self.user_primer is None:
            self.primer_slider.enable()
        else:  # a new piece has no primer; a melody is harmonized whole; an opened file is continued whole
            self.primer_slider.disable()
        self.key.show(mode)

    # -- actions --------------------------------------------------------------------------------
    def generate(self, mode: str | None = None) -> None:
        """Generate in the selected mode (or ``mode``, e.g. "retry")."""
        mode = mode or self.mode
        if self.generating:
            return
        if self.loaded is None:
            self.set_status("No model is loaded yet")
            return
        if self.piano_roll.editing:
            self._toggle_editing()
        piece_name, primer, gap = None, self.user_primer if mode == "continue" else None, None
        if mode == "retry":
            if not self._can_retry():
                self.set_status(
                    "Retry writes another continuation of the primer on the roll: show a continuation first"
                )
                return
            primer = self.result[0]
        self.sampling.seed.roll(always=mode in ("retry", "regenerate"))  # another take of the same thing: a new seed
        if mode == "harmonize":
            primer = self._melody_source()
        if mode == "regenerate":
            current = self.current_piece()
            if current is None or self.piano_roll.selection is None:
                self.set_status("Select bars first: drag across the ruler above the roll")
                return
            primer, gap = current.combined(), self.piano_roll.selection
        if mode in ("continue", "harmonize") and primer is None:
            piece_name = self.piece_name
            if piece_name == RANDOM_PIECE and self.piece_names:  # the piece drawn is said, and kept with the take
                piece_name = random.Random(self.sampling.seed.value).choice(self.piece_names)
        job = eng.Generate(
            mode=mode,
            settings=self.settings(),
            piece_name=piece_name,
            primer_quarters=int(self.primer_slider.value),
            primer=primer,
            gap=gap,
            keep_melody=mode == "regenerate" and self.shown_mode == "harmonize",
        )
        if not self.engine.submit(job):
            self.set_status("Busy: a job is already running")
            return
        self.running_job = job
        self.running_label = self.primer_label(job)
        self.generating = True
        set_running(self.generate_button, True)
        self.retry_button.disable()
        self.regenerate_button.disable()
        self.progress.set_current_progress(0)
        self.set_status("Starting…")

    def _melody_source(self) -> NoteSequence | None:
        """What Harmonize takes the top line of: the opened file, else None when a piece is picked
        (the engine reads it), else the take on the roll, else None (a random piece)."""
        if self.user_primer is not None:
            return self.user_primer
        current = self.current_piece()
        if (
            self.piece_name == RANDOM_PIECE
            and current is not None
            and (current.primer.notes or current.generated.notes)
        ):
            return current.combined()
        return None

    def _toggle_editing(self) -> None:
        roll = self.piano_roll
        roll.editing = not roll.editing and not self.generating
        self.edit_button.select() if roll.editing else self.edit_button.unselect()
        if roll.editing:
            self.set_status("Enter notes: click to add, drag to lengthen, right-click to delete")

    def _notes_edited(self) -> None:
        """Notes were entered on the roll: they become your piece, which Continue continues and
        Harmonize harmonizes (its top line)."""
        roll = self.piano_roll
        notes = sorted(roll.primer + roll.generated, key=lambda n: (n.start, n.pitch))
        grid = self.result[0] if self.result else NoteSequence()
        piece = replace(grid, notes=notes, name="your notes")
        self.user_primer = piece
        self.result = (piece, replace(piece, notes=[], name=""))
        self.shown_take = None
        roll.show_layers({"primer": notes, "generated": []}, piece, fit=False)
        self.piece_button.set_text("Piece: your notes…")
        self._enable_regenerate()
        self.set_status(
            f"Your notes: {len(notes)}. Harmonize writes voices under their top line; Continue continues them"
        )

    def _selected(self, selection: tuple[int, int] | None) -> None:
        """Bars were selected on the ruler (or the selection cleared)."""
        self._enable_regenerate()
        if selection is not None:
            bar = max(1, self.piano_roll.steps_per_bar)
            first, last = selection[0] // bar + 1, selection[1] // bar
            bars = f"Bar {first}" if first == last else f"Bars {first}–{last}"
            self.set_status(f"{bars} selected: press Regenerate to rewrite them")

    def _enable_regenerate(self) -> None:
        ready = (
            self.loaded is not None
            and not self.generating
            and self.piano_roll.selection is not None
            and self.current_piece() is not None
        )
        self.regenerate_button.enable() if ready else self.regenerate_button.disable()

    def primer_label(self, job: eng.Generate) -> str:
        """What a take's primer was: a dataset piece, the user's file, or the last primer again."""
        if job.mode == "new":
            return ""
        if job.mode == "regenerate":
            bar = max(1, job.primer.steps_per_bar)
            return f"bars {job.gap[0] // bar + 1}–{job.gap[1] // bar}"
        if job.primer is not None:
            return job.primer.name or "your file"
        if job.mode == "retry":
            return self.last_primer_label
        return job.piece_name or ""

    def stop(self) -> None:
        if self.generating:
            self.engine.cancel()
            self.set_status("Stopping…")

    def keep_partial(self) -> None:
        """The window is closing mid-generation: the notes written so far become a stopped take."""
        if self.generating and self.running_job is not None:
            partial = self.current_piece()
            self._finish_job()
            if partial is not None and partial.generated.notes:
                self.on_take(partial.primer, partial.generated, self.running_job, True)

    def say(self, text: str) -> None:
        """A message for the user (from the transport, say): during a job it stays below the progress."""
        if self.generating:
            self.notice = text
        self.set_status(text)

    def set_status(self, text: str) -> None:
        """The status text (it wraps; errors also go to a message window)."""
        if self.generating and self.notice and text != self.notice:
            text = f"{text}\n{self.notice}"
        if text != self.status_text:
            self.status_text = text
            self.status.set_text(html.escape(text))

    def show_error(self, message: str) -> None:
        self.set_status(message)
        width, height = self.manager.window_resolution
        rect = pygame.Rect(0, 0, 460, 220)
        rect.center = (width // 2 + SIDEBAR_W // 2, height // 2)
        UIMessageWindow(rect, html.escape(message), self.manager, window_title="Something went wrong")

    def _finish_job(self) -> None:
        self.generating = False
        self.notice = ""
        set_running(self.generate_button, False)
        self.piano_roll.follow = False

    def open_rules(self) -> None:
        if self.rules_window is None or not self.rules_window.alive():
            self.rules_window = RulesWindow(self.manager, self.app_settings, self._rules_changed)

    def _rules_changed(self) -> None:
        rules = self.app_settings.rules()
        self.set_status(f"Rules: {describe(rules, self.app_settings.bar_form)}")
        self.show_rules_in_force()

    def _browse(self) -> None:
        if self.browser is not None and self.browser.alive():
            return
        self.browser = PieceBrowser(
            self.manager,
            self.piece_names,
            self._pick_piece,
            "Pick a piece to harmonize" if self.mode == "harmonize" else "Pick a piece to continue",
            first_option=RANDOM_PIECE,
            titles=self.loaded.titles if self.loaded else {},
        )

    def _pick_piece(self, name: str) -> None:
        """A dataset piece (or Random) replaces an opened file as what Continue continues, or, in
        Harmonize, as the melody's source (the mode stays)."""
        self.piece_name = name
        self.user_primer = None
        self.piece_button.set_text(f"Piece: {name}…")
        if self.mode == "harmonize":
            self.set_status(f"Generate harmonizes the top line of {name}")
            return
        self._select_mode("continue")
        self._preview_primer()

    def _preview_primer(self) -> None:
        if self.piece_name != RANDOM_PIECE and self.user_primer is None and not self.generating:
            self.engine.enqueue(eng.PreparePrimer(self.piece_name, int(self.primer_slider.value)))

    # -- events ---------------------------------------------------------------------------------
    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_BUTTON_PRESSED:
            if event.ui_element is self.generate_button:
                self.stop() if self.generating else self.generate()
                return True
            if event.ui_element is self.retry_button:
                self.generate("retry")
                return True
            if event.ui_element is self.edit_button:
                self._toggle_editing()
                return True
            if event.ui_element is self.regenerate_button:
                self.generate("regenerate")
                return True
            if event.ui_element is self.piece_button:
                self._browse()
                return True
            if event.ui_element is self.reset_button:
                self.reset_sliders()
                return True
            if event.ui_element is self.rules_button:
                self.open_rules()
                return True
            for mode, button in self.mode_buttons.items():
                if event.ui_element is button:
                    self._select_mode(mode)
                    return True
        if self.sampling.process_event(event):
            return True
        if refresh_moved_slider(self.sliders, event):
            if self.primer_slider.owns(event):
                self._preview_primer()
            return True
        if event.type == pygame_gui.UI_DROP_DOWN_MENU_CHANGED and event.ui_element is self.key.menu:
            self.key.show(self.mode)
            return True
        if event.type == pygame_gui.UI_DROP_DOWN_MENU_CHANGED and event.ui_element is self.checkpoint_menu:
            for entry in self.checkpoints:
                if entry.label == event.text:
                    self._load(entry)
            return True
        return self.piano_roll.handle_key(event)

    def handle_engine_event(self, event: eng.Event) -> None:
        if isinstance(event, eng.Loaded):
            self.loaded = event
            self.piece_names = list(event.piece_names)
            self.generate_button.enable()
            self._enable_regenerate()
            card = event.card.get("model_card", {})
            rules = (
                f" · rules in force: {describe(self.app_settings.rules(), self.app_settings.bar_form)}"
                if self.app_settings.extra_rules()
                else ""
            )
            self.set_status(
                f"Ready: {event.name} ({card.get('size', '?')}, val loss {card.get('val_loss', 0):.3f}){rules}"
            )
        elif isinstance(event, eng.PrimerReady):
            if not self.generating and event.piece_name == self.piece_name:
                empty = replace(event.primer, notes=[], name="")
                self.show_take(event.primer, empty)
                note = f" ({event.note})" if event.note else ""
                self.set_status(f"{event.piece_name}: its first {int(self.primer_slider.value)} quarters{note}")
        elif isinstance(event, eng.Started):
            self.primer_shown = event.primer
            empty = NoteSequence(
                steps_per_quarter=event.primer.steps_per_quarter, time_signature=event.primer.time_signature
            )
            regenerating = event.job.mode == "regenerate"
            if not regenerating:
                self.piano_roll.set_selection(None)  # a new piece: the bars selected were the last one's
                self._enable_regenerate()
            self.piano_roll.show_piece(event.primer, empty, fit=bool(event.primer.notes) and not regenerating)
            self.variations_strip.begin(event.primer, empty, event.job.settings.variations)
            self.piano_roll.follow = not regenerating
            label = self.running_label
            verb = {"continue": "continuing", "retry": "continuing", "harmonize": "harmonizing"}.get(event.job.mode, "")
            self.job_note = (f" · {verb or 'regenerating'} {label}" if label else "") + (
                f" · {event.note}" if event.note else ""
            )
            self.set_status(f"{TASK_MODES.get(event.job.mode, 'Generating')}…" + self.job_note)
            source = {"continue": "primer", "retry": "primer", "new": "", "regenerate": "piece"}.get(
                event.job.mode, "melody"
            )
            self.key.show(self.mode, event.key, source)
        elif isinstance(event, eng.NotesSoFar):
            if event.variations:
                self.piano_roll.update_generated(self.variations_strip.grow(event.primer, list(event.variations)))
            else:
                self.piano_roll.update_generated(event.generated)
        elif isinstance(event, eng.Progress):
            self.progress.set_current_progress(100 * event.done / max(1, event.total))
            mode = self.running_job.mode if self.running_job else ""
            if mode in TASK_MODES:
                self.set_status(f"{TASK_MODES[mode]}… {100 * event.done // max(1, event.total)}%{self.job_note}")
            else:
                self.set_status(f"Generating… {event.done}/{event.total} words{self.job_note}")
        elif isinstance(event, eng.Finished):
            self.last_finished = event
            if event.job.mode != "regenerate":
                self.shown_mode = event.job.mode
            self._finish_job()
            self._keep_variations(event.primer, event.generated, event.variations)
            self.progress.set_current_progress(100)
            rate = event.words / max(event.seconds, 1e-9)
            if event.job.mode != "regenerate":
                self.piano_roll.frame_piece()
            notes = len(event.generated.notes)
            if event.generated.key is not None and event.job.mode == "new":
                self.key.show(self.mode, event.generated.key, "as Bach")
            key = f" in {event.generated.key}" if event.generated.key else ""
            if event.ended:
                said = f"Finished{key}: it ends with a cadence"
            else:
                said = f"Stopped at the length limit ({event.words} words): raise Words for a piece that ends"
            self.set_status(f"{said} · {notes} new notes · {rate:.0f} words/s{self.job_note}")
            self._after_job(event.job, False)
        elif isinstance(event, eng.Cancelled):
            if event.job.mode != "regenerate":
                self.shown_mode = event.job.mode
            self._finish_job()
            self._keep_variations(event.primer, event.generated, event.variations)
            self.piano_roll.frame_piece()
            self.set_status(f"Stopped · {event.words} words · {len(event.generated.notes)} notes kept")
            self._after_job(event.job, True)
        elif isinstance(event, eng.Error):
            if self.generating:
                partial = self.current_piece()  # the notes shown so far are kept, as a stopped take
                self._finish_job()
                if partial is not None and partial.generated.notes:
                    self.result = (partial.primer, partial.generated)
                    self.shown_take = self.on_take(partial.primer, partial.generated, self.running_job, True)
                self._enable_retry()
            if self.loaded is not None:
                self.generate_button.enable()
            self._enable_regenerate()
            self.show_error(event.message)

    def open_piece(self, piece: NoteSequence) -> None:
        """Show a file the user opened; Continue will use it as the primer."""
        self.user_primer = piece
        empty = NoteSequence(
            steps_per_quarter=piece.steps_per_quarter, tempos=piece.tempos, time_signature=piece.time_signature
        )
        self.show_take(piece, empty)
        self.piano_roll.set_view(0.0, self.piano_roll.steps_visible)  # its opening, not its last bars
        self.piece_button.set_text(f"Piece: {piece.name or 'your file'}…")
        harmonizing = self.mode == "harmonize"
        self._select_mode("harmonize" if harmonizing else "continue")  # the mode the musician chose stays
        self.key.show(self.mode, piece.key, "file")
        task = "harmonize its top line" if harmonizing else "continue it from its end (the whole file is the primer)"
        self.set_status(f"Opened {piece.name}: {len(piece.notes)} notes. Press Generate to {task}.")

    def show_take(
        self, primer: NoteSequence, generated: NoteSequence, mode: str = "", number: int | None = None
    ) -> None:
        """Show a take (``mode``: the job that made it, so that Regenerate keeps a harmonization's tune
        and Retry continues its primer again; ``number``: its number in the takes list)."""
        self.shown_mode, self.shown_take = mode, number
        if not self.variations_strip.holds(generated):
            self.variations_strip.show(False)  # a take from the list: not one of the variations
        self.result = (primer, generated)
        self.piano_roll.show_piece(primer, generated)
        self.piano_roll.frame_piece()
        self._enable_retry()

    def clear(self) -> None:
        """An empty roll (the take on show was deleted)."""
        self.result = None
        self.shown_mode, self.shown_take = "", None
        self.piano_roll.show_piece(NoteSequence(), NoteSequence())
        self._enable_retry()
        self.set_status("Take deleted")

    def _can_retry(self) -> bool:
        """Whether the roll shows a continuation, whose primer Retry would continue again."""
        return self.result is not None and self.shown_mode in ("continue", "retry") and bool(self.result[0].notes)

    def _enable_retry(self) -> None:
        self.retry_button.enable() if self._can_retry() and not self.generating else self.retry_button.disable()

    def rolls(self) -> list[PianoRoll]:
        return [self.piano_roll]

    def current_piece(self) -> Piece | None:
        """What is on the roll: while generating, the notes so far."""
        if self.generating:
            return Piece(self.primer_shown, replace(self.primer_shown, notes=list(self.piano_roll.generated)))
        if self.result is None:
            return None
        primer, generated = self.result
        return Piece(primer, generated, name=self._file_name())

    def _file_name(self) -> str:
        """The name Save offers: a file opened keeps its own; a take says its number, what made it and
        its key ("take3_new_A_major")."""
        primer, generated = self.result
        if not generated.notes and primer.name:
            name = Path(primer.name)
            return name.stem if name.suffix.lower() in MIDI_SUFFIXES + MUSIC21_SUFFIXES else primer.name
        key = generated.key or primer.key
        parts = [f"take{self.shown_take}" if self.shown_take else "cantor", self.shown_mode or self.mode]
        return "_".join(parts + ([key.replace(" ", "_")] if key else []))

    def _keep_variations(self, primer: NoteSequence, generated: NoteSequence, variations: tuple) -> None:
        """The job's result on the roll: its one piece, or the variation picked while it ran."""
        generated = self.variations_strip.keep(primer, generated, variations)
        self.result = (primer, generated)
        self.piano_roll.update_generated(generated)

    def _pick_variation(self, index: int) -> None:
        """A thumbnail was clicked: that variation goes on the big roll (play and export take it)."""
        if self.generating:
            self.set_status(f"Showing variation {index + 1} as it grows")
            return
        strip = self.variations_strip
        if index < len(strip.takes):
            primer, generated = strip.takes[index]
            self.result = (primer, generated)
            self.piano_roll.show_piece(primer, generated, fit=False)
            seed = self.last_finished.job.settings.seed + index if self.last_finished else "?"
            self.set_status(f"Variation {index + 1} of {len(strip.takes)} · seed {seed}")
            self.shown_take = strip.numbers[index] if index < len(strip.numbers) else None
            if index < len(strip.numbers):
                self.on_select_take(strip.numbers[index])  # one selection: the list shows it too

    def _after_job(self, job: eng.Generate, stopped: bool) -> None:
        if job.mode in ("continue", "retry"):
            self.last_primer_label = self.running_label
        strip, numbers = self.variations_strip, {}
        for index, (primer, generated) in enumerate(strip.takes):
            if index != strip.chosen:  # each variation is a take; the one on show comes last
                variation = replace(job, settings=replace(job.settings, seed=job.settings.seed + index))
                numbers[index] = self.on_take(primer, generated, variation, stopped)
        chosen = strip.chosen if strip.takes else 0
        job = replace(job, settings=replace(job.settings, seed=job.settings.seed + chosen))
        numbers[chosen] = self.on_take(self.result[0], self.result[1], job, stopped)
        strip.numbers = [numbers[index] for index in sorted(numbers)] if strip.takes else []
        self.shown_take = numbers[chosen]
        self._enable_retry()
        self._enable_regenerate()
