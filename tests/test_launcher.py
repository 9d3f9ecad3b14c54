"""``mtl-lab run --nproc N``: every value checked once in the parent before any rank starts, ranks limited
by the batch, the dropout caveat said once, and the world size in the report and the History.

The parent's checks go through the CLI's in-process entry with the launch replaced by a recorder (no rank
may start on a bad value); one subprocess runs a real launch of two ranks, one a bad value through the real
launcher entry (no per-rank message, no launcher traceback).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_lab import cli
from mtl_lab.history import History
from mtl_lab.training import parallel

ROOT = Path(__file__).resolve().parent.parent
# linnerud: 12 training rows
RUN = ["run", "--data", "linnerud", "--methods", "equal", "--epochs", "1", "--batch-size", "6", "--device", "cpu",
       "--no-baselines", "--quiet"]


@pytest.fixture
def launches(monkeypatch) -> list:
    """Replace the launch of torchrun with a recorder: a rank never starts in these tests."""
    calls: list = []
    monkeypatch.setattr(parallel, "launch", lambda nproc, argv: calls.append((nproc, list(argv))) or 0)
    return calls


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    code = cli.main(argv)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("extra, fragments", [
    (["--methods", "cagard"], ["cagard", "unknown method"]),
    (["--methods", "cagrad", "--option", "cagrad.cc=0.4"], ["cc"]),
    (["--methods", "cagrad", "--option", "cagrad.c=-1"], ["cagrad option c", "-1"]),
    (["--arch", "hardd"], ["hardd"]),
    (["--model-option", "dropout=2"], ["dropout", "2"]),
    (["--lr", "-1"], ["lr", "-1"]),
    (["--device", "cuda:7"], ["cuda:7"]),
    (["--nproc", "0"], ["--nproc", "0"]),
    (["--nproc", "-2"], ["--nproc", "-2"]),
    (["--tasks", "weight,nope"], ["nope"]),
])
def test_a_bad_value_is_one_line_exit_2_and_no_rank_starts(tmp_path, capsys, launches, extra, fragments):
    argv = [*RUN, "--nproc", "2", "--out", str(tmp_path / "r"), *extra]
    code, err = run_cli(argv, capsys)
    assert code == 2 and launches == []
    assert "\n" not in err and err.startswith("mtl-lab: error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err
    assert not (tmp_path / "r").exists()


def test_out_naming_a_file_is_refused_before_launch(tmp_path, capsys, launches):
    existing = tmp_path / "file"
    existing.write_text("x")
    code, err = run_cli([*RUN, "--nproc", "2", "--out", str(existing)], capsys)
    assert code == 2 and launches == [] and str(existing) in err and "\n" not in err


def test_good_values_launch_once_without_nproc_in_the_forwarded_command(tmp_path, capsys, launches):
    code, err = run_cli([*RUN, "--nproc", "2", "--out", str(tmp_path / "r")], capsys)
    assert code == 0 and err == "" and len(launches) == 1 and launches[0][0] == 2


@pytest.mark.parametrize("nproc, batch_size, named", [(16, "6", ("16", "6")), (7, "6", ("7", "6")),
                                                       (13, "64", ("13", "12"))])
def test_more_ranks_than_rows_of_a_batch_are_refused_naming_both(tmp_path, capsys, launches, nproc, batch_size,
                                                                  named):
    argv = [*RUN, "--batch-size", batch_size, "--nproc", str(nproc), "--out", str(tmp_path / "r")]
    code, err = run_cli(argv, capsys)
    assert code == 2 and launches == [] and "\n" not in err
    assert f"--nproc {named[0]} ranks" in err and f"a batch of {named[1]} rows" in err


def test_the_last_batch_of_an_epoch_limits_the_ranks(tmp_path, capsys, launches):
    # 12 rows in batches of 5: 5, 5, 2 — three ranks would leave one without a row in the last batch
    code, err = run_cli([*RUN, "--batch-size", "5", "--nproc", "3", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and launches == [] and "a batch of 2 rows" in err and "last batch" in err
    code, _ = run_cli([*RUN, "--batch-size", "5", "--nproc", "2", "--out", str(tmp_path / "r")], capsys)
    assert code == 0 and len(launches) == 1


@pytest.mark.parametrize("nproc, rows, batch_size, ok", [
    (2, 12, 6, True), (6, 12, 6, True), (7, 12, 6, False), (4, 10, 4, False), (2, 10, 4, True),
    (3, 3, 64, True), (4, 3, 64, False), (1, 1, 1, True),
])
def test_check_ranks_allows_exactly_the_rows_of_the_smallest_batch(nproc, rows, batch_size, ok):
    if ok:
        parallel.check_ranks(nproc, rows, batch_size)
    else:
        with pytest.raises(ValueError, match=f"--nproc {nproc} ranks cannot share a batch of"):
            parallel.check_ranks(nproc, rows, batch_size)


def test_dropout_under_nproc_is_one_note_in_the_parent(tmp_path, capsys, launches):
    code, err = run_cli([*RUN, "--model-option", "dropout=0.2", "--nproc", "2", "--out", str(tmp_path / "r")],
                        capsys)
    notes = [line for line in err.splitlines() if line.startswith("mtl-lab: note:")]
    assert code == 0 and len(launches) == 1 and len(notes) == 1 == len(err.splitlines())
    assert "dropout 0.2" in notes[0] and "2 data-parallel ranks" in notes[0] and "not exactly" in notes[0]


@pytest.mark.parametrize("dropout, world, says", [(0.2, 2, True), (0.0, 2, False), (0.5, 1, False),
                                                  (None, 4, False)])
def test_the_dropout_note_applies_only_to_dropout_on_several_ranks(dropout, world, says):
    assert (parallel.dropout_note(dropout, world) is not None) is says


def test_a_hand_edited_world_size_of_the_wrong_type_is_refused_naming_the_field():
    record = {"task_names": ["a"], "meta": {"world_size": "2"}}
    with pytest.raises(ValueError, match="meta.world_size"):
        History.from_dict(record)


def launcher(argv: list[str], timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "mtl_lab.cli", *argv], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_the_real_launcher_entry_refuses_a_misspelt_method_in_one_line(tmp_path):
    done = launcher([*RUN, "--methods", "cagard", "--nproc", "2", "--out", str(tmp_path / "r")])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "cagard" in done.stderr and "Traceback" not in done.stderr
    assert "torch.distributed" not in done.stderr and not (tmp_path / "r").exists()


def test_two_real_ranks_record_the_world_size_and_the_note(tmp_path):
    out = tmp_path / "r"
    done = launcher([*RUN, "--model-option", "dropout=0.1", "--nproc", "2", "--out", str(out)])
    assert done.returncode == 0, done.stderr[-2000:]
    assert sum(line.startswith("mtl-lab: note:") for line in done.stderr.splitlines()) == 1
    report = (out / "report.md").read_text()
    assert "(launched with --nproc 2)" in report and "world size 2" in report and "dropout 0.1" in report
    meta = json.loads((out / "history.json").read_text())["runs"]["equal"]["meta"]
    assert meta["world_size"] == 2 and "dropout 0.1" in meta["data_parallel_note"]
    assert json.loads((out / "metrics.json").read_text())["world_size"] == 2
