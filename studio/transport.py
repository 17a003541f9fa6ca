"""The transport bar under the piano roll: Play/Stop and Pause/Resume, instrument, tempo, SoundFont, and
the file actions (Open, Save MIDI, Save WAV) for the piece on the roll.

Space plays/stops, Ctrl+S saves MIDI, a click on the roll's time ruler seeks. Exports are
atomic and never overwrite a file without a confirmation. Opening a file and rendering a WAV run
off the window's thread, with a busy sign; a file opened takes its own tempo.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pygame
import pygame_gui
from pygame_gui.elements import UIButton, UIDropDownMenu, UIHorizontalSlider, UILabel, UITextEntryLine
from pygame_gui.windows import UIConfirmationDialog, UIFileDialog

from studio.audio import Player, soundfont_ok
from studio.background import BackgroundTask
from studio.piano_roll import PianoRoll
from studio.settings import Settings
from studio.synth import INSTRUMENTS, Voice, default_soundfont, write_wav
from studio.widgets import centred
from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence
from tokenizer.readers import MIDI_SUFFIXES, MUSIC21_SUFFIXES, read_piece
from tokenizer.writers import write_midi

BAR_H = 40
BPM_RANGE = (20, 300)


class MusicFileDialog(UIFileDialog):
    """pygame_gui's file dialog without hidden folders and files, which sort first and push a
    musician's own folders down the list (pygame_gui lists them all; the hook is its own)."""

    def _create_list_of_directories_and_files_on_current_path(self) -> None:
        super()._create_list_of_directories_and_files_on_current_path()
        self.current_file_list = [
            item
            for item in self.current_file_list
            if not (item[0] if isinstance(item, tuple) else item).startswith(".")
        ]


DIALOG_SUFFIXES = {  # what each file dialog lists and opens
    "open": set(MIDI_SUFFIXES + MUSIC21_SUFFIXES),
    "soundfont": {".sf2", ".sf3"},
}
BOTTOM = {"top": "bottom", "bottom": "bottom"}
BOTTOM_RIGHT = {"left": "right", "right": "right", "top": "bottom", "bottom": "bottom"}


@dataclass
class Piece:
    """What the roll shows: the primer and the generated notes (either may be empty)."""

    primer: NoteSequence
    generated: NoteSequence
    name: str = "cantor"

    def combined(self) -> NoteSequence:
        """Both parts as one piece, on the grid of the part that has notes (the generated one first)."""
        base, other = (self.generated, self.primer) if self.generated.notes else (self.primer, self.generated)
        return replace(base.merged(other), name=self.name)


