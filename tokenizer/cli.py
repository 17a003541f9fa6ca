"""What every command line of the project shares: help that shows the defaults, and argument
types that refuse a value outside its range in one line naming the argument and the range
(argparse prints "error: argument --steps: 0 is outside 1-10000000")."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module's docstring as written, and every flag's default in --help."""


def whole(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [low, high], or one line naming the range."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside {low}-{high}")
        return value

    return parse


def real(low: float, high: float) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise argparse.ArgumentTypeError(f"{text} is outside {low:g}-{high:g}")
        return value

    return parse


@contextmanager
def stopped_by_ctrl_c() -> Iterator[None]:
    """Around a command's generating loop: Ctrl+C ends the loop, and the command goes on to write
    what was made so far, as the studio's Stop keeps it."""
    try:
        yield
    except KeyboardInterrupt:
        print("stopped (Ctrl+C): writing what was made so far", file=sys.stderr)
