"""The studio under load: frame times, time to the first note, and the engine's overhead.

    python -m bench.studio

Runs the real app headless with the shipped small checkpoint and generates 512 words, then
prints UI frame times (p50/p95/max) while generating and while drawing continuously, the time
from pressing Generate to the first note drawn, and words/s inside the studio next to the
sampler's words/s alone with the same settings and thread count (the baseline).

Idle: the window's CPU use (percent of one core) with nothing happening, against the same app
kept drawing at 60 frames a second (what every idle second cost before the loop learnt to sleep),
and the time from starting the App to its first frame on screen.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
os.environ["CANTOR_HOME"] = tempfile.mkdtemp(prefix="cantor-bench-")  # the bench's takes are not yours

import numpy as np

from studio.app import App
from studio.automation import click, run_until

WORDS = 512


def sampler_alone(checkpoint: Path, settings) -> float:
    """Words/s of the same generation straight from the sampler, on this thread."""
    import torch

    from models.sampling import SamplingSettings
    from models.word_model import WordModel

    torch.set_num_threads(1)
    model = WordModel(checkpoint)
    sampling = SamplingSettings(settings.temperature, settings.top_k, settings.top_p, settings.seed)
    started = time.perf_counter()
    count = sum(1 for _ in model.stream_words(WORDS, sampling, stop_at_end=False))
    return count / (time.perf_counter() - started)


def describe(frames: list[float]) -> str:
    ms = np.array(frames) * 1000
    return f"p50 {np.percentile(ms, 50):5.1f} ms   p95 {np.percentile(ms, 95):5.1f} ms   max {ms.max():6.1f} ms"


IDLE_S = 10.0


def cpu_share(app: App, seconds: float, keep_drawing: bool) -> float:
    """Percent of one core the window's process used over ``seconds`` of nothing happening;
    ``keep_drawing`` keeps the loop awake at 60 frames a second (the baseline)."""
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - started_wall < seconds:
        if keep_drawing:
            app.mark_active()
        app.step()
    return 100 * (time.process_time() - started_cpu) / (time.perf_counter() - started_wall)


def main() -> None:
    started = time.perf_counter()
    app = App()
    first_frame = app.first_frame_at - started
    panel = app.generate
    run_until(app, lambda: panel.loaded is not None, 120, "the model to load")
    run_until(app, lambda: app.idle, 120, "the window to go idle")
    idle_cpu = cpu_share(app, IDLE_S, keep_drawing=False)
    drawing_cpu = cpu_share(app, IDLE_S, keep_drawing=True)
    idle = app.frame_times[-120:]
    panel.sampling.words.set_value(WORDS)
    panel.sampling.random_seed.set_state(False)  # the studio's run and the baseline use the same seed
    checkpoint, settings = panel.checkpoints[0].path, panel.settings()
    alone_before = sampler_alone(checkpoint, settings)  # before and after the studio's run: the mean
    click(app, panel.generate_button.rect.center)
    pressed = time.perf_counter()
    first_note = None
    start_frame = len(app.frame_times)
    while panel.generating or first_note is None:
        app.step()
        if first_note is None and panel.piano_roll.generated:
            first_note = time.perf_counter() - pressed
    generating = app.frame_times[start_frame:]
    finished = panel.last_finished
    studio_rate = finished.words / finished.seconds
    assert finished.job.settings == settings
    app.close()
    alone = (alone_before + sampler_alone(checkpoint, settings)) / 2
    print(f"checkpoint {checkpoint.name}, {WORDS} words, engine on 1 torch thread")
    print(f"frames while generating: {describe(generating)}   ({len(generating)} frames)")
    print(f"frames drawing nothing new at 60 fps: {describe(idle)}")
    print(f"idle window: {idle_cpu:.1f} % of a core; kept drawing at 60 fps (the old loop): {drawing_cpu:.1f} %")
    print(f"App() started -> first frame on screen: {first_frame * 1000:.0f} ms")
    print(f"Generate pressed -> first note drawn: {first_note * 1000:.0f} ms")
    print(f"words/s in the studio {studio_rate:.0f}, sampler alone {alone:.0f}: {studio_rate / alone:.0%}")


if __name__ == "__main__":
    main()
