"""Playback through pygame.mixer: the piece rendered by FluidSynth, fed to one mixer channel.

Playing renders the first half second and starts at once; each frame ``update()`` renders the
next chunk and queues it behind the one playing (a mixer channel plays a queued sound right
after the current one). Seeking starts a new render at that time. The playhead is the time
since the sound started (pauses taken out); ``bench.audio`` measures its drift against the
samples the audio driver actually consumed. The clock is re-anchored whenever a queued chunk
starts to sound (the channel's queue empties), so it follows the device's own pace and error
cannot accumulate over a long piece.
"""

from __future__ import annotations

import time
from pathlib import Path

import pygame

from studio.synth import SAMPLE_RATE, Renderer, Voice
from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence

CHUNK_S = 0.5
BUFFER_FRAMES = 1024  # the mixer's device buffer: sound leaves the speaker this much after queueing
NO_DEVICE = "no audio device; playback disabled"


class Player:
    """Plays one NoteSequence at a time. ``available`` is False without an audio device."""

    def __init__(self) -> None:
        self.message = ""
        try:
            if not pygame.mixer.get_init():
                pygame.mixer.init(frequency=SAMPLE_RATE, size=-16, channels=2, buffer=BUFFER_FRAMES)
            frequency, _, channels = pygame.mixer.get_init()
            if frequency != SAMPLE_RATE or channels != 2:
                raise pygame.error(f"the device opened at {frequency} Hz with {channels} channels")
            self.available = True
            self._channel = pygame.mixer.Channel(0)
        except pygame.error as err:
            self.available = False
            self.message = f"{NO_DEVICE} ({err})" if str(err) else NO_DEVICE
        self.state = "stopped"  # "playing", "paused"
        self._renderer: Renderer | None = None
        self._started_at = 0.0  # perf_counter when position 0 of this render would have played
        self._chunk_starts: list[float] = []  # piece time of each queued chunk, oldest first
        self._rendered_s = 0.0  # piece time up to which audio has been rendered
        self._paused_at = 0.0
        self._offset_s = 0.0
        self._piece: NoteSequence | None = None
        self._voice = Voice()
        self.duration_s = 0.0

    def play(self, piece: NoteSequence, voice: Voice, start_s: float = 0.0) -> None:
        """Start ``piece`` from ``start_s`` seconds; CantorError if there is no device or the
        SoundFont cannot be loaded."""
        if not self.available:
            raise CantorError(self.message)
        self.stop()
        renderer = Renderer(piece, voice, start_s)
        self._piece, self._voice, self._renderer = piece, voice, renderer
        self._offset_s = start_s
        self.duration_s = start_s + renderer.total_frames / SAMPLE_RATE
        self._rendered_s = start_s
        self._channel.play(self._next_sound())
        self._chunk_starts.clear()
        self._started_at = time.perf_counter() + BUFFER_FRAMES / SAMPLE_RATE
        self.state = "playing"
        self.update()

    def _next_sound(self) -> pygame.mixer.Sound:
        samples = self._renderer.next_chunk(int(CHUNK_S * SAMPLE_RATE))
        self._chunk_starts.append(self._rendered_s)
        self._rendered_s += len(samples) / SAMPLE_RATE
        return pygame.mixer.Sound(buffer=samples.tobytes())

    def update(self) -> None:
        """Once a frame: keep one chunk queued behind the one playing; notice the end."""
        if self.state != "playing":
            return
        if self._channel.get_queue() is None and self._chunk_starts:
            # the queued chunk has just started to sound: its start is now, at the device's pace
            chunk_start = self._chunk_starts.pop(0)
            self._started_at = time.perf_counter() + BUFFER_FRAMES / SAMPLE_RATE - (chunk_start - self._offset_s)
        if self._renderer is not None and not self._renderer.done and self._channel.get_queue() is None:
            self._channel.queue(self._next_sound())
        if self.position_s() >= self.duration_s and not self._channel.get_busy():
            self.stop()

    def pause(self) -> None:
        if self.state == "playing":
            self._channel.pause()
            self._paused_at = time.perf_counter()
            self.state = "paused"

    def resume(self) -> None:
        if self.state == "paused":
            self._channel.unpause()
            self._started_at += time.perf_counter() - self._paused_at
            self.state = "playing"

    def stop(self) -> None:
        if self.available and pygame.mixer.get_init():
            self._channel.stop()
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.state = "stopped"

    def seek(self, seconds: float) -> None:
        """Jump to ``seconds`` in the current piece (playing on if it was playing)."""
        if self._piece is None or self.state == "stopped":
            return
        was_paused = self.state == "paused"
        self.play(self._piece, self._voice, max(0.0, seconds))
        if was_paused:
            self.pause()

    def position_s(self) -> float:
        """Seconds into the piece that are sounding now (0 when stopped)."""
        if self.state == "stopped":
            return 0.0
        now = self._paused_at if self.state == "paused" else time.perf_counter()
        return self._offset_s + now - self._started_at

    @staticmethod
    def seconds_to_step(piece: NoteSequence, qpm: float, seconds: float) -> float:
        return seconds * qpm * piece.steps_per_quarter / 60.0

    @staticmethod
    def step_to_seconds(piece: NoteSequence, qpm: float, step: float) -> float:
        return step * 60.0 / (qpm * piece.steps_per_quarter)


def soundfont_ok(path: Path) -> None:
    """CantorError if ``path`` is not a SoundFont FluidSynth can load."""
    Renderer(NoteSequence(), Voice(soundfont=path)).close()
