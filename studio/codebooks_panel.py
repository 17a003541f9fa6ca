"""The Codebooks tab: see, hear and play with the VQ-VAE pipeline.

Original (top) and reconstruction (bottom) on one time axis, with missed notes and extra notes
marked; the piece's note-onset F1; A/B listening; under the rolls, each quarter's 16 codes as a
coloured grid (8 octave bands x 2 eighths) where a cell can be changed and re-decoded at once;
beside it the codebook explorer, each code drawn as the pattern it decodes to; and generation
with the prior, streaming quarter by quarter.
"""

from __future__ import annotations

import colorsys
import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UIDropDownMenu, UILabel, UIPanel, UITextBox, UITextEntryLine

from studio import engine as eng
from studio.checkpoints import list_checkpoints
from studio.generate_panel import MARGIN, SIDEBAR_W
from studio.piano_roll import PianoRoll
from studio.transport import Piece
from studio.widgets import Column, PercentBar, refresh_moved_slider, set_running
from tokenizer.notes import Note, NoteSequence

GRID_H = 96  # the code grid under the rolls
EXPLORER_W = 150
NO_PRIOR = "No prior"
TRAIN_HINT = (
    "No VQ-VAE in checkpoints/. Train one: python -m models.train_vqvae --data data/chorales, "
    "then python -m models.encode_codes and python -m models.train_prior"
)


def palette(count: int) -> list[tuple[int, int, int]]:
    """``count`` distinct colours, evenly around the hue circle."""
    return [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(i / count, 0.55, 0.9)) for i in range(count)]


def compare(original: list[Note], reconstruction: list[Note]) -> tuple[list[Note], list[Note], list[Note]]:
    """(matched, missed, extra): notes of both by (pitch, start), only the original's, only the reconstruction's."""
    key = {(n.pitch, n.start) for n in reconstruction}
    original_keys = {(n.pitch, n.start) for n in original}
    matched = [n for n in original if (n.pitch, n.start) in key]
    missed = [n for n in original if (n.pitch, n.start) not in key]
    extra = [n for n in reconstruction if (n.pitch, n.start) not in original_keys]
    return matched, missed, extra


