"""The Cantor window: one UIManager, a tab container (Generate | Codebooks), the main loop.

The loop never blocks: each frame drains pygame's events, then the engine's, updates the UI
and draws, at up to 60 frames a second. Model work runs on the engine's worker thread.
"""

from __future__ import annotations

import time
from pathlib import Path

import pygame
import pygame_gui
from pygame_gui.elements import UILabel, UITabContainer

from studio import engine as eng
from studio.codebooks_panel import CodebooksPanel
from studio.engine import Engine
from studio.generate_panel import MARGIN, SIDEBAR_W, GeneratePanel
from studio.settings import Settings, studio_home
from studio.takes import Take, TakeStore
from studio.takes_panel import TakesPanel
from studio.transport import BAR_H, TransportBar
from tokenizer.errors import CantorError
from tokenizer.readers import read_piece

ROOT = Path(__file__).resolve().parent.parent
THEME = ROOT / "assets" / "theme.json"
DEFAULT_SIZE = (1280, 800)
MIN_SIZE = (1024, 700)
FPS = 60
TAKES_W = 220


class App:
    """The studio. ``step()`` runs one frame; ``run()`` loops until the window closes."""

    def __init__(
        self,
        size: tuple[int, int] = DEFAULT_SIZE,
        checkpoints_dir: Path = ROOT / "checkpoints",
        data_root: Path = ROOT / "data",
        engine_threads: int = 1,
        home: Path | None = None,
    ) -> None:
        pygame.init()
        pygame.display.set_caption("Cantor")
        size = (max(MIN_SIZE[0], size[0]), max(MIN_SIZE[1], size[1]))
        self.window = pygame.display.set_mode(size)
        self.manager = pygame_gui.UIManager(size, str(THEME))
        self.manager.preload_fonts([{"name": "noto_sans", "point_size": 14, "style": "bold", "antialiased": "1"}])
        self.clock = pygame.time.Clock()
        self.engine = Engine(data_root=data_root, threads=engine_threads)
        self.running = True
        self.frame_times: list[float] = []  # seconds per frame, for tests and the benchmark
        width, height = size
        self.tabs = UITabContainer(pygame.Rect(0, 0, width, height - BAR_H - 6), self.manager)  # the bar below
        self.tabs.add_tab("Generate", "#tab_generate")
        self.tabs.add_tab("Codebooks", "#tab_codebooks")
        tab_top = self.tabs.get_tab(0)["container"].get_abs_rect().top
        body = pygame.Rect(0, tab_top, width, self.tabs.rect.bottom - tab_top)
        home = Path(home or studio_home())
        self.settings = Settings.load(home / "settings.json")
        self.takes = TakeStore(home / "takes.json")
        # the Generate tab: sidebar | piano roll | takes, and the transport bar under roll and takes
        x0 = SIDEBAR_W + MARGIN
        roll_rect = pygame.Rect(x0, body.y + MARGIN, width - x0 - 2 * MARGIN - TAKES_W, body.h - 2 * MARGIN)
        takes_rect = pygame.Rect(roll_rect.right + MARGIN, roll_rect.y, TAKES_W, roll_rect.h - 70)
        files_rect = pygame.Rect(takes_rect.x, takes_rect.bottom + 6, TAKES_W, 64)
        bar_rect = pygame.Rect(x0, height - BAR_H - 4, width - x0 - MARGIN, BAR_H)
        container = self.tabs.get_tab(0)["container"]
        origin = container.get_abs_rect().topleft  # widgets in the tab are placed relative to it
        takes_rect, files_rect = (r.move(-origin[0], -origin[1]) for r in (takes_rect, files_rect))
        self.generate = GeneratePanel(
            body, roll_rect, self.manager, container, self.engine, checkpoints_dir, on_take=self._add_take
        )
        self.transport = TransportBar(
            bar_rect,
            files_rect,
            self.manager,
            None,  # the bar belongs to the window: it plays whichever tab is showing
            container,
            rolls=lambda: self.active.rolls(),
            settings=self.settings,
            current_piece=lambda: self.active.current_piece(),
            say=lambda text: self.active.set_status(text),
            on_open=lambda piece: self.active.open_piece(piece),
        )
        main_rect = pygame.Rect(x0, body.y + MARGIN, width - x0 - MARGIN, body.h - 2 * MARGIN)
        self.codebooks = CodebooksPanel(
            body,
            main_rect,
            self.manager,
            self.tabs.get_tab(1)["container"],
            self.engine,
            checkpoints_dir,
            on_take=self._add_take,
            ask_open=lambda: self.transport.ask_open(),
            restart_playback=lambda: self.transport.restart_if_playing(),
            play_excerpt=lambda piece: self.transport.play_piece(piece),
        )
        self.takes_panel = TakesPanel(takes_rect, self.manager, container, self.takes, on_pick=self._show_take)
        UILabel(pygame.Rect(width - 120, 2, 110, 30), "Cantor", self.manager, object_id="#app_title")
        self.engine.start()
        self.generate.start()  # the Codebooks tab loads its models when it is first opened
        for message in (self.takes.message, self.transport.player.message):
            if message:
                self.generate.set_status(message)

    @property
    def on_generate_tab(self) -> bool:
        return self.tabs.current_container_index == 0

    @property
    def active(self):
        """The panel of the tab on show."""
        return self.generate if self.on_generate_tab else self.codebooks

    def step(self) -> None:
        """One frame: events, engine events, update, draw."""
        started = time.perf_counter()
        dt = self.clock.tick(FPS) / 1000.0
        for event in pygame.event.get():
            self.process_event(event)
        for engine_event in self.engine.poll():
            self._owner_of(engine_event).handle_engine_event(engine_event)
        if not self.on_generate_tab and not self.codebooks.started:
            self.codebooks.start()
        self.codebooks.poll_pending()
        self.transport.update()
        self.manager.update(dt)
        self.window.fill((20, 21, 26))
        self.manager.draw_ui(self.window)
        self.active.draw(self.window)
        pygame.display.flip()
        self.frame_times.append(time.perf_counter() - started)

    def process_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self.running = False
            return
        if event.type == pygame.DROPFILE:
            self.open_file(Path(event.file))
            return
        if self._over_roll(event) and (self.transport.process_event(event) or self.active.process_event(event)):
            return
        if self.manager.process_events(event):
            return
        if self.transport.process_event(event) or self.takes_panel.process_event(event):
            return
        if event.type == pygame.KEYDOWN and not self._typing():
            if event.key == pygame.K_g:
                self.active.generate()
                return
            if event.key == pygame.K_ESCAPE:
                self.active.stop()
                return
        self.active.process_event(event)

    def _owner_of(self, event: eng.Event):
        """The panel an engine event is for: by its type, and an Error by the job it ended."""
        codebook_events = (eng.CodebooksLoaded, eng.Reconstructed, eng.CodesSoFar, eng.CodesFinished)
        codebook_jobs = (eng.LoadCodebooks, eng.Reconstruct, eng.EditCode, eng.GenerateCodes)
        if isinstance(event, eng.Error):
            return self.codebooks if isinstance(self.engine.last_job, codebook_jobs) else self.generate
        return self.codebooks if isinstance(event, codebook_events) else self.generate

    def _over_roll(self, event: pygame.event.Event) -> bool:
        """Mouse events over the piano roll are the roll's (the tab's panel would swallow them),
        unless a dialog window lies on top there."""
        rolls = self.active.rolls()
        if event.type == pygame.MOUSEWHEEL:
            position = pygame.mouse.get_pos()
        elif event.type in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP, pygame.MOUSEMOTION):
            position = event.pos
        else:
            return False
        if any(roll.dragging for roll in rolls) and event.type != pygame.MOUSEWHEEL:
            return True
        windows = self.manager.get_window_stack().get_full_stack()
        over = any(roll.rect.collidepoint(position) for roll in rolls) or (
            not self.on_generate_tab and self.codebooks.grid_rect.collidepoint(position)
        )
        return over and not any(w.rect.collidepoint(position) for w in windows)

    def open_file(self, path: Path) -> None:
        """Open (or drop) a MIDI/MusicXML file: it shows on the roll, ready to continue."""
        try:
            piece = read_piece(path, steps_per_quarter=4)
        except CantorError as err:
            self.generate.show_error(str(err))
            return
        self.active.open_piece(piece)

    def _add_take(self, primer, generated, job: eng.Generate | eng.GenerateCodes, stopped: bool) -> None:
        s = job.settings
        settings = {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "seed": s.seed}
        if isinstance(job, eng.GenerateCodes):
            settings["quarters"] = job.quarters
            mode = f"prior {job.mode}"
            loaded = self.codebooks.loaded
            checkpoint = f"{loaded.vqvae} + {loaded.prior}" if loaded else ""
        else:
            settings["tokens"] = s.tokens
            mode = job.mode
            checkpoint = self.generate.loaded.name if self.generate.loaded else ""
        take = Take(self.takes.next_number(), mode, settings, checkpoint, primer, generated, stopped)
        try:
            self.takes.add(take)
        except CantorError as err:
            self.generate.set_status(f"the take could not be autosaved: {err}")
        self.takes_panel.refresh(select=take.number)

    def _show_take(self, take: Take) -> None:
        self.transport.stop()
        self.generate.show_take(take.primer, take.generated)
        self.generate.set_status(f"Take {take.number}: {len(take.generated.notes)} generated notes")

    def _typing(self) -> bool:
        focused = self.manager.get_focus_set()
        return bool(focused) and self.generate.seed_entry in focused

    def run(self) -> None:
        while self.running:
            self.step()
        self.close()

    def screenshot(self, path: Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        pygame.image.save(self.window, str(path))
        return path

    def close(self) -> None:
        """Stop the worker cleanly (a running generation is cancelled), then the window. Idempotent."""
        if not pygame.get_init():
            return
        self.transport.close()
        self.engine.shutdown()
        pygame.quit()
