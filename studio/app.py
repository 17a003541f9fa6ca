"""The Cantor window: one UIManager, a tab container (Generate | Codebooks), the main loop.

The loop never blocks. Each frame drains pygame's events (the UIManager hands mouse events to
the element on top, canvases included; keys go to a focused text field first), then the
engine's, updates the UI and draws it with ``draw_ui``: nothing is drawn after it, so windows,
menus and tooltips lie above the piano roll. While nothing happens (no input, no job, no
playback) the loop sleeps on the event queue and draws a few frames a second.
The window can be resized down to MIN_SIZE; the panels follow their anchors.
"""

from __future__ import annotations

import time
import traceback
import warnings
from pathlib import Path

import pygame
import pygame_gui
from pygame_gui.elements import UILabel, UITabContainer, UITextEntryBox, UITextEntryLine

from studio import engine as eng
from studio.codebooks_panel import CodebooksPanel
from studio.engine import Engine
from studio.generate_panel import MARGIN, GeneratePanel
from studio.rules_window import describe
from studio.settings import Settings, studio_home
from studio.takes import Take, TakeStore
from studio.takes_panel import TakesPanel
from studio.transport import BAR_H, TransportBar
from studio.widgets import SIDEBAR_W, close_repicked_menu, visible_text
from tokenizer.errors import CantorError

ROOT = Path(__file__).resolve().parent.parent
THEME = ROOT / "assets" / "theme.json"
DEFAULT_SIZE = (1280, 800)
MIN_SIZE = (1000, 660)  # fits a 1366 x 768 laptop screen with its title bar and task bar
FPS = 60
IDLE_FPS = 2  # frames a second while nothing happens (a text cursor still blinks)
IDLE_AFTER_S = 1.0  # no input, job or playback for this long: idle
TAKES_W = 220
TAB_BUTTON_H = 30
BACKGROUND = (20, 21, 26)


def fitting_size(requested: tuple[int, int] | None) -> tuple[int, int]:
    """The window size: ``requested`` (at least MIN_SIZE), or by default DEFAULT_SIZE shrunk to fit
    the desktop, leaving room for a title bar and a task bar."""
    if requested is not None:
        return max(MIN_SIZE[0], requested[0]), max(MIN_SIZE[1], requested[1])
    width, height = DEFAULT_SIZE
    desktops = pygame.display.get_desktop_sizes()
    if desktops and desktops[0][0] > 0:
        width = max(MIN_SIZE[0], min(width, desktops[0][0]))
        height = max(MIN_SIZE[1], min(height, desktops[0][1] - 60))
    return width, height


