"""bench.quality as a command: its table, and one clear line for bad input."""

from __future__ import annotations

import pytest

from bench.quality import main
from tokenizer import Note, NoteSequence
from tokenizer.dataset import split_of
from tokenizer.writers import write_midi


def test_a_small_run_prints_one_row_per_figure_and_a_column_per_set(capsys):
    assert main(["--n", "3", "--sets", "bach_test,train,trigram"]) == 0
    out = capsys.readouterr().out
    assert "| | Bach (test) | train (ceiling) | trigram (floor) |" in out
    row = next(line for line in out.splitlines() if line.startswith("| time with exactly 4 notes sounding"))
    bach, train, trigram = (float(cell) for cell in row.strip("|").split("|")[1:])
    assert trigram < min(bach, train)  # the floor is below the chorales
    assert "| overlap: all | – |" in out  # the reference is not compared with itself
    told = next(line for line in out.splitlines() if line.startswith("| classifier tells it from Bach"))
    accuracy, error = (float(x) for x in told.strip("|").split("|")[3].split("±"))
    assert 0 <= accuracy <= 1 and 0 <= error <= 0.21  # the trigram's, with its binomial error over 6 pieces
    assert "wall time" in out


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--n", "0"], "argument --n: 0 is outside 1-1000"),
        (["--n", "-3"], "argument --n: -3 is outside 1-1000"),
        (["--sets", "word_new,poems"], "unknown set poems"),
    ],
)
def test_bad_arguments_get_one_line(capsys, args, said):
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2
    assert said in capsys.readouterr().err


def test_a_dataset_with_an_empty_test_split_is_said_by_name(tmp_path, capsys):
    from tokenizer.prepare import main as prepare

    folder = tmp_path / "mine"
    folder.mkdir()
    name = next(f"piece{i}.mid" for i in range(100) if split_of(f"piece{i}.mid") == "train")
    write_midi(NoteSequence([Note(60, 0, 4), Note(64, 4, 4)]), folder / name)
    assert prepare(["--source", str(folder), "--name", "mine", "--data-root", str(tmp_path), "--workers", "1"]) == 0
    assert main(["--data", str(tmp_path / "mine"), "--sets", "bach_test"]) == 1
    assert "mine: the test split is empty" in capsys.readouterr().err
