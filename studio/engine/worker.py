"""The engine's worker process: it owns the models, runs one job at a time and posts events.

It runs apart from the window so that sampling has a Python interpreter (and a GIL) of its own:
on a thread, the UI's drawing held the GIL for almost half of every frame and halved the words/s.
torch is imported here, never in the window's process.
"""

from __future__ import annotations

import multiprocessing
import queue
import random
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np

from studio.engine import (
    Cancelled,
    CodebooksLoaded,
    CodesFinished,
    CodesSoFar,
    EditCode,
    Error,
    Event,
    Finished,
    Generate,
    GenerateCodes,
    LoadCheckpoint,
    LoadCodebooks,
    Loaded,
    NotesSoFar,
    PreparePrimer,
    PrimerReady,
    Progress,
    Reconstruct,
    Reconstructed,
    Started,
    Word,
)
from tokenizer.dataset import WordDataset
from tokenizer.errors import CantorError
from tokenizer.notes import NoteSequence
from tokenizer.slices import slices_to_piece
from tokenizer.titles import chorale_titles
from tokenizer.words import NoteStream

NOTES_EVENT_INTERVAL_S = 1 / 60  # at most one notes-so-far event per frame
PARENT_CHECK_S = 0.5  # how often an idle worker checks that the studio is still there


def serve(jobs, events, cancel, busy, data_root: Path, threads: int) -> None:
    """The worker process's main loop: take jobs until None arrives or the studio has gone."""
    import torch

    torch.set_num_threads(threads)
    outbox = Outbox(events.put)
    worker = Worker(outbox.post, cancel, data_root)
    studio = multiprocessing.parent_process()
    while True:
        try:
            job = jobs.get(timeout=PARENT_CHECK_S)
        except queue.Empty:
            if studio is not None and not studio.is_alive():
                return
            continue
        if job is None:
            return
        try:
            worker.run(job)
        finally:
            busy.clear()
            outbox.flush()


class Outbox:
    """Sends the worker's events, but holds one that may end a job (``ENDINGS``) until the next
    event or ``flush``: the worker flushes after it is free again, so that a studio that reads the
    end of a job and at once submits another never finds the worker still busy with the last."""

    ENDINGS = (Finished, Cancelled, Error, Loaded, PrimerReady, CodebooksLoaded, Reconstructed, CodesFinished)

    def __init__(self, send: Callable[[Event], None]) -> None:
        self.send = send
        self.held: Event | None = None

    def post(self, event: Event) -> None:
        self.flush()
        if isinstance(event, self.ENDINGS):
            self.held = event
        else:
            self.send(event)

    def flush(self) -> None:
        if self.held is not None:
            held, self.held = self.held, None
            self.send(held)


