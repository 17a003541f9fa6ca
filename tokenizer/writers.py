"""Write a NoteSequence as a MIDI file (through pretty_midi), atomically."""

from __future__ import annotations

from pathlib import Path

from tokenizer.atomic import atomic_write
from tokenizer.notes import NoteSequence


def to_pretty_midi(
    piece: NoteSequence,
    program: int = 0,
    parts: list[tuple[str, NoteSequence]] | None = None,
):
    """A pretty_midi.PrettyMIDI of ``piece`` at its opening tempo, with its time signature.

    Later tempo changes are not written (pretty_midi has no public API for them); note
    positions in quarters are exact, so reading the file back gives the same steps.

    ``parts`` optionally splits the notes into named tracks (e.g. [("primer", a), ("generated", b)]);
    by default the whole piece is one track named after it.
    """
    import pretty_midi

    resolution = 480
    midi = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=piece.qpm)
    num, den = piece.time_signature
    midi.time_signature_changes.append(pretty_midi.TimeSignature(num, den, 0.0))
    ticks_per_step = resolution / piece.steps_per_quarter
    seconds_per_tick = 60.0 / (piece.qpm * resolution)  # one tempo: what pretty_midi's tick_to_time
    # computes, without its per-call table, which made saving quadratic in the notes

    def seconds(step: int) -> float:
        return round(step * ticks_per_step) * seconds_per_tick

    for name, part in parts or [(piece.name or "Cantor", piece)]:
        instrument = pretty_midi.Instrument(program=program, name=name)
        for note in part.as_played().notes:  # one MIDI channel cannot hold two notes on one key
            instrument.notes.append(pretty_midi.Note(note.velocity, note.pitch, seconds(note.start), seconds(note.end)))
        midi.instruments.append(instrument)
    return midi


def write_midi(
    piece: NoteSequence,
    path: str | Path,
    program: int = 0,
    parts: list[tuple[str, NoteSequence]] | None = None,
) -> Path:
    """Write ``piece`` to a standard MIDI file at ``path`` atomically (see ``to_pretty_midi``)."""
    midi = to_pretty_midi(piece, program, parts)
    return atomic_write(path, lambda temp: midi.write(str(temp)))
