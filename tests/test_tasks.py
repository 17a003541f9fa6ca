"""Filling a gap and harmonizing a melody: the task sequences, their grammar, and sampling them."""

from __future__ import annotations

import numpy as np
import pytest

from bench.metrics import piece_features
from models.fill import GapWriter
from models.sampling import SamplingSettings
from models.word_model import WordModel
from tokenizer import CantorError, Note, NoteSequence
from tokenizer.constraints import Rules
from tokenizer.tasks import FillGrammar, Gap, context_ids, gap_ids, top_line, training_example
from tokenizer.words import FILL, HOLE, MELODY, WordVocabulary, duration_run

TASK_VOCAB = WordVocabulary(max_duration=16, encoding="steps", tasks=True)  # the last checkpoints'
VOCAB = WordVocabulary(max_duration=16, encoding="steps", tasks=True, form=True)


@pytest.fixture(scope="module", params=["form", "no form"])
def tiny_task_model(request, tiny_task_checkpoint, tiny_no_form_task_checkpoint) -> WordModel:
    """The task model with the form words, and one trained before them: both must keep working."""
    return WordModel(tiny_task_checkpoint if request.param == "form" else tiny_no_form_task_checkpoint)


def chorale(chorales, index: int = 0) -> NoteSequence:
    return chorales.piece(chorales.names("test")[index])


def test_marker_words_come_after_the_durations_and_old_vocabularies_have_none():
    assert TASK_VOCAB.words[-3:] == (HOLE, MELODY, FILL)
    assert TASK_VOCAB.marker_id(FILL) == TASK_VOCAB.size - 1
    assert not TASK_VOCAB.is_duration(TASK_VOCAB.marker_id(HOLE))
    plain = WordVocabulary(max_duration=16, encoding="steps")
    assert plain.size == TASK_VOCAB.size - 3
    assert WordVocabulary.from_json({k: v for k, v in plain.to_json().items() if k != "tasks"}) == plain
    assert WordVocabulary.from_json(TASK_VOCAB.to_json()) == TASK_VOCAB
    assert WordVocabulary.from_json(VOCAB.to_json()) == VOCAB
    assert VOCAB.words[: TASK_VOCAB.size] == TASK_VOCAB.words  # the form words come after the markers
    with pytest.raises(CantorError, match="no marker words"):
        plain.marker_id(FILL)


def test_the_top_line_of_a_four_part_progression_is_its_soprano():
    chords = [(72, 67, 64, 48), (74, 67, 62, 55), (76, 67, 60, 48)]
    notes = [Note(p, 4 * i, 4) for i, chord in enumerate(chords) for p in chord]
    notes.append(Note(65, 2, 2))  # an alto passing note under the held soprano: not the melody
    melody, left_out = top_line(NoteSequence(notes))
    assert [(n.pitch, n.start, n.duration) for n in melody] == [(72, 0, 4), (74, 4, 4), (76, 8, 4)]
    assert left_out
    alone, left_out = top_line(NoteSequence(melody))
    assert alone == melody and not left_out


def test_a_gap_s_words_rebuild_the_piece_exactly_through_the_fill_grammar(chorales):
    for vocab in (TASK_VOCAB, VOCAB):
        for index in range(6):
            piece = chorale(chorales, index).normalized()
            notes, phrases = piece.notes, piece.phrase_ends
            end = max(n.end for n in notes)
            for gap in (Gap(0, 32), Gap(16, 48), Gap(40, 104), Gap(end - 20, end)):
                grammar = FillGrammar(vocab, gap)
                for word_id in context_ids(notes, gap, vocab, piece.key, phrases):
                    grammar.advance(word_id)
                grammar.seal()
                for word_id in gap_ids(notes, gap, vocab, phrases):
                    assert grammar.legal_mask()[word_id], vocab.words[word_id]
                    grammar.advance(word_id)
                assert grammar.ended
                assert sorted(grammar.notes) == sorted(n for n in notes if n.start < gap.end)
                marked = [step for step in phrases if step < gap.end] if vocab.form else []
                assert grammar.phrase_ends == marked and grammar.key == (piece.key if vocab.form else None)


def test_a_gap_may_end_a_phrase_only_inside_it_and_never_names_a_key(chorales):
    piece = chorale(chorales, 1).normalized()
    gap = Gap(16, 48)

    def after_a_gap_to(step: int) -> FillGrammar:
        grammar = FillGrammar(VOCAB, gap)
        for word_id in context_ids(piece.notes, gap, VOCAB, piece.key, piece.phrase_ends):
            grammar.advance(word_id)
        grammar.seal()
        for word_id in [VOCAB.sep_id, *duration_run(VOCAB, step - grammar.step)]:
            grammar.advance(word_id)
        return grammar

    inside = after_a_gap_to(20).legal_mask()
    assert inside[VOCAB.phrase_id] and not inside[VOCAB.key_id("C major")]
    at_the_end = after_a_gap_to(48).legal_mask()
    assert not at_the_end[VOCAB.phrase_id] and at_the_end[VOCAB.end_id]


