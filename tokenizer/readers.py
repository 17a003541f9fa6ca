"""Read MIDI, MusicXML, Humdrum, ABC files and music21 corpus entries into a NoteSequence.

Both readers quantize onto a grid of ``steps_per_quarter`` steps per quarter note (4, 8 or 12),
ignore drum/unpitched parts, and refuse absurd or empty input with a CantorError naming the file.
Every piece read gets the key its notes fit best (``tokenizer.keys.estimate_key``); a melody alone,
the key it closes in (``estimate_melody_key``).
"""

from __future__ import annotations

import itertools
import logging
import re
import threading
import warnings
import zipfile
from pathlib import Path

import numpy as np

from tokenizer.budget import DEFAULT_BUDGET, Budget, run_within
from tokenizer.errors import CantorError
from tokenizer.keys import estimate_key, estimate_melody_key
from tokenizer.notes import DEFAULT_TEMPO_QPM, DEFAULT_VELOCITY, Note, NoteSequence

STEPS_PER_QUARTER_CHOICES = (4, 8, 12)
MIDI_SUFFIXES = (".mid", ".midi")
MUSIC21_SUFFIXES = (".xml", ".musicxml", ".mxl", ".krn", ".abc")
MAX_NOTES = 20_000  # a long piano sonata has about 10,000
MAX_QUARTERS = 10_000  # about 80 minutes at 120 quarters per minute
MAX_FILE_BYTES = 32 << 20  # a file (or an .mxl unpacked): the largest real scores are a few MB

_log = logging.getLogger(__name__)


