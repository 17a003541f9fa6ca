"""The studio's only door to the models: jobs in, events out, on one worker thread.

The UI submits a job (load a checkpoint, generate) and drains ``poll()`` once per frame.
torch is imported on the worker thread, so the window is up before torch has loaded.
One job runs at a time; a job submitted while another runs is refused (``submit`` returns
False and the UI says so). ``cancel()`` stops a generation between two words, and the words
made until then come back in a ``Cancelled`` event.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence
from tokenizer.slices import slices_to_piece
from tokenizer.words import NoteStream

NOTES_EVENT_INTERVAL_S = 1 / 60  # at most one notes-so-far event per frame


# -- jobs ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 1.0
    tokens: int = 512
    top_k: int | None = None  # None: off
    top_p: float = 1.0
    seed: int = 1


@dataclass(frozen=True)
class LoadCheckpoint:
    path: Path


@dataclass(frozen=True)
class Generate:
    """mode: "new" (from START), "continue" (a dataset piece or ``primer``) or "retry" (the last
    continuation's primer again)."""

    mode: str
    settings: GenerationSettings
    piece_name: str | None = None  # "continue": a dataset piece; None: a random one
    primer_quarters: int = 8
    primer: NoteSequence | None = None  # "continue": the user's own piece instead


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
    """mode "new" or "continue" (from the reconstructed piece's first ``primer_quarters``)."""

    mode: str
    quarters: int
    settings: GenerationSettings
    primer_quarters: int = 4


# -- events -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    name: str
    card: dict
    piece_names: list[str]


@dataclass(frozen=True)
class Started:
    job: Generate
    primer: NoteSequence  # empty for a new piece
    note: str = ""  # e.g. that the primer was cut to the context


@dataclass(frozen=True)
class Word:
    text: str


@dataclass(frozen=True)
class NotesSoFar:
    primer: NoteSequence
    generated: NoteSequence


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


@dataclass(frozen=True)
class Cancelled:
    primer: NoteSequence
    generated: NoteSequence
    job: Generate
    words: int


@dataclass(frozen=True)
class Error:
    message: str


@dataclass(frozen=True)
class CodebooksLoaded:
    vqvae: str
    prior: str | None
    codes: int
    piece_names: list[str]
    patterns: object  # (K, 88, 32) note probabilities: each code decoded alone


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


@dataclass(frozen=True)
class CodesFinished:
    primer: NoteSequence
    generated: NoteSequence
    job: GenerateCodes
    stopped: bool
    codes: int  # codes generated


Event = (
    Loaded
    | Started
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


@dataclass
class _Memory:
    """What the worker keeps between jobs."""

    model: object = None  # models.word_model.WordModel, once loaded
    dataset: object = None  # tokenizer.dataset.WordDataset of the model's data
    last_primer: object = None  # models.word_model.Primer of the last continuation
    last_continue_job: Generate | None = None
    codebooks: object = None  # models.codebooks.Codebooks, once loaded
    source: object = None  # the piece being reconstructed
    slices: object = None  # its quarter slices
    codes: object = None  # its codes, as edited
    cb_dataset: object = None  # the VQ-VAE's dataset
    received: deque = field(default_factory=lambda: deque(maxlen=64))  # recent jobs, newest last


class Engine:
    """Runs model jobs on a worker thread. ``threads``: torch CPU threads for the models."""

    def __init__(self, data_root: Path = Path("data"), threads: int = 1) -> None:
        self.data_root = Path(data_root)
        self.threads = threads
        self._events: queue.Queue[Event] = queue.Queue()
        self._jobs: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._busy = threading.Event()
        self._memory = _Memory()
        self._thread = threading.Thread(target=self._run, name="cantor-engine", daemon=True)

    # -- the UI's side -----------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy.is_set()

    @property
    def received(self) -> list:
        """The most recent jobs (up to 64), oldest first: for tests and diagnostics."""
        return list(self._memory.received)

    @property
    def last_job(self):
        received = self._memory.received
        return received[-1] if received else None

    def submit(self, job) -> bool:
        """Queue ``job``; False (and nothing queued) if a job is running."""
        if self._busy.is_set():
            return False
        self._busy.set()
        self._cancel.clear()
        self._jobs.put(job)
        return True

    def cancel(self) -> None:
        self._cancel.set()

    def poll(self) -> list[Event]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop the running job and the worker; returns once it has ended (or after timeout)."""
        self._cancel.set()
        self._jobs.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the worker's side -------------------------------------------------------------------
    def _run(self) -> None:
        import torch  # here, so that the window does not wait for it

        torch.set_num_threads(self.threads)
        while (job := self._jobs.get()) is not None:
            self._memory.received.append(job)
            handlers = {
                LoadCheckpoint: self._load,
                Generate: self._generate,
                LoadCodebooks: self._load_codebooks,
                Reconstruct: self._reconstruct,
                EditCode: self._edit_code,
                GenerateCodes: self._generate_codes,
            }
            try:
                handlers[type(job)](job)
            except CantorError as err:
                self._events.put(Error(str(err)))
            except Exception as err:  # a bug must not kill the worker: show it and go on
                self._events.put(Error(f"unexpected {type(err).__name__}: {err}"))
            finally:
                self._busy.clear()

    def _load(self, job: LoadCheckpoint) -> None:
        from models.word_model import WordModel

        model = WordModel(job.path)
        data = Path(model.info.get("model_card", {}).get("data", self.data_root / "chorales"))
        dataset = None
        if (data / "index.json").exists():
            dataset = WordDataset(data)
            model.check_vocabulary(dataset.vocab)
        self._memory.model, self._memory.dataset = model, dataset
        self._memory.last_primer, self._memory.last_continue_job = None, None
        names = dataset.names() if dataset else []
        self._events.put(Loaded(job.path.name, model.info, names))

    def _primer_for(self, job: Generate):
        memory = self._memory
        model = memory.model
        if job.mode == "new":
            return None
        if job.mode == "retry":
            if memory.last_primer is None:
                raise CantorError("nothing to retry yet: continue a piece first")
            return memory.last_primer
        if job.primer is not None:
            piece = job.primer
        else:
            if memory.dataset is None:
                raise CantorError("this checkpoint's dataset is not here, so there is no piece to continue")
            name = job.piece_name or random.Random(job.settings.seed).choice(memory.dataset.names())
            piece = memory.dataset.piece(name)
            piece = piece.cropped(0, job.primer_quarters * piece.steps_per_quarter)
        return model.primer(piece)

    def _generate(self, job: Generate) -> None:
        from models.sampling import SamplingSettings

        model = self._memory.model
        if model is None:
            raise CantorError("no model is loaded: pick a checkpoint first")
        s = job.settings
        sampling = SamplingSettings(s.temperature, s.top_k, s.top_p, s.seed)
        sampling.validate()
        primer = self._primer_for(job)
        if job.mode in ("continue", "retry"):
            self._memory.last_primer, self._memory.last_continue_job = primer, job
        empty = NoteSequence(steps_per_quarter=model.steps_per_quarter)
        primer_piece = primer.piece if primer else empty
        note = ""
        if primer and primer.dropped_words:
            note = f"primer cut to its last {len(primer.ids) - primer.dropped_words} words to fit the context"
        self._events.put(Started(job, primer_piece, note))
        words: list[int] = []
        started = last_notes = time.perf_counter()
        notes = NoteStream(model.vocab, primer.ids if primer else None)
        stream = model.stream_words(s.tokens, sampling, primer, cancel=self._cancel, stop_at_end=False)
        for word_id in stream:
            words.append(word_id)
            notes.feed(word_id)
            self._events.put(Word(model.vocab.words[word_id]))
            now = time.perf_counter()
            if now - last_notes >= NOTES_EVENT_INTERVAL_S:
                last_notes = now
                self._events.put(Progress(len(words), s.tokens))
                self._events.put(NotesSoFar(primer_piece, self._generated(notes, primer_piece)))
        generated = self._generated(notes, primer_piece)
        self._events.put(Progress(len(words), s.tokens))
        if self._cancel.is_set() and len(words) < s.tokens:
            self._events.put(Cancelled(primer_piece, generated, job, len(words)))
        else:
            seconds = time.perf_counter() - started
            self._events.put(Finished(primer_piece, generated, job, len(words), seconds))

    @staticmethod
    def _generated(notes: NoteStream, primer_piece: NoteSequence) -> NoteSequence:
        return replace(primer_piece, notes=notes.generated_notes, name="generated")

    # -- the codebook pipeline -------------------------------------------------------------------
    def _load_codebooks(self, job: LoadCodebooks) -> None:
        from models.codebooks import Codebooks

        codebooks = Codebooks(job.vqvae, job.prior)
        data = Path(codebooks.vqvae_info.get("model_card", {}).get("data", self.data_root / "chorales"))
        dataset = WordDataset(data) if (data / "index.json").exists() else None
        memory = self._memory
        memory.codebooks = codebooks
        if memory.dataset is None:
            memory.dataset = dataset
        memory.cb_dataset = dataset
        patterns = codebooks.decode_slices(np.repeat(np.arange(codebooks.codes)[:, None], 16, axis=1))
        names = dataset.names() if dataset else []
        prior = job.prior.name if job.prior else None
        self._events.put(CodebooksLoaded(job.vqvae.name, prior, codebooks.codes, names, patterns))

    def _codebooks(self):
        if self._memory.codebooks is None:
            raise CantorError("no VQ-VAE is loaded: train one with python -m models.train_vqvae")
        return self._memory.codebooks

    def _reconstruct(self, job: Reconstruct) -> None:
        codebooks = self._codebooks()
        memory = self._memory
        if job.piece is not None:
            piece = job.piece
        else:
            dataset = memory.cb_dataset
            if dataset is None:
                raise CantorError("the VQ-VAE's dataset is not here: open a file instead")
            piece = dataset.piece(job.piece_name or dataset.names()[0])
        slices, dropped = codebooks.slices_of(piece)
        memory.source, memory.slices, memory.codes = piece, slices, codebooks.encode(slices)
        self._post_reconstruction(dropped)

    def _edit_code(self, job: EditCode) -> None:
        codebooks = self._codebooks()
        memory = self._memory
        if memory.codes is None:
            raise CantorError("pick a piece first")
        if not 0 <= job.code < codebooks.codes:
            raise CantorError(f"code {job.code} is not in the codebook (0-{codebooks.codes - 1})")
        memory.codes = memory.codes.copy()
        memory.codes[job.quarter, job.position] = job.code
        self._post_reconstruction(0)

    def _post_reconstruction(self, dropped: int) -> None:
        codebooks, memory = self._memory.codebooks, self._memory
        piece = memory.source
        recon_slices = codebooks.decode_slices(memory.codes)
        scores = codebooks.scores(memory.slices, recon_slices)
        recon = slices_to_piece(
            recon_slices,
            piece.steps_per_quarter,
            tempos=piece.tempos,
            time_signature=piece.time_signature,
            name="reconstruction",
        )
        original = piece.as_played()
        self._events.put(
            Reconstructed(original, recon, memory.codes.copy(), scores["onset_f1"], scores["frame_f1"], dropped)
        )

    def _generate_codes(self, job: GenerateCodes) -> None:
        from models.sampling import SamplingSettings

        codebooks, memory = self._codebooks(), self._memory
        s = job.settings
        sampling = SamplingSettings(s.temperature, s.top_k, s.top_p, s.seed)
        primer, primer_codes, primer_quarters = None, None, 0
        if job.mode == "continue":
            if memory.codes is None:
                raise CantorError("pick a piece to continue first")
            primer_quarters = min(job.primer_quarters, len(memory.codes))
            primer_codes = memory.codes[:primer_quarters]
            primer = memory.source.cropped(0, primer_quarters * memory.source.steps_per_quarter)
        codes: list[int] = []
        primer_piece, generated = codebooks.piece_from_codes(codes, primer, primer_quarters)
        for code in codebooks.stream_codes(job.quarters, sampling, primer_codes, cancel=self._cancel):
            codes.append(code)
            if len(codes) % 16 == 0:  # a whole quarter: show it
                primer_piece, generated = codebooks.piece_from_codes(codes, primer, primer_quarters)
                self._events.put(CodesSoFar(primer_piece, generated, len(codes) // 16, job.quarters))
        primer_piece, generated = codebooks.piece_from_codes(codes, primer, primer_quarters)
        stopped = len(codes) < job.quarters * 16
        self._events.put(CodesFinished(primer_piece, generated, job, stopped, len(codes)))
