"""Render a NoteSequence to audio with FluidSynth and a General MIDI SoundFont.

FluidSynth is the shared library that pygame-ce's wheel already carries
(``pygame_ce.libs/libfluidsynth-*.so``), reached through ctypes: no system package needed.
The default SoundFont is the ``TimGM6mb.sf2`` shipped inside pretty_midi's wheel.

Playback and WAV export use the same renderer, so the file sounds like what was heard.
Rendering is chunked: ``Renderer.next_chunk()`` returns the next stretch of samples, so that
playback can start after the first chunk instead of after the whole piece.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import wave
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tokenizer.atomic import atomic_write
from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence

SAMPLE_RATE = 44100
GAIN = 1.5  # FluidSynth's master gain: four voices of the default piano peak near -8 dBFS, clear of clipping
EXPORT_PEAK_DBFS = -1.0  # an exported WAV is scaled to peak here, as a bounce is
TAIL_S = 1.5  # let the last notes ring out
INSTRUMENTS = {"Piano": 0, "Harpsichord": 6, "Organ": 19, "Choir": 52, "Strings": 48}


def default_soundfont() -> Path:
    spec = importlib.util.find_spec("pretty_midi")
    return Path(spec.origin).parent / "TimGM6mb.sf2"


@cache
def _library() -> ctypes.CDLL:
    """libfluidsynth: pygame-ce's bundled copy first, then the system's."""
    candidates: list[str] = []
    spec = importlib.util.find_spec("pygame")
    if spec and spec.origin:
        libs = Path(spec.origin).parent.parent / "pygame_ce.libs"
        candidates += [str(p) for p in sorted(libs.glob("libfluidsynth*"))]
    if found := ctypes.util.find_library("fluidsynth"):
        candidates.append(found)
    for candidate in candidates:
        try:
            lib = ctypes.CDLL(candidate)
        except OSError:
            continue
        _declare(lib)
        for level in range(5):  # keep FluidSynth's own log quiet: errors reach the user as CantorError
            lib.fluid_set_log_function(level, None, None)
        return lib
    raise CantorError("FluidSynth was not found (it comes with pygame-ce); audio is unavailable")


def _declare(lib: ctypes.CDLL) -> None:
    p, i, d, s = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
    signatures = {
        "new_fluid_settings": ([], p),
        "delete_fluid_settings": ([p], None),
        "fluid_settings_setnum": ([p, s, d], i),
        "fluid_settings_setint": ([p, s, i], i),
        "new_fluid_synth": ([p], p),
        "delete_fluid_synth": ([p], None),
        "fluid_synth_sfload": ([p, s, i], i),
        "fluid_synth_program_change": ([p, i, i], i),
        "fluid_synth_noteon": ([p, i, i, i], i),
        "fluid_synth_noteoff": ([p, i, i], i),
        "fluid_synth_write_s16": ([p, i, p, i, i, p, i, i], i),
        "fluid_set_log_function": ([i, p, p], p),
    }
    for name, (args, result) in signatures.items():
        function = getattr(lib, name)
        function.argtypes, function.restype = args, result


@dataclass(frozen=True)
class Voice:
    """How to sound a piece: General MIDI program, tempo and SoundFont."""

    program: int = 0
    qpm: float = 100.0
    soundfont: Path | None = None


def note_events(piece: NoteSequence, qpm: float, start_s: float = 0.0) -> list[tuple[int, int, int, int]]:
    """(frame, is_on, pitch, velocity) from ``start_s`` on, at ``qpm`` quarters per minute.

    Offs sort before ons at the same frame, so a repeated note is struck again. A note already
    sounding at ``start_s`` starts there.
    """
    seconds_per_step = 60.0 / (qpm * piece.steps_per_quarter)
    events = []
    for note in piece.notes:
        on, off = note.start * seconds_per_step, note.end * seconds_per_step
        if off <= start_s:
            continue
        events.append((round((max(on, start_s) - start_s) * SAMPLE_RATE), 1, note.pitch, note.velocity))
        events.append((round((off - start_s) * SAMPLE_RATE), 0, note.pitch, 0))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


class Renderer:
    """A FluidSynth instance rendering one piece from ``start_s`` on, chunk by chunk."""

    def __init__(self, piece: NoteSequence, voice: Voice, start_s: float = 0.0) -> None:
        self._lib = lib = _library()
        soundfont = Path(voice.soundfont or default_soundfont())
        if not soundfont.is_file():
            raise CantorError(f"{soundfont.name}: no such SoundFont")
        self._settings = lib.new_fluid_settings()
        lib.fluid_settings_setnum(self._settings, b"synth.sample-rate", float(SAMPLE_RATE))
        lib.fluid_settings_setnum(self._settings, b"synth.gain", GAIN)
        self._synth = lib.new_fluid_synth(self._settings)
        if lib.fluid_synth_sfload(self._synth, str(soundfont).encode(), 1) < 0:
            self.close()
            raise CantorError(f"{soundfont.name}: not a SoundFont that FluidSynth can load")
        lib.fluid_synth_program_change(self._synth, 0, voice.program)
        self._events = note_events(piece, voice.qpm, start_s)
        self._next_event = 0
        self._frame = 0
        last = self._events[-1][0] if self._events else 0
        self.total_frames = last + int(TAIL_S * SAMPLE_RATE)

    @property
    def done(self) -> bool:
        return self._frame >= self.total_frames

    def next_chunk(self, frames: int) -> np.ndarray:
        """The next ``frames`` frames (fewer at the end) as int16 of shape (n, 2)."""
        lib, synth = self._lib, self._synth
        end = min(self.total_frames, self._frame + frames)
        out = np.zeros((end - self._frame, 2), dtype=np.int16)
        written = 0
        while self._frame < end:
            while self._next_event < len(self._events) and self._events[self._next_event][0] <= self._frame:
                _, is_on, pitch, velocity = self._events[self._next_event]
                if is_on:
                    lib.fluid_synth_noteon(synth, 0, pitch, velocity)
                else:
                    lib.fluid_synth_noteoff(synth, 0, pitch)
                self._next_event += 1
            upcoming = self._events[self._next_event][0] if self._next_event < len(self._events) else end
            count = min(end, upcoming) - self._frame
            view = out[written : written + count]
            pointer = view.ctypes.data_as(ctypes.c_void_p)
            lib.fluid_synth_write_s16(synth, count, pointer, 0, 2, pointer, 1, 2)
            written += count
            self._frame += count
        return out

    def render_all(self) -> np.ndarray:
        return self.next_chunk(self.total_frames - self._frame)

    def close(self) -> None:
        if self._synth:
            self._lib.delete_fluid_synth(self._synth)
            self._synth = None
        if self._settings:
            self._lib.delete_fluid_settings(self._settings)
            self._settings = None

    def __del__(self) -> None:
        self.close()


def render(piece: NoteSequence, voice: Voice) -> np.ndarray:
    """The whole piece as int16 stereo samples, shape (frames, 2), at SAMPLE_RATE."""
    renderer = Renderer(piece, voice)
    try:
        return renderer.render_all()
    finally:
        renderer.close()


def at_export_level(samples: np.ndarray) -> np.ndarray:
    """``samples`` (int16) scaled so that their peak is at EXPORT_PEAK_DBFS, as a bounce is."""
    peak = int(np.abs(samples.astype(np.int32)).max()) if samples.size else 0
    if peak == 0:
        return samples
    scale = 32767 * 10 ** (EXPORT_PEAK_DBFS / 20) / peak
    return np.clip(np.round(samples.astype(np.float64) * scale), -32768, 32767).astype(np.int16)


def write_wav(piece: NoteSequence, voice: Voice, path: str | Path) -> Path:
    """Render ``piece`` and write a 16-bit stereo WAV file at ``path`` atomically, its peak at
    EXPORT_PEAK_DBFS."""
    samples = at_export_level(render(piece, voice))

    def write(temp: Path) -> None:
        with wave.open(str(temp), "wb") as wav:
            wav.setnchannels(2)
            wav.setsampwidth(2)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(samples.tobytes())

    return atomic_write(path, write)