class TransportBar:
    """Builds the bar in ``rect`` of ``container``; ``current_piece()`` says what to play/export.

    ``rect`` and ``files_rect`` are measured from the bottom (and, for the files, the right) edge
    of their containers, so they stay there when the window is resized. ``busy()`` is true while
    a generation runs: a file cannot replace the piece then.
    """

    def __init__(
        self,
        rect: pygame.Rect,
        files_rect: pygame.Rect,
        manager: pygame_gui.UIManager,
        container,
        files_container,
        rolls: Callable[[], list[PianoRoll]],
        settings: Settings,
        current_piece: Callable[[], Piece | None],
        say: Callable[[str], None],
        on_open: Callable[[NoteSequence], None],
        busy: Callable[[], bool] = lambda: False,
    ) -> None:
        self.manager, self.rolls, self.settings = manager, rolls, settings
        self.current_piece, self.say, self.on_open, self.busy = current_piece, say, on_open, busy
        self.player = Player()
        self.task = BackgroundTask()
        x, y = rect.x, rect.y + 5

        def button(text: str, width: int, tip: str) -> UIButton:
            nonlocal x
            made = UIButton(pygame.Rect(x, y, width, 30), text, manager, container, tool_tip_text=tip, anchors=BOTTOM)
            x += width + 4
            return made

        self.play_button = button("Play", 60, "Play / stop (Space)")
        self.pause_button = button("Pause", 64, "Pause / resume")
        x += 8
        instrument = settings.instrument if settings.instrument in INSTRUMENTS else "Piano"
        self.instrument_menu = UIDropDownMenu(
            list(INSTRUMENTS),
            instrument,
            pygame.Rect(x, y, 116, 30),
            manager,
            container,
            object_id="#instrument_menu",
            anchors=BOTTOM,
            expansion_height_limit=len(INSTRUMENTS) * 30,  # it opens upwards: room for every choice
        )
        x += 124
        bpm = min(BPM_RANGE[1], max(BPM_RANGE[0], settings.bpm))
        self.bpm_entry = UITextEntryLine(pygame.Rect(x, y, 48, 30), manager, container, anchors=BOTTOM)
        self.bpm_entry.set_allowed_characters("numbers")
        self.bpm_entry.set_text_length_limit(3)
        UILabel(pygame.Rect(x + 50, y + 5, 34, 20), "BPM", manager, container, anchors=BOTTOM)
        x += 88
        self.bpm_slider = UIHorizontalSlider(
            pygame.Rect(x, y + 4, 130, 22), bpm, BPM_RANGE, manager, container, click_increment=1, anchors=BOTTOM
        )
        x += 138
        self.soundfont_button = button("SoundFont…", 96, "Pick a .sf2/.sf3 SoundFont")
        half = (files_rect.w - 4) // 2
        self.open_button = UIButton(
            pygame.Rect(files_rect.x, files_rect.y, files_rect.w, 30),
            "Open MIDI / MusicXML…",
            manager,
            files_container,
            tool_tip_text="Open a file to see it and continue it (or drop it on the window)",
            anchors=BOTTOM_RIGHT,
        )
        row = files_rect.y + 34
        self.save_midi_button = UIButton(
            pygame.Rect(files_rect.x, row, half, 30),
            "Save MIDI…",
            manager,
            files_container,
            tool_tip_text="Save the piece as MIDI (Ctrl+S)",
            anchors=BOTTOM_RIGHT,
        )
        self.save_wav_button = UIButton(
            pygame.Rect(files_rect.x + half + 4, row, half, 30),
            "Save WAV…",
            manager,
            files_container,
            tool_tip_text="Render the piece to a WAV file",
            anchors=BOTTOM_RIGHT,
        )
        self._dialog: UIFileDialog | None = None
        self._dialog_purpose = ""
        self._confirm: UIConfirmationDialog | None = None
        self._pending_save: tuple[str, Path] | None = None
        self._playing_piece: NoteSequence | None = None
        self._playing_offset = 0.0  # the step of the piece where an excerpt being played starts
        self.set_bpm(bpm)
        if not self.player.available:
            for b in (self.play_button, self.pause_button):
                b.disable()
            self.say(self.player.message)

    # -- what to sound ---------------------------------------------------------------------------
    @property
    def bpm(self) -> float:
        return float(self.bpm_slider.get_current_value())

    def set_bpm(self, bpm: float, remember: bool = True) -> None:
        """The tempo for playing and saving (the slider and the number agree); ``remember``: it is
        the musician's own tempo, kept in the settings (a file's tempo belongs to that file)."""
        bpm = round(min(BPM_RANGE[1], max(BPM_RANGE[0], bpm)))
        self.bpm_slider.set_current_value(bpm)
        self.bpm_entry.set_text(str(bpm))
        if remember and self.settings.bpm != bpm:
            self.settings.bpm = bpm
            self.settings.save()

    def voice(self) -> Voice:
        program = INSTRUMENTS.get(self.settings.instrument, 0)
        return Voice(program=program, qpm=self.bpm, soundfont=self.settings.soundfont_path())

    # -- playback --------------------------------------------------------------------------------
    def toggle_play(self) -> None:
        if self.player.state == "stopped":
            self.play()
        else:
            self.stop()

    def play(self, start_s: float = 0.0) -> None:
        piece = self.current_piece()
        if piece is None or not (piece.primer.notes or piece.generated.notes):
            self.say("Nothing to play yet")
            return
        self.play_piece(piece.combined(), start_s)

    def play_piece(self, piece: NoteSequence, start_s: float = 0.0, offset_step: float = 0.0) -> None:
        """Play ``piece``: the current one, or an excerpt (one quarter) that begins at
        ``offset_step`` of the piece on the roll, where the playhead then runs."""
        self._playing_piece, self._playing_offset = piece, offset_step
        try:
            self.player.play(self._playing_piece, self.voice(), start_s)
        except CantorError as err:
            if self.settings.soundfont and "SoundFont" in str(err):
                self.settings.soundfont = ""  # fall back to the default and say so
                self.settings.save()
                self.say(f"{err}; back to the default SoundFont")
                self.player.play(self._playing_piece, self.voice(), start_s)
            else:
                self.say(str(err))
                return
        self.play_button.set_text("Stop")

    def stop(self) -> None:
        self.player.stop()
        self.play_button.set_text("Play")
        self.pause_button.set_text("Pause")
        for roll in self.rolls():
            roll.playhead_step = None

    def toggle_pause(self) -> None:
        if self.player.state == "playing":
            self.player.pause()
            self.pause_button.set_text("Resume")
        elif self.player.state == "paused":
            self.player.resume()
            self.pause_button.set_text("Pause")

    def update(self) -> None:
        """Once a frame: feed the player, move the playhead, and finish background work."""
        self.task.poll()
        self.player.update()
        if self.player.state == "stopped":
            if self.play_button.text != "Play":
                self.stop()
            return
        step = self._playing_offset + self.player.seconds_to_step(
            self._playing_piece, self.bpm, self.player.position_s()
        )
        for roll in self.rolls():
            roll.playhead_step = step

    # -- files -----------------------------------------------------------------------------------
    def _open_dialog(self, purpose: str, title: str, initial: Path) -> None:
        if self._dialog is not None:
            self._dialog.kill()
        self._dialog = MusicFileDialog(
            centred(self.manager, 520, 420),
            self.manager,
            window_title=title,
            initial_file_path=str(initial),
            allow_existing_files_only=purpose in ("open", "soundfont"),
            allowed_suffixes=DIALOG_SUFFIXES.get(purpose),
        )
        self._dialog_purpose = purpose

    def ask_open(self) -> None:
        """The file dialog for a MIDI or MusicXML file; the tab on show receives the piece."""
        if self._refuse_open_while_busy():
            return
        folder = self.settings.open_folder or self.settings.export_folder
        self._open_dialog("open", "Open a MIDI or MusicXML file", Path(folder or Path.home()))

    def _refuse_open_while_busy(self) -> bool:
        if self.busy():
            self.say("A generation is running: stop it (Esc) or let it finish, then open the file")
            return True
        if self.task.busy:
            self.say(f"Still {self.task.label}: wait a moment")
            return True
        return False

    def open_path(self, path: Path) -> None:
        """Read a MIDI/MusicXML file off the window's thread; the piece goes to ``on_open``."""
        if self._refuse_open_while_busy():
            return
        self.say(f"Reading {path.name}… (Esc cancels)")
        task = self.task
        task.start(f"reading {path.name}", lambda: read_piece(path, cancel=task.cancel), self._opened, self.say)

    def cancel_reading(self) -> bool:
        """Esc while a file is read: stop reading it. False when no file is being read."""
        if not self.task.busy or not self.task.label.startswith("reading"):
            return False
        label = self.task.label
        self.task.forget()
        self.say(f"Stopped {label}")
        return True

    def _opened(self, piece: NoteSequence) -> None:
        if self.busy():  # a generation started while the file was read: keep the roll as it is
            self.say(f"{piece.name}: read, but a generation is running; open it again afterwards")
            return
        self.stop()
        if piece.tempos:
            self.set_bpm(piece.tempos[0][1], remember=False)  # this file's tempo, not the studio's
        self.on_open(piece)

    def ask_save(self, kind: str) -> None:
        piece = self.current_piece()
        if piece is None or not (piece.primer.notes or piece.generated.notes):
            self.say("Nothing to save yet")
            return
        folder = Path(self.settings.export_folder or Path.home())
        suffix = ".mid" if kind == "midi" else ".wav"
        self._open_dialog(kind, f"Save {kind.upper()}", folder / f"{piece.name}{suffix}")

    def _picked(self, path: Path) -> None:
        purpose = self._dialog_purpose
        self._dialog = None
        if purpose == "open":
            self.settings.open_folder = str(path.parent)  # the next Open… starts there
            self.settings.save()
            self.open_path(path)
        elif purpose == "soundfont":
            try:
                soundfont_ok(path)
            except CantorError as err:
                self.say(f"{err}; keeping the current SoundFont")
                return
            self.settings.soundfont = str(path)
            self.settings.save()
            self.say(f"SoundFont: {path.name}")
        elif path.exists():
            self._pending_save = (purpose, path)
            self._confirm = UIConfirmationDialog(
                centred(self.manager, 400, 200),
                f"{path.name} exists. Replace it?",
                self.manager,
                window_title="Replace file?",
                action_short_name="Replace",
            )
        else:
            self.save(purpose, path)

    def save(self, kind: str, path: Path) -> None:
        """Write the current piece to ``path`` as MIDI (primer and generated as named tracks), at
        the tempo set in the bar, or render it to WAV in the background."""
        piece = self.current_piece()
        if piece is None:
            return
        combined = piece.combined()
        combined.tempos = [(0, self.bpm)]
        if kind == "midi":
            named = (("primer", piece.primer), ("generated", piece.generated))
            parts = [(name, part) for name, part in named if part.notes]
            try:
                write_midi(combined, path, program=self.voice().program, parts=parts)
            except CantorError as err:
                self.say(str(err))
                return
            self._saved(path)
            return
        voice = self.voice()
        if not self.task.start("rendering the WAV", lambda: write_wav(combined, voice, path), self._saved, self.say):
            self.say(f"Still {self.task.label}: wait a moment")
            return
        self.say(f"Rendering {path.name}…")

    def _saved(self, path: Path) -> None:
        self.settings.export_folder = str(Path(path).parent)
        self.settings.save()
        self.say(f"Saved {path}")

    # -- events ----------------------------------------------------------------------------------
    def process_event(self, event: pygame.event.Event) -> bool:
        if event.type == pygame_gui.UI_BUTTON_PRESSED:
            actions = {
                self.play_button: self.toggle_play,
                self.pause_button: self.toggle_pause,
                self.open_button: self.ask_open,
                self.save_midi_button: lambda: self.ask_save("midi"),
                self.save_wav_button: lambda: self.ask_save("wav"),
                self.soundfont_button: lambda: self._open_dialog(
                    "soundfont", "Pick a SoundFont", Path(self.settings.soundfont or default_soundfont())
                ),
            }
            if event.ui_element in actions:
                actions[event.ui_element]()
                return True
        if event.type == pygame_gui.UI_FILE_DIALOG_PATH_PICKED and event.ui_element is self._dialog:
            self._picked(Path(event.text))
            return True
        if (  # Enter on a full path to a music file opens it, as the OK button would
            event.type == pygame_gui.UI_TEXT_ENTRY_FINISHED
            and self._dialog is not None
            and event.ui_element is self._dialog.file_path_text_line
            and self._dialog_purpose in ("open", "soundfont")
        ):
            typed = Path(event.text).expanduser()
            if typed.is_file() and typed.suffix.lower() in DIALOG_SUFFIXES[self._dialog_purpose]:
                self._dialog.kill()
                self._picked(typed)
                return True
        if event.type == pygame_gui.UI_CONFIRMATION_DIALOG_CONFIRMED and event.ui_element is self._confirm:
            kind, path = self._pending_save
            self._confirm, self._pending_save = None, None
            self.save(kind, path)
            return True
        if event.type == pygame_gui.UI_DROP_DOWN_MENU_CHANGED and event.ui_element is self.instrument_menu:
            self.settings.instrument = event.text
            self.settings.save()
            self.restart_if_playing()
            return True
        if event.type == pygame_gui.UI_HORIZONTAL_SLIDER_MOVED and event.ui_element is self.bpm_slider:
            self.set_bpm(self.bpm)
            self.restart_if_playing()
            return True
        if event.type == pygame_gui.UI_TEXT_ENTRY_FINISHED and event.ui_element is self.bpm_entry:
            self.set_bpm(float(self.bpm_entry.get_text() or self.bpm))
            self.restart_if_playing()
            return True
        if event.type == pygame.KEYDOWN:
            if event.key == pygame.K_SPACE:
                self.toggle_play()
                return True
            if event.key == pygame.K_s and event.mod & pygame.KMOD_CTRL:
                self.ask_save("midi")
                return True
        return False

    def play_from_playhead(self) -> None:
        """Play the tab's piece now, from where the playhead stands (the start if it stands nowhere)."""
        piece = self.current_piece()
        if piece is None:
            self.say("Nothing to play yet")
            return
        rolls = self.rolls()
        step = (rolls[0].playhead_step if rolls else 0.0) or 0.0
        self.play(self.player.step_to_seconds(piece.combined(), self.bpm, step))

    def restart_if_playing(self) -> None:
        """After the piece, instrument or tempo changed: play on from the same place."""
        if self.player.state != "stopped" and self._playing_piece is not None:
            rolls = self.rolls()
            step = (rolls[0].playhead_step if rolls else 0.0) or 0.0
            self.play(self.player.step_to_seconds(self._playing_piece, self.bpm, step))

    def seek_to_step(self, step: float) -> None:
        """A click on a roll's time ruler: play the piece from there."""
        piece = self.current_piece()
        if piece is None:
            return
        if self.player.state == "stopped" or self._playing_offset:
            self.play(self.player.step_to_seconds(piece.combined(), self.bpm, step))
            return
        self.player.seek(self.player.step_to_seconds(self._playing_piece, self.bpm, step))

    def close(self) -> None:
        self.player.stop()
        self.task.close()
