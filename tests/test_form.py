"""A piece, not a stretch of texture: keys, the ending within a length, and the whole-piece judge."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from bench.form import form_summary, opening_repeated, piece_form, root_position_triad
from bench.two_sample import FEATURES, describe, two_sample_test
from models.gpt import GPT, SIZES, GPTConfig
from models.sampling import SamplingSettings, generate
from models.train_gpt import transpositions
from tokenizer.ending import FINAL_WORDS, EndWithin
from tokenizer.keys import KEYS, estimate_key, fifths_of, scale_of, transposed_key
from tokenizer.notes import Note, NoteSequence
from tokenizer.opening import OpenOnTonic
from tokenizer.words import NoteStream, WordVocabulary, word_grammar

FORM = WordVocabulary(max_duration=16, encoding="steps", form=True)


def test_key_signatures_and_transposed_keys_are_a_musician_s():
    assert [fifths_of(k) for k in ("C major", "A minor", "D major", "B minor", "Bb major", "G minor")] == [
        0,
        0,
        2,
        2,
        -2,
        -2,
    ]
    assert transposed_key("D major", 3) == "F major" and transposed_key("B minor", -2) == "A minor"
    assert scale_of("A minor")[[9, 11, 0, 2, 4, 5, 7, 8]].all()  # with the raised seventh
    with pytest.raises(ValueError, match="unknown key"):
        fifths_of("H major")


def test_the_key_estimate_finds_a_scale_s_key_and_always_chooses_one():
    d_major = [Note(p, i * 4, 4) for i, p in enumerate((62, 64, 66, 67, 69, 71, 73, 74, 69, 66, 62))]
    assert estimate_key(d_major)[0] == "D major"
    assert estimate_key([Note(60, 0, 4)]) == ("C major", 0.0)  # one note: a key is still chosen, with no fit
    assert estimate_key([]) == ("C major", 0.0)


def test_a_melody_s_key_is_the_one_it_closes_in():
    from tokenizer.keys import estimate_melody_key

    tune = [Note(p, i * 4, 4) for i, p in enumerate((74, 64, 66, 72, 67, 66, 72, 67))]  # G major's notes, on G
    assert estimate_key(tune)[0] == "C major"  # the notes alone fit C better
    assert estimate_melody_key(tune)[0] == "G major"
    assert estimate_melody_key([Note(64, 0, 4), Note(64, 4, 4)]) == ("E major", 0.0)  # too plain: its last note's
    assert estimate_melody_key([]) == ("C major", 0.0)


def test_a_melody_read_from_a_file_gets_the_key_it_closes_in(tmp_path):
    from tokenizer.readers import read_midi
    from tokenizer.writers import write_midi

    tune = NoteSequence(notes=[Note(p, i * 4, 4) for i, p in enumerate((74, 64, 66, 72, 67, 66, 72, 67))])
    write_midi(tune, tmp_path / "tune.mid")
    assert read_midi(tmp_path / "tune.mid").key == "G major"


def test_bach_s_keys_are_kept_when_training_transposes():
    """A piece in a known key is moved only into keys of at most three sharps or flats."""
    for key in KEYS:
        shifts = transpositions(key, 6, 3)
        assert 0 in shifts
        assert all(abs(fifths_of(transposed_key(key, k))) <= 3 for k in shifts if k)
    assert len(transpositions(None, 6, 3)) == 13  # an unknown key: every shift, as before


def random_model(vocab: WordVocabulary, seed: int) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab.size, block_size=256, dropout=0.0, **SIZES["tiny"])).eval()


@pytest.mark.parametrize("words", [30, 120, 300])
def test_a_piece_ends_with_a_phrase_and_end_within_its_words_even_from_a_random_model(words):
    ended = 0
    for seed in range(6):
        grammar = word_grammar(FORM)
        grammar.advance(FORM.start_id)
        steer = EndWithin(grammar, words)
        model = random_model(FORM, seed)
        ids = generate(model, [FORM.start_id], words, SamplingSettings(seed=seed), constraint=steer, end_id=FORM.end_id)
        assert len(ids) <= words
        if ids[-1] == FORM.end_id:
            ended += 1
            assert grammar.phrase_ends and grammar.phrase_ends[-1] == max(n.start for n in grammar.notes)
    assert ended >= 5


def test_the_steering_weighs_phrase_and_end_only_near_the_end():
    grammar = word_grammar(FORM)
    grammar.advance(FORM.start_id)
    steer = EndWithin(grammar, 400)
    assert steer.logit_bias() is None  # far from the end: the model alone
    steer.made = 400 - FINAL_WORDS - 10
    assert steer.logit_bias()[FORM.phrase_id] > 0
    steer.made = 400 - 5
    mask = steer.legal_mask()
    assert mask[FORM.phrase_id] and not mask[FORM.sep_id] and not mask[FORM.pitch_id(60)]  # a cadence now


def test_the_last_chord_and_cadences_of_a_plain_progression_are_found():
    c = [(48, 64, 67, 72), (43, 62, 67, 71), (48, 64, 67, 72)]  # C - G - C, a quarter each, then held
    notes = [Note(p, i * 4, 4 if i < 2 else 8) for i, chord in enumerate(c) for p in chord]
    piece = NoteSequence(notes, key="C major")
    form = piece_form(piece)
    assert form.final_tonic and form.opening_key == "C major" and form.final_tonic_named
    assert piece_form(replace(piece, key="G major")).final_tonic_named is False  # not the key it names
    assert piece_form(replace(piece, key=None)).final_tonic_named is None
    assert form.cadences_per_8 > 0
    assert root_position_triad(np.array([48, 64, 67, 72])) == 0
    assert root_position_triad(np.array([52, 60, 67, 72])) is None  # first inversion
    assert form_summary([form], [True])["ended"] == 1.0


def test_a_repeated_opening_is_found_and_a_new_one_is_not():
    bar = [Note(60 + i, i * 4, 4) for i in range(8)]  # two bars of a rising line
    again = [n._replace(start=n.start + 32) for n in bar]
    assert opening_repeated(NoteSequence(bar + again))
    moved = [n._replace(start=n.start + 32, pitch=n.pitch + 5) for n in bar]
    assert not opening_repeated(NoteSequence(bar + moved))


def test_bach_s_chorales_sound_like_themselves_to_the_judge(chorales):
    forms = [piece_form(chorales.piece(n)) for n in chorales.names("test")]
    figures = form_summary(forms)
    assert figures["keys_within_3"] > 0.85 and figures["cadences_per_8"] > 0.6


def test_the_classifier_cannot_tell_bach_from_bach_but_tells_noise_from_bach(chorales):
    real = [chorales.piece(n) for n in chorales.names("train")[:120]]
    same = [chorales.piece(n) for n in chorales.names("test")[:30]]
    rng = np.random.default_rng(0)
    noise = [
        NoteSequence([Note(int(rng.integers(40, 80)), int(s), int(rng.integers(1, 8))) for s in range(0, 96, 2)])
        for _ in range(30)
    ]
    assert len(describe(real[0])) == len(FEATURES)
    alike = two_sample_test(same, real)
    assert alike.accuracy < 0.7
    told = two_sample_test(noise, real)
    assert told.accuracy > 0.9 and 0.3 < told.control < 0.7 and len(told.telling) == 10
    assert told.pieces == 30 and told.standard_error < 0.04  # near-certain accuracy: a narrow error
    assert 0.05 < alike.standard_error < 0.07  # near 0.5 over 60 pieces: about 0.06


def test_a_continuation_keeps_its_primer_s_key_and_marks_its_phrases():
    primer_ids = FORM.ids("START key:Bm n74 d4 n66 d4 n59 d4 n47 d4")
    notes = NoteStream(FORM, primer_ids)
    for word in FORM.ids("sepxx d4 PHRASE n73 d8 n64 d8 n57 d8 n45 d8 END"):
        notes.feed(word)
    assert notes.grammar.key == "B minor" and notes.generated_phrase_ends == [4]


def test_training_reads_the_data_s_form_words_as_the_model_s_by_name(chorales):
    """The model's vocabulary puts the marker words before PHRASE and the keys, the data's has none:
    the ids are mapped by word, so a chorale's key word stays its key word."""
    from dataclasses import replace

    from models.train_gpt import augmented_train_ids, word_ids_in

    model_vocab = replace(chorales.vocab, tasks=True)
    ids, starts = augmented_train_ids(chorales, 6, [1.0], 3)
    mapped = word_ids_in(model_vocab, chorales.vocab)[ids]
    first_words = mapped[starts[:50] + 1]
    assert all(model_vocab.is_key(int(w)) for w in first_words)
    assert [model_vocab.key_of(int(w)) for w in first_words] == [
        chorales.vocab.key_of(int(w)) for w in ids[starts[:50] + 1]
    ]
    phrases = ids == chorales.vocab.phrase_id
    assert phrases.any() and (mapped[phrases] == model_vocab.phrase_id).all()


