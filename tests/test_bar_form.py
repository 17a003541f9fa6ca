"""Bar form (tokenizer/repeat.py): a new piece sings its first two phrases again from a bar line."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.form import opening_repeated
from models.sampling import SamplingSettings
from tokenizer.constraints import RuleConstraint, Rules
from tokenizer.repeat import RepeatOpening
from tokenizer.words import WordVocabulary, word_grammar

FORM = WordVocabulary(max_duration=16, encoding="steps", form=True)
SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints" / "chorales_small"
# two phrases in D major: a half cadence on A at step 4, the tonic at step 12, held to step 24
OPENING = (
    "n74 d4 n69 d4 n66 d4 n50 d4 sepxx d4 PHRASE n73 d8 n69 d8 n64 d8 n57 d8 "
    "sepxx d8 PHRASE n74 d12 n69 d12 n66 d12 n50 d12"
)


def started(inner=None, words: int = 400) -> tuple:
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:D"):
        grammar.advance(word)
    repeat = RepeatOpening(inner(grammar) if inner else grammar, words, steps_per_quarter=4)
    for word in FORM.ids(OPENING):
        repeat.advance(word)
    return grammar, repeat


def write_forced_words(repeat: RepeatOpening) -> list[str]:
    """Advance the one word the mask leaves, while it leaves one."""
    written = []
    while (mask := repeat.legal_mask()).sum() == 1:
        word = int(np.flatnonzero(mask)[0])
        written.append(FORM.words[word])
        repeat.advance(word)
    return written


def test_the_opening_comes_again_from_the_next_bar_line_note_for_note():
    grammar, repeat = started()
    repeat.advance(FORM.sep_id)  # the model moves on after the second phrase's chord
    written = write_forced_words(repeat)
    assert written[:2] == ["d16", "d4"]  # from step 12 to the bar line at 32, where every note has ended
    assert " ".join(written[2:]) == OPENING and repeat.phase == "done"
    notes = [*grammar.notes, grammar.pending_note()]  # the last note's run is still open
    opening = {(n.pitch, n.start, n.duration) for n in notes if n.start < 32}
    again = {(n.pitch, n.start - 32, n.duration) for n in notes if n.start >= 32}
    assert again == opening and grammar.phrase_ends == [4, 12, 36, 44]
    assert (repeat.legal_mask() == grammar.legal_mask()).all()  # then the model writes on


def test_a_piece_that_begins_after_a_rest_repeats_from_the_same_place_in_its_bar():
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:D sepxx d4"):  # the first note a quarter into the bar
        grammar.advance(word)
    repeat = RepeatOpening(grammar, 400, steps_per_quarter=4)
    for word in FORM.ids(OPENING):  # the second phrase's chord at step 16, held to step 28
        repeat.advance(word)
    repeat.advance(FORM.sep_id)
    written = write_forced_words(repeat)
    assert written[:2] == ["d16", "d4"] and " ".join(written[2:]) == OPENING  # from step 16 to 36, not 32
    assert grammar.phrase_ends == [8, 16, 40, 48]


def test_the_repeat_crosses_the_fermata_against_the_voice_leading_and_obeys_the_other_rules():
    tune = OPENING.replace("n50 d12", "n45 d12").replace("n74 d12 n69 d12 n66 d12", "n69 d12 n64 d12 n61 d12")
    for rules, kept in ((Rules(max_voices=4, no_parallels=True), 30), (Rules(max_voices=4, no_repeat=12), 11)):
        grammar = word_grammar(FORM)
        for word in FORM.ids("START key:D"):
            grammar.advance(word)
        ruled = RuleConstraint(grammar, rules, 4)
        repeat = RepeatOpening(ruled, 400, steps_per_quarter=4)
        for word in FORM.ids(tune):  # the second phrase closes on A major, the bass on A2
            repeat.advance(word)
        repeat.advance(FORM.sep_id)
        written = write_forced_words(repeat)
        assert written[:2] == ["d16", "d4"] and repeat.repeated == kept, rules
        # A4/A2 -> D5/D3: parallel octaves across the fermata, allowed as at a piece's last chord;
        # an exact repeat of 12 words, forbidden, ends the repeat after 11: the rest is the model's
        mask = repeat.legal_mask()
        assert (mask == ruled.legal_mask()).all() and mask.sum() > 1
        repeat.advance(int(np.flatnonzero(mask)[0]))
        assert repeat.phase == "done"


def test_the_chord_that_closes_the_opening_holds_to_the_bar_line_where_the_repeat_begins():
    grammar = word_grammar(FORM)
    for word in FORM.ids("START key:D"):
        grammar.advance(word)
    repeat = RepeatOpening(grammar, 400, steps_per_quarter=4)
    for word in FORM.ids(OPENING.split(" n74 d12")[0] + " n74"):  # the second phrase's chord, at step 12
        repeat.advance(word)
    assert write_forced_words(repeat) == ["d4"]  # to step 16, the bar line, and no further
    for word in FORM.ids("n69 d4 n66 d4 n50 d4 sepxx"):
        repeat.advance(word)
    assert write_forced_words(repeat)[:2] == ["d4", "n74"]  # no rest: the repeat begins at step 16


def test_no_repeat_where_the_opening_does_not_fit_twice_before_the_ending():
    grammar, repeat = started(words=80)
    repeat.advance(FORM.sep_id)
    assert repeat.phase == "done" and (repeat.legal_mask() == grammar.legal_mask()).all()


def test_new_pieces_in_bar_form_from_the_shipped_model_repeat_their_opening_and_end():
    from models.word_model import WordModel

    model = WordModel(SHIPPED)
    repeated = 0
    for seed in range(3):  # a repeat that does not fit before the ending is left out: most fit
        ids = list(model.stream_words(768, SamplingSettings(0.8, seed=seed), None, rules=Rules(), bar_form=True))
        repeated += opening_repeated(model.continuation(ids, None).generated)
        assert ids[-1] == model.vocab.end_id, seed
    assert repeated >= 2
    plain = list(model.stream_words(768, SamplingSettings(0.8, seed=0), None, rules=Rules(), bar_form=False))
    assert not opening_repeated(model.continuation(plain, None).generated)
