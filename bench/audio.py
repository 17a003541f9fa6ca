"""Audio: WAV render speed, time from Play to sound, playhead drift, measured on real output.

    python -m bench.audio [--seconds 60]

Runs with SDL's disk audio driver, which writes the mixed output to a file at the device's pace,
so "sound" means non-silent samples in that file:
- render speed of a four-voice chorale piece of about 60 s, as a multiple of real time, beside
  pretty_midi's own ``synthesize()`` (sine waves, no SoundFont) on the same notes;
- time from Player.play() to the first non-silent sample the driver wrote;
- after ``--seconds`` of playback, the player's playhead minus the audio time the driver consumed.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import time
from pathlib import Path

OUTPUT = Path(tempfile.gettempdir()) / "cantor_bench_audio.raw"
os.environ["SDL_AUDIODRIVER"] = "disk"
os.environ["SDL_DISKAUDIOFILE"] = str(OUTPUT)

import numpy as np  # noqa: E402
import pretty_midi  # noqa: E402
import pygame  # noqa: E402

from studio.audio import Player  # noqa: E402
from studio.synth import SAMPLE_RATE, Voice, render  # noqa: E402
from tokenizer.dataset import WordDataset  # noqa: E402
from tokenizer.notes import NoteSequence  # noqa: E402
from tokenizer.writers import midi_bytes  # noqa: E402

BYTES_PER_SECOND = SAMPLE_RATE * 2 * 2  # 16-bit stereo


def chorale_minute(qpm: float) -> NoteSequence:
    """Chorales laid end to end and cut to 60 s at ``qpm``."""
    dataset = WordDataset("data/chorales")
    piece = NoteSequence(steps_per_quarter=4, tempos=[(0, qpm)])
    for name in dataset.names("train"):
        piece = piece.extended(dataset.piece(name)) if piece.notes else dataset.piece(name)
        if piece.total_steps * 60 / (qpm * 4) >= 60:
            break
    return piece.cropped(0, round(60 * qpm * 4 / 60))


def first_sound_after(offset: int, timeout_s: float = 5.0) -> int:
    """Byte offset of the first non-silent frame the driver wrote after ``offset``."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        data = np.frombuffer(OUTPUT.read_bytes()[offset:], dtype=np.int16)
        loud = np.flatnonzero(np.abs(data) > 64)
        if len(loud):
            return offset + (int(loud[0]) // 2) * 4
        time.sleep(0.01)
    raise TimeoutError("no sound reached the audio driver")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="playback time for the drift figure")
    args = parser.parse_args()
    qpm = 96.0
    piece = chorale_minute(qpm)
    piece_s = piece.total_steps * 60 / (qpm * 4)

    started = time.perf_counter()
    render(piece, Voice(program=0, qpm=qpm))
    ours = time.perf_counter() - started
    midi = pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes(NoteSequence(piece.notes, 4, [(0, qpm)]))))
    started = time.perf_counter()
    midi.synthesize(fs=SAMPLE_RATE)
    theirs = time.perf_counter() - started
    print(
        f"render a {piece_s:.0f} s four-voice piece: Cantor (FluidSynth, TimGM6mb) {piece_s / ours:.0f}x real time; "
        f"pretty_midi.synthesize (sine) {piece_s / theirs:.0f}x; ratio {theirs / ours:.2f}"
    )

    pygame.mixer.pre_init(SAMPLE_RATE, -16, 2, 1024)
    pygame.init()
    player = Player()
    time.sleep(0.5)  # let the driver settle into its pace
    offset = OUTPUT.stat().st_size
    called = time.perf_counter()
    player.play(piece, Voice(qpm=qpm))
    play_call = time.perf_counter() - called
    sound_at = first_sound_after(offset)
    # bytes the driver wrote between the call and the first sound, as time at the device's pace
    latency = (sound_at - offset) / BYTES_PER_SECOND
    print(
        f"Play -> sound: play() returned after {play_call * 1000:.0f} ms; first sound "
        f"{latency * 1000:.0f} ms of device time after the call"
    )

    until = time.perf_counter() + min(args.seconds, piece_s)
    while time.perf_counter() < until:
        player.update()
        time.sleep(1 / 60)
    playhead = player.position_s()
    consumed = (OUTPUT.stat().st_size - sound_at) / BYTES_PER_SECOND
    player.stop()
    pygame.quit()
    print(
        f"after {args.seconds:.0f} s: playhead {playhead:.3f} s, audio the device consumed {consumed:.3f} s, "
        f"drift {(playhead - consumed) * 1000:+.0f} ms"
    )
    OUTPUT.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
