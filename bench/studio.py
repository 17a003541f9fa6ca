"""The studio under load: frame times, time to the first note, and the engine's overhead.

    python -m bench.studio

Runs the real app headless with the shipped small checkpoint and generates 512 words, then
prints UI frame times (p50/p95/max) while generating and while idle, the time from pressing
Generate to the first note drawn, and words/s inside the studio next to the sampler's words/s
alone with the same settings and thread count (the baseline).
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


def main() -> None:
    app = App()
    panel = app.generate
    run_until(app, lambda: panel.loaded is not None, 120, "the model to load")
    for _ in range(120):
        app.step()
    idle = app.frame_times[-120:]
    panel.words.set_value(WORDS)
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
    print(f"frames while idle:       {describe(idle)}")
    print(f"Generate pressed -> first note drawn: {first_note * 1000:.0f} ms")
    print(f"words/s in the studio {studio_rate:.0f}, sampler alone {alone:.0f}: {studio_rate / alone:.0%}")


if __name__ == "__main__":
    main()
