"""Cantor: start the studio.

python main.py
python main.py --smoke --screenshot out/studio.png                   # headless end-to-end check
python main.py --smoke --tab codebooks --screenshot out/codebooks.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def smoke_generate(app, screenshot: Path | None, words: int = 128) -> str:
    """Generate ``words`` words with the default checkpoint through the real UI, play a moment,
    save a screenshot. Raises on any failure; returns a summary."""
    from studio import engine as eng
    from studio.automation import click, move, run_until

    panel = app.generate
    errors: list[str] = []
    show = panel.handle_engine_event

    def watch(event):
        if isinstance(event, eng.Error):
            errors.append(event.message)
        show(event)

    panel.handle_engine_event = watch
    if not panel.checkpoints:
        raise RuntimeError("no checkpoint in checkpoints/")
    run_until(app, lambda: panel.loaded is not None or bool(errors), what="the model to load")
    if errors:
        raise RuntimeError(errors[0])
    panel.sampling.words.set_value(words)
    click(app, panel.generate_button.rect.center)
    run_until(app, lambda: panel.generating or bool(errors), what="the generation to start")
    run_until(app, lambda: not panel.generating, timeout_s=600, what="the generation to finish")
    if errors:
        raise RuntimeError(errors[0])
    if app.transport.player.available:  # play a little, so that the playhead shows too
        click(app, app.transport.play_button.rect.center)
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            app.step()
    move(app, panel.piano_roll.notes_rect.center)  # no tooltip in the picture
    for _ in range(3):
        app.step()
    if screenshot:
        app.screenshot(screenshot)
    app.transport.stop()
    if not panel.result or not panel.result[1].notes:
        raise RuntimeError("the generation produced no notes")
    return f"{len(panel.result[1].notes)} notes"


def smoke_codebooks(app, screenshot: Path | None, quarters: int = 8) -> str:
    """On the Codebooks tab: reconstruct a piece, continue it with the prior (if there is one),
    save a screenshot. Raises on any failure; returns a summary."""
    from studio.automation import click, run_until

    panel = app.codebooks
    if not panel.vqvaes:
        raise RuntimeError("no VQ-VAE checkpoint in checkpoints/")
    click(app, app.tabs.get_tab(1)["button"].rect.center)
    run_until(app, lambda: panel.reconstruction is not None, 300, "the reconstruction")
    if panel.loaded.prior:
        panel.quarters.set_value(quarters)
        click(app, panel.mode_buttons["continue"].rect.center)
        click(app, panel.generate_button.rect.center)
        run_until(app, lambda: panel.generating, 30, "the generation to start")
        run_until(app, lambda: not panel.generating, 600, "the generation to finish")
        if panel.generated is None or not panel.generated[1].notes:
            raise RuntimeError(f"the prior produced no notes ({panel.status_text})")
        panel.reconstruct(piece_name=panel.reconstruction.original.name)  # back to the comparison
        run_until(app, lambda: panel.generated is None and not app.engine.busy, 60, "the reconstruction")
    for _ in range(10):
        app.step()
    if screenshot:
        app.screenshot(screenshot)
    return f"onset F1 {panel.reconstruction.onset_f1:.3f} on {panel.reconstruction.original.name}"


def run_smoke(app, check: Callable, screenshot: Path | None) -> int:
    """0 and a summary if ``check`` passes, else 1 with the message on stderr; the app is closed."""
    try:
        summary = check(app, screenshot)
    except Exception as err:
        print(f"smoke test failed: {err}", file=sys.stderr)
        return 1
    finally:
        app.close()
    print(f"smoke test passed: {summary}" + (f", screenshot {screenshot}" if screenshot else ""))
    return 0


def window_size(text: str) -> tuple[int, int]:
    """'1280x800' -> (1280, 800), for argparse."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 1280x800") from None
    if not (320 <= width <= 16384 and 240 <= height <= 16384):
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be 320-16384 and 240-16384 pixels")
    return width, height


def thread_count(text: str) -> int:
    try:
        threads = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= threads <= 256:
        raise argparse.ArgumentTypeError(f"{threads}: use 1-256 threads")
    return threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Cantor: a studio for making music with small transformers",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="a headless end-to-end run, then exit")
    parser.add_argument("--tab", choices=("generate", "codebooks"), default="generate", help="with --smoke")
    parser.add_argument("--screenshot", type=Path, help="with --smoke: save the window here")
    parser.add_argument(
        "--size", type=window_size, default=None, help="window size, e.g. 1280x800 (default: fits the screen)"
    )
    parser.add_argument("--threads", type=thread_count, default=1, help="torch threads for the models")
    args = parser.parse_args(argv)

    from studio.app import App

    if not args.smoke:
        App(size=args.size, engine_threads=args.threads).run()
        return 0
    with tempfile.TemporaryDirectory(prefix="cantor-smoke-") as home:  # never the user's takes or settings
        app = App(size=args.size, engine_threads=args.threads, home=Path(home))
        return run_smoke(app, smoke_codebooks if args.tab == "codebooks" else smoke_generate, args.screenshot)


if __name__ == "__main__":
    sys.exit(main())
