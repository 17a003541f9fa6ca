"""Write a NoteSequence as a standard MIDI file (SMF type 1), atomically.

The bytes are written here, not through pretty_midi: its writer searches a tempo table and checks
a message object for every event, and took seconds for a 20,000-note piece. Files are read back
with pretty_midi everywhere (tests included), so each one is checked by a real MIDI reader.
"""

from __future__ import annotations

import struct
from pathlib import Path

from tokenizer.atomic import atomic_write
from tokenizer.notes import NoteSequence

TICKS_PER_QUARTER = 480
CHANNELS = [channel for channel in range(16) if channel != 9]  # channel 10 is drums in General MIDI
NOTE_OFF, NOTE_ON = 0, 1  # sorted so that at one tick a key is released before it is struck again


def midi_bytes(
    piece: NoteSequence,
    program: int = 0,
    parts: list[tuple[str, NoteSequence]] | None = None,
) -> bytes:
    """``piece`` as a type-1 MIDI file: a conductor track with the time signature and every
    tempo change, then one track (and channel) of notes per part.

    ``parts`` optionally splits the notes into named tracks (e.g. [("primer", a), ("generated", b)]);
    by default the whole piece is one track named after it. Every event is an integer tick computed
    from steps, sorted once: writing is linear in the notes.
    """
    ticks_per_step = TICKS_PER_QUARTER / piece.steps_per_quarter
    num, den = piece.time_signature
    conductor = [(0, b"\xff\x58\x04" + bytes([num, den.bit_length() - 1, 24, 8]))]
    for step, qpm in piece.tempos:
        tempo = min(0xFFFFFF, round(60_000_000 / qpm))  # microseconds a quarter in three bytes: >= 3.6 qpm
        conductor.append((round(step * ticks_per_step), b"\xff\x51\x03" + tempo.to_bytes(3, "big")))
    tracks = [_track(conductor)]
    for index, (name, part) in enumerate(parts or [(piece.name or "Cantor", piece)]):
        channel = CHANNELS[index % len(CHANNELS)]
        events = []  # (tick, off/on, pitch, velocity)
        for note in part.as_played().notes:  # one MIDI channel cannot hold two notes on one key
            events.append((round(note.start * ticks_per_step), NOTE_ON, note.pitch, note.velocity))
            events.append((round(note.end * ticks_per_step), NOTE_OFF, note.pitch, 0))
        events.sort()
        status = {NOTE_ON: 0x90 | channel, NOTE_OFF: 0x80 | channel}
        title = name.encode("latin-1", errors="replace")
        messages = [(0, b"\xff\x03" + _number(len(title)) + title), (0, bytes([0xC0 | channel, program & 0x7F]))]
        messages += [(tick, bytes([status[kind], pitch, velocity])) for tick, kind, pitch, velocity in events]
        tracks.append(_track(messages))
    header = b"MThd" + struct.pack(">IHHH", 6, 1, len(tracks), TICKS_PER_QUARTER)
    return header + b"".join(tracks)


def _track(messages: list[tuple[int, bytes]]) -> bytes:
    """A track chunk of (absolute tick, message) pairs in time order, ended by End of Track."""
    body = bytearray()
    previous = 0
    for tick, message in messages:
        body += _number(tick - previous) + message
        previous = tick
    body += b"\x00\xff\x2f\x00"
    return b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def _number(value: int) -> bytes:
    """A MIDI variable-length quantity: 7 bits a byte, the high bit set on all but the last."""
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def write_midi(
    piece: NoteSequence,
    path: str | Path,
    program: int = 0,
    parts: list[tuple[str, NoteSequence]] | None = None,
) -> Path:
    """Write ``piece`` to a standard MIDI file at ``path`` atomically (see ``midi_bytes``)."""
    data = midi_bytes(piece, program, parts)
    return atomic_write(path, lambda temp: Path(temp).write_bytes(data))