def test_a_harmonization_s_last_chord_is_a_four_voice_tonic_chord_held_to_the_end():
    from tokenizer.ending import CloseOnTonic

    pitch = FORM.pitch_id
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:C n67 d4 n62 d4 n59 d4 n43"):
        grammar.advance(word)
    close = CloseOnTonic(grammar, "C major", 4, 12)
    durations = close.legal_mask()
    assert durations[FORM.duration_id(4)] and not durations[FORM.duration_id(5)]  # not held into the last chord
    for word in FORM.ids("d4 sepxx d4 n72"):
        close.advance(word)
    assert close.legal_mask()[FORM.duration_id(8)] and close.legal_mask().sum() == 1  # the melody's, to the end
    close.advance(FORM.duration_id(8))
    mask = close.legal_mask()
    assert mask[pitch(67)] and mask[pitch(64)] and not mask[pitch(62)]  # the tonic triad
    assert not mask[FORM.sep_id] and not mask[FORM.end_id]
    assert close.logit_bias()[pitch(60)] > close.logit_bias()[pitch(64)] == 0  # the tonic leans in
    for word in FORM.ids("n67 d8"):
        close.advance(word)
    mask = close.legal_mask()
    assert mask[pitch(64)] and mask[pitch(52)] and not mask[pitch(60)] and not mask[pitch(55)]  # the third it lacks
    close.advance(pitch(64))
    assert list(np.flatnonzero(close.legal_mask())) == [FORM.duration_id(8)]  # held to the end
    close.advance(FORM.duration_id(8))
    mask = close.legal_mask()
    assert mask[pitch(48)] and mask[pitch(36)] and not mask[pitch(24)] and not mask[pitch(43)]  # C2-G3, the tonic
    assert not mask[FORM.sep_id]
    for word in FORM.ids("n48 d8"):
        close.advance(word)
    mask = close.legal_mask()
    assert mask[FORM.sep_id] and not mask[FORM.first_pitch_id : FORM.first_duration_id].any()  # four: no fifth
    close.advance(FORM.sep_id)
    assert list(np.flatnonzero(close.legal_mask())) == [FORM.duration_id(8)]  # nothing moves after it


