"""The sampler's musical constraints: what they refuse, and that sampled output obeys them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.metrics import piece_features
from models.gpt import GPT, SIZES, GPTConfig
from models.sampling import SamplingSettings, generate
from tokenizer.constraints import VoiceConstraint, VoiceRules
from tokenizer.notes import NoteSequence
from tokenizer.words import ENCODINGS, NoteStream, WordVocabulary, word_grammar


def constrained(vocab: WordVocabulary, rules: VoiceRules, primer: str = "START") -> VoiceConstraint:
    grammar = word_grammar(vocab)
    for word_id in vocab.ids(primer):
        grammar.advance(word_id)
    return VoiceConstraint(grammar, rules)


def sample(encoding: str, rules: VoiceRules | None, seed: int, words: int = 700) -> tuple[NoteSequence, int]:
    """(notes, words the rules stepped aside for) from an untrained model, whose choices are
    close to uniform, so that the constraint alone keeps them in bounds. A piece that ends is
    followed by a new one (the constraint is reset), laid after it."""
    vocab = WordVocabulary(encoding=encoding)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=vocab.size, block_size=64, dropout=0.0, **SIZES["tiny"])).eval()
    grammar = word_grammar(vocab)
    grammar.advance(vocab.start_id)
    constraint = VoiceConstraint(grammar, rules) if rules else grammar
    settings = SamplingSettings(seed=seed)
    ids = generate(
        model, [vocab.start_id], words, settings, constraint=constraint, end_id=vocab.end_id, restart_id=vocab.start_id
    )
    notes = NoteStream(vocab)
    for word_id in ids:
        notes.feed(word_id)
    return NoteSequence(notes.generated_notes), getattr(constraint, "relaxed", 0)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_output_obeys_four_voices_and_no_clash_every_time(encoding, seed):
    piece, relaxed = sample(encoding, VoiceRules(max_voices=4, no_clash=True), seed)
    features = piece_features(piece)
    assert len(piece.notes) > 100
    assert features.max_sounding <= 4
    assert features.clash == 0.0
    assert relaxed == 0


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_each_rule_holds_on_its_own(encoding):
    two, _ = sample(encoding, VoiceRules(max_voices=2, no_clash=False), seed=5)
    assert piece_features(two).max_sounding <= 2
    free, _ = sample(encoding, VoiceRules(max_voices=None, no_clash=True), seed=5)
    assert piece_features(free).clash == 0.0 and piece_features(free).max_sounding > 4


def test_unconstrained_sampling_from_the_same_model_breaks_both_rules():
    """The rules above are not met by chance."""
    piece, _ = sample("steps", None, seed=0)
    features = piece_features(piece)
    assert features.max_sounding > 4 and features.clash > 0


def test_a_held_chord_refuses_a_fifth_voice_and_a_semitone():
    vocab = WordVocabulary(encoding="steps")
    constraint = constrained(vocab, VoiceRules(), "START n72 d16 n67 d16 n64 d16 n48 d16 sepxx d4")
    mask = constraint.legal_mask()
    assert not mask[vocab.pitch_id(60)]  # a fifth voice over the held C major chord
    assert mask[vocab.pitch_id(72)]  # striking a sounding pitch again adds no voice
    constraint = constrained(vocab, VoiceRules(), "START n72 d16 n67 d16 n48 d16 sepxx d4")
    mask = constraint.legal_mask()
    assert mask[vocab.pitch_id(64)] and not mask[vocab.pitch_id(66)] and not mask[vocab.pitch_id(73)]


def test_the_primer_s_held_notes_count():
    vocab = WordVocabulary(encoding="implicit")
    constraint = constrained(vocab, VoiceRules(max_voices=2), "START n48 d16 n60 d16")
    constraint.grammar.seal()
    mask = constraint.legal_mask()
    # n48 and n60 sound: a third pitch in the same step is refused; a lower pitch would open the
    # next step at 16, where they have ended, so it is allowed
    assert not mask[vocab.pitch_id(67)]
    assert mask[vocab.pitch_id(55)]
    assert np.any(mask)


def test_bad_rules_are_refused():
    with pytest.raises(ValueError, match="at least 1"):
        VoiceRules(max_voices=0)
