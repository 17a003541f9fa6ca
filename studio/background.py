"""Slow work the window must not wait for (reading a user's file, rendering a WAV), on a helper
thread, one task at a time. The window polls it once a frame and shows a busy sign meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from tokenizer.errors import CantorError


class BackgroundTask:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cantor-background")
        self._future: Future | None = None
        self._on_done: Callable[[object], None] = lambda result: None
        self._on_error: Callable[[str], None] = lambda message: None
        self.label = ""  # what is being done, for the busy sign
        self.cancel = threading.Event()  # set by forget(): work that watches it stops early

    @property
    def busy(self) -> bool:
        return self._future is not None

    def start(
        self, label: str, work: Callable[[], object], on_done: Callable[[object], None], on_error: Callable[[str], None]
    ) -> bool:
        """Run ``work()`` on the helper thread; False (nothing started) while another task runs."""
        if self.busy:
            return False
        self.label, self._on_done, self._on_error = label, on_done, on_error
        self.cancel = threading.Event()
        self._future = self._pool.submit(work)
        return True

    def forget(self) -> None:
        """Stop waiting for the running task (Cancel): its result, when it comes, is dropped, and
        work that watches ``cancel`` (reading a file kills its reader) stops at once."""
        self.cancel.set()
        if self._future is not None:
            self._future.cancel()
        self._future = None

    def poll(self) -> None:
        """Once a frame: hand a finished task's result (or its error) to its callback."""
        future = self._future
        if future is None or not future.done():
            return
        self._future = None
        try:
            result = future.result()
        except CantorError as err:
            self._on_error(str(err))
            return
        except Exception as err:  # a bug must not take the window down: say it
            self._on_error(f"unexpected {type(err).__name__}: {err}")
            return
        self._on_done(result)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
