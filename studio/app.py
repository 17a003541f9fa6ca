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

from studio.engine import Engine
from studio.generate_panel import GeneratePanel

ROOT = Path(__file__).resolve().parent.parent
THEME = ROOT / "assets" / "theme.json"
DEFAULT_SIZE = (1280, 800)
MIN_SIZE = (1024, 700)
FPS = 60


class App:
    """The studio. ``step()`` runs one frame; ``run()`` loops until the window closes."""

    def __init__(
        self,
        size: tuple[int, int] = DEFAULT_SIZE,
        checkpoints_dir: Path = ROOT / "checkpoints",
        data_root: Path = ROOT / "data",
        engine_threads: int = 1,
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
        self.tabs = UITabContainer(pygame.Rect(0, 0, width, height), self.manager)
        self.tabs.add_tab("Generate", "#tab_generate")
        self.tabs.add_tab("Codebooks", "#tab_codebooks")
        tab_top = self.tabs.get_tab(0)["container"].get_abs_rect().top
        body = pygame.Rect(0, tab_top, width, height - tab_top)
        self.generate = GeneratePanel(
            body, self.manager, self.tabs.get_tab(0)["container"], self.engine, checkpoints_dir
        )
        UILabel(
            pygame.Rect(24, 24, 600, 24),
            "The codebook pipeline (VQ-VAE + prior) arrives here in a later release.",
            self.manager,
            self.tabs.get_tab(1)["container"],
        )
        UILabel(pygame.Rect(width - 120, 2, 110, 30), "Cantor", self.manager, object_id="#app_title")
        self.engine.start()
        self.generate.start()

    @property
    def on_generate_tab(self) -> bool:
        return self.tabs.current_container_index == 0

    def step(self) -> None:
        """One frame: events, engine events, update, draw."""
        started = time.perf_counter()
        dt = self.clock.tick(FPS) / 1000.0
        for event in pygame.event.get():
            self.process_event(event)
        for engine_event in self.engine.poll():
            self.generate.handle_engine_event(engine_event)
        self.manager.update(dt)
        self.window.fill((20, 21, 26))
        self.manager.draw_ui(self.window)
        if self.on_generate_tab:
            self.generate.draw(self.window)
        pygame.display.flip()
        self.frame_times.append(time.perf_counter() - started)

    def process_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self.running = False
            return
        if self.manager.process_events(event):
            return
        if event.type == pygame.KEYDOWN and not self._typing():
            if event.key == pygame.K_g:
                self.generate.generate()
                return
            if event.key == pygame.K_ESCAPE:
                self.generate.stop()
                return
        if self.on_generate_tab:
            self.generate.process_event(event)

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
        """Stop the worker cleanly (a running generation is cancelled), then the window."""
        self.engine.shutdown()
        pygame.quit()
