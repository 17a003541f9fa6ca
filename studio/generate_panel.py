"""The Generate tab: model, mode, sampling sliders, Generate/Stop, progress and the piano roll."""

from __future__ import annotations

import html
import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pygame
import pygame_gui
from pygame_gui.elements import (
    UIButton,
    UICheckBox,
    UIDropDownMenu,
    UILabel,
    UIPanel,
    UITextBox,
    UITextEntryLine,
)
from pygame_gui.windows import UIMessageWindow

from studio import engine as eng
from studio.checkpoints import CheckpointEntry, list_checkpoints
from studio.piano_roll import PianoRoll
from studio.transport import Piece
from studio.widgets import Column, PercentBar, refresh_moved_slider, set_running
from tokenizer.notes import NoteSequence

SIDEBAR_W = 300
MARGIN = 12
RANDOM_PIECE = "Random piece"
NO_CHECKPOINT = "No checkpoint found"
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
        on_take: Callable[[NoteSequence, NoteSequence, eng.Generate, bool], None] = lambda *args: None,
        vocabulary_size: int = 107,
    ) -> None:
        self.manager, self.engine, self.checkpoints_dir = manager, engine, Path(checkpoints_dir)
        self.mode = "new"
        self.generating = False
        self.loaded: eng.Loaded | None = None
        self.result: tuple[NoteSequence, NoteSequence] | None = None  # (primer, generated)
        self.primer_shown = NoteSequence()
        self.can_retry = False
        self.on_take = on_take
        self.user_primer: NoteSequence | None = None  # a file the user opened, to continue
        self.last_finished: eng.Finished | None = None
        self.job_note = ""  # e.g. that the primer was cut to fit the context
        self.running_job: eng.Generate | None = None  # the last job submitted
        side = UIPanel(pygame.Rect(0, 0, SIDEBAR_W, rect.h), manager=manager, container=container, object_id="#sidebar")
        self.sidebar = side
        inner_w = SIDEBAR_W - 2 * MARGIN
        column = Column(manager, side, MARGIN, inner_w, MARGIN)
        column.section("MODEL")
        self.checkpoints: list[CheckpointEntry] = list_checkpoints(self.checkpoints_dir)
        options = [c.label for c in self.checkpoints] or [NO_CHECKPOINT]
        self.checkpoint_menu = UIDropDownMenu(options, options[0], column.row(30, 14), manager, side)

        column.section("MODE")
        self.mode_buttons = {}
        row = column.row(30, 6)
        x = row.x
        for mode, text, width in (("new", "New piece", 82), ("continue", "Continue song", 122), ("retry", "Retry", 64)):
            self.mode_buttons[mode] = UIButton(pygame.Rect(x, row.y, width, 30), text, manager, side)
            x += width + 4
        self.mode_buttons["retry"].disable()
        self.piece_menu = UIDropDownMenu([RANDOM_PIECE], RANDOM_PIECE, column.row(30, 4), manager, side)
        self.primer_slider = column.slider("Primer length", (1, 32), 8, lambda v: f"{int(v)} quarters", gap=10)

        column.section("SAMPLING")
        self.temperature = column.temperature()
        self.tokens = column.slider("Tokens to generate", (32, 2048), 512, lambda v: f"{int(v)}", click_increment=32)
        self.top_k = column.slider("Top-k", (0, vocabulary_size), 0, lambda v: "off" if int(v) == 0 else f"{int(v)}")
        self.top_p = column.slider(
            "Top-p", (0.5, 1.0), 1.0, lambda v: "off" if v >= 0.999 else f"{v:.2f}", click_increment=0.01, gap=4
        )
        row = column.row(30, 16)
        UILabel(pygame.Rect(row.x, row.y + 5, 40, 20), "Seed", manager, side)
        self.seed_entry = UITextEntryLine(pygame.Rect(row.x + 44, row.y, 120, 30), manager, side, initial_text="1")
        self.seed_entry.set_allowed_characters("numbers")
        self.random_seed = UICheckBox(pygame.Rect(row.x + 176, row.y + 6, 18, 18), "random", manager, side)

        self.generate_button = UIButton(column.row(42, 10), "Generate", manager, side, object_id="#generate_button")
        self.progress = PercentBar(column.row(20, 6), manager, side)
        self.status = UITextBox(
            "Loading the model…", column.row(62).inflate(8, 0), manager, container=side, object_id="#status_box"
        )
        self.status_text = "Loading the model…"
        self.sliders = [self.primer_slider, self.temperature, self.tokens, self.top_k, self.top_p]
        self.piano_roll = PianoRoll(roll_rect)
        self._select_mode("new")
        self.generate_button.disable()

    # -- start-up ------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the first checkpoint in the background, or say how to train one."""
        if self.checkpoints:
            self._load(self.checkpoints[0])
        else:
            self.set_status(TRAIN_HINT)
            self.piano_roll.empty_message = "No model yet: see the status line for how to train one."

    def _load(self, entry: CheckpointEntry) -> None:
        if self.engine.submit(eng.LoadCheckpoint(entry.path)):
            self.loaded = None
            self.generate_button.disable()
            self.set_status(f"Loading {entry.name}…")
        else:
            self.set_status("Busy: stop the running job before loading another model")

    # -- settings -------------------------------------------------------------------------------
    def settings(self) -> eng.GenerationSettings:
        """What the sliders and the seed field say now."""
        top_k = int(self.top_k.value)
        top_p = self.top_p.value
        return eng.GenerationSettings(
            temperature=round(self.temperature.value, 3),
            tokens=int(self.tokens.value),
            top_k=top_k if top_k > 0 else None,
            top_p=1.0 if top_p >= 0.999 else round(top_p, 3),
            seed=int(self.seed_entry.get_text() or 0),
        )

    def _select_mode(self, mode: str) -> None:
        self.mode = mode
        for name, button in self.mode_buttons.items():
            button.select() if name == mode else button.unselect()

    # -- actions --------------------------------------------------------------------------------
    def generate(self) -> None:
        if self.generating:
            return
        if self.loaded is None:
            self.set_status("No model is loaded yet")
            return
        if self.random_seed.get_state() or self.mode == "retry":
            self.seed_entry.set_text(str(random.randrange(1_000_000)))
        piece = self.piece_menu.selected_option
        piece_name = piece[0] if isinstance(piece, tuple) else piece
        job = eng.Generate(
            mode=self.mode,
            settings=self.settings(),
            piece_name=None if piece_name == RANDOM_PIECE else piece_name,
            primer_quarters=int(self.primer_slider.value),
            primer=self.user_primer if self.mode == "continue" else None,
        )
        if not self.engine.submit(job):
            self.set_status("Busy: a job is already running")
            return
        self.running_job = job
        self.generating = True
        set_running(self.generate_button, True)
        self.progress.set_current_progress(0)
        self.set_status("Starting…")

    def stop(self) -> None:
        if self.generating:
            self.engine.cancel()
            self.set_status("Stopping…")

    def set_status(self, text: str) -> None:
        """The status line (two lines; longer messages also go to a message window)."""
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
        set_running(self.generate_button, False)
        self.piano_roll.follow = False

    # -- events ---------------------------------------------------------------------------------
    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_BUTTON_PRESSED:
            if event.ui_element is self.generate_button:
                self.stop() if self.generating else self.generate()
                return True
            for mode, button in self.mode_buttons.items():
                if event.ui_element is button:
                    self._select_mode(mode)
                    return True
        if refresh_moved_slider(self.sliders, event):
            return True
        if event.type == pygame_gui.UI_DROP_DOWN_MENU_CHANGED and event.ui_element is self.checkpoint_menu:
            for entry in self.checkpoints:
                if entry.label == event.text:
                    self._load(entry)
            return True
        if event.type == pygame_gui.UI_DROP_DOWN_MENU_CHANGED and event.ui_element is self.piece_menu:
            self.user_primer = None  # a dataset piece replaces an opened file
            if self.mode != "continue":
                self._select_mode("continue")
            return True
        return self.piano_roll.handle_event(event)

    def handle_engine_event(self, event: eng.Event) -> None:
        if isinstance(event, eng.Loaded):
            self.loaded = event
            self._rebuild_piece_menu(event.piece_names)
            self.generate_button.enable()
            card = event.card.get("model_card", {})
            self.set_status(f"Ready: {event.name} ({card.get('size', '?')}, val loss {card.get('val_loss', 0):.3f})")
        elif isinstance(event, eng.Started):
            self.primer_shown = event.primer
            empty = NoteSequence(
                steps_per_quarter=event.primer.steps_per_quarter, time_signature=event.primer.time_signature
            )
            self.piano_roll.show(event.primer, empty, fit=bool(event.primer.notes))
            self.piano_roll.follow = True
            self.job_note = f" · {event.note}" if event.note else ""
            self.set_status("Generating…" + self.job_note)
        elif isinstance(event, eng.NotesSoFar):
            self.piano_roll.update_generated(event.generated)
        elif isinstance(event, eng.Progress):
            self.progress.set_current_progress(100 * event.done / max(1, event.total))
            self.set_status(f"Generating… {event.done}/{event.total}{self.job_note}")
        elif isinstance(event, eng.Finished):
            self.last_finished = event
            self._finish_job()
            self.result = (event.primer, event.generated)
            self.piano_roll.update_generated(event.generated)
            self.progress.set_current_progress(100)
            rate = event.words / max(event.seconds, 1e-9)
            self.piano_roll.frame_piece()
            notes = len(event.generated.notes)
            self.set_status(f"Generation complete · {notes} notes · {rate:.0f} words/s{self.job_note}")
            self._after_job(event.job)
            self.on_take(event.primer, event.generated, event.job, False)
        elif isinstance(event, eng.Cancelled):
            self._finish_job()
            self.result = (event.primer, event.generated)
            self.piano_roll.update_generated(event.generated)
            self.piano_roll.frame_piece()
            self.set_status(f"Stopped · {event.words} words · {len(event.generated.notes)} notes kept")
            self._after_job(event.job)
            self.on_take(event.primer, event.generated, event.job, True)
        elif isinstance(event, eng.Error):
            if self.generating:
                partial = self.current_piece()  # the notes shown so far are kept, as a stopped take
                self._finish_job()
                if partial is not None and partial.generated.notes:
                    self.result = (partial.primer, partial.generated)
                    self.on_take(partial.primer, partial.generated, self.running_job, True)
            if self.loaded is not None:
                self.generate_button.enable()
            self.show_error(event.message)

    def open_piece(self, piece: NoteSequence) -> None:
        """Show a file the user opened; Continue will use it as the primer."""
        self.user_primer = piece
        empty = NoteSequence(
            steps_per_quarter=piece.steps_per_quarter, tempos=piece.tempos, time_signature=piece.time_signature
        )
        self.show_take(piece, empty)
        self._select_mode("continue")
        self.set_status(f"Opened {piece.name}: {len(piece.notes)} notes. Press Generate to continue it.")

    def show_take(self, primer: NoteSequence, generated: NoteSequence) -> None:
        self.result = (primer, generated)
        self.piano_roll.show(primer, generated)
        self.piano_roll.frame_piece()

    def rolls(self) -> list[PianoRoll]:
        return [self.piano_roll]

    def current_piece(self) -> Piece | None:
        """What is on the roll: while generating, the notes so far."""
        if self.generating:
            return Piece(self.primer_shown, replace(self.primer_shown, notes=list(self.piano_roll.generated)))
        if self.result is None:
            return None
        primer, generated = self.result
        return Piece(primer, generated, name=f"cantor_{self.mode}")

    def _after_job(self, job: eng.Generate) -> None:
        if job.mode in ("continue", "retry"):
            self.can_retry = True
            self.mode_buttons["retry"].enable()

    def _rebuild_piece_menu(self, names: list[str]) -> None:
        rect = self.piece_menu.relative_rect
        container = self.piece_menu.ui_container
        self.piece_menu.kill()
        self.piece_menu = UIDropDownMenu([RANDOM_PIECE, *names], RANDOM_PIECE, rect, self.manager, container)

    # -- per frame ------------------------------------------------------------------------------
    def draw(self, surface: pygame.Surface) -> None:
        self.piano_roll.draw(surface)