class Worker:
    """What the worker keeps between jobs (the loaded models, the piece being worked on) and the
    jobs' handlers. ``post`` sends an event to the studio; ``cancel`` is set to stop a job."""

    def __init__(self, post: Callable[[Event], None], cancel, data_root: Path) -> None:
        self.post = post
        self.cancel = cancel
        self.data_root = Path(data_root)
        self.model = None  # models.word_model.WordModel, once loaded
        self.dataset: WordDataset | None = None  # the word model's data
        self.last_primer = None  # models.word_model.Primer of the last continuation, for "retry"
        self.codebooks = None  # models.codebooks.Codebooks, once loaded
        self.cb_dataset: WordDataset | None = None  # the VQ-VAE's data
        self.source: NoteSequence | None = None  # the piece being reconstructed
        self.slices = None  # its quarter slices
        self.codes = None  # its codes, as edited
        self.generated: tuple[NoteSequence, np.ndarray] | None = None  # the prior's last piece and its codes

    def run(self, job) -> None:
        """Run one job; every failure becomes an Error event, and the worker goes on."""
        handlers = {
            LoadCheckpoint: self._load,
            Generate: self._generate,
            PreparePrimer: self._prepare_primer,
            LoadCodebooks: self._load_codebooks,
            Reconstruct: self._reconstruct,
            EditCode: self._edit_code,
            GenerateCodes: self._generate_codes,
        }
        try:
            handlers[type(job)](job)
        except CantorError as err:
            self.post(Error(str(err)))
        except Exception as err:  # a bug must not kill the worker: show it and go on
            self.post(Error(f"unexpected {type(err).__name__}: {err}"))

    def _dataset_of(self, info: dict) -> WordDataset | None:
        """The prepared data a checkpoint was trained on, if it is here. Its card names the folder
        relative to the project (``data/chorales``), whatever folder the studio was started from."""
        data = Path(info.get("model_card", {}).get("data", self.data_root / "chorales"))
        if not data.is_absolute() and not data.exists():
            data = self.data_root.parent / data
        return WordDataset(data) if (data / "index.json").exists() else None

    def _load(self, job: LoadCheckpoint) -> None:
        from models.word_model import WordModel

        model = WordModel(job.path)
        dataset = self._dataset_of(model.info)
        if dataset is not None:
            model.check_grid(dataset)
        self.model, self.dataset = model, dataset
        self.last_primer = None
        names = dataset.names() if dataset else []
        self.post(Loaded(job.path.name, model.info, names, chorale_titles(names)))

    def _dataset_primer(self, piece_name: str | None, primer_quarters: int, seed: int):
        """The model's primer from the opening ``primer_quarters`` of a dataset piece (a random one
        when ``piece_name`` is None)."""
        if self.dataset is None:
            raise CantorError("this checkpoint's dataset is not here, so there is no piece to continue")
        name = piece_name or random.Random(seed).choice(self.dataset.names())
        piece = self.dataset.piece(name)
        return self.model.primer(piece.cropped(0, primer_quarters * piece.steps_per_quarter))

    @staticmethod
    def _cut_note(primer) -> str:
        if not primer.dropped_words:
            return ""
        return f"primer cut to its last {len(primer.ids) - primer.dropped_words} words to fit the context"

    def _prepare_primer(self, job: PreparePrimer) -> None:
        if self.model is None:
            raise CantorError("no model is loaded: pick a checkpoint first")
        primer = self._dataset_primer(job.piece_name, job.primer_quarters, 0)
        self.post(PrimerReady(job.piece_name, primer.piece, self._cut_note(primer)))

    def _primer_for(self, job: Generate):
        """The primer of a continuation, in the key asked for (else its own, estimated if unknown)."""
        model = self.model
        if job.mode == "new":
            return None
        if job.mode == "retry" and job.primer is None:
            if self.last_primer is None:
                raise CantorError("nothing to retry yet: continue a piece first")
            primer = self.last_primer
        elif job.primer is not None:
            primer = model.primer(job.primer)
        else:
            primer = self._dataset_primer(job.piece_name, job.primer_quarters, job.settings.seed)
        key = job.settings.key
        return primer if key is None or primer.piece.key == key else model.primer(replace(primer.piece, key=key))

    def _generate(self, job: Generate) -> None:
        from models.sampling import SamplingSettings

        model = self.model
        if model is None:
            raise CantorError("no model is loaded: pick a checkpoint first")
        s = job.settings
        sampling = SamplingSettings(s.temperature, s.top_k, s.top_p, s.seed)
        sampling.validate()
        if job.mode in ("harmonize", "regenerate"):
            self._fill(job, sampling)
            return
        primer = self._primer_for(job)
        if job.mode in ("continue", "retry"):
            self.last_primer = primer
        empty = NoteSequence(steps_per_quarter=model.steps_per_quarter)
        primer_piece = primer.piece if primer else empty
        key = primer.piece.key if primer else s.key if model.vocab.form else None
        self.post(Started(job, primer_piece, self._cut_note(primer) if primer else "", key))
        count = 0
        started = last_notes = time.perf_counter()
        rows = [NoteStream(model.vocab, primer.ids if primer else None) for _ in range(s.variations)]
        stream = model.stream_variations(
            s.words, sampling, s.variations, primer, self.cancel, rules=s.rules, key=s.key, bar_form=s.bar_form
        )
        last_words: list[int | None] = [None] * s.variations

        def generated() -> tuple[NoteSequence, ...]:
            return tuple(self._generated(notes, primer_piece) for notes in rows)

        for word_ids in stream:
            count += 1
            for row, (notes, word_id) in enumerate(zip(rows, word_ids, strict=True)):
                if word_id is not None:
                    notes.feed(word_id)
                    last_words[row] = word_id
            if word_ids[0] is not None:
                self.post(Word(model.vocab.words[word_ids[0]]))
            now = time.perf_counter()
            if now - last_notes >= NOTES_EVENT_INTERVAL_S:
                last_notes = now
                self.post(Progress(count, s.words))
                pieces = generated()
                self.post(NotesSoFar(primer_piece, pieces[0], pieces if s.variations > 1 else ()))
        pieces = generated()
        variations = pieces if s.variations > 1 else ()
        self.post(Progress(count, s.words))
        if self.cancel.is_set() and count < s.words:
            self.post(Cancelled(primer_piece, pieces[0], job, count, variations))
        else:
            seconds = time.perf_counter() - started
            ended = all(word == model.vocab.end_id for word in last_words)
            self.post(Finished(primer_piece, pieces[0], job, count, seconds, variations, ended))

    def _fill(self, job: Generate, sampling) -> None:
        """Harmonize the top line of ``job.primer``, or regenerate its ``job.gap``: the kept notes
        come as the primer, the new ones as generated."""
        from models.fill import GapWriter
        from tokenizer.tasks import Gap, top_line

        source = job.primer
        if source is None and job.piece_name is not None:
            if self.dataset is None:
                raise CantorError("this checkpoint's dataset is not here: open a melody file instead")
            source = self.dataset.piece(job.piece_name)
        if source is None or not source.notes:
            raise CantorError("nothing to work on: open a piece or make a take first")
        if job.settings.key is not None and job.mode != "harmonize":  # a harmonization is given its key
            source = replace(source, key=job.settings.key)
        writer = GapWriter(self.model, sampling, job.settings.rules, self.cancel)
        if job.mode == "harmonize":
            words = writer.harmonize(source, job.settings.key)
            note = "harmonizing its top line" if top_line(source)[1] else ""
        else:
            if job.gap is None:
                raise CantorError("select the bars to regenerate: drag across the ruler above the roll")
            words = writer.regenerate(source, Gap(*job.gap), job.keep_melody)
            note = "keeping the melody" if job.keep_melody else ""
        kept = replace(source, notes=[], name="kept")
        count = 0
        started = last_notes = time.perf_counter()
        for _ in words:
            if count == 0:  # the task has started: the writer knows what it keeps, and in which key
                kept = replace(source, notes=sorted(writer.kept, key=lambda n: (n.start, n.pitch)), name="kept")
                kept = replace(kept, key=writer.key)
                self.post(Started(job, kept, note, writer.key))
            count += 1
            now = time.perf_counter()
            if now - last_notes >= NOTES_EVENT_INTERVAL_S:
                last_notes = now
                self.post(Progress(*writer.progress()))
                self.post(NotesSoFar(kept, replace(source, notes=writer.new_notes(), name="generated")))
        generated = replace(
            source, notes=writer.new_notes(), name="generated", key=writer.key, phrase_ends=writer.phrase_ends()
        )
        self.post(Progress(*writer.progress()))
        if self.cancel.is_set():
            self.post(Cancelled(kept, generated, job, count))
        else:
            self.post(Finished(kept, generated, job, count, time.perf_counter() - started))

    @staticmethod
    def _generated(notes: NoteStream, primer_piece: NoteSequence) -> NoteSequence:
        return replace(
            primer_piece,
            notes=notes.generated_notes,
            name="generated",
            key=notes.grammar.key or primer_piece.key,
            phrase_ends=notes.generated_phrase_ends,
        )

    # -- the codebook pipeline -------------------------------------------------------------------
    def _load_codebooks(self, job: LoadCodebooks) -> None:
        from models.checkpoint import check_grid
        from models.codebooks import Codebooks

        codebooks = Codebooks(job.vqvae, job.prior)
        dataset = self._dataset_of(codebooks.vqvae_info)
        if dataset is not None:
            check_grid(job.vqvae.name, codebooks.steps_per_quarter, dataset)
        self.codebooks = codebooks
        if self.dataset is None:
            self.dataset = dataset
        self.cb_dataset = dataset
        patterns = codebooks.code_patterns()
        names = dataset.names() if dataset else []
        prior = job.prior.name if job.prior else None
        titles = chorale_titles(names)
        self.post(CodebooksLoaded(job.vqvae.name, prior, codebooks.codes, names, patterns, codebooks.warning, titles))

    def _codebooks(self):
        if self.codebooks is None:
            raise CantorError("no VQ-VAE is loaded: train one with python -m models.train_vqvae")
        return self.codebooks

    def _reconstruct(self, job: Reconstruct) -> None:
        codebooks = self._codebooks()
        if job.piece is not None:
            piece = job.piece
        else:
            dataset = self.cb_dataset
            if dataset is None:
                raise CantorError("the VQ-VAE's dataset is not here: open a file instead")
            piece = dataset.piece(job.piece_name or dataset.names()[0])
        slices, dropped = codebooks.slices_of(piece)
        self.source, self.slices, self.codes = piece, slices, codebooks.encode(slices)
        self._post_reconstruction(dropped)

    def _edit_code(self, job: EditCode) -> None:
        codebooks = self._codebooks()
        if self.codes is None:
            raise CantorError("pick a piece first")
        if not 0 <= job.code < codebooks.codes:
            raise CantorError(f"code {job.code} is not in the codebook (0-{codebooks.codes - 1})")
        self.codes = self.codes.copy()
        self.codes[job.quarter, job.position] = job.code
        self._post_reconstruction(0)

    def _post_reconstruction(self, dropped: int) -> None:
        codebooks = self.codebooks
        piece = self.source
        recon_slices = codebooks.decode_slices(self.codes)
        scores = codebooks.scores(self.slices, recon_slices)
        recon = slices_to_piece(
            recon_slices,
            piece.steps_per_quarter,
            tempos=piece.tempos,
            time_signature=piece.time_signature,
            name="reconstruction",
        )
        original = piece.as_played()
        self.post(Reconstructed(original, recon, self.codes.copy(), scores["onset_f1"], scores["frame_f1"], dropped))

    def _generate_codes(self, job: GenerateCodes) -> None:
        from models.sampling import SamplingSettings

        codebooks = self._codebooks()
        s = job.settings
        sampling = SamplingSettings(s.temperature, s.top_k, s.top_p, s.seed)
        primer, primer_codes, primer_quarters = None, None, 0
        if job.mode == "continue":
            source, source_codes = self.generated if job.of_generated and self.generated else (self.source, self.codes)
            if source_codes is None or not len(source_codes):
                raise CantorError("pick a piece to continue first")
            primer_quarters = min(job.primer_quarters, len(source_codes))
            primer_codes = source_codes[:primer_quarters]
            primer = source.cropped(0, primer_quarters * source.steps_per_quarter)
        codes: list[int] = []
        primer_piece, generated = codebooks.piece_from_codes(codes, primer, primer_quarters)
        for code in codebooks.stream_codes(job.quarters, sampling, primer_codes, cancel=self.cancel):
            codes.append(code)
            if len(codes) % 16 == 0:  # a whole quarter: show it
                primer_piece, generated = codebooks.piece_from_codes(codes, primer, primer_quarters)
                grid = self._code_grid(primer_codes, codes)
                self.post(CodesSoFar(primer_piece, generated, len(codes) // 16, job.quarters, grid))
        primer_piece, generated = codebooks.piece_from_codes(codes, primer, primer_quarters)
        stopped = len(codes) < job.quarters * 16
        grid = self._code_grid(primer_codes, codes)
        if len(grid):
            self.generated = (generated.merged(primer_piece), grid)  # what Continue continues next
        self.post(CodesFinished(primer_piece, generated, job, stopped, len(codes), grid))

    @staticmethod
    def _code_grid(primer_codes, codes: list[int]) -> np.ndarray:
        """(quarters, 16): the primer's codes, then the generated codes of each complete quarter."""
        whole = len(codes) // 16 * 16
        generated = np.asarray(codes[:whole], dtype=np.int64).reshape(-1, 16)
        return generated if primer_codes is None else np.concatenate([np.asarray(primer_codes), generated])