class CodebooksPanel:
    def __init__(
        self,
        rect: pygame.Rect,
        main_rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container,
        engine: eng.Engine,
        checkpoints_dir: Path,
        on_take: Callable[[NoteSequence, NoteSequence, eng.GenerateCodes, bool], None],
        ask_open: Callable[[], None],
        restart_playback: Callable[[], None],
        play_excerpt: Callable[[NoteSequence], None],
    ) -> None:
        self.manager, self.engine = manager, engine
        self.on_take, self.ask_open, self.restart_playback = on_take, ask_open, restart_playback
        self.play_excerpt = play_excerpt
        self.vqvaes = list_checkpoints(Path(checkpoints_dir), kind="vqvae")
        self.priors = list_checkpoints(Path(checkpoints_dir), kind="prior")
        self.loaded: eng.CodebooksLoaded | None = None
        self.reconstruction: eng.Reconstructed | None = None
        self.generated: tuple[NoteSequence, NoteSequence] | None = None
        self.generating = False
        self.listen = "A"  # which piece Play plays: A = original, B = reconstruction
        self.mode = "new"
        self.selected_cell: tuple[int, int] | None = None
        self.hover_cell: tuple[int, int] | None = None
        self.status_text = ""
        self._pending: list = []  # jobs to submit once the engine is free
        self.started = False
        side = UIPanel(pygame.Rect(0, 0, SIDEBAR_W, rect.h), manager=manager, container=container, object_id="#sidebar")
        inner_w = SIDEBAR_W - 2 * MARGIN
        column = Column(manager, side, MARGIN, inner_w, MARGIN)
        column.section("MODELS")
        vq_options = [c.name for c in self.vqvaes] or ["No VQ-VAE found"]
        self.vqvae_menu = UIDropDownMenu(vq_options, vq_options[0], column.row(28, 4), manager, side)
        prior_options = [c.name for c in self.priors] + [NO_PRIOR]
        self.prior_menu = UIDropDownMenu(prior_options, prior_options[0], column.row(28, 10), manager, side)

        column.section("RECONSTRUCTION")
        row = column.row(28, 4)
        self.piece_menu = UIDropDownMenu(["—"], "—", pygame.Rect(row.x, row.y, row.w - 84, 28), manager, side)
        self.open_button = UIButton(pygame.Rect(row.right - 80, row.y, 80, 28), "Open…", manager, side)
        self.f1_label = UILabel(column.row(20, 4), "Onset F1 —", manager, side)
        row = column.row(28, 12)
        half = (row.w - 4) // 2
        self.listen_buttons = {
            "A": UIButton(pygame.Rect(row.x, row.y, half, 28), "Play A: original", manager, side),
            "B": UIButton(pygame.Rect(row.x + half + 4, row.y, half, 28), "Play B: rebuilt", manager, side),
        }

        column.section("GENERATE WITH THE PRIOR")
        self.temperature = column.temperature()
        self.top_k = column.slider("Top-k", (1, 16), 8, lambda v: f"{int(v)}")
        self.quarters = column.slider("Quarters", (4, 96), 24, lambda v: f"{int(v)}")
        self.primer_quarters = column.slider(
            "Continue from the first", (1, 16), 4, lambda v: f"{int(v)} quarters", gap=2
        )
        row = column.row(28, 8)
        UILabel(pygame.Rect(row.x, row.y + 5, 40, 20), "Seed", manager, side)
        self.seed_entry = UITextEntryLine(pygame.Rect(row.x + 44, row.y, 100, 28), manager, side, initial_text="1")
        self.seed_entry.set_allowed_characters("numbers")
        self.mode_buttons = {
            "new": UIButton(pygame.Rect(row.x + 150, row.y, 58, 28), "New", manager, side),
            "continue": UIButton(pygame.Rect(row.x + 212, row.y, 64, 28), "Continue", manager, side),
        }
        self.generate_button = UIButton(column.row(38, 6), "Generate", manager, side, object_id="#generate_button")
        self.progress = PercentBar(column.row(18, 4), manager, side)
        self.status = UITextBox(
            "",
            column.row(max(40, rect.h - column.y - 8)).inflate(8, 0),
            manager,
            container=side,
            object_id="#status_box",
        )
        self.sliders = [self.temperature, self.top_k, self.quarters, self.primer_quarters]
        # the main area: two rolls, the code grid under them, the explorer at the right
        x0, top = main_rect.x, main_rect.y
        rolls_w = main_rect.w - EXPLORER_W - MARGIN
        roll_h = (main_rect.h - GRID_H - 8) // 2
        self.original_roll = PianoRoll(pygame.Rect(x0, top, rolls_w, roll_h))
        self.recon_roll = PianoRoll(pygame.Rect(x0, top + roll_h + 4, rolls_w, roll_h))
        self.original_roll.empty_message = "Pick a piece to see it beside its reconstruction."
        self.recon_roll.empty_message = ""
        self.grid_rect = pygame.Rect(x0, top + 2 * roll_h + 8, rolls_w, GRID_H)
        self.explorer_rect = pygame.Rect(x0 + rolls_w + MARGIN, top, EXPLORER_W, main_rect.h)
        self._font = pygame.font.Font(None, 16)
        self._patterns: list[pygame.Surface] = []
        self._colours = palette(16)
        self._select_mode("new")
        self.generate_button.disable()

    # -- start-up --------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the first VQ-VAE/prior pair in the background (once the engine is free)."""
        self.started = True
        if not self.vqvaes:
            self.set_status(TRAIN_HINT)
            self.original_roll.empty_message = "No VQ-VAE yet: see the status text for how to train one."
            return
        self._pending.append(self._load_job())

    def _load_job(self) -> eng.LoadCodebooks:
        vq = next(c for c in self.vqvaes if c.name == self._menu_text(self.vqvae_menu))
        prior_name = self._menu_text(self.prior_menu)
        prior = next((c.path for c in self.priors if c.name == prior_name), None)
        return eng.LoadCodebooks(vq.path, prior)

    def poll_pending(self) -> None:
        """Submit queued jobs once the engine is free (it runs one job at a time)."""
        if self._pending and not self.engine.busy and self.engine.submit(self._pending[0]):
            job = self._pending.pop(0)
            if isinstance(job, eng.LoadCodebooks):
                self.set_status("Loading the codebook models…")

    @staticmethod
    def _menu_text(menu: UIDropDownMenu) -> str:
        option = menu.selected_option
        return option[0] if isinstance(option, tuple) else option

    # -- helpers ---------------------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        if text != self.status_text:
            self.status_text = text
            self.status.set_text(html.escape(text))

    def _select_mode(self, mode: str) -> None:
        self.mode = mode
        for name, button in self.mode_buttons.items():
            button.select() if name == mode else button.unselect()

    def _select_listen(self, which: str) -> None:
        self.listen = which
        for name, button in self.listen_buttons.items():
            button.select() if name == which else button.unselect()
        self.restart_playback()

    def current_piece(self) -> Piece | None:
        """What Play plays on this tab: the generated piece, or original (A) / reconstruction (B)."""
        if self.generated is not None:
            primer, generated = self.generated
            return Piece(primer, generated, name="cantor_prior")
        if self.reconstruction is None:
            return None
        r = self.reconstruction
        piece = r.original if self.listen == "A" else r.reconstruction
        empty = NoteSequence(
            steps_per_quarter=piece.steps_per_quarter, tempos=piece.tempos, time_signature=piece.time_signature
        )
        return Piece(empty, piece, name=f"{piece.name or 'piece'}_{self.listen}")

    def rolls(self) -> list[PianoRoll]:
        return [self.original_roll, self.recon_roll]

    # -- actions ---------------------------------------------------------------------------------
    def reconstruct(self, piece_name: str | None = None, piece: NoteSequence | None = None) -> None:
        if self.engine.submit(eng.Reconstruct(piece_name=piece_name, piece=piece)):
            self.generated = None
            self.set_status("Encoding and decoding…")
        else:
            self.set_status("Busy: wait for the running job, or stop it")

    def open_piece(self, piece: NoteSequence) -> None:
        self.reconstruct(piece=piece)

    def generate(self) -> None:
        if self.generating or self.loaded is None:
            return
        if self.loaded.prior is None:
            self.set_status("No prior is loaded: train one with python -m models.train_prior")
            return
        settings = eng.GenerationSettings(
            temperature=round(self.temperature.value, 3),
            top_k=int(self.top_k.value),
            seed=int(self.seed_entry.get_text() or 0),
        )
        job = eng.GenerateCodes(self.mode, int(self.quarters.value), settings, int(self.primer_quarters.value))
        if not self.engine.submit(job):
            self.set_status("Busy: a job is already running")
            return
        self.generating = True
        set_running(self.generate_button, True)
        self.progress.set_current_progress(0)

    def stop(self) -> None:
        if self.generating:
            self.engine.cancel()

    def _finish(self) -> None:
        self.generating = False
        set_running(self.generate_button, False)

    # -- events ----------------------------------------------------------------------------------
    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_BUTTON_PRESSED:
            element = event.ui_element
            if element is self.generate_button:
                self.stop() if self.generating else self.generate()
            elif element is self.open_button:
                self.ask_open()
            elif element in self.mode_buttons.values():
                self._select_mode(next(m for m, b in self.mode_buttons.items() if b is element))
            elif element in self.listen_buttons.values():
                self._select_listen(next(k for k, b in self.listen_buttons.items() if b is element))
            else:
                return False
            return True
        if refresh_moved_slider(self.sliders, event):
            return True
        if event.type == pygame_gui.UI_DROP_DOWN_MENU_CHANGED:
            if event.ui_element is self.piece_menu:
                self.reconstruct(piece_name=event.text)
                return True
            if event.ui_element in (self.vqvae_menu, self.prior_menu) and self.vqvaes:
                self._pending.append(self._load_job())
                return True
        if event.type == pygame.MOUSEMOTION:
            self.hover_cell = self.cell_at(event.pos)
        if event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and self.grid_rect.collidepoint(event.pos):
            cell = self.cell_at(event.pos)
            if cell is not None:
                self.selected_cell = cell
                self.play_quarter(cell[0])
            return True
        if event.type == pygame.KEYDOWN and self.selected_cell is not None and self.reconstruction is not None:
            step = {pygame.K_UP: 1, pygame.K_RIGHT: 1, pygame.K_DOWN: -1, pygame.K_LEFT: -1}.get(event.key)
            if step is not None:
                quarter, position = self.selected_cell
                code = int(self.reconstruction.codes[quarter, position])
                self.set_code(quarter, position, (code + step) % self.loaded.codes)
                return True
        for roll in self.rolls():
            if roll.rect.collidepoint(getattr(event, "pos", pygame.mouse.get_pos())) and roll.handle_event(event):
                self._sync_views(roll)
                return True
        return False

    def set_code(self, quarter: int, position: int, code: int) -> None:
        if self.engine.submit(eng.EditCode(quarter, position, code)):
            self.set_status(f"Quarter {quarter + 1}, cell {position}: code {code}")

    def play_quarter(self, quarter: int) -> None:
        """Hear one quarter of the piece being listened to (A or B)."""
        piece = self.current_piece()
        if piece is not None:
            spq = piece.generated.steps_per_quarter
            self.play_excerpt(piece.combined().cropped(quarter * spq, (quarter + 1) * spq))

    def _sync_views(self, source: PianoRoll) -> None:
        for roll in self.rolls():
            if roll is not source:
                roll.view_start, roll.steps_visible = source.view_start, source.steps_visible
                roll._invalidate()

    def cell_at(self, position: tuple[int, int]) -> tuple[int, int] | None:
        """(quarter, code position) under a point of the code grid, or None."""
        if self.reconstruction is None or not self.grid_rect.collidepoint(position):
            return None
        roll = self.recon_roll
        spq = roll.steps_per_quarter
        step = roll.x_to_step(position[0])
        quarter = int(step // spq)
        if not 0 <= quarter < len(self.reconstruction.codes) or step < 0:
            return None
        half = int((step - quarter * spq) * 2 // spq)  # first or second eighth
        band = 7 - int((position[1] - self.grid_rect.y) * 8 // self.grid_rect.h)  # top = highest band
        return quarter, max(0, min(7, band)) * 2 + max(0, min(1, half))

    def handle_engine_event(self, event) -> None:
        if isinstance(event, eng.CodebooksLoaded):
            self.loaded = event
            self._colours = palette(event.codes)
            self.top_k.slider.value_range = (1, event.codes)
            self._patterns = [self._pattern_surface(p) for p in event.patterns]
            self._rebuild_piece_menu(event.piece_names)
            self.generate_button.enable() if event.prior else self.generate_button.disable()
            prior = event.prior or "no prior (train one with python -m models.train_prior)"
            self.set_status(f"Ready: {event.vqvae} ({event.codes} codes), {prior}")
            if event.piece_names:  # show a first piece beside its reconstruction straight away
                self._pending.append(eng.Reconstruct(piece_name=event.piece_names[0]))
        elif isinstance(event, eng.Reconstructed):
            self.reconstruction = event
            self.generated = None
            matched, missed, extra = compare(event.original.notes, event.reconstruction.notes)
            self.original_roll.show_layers({"matched": matched, "missed": missed}, event.original)
            self.recon_roll.show_layers(
                {"matched": [n for n in event.reconstruction.notes if n not in extra], "extra": extra}, event.original
            )
            self.recon_roll.low_pitch, self.recon_roll.high_pitch = (
                self.original_roll.low_pitch,
                self.original_roll.high_pitch,
            )
            self._sync_views(self.original_roll)
            dropped = f" · {event.dropped} notes outside 21-108 left out" if event.dropped else ""
            self.f1_label.set_text(f"Onset F1 {event.onset_f1:.3f} · frame F1 {event.frame_f1:.3f}")
            self.set_status(f"{event.original.name}: {len(missed)} missed, {len(extra)} extra notes{dropped}")
        elif isinstance(event, eng.CodesSoFar):
            self._show_generated(event.primer, event.generated)
            self.progress.set_current_progress(100 * event.quarters_done / event.quarters_total)
            self.set_status(f"Generating… quarter {event.quarters_done}/{event.quarters_total}")
        elif isinstance(event, eng.CodesFinished):
            self._finish()
            self._show_generated(event.primer, event.generated)
            quarters = len(event.generated.notes) and event.generated.total_steps // event.generated.steps_per_quarter
            verb = "Stopped" if event.stopped else "Done"
            self.set_status(f"{verb}: {len(event.generated.notes)} notes in about {quarters} quarters")
            self.on_take(event.primer, event.generated, event.job, event.stopped)
        elif isinstance(event, eng.Error):
            if self.generating:
                self._finish()
            self.set_status(event.message)

    def _show_generated(self, primer: NoteSequence, generated: NoteSequence) -> None:
        self.generated = (primer, generated)
        fresh = self.original_roll.layers.keys() != {"primer", "generated"}
        if fresh:
            self.original_roll.show(primer, generated)
            self.recon_roll.show_layers({}, generated, fit=False)
        else:
            self.original_roll.update_generated(generated)

    def _rebuild_piece_menu(self, names: list[str]) -> None:
        rect, container = self.piece_menu.relative_rect, self.piece_menu.ui_container
        self.piece_menu.kill()
        options = names or ["—"]
        self.piece_menu = UIDropDownMenu(options, options[0], rect, self.manager, container)

    # -- drawing ---------------------------------------------------------------------------------
    def _pattern_surface(self, probabilities: np.ndarray) -> pygame.Surface:
        """A code's decoded pattern (88 x 32 probabilities) as a small image, high notes on top."""
        grey = (np.clip(probabilities, 0, 1) * 255).astype(np.uint8)[::-1].T  # (32, 88): x = tick, y = pitch
        rgb = np.stack([grey // 3, grey, grey], axis=-1)
        return pygame.surfarray.make_surface(np.ascontiguousarray(rgb))

    def draw(self, surface: pygame.Surface) -> None:
        self.original_roll.draw(surface)
        if self.generated is None:
            self.recon_roll.draw(surface)
        self._draw_grid(surface)
        self._draw_explorer(surface)

    def _draw_grid(self, surface: pygame.Surface) -> None:
        pygame.draw.rect(surface, (22, 23, 28), self.grid_rect)
        r = self.reconstruction
        if r is None or self.generated is not None:
            return
        roll = self.recon_roll
        spq = roll.steps_per_quarter
        cell_h = self.grid_rect.h / 8
        clip = surface.get_clip()
        surface.set_clip(self.grid_rect.clip(roll.notes_rect.union(self.grid_rect)))
        for quarter, codes in enumerate(r.codes):
            x0, x1 = roll.step_to_x(quarter * spq), roll.step_to_x((quarter + 1) * spq)
            if x1 < self.grid_rect.x + 46 or x0 > self.grid_rect.right:
                continue
            for position, code in enumerate(codes):
                band, half = divmod(position, 2)
                cx = x0 + half * (x1 - x0) / 2
                cy = self.grid_rect.y + (7 - band) * cell_h
                cell = pygame.Rect(round(cx), round(cy), max(1, round((x1 - x0) / 2) - 1), max(1, round(cell_h) - 1))
                pygame.draw.rect(surface, self._colours[int(code) % len(self._colours)], cell)
                if (quarter, position) == self.selected_cell:
                    pygame.draw.rect(surface, (255, 255, 255), cell, 2)
        surface.set_clip(clip)
        label = self._font.render("codes", True, (150, 156, 170))
        surface.blit(label, (self.grid_rect.x + 4, self.grid_rect.y + 4))
        if self.hover_cell is not None:
            quarter, position = self.hover_cell
            text = f"quarter {quarter + 1} · cell {position} · code {int(r.codes[quarter, position])}"
            tip = self._font.render(text, True, (240, 240, 240), (40, 44, 54))
            surface.blit(tip, (self.grid_rect.x + 4, self.grid_rect.bottom - tip.get_height() - 4))

    def _draw_explorer(self, surface: pygame.Surface) -> None:
        area = self.explorer_rect
        pygame.draw.rect(surface, (24, 26, 32), area)
        title = self._font.render("CODEBOOK", True, (139, 147, 165))
        surface.blit(title, (area.x + 6, area.y + 4))
        if not self._patterns:
            return
        columns, size = 2, ((area.w - 18) // 2, 0)
        width = size[0]
        height = min(int(width * 88 / 64), (area.h - 24) // max(1, -(-len(self._patterns) // columns)) - 16)
        for index, pattern in enumerate(self._patterns):
            row, column = divmod(index, columns)
            x = area.x + 6 + column * (width + 6)
            y = area.y + 22 + row * (height + 16)
            surface.blit(pygame.transform.smoothscale(pattern, (width, height)), (x, y))
            pygame.draw.rect(surface, self._colours[index % len(self._colours)], (x, y, width, height), 2)
            surface.blit(self._font.render(str(index), True, (200, 204, 214)), (x + 2, y + height + 1))
