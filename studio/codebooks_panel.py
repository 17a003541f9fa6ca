"""The Codebooks tab: see, hear and play with the VQ-VAE pipeline.

Original (top) and reconstruction (bottom) on one time axis, with missed notes and extra notes
marked; the piece's note-onset F1; A/B listening; under the rolls, each quarter's 16 codes as a
coloured grid (8 octave bands x 2 eighths) where a cell can be changed and re-decoded at once;
beside it the codebook explorer, each code drawn as the pattern it decodes to (one octave band
over one eighth); and generation with the prior, streaming quarter by quarter, its codes shown in
the same grid.
The rolls, the grid and the explorer are canvases: UI elements under windows and menus.
"""

from __future__ import annotations

import colorsys
import html
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UIDropDownMenu, UILabel

from studio import engine as eng
from studio.canvas import Canvas
from studio.checkpoints import list_checkpoints
from studio.generate_panel import MARGIN
from studio.piano_roll import PianoRoll
from studio.piece_browser import PieceBrowser
from studio.transport import Piece
from studio.widgets import SIDEBAR_W, Column, PercentBar, SeedField, refresh_moved_slider, set_running, sidebar
from tokenizer.notes import Note, NoteSequence

GRID_H = 96  # the code grid under the rolls
EXPLORER_W = 150
NO_PRIOR = "No prior"
EIGHTHS = ("first eighth", "second eighth")
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


def cell_name(position: int) -> str:
    """A code position as a musician reads it: its octave band (1 lowest) and its eighth."""
    band, half = divmod(position, 2)
    return f"band {band + 1} · {EIGHTHS[half]}"