def test_a_tonic_chord_takes_its_key_s_third_a_picardy_third_in_minor_and_never_stands_bare():
    from tokenizer.tonic_chord import on_tonic, tonic_chord_pitches

    major = tonic_chord_pitches([72], "C major")
    assert major[64 - 21] and not major[63 - 21]  # E, not E flat
    minor = tonic_chord_pitches([72], "C minor")
    assert minor[63 - 21] and minor[64 - 21]  # E flat, or a Picardy E
    assert not tonic_chord_pitches([72, 67, 64, 48], "C major").any()  # four voices: whole
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:C n72 d4 n67 d4 n48 d4"):
        grammar.advance(word)
    assert not on_tonic(grammar, "C major")  # C G C: no third, not yet a tonic chord
    grammar.advance(FORM.sep_id)
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:C n72 d4 n64 d4 n48 d4"):
        grammar.advance(word)
    assert on_tonic(grammar, "C major")


def test_the_close_steps_aside_where_the_melody_ends_off_the_tonic_triad():
    from tokenizer.ending import CloseOnTonic

    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:C n67 d4 n62 d4 n59 d4 n43 d4 sepxx d4 n74 d4"):  # D: not in C's triad
        grammar.advance(word)
    close = CloseOnTonic(grammar, "C major", 4, 8)
    assert (close.legal_mask() == grammar.legal_mask()).all()


def test_the_last_chord_is_the_tonic_triad_with_the_tonic_in_the_bass():
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:C n67 d4 n62 d4 n59 d4 n43 d4 sepxx d4 PHRASE"):
        grammar.advance(word)
    steer = EndWithin(grammar, 100)
    steer.made = 100 - 10  # within the last words
    first = steer.legal_mask()
    assert first[FORM.pitch_id(72)] and first[FORM.pitch_id(76)] and not first[FORM.pitch_id(74)]  # the triad
    for word in FORM.ids("n72 d4 n67 d4 n64 d4"):
        steer.advance(word)
    fourth = steer.legal_mask()
    assert not fourth[FORM.end_id] and not fourth[FORM.sep_id]  # E in the bass: not the end yet
    assert fourth[FORM.pitch_id(48)] and not fourth[FORM.pitch_id(55)]  # only a C below
    for word in FORM.ids("n48 d4"):
        steer.advance(word)
    assert steer.legal_mask()[FORM.end_id]


