"""A time and memory budget for reading a file: the parse runs in a child process, which is
killed when it takes too long, runs out of its memory or is cancelled. No file, however hostile
(an ABC metre of 99999/1, an .mxl zip bomb, a million-note MIDI), can hang or exhaust the
process that asked: the studio's window, or a ``prepare`` run.
"""

from __future__ import annotations

import multiprocessing
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tokenizer.errors import CantorError

POLL_S = 0.05


@dataclass(frozen=True)
class Budget:
    seconds: float = 60.0
    memory_bytes: int = 2 << 30  # on top of what the child holds when it starts


DEFAULT_BUDGET = Budget()


class Cancelled(CantorError):
    """The user cancelled the read."""


def run_within(
    budget: Budget, what: str, function: Callable, *args: object, cancel: threading.Event | None = None
) -> object:
    """``function(*args)`` in a child process within ``budget``; its result, or CantorError
    naming ``what`` and the cause. ``function`` must be importable (a module-level function)
    and raise CantorError for the errors a user can cause."""
    # fork is quick and safe from a single thread (the command lines); a window's process has
    # threads of its own, so it forks from the forkserver instead
    context = multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child, args=(sender, budget.memory_bytes, function, args), daemon=True)
    child.start()
    sender.close()
    deadline = time.monotonic() + budget.seconds
    try:
        while not receiver.poll(POLL_S):
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"{what}: reading cancelled")
            if time.monotonic() > deadline:
                raise CantorError(
                    f"{what}: still reading after {budget.seconds:g} s; gave up (is it a real music file?)"
                )
            if not child.is_alive() and not receiver.poll(0):
                break
        try:
            status, value = receiver.recv()
        except EOFError:
            child.join(timeout=5)
            raise CantorError(
                f"{what}: the reader stopped without an answer (exit code {child.exitcode}); "
                f"the file may need more than {budget.memory_bytes >> 20} MB to read"
            ) from None
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
        receiver.close()
    if status == "error":
        raise CantorError(value)
    return value


def _child(sender, memory_bytes: int, function: Callable, args: tuple) -> None:
    try:
        with open("/proc/self/statm") as statm:  # virtual size now: imported libraries count too
            base = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (base + memory_bytes, resource.RLIM_INFINITY))
    except (OSError, ValueError):
        pass  # no /proc or no limits here: the time budget still holds
    try:
        answer = ("ok", function(*args))
    except CantorError as err:
        answer = ("error", str(err))
    except MemoryError:
        answer = ("error", f"{args[0] if args else 'the file'}: needs more than {memory_bytes >> 20} MB to read")
    except Exception as err:  # a reader's bug must come back as an answer, not a hang
        answer = ("error", f"{args[0] if args else 'the file'}: could not be read ({type(err).__name__})")
    sender.send(answer)
    sender.close()
