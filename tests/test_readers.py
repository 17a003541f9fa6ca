"""Reading and writing files, and every kind of bad input."""

from __future__ import annotations

import pickle
from dataclasses import replace

import pretty_midi
import pytest

from tokenizer import CantorError, Note, NoteSequence
from tokenizer.prepare import main as prepare_main
from tokenizer.readers import read_midi, read_piece
from tokenizer.writers import write_midi


def midi_file(path, notes, drum=False, tempo=120.0):
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    inst = pretty_midi.Instrument(program=0, is_drum=drum)
    inst.notes = [pretty_midi.Note(100, p, s, e) for p, s, e in notes]
    midi.instruments.append(inst)
    midi.write(str(path))
    return path


def test_midi_round_trip_keeps_notes_tempo_and_time_signature(tmp_path, chorales):
    piece = chorales.piece("bwv66.6")
    path = write_midi(piece, tmp_path / "bwv66.mid")
    back = read_midi(path)
    assert back.with_velocity().notes == piece.with_velocity().notes
    assert back.time_signature == piece.time_signature
    assert back.qpm == pytest.approx(piece.qpm)


def test_midi_file_keeps_every_tempo_change_velocities_parts_and_restruck_keys(tmp_path):
    primer = NoteSequence([Note(60, 0, 8, 30), Note(60, 4, 2, 90), Note(72, 0, 2, 127)])  # C4 again at 4, held to 8
    generated = NoteSequence([Note(48, 8, 4, 64)])
    whole = NoteSequence(primer.notes + generated.notes, tempos=[(0, 90.0), (8, 60.0)], time_signature=(6, 8))
    path = write_midi(whole, tmp_path / "parts.mid", program=19, parts=[("primer", primer), ("generated", generated)])

    midi = pretty_midi.PrettyMIDI(str(path))  # a real reader, not ours
    assert [(i.name, i.program, len(i.notes)) for i in midi.instruments] == [("primer", 19, 3), ("generated", 19, 1)]
    times, tempi = midi.get_tempo_changes()
    assert list(times) == pytest.approx([0.0, 8 * 60 / 90 / 4]) and list(tempi) == pytest.approx([90.0, 60.0])
    back = read_midi(path)
    assert back.notes == [Note(60, 0, 4, 30), Note(72, 0, 2, 127), Note(60, 4, 4, 90), Note(48, 8, 4, 64)]
    assert back.tempos[1][0] == 8 and back.time_signature == (6, 8)


def test_midi_reader_quantizes_with_the_files_tempo(tmp_path):
    # at 60 qpm a quarter is 1 s: a note from 0.5 s to 1.26 s is steps 2..5 on a 4-per-quarter grid
    path = midi_file(tmp_path / "slow.mid", [(60, 0.5, 1.26)], tempo=60.0)
    assert read_midi(path).notes == [Note(60, 2, 3, 100)]
    assert read_midi(path, steps_per_quarter=8).notes == [Note(60, 4, 6, 100)]


def test_drum_tracks_are_ignored(tmp_path):
    midi = pretty_midi.PrettyMIDI()
    for is_drum, pitch in ((True, 36), (False, 64)):
        inst = pretty_midi.Instrument(0, is_drum=is_drum)
        inst.notes = [pretty_midi.Note(90, pitch, 0.0, 0.5)]
        midi.instruments.append(inst)
    midi.write(str(tmp_path / "band.mid"))
    assert [n.pitch for n in read_midi(tmp_path / "band.mid").notes] == [64]