def read_piece(
    path: str | Path,
    steps_per_quarter: int = 4,
    budget: Budget | None = DEFAULT_BUDGET,
    cancel: threading.Event | None = None,
) -> NoteSequence:
    """Read a MIDI or MusicXML/.mxl/.krn/.abc file, quantized, as a normalized NoteSequence.

    The parse runs in a child process within ``budget`` (tokenizer/budget.py) and stops when
    ``cancel`` is set; ``budget=None`` reads in this process (a file known to be sound)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        reader = read_midi
    elif suffix in MUSIC21_SUFFIXES:
        reader = read_music21
    else:
        raise CantorError(
            f"{path.name}: not a music file Cantor reads (use {', '.join(MIDI_SUFFIXES + MUSIC21_SUFFIXES)})"
        )
    _check_file(path)
    if budget is None:
        return reader(path, steps_per_quarter)
    return run_within(budget, path.name, reader, path, steps_per_quarter, cancel=cancel)


def _check_grid(steps_per_quarter: int) -> None:
    if steps_per_quarter not in STEPS_PER_QUARTER_CHOICES:
        raise CantorError(f"steps per quarter must be one of {STEPS_PER_QUARTER_CHOICES}")


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise CantorError(f"{path.name}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise CantorError(f"{path.name}: the file is empty")
    if size > MAX_FILE_BYTES:
        raise CantorError(
            f"{path.name}: {size >> 20} MB is larger than any score Cantor reads ({MAX_FILE_BYTES >> 20} MB)"
        )
    if path.suffix.lower() == ".mxl":
        _check_archive(path)
    if path.suffix.lower() == ".abc":
        _check_abc_header(path)


ABC_METRE = re.compile(r"^\s*\[?\s*[ML]:\s*(\d+)\s*/\s*(\d+)", re.MULTILINE)


def _check_abc_header(path: Path) -> None:
    """Refuse an ABC file whose metre (M:) or unit note length (L:) no musician writes, before
    music21 spends its whole time budget laying out bars of 99999 whole notes."""
    text = path.read_bytes()[: 1 << 20].decode("latin-1")
    for match in ABC_METRE.finditer(text):
        numerator, denominator = int(match.group(1)), int(match.group(2))
        if not (1 <= numerator <= 64 and denominator in (1, 2, 4, 8, 16, 32, 64)):
            raise CantorError(
                f"{path.name}: a metre or note length of {numerator}/{denominator} is not one Cantor reads"
            )


def _check_archive(path: Path) -> None:
    """An .mxl is a zip: refuse one that would unpack to more than MAX_FILE_BYTES."""
    try:
        with zipfile.ZipFile(path) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise CantorError(f"{path.name}: not a readable .mxl archive ({type(err).__name__})") from None
    if unpacked > MAX_FILE_BYTES:
        raise CantorError(
            f"{path.name}: unpacks to {unpacked >> 20} MB, more than any score Cantor reads ({MAX_FILE_BYTES >> 20} MB)"
        )


def _finish(notes: list[Note], name: str, steps_per_quarter: int, **fields) -> NoteSequence:
    """Validate sizes and build the normalized piece."""
    if not notes:
        raise CantorError(f"{name}: no notes on any non-drum track")
    if len(notes) > MAX_NOTES:
        raise CantorError(f"{name}: {len(notes)} notes is more than Cantor handles ({MAX_NOTES})")
    quarters = max(n.end for n in notes) / steps_per_quarter
    if quarters > MAX_QUARTERS:
        raise CantorError(
            f"{name}: {quarters:.0f} quarter notes long (more than {MAX_QUARTERS}); "
            "is there a very long rest or a stuck note?"
        )
    in_order = sorted(notes, key=lambda n: n.start)
    one_line = all(a.end <= b.start for a, b in itertools.pairwise(in_order))
    key, _ = (estimate_melody_key if one_line else estimate_key)(notes)
    piece = NoteSequence(notes=notes, steps_per_quarter=steps_per_quarter, name=name, key=key, **fields)
    try:
        piece.validate()
    except ValueError as err:
        raise CantorError(f"{name}: {err}") from None
    return piece.normalized()


def _dedupe_tempos(tempos: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """One tempo per step (the first given), no repeats of the same value, the first at step 0."""
    result: list[tuple[int, float]] = []
    for step, qpm in sorted(tempos, key=lambda t: t[0]):
        if result and (step == result[-1][0] or qpm == result[-1][1]):
            continue
        result.append((step, qpm))
    if not result:
        return [(0, DEFAULT_TEMPO_QPM)]
    result[0] = (0, result[0][1])
    return result


def read_midi(path: str | Path, steps_per_quarter: int = 4) -> NoteSequence:
    """Read a standard MIDI file through pretty_midi.

    Note times in seconds are mapped to quarters with the file's own tempo map and resolution
    (ticks per quarter), then rounded to the step grid; a note is at least one step long.
    """
    import pretty_midi

    path = Path(path)
    _check_grid(steps_per_quarter)
    _check_file(path)
    notes = count_midi_notes(path.read_bytes(), MAX_NOTES)
    if notes > MAX_NOTES:
        raise CantorError(f"{path.name}: more than {MAX_NOTES} notes, more than Cantor handles")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # pretty_midi/mido raise many types for broken files
        if "largest tick" in str(err):  # pretty_midi's guard against absurd lengths
            raise CantorError(
                f"{path.name}: far too long to read (more than {MAX_QUARTERS} quarter notes long); "
                "is there a very long rest or a stuck note?"
            ) from None
        raise CantorError(f"{path.name}: not a readable MIDI file ({type(err).__name__}: {err})") from None
    pitched = [inst for inst in midi.instruments if not inst.is_drum]
    if not any(inst.notes for inst in pitched):
        cause = "only drum tracks" if any(i.notes for i in midi.instruments) else "no notes"
        raise CantorError(f"{path.name}: {cause}; nothing to play")
    starts = np.array([n.start for inst in pitched for n in inst.notes])
    ends = np.array([n.end for inst in pitched for n in inst.notes])
    if len(starts) > MAX_NOTES:
        raise CantorError(f"{path.name}: {len(starts)} notes is more than Cantor handles ({MAX_NOTES})")
    quarters_per_tick = 1.0 / midi.resolution
    start_q = np.array([midi.time_to_tick(t) for t in starts]) * quarters_per_tick
    end_q = np.array([midi.time_to_tick(t) for t in ends]) * quarters_per_tick
    start_steps = np.round(start_q * steps_per_quarter).astype(np.int64)
    end_steps = np.round(end_q * steps_per_quarter).astype(np.int64)
    pitches = [n.pitch for inst in pitched for n in inst.notes]
    velocities = [n.velocity for inst in pitched for n in inst.notes]
    notes = [
        Note(int(p), int(s), int(max(1, e - s)), int(v) or DEFAULT_VELOCITY)
        for p, s, e, v in zip(pitches, start_steps, end_steps, velocities, strict=True)
    ]
    tempo_times, tempo_qpms = midi.get_tempo_changes()
    tempos = [
        (round(midi.time_to_tick(t) * quarters_per_tick * steps_per_quarter), float(q))
        for t, q in zip(tempo_times, tempo_qpms, strict=True)
    ]
    tempos = _dedupe_tempos(tempos)
    signatures = midi.time_signature_changes
    time_signature = (signatures[0].numerator, signatures[0].denominator) if signatures else (4, 4)
    return _finish(notes, path.name, steps_per_quarter, tempos=tempos, time_signature=time_signature)


def count_midi_notes(data: bytes, limit: int) -> int:
    """The note-ons in a standard MIDI file's bytes, counted without building the file's events,
    up to ``limit`` + 1 (enough to refuse it): a million-note file costs a scan, not gigabytes.
    A file this scan cannot follow counts what it saw; the MIDI reader then says what is wrong."""
    position, count = 0, 0
    while position + 8 <= len(data) and count <= limit:
        kind, length = data[position : position + 4], int.from_bytes(data[position + 4 : position + 8], "big")
        position += 8
        end = min(len(data), position + length)
        if kind == b"MTrk":
            count += _track_note_ons(data, position, end, limit - count + 1)
        position = end
    return count


def _track_note_ons(data: bytes, position: int, end: int, limit: int) -> int:
    count, status = 0, 0

    def varlen() -> int:
        nonlocal position
        value = 0
        for _ in range(4):
            if position >= end:
                break
            byte = data[position]
            position += 1
            value = (value << 7) | (byte & 0x7F)
            if not byte & 0x80:
                break
        return value

    while position < end and count < limit:
        varlen()  # the delta time
        if position >= end:
            break
        if data[position] & 0x80:
            status = data[position]
            position += 1
        if status in (0xFF,):  # meta event: type, length, data
            position += 1
            position += varlen()
            status = 0
        elif status in (0xF0, 0xF7):  # system exclusive
            position += varlen()
            status = 0
        elif 0x80 <= status < 0xF0:
            size = 1 if status >> 4 in (0xC, 0xD) else 2
            if status >> 4 == 0x9 and position + 1 < end and data[position + 1] > 0:
                count += 1
            position += size
        else:  # running status with none set: not a file this scan can follow
            break
    return count


def read_music21(source: str | Path, steps_per_quarter: int = 4, number: int | None = None) -> NoteSequence:
    """Read a MusicXML/.mxl/.krn/.abc file, or a music21 corpus entry such as 'bach/bwv66.6';
    ``number`` picks one tune of a file that holds many (an ABC collection such as
    'essenFolksong/altdeu10').

    Offsets in quarter lengths are rounded to the step grid; ties are merged; unpitched
    (percussion) parts are ignored; a fermata over a note marks a phrase end at its onset.
    """
    import music21

    _check_grid(steps_per_quarter)
    path = Path(source)
    name = path.name if number is None else f"{path.name} {number}"
    chosen = {} if number is None else {"number": number}
    try:
        if path.exists():
            _check_file(path)
            score = music21.converter.parse(str(path), **chosen)
        else:
            score = music21.corpus.parse(str(source), **chosen)
    except CantorError:
        raise
    except Exception as err:  # music21 raises many types for broken files; their messages may
        # quote the file itself, which is not for a log or an index to repeat
        raise CantorError(f"{name}: not a readable score (music21 could not parse it: {type(err).__name__})") from None
    return _score_to_piece(score, name, steps_per_quarter)


def _score_to_piece(score, name: str, steps_per_quarter: int) -> NoteSequence:
    import music21

    try:
        score = score.stripTies(inPlace=False)
        flat = score.flatten()
        notes: list[Note] = []
        phrase_ends: set[int] = set()
        for element in flat.notes:
            start = round(float(element.offset) * steps_per_quarter)
            if any(isinstance(mark, music21.expressions.Fermata) for mark in element.expressions):
                phrase_ends.add(start)
            duration = max(1, round(float(element.quarterLength) * steps_per_quarter))
            if isinstance(element, music21.chord.Chord):
                pitches = [p.midi for p in element.pitches]
            elif isinstance(element, music21.note.Note):
                pitches = [element.pitch.midi]
            else:  # unpitched percussion
                continue
            velocity = element.volume.velocity or DEFAULT_VELOCITY
            notes += [Note(int(p), start, duration, int(velocity)) for p in pitches]
        marks = flat.getElementsByClass(music21.tempo.MetronomeMark)
        tempos = [
            (round(float(m.offset) * steps_per_quarter), float(m.getQuarterBPM())) for m in marks if m.getQuarterBPM()
        ]
        tempos = _dedupe_tempos(tempos)
        signatures = flat.getElementsByClass(music21.meter.TimeSignature)
        time_signature = (signatures[0].numerator, signatures[0].denominator) if signatures else (4, 4)
    except Exception as err:
        raise CantorError(f"{name}: could not read the notes ({type(err).__name__}: {err})") from None
    return _finish(
        notes, name, steps_per_quarter, tempos=tempos, time_signature=time_signature, phrase_ends=sorted(phrase_ends)
    )
