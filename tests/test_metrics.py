"""The music judge's figures, on hand-made pieces whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from bench.metrics import count_parallels, overlap, piece_features, summary
from tokenizer import Note, NoteSequence


def chords(*pitch_rows: tuple[int, ...], length: int = 4) -> NoteSequence:
    """One chord per row, each ``length`` steps long, one after another."""
    notes = [Note(p, i * length, length) for i, row in enumerate(pitch_rows) for p in row]
    return NoteSequence(notes)


def test_a_progression_with_one_parallel_fifth_counts_exactly_one():
    # I - V in C with only the alto and tenor in parallel fifths (E3-B3 to F3-C4)
    before, after = (36, 52, 59, 67), (43, 53, 60, 67)
    assert count_parallels([before, after]) == (1, 1)
    assert piece_features(chords(before, after)).parallels == 1.0


def test_a_progression_with_a_fifth_and_an_octave_in_parallel_counts_both():
    # C major (C3 G3 E4 C5) -> D minor (D3 A3 F4 D5): bass and tenor C-G to D-A (a fifth),
    # bass and soprano C-C to D-D (an octave); then a clean move to G7 (G2 F3 D4 B4).
    piece = chords((48, 55, 64, 72), (50, 57, 65, 74), (43, 53, 62, 71))
    assert piece_features(piece).parallels == pytest.approx(2 / 2)


def test_contrary_motion_and_held_voices_are_not_parallels():
    held = count_parallels([(48, 55, 64, 72), (48, 55, 65, 74)])  # the fifth C3-G3 held
    contrary = count_parallels([(48, 52, 60, 67), (41, 53, 57, 72)])  # C3-G4 to F2-C5, the voices apart
    assert held == (0, 1)
    assert contrary == (0, 1)


def test_a_cluster_counts_its_clash_and_its_voices():
    piece = NoteSequence([Note(60, 0, 4), Note(61, 0, 4), Note(62, 0, 4), Note(67, 4, 4), Note(72, 4, 4)])
    features = piece_features(piece)
    assert features.clash == pytest.approx(0.5)  # the cluster's onset; not the fifth's
    assert features.max_sounding == 3
    assert features.four_sounding == 0.0


def test_minor_ninths_count_only_as_ninth_clashes():
    features = piece_features(NoteSequence([Note(48, 0, 4), Note(61, 0, 4)]))
    assert features.clash == 0.0 and features.ninth_clash == 1.0


def test_exactly_four_and_more_than_five_sounding():
    four = chords((48, 55, 64, 72), length=8)
    three = NoteSequence([Note(p, 8, 8) for p in (48, 55, 64)])
    six = NoteSequence([Note(p, 16, 4) for p in (36, 48, 55, 60, 64, 72)])
    features = piece_features(four.merged(three).merged(six))
    assert features.four_sounding == pytest.approx(8 / 20)
    assert features.over_five == pytest.approx(1 / 3)
    assert features.max_sounding == 6


def test_top_and_bass_lines_take_the_notes_that_start():
    # the top voice moves C5 D5 G5 while the bass holds C3 then leaps to G2
    notes = [Note(72, 0, 4), Note(74, 4, 4), Note(79, 8, 4), Note(48, 0, 8), Note(43, 8, 4)]
    features = piece_features(NoteSequence(notes))
    assert features.top_step == pytest.approx((2 + 5) / 2)
    assert features.top_leaps == 0.0
    assert features.bass_step == pytest.approx(5.0)  # one step: the held C3 is not struck again


def test_scale_consistency_and_key_drift():
    c_major = [Note(p, i * 4, 4) for i, p in enumerate((60, 62, 64, 65, 67, 69, 71, 72))]
    f_sharp = [Note(p, 32 + i * 4, 4) for i, p in enumerate((66, 68, 70, 73))]
    in_key = piece_features(NoteSequence(c_major))
    drifted = piece_features(NoteSequence(c_major + f_sharp))
    assert in_key.scale_consistency == 1.0 and in_key.key_drift == 1.0
    assert drifted.key_drift < 0.5


def test_a_repeated_bar_is_counted_and_lengths_are_in_quarters():
    bar = [Note(60, 0, 4), Note(64, 4, 4), Note(67, 8, 4), Note(72, 12, 4)]
    piece = NoteSequence(bar + [n._replace(start=n.start + 16) for n in bar])
    features = piece_features(piece)
    assert features.repeated_bars == pytest.approx(1 / 2)
    assert features.quarters == 8.0
    assert features.words == 1 + 8 * 2 + 6 * 2 + 1  # START, the notes, a gap before each rising note, END


def test_pieces_on_other_grids_are_judged_on_sixteenths():
    eighth_grid = NoteSequence([Note(60, 0, 2), Note(62, 2, 2)], steps_per_quarter=2)
    assert piece_features(eighth_grid).quarters == 2.0


def test_overlap_is_high_for_a_set_against_itself_and_low_for_a_different_one():
    rng = np.random.default_rng(0)
    reference = [
        piece_features(chords(*[tuple(72 - rng.integers(0, 3) - 5 * k for k in range(4))] * 4)) for _ in range(12)
    ]
    clusters = [  # seven adjacent keys, moving by leaps
        piece_features(NoteSequence([Note(48 + 9 * (i % 3) + k, 4 * i, 4) for i in range(6) for k in range(7)]))
        for _ in range(12)
    ]
    same = overlap(reference, reference)
    different = overlap(reference, clusters)
    assert same["all"] > 0.9
    assert different["texture/voice leading"] < 0.5 < same["texture/voice leading"]


def test_summary_reports_medians_and_the_share_of_short_pieces():
    short = piece_features(chords((60, 64, 67, 72)))
    long = piece_features(chords(*[(48, 55, 64, 72)] * 60))
    figures = summary([short, long, long])
    assert figures["short_share"] == pytest.approx(1 / 3)
    assert figures["median_quarters"] == 60.0


def test_a_piece_with_no_notes_is_refused():
    with pytest.raises(ValueError, match="no notes"):
        piece_features(NoteSequence([]))


def test_notes_above_c6_and_the_mean_pitch():
    piece = NoteSequence([Note(48, 0, 4), Note(60, 0, 4), Note(84, 0, 4), Note(86, 0, 4)])  # C6 itself is in range
    features = piece_features(piece)
    assert features.above_c6 == 0.25 and features.mean_pitch == pytest.approx(69.5)
