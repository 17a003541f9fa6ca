"""Quarter slices (codebook pipeline) and augmentation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.train_gpt import transposed_ids
from tokenizer import Note, NoteSequence
from tokenizer.augment import legal_transpositions, time_stretch, transpose
from tokenizer.slices import piece_to_slices, slices_to_piece
from tokenizer.words import encode


def test_slices_round_trip_every_chorale(chorales):
    for name in chorales.names():
        piece = chorales.piece(name)
        slices, dropped = piece_to_slices(piece)
        assert dropped == 0
        assert slices.shape[1:] == (88, 32) and slices.dtype == np.uint8
        assert slices.shape[0] == -(-piece.total_steps // piece.steps_per_quarter)
        assert slices_to_piece(slices, piece.steps_per_quarter).notes == piece.as_played().notes, name


def test_as_played_changes_only_unisons(chorales):
    for name in chorales.names()[:80]:
        piece = chorales.piece(name)
        keys = {}
        unison = False
        for n in piece.notes:
            unison |= any(s < n.end and n.start < e for s, e in keys.get(n.pitch, []))
            keys.setdefault(n.pitch, []).append((n.start, n.end))
        assert (piece.as_played().notes == piece.notes) == (not unison), name


def test_unison_voices_become_the_key_cut_at_each_onset():
    piece = NoteSequence([Note(60, 0, 8), Note(60, 4, 2), Note(64, 0, 8)])
    assert piece.as_played().notes == [Note(60, 0, 4), Note(64, 0, 8), Note(60, 4, 4)]
    slices, _ = piece_to_slices(piece)
    assert slices_to_piece(slices).notes == piece.as_played().notes


def test_repeated_note_stays_apart_from_a_held_note():
    repeated = NoteSequence([Note(60, 0, 2), Note(60, 2, 2)])
    held = NoteSequence([Note(60, 0, 4)])
    repeated_slices, _ = piece_to_slices(repeated)
    held_slices, _ = piece_to_slices(held)
    assert not np.array_equal(repeated_slices, held_slices)
    assert slices_to_piece(repeated_slices).notes == repeated.notes
    assert slices_to_piece(held_slices).notes == held.notes


def test_notes_crossing_quarter_boundaries_survive():
    piece = NoteSequence([Note(40, 3, 9), Note(108, 1, 30), Note(21, 0, 1)])
    slices, _ = piece_to_slices(piece)
    assert slices.shape[0] == 8
    assert slices_to_piece(slices).notes == piece.normalized().notes


def test_notes_outside_the_piano_are_dropped_and_counted():
    slices, dropped = piece_to_slices(NoteSequence([Note(10, 0, 4), Note(60, 0, 4), Note(120, 0, 4)]))
    assert dropped == 2
    assert slices_to_piece(slices).notes == [Note(60, 0, 4)]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.builds(Note, pitch=st.integers(21, 108), start=st.integers(0, 300), duration=st.integers(2, 100)),
        min_size=1,
        max_size=40,
    )
)
def test_slices_are_exact_on_the_32_tick_grid(notes):
    piece = NoteSequence(notes, steps_per_quarter=32).normalized()
    played = piece.as_played()
    by_pitch: dict[int, list[Note]] = {}
    for n in played.notes:
        by_pitch.setdefault(n.pitch, []).append(n)
    for same in by_pitch.values():  # the documented limits, on one key:
        for a, b in itertools.pairwise(same):
            if b.start - a.end == 1 or (a.duration == 1 and b.start == a.end):  # a 1-tick rest or note
                return
    slices, _ = piece_to_slices(piece)
    assert slices_to_piece(slices, 32).with_velocity().notes == played.with_velocity().notes


def test_transposition_keeps_pitches_in_range_and_skips_illegal_shifts(chorales):
    for name in chorales.names()[:50]:
        piece = chorales.piece(name)
        shifts = legal_transpositions(piece, 40)
        assert 0 in shifts
        for k in (min(shifts), max(shifts)):
            moved = transpose(piece, k)
            assert all(21 <= n.pitch <= 108 for n in moved.notes)
        with pytest.raises(ValueError):
            transpose(piece, max(shifts) + 1 if max(shifts) < 40 else min(shifts) - 1)


def test_time_stretch_keeps_durations_at_least_one_step(chorales):
    piece = chorales.piece("bwv66.6")
    for factor in (0.25, 0.5, 1.5, 2.0):
        stretched = time_stretch(piece, factor)
        assert min(n.duration for n in stretched.notes) >= 1
        assert abs(stretched.total_steps - piece.total_steps * factor) <= 2


def test_shifting_pitch_words_equals_encoding_the_transposed_piece(chorales):
    vocab = chorales.vocab
    for name in chorales.names()[:30]:
        piece = chorales.piece(name)
        for k in (-5, 3):
            moved = transposed_ids(chorales.piece_ids(name), k, vocab)
            assert moved.tolist() == encode(transpose(piece, k), vocab)