def test_training_sequences_fit_the_block_and_hold_their_markers(chorales):
    rng = np.random.default_rng(0)
    piece = chorale(chorales, 1).normalized()
    assert piece.phrase_ends and piece.key
    for harmonize in (False, True):
        for _ in range(20):
            ids = training_example(piece, VOCAB, rng, 257, harmonize)
            assert len(ids) <= 257
            assert VOCAB.marker_id(FILL) in ids
            assert (VOCAB.marker_id(MELODY) in ids) == harmonize


@pytest.mark.parametrize("rules", [None, Rules()])
def test_regenerating_keeps_every_note_outside_the_selection(tiny_task_model, chorales, rules):
    piece = chorale(chorales, 1).normalized()
    gap = Gap(32, 64)
    writer = GapWriter(tiny_task_model, SamplingSettings(seed=3), rules)
    words = list(writer.regenerate(piece, gap))
    assert words[-1] == VOCAB.end_id
    result = writer.piece()
    outside = [n for n in piece.notes if not gap.start <= n.start < gap.end]
    assert sorted(n for n in result.notes if not gap.start <= n.start < gap.end) == sorted(outside)
    new = writer.new_notes()
    assert new and all(gap.start <= n.start < gap.end for n in new)
    if rules:
        assert piece_features(NoteSequence(new)).max_sounding <= 4


@pytest.mark.parametrize("seed", [0, 1])
def test_harmonizing_keeps_the_melody_exactly_and_on_top(tiny_task_model, chorales, seed):
    piece = chorale(chorales, 2)
    melody, _ = top_line(piece)
    writer = GapWriter(tiny_task_model, SamplingSettings(seed=seed), Rules())
    list(writer.harmonize(piece))
    result = writer.piece()
    assert set(melody) <= set(result.notes)
    lower = writer.new_notes()
    assert len(lower) > len(melody)
    for note in lower:
        overlapping = [m for m in melody if m.start < note.end and note.start < m.end]
        assert all(note.pitch < m.pitch for m in overlapping), note  # never at or above the melody


def test_bad_tasks_get_one_clear_message(tiny_task_model, tiny_word_checkpoint, chorales):
    piece = chorale(chorales)
    writer = GapWriter(tiny_task_model, SamplingSettings())
    with pytest.raises(CantorError, match="after the piece's end"):
        list(writer.regenerate(piece, Gap(10_000, 10_040)))
    with pytest.raises(CantorError, match="at most 16"):
        list(writer.regenerate(piece, Gap(0, 200)))
    with pytest.raises(CantorError, match="run forward"):
        Gap(8, 8)
    with pytest.raises(CantorError, match="no notes"):
        list(writer.harmonize(NoteSequence([])))
    with pytest.raises(CantorError, match="outside 48-96"):
        list(writer.harmonize(NoteSequence([Note(100, 0, 4), Note(60, 4, 4)])))
    with pytest.raises(CantorError, match="not trained to fill"):
        GapWriter(WordModel(tiny_word_checkpoint), SamplingSettings())


def test_bench_tasks_prints_its_three_tables_and_refuses_a_model_without_marker_words(
    tiny_task_checkpoint, tiny_word_checkpoint, capsys
):
    from bench import tasks

    assert tasks.main(["--word", str(tiny_task_checkpoint), "--n", "1"]) == 0
    out = capsys.readouterr().out
    assert "| both sides (tiny_tasks) |" in out
    assert "| left side only, as far back as with both sides (tiny_tasks) |" in out
    assert "| melody kept exactly | 1.000 | 1.000 | 1.000 |" in out
    assert tasks.main(["--word", str(tiny_word_checkpoint), "--n", "1"]) == 1
    assert "not trained to fill" in capsys.readouterr().err


