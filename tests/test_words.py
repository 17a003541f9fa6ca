"""The word tokenizer: canonical encoding, exact round trips, and the grammar."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenizer import CantorError, Note, NoteSequence
from tokenizer.readers import read_music21
from tokenizer.words import (
    NoteStream,
    WordGrammar,
    WordVocabulary,
    decode,
    encode,
    is_legal,
    parse_text_lines,
    text_lines,
)

VOCAB = WordVocabulary(max_duration=16)


def words(text: str) -> list[int]:
    return VOCAB.ids(text)


def test_seed_example_is_legal_and_is_the_canonical_encoding():
    ids = words("START n60 d5 n62 d3 sepxx d2 n65 d4 END")
    piece = decode(ids, VOCAB)
    assert piece.notes == [Note(60, 0, 5), Note(62, 0, 3), Note(65, 2, 4)]
    assert encode(piece, VOCAB) == ids


def test_chord_then_next_chord_moves_time_implicitly():
    piece = NoteSequence([Note(48, 0, 4), Note(60, 0, 4), Note(50, 4, 4), Note(62, 4, 4)])
    assert VOCAB.text(encode(piece, VOCAB)) == "START n48 d4 n60 d4 n50 d4 n62 d4 END"


def test_rising_melody_needs_explicit_gaps_and_rests_are_explicit():
    piece = NoteSequence([Note(60, 0, 4), Note(62, 4, 4), Note(64, 12, 2)])
    assert VOCAB.text(encode(piece, VOCAB)) == "START n60 d4 sepxx d4 n62 d4 sepxx d8 n64 d2 END"


def test_long_durations_and_gaps_are_split_not_clipped():
    piece = NoteSequence([Note(60, 40, 40), Note(64, 100, 16)])
    text = VOCAB.text(encode(piece, VOCAB))
    assert text == "START sepxx d16 d16 d8 n60 d16 d16 d8 sepxx d16 d16 d16 d12 n64 d16 END"
    assert decode(encode(piece, VOCAB), VOCAB).notes == piece.notes


def test_decode_inverts_encode_for_every_chorale(chorales):
    for name in chorales.names():
        ids = chorales.piece_ids(name).tolist()
        piece = chorales.piece(name)
        assert len(piece.notes) > 0
        assert encode(piece, chorales.vocab) == ids, name


@pytest.mark.parametrize("name", ["bwv66.6", "bwv1.6", "bwv277"])
def test_chorales_parsed_afresh_encode_to_the_committed_words(chorales, name):
    piece = read_music21(f"bach/{name}")
    ids = encode(piece, chorales.vocab)
    assert ids == chorales.piece_ids(name).tolist()
    assert decode(ids, chorales.vocab).notes == piece.with_velocity().notes


@pytest.mark.slow
def test_every_corpus_chorale_parsed_afresh_matches_the_cache(chorales):
    from tokenizer.prepare import chorale_sources

    for name, path in chorale_sources():
        piece = read_music21(path)
        assert encode(piece, chorales.vocab) == chorales.piece_ids(name).tolist(), name


def test_chorales_take_fewer_than_2_4_words_per_note(chorales):
    vocab = chorales.vocab
    ids = np.concatenate([chorales.split(s) for s in ("train", "val", "test")])
    notes = ((ids >= vocab.first_pitch_id) & (ids < vocab.first_duration_id)).sum()
    assert len(ids) / notes <= 2.4


notes_strategy = st.lists(
    st.builds(
        Note,
        pitch=st.integers(21, 108),
        start=st.integers(0, 200),
        duration=st.integers(1, 70),
        velocity=st.just(80),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(notes_strategy, st.sampled_from([4, 8, 16]))
def test_round_trip_on_random_polyphony(notes, max_duration):
    vocab = WordVocabulary(max_duration=max_duration)
    piece = NoteSequence(notes).normalized()
    ids = encode(piece, vocab)
    assert decode(ids, vocab).notes == piece.notes
    assert is_legal(ids, vocab)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(21, 108), st.integers(1, 12)), min_size=1, max_size=30))
def test_round_trip_on_repeated_notes_and_dense_chords(events):
    notes, t = [], 0
    for pitch, dur in events:  # each note repeated, with a chord above it
        notes += [Note(pitch, t, dur), Note(pitch, t + dur, dur), Note(min(108, pitch + 7), t, 2 * dur)]
        t += dur
    piece = NoteSequence(notes).normalized()
    assert decode(encode(piece, VOCAB), VOCAB).notes == piece.notes


def test_grammar_accepts_every_encoded_chorale(chorales):
    for name in chorales.names():
        grammar = WordGrammar(chorales.vocab)
        for word_id in chorales.piece_ids(name).tolist():
            assert grammar.legal_mask()[word_id], name
            grammar.advance(word_id)
        assert grammar.ended


@pytest.mark.parametrize(
    "text",
    [
        "START d4",  # a duration first
        "START n60 n62 d4",  # a pitch without a duration
        "START sepxx n60 d4",  # sepxx without a duration
        "START n60 d4 END n62",  # words after END
        "n60 d4",  # no START
        "START n60 d4 sepxx d4 n55 d4",  # explicit gap where the implicit one applies
        "START n60 d4 sepxx d2 sepxx d2 n62 d4",  # two gaps in a row
        "START n60 d5 d2",  # a duration run continued after a word below dMAX
        "START sepxx d4 END",  # END without a note
    ],
)
def test_grammar_rejects_malformed_sequences(text):
    ids = VOCAB.ids(text)
    assert not is_legal(ids, VOCAB)
    with pytest.raises(CantorError):
        decode(ids, VOCAB)


def test_a_pitch_not_above_the_last_one_opens_the_next_step():
    ids = VOCAB.ids("START n60 d4 n60 d4 END")  # a repeated note, not a doubled one
    assert decode(ids, VOCAB).notes == [Note(60, 0, 4), Note(60, 4, 4)]


def test_grammar_never_leads_to_a_dead_end_after_the_highest_key():
    grammar = WordGrammar(VOCAB)
    for word_id in VOCAB.ids("START n108 d4 sepxx"):
        grammar.advance(word_id)
    assert not grammar.legal_mask()[VOCAB.duration_id(4)]  # would need a pitch above n108
    assert grammar.legal_mask()[VOCAB.duration_id(3)]


def test_random_legal_walks_always_decode():
    rng = np.random.default_rng(0)
    for _ in range(200):
        grammar, ids = WordGrammar(VOCAB), []
        for _ in range(80):
            legal = np.flatnonzero(grammar.legal_mask())
            if len(legal) == 0:
                break
            ids.append(int(rng.choice(legal)))
            grammar.advance(ids[-1])
        decoded = decode(ids, VOCAB, partial=True)
        if grammar.ended:
            assert encode(decoded, VOCAB) == ids


def test_note_stream_separates_primer_and_generated_notes():
    primer = VOCAB.ids("START n60 d16")
    stream = NoteStream(VOCAB, primer)
    for word_id in VOCAB.ids("d4"):  # may not lengthen the primer's note
        with pytest.raises(CantorError):
            stream.feed(word_id)
    for word_id in VOCAB.ids("n64 d4 END START n50 d2"):
        stream.feed(word_id)
    assert stream.primer_notes == [Note(60, 0, 16)]
    assert stream.generated_notes == [Note(64, 0, 4), Note(50, 16, 2)]


def test_text_form_round_trips_one_piece_per_line():
    pieces = [words("START n60 d4 END"), words("START n60 d5 n62 d3 sepxx d2 n65 d4 END")]
    text = text_lines(pieces, VOCAB)
    assert text.count("\n") == 2
    assert parse_text_lines(text, VOCAB) == pieces
    with pytest.raises(CantorError, match="x99"):
        VOCAB.ids("START x99")


def test_encode_refuses_empty_and_out_of_range_pieces():
    with pytest.raises(CantorError, match="no notes"):
        encode(NoteSequence([]), VOCAB)
    with pytest.raises(CantorError, match="outside the piano range"):
        encode(NoteSequence([Note(10, 0, 4)]), VOCAB)
