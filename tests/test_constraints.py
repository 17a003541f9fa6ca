"""The sampler's musical constraints: what they refuse, and that sampled output obeys them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.metrics import piece_features
from models.gpt import GPT, SIZES, GPTConfig
from models.sampling import SamplingSettings, generate
from tokenizer.constraints import RuleConstraint, Rules
from tokenizer.keys import scale_of
from tokenizer.notes import NoteSequence
from tokenizer.words import ENCODINGS, NoteStream, WordVocabulary, word_grammar


def constrained(vocab: WordVocabulary, rules: Rules, primer: str = "START") -> RuleConstraint:
    grammar = word_grammar(vocab)
    for word_id in vocab.ids(primer):
        grammar.advance(word_id)
    return RuleConstraint(grammar, rules)


def sample_ids(encoding: str, rules: Rules | None, seed: int, words: int = 700) -> tuple[list[int], int]:
    """(word ids, words the rules stepped aside for) from an untrained model, whose choices are
    close to uniform, so that the constraint alone keeps them in bounds. A piece that ends is
    followed by a new one (the constraint is reset)."""
    vocab = WordVocabulary(encoding=encoding)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab.size, block_size=64, dropout=0.0, **SIZES["tiny"])).eval()
    grammar = word_grammar(vocab)
    grammar.advance(vocab.start_id)
    constraint = RuleConstraint(grammar, rules) if rules else grammar
    settings = SamplingSettings(seed=seed)
    ids = generate(
        model, [vocab.start_id], words, settings, constraint=constraint, end_id=vocab.end_id, restart_id=vocab.start_id
    )
    return ids, getattr(constraint, "relaxed", 0)


def sample(encoding: str, rules: Rules | None, seed: int, words: int = 700) -> tuple[NoteSequence, int]:
    """As ``sample_ids``, as notes: each new piece laid after the one before."""
    ids, relaxed = sample_ids(encoding, rules, seed, words)
    notes = NoteStream(WordVocabulary(encoding=encoding))
    for word_id in ids:
        notes.feed(word_id)
    return NoteSequence(notes.generated_notes), relaxed


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_output_obeys_four_voices_and_no_clash_every_time(encoding, seed):
    piece, relaxed = sample(encoding, Rules(max_voices=4, no_clash=True, dissonances=False), seed)
    features = piece_features(piece)
    assert len(piece.notes) > 100
    assert features.max_sounding <= 4
    assert features.clash == 0.0
    assert relaxed == 0


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_rule_holds_on_its_own(encoding):
    two, _ = sample(encoding, Rules(max_voices=2, no_clash=False, no_parallels=False), seed=5)
    assert piece_features(two).max_sounding <= 2
    free, _ = sample(encoding, Rules(max_voices=None, no_clash=True, dissonances=False, no_parallels=False), seed=5)
    assert piece_features(free).clash == 0.0 and piece_features(free).max_sounding > 4
    four, _ = sample(encoding, Rules(max_voices=4, no_clash=False, no_parallels=True), seed=5)
    assert piece_features(four).max_sounding <= 4 and piece_features(four).clash > 0


def test_unconstrained_sampling_from_the_same_model_breaks_both_rules():
    """The rules above are not met by chance."""
    piece, _ = sample("steps", None, seed=0)
    features = piece_features(piece)
    assert features.max_sounding > 4 and features.clash > 0


def test_a_held_chord_refuses_a_fifth_voice_and_a_semitone():
    vocab = WordVocabulary(encoding="steps")
    constraint = constrained(vocab, Rules(), "START n72 d16 n67 d16 n64 d16 n48 d16 sepxx d4")
    mask = constraint.legal_mask()
    assert not mask[vocab.pitch_id(60)]  # a fifth voice over the held C major chord
    assert mask[vocab.pitch_id(72)]  # striking a sounding pitch again adds no voice
    constraint = constrained(vocab, Rules(dissonances=False), "START n72 d16 n67 d16 n48 d16 sepxx d4")
    mask = constraint.legal_mask()
    assert mask[vocab.pitch_id(64)] and not mask[vocab.pitch_id(66)] and not mask[vocab.pitch_id(73)]
    # in the style, a note against a held one is a suspension: the held G must then resolve down
    assert constrained(vocab, Rules(), "START n72 d16 n67 d16 n48 d16 sepxx d4").legal_mask()[vocab.pitch_id(66)]


def test_a_passing_note_off_the_beat_may_clash_but_a_new_note_on_the_beat_may_not():
    vocab = WordVocabulary(encoding="steps")
    primer = "START n74 d8 n65 d8 n62 d6 n47 d8 sepxx d6"  # at step 6 the tenor's D ends, a step below E
    assert constrained(vocab, Rules(), primer).legal_mask()[vocab.pitch_id(64)]
    assert not constrained(vocab, Rules(dissonances=False), primer).legal_mask()[vocab.pitch_id(64)]
    on_the_beat = constrained(vocab, Rules(), "START n72 d4 n67 d4 n64 d4 n48 d4 sepxx d4 n72 d4")
    assert not on_the_beat.legal_mask()[vocab.pitch_id(71)]  # nothing held, nothing off the beat


def test_a_dissonance_must_resolve_by_step_before_its_step_may_close():
    vocab = WordVocabulary(encoding="steps")
    constraint = constrained(vocab, Rules(), "START n74 d8 n65 d8 n62 d6 n47 d8 sepxx d6")
    for word in vocab.ids("n64 d2 sepxx d2 n76 d4"):  # E against the held F, then step 8: F owes E or Eb
        assert constraint.legal_mask()[word], vocab.words[word]
        constraint.advance(word)
    mask = constraint.legal_mask()
    assert not mask[vocab.sep_id] and not mask[vocab.end_id]  # not before the F has resolved
    assert mask[vocab.pitch_id(64)] and mask[vocab.pitch_id(63)] and not mask[vocab.pitch_id(60)]
    for word in vocab.ids("n64 d4"):
        constraint.advance(word)
    assert constraint.legal_mask()[vocab.sep_id] and constraint.forgiven == 0


def test_the_primer_s_held_notes_count():
    vocab = WordVocabulary(encoding="implicit")
    constraint = constrained(vocab, Rules(max_voices=2), "START n48 d16 n60 d16")
    constraint.grammar.seal()
    mask = constraint.legal_mask()
    # n48 and n60 sound: a third pitch in the same step is refused; a lower pitch would open the
    # next step at 16, where they have ended, so it is allowed
    assert not mask[vocab.pitch_id(67)]
    assert mask[vocab.pitch_id(55)]
    assert np.any(mask)


@pytest.mark.parametrize(
    "rules, said",
    [
        (dict(max_voices=0), "at least 1"),
        (dict(lowest=80, highest=60), "the range must run upward"),
        (dict(lowest=10), "the range must run upward within 21-108"),
        (dict(key="H major"), "unknown key 'H major'"),
        (dict(key="C major", out_of_key_weight=0.0, lowest=61, highest=61), "61-61 holds no note of C major"),
        (dict(out_of_key_weight=2.0), "from 0 to 1"),
        (dict(no_repeat=1), "2 words or more"),
    ],
)
def test_bad_and_contradictory_rules_are_refused(rules, said):
    with pytest.raises(ValueError, match=said):
        Rules(**rules)


FREE = dict(max_voices=None, no_clash=False, no_parallels=False)  # only the rule under test


def pitches_of(piece: NoteSequence) -> np.ndarray:
    return np.array([note.pitch for note in piece.notes])


def test_a_range_holds_every_time_and_is_not_met_by_chance():
    free, _ = sample("steps", None, seed=3)
    ranged, relaxed = sample("steps", Rules(**FREE, lowest=55, highest=72), seed=3)
    assert pitches_of(free).min() < 55 and pitches_of(free).max() > 72
    assert len(ranged.notes) > 100 and relaxed == 0
    assert pitches_of(ranged).min() >= 55 and pitches_of(ranged).max() <= 72


def test_a_key_weighs_chromatic_notes_down_and_a_weight_of_zero_forbids_them():
    scale = scale_of("D minor")
    free, _ = sample("steps", None, seed=4)
    weighed, _ = sample("steps", Rules(**FREE, key="D minor", out_of_key_weight=0.1), seed=4)
    strict, relaxed = sample("steps", Rules(**FREE, key="D minor", out_of_key_weight=0.0), seed=4)
    outside = {name: float(np.mean(~scale[pitches_of(p) % 12])) for name, p in (("free", free), ("weighed", weighed))}
    # a model close to uniform writes 4 of 12 pitch classes outside; weighed by 0.1, about 0.4 / 8.4
    assert outside["free"] > 0.25 and 0.0 < outside["weighed"] < 0.12
    assert len(strict.notes) > 100 and relaxed == 0 and scale[pitches_of(strict) % 12].all()


def repeats(ids: list[int], n: int, restart_id: int) -> int:
    """Runs of n words that appeared before in the same piece."""
    seen, count, piece_start = set(), 0, 0
    for i in range(len(ids)):
        if ids[i] == restart_id:
            seen, piece_start = set(), i
        elif i + 1 - piece_start >= n:
            run = tuple(ids[i + 1 - n : i + 1])
            count += run in seen
            seen.add(run)
    return count


def test_no_run_of_n_words_repeats_exactly():
    start = WordVocabulary().start_id
    free, _ = sample_ids("steps", None, seed=8)
    kept, relaxed = sample_ids("steps", Rules(**FREE, no_repeat=2), seed=8)
    assert repeats(free, 2, start) >= 5  # a model close to uniform ends pieces early: pairs are what repeat
    assert repeats(kept, 2, start) == 0 and relaxed == 0
    vocab = WordVocabulary(encoding="steps")
    constraint = constrained(vocab, Rules(**FREE, no_repeat=4))
    for word_id in vocab.ids("n60 d4 sepxx d4 n62 d4 sepxx d4"):
        constraint.advance(word_id)
    mask = constraint.legal_mask()  # "d4 sepxx d4" was followed by n62 once: not again
    assert not mask[vocab.pitch_id(62)] and mask[vocab.pitch_id(60)] and mask[vocab.pitch_id(64)]


def test_the_rules_compose():
    rules = Rules(
        max_voices=4, no_clash=True, dissonances=False, no_parallels=True, lowest=48, highest=79, key="G major"
    )
    piece, relaxed = sample("steps", rules, seed=7)
    features = piece_features(piece)
    assert len(piece.notes) > 100 and relaxed == 0
    assert features.max_sounding <= 4 and features.clash == 0.0
    assert 48 <= pitches_of(piece).min() and pitches_of(piece).max() <= 79


def test_a_gap_that_would_corner_the_rules_is_refused():
    """Implicit encoding: a gap equal to the implicit one must be followed by a pitch above the
    last step's highest (n73); at its landing four voices sound, so only they may be struck
    again, all below: after that word no note could follow. The constraint refuses it."""
    vocab = WordVocabulary(encoding="implicit")
    constraint = constrained(vocab, Rules(), "START n30 d1 n52 d8 n65 d8 n71 d8 n73 d8 sepxx")
    mask = constraint.legal_mask()
    assert not mask[vocab.duration_id(1)]  # lands at step 1, where the grammar wants > n73
    assert mask[vocab.duration_id(2)]
    constraint.advance(vocab.duration_id(2))
    assert constraint.legal_mask()[vocab.pitch_id(73)] and constraint.relaxed == 0


def test_parallel_fifths_and_octaves_after_a_four_voice_chord_are_refused():
    vocab = WordVocabulary(encoding="steps")
    # C5 F4 C4 C3, then the soprano rises to D5: the alto may not follow a fifth below (G4)
    constraint = constrained(vocab, Rules(), "START n72 d4 n65 d4 n60 d4 n48 d4 sepxx d4 n74 d4")
    mask = constraint.legal_mask()
    assert not mask[vocab.pitch_id(67)]  # F4-C5 was a fifth; G4-D5 would be one, both voices up
    assert mask[vocab.pitch_id(65)] and mask[vocab.pitch_id(69)]  # the alto held, or a sixth
    constraint.advance(vocab.pitch_id(69))
    constraint.advance(vocab.duration_id(4))
    assert not constraint.legal_mask()[vocab.pitch_id(62)]  # C4-C5 to D4-D5: octaves with the soprano
    constraint.advance(vocab.pitch_id(65))
    constraint.advance(vocab.duration_id(4))
    mask = constraint.legal_mask()
    assert not mask[vocab.pitch_id(50)]  # C3-C5 to D3-D5: parallel octaves with the soprano
    assert mask[vocab.pitch_id(43)]


def test_a_note_written_above_a_held_one_may_not_make_it_leap_in_octaves():
    """Bb6 C#4 Bb1 Bb0, then a new chord above the held Bb1: the bass becomes the held Bb1 (up an
    octave from Bb0), so a tenor Bb2 (up an octave from Bb1) would be parallel octaves with it."""
    vocab = WordVocabulary(encoding="steps")
    constraint = constrained(vocab, Rules(), "START n94 d4 n61 d4 n34 d8 n22 d4 sepxx d4 n99 d4 n66 d4")
    mask = constraint.legal_mask()
    assert not mask[vocab.pitch_id(46)]
    assert mask[vocab.pitch_id(41)]  # a fourth above the held bass moves as no voice did


def test_the_kept_answers_of_the_rules_are_what_working_them_out_again_gives():
    """The allowed pitches at a step are kept while the notes, onsets and owed resolutions stay;
    at every word of a ruled piece, the mask with them is the mask worked out afresh."""
    vocab = WordVocabulary(encoding="steps")
    ids, _ = sample_ids("steps", Rules(), seed=3, words=400)
    constraint = constrained(vocab, Rules())
    hits = 0
    for word_id in ids:
        if word_id == vocab.start_id:
            constraint.reset()
        else:
            kept = constraint.legal_mask().copy()
            hits += len(constraint._cache)
            constraint._cache.clear()
            assert np.array_equal(kept, constraint.legal_mask())
        constraint.advance(word_id)
    assert hits > 0