def test_the_fill_command_harmonizes_a_file_and_regenerates_bars(tiny_task_checkpoint, chorales, tmp_path, capsys):
    import pretty_midi

    from models import fill
    from tokenizer.readers import read_piece
    from tokenizer.writers import write_midi

    piece = chorale(chorales, 3)
    song = write_midi(piece, tmp_path / "song.mid")
    out = tmp_path / "harmonized.mid"
    assert fill.main(["--checkpoint", str(tiny_task_checkpoint), "--out", str(out), "harmonize", str(song)]) == 0
    said = capsys.readouterr().out
    assert "more than one voice; harmonizing its top line" in said and "melody notes" in said
    tracks = pretty_midi.PrettyMIDI(str(out)).instruments
    assert [t.name for t in tracks] == ["melody", "new"]
    assert len(tracks[0].notes) == len(top_line(read_piece(song))[0]) and tracks[1].notes
    out = tmp_path / "new.mid"
    args = ["--checkpoint", str(tiny_task_checkpoint), "--out", str(out), "regenerate", str(song), "--bars", "3-4"]
    assert fill.main(args) == 0
    kept, new = pretty_midi.PrettyMIDI(str(out)).instruments
    seconds_per_step = 60 / piece.qpm / piece.steps_per_quarter
    assert all(32 <= round(n.start / seconds_per_step) < 64 for n in new.notes)
    assert all(not 32 <= round(n.start / seconds_per_step) < 64 for n in kept.notes)
    for bars, said in (("x", "A-B"), ("4-3", "run forward"), ("2-9", "at most 16"), ("40-60", "after the piece")):
        args[-1] = bars
        assert fill.main(args) == 1
        assert said in capsys.readouterr().err


def test_regenerating_a_harmonization_keeps_its_melody_in_the_selection(tiny_task_model, chorales):
    piece = chorale(chorales, 1).normalized()
    gap = Gap(16, 48)
    melody = [n for n in top_line(piece)[0] if gap.start <= n.start < gap.end]
    writer = GapWriter(tiny_task_model, SamplingSettings(seed=5), Rules())
    words = list(writer.regenerate(piece, gap, keep_melody=True))
    assert words[-1] == VOCAB.end_id
    result = writer.piece()
    assert melody and set(melody) <= set(result.notes)  # the tune, exactly
    new = writer.new_notes()
    assert new and not set(melody) & set(new)
    for note in new:  # the new voices stay under the tune
        over = [m for m in melody if m.start <= note.start < m.end]
        assert all(note.pitch < m.pitch for m in over)


def test_a_melody_with_fermatas_says_where_the_harmony_s_phrases_end(chorales):
    piece = chorale(chorales, 1).normalized()
    gap = Gap(0, piece.phrase_ends[0] + 8)
    melody, _ = top_line(piece)
    grammar = FillGrammar(VOCAB, gap, melody, piece.phrase_ends)
    grammar.advance(VOCAB.start_id)
    grammar.seal()
    for word in gap_ids(piece.notes, gap, VOCAB, piece.phrase_ends):
        mask = grammar.legal_mask()
        if grammar.in_gap and mask[VOCAB.phrase_id]:
            assert grammar.onset_of(0) in piece.phrase_ends
        grammar.advance(word)
    assert grammar.phrase_ends == [step for step in piece.phrase_ends if step < gap.end]


def test_with_the_rules_and_no_key_chosen_a_harmonization_keeps_the_melody_s_key_and_closes_on_it(
    tiny_task_model, chorales
):
    from tokenizer.keys import scale_of, tonic_of

    piece = chorale(chorales, 2)
    melody = NoteSequence(top_line(piece)[0], piece.steps_per_quarter)
    in_key = {}
    for rules in (None, Rules()):  # the model alone; the four-part rules, which bring the key's lean
        writer = GapWriter(tiny_task_model, SamplingSettings(seed=3), rules)
        list(writer.harmonize(melody))
        in_key[rules is not None] = np.mean([scale_of(writer.key)[n.pitch % 12] for n in writer.new_notes()])
        last = melody.notes[-1].start
        bass = min(n.pitch for n in writer.piece().notes if n.start <= last < n.end)
        assert bass % 12 == tonic_of(writer.key)  # either way it closes on the tonic, in the bass
    assert in_key[True] > in_key[False] and in_key[True] >= 0.85  # the tiny model wanders; the lean holds the key


def test_a_harmonization_leans_to_four_voices_before_moving_on():
    from tokenizer.tasks import FullTexture
    from tokenizer.words import word_grammar

    vocab = WordVocabulary(max_duration=16, encoding="steps")
    grammar = word_grammar(vocab)
    texture = FullTexture(grammar, weight=1.5)
    for word in vocab.ids("START n72 d4 n64 d4"):
        texture.advance(word)
    assert texture.logit_bias()[vocab.sep_id] == -1.5  # two voices sound: the next step may wait
    for word in vocab.ids("n55 d4 n48 d4"):
        texture.advance(word)
    assert texture.logit_bias() is None  # four: move on freely
    for word in vocab.ids("sepxx d4 n72 d4"):
        texture.advance(word)
    assert texture.logit_bias()[vocab.sep_id] == -1.5  # one new voice; the others ended