class App:
    """The studio. ``step()`` runs one frame; ``run()`` loops until the window closes."""

    def __init__(
        self,
        size: tuple[int, int] | None = None,
        checkpoints_dir: Path = ROOT / "checkpoints",
        data_root: Path = ROOT / "data",
        engine_threads: int = 1,
        home: Path | None = None,
    ) -> None:
        pygame.init()
        pygame.display.set_caption("Cantor")
        size = fitting_size(size)
        self.window = pygame.display.set_mode(size, pygame.RESIZABLE)
        self._set_minimum_window_size()
        self._splash(size)  # the first frame, before anything slow
        self.first_frame_at = time.perf_counter()
        self.manager = pygame_gui.UIManager(size, str(THEME))
        self.manager.preload_fonts([{"name": "noto_sans", "point_size": 14, "style": "bold", "antialiased": "1"}])
        self.clock = pygame.time.Clock()
        self.engine = Engine(data_root=data_root, threads=engine_threads)
        self.engine.start()  # the worker starts on a helper thread while the widgets are built
        self.running = True
        self.frame_times: list[float] = []  # seconds per frame, for tests and the benchmark
        self.frames_drawn = 0
        self.bugs_seen: set[str] = set()  # the unexpected errors already said once
        self._last_activity = time.monotonic()
        width, height = size
        self.tabs = UITabContainer(pygame.Rect(0, 0, width, height - BAR_H - 6), self.manager)  # the bar below
        self.tabs.add_tab("Generate", "#tab_generate")
        self.tabs.add_tab("Codebooks", "#tab_codebooks")
        body = pygame.Rect(0, 0, width, height - BAR_H - 6 - TAB_BUTTON_H)  # a tab's panel, in its own coordinates
        home = Path(home or studio_home())
        self.settings = Settings.load(home / "settings.json")
        self.takes = TakeStore(home / "takes.json")
        # the Generate tab: sidebar | piano roll | takes and files; the transport bar under them
        container = self.tabs.get_tab(0)["container"]
        x0 = SIDEBAR_W + MARGIN
        roll_rect = pygame.Rect(x0, MARGIN, body.w - x0 - 2 * MARGIN - TAKES_W, body.h - 2 * MARGIN)
        takes_rect = pygame.Rect(-(MARGIN + TAKES_W), MARGIN, TAKES_W, body.h - 2 * MARGIN - 70)  # from the right
        files_rect = pygame.Rect(-(MARGIN + TAKES_W), -(MARGIN + 64), TAKES_W, 64)  # from the bottom right
        bar_rect = pygame.Rect(x0, -(BAR_H + 4), width - x0 - MARGIN, BAR_H)  # from the bottom
        self.generate = GeneratePanel(
            body,
            roll_rect,
            self.manager,
            container,
            self.engine,
            checkpoints_dir,
            self.settings,
            self._add_take,
            on_select_take=self._select_take,
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
            say=lambda text: self.active.say(text),
            on_open=self.open_piece,
            busy=lambda: self.active.generating,
        )
        main_rect = pygame.Rect(x0, MARGIN, body.w - x0 - MARGIN, body.h - 2 * MARGIN)
        self.tabs.switch_current_container(1)  # pygame_gui 0.6.14 cannot build a check box in a hidden tab
        self.codebooks = CodebooksPanel(
            body,
            main_rect,
            self.manager,
            self.tabs.get_tab(1)["container"],
            self.engine,
            checkpoints_dir,
            on_take=self._add_take,
            ask_open=lambda: self.transport.ask_open(),
            play_now=lambda: self.transport.play_from_playhead(),
            play_excerpt=lambda piece, offset: self.transport.play_piece(piece, offset_step=offset),
        )
        self.tabs.switch_current_container(0)
        for roll in (*self.generate.rolls(), *self.codebooks.rolls()):
            roll.on_seek = self.transport.seek_to_step
        self.takes_panel = TakesPanel(
            takes_rect,
            self.manager,
            container,
            self.takes,
            on_pick=self._show_take,
            on_delete=self._deleted_take,
            on_error=lambda message: self.active.set_status(message),
        )
        UILabel(
            pygame.Rect(-120, 2, 110, 30),
            "Cantor",
            self.manager,
            object_id="#app_title",
            anchors={"left": "right", "right": "right"},
        )
        self._shown_takes: dict[int, int | None] = {0: None, 1: None}  # tab -> the take its roll shows
        self._tab = self.tabs.current_container_index
        self.generate.start()  # the Codebooks tab loads its models when it is first opened
        self.generate.show_rules_in_force()
        if self.settings.extra_rules():
            self.generate.set_status(
                f"Rules in force: {describe(self.settings.rules(), self.settings.bar_form)} (Defaults resets them)"
            )
        for message in (self.takes.message, self.settings.message, self.transport.player.message):
            if message:
                self.generate.set_status(message)

    def _splash(self, size: tuple[int, int]) -> None:
        self.window.fill(BACKGROUND)
        font = pygame.font.Font(None, 40)
        text = font.render("Cantor", True, (200, 204, 214))
        self.window.blit(text, text.get_rect(center=(size[0] // 2, size[1] // 2)))
        pygame.display.flip()

    @staticmethod
    def _set_minimum_window_size() -> None:
        """The window manager stops a resize at MIN_SIZE (``resize`` clamps it too, where this fails)."""
        with warnings.catch_warnings():  # pygame-ce's only way to this, while drawing on the display surface
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                pygame.Window.from_display_module().minimum_size = MIN_SIZE
            except (AttributeError, pygame.error):
                pass

    @property
    def on_generate_tab(self) -> bool:
        return self.tabs.current_container_index == 0

    @property
    def active(self):
        """The panel of the tab on show."""
        return self.generate if self.on_generate_tab else self.codebooks

    def mark_active(self) -> None:
        """Something is happening: draw at the full frame rate for the next IDLE_AFTER_S."""
        self._last_activity = time.monotonic()

    @property
    def idle(self) -> bool:
        """Nothing to show changes on its own: no job, no playback, no recent input."""
        return (
            not self.generate.generating
            and not self.codebooks.generating
            and not self.engine.busy
            and self.transport.player.state == "stopped"
            and time.monotonic() - self._last_activity > IDLE_AFTER_S
        )

    def step(self) -> None:
        """One frame: events, engine events, update, draw."""
        idle = self.idle
        dt = self.clock.tick(IDLE_FPS if idle else FPS) / 1000.0
        started = time.perf_counter()
        events = pygame.event.get()
        if idle and not events:  # sleep on the queue: any input wakes the window at once
            first = pygame.event.wait(1000 // IDLE_FPS)
            events = [first, *pygame.event.get()] if first.type != pygame.NOEVENT else []
        for event in events:
            self._surviving(self.process_event, event)
        engine_events = self.engine.poll()
        for engine_event in engine_events:
            self._surviving(self._handle_engine_event, engine_event)
        if events or engine_events:
            self.mark_active()
        if self.tabs.current_container_index != self._tab:  # the list selects what the tab's roll shows
            self._tab = self.tabs.current_container_index
            shown = self._shown_takes.get(self._tab)
            self.takes_panel.refresh(select=shown if shown in {t.number for t in self.takes.takes} else None)
        if not self.on_generate_tab and not self.codebooks.started:
            self._surviving(lambda _: self.codebooks.start(), None)
        self._surviving(lambda _: self.transport.update(), None)
        self._surviving(self.manager.update, dt)
        self.window.fill(BACKGROUND)
        self._surviving(self.manager.draw_ui, self.window)
        pygame.display.flip()
        self.frames_drawn += 1
        self.frame_times.append(time.perf_counter() - started)

    def _surviving(self, handle, argument) -> None:
        """``handle(argument)``; a bug in a handler or a widget never closes the window: it is
        said once in an error window (with the traceback on stderr) and the studio goes on, with
        every take and the piece on the roll as they were."""
        try:
            handle(argument)
        except Exception as err:
            said = f"{type(err).__name__}: {err}"
            if said in self.bugs_seen:
                return
            self.bugs_seen.add(said)
            traceback.print_exc()
            try:
                self.active.show_error(f"Something went wrong inside Cantor ({said[:200]}). Your work is kept.")
            except Exception:  # the error window itself failed: stderr has it
                pass

    def process_event(self, event: pygame.event.Event) -> None:
        if event.type == pygame.QUIT:
            self.running = False
            return
        if event.type == pygame.VIDEORESIZE:
            self.resize((event.w, event.h))
            return
        if event.type == pygame.DROPFILE:
            self.transport.open_path(Path(event.file))
            return
        if event.type == pygame.TEXTINPUT:
            text = visible_text(event.text)  # a zero-width character makes pygame_gui's text layout fail
            if not text:
                return
            event = pygame.event.Event(pygame.TEXTINPUT, text=text, window=getattr(event, "window", None))
        if (
            event.type == pygame.MOUSEBUTTONDOWN
            and self.on_generate_tab
            and self.generate.checkpoint_menu.rect.collidepoint(event.pos)
        ):
            self.generate.rescan_checkpoints()  # before the picker opens: a model trained meanwhile shows up
        if event.type in (pygame.KEYDOWN, pygame.KEYUP, pygame.TEXTINPUT) and self.typing():
            self.manager.process_events(event)  # a text field has the keys: no shortcut fires
            return
        if self.manager.process_events(event) or close_repicked_menu(event):
            return
        if self.transport.process_event(event) or self.takes_panel.process_event(event):
            return
        if event.type == pygame.KEYDOWN:
            if event.key == pygame.K_g:
                self.active.generate()
                return
            if event.key == pygame.K_ESCAPE:
                if not self.transport.cancel_reading():
                    self.active.stop()
                return
        self.active.process_event(event)

    def typing(self) -> bool:
        """Whether a text field (a seed, a tempo, a file dialog's path, a search) has the keyboard."""
        focused = self.manager.get_focus_set() or set()
        return any(isinstance(element, (UITextEntryLine, UITextEntryBox)) for element in focused)

    def resize(self, size: tuple[int, int]) -> None:
        """Lay the window out again for ``size`` (clamped to MIN_SIZE)."""
        width, height = max(MIN_SIZE[0], size[0]), max(MIN_SIZE[1], size[1])
        self.window = pygame.display.get_surface()
        if self.window.get_size() != (width, height):  # clamped, or a driver that did not resize it
            self.window = pygame.display.set_mode((width, height), pygame.RESIZABLE)
        self.manager.set_window_resolution((width, height))
        self.tabs.set_dimensions((width, height - BAR_H - 6))
        body = (width, height - BAR_H - 6 - TAB_BUTTON_H)
        for index in range(self.tabs.tab_count):
            self.tabs.get_tab(index)["container"].set_dimensions(body)
        self.codebooks.relayout()
        self.mark_active()

    def _handle_engine_event(self, event: eng.Event) -> None:
        if isinstance(event, eng.Started) and event.job.mode == "new":
            self.transport.set_bpm(self.settings.bpm, remember=False)  # a new piece: the studio's tempo, not a file's
        self._owner_of(event).handle_engine_event(event)

    def _owner_of(self, event: eng.Event):
        """The panel an engine event is for: by its type, and an Error by the job it ended."""
        codebook_events = (eng.CodebooksLoaded, eng.Reconstructed, eng.CodesSoFar, eng.CodesFinished)
        codebook_jobs = (eng.LoadCodebooks, eng.Reconstruct, eng.EditCode, eng.GenerateCodes)
        if isinstance(event, eng.Error):
            return self.codebooks if isinstance(self.engine.last_job, codebook_jobs) else self.generate
        return self.codebooks if isinstance(event, codebook_events) else self.generate

    def open_piece(self, piece) -> None:
        """A file the user opened or dropped (read by the transport): the tab on show takes it."""
        self.active.open_piece(piece)

    def _add_take(self, primer, generated, job: eng.Generate | eng.GenerateCodes, stopped: bool) -> int:
        s = job.settings
        settings = {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p, "seed": s.seed}
        if isinstance(job, eng.GenerateCodes):
            settings["quarters"] = job.quarters
            mode = f"prior {job.mode}"
            loaded = self.codebooks.loaded
            checkpoint = f"{loaded.vqvae} + {loaded.prior}" if loaded else ""
        else:
            settings["words"] = s.words
            settings["primer"] = self.generate.running_label
            mode = job.mode
            checkpoint = self.generate.loaded.name if self.generate.loaded else ""
        take = Take(self.takes.next_number(), mode, settings, checkpoint, primer, generated, stopped)
        try:
            self.takes.add(take)
        except CantorError as err:
            self.active.set_status(f"the take could not be autosaved: {err}")
        self._shown_takes[1 if isinstance(job, eng.GenerateCodes) else 0] = take.number
        self.takes_panel.refresh(select=take.number)
        return take.number

    def _select_take(self, number: int) -> None:
        """The Generate tab shows take ``number`` (a variation picked): the list selects it too."""
        self._shown_takes[0] = number
        self.takes_panel.refresh(select=number)

    def _show_take(self, take: Take) -> None:
        """A take picked in the list (on the Generate tab): its roll shows it, a prior's take too."""
        self.transport.stop()
        self._shown_takes[0] = take.number
        self.generate.show_take(take.primer, take.generated, take.mode, take.number)
        seed = take.settings.get("seed", "?")
        self.generate.set_status(f"Take {take.number} · seed {seed}: {len(take.generated.notes)} generated notes")

    def _deleted_take(self, shown: Take | None) -> None:
        """A take was deleted: show the one now selected, or an empty roll."""
        self.transport.stop()
        if shown is not None:
            self._show_take(shown)
        else:
            self.generate.clear()

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
        """Keep a generation in progress as a stopped take, stop the worker, then the window. Idempotent."""
        if not pygame.get_init():
            return
        for panel in (self.generate, self.codebooks):
            panel.keep_partial()
        self.transport.close()
        self.engine.shutdown()
        pygame.quit()