def test_the_last_chord_sounds_on_a_beat_with_nothing_held_into_it_and_its_voices_end_together():
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:C n67 d6 n62 d6 n59 d6 n43 d6 sepxx"):
        grammar.advance(word)
    steer = EndWithin(grammar, 100, steps_per_quarter=4)
    steer.made = 100 - 20  # within the last words
    assert list(np.flatnonzero(steer.legal_mask())) == [FORM.duration_id(8)]  # the beat after the notes end
    steer.advance(FORM.duration_id(8))
    assert list(np.flatnonzero(steer.legal_mask())) == [FORM.phrase_id]
    for word in FORM.ids("PHRASE n72 d8 n67"):
        steer.advance(word)
    assert list(np.flatnonzero(steer.legal_mask())) == [FORM.duration_id(8)]  # as long as the top voice


def test_the_last_chord_never_leaves_the_range_the_rules_keep():
    from tokenizer.constraints import RuleConstraint, Rules

    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:C n72 d4 n67 d4 n64 d4 n60 d4 sepxx d4 PHRASE n72 d4 n64 d4 n55"):
        grammar.advance(word)
    rules = RuleConstraint(grammar, Rules(max_voices=4, lowest=50, highest=80))
    steer = EndWithin(rules, 100, steps_per_quarter=4)
    steer.made = 100 - 10
    steer.advance(FORM.duration_id(4))
    allowed = [FORM.pitch_of(int(i)) for i in np.flatnonzero(steer.legal_mask()) if FORM.is_pitch(int(i))]
    assert allowed and min(allowed) >= 50  # C3 would make the tonic chord, but lies below the range


def test_a_new_piece_opens_on_its_tonic_chord_and_the_rest_is_free():
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:D"):
        grammar.advance(word)
    opening = OpenOnTonic(grammar, "D major")
    pitch = FORM.pitch_id
    mask = opening.legal_mask()
    assert mask[pitch(74)] and mask[pitch(66)] and mask[pitch(69)]  # D, F sharp, A
    assert not mask[pitch(64)] and not mask[pitch(71)]  # E, B: not the tonic triad
    for word in FORM.ids("n74 d4 n69 d4 n66 d4"):
        opening.advance(word)
    mask = opening.legal_mask()
    assert mask[pitch(50)] and not mask[pitch(57)]  # the fourth, lowest voice: the tonic itself
    for word in FORM.ids("n50 d4 sepxx d4"):
        opening.advance(word)
    assert opening.legal_mask()[pitch(64)]  # the second chord is the model's


def test_a_minor_piece_opens_on_its_minor_tonic_chord():
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:Dm"):
        grammar.advance(word)
    mask = OpenOnTonic(grammar, "D minor").legal_mask()
    assert mask[FORM.pitch_id(65)] and not mask[FORM.pitch_id(66)]  # F, not F sharp: its own third


def test_the_ending_keeps_the_rules_voices_and_range_over_many_pieces(tiny_word_checkpoint):
    """A held note in the last chord counts among its four voices; where the close overrules the
    voice leading, it keeps the voices at most, the range and a key that must be kept."""
    from bench.metrics import piece_features
    from models.word_model import WordModel
    from tokenizer.constraints import Rules

    model = WordModel(tiny_word_checkpoint)
    ruled = (Rules(max_voices=4), Rules(max_voices=4, key="D major", out_of_key_weight=0.0, lowest=50, highest=74))
    for seed in range(80, 130):  # among them, pieces whose close once wrote a fifth voice
        for rules in ruled:
            ids = list(model.stream_words(96 if seed % 2 else 48, SamplingSettings(1.0, seed=seed), None, rules=rules))
            piece = model.continuation(ids, None).generated
            if piece.notes:
                pitches = [n.pitch for n in piece.notes]
                assert piece_features(piece).max_sounding <= 4, seed
                assert rules.lowest <= min(pitches) and max(pitches) <= rules.highest, seed