def test_musicxml_file_is_read(tmp_path, chorales):
    from music21 import corpus

    corpus.parse("bach/bwv66.6").write("musicxml", fp=str(tmp_path / "bwv66.musicxml"))
    piece = read_piece(tmp_path / "bwv66.musicxml")
    assert piece.with_velocity().notes == chorales.piece("bwv66.6").notes


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_bytes(b"this is not a midi file at all"), "not a readable MIDI file"),
        (lambda p: p.write_bytes(bytes(range(256)) * 4), "not a readable MIDI file"),
        (lambda p: midi_file(p, [(60, 0, 1)], drum=True), "only drum tracks"),
        (lambda p: midi_file(p, []), "no notes"),
        (lambda p: midi_file(p, [(60, 0, 1), (62, 36000, 36001)]), "quarter notes long"),
        (lambda p: midi_file(p, [(60 + i % 20, i * 0.01, i * 0.01 + 0.1) for i in range(100_000)]), "more than"),
    ],
    ids=["empty", "text", "garbage", "drum-only", "note-less", "10-hour rest", "100k notes"],
)
def test_bad_midi_files_raise_one_clear_error(tmp_path, make, message):
    path = tmp_path / "bad.mid"
    make(path)
    with pytest.raises(CantorError, match=message) as info:
        read_piece(path)
    assert "bad.mid" in str(info.value)


def test_truncated_midi_file_raises_a_clear_error(tmp_path):
    path = midi_file(tmp_path / "cut.mid", [(60 + i % 12, i * 0.25, i * 0.25 + 0.2) for i in range(200)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CantorError, match=r"cut\.mid"):
        read_piece(path)


def test_unknown_suffix_missing_file_and_broken_musicxml(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(CantorError, match="not a music file"):
        read_piece(tmp_path / "notes.txt")
    with pytest.raises(CantorError, match="no such file"):
        read_piece(tmp_path / "gone.mid")
    (tmp_path / "broken.musicxml").write_text("<score-partwise><part>")
    with pytest.raises(CantorError, match=r"broken\.musicxml"):
        read_piece(tmp_path / "broken.musicxml")


def test_write_midi_is_atomic_and_reports_unwritable_folders(tmp_path):
    piece = NoteSequence([Note(60, 0, 4)])
    write_midi(piece, tmp_path / "a.mid")
    assert [p.name for p in tmp_path.iterdir()] == ["a.mid"]  # no temp file left behind
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(CantorError):
        write_midi(piece, blocker / "inside.mid")


def test_prepare_skips_bad_files_and_prepares_the_good_ones(tmp_path, capsys):
    source = tmp_path / "mine"
    source.mkdir()
    for i in range(3):
        midi_file(source / f"good{i}.mid", [(60 + j % 7, j * 0.25, j * 0.25 + 0.5) for j in range(40 + i)])
    (source / "broken.mid").write_bytes(b"garbage")
    midi_file(source / "drums.mid", [(36, 0, 1)], drum=True)
    code = prepare_main(
        ["--source", str(source), "--name", "mine", "--data-root", str(tmp_path / "data"), "--workers", "2"]
    )
    captured = capsys.readouterr()
    assert code == 0
    assert "skipped broken.mid" in captured.err and "skipped drums.mid" in captured.err
    from tokenizer.dataset import WordDataset

    dataset = WordDataset(tmp_path / "data" / "mine")
    assert sorted(dataset.names()) == ["good0.mid", "good1.mid", "good2.mid"]
    assert len(dataset.piece("good1.mid").notes) == 41


def test_prepare_fails_when_nothing_could_be_prepared(tmp_path, capsys):
    source = tmp_path / "bad"
    source.mkdir()
    (source / "broken.mid").write_bytes(b"garbage")
    assert prepare_main(["--source", str(source), "--data-root", str(tmp_path / "data"), "--workers", "1"]) == 1
    assert "no piece could be prepared" in capsys.readouterr().err


def test_split_is_deterministic_and_about_80_10_10(chorales):
    from tokenizer.dataset import split_of

    counts = {s: len(chorales.names(s)) for s in ("train", "val", "test")}
    assert all(split_of(p.name) == p.split for p in chorales.pieces)
    assert 0.7 < counts["train"] / len(chorales.pieces) < 0.9
    assert counts["val"] > 20 and counts["test"] > 20


def test_a_piece_survives_pickling_with_every_field(chorales):
    piece = replace(chorales.piece(chorales.names()[0]), tempos=[(0, 90.0), (48, 60.0)], time_signature=(3, 4))
    copy = pickle.loads(pickle.dumps(piece))  # how the studio's engine process sends pieces
    assert copy == piece and copy is not piece
    assert all(type(note) is Note for note in copy.notes) and copy.notes[0].end == piece.notes[0].end