class CodeGrid(Canvas):
    """Each quarter's 16 codes, under the roll ``timeline`` on its time axis: 8 bands (highest on
    top) x 2 eighths, coloured by code. The hovered cell is outlined, the selected one in white."""

    def __init__(self, relative_rect: pygame.Rect, manager, container, timeline: PianoRoll) -> None:
        self.timeline = timeline
        self.on_click: Callable[[tuple[int, int]], None] = lambda cell: None
        self.on_hover: Callable[[tuple[int, int] | None], None] = lambda cell: None
        self.codes: np.ndarray | None = None  # (quarters, 16)
        self.colours = palette(16)
        self.selected: tuple[int, int] | None = None
        self.hovered_cell: tuple[int, int] | None = None
        self._font = pygame.font.Font(None, 16)
        super().__init__(relative_rect, manager, container)

    def show_codes(self, codes: np.ndarray | None) -> None:
        self.codes = None if codes is None else np.asarray(codes)
        self.invalidate()

    def cell_at(self, position: tuple[int, int]) -> tuple[int, int] | None:
        """(quarter, code position) under a window point, or None."""
        if self.codes is None or not self.rect.collidepoint(position):
            return None
        spq = self.timeline.steps_per_quarter
        step = self.timeline.x_to_step(position[0])
        quarter = int(step // spq)
        if not 0 <= quarter < len(self.codes) or step < 0:
            return None
        half = int((step - quarter * spq) * 2 // spq)
        band = 7 - int((position[1] - self.rect.y) * 8 // self.rect.h)  # top = highest band
        return quarter, max(0, min(7, band)) * 2 + max(0, min(1, half))

    def cell_rect(self, quarter: int, position: int) -> pygame.Rect:
        """Where a cell is drawn, in window coordinates."""
        spq = self.timeline.steps_per_quarter
        x0, x1 = self.timeline.step_to_x(quarter * spq), self.timeline.step_to_x((quarter + 1) * spq)
        band, half = divmod(position, 2)
        cell_h = self.rect.h / 8
        x = x0 + half * (x1 - x0) / 2
        y = self.rect.y + (7 - band) * cell_h
        return pygame.Rect(round(x), round(y), max(1, round((x1 - x0) / 2) - 1), max(1, round(cell_h) - 1))

    def process_event(self, event: pygame.event.Event) -> bool:
        """Pointing at a cell shows it; clicking selects it (the panel plays its quarter)."""
        if event.type == pygame.MOUSEMOTION:
            self.on_hover(self.cell_at(event.pos) if self.under_pointer(event.pos) else None)
        elif event.type == pygame.MOUSEBUTTONDOWN and event.button == 1 and self.under_pointer(event.pos):
            cell = self.cell_at(event.pos)
            if cell is not None:
                self.selected = cell
                self.invalidate()
                self.on_click(cell)
            return True
        return False

    def set_hovered(self, cell: tuple[int, int] | None) -> None:
        if cell != self.hovered_cell:
            self.hovered_cell = cell
            self.invalidate()

    def paint(self, surface: pygame.Surface) -> None:
        surface.fill((22, 23, 28))
        label = self._font.render("codes", True, (150, 156, 170))
        surface.blit(label, (4, 4))
        if self.codes is None:
            return
        spq = self.timeline.steps_per_quarter
        left = self.timeline.notes_rect.x  # cells start where the roll's notes do
        surface.set_clip(pygame.Rect(left - self.rect.x, 0, self.rect.right - left, self.rect.h))
        for quarter, codes in enumerate(self.codes):
            x0, x1 = self.timeline.step_to_x(quarter * spq), self.timeline.step_to_x((quarter + 1) * spq)
            if x1 < left or x0 > self.rect.right:
                continue
            for position, code in enumerate(codes):
                cell = self.local(self.cell_rect(quarter, position))
                pygame.draw.rect(surface, self.colours[int(code) % len(self.colours)], cell)
        for cell, colour, width in ((self.hovered_cell, (20, 20, 20), 2), (self.selected, (255, 255, 255), 2)):
            if cell is not None and cell[0] < len(self.codes):
                pygame.draw.rect(surface, colour, self.local(self.cell_rect(*cell)), width)
        surface.set_clip(None)


class CodebookExplorer(Canvas):
    """Every code drawn as the pattern it decodes to in one band over one eighth, in as large a grid as
    fits; the code under the pointer in the code grid is framed."""

    def __init__(self, relative_rect: pygame.Rect, manager, container) -> None:
        self.patterns: list[np.ndarray] = []  # (12, 16) probabilities a code, high notes first
        self._thumbnails: dict[tuple[int, int], list[pygame.Surface]] = {}
        self.colours = palette(16)
        self.highlighted: int | None = None
        self._font = pygame.font.Font(None, 16)
        super().__init__(relative_rect, manager, container)

    def show_patterns(self, patterns: list[np.ndarray], colours: list[tuple[int, int, int]]) -> None:
        self.patterns = [np.clip(p, 0, 1)[::-1] for p in patterns]  # high notes on top
        self._thumbnails = {}
        self.colours = colours
        self.invalidate()

    def highlight(self, code: int | None) -> None:
        if code != self.highlighted:
            self.highlighted = code
            self.invalidate()

    def _thumbnails_of_size(self, width: int, height: int) -> list[pygame.Surface]:
        """Every pattern drawn in width x height pixels, made once a size. Each pixel shows the
        loudest cell it covers: a voice is one of 12 pitch rows, and averaging it into a thumbnail
        a few pixels high would fade it to nothing."""
        if (width, height) not in self._thumbnails:
            rows = np.arange(height) * self.patterns[0].shape[0] // height
            ticks = np.arange(width) * self.patterns[0].shape[1] // width
            surfaces = []
            for pattern in self.patterns:
                pooled = np.maximum.reduceat(np.maximum.reduceat(pattern, rows, axis=0), ticks, axis=1)
                grey = (pooled * 255).astype(np.uint8).T  # (width, height): x = tick, y = pitch
                surfaces.append(pygame.surfarray.make_surface(np.stack([grey // 3, grey, grey], axis=-1)))
            if len(self._thumbnails) > 1:  # the grid's size and the enlarged one's; a resize replaces the grid's
                self._thumbnails = {k: v for k, v in self._thumbnails.items() if k == (16, 12)}
            self._thumbnails[(width, height)] = surfaces
        return self._thumbnails[(width, height)]

    def paint(self, surface: pygame.Surface) -> None:
        surface.fill((24, 26, 32))
        surface.blit(self._font.render("CODEBOOK", True, (139, 147, 165)), (6, 4))
        if not self.patterns:
            return
        label_h = 14 if len(self.patterns) <= 32 else 0
        columns, width, height = thumbnail_grid(len(self.patterns), self.rect.w - 4, self.rect.h - 24, label_h)
        thumbnails = self._thumbnails_of_size(max(1, width - 2), max(1, height - 2))  # inside the frame
        gap = THUMBNAIL_GAP
        for index, thumbnail in enumerate(thumbnails):
            row, column = divmod(index, columns)
            x = 2 + gap + column * (width + gap)
            y = 22 + row * (height + label_h + gap)
            surface.blit(thumbnail, (x + 1, y + 1))
            frame = (255, 255, 255) if index == self.highlighted else self.colours[index % len(self.colours)]
            pygame.draw.rect(surface, frame, (x, y, width, height), 2 if index == self.highlighted else 1)
            if label_h:
                surface.blit(self._font.render(str(index), True, (200, 204, 214)), (x + 2, y + height + 1))
        if self.highlighted is not None and self.highlighted < len(self.patterns):
            self._draw_magnified(surface, self.highlighted)

    def _draw_magnified(self, surface: pygame.Surface, code: int) -> None:
        """The code under the pointer (or the cell selected), enlarged at the foot of the explorer:
        its 12 pitches of an octave band, high notes on top, over its 16 ticks of an eighth."""
        width = min(surface.get_width() - 12, 16 * MAGNIFIED_CELL)
        cell = max(2, width // 16)
        enlarged = self._thumbnails_of_size(16, 12)[code]
        picture = pygame.transform.scale(enlarged, (16 * cell, 12 * cell))
        x, y = 6, surface.get_height() - picture.get_height() - 22
        pygame.draw.rect(surface, (24, 26, 32), (x - 4, y - 18, picture.get_width() + 8, picture.get_height() + 40))
        surface.blit(self._font.render(f"code {code}, enlarged", True, (230, 232, 238)), (x, y - 14))
        surface.blit(picture, (x, y))
        pygame.draw.rect(surface, (255, 255, 255), (x - 1, y - 1, picture.get_width() + 2, picture.get_height() + 2), 1)
        caption = "12 pitches of its band over an eighth"
        surface.blit(self._font.render(caption, True, (139, 147, 165)), (x, y + picture.get_height() + 4))


MAGNIFIED_CELL = 10  # pixels a cell of the enlarged code
THUMBNAIL_GAP = 3


def thumbnail_grid(count: int, width: int, height: int, label_h: int = 0) -> tuple[int, int, int]:
    """(columns, thumbnail width, height) of the largest thumbnails, 4:3 as a pattern's 16 ticks by
    12 pitches, that lay ``count`` codes out in ``width`` x ``height`` pixels."""
    best = (1, 1, 1)
    for columns in range(1, count + 1):
        rows = -(-count // columns)
        across = (width - THUMBNAIL_GAP * (columns + 1)) // columns
        down = (height - rows * (label_h + THUMBNAIL_GAP)) // rows
        thumb_w = min(across, down * 4 // 3)
        if thumb_w > best[1]:
            best = (columns, thumb_w, max(1, thumb_w * 3 // 4))
    return best


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
        play_now: Callable[[], None],
        play_excerpt: Callable[[NoteSequence, float], None],
    ) -> None:
        self.manager, self.engine, self.container = manager, engine, container
        self.on_take, self.ask_open, self.play_now = on_take, ask_open, play_now
        self.play_excerpt = play_excerpt
        self.vqvaes = list_checkpoints(Path(checkpoints_dir), kind="vqvae")
        self.priors = list_checkpoints(Path(checkpoints_dir), kind="prior")
        self.loaded: eng.CodebooksLoaded | None = None
        self.reconstruction: eng.Reconstructed | None = None
        self.codes: np.ndarray | None = None  # the reconstructed piece's codes, with the user's edits
        self.generated: tuple[NoteSequence, NoteSequence] | None = None
        self.generating = False
        self.running_job: eng.GenerateCodes | None = None
        self.listen = "A"  # which piece Play plays: A = original, B = reconstruction
        self.hearing_generated = False  # Play plays the prior's piece (until Play original / rebuilt is pressed)
        self.mode = "new"
        self.status_text = ""
        self.started = False
        self.browser: PieceBrowser | None = None
        side = sidebar(manager, container, rect.h)
        inner_w = SIDEBAR_W - 2 * MARGIN
        column = Column(manager, side, MARGIN, inner_w, MARGIN)
        column.section("MODELS")
        vq_options = [c.name for c in self.vqvaes] or ["No VQ-VAE found"]
        self.vqvae_menu = UIDropDownMenu(vq_options, vq_options[0], column.row(28, 4), manager, side)
        self.side, self.prior_rect = side, column.row(28, 10)
        self.prior_menu = self._prior_menu(vq_options[0])

        column.section("RECONSTRUCTION")
        row = column.row(28, 4)
        self.piece_button = UIButton(
            pygame.Rect(row.x, row.y, row.w - 84, 28), "Piece…", manager, side, tool_tip_text="Pick a dataset piece"
        )
        self.open_button = UIButton(pygame.Rect(row.right - 80, row.y, 80, 28), "Open…", manager, side)
        self.f1_label = UILabel(column.row(20, 2), "Onset F1 —", manager, side)
        self.cell_label = UILabel(column.row(20, 4), "", manager, side, object_id="#value_label")
        row = column.row(28, 12)
        half = (row.w - 4) // 2
        self.listen_buttons = {
            "A": UIButton(
                pygame.Rect(row.x, row.y, half, 28),
                "Play original",
                manager,
                side,
                tool_tip_text="Play the original (A)",
            ),
            "B": UIButton(
                pygame.Rect(row.x + half + 4, row.y, half, 28),
                "Play rebuilt",
                manager,
                side,
                tool_tip_text="Play the reconstruction (B)",
            ),
        }

        column.section("GENERATE WITH THE PRIOR")
        self.temperature = column.temperature()
        self.top_k = column.slider("Top-k", (1, 16), 8, lambda v: f"{int(v)}")
        self.quarters = column.slider("Quarters", (4, 96), 24, lambda v: f"{int(v)}")
        self.primer_quarters = column.slider(
            "Continue from the first", (1, 16), 4, lambda v: f"{int(v)} quarters", gap=2
        )
        row = column.row(28, 6)
        self.mode_buttons = {
            "new": UIButton(pygame.Rect(row.x, row.y, 100, 28), "New", manager, side),
            "continue": UIButton(pygame.Rect(row.x + 104, row.y, 100, 28), "Continue", manager, side),
        }
        self.seed = SeedField(column.row(28, 8), manager, side)
        self.seed_entry = self.seed.entry
        self.generate_button = UIButton(column.row(38, 6), "Generate", manager, side, object_id="#generate_button")
        self.progress = PercentBar(column.row(18, 4), manager, side)
        self.status = column.status_box("", rect.h, 40)
        self.sliders = [self.temperature, self.top_k, self.quarters, self.primer_quarters]
        self.original_roll = PianoRoll(pygame.Rect(0, 0, 100, 100), manager, container, title="original")
        self.recon_roll = PianoRoll(pygame.Rect(0, 0, 100, 100), manager, container, title="reconstruction")
        self.original_roll.empty_message = "Pick a piece to see it beside its reconstruction."
        self.recon_roll.empty_message = ""
        for roll in self.rolls():
            roll.on_view_changed = lambda source=roll: self._sync_views(source)
        self.grid = CodeGrid(pygame.Rect(0, 0, 100, GRID_H), manager, container, self.recon_roll)
        self.grid.on_hover = self._hover
        self.grid.on_click = lambda cell: self.play_quarter(cell[0])
        self.explorer = CodebookExplorer(pygame.Rect(0, 0, EXPLORER_W, 100), manager, container)
        self.relayout()
        self._select_mode("new")
        self.generate_button.disable()

    # -- layout ----------------------------------------------------------------------------------
    def relayout(self) -> None:
        """Place the rolls, the grid and the explorer in the tab's current size."""
        width, height = self.container.get_container().get_rect().size
        x0, top = SIDEBAR_W + MARGIN, MARGIN
        main_w, main_h = width - x0 - MARGIN, height - 2 * MARGIN
        rolls_w = main_w - EXPLORER_W - MARGIN
        roll_h = (main_h - GRID_H - 8) // 2
        places = (
            (self.original_roll, (x0, top), (rolls_w, roll_h)),
            (self.recon_roll, (x0, top + roll_h + 4), (rolls_w, roll_h)),
            (self.grid, (x0, top + 2 * roll_h + 8), (rolls_w, GRID_H)),
            (self.explorer, (x0 + rolls_w + MARGIN, top), (EXPLORER_W, main_h)),
        )
        for canvas, position, size in places:
            canvas.set_relative_position(position)
            canvas.set_dimensions(size)

    # -- start-up --------------------------------------------------------------------------------
    def start(self) -> None:
        """Load the first VQ-VAE/prior pair in the background (once the engine is free)."""
        self.started = True
        if not self.vqvaes:
            self.set_status(TRAIN_HINT)
            self.original_roll.empty_message = "No VQ-VAE yet: see the status text for how to train one."
            return
        self.engine.enqueue(self._load_job())
        self.set_status("Loading the codebook models…")

    def _load_job(self) -> eng.LoadCodebooks:
        vq = next(c for c in self.vqvaes if c.name == self._menu_text(self.vqvae_menu))
        prior_name = self._menu_text(self.prior_menu)
        prior = next((c.path for c in self.priors if c.name == prior_name), None)
        return eng.LoadCodebooks(vq.path, prior)

    def _prior_menu(self, vqvae: str) -> UIDropDownMenu:
        """The prior menu, showing the first prior trained on ``vqvae``, else the first of its K,
        else none (the VQ-VAE alone still reconstructs)."""
        options = [c.name for c in self.priors] + [NO_PRIOR]
        codes = next((c.codes for c in self.vqvaes if c.name == vqvae), 0)
        fits = [c.name for c in self.priors if c.trained_on == vqvae] + [
            c.name for c in self.priors if c.codes == codes
        ]
        return UIDropDownMenu(options, (fits or [NO_PRIOR])[0], self.prior_rect, self.manager, self.side)

    def _vqvae_changed(self) -> None:
        """A VQ-VAE was picked: its own prior comes with it, as a prior of another K cannot load."""
        vqvae = self._menu_text(self.vqvae_menu)
        prior = next((c for c in self.priors if c.name == self._menu_text(self.prior_menu)), None)
        if prior is None or prior.trained_on != vqvae:  # keep a pair the user chose; else find one
            self.prior_menu.kill()
            self.prior_menu = self._prior_menu(vqvae)

    @staticmethod
    def _menu_text(menu: UIDropDownMenu) -> str:
        option = menu.selected_option
        return option[0] if isinstance(option, tuple) else option

    # -- helpers ---------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.set_status(text)

    def set_status(self, text: str) -> None:
        if text != self.status_text:
            self.status_text = text
            self.status.set_text(html.escape(text))

    def _select_mode(self, mode: str) -> None:
        self.mode = mode
        for name, button in self.mode_buttons.items():
            button.select() if name == mode else button.unselect()
        self.primer_quarters.enable() if mode == "continue" else self.primer_quarters.disable()
        if mode == "continue":
            if self.generated is not None and self.hearing_generated:
                shown = "the prior's piece on show"
            elif self.reconstruction is not None:
                shown = self.reconstruction.original.name or "the piece on show"
            else:
                shown = "a piece you pick first"
            self.set_status(f"Continue: the first {int(self.primer_quarters.value)} quarters of {shown}")

    def listen_to(self, which: str) -> None:
        """Play the original (A) or the reconstruction (B) now, from where the playhead is."""
        self.listen = which
        self.hearing_generated = False
        for name, button in self.listen_buttons.items():
            button.select() if name == which else button.unselect()
        self.play_now()

    def current_piece(self) -> Piece | None:
        """What Play plays on this tab: the generated piece, or original (A) / reconstruction (B)
        once one of those was asked for."""
        if self.generated is not None and (self.hearing_generated or self.reconstruction is None):
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
        if self.generating:
            self.set_status("Busy: stop the generation first")
            return
        self.engine.enqueue(eng.Reconstruct(piece_name=piece_name, piece=piece))
        self.set_status("Encoding and decoding…")

    def open_piece(self, piece: NoteSequence) -> None:
        self.reconstruct(piece=piece)

    def generate(self) -> None:
        if self.generating or self.loaded is None:
            return
        if self.loaded.prior is None:
            self.set_status("No prior is loaded: train one with python -m models.train_prior")
            return
        self.seed.roll()
        settings = eng.GenerationSettings(
            temperature=round(self.temperature.value, 3), top_k=int(self.top_k.value), seed=self.seed.value
        )
        of_generated = self.generated is not None and self.hearing_generated  # the piece on show
        job = eng.GenerateCodes(
            self.mode, int(self.quarters.value), settings, int(self.primer_quarters.value), of_generated
        )
        if not self.engine.submit(job):
            self.set_status("Busy: a job is already running")
            return
        self.running_job = job
        self.generating = True
        set_running(self.generate_button, True)
        self.progress.set_current_progress(0)

    def stop(self) -> None:
        if self.generating:
            self.engine.cancel()

    def keep_partial(self) -> None:
        """The window is closing mid-generation: the quarters written so far become a stopped take."""
        if self.generating and self.generated is not None and self.generated[1].notes:
            self._finish()
            self.on_take(*self.generated, self.running_job, True)

    def _finish(self) -> None:
        self.generating = False
        set_running(self.generate_button, False)

    def _browse(self) -> None:
        names = self.loaded.piece_names if self.loaded else []
        if not names:
            self.set_status("The VQ-VAE's dataset is not here: open a file instead")
            return
        if self.browser is None or not self.browser.alive():
            titles = self.loaded.titles if self.loaded else {}
            self.browser = PieceBrowser(
                self.manager, names, lambda name: self.reconstruct(piece_name=name), titles=titles
            )

    # -- events ----------------------------------------------------------------------------------
    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_BUTTON_PRESSED:
            element = event.ui_element
            if element is self.generate_button:
                self.stop() if self.generating else self.generate()
            elif element is self.open_button:
                self.ask_open()
            elif element is self.piece_button:
                self._browse()
            elif element in self.mode_buttons.values():
                self._select_mode(next(m for m, b in self.mode_buttons.items() if b is element))
            elif element in self.listen_buttons.values():
                self.listen_to(next(k for k, b in self.listen_buttons.items() if b is element))
            else:
                return False
            return True
        if refresh_moved_slider(self.sliders, event):
            return True
        models_changed = event.type == pygame_gui.UI_DROP_DOWN_MENU_CHANGED and event.ui_element in (
            self.vqvae_menu,
            self.prior_menu,
        )
        if models_changed:
            if event.ui_element is self.vqvae_menu:
                self._vqvae_changed()
            if self.vqvaes:
                self.engine.enqueue(self._load_job())
                self.set_status("Loading the codebook models…")
            return True
        if event.type == pygame.KEYDOWN and self.grid.selected is not None and self.editable:
            step = {pygame.K_UP: 1, pygame.K_RIGHT: 1, pygame.K_DOWN: -1, pygame.K_LEFT: -1}.get(event.key)
            if step is not None:
                quarter, position = self.grid.selected
                self.set_code(quarter, position, (int(self.codes[quarter, position]) + step) % self.loaded.codes)
                return True
        if self.original_roll.handle_key(event):
            self._sync_views(self.original_roll)
            return True
        return False

    @property
    def editable(self) -> bool:
        """Codes can be edited on a reconstruction (not on a generated piece)."""
        return self.codes is not None and self.generated is None and self.loaded is not None

    def _hover(self, cell: tuple[int, int] | None) -> None:
        self.grid.set_hovered(cell)
        if cell is None or self.grid.codes is None:
            self.explorer.highlight(None)
            self.cell_label.set_text("")
            return
        quarter, position = cell
        code = int(self.grid.codes[quarter, position])
        self.explorer.highlight(code)
        self.cell_label.set_text(f"quarter {quarter + 1} · {cell_name(position)} · code {code}")

    def set_code(self, quarter: int, position: int, code: int) -> None:
        """Change one cell now (the grid shows it at once) and re-decode once the engine is free;
        quick presses coalesce into the newest code of each cell."""
        self.codes = self.codes.copy()
        self.codes[quarter, position] = code
        self.grid.show_codes(self.codes)
        self._hover((quarter, position))
        self.engine.enqueue(eng.EditCode(quarter, position, code))
        self.set_status(f"Quarter {quarter + 1}, {cell_name(position)}: code {code}")

    def play_quarter(self, quarter: int) -> None:
        """Hear one quarter of the piece on show; the playhead runs over that quarter."""
        piece = self.current_piece()
        if piece is not None:
            spq = piece.generated.steps_per_quarter
            start = quarter * spq
            excerpt = piece.combined().cropped(start, start + spq)
            self.play_excerpt(excerpt, float(start))

    def _sync_views(self, source: PianoRoll) -> None:
        for roll in self.rolls():
            if roll is not source:
                roll.set_view(source.view_start, source.steps_visible)
        self.grid.invalidate()

    def handle_engine_event(self, event) -> None:
        if isinstance(event, eng.CodebooksLoaded):
            self.loaded = event
            colours = palette(event.codes)
            self.grid.colours = colours
            self.top_k.slider.value_range = (1, event.codes)
            self.explorer.show_patterns(list(event.patterns), colours)
            self.generate_button.enable() if event.prior else self.generate_button.disable()
            prior = event.prior or "no prior (train one with python -m models.train_prior)"
            warning = f" · {event.warning}" if event.warning else ""
            vqvae = next((c for c in self.vqvaes if c.name == event.vqvae), None)
            about = vqvae.summary if vqvae and vqvae.summary else f"{event.codes} codes"
            self.set_status(f"Ready: {event.vqvae} ({about}), {prior}{warning}")
            if event.piece_names:  # show a first piece beside its reconstruction straight away
                self.engine.enqueue(eng.Reconstruct(piece_name=event.piece_names[0]))
        elif isinstance(event, eng.Reconstructed):
            self._show_reconstruction(event)
        elif isinstance(event, eng.CodesSoFar):
            self._show_generated(event.primer, event.generated, event.code_grid)
            self.progress.set_current_progress(100 * event.quarters_done / event.quarters_total)
            self.set_status(f"Generating… quarter {event.quarters_done}/{event.quarters_total}")
        elif isinstance(event, eng.CodesFinished):
            self._finish()
            self._show_generated(event.primer, event.generated, event.code_grid)
            quarters = len(event.generated.notes) and event.generated.total_steps // event.generated.steps_per_quarter
            verb = "Stopped" if event.stopped else "Done"
            silent = " · the VQ-VAE decoded these codes to silence" if not event.generated.notes else ""
            self.set_status(f"{verb}: {len(event.generated.notes)} notes in about {quarters} quarters{silent}")
            self.on_take(event.primer, event.generated, event.job, event.stopped)
        elif isinstance(event, eng.Error):
            if self.generating:
                self._finish()
            self.set_status(event.message)

    def _show_reconstruction(self, event: eng.Reconstructed) -> None:
        self.reconstruction = event
        self.codes = np.asarray(event.codes)
        self.generated = None
        matched, missed, extra = compare(event.original.notes, event.reconstruction.notes)
        self.original_roll.title, self.recon_roll.title = "original", "reconstruction"
        self.original_roll.show_layers({"matched": matched, "missed": missed}, event.original)
        self.recon_roll.show_layers(
            {"matched": [n for n in event.reconstruction.notes if n not in extra], "extra": extra}, event.original
        )
        self.recon_roll.low_pitch = self.original_roll.low_pitch
        self.recon_roll.high_pitch = self.original_roll.high_pitch
        self._sync_views(self.original_roll)
        self.grid.show_codes(self.codes)
        for button in self.listen_buttons.values():
            button.enable()
        dropped = f" · {event.dropped} notes outside 21-108 left out" if event.dropped else ""
        self.piece_button.set_text(f"{event.original.name or 'piece'}…")
        self.f1_label.set_text(f"Onset F1 {event.onset_f1:.3f} · frame F1 {event.frame_f1:.3f}")
        self.set_status(f"{event.original.name}: {len(missed)} missed, {len(extra)} extra notes{dropped}")

    def _show_generated(self, primer: NoteSequence, generated: NoteSequence, code_grid) -> None:
        """A prior's piece: primer and new quarters on the top roll, their codes in the grid."""
        fresh = self.generated is None
        self.generated = (primer, generated)
        self.hearing_generated = True
        if fresh:
            self.original_roll.title, self.recon_roll.title = "generated by the prior", ""
            self.original_roll.show_piece(primer, generated)
            self.recon_roll.show_layers({}, generated, fit=False)
            self.recon_roll.empty_message = "The prior's piece is above; its codes below."
            self.piece_button.set_text("Piece…")
            self.f1_label.set_text(f"Prior's piece · {self.running_job.mode if self.running_job else ''}")
            for button in self.listen_buttons.values():
                button.disable()
            self.grid.selected = None
        else:
            self.original_roll.update_generated(generated)
        self.recon_roll.set_view(self.original_roll.view_start, self.original_roll.steps_visible)
        self.grid.show_codes(code_grid)
