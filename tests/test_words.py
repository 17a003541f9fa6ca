"""The word tokenizer: canonical encoding, exact round trips, and the grammar."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenizer import CantorError, Note, NoteSequence
from tokenizer.readers import read_music21
from tokenizer.words import (
    ENCODINGS,
    NoteStream,
    WordVocabulary,
    decode,
    encode,
    is_legal,
    parse_text_lines,
    text_lines,
    word_grammar,
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
    decoded = decode(ids, chorales.vocab)
    assert decoded.notes == piece.with_velocity().notes
    assert decoded.phrase_ends == piece.phrase_ends and decoded.key == piece.key


FORM = WordVocabulary(max_duration=16, encoding="steps", form=True)


def test_fermatas_become_phrase_words_before_their_chord_and_the_key_follows_start():
    piece = read_music21("bach/bwv66.6")
    assert piece.key == "F# minor"
    assert piece.phrase_ends[:3] == [12, 28, 44]  # the fermatas of its first three phrases, in steps
    text = FORM.text(encode(piece, FORM))
    assert text.startswith("START key:F#m n73 d2 n64 d4")
    assert text.count("PHRASE") == len(piece.phrase_ends)
    assert " sepxx d4 PHRASE n73 " in text  # announced after the step's gap, before its top note
    plain = WordVocabulary(max_duration=16, encoding="steps")
    assert "PHRASE" not in plain.text(encode(piece, plain))  # an old vocabulary simply drops them


def test_the_grammar_places_phrase_and_key_words_only_where_they_belong():
    grammar = word_grammar(FORM)
    grammar.advance(FORM.start_id)
    first = grammar.legal_mask()
    assert first[FORM.key_id("D major")] and first[FORM.phrase_id]
    grammar.advance(FORM.key_id("D major"))
    assert not grammar.legal_mask()[FORM.key_id("A minor")]  # one key, right after START
    for word in FORM.ids("n62 d4"):
        grammar.advance(word)
    assert not grammar.legal_mask()[FORM.phrase_id]  # not in the middle of a step
    grammar.advance(FORM.sep_id)
    assert not grammar.legal_mask()[FORM.phrase_id]  # not before the gap has a length
    grammar.advance(FORM.duration_id(4))
    assert grammar.legal_mask()[FORM.phrase_id]
    grammar.advance(FORM.phrase_id)
    after = grammar.legal_mask()
    assert after[FORM.pitch_id(60)] and not after[FORM.sep_id] and not after[FORM.end_id]
    assert grammar.phrase_ends == [4] and grammar.key == "D major"


@given(st.data())
@settings(max_examples=60, deadline=None)
def test_pieces_with_phrases_and_a_key_round_trip_exactly(data):
    from tokenizer.keys import KEYS

    notes = data.draw(
        st.lists(st.builds(Note, st.integers(21, 108), st.integers(0, 60), st.integers(1, 40)), min_size=1, max_size=20)
    )
    onsets = sorted({n.start for n in notes})
    phrase_ends = sorted(data.draw(st.sets(st.sampled_from(onsets))))
    key = data.draw(st.sampled_from([None, *KEYS]))
    piece = NoteSequence(notes, phrase_ends=phrase_ends, key=key).normalized()
    ids = encode(piece, FORM)
    assert is_legal(ids, FORM)
    decoded = decode(ids, FORM)
    assert (decoded.notes, decoded.phrase_ends, decoded.key) == (piece.with_velocity().notes, phrase_ends, key)


@pytest.mark.slow
def test_every_corpus_chorale_parsed_afresh_matches_the_cache(chorales):
    from tokenizer.prepare import chorale_sources

    for name, path in chorale_sources():
        piece = read_music21(path)
        assert encode(piece, chorales.vocab) == chorales.piece_ids(name).tolist(), name


@pytest.mark.parametrize(("encoding", "most"), [("implicit", 2.1), ("steps", 2.75)])
def test_words_per_note_of_the_chorales_in_each_encoding(chorales, encoding, most):
    vocab = WordVocabulary(encoding=encoding)
    words = sum(len(encode(chorales.piece(name), vocab)) for name in chorales.names())
    notes = sum(len(chorales.piece(name).notes) for name in chorales.names())
    assert words / notes <= most  # 2.083 and 2.714: the steps encoding pays for its explicit time


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
@given(notes_strategy, st.sampled_from([4, 8, 16]), st.sampled_from(ENCODINGS))
def test_round_trip_on_random_polyphony(notes, max_duration, encoding):
    vocab = WordVocabulary(max_duration=max_duration, encoding=encoding)
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
        grammar = word_grammar(chorales.vocab)
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
    grammar = word_grammar(VOCAB)
    for word_id in VOCAB.ids("START n108 d4 sepxx"):
        grammar.advance(word_id)
    assert not grammar.legal_mask()[VOCAB.duration_id(4)]  # would need a pitch above n108
    assert grammar.legal_mask()[VOCAB.duration_id(3)]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_random_legal_walks_always_decode(encoding):
    vocab = WordVocabulary(encoding=encoding)
    rng = np.random.default_rng(0)
    for _ in range(200):
        grammar, ids = word_grammar(vocab), []
        for _ in range(80):
            legal = np.flatnonzero(grammar.legal_mask())
            if len(legal) == 0:
                break
            ids.append(int(rng.choice(legal)))
            grammar.advance(ids[-1])
        decoded = decode(ids, vocab, partial=True)
        if grammar.ended:
            assert encode(decoded, vocab) == ids


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


STEPS = WordVocabulary(max_duration=16, encoding="steps")


def test_steps_encoding_announces_every_step_and_writes_the_top_voice_first():
    piece = NoteSequence(
        [Note(48, 0, 8), Note(64, 0, 8), Note(67, 0, 4), Note(72, 0, 4), Note(74, 4, 4), Note(65, 4, 4)]
    )
    text = STEPS.text(encode(piece, STEPS))
    assert text == "START n72 d4 n67 d4 n64 d8 n48 d8 sepxx d4 n74 d4 n65 d4 END"
    assert decode(encode(piece, STEPS), STEPS).notes == piece.normalized().notes


def test_steps_encoding_writes_rests_and_long_gaps_as_runs():
    piece = NoteSequence([Note(60, 40, 4), Note(62, 44, 20)])
    assert STEPS.text(encode(piece, STEPS)) == "START sepxx d16 d16 d8 n60 d4 sepxx d4 n62 d16 d4 END"


@pytest.mark.parametrize(
    "text",
    [
        "START n60 d4 n64 d4",  # a higher pitch after a lower one in the same step
        "START n60 d4 n60 d4",  # the same pitch twice in one step
        "START n60 d4 sepxx d4 END",  # END after a gap
        "START n60 d4 sepxx d2 sepxx d2 n62 d4",  # two gaps in a row
        "START n60 d5 d2",  # a duration run continued after a word below dMAX
    ],
)
def test_steps_grammar_rejects_what_the_encoding_never_writes(text):
    ids = STEPS.ids(text)
    assert not is_legal(ids, STEPS)
    with pytest.raises(CantorError):
        decode(ids, STEPS)


def test_steps_grammar_after_a_sealed_primer_keeps_the_step_descending():
    stream = NoteStream(STEPS, STEPS.ids("START n67 d4 n60 d4"))
    mask = stream.grammar.legal_mask()
    assert mask[STEPS.pitch_id(59)] and not mask[STEPS.pitch_id(60)] and not mask[STEPS.pitch_id(72)]
    assert mask[STEPS.sep_id] and not mask[STEPS.end_id]


def test_steps_encoding_round_trips_every_chorale(chorales):
    for name in chorales.names():
        piece = chorales.piece(name)
        ids = encode(piece, STEPS)
        assert is_legal(ids, STEPS), name
        assert decode(ids, STEPS).notes == piece.notes, name


def test_vocabulary_json_carries_the_encoding_and_old_files_read_as_implicit():
    assert WordVocabulary.from_json(STEPS.to_json()) == STEPS
    old = {k: v for k, v in VOCAB.to_json().items() if k != "encoding"}
    assert WordVocabulary.from_json(old).encoding == "implicit"
    with pytest.raises(CantorError, match="encoding"):
        WordVocabulary.from_json({**VOCAB.to_json(), "encoding": "zigzag"})
