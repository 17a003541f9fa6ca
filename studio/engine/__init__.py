"""The studio's only door to the models: jobs in, events out, with a worker process.

The UI submits a job (load a checkpoint, generate) and drains ``poll()`` once per frame.
The models live in ``studio.engine.worker``'s process, so torch never runs in the window's process.
One job runs at a time. ``submit`` refuses a job while another runs (returns False, and the UI
says so): that is for what the user asked for now, such as Generate. ``enqueue`` keeps a job
until the worker is free, replacing a queued job of the same kind (the newest edit of a code
cell, the newest primer to show). ``cancel()`` stops a generation between two words, and the
words made until then come back in a ``Cancelled`` event.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from tokenizer.constraints import Rules
from tokenizer.notes import NoteSequence

# -- jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 0.8  # bench.quality: closer to Bach than 1.0 on cadences, the classifier and overlap
    words: int = 768  # a chorale's median is 585 words (48 quarters) in the steps encoding
    top_k: int | None = None  # None: off
    top_p: float = 1.0
    seed: int = 1
    rules: Rules | None = field(default_factory=Rules)  # the sampler's musical rules; None: the grammar alone
    variations: int = 1  # "new" and "continue": pieces written at once, seeds seed, seed + 1, ...
    key: str | None = None  # the key asked for (tokenizer.keys.KEYS); None: a new piece's as Bach's, else the input's
    bar_form: bool | None = None  # a new piece sings its first two phrases again (tokenizer/repeat.py); None: as Bach


@dataclass(frozen=True)
class LoadCheckpoint:
    path: Path


@dataclass(frozen=True)
class Generate:
    """mode: "new" (from START), "continue" (a dataset piece or ``primer``), "retry" (the last
    continuation's primer again), "harmonize" (voices under the top line of ``primer``) or
    "regenerate" (rewrite the steps ``gap`` of ``primer``, keep the rest)."""

    mode: str
    settings: GenerationSettings
    piece_name: str | None = None  # "continue": a dataset piece; None: a random one
    primer_quarters: int = 8
    primer: NoteSequence | None = None  # "continue": the user's own piece instead; the piece to harmonize or regenerate
    gap: tuple[int, int] | None = None  # "regenerate": the selection, in steps [start, end)
    keep_melody: bool = False  # "regenerate": keep the top line in the selection (a harmonization's tune)


@dataclass(frozen=True)
class PreparePrimer:
    """The opening of a dataset piece, as Continue would use it: shown before generating."""

    piece_name: str
    primer_quarters: int


@dataclass(frozen=True)
class LoadCodebooks:
    vqvae: Path
    prior: Path | None


@dataclass(frozen=True)
class Reconstruct:
    """Encode and decode a dataset piece (by name) or the user's own piece."""

    piece_name: str | None = None
    piece: NoteSequence | None = None


@dataclass(frozen=True)
class EditCode:
    quarter: int
    position: int  # 0..15
    code: int


@dataclass(frozen=True)
class GenerateCodes:
    """mode "new" or "continue": from the first ``primer_quarters`` of the piece on show, the
    reconstructed one or (``of_generated``) the prior's last piece."""

    mode: str
    quarters: int
    settings: GenerationSettings
    primer_quarters: int = 4
    of_generated: bool = False


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    name: str
    card: dict
    piece_names: list[str]
    titles: dict[str, str] = field(default_factory=dict)  # {piece name: its title}, where known


@dataclass(frozen=True)
class Started:
    job: Generate
    primer: NoteSequence  # empty for a new piece
    note: str = ""  # e.g. that the primer was cut to the context
    key: str | None = None  # the key in force; None: the model is choosing it


@dataclass(frozen=True)
class PrimerReady:
    piece_name: str
    primer: NoteSequence
    note: str = ""  # e.g. that the primer will be cut to the context


@dataclass(frozen=True)
class Word:
    text: str


@dataclass(frozen=True)
class NotesSoFar:
    primer: NoteSequence
    generated: NoteSequence
    variations: tuple[NoteSequence, ...] = ()  # with several variations: each one's notes (the first is ``generated``)


@dataclass(frozen=True)
class Progress:
    done: int
    total: int


@dataclass(frozen=True)
class Finished:
    primer: NoteSequence
    generated: NoteSequence
    job: Generate
    words: int
    seconds: float
    variations: tuple[NoteSequence, ...] = ()
    ended: bool = True  # every piece ended by itself (with a cadence); False: stopped at the length limit


@dataclass(frozen=True)
class Cancelled:
    primer: NoteSequence
    generated: NoteSequence
    job: Generate
    words: int
    variations: tuple[NoteSequence, ...] = ()


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class CodebooksLoaded:
    vqvae: str
    prior: str | None
    codes: int
    piece_names: list[str]
    patterns: object  # (K, 12, 16) note probabilities: each code's meaning in one band over one eighth
    warning: str = ""  # e.g. that the prior was trained on another VQ-VAE's codes
    titles: dict[str, str] = field(default_factory=dict)  # {piece name: its title}, where known


@dataclass(frozen=True)
class Reconstructed:
    original: NoteSequence
    reconstruction: NoteSequence
    codes: object  # (quarters, 16) int array
    onset_f1: float
    frame_f1: float
    dropped: int  # notes outside 21-108 left out


@dataclass(frozen=True)
class CodesSoFar:
    primer: NoteSequence
    generated: NoteSequence
    quarters_done: int
    quarters_total: int
    code_grid: object = None  # (quarters, 16) int array: the primer's and the generated codes


@dataclass(frozen=True)
class CodesFinished:
    primer: NoteSequence
    generated: NoteSequence
    job: GenerateCodes
    stopped: bool
    codes: int  # codes generated
    code_grid: object = None  # (quarters, 16) int array: the primer's and the generated codes


Event = (
    Loaded
    | Started
    | PrimerReady
    | Word
    | NotesSoFar
    | Progress
    | Finished
    | Cancelled
    | Error
    | CodebooksLoaded
    | Reconstructed
    | CodesSoFar
    | CodesFinished
)


def _queue_key(job) -> tuple:
    """Queued jobs with the same key replace one another: one per kind, one per code cell."""
    if isinstance(job, EditCode):
        return (EditCode, job.quarter, job.position)
    return (type(job),)


class Engine:
    """The UI's side of the engine: jobs go to a worker process, events come back.

    ``threads``: torch CPU threads in the worker. The worker starts from a fork server that has
    torch imported already, so a restart after a crash (or the next App in a test run) is quick;
    the first start happens on a helper thread, so the window never waits for torch.
    """

    def __init__(self, data_root: Path = Path("data"), threads: int = 1) -> None:
        self.data_root = Path(data_root).resolve()
        self.threads = threads
        self._context = multiprocessing.get_context("forkserver")
        # the server also forks the children that read a user's file (tokenizer/budget.py);
        # torch._dynamo is what building a model on the meta device (models/checkpoint.py) first
        # imports: 1-2 s that every worker would pay again
        preload = ["torch", "torch._dynamo", "studio.engine.worker", "tokenizer.readers", "music21"]
        self._context.set_forkserver_preload(preload)
        self._received: deque = deque(maxlen=64)  # recent jobs, newest last
        self._queued: list = []  # jobs waiting for the worker, oldest first
        self._loads: dict[type, object] = {}  # the last load of each kind: replayed after a restart
        self._closing = False
        self._failed = ""  # why the worker process could not start, until poll() reports it
        self._starter: threading.Thread | None = None
        self._open()

    def _open(self) -> None:
        from studio.engine.worker import serve  # the worker's module knows the models; only its name is needed here

        ctx = self._context
        self._jobs, self._events = ctx.Queue(), ctx.Queue()
        self._cancel, self._busy = ctx.Event(), ctx.Event()
        self._started = threading.Event()
        args = (self._jobs, self._events, self._cancel, self._busy, self.data_root, self.threads)
        self._process = ctx.Process(target=serve, args=args, name="cantor-engine", daemon=True)

    # -- the UI's side -----------------------------------------------------------------------
    def start(self) -> None:
        self._starter = threading.Thread(target=self._start_process, name="cantor-engine-start", daemon=True)
        self._starter.start()

    def _start_process(self) -> None:
        try:
            self._process.start()
        except Exception as err:  # e.g. a script that opens the studio without an `if __name__` guard
            first_line = (str(err).strip().splitlines() or [""])[0]
            self._failed = f"the engine process could not start: {type(err).__name__}: {first_line}"
            return
        self._started.set()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    @property
    def alive(self) -> bool:
        """Whether the worker process is running."""
        return self._started.is_set() and self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The worker process's id, once it has started."""
        return self._process.pid if self._started.is_set() else None

    @property
    def received(self) -> list:
        """The most recent jobs (up to 64), oldest first: for tests and diagnostics."""
        return list(self._received)

    @property
    def last_job(self):
        return self._received[-1] if self._received else None

    def submit(self, job) -> bool:
        """Queue ``job``; False (and nothing queued) if a job is running."""
        if self._busy.is_set():
            return False
        self._busy.set()
        self._cancel.clear()
        self._received.append(job)
        if isinstance(job, (LoadCheckpoint, LoadCodebooks)):
            self._loads[type(job)] = job
        self._jobs.put(job)
        return True

    def enqueue(self, job) -> None:
        """Run ``job`` once the worker is free; it replaces a queued job of the same kind."""
        self._queued = [queued for queued in self._queued if _queue_key(queued) != _queue_key(job)]
        self._queued.append(job)
        self._submit_queued()

    @property
    def queued(self) -> list:
        return list(self._queued)

    def _submit_queued(self) -> None:
        if self._queued and self._started.is_set() and not self._busy.is_set() and self.submit(self._queued[0]):
            self._queued.pop(0)

    def cancel(self) -> None:
        self._cancel.set()

    def poll(self) -> list[Event]:
        """The events posted since the last call; an Error if the worker process has died (it is
        then restarted and the models loaded again)."""
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except (queue.Empty, OSError, EOFError):
                break
        if self._failed:
            events.append(Error(self._failed))
            self._failed = ""
        if self._started.is_set() and not self._process.is_alive() and not self._closing:
            events.append(self._restart())
        self._submit_queued()
        return events

    def _restart(self) -> Error:
        code = self._process.exitcode
        if self.busy and isinstance(self.last_job, (LoadCheckpoint, LoadCodebooks)):
            self._loads.pop(type(self.last_job), None)  # it died loading this: loading it again would loop
        for channel in (self._jobs, self._events):
            channel.close()
            channel.cancel_join_thread()
        self._open()
        self.start()
        for job in self._loads.values():
            self._busy.set()
            self._received.append(job)
            self._jobs.put(job)
        again = "; loading the models again" if self._loads else ""
        return Error(f"the engine process stopped (exit code {code}) and was restarted{again}")

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the running job and the worker; returns once it has ended (or after timeout)."""
        self._closing = True
        self._cancel.set()
        self._jobs.put(None)
        deadline = time.monotonic() + timeout
        if self._starter is not None:
            self._starter.join(timeout)
        while self.alive and time.monotonic() < deadline:
            self._process.join(0.05)
            self.poll()  # a worker blocked on a full event pipe must be able to finish
        if self.alive:
            self._process.terminate()
            self._process.join(1.0)
        for channel in (self._jobs, self._events):
            channel.close()
            channel.cancel_join_thread()
