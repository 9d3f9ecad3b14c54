"""The command line goes through the API's checks: every error path is one line on stderr and exit
status 2, naming the bad value, before any folder is made (a diverging loss: after the report is written)."""

from __future__ import annotations

import pytest
import torch

from mtl_lab.cli import main

CUDA_DEVICES = torch.cuda.device_count() if torch.cuda.is_available() else 0
MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


CLI_CASES = [
    (["--device", "cpu:abc"], ["'cpu:abc'"]),
    (["--device", "mps"], ["'mps'"]) if not MPS else None,
    (["--device", "cuda:1"], ["'cuda:1'"]) if CUDA_DEVICES < 2 else None,
    (["--arch", "mmoe", "--model-option", "num_experts=abc"], ["'abc'", "num_experts"]),
    (["--model-option", "dropout=abc"], ["'abc'", "dropout"]),
    (["--methods", "static", "--option", "static.weights=3"], ["got 3 (int)"]),
    (["--methods", "static", "--option", 'static.weights="125"'], ["'125'"]),
    (["--methods", "static", "--option", "static.normalize=yes"], ["'yes'"]),
    (["--methods", "static", "--weights", "3"], ["1 entries", "3 tasks"]),
    (["--methods", "static", "--weights", "wieght=2"], ["'wieght'", "'weight'"]),
    (["--seed", str(2**64)], [str(2**64)]),
    (["--seed", "-1"], ["-1"]),
    (["--epochs", "abc"], ["'abc'"]),
    (["--lr", "nan"], ["nan"]),
    (["--batch-size", "0"], ["got 0"]),
    (["--schedule", "linear"], ["'linear'"]),
    (["--hidden", "32,x"], ["'32,x'"]),
    (["--tasks", "y.1"], ["'y.1'"]),
    (["--augment"], ["['augment']"]),
]
CLI_CASES = [c for c in CLI_CASES if c is not None]


def run_cli(argv: list[str]) -> int:
    """``main(argv)``'s exit status, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("args,fragments", CLI_CASES, ids=[" ".join(c[0]) for c in CLI_CASES])
def test_cli_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, fragments):
    out = tmp_path / "report"
    code = run_cli(["run", "--data", "linnerud", "--epochs", "1", "--out", str(out), "--quiet", *args])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("mtl-lab: error:") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err
    assert not out.exists()  # checked before anything was made


def test_cli_out_pointing_at_a_file(tmp_path, capsys):
    existing = tmp_path / "taken.txt"
    existing.write_text("keep me")
    assert main(["run", "--data", "linnerud", "--epochs", "1", "--out", str(existing), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(existing) in err and existing.read_text() == "keep me"


def test_cli_diverging_loss_is_one_line_exit_2_and_the_report_keeps_the_run(tmp_path, capsys):
    out = tmp_path / "diverge"
    code = main(["run", "--data", "linnerud", "--epochs", "5", "--optimizer", "sgd", "--lr", "1e12",
                 "--no-baselines", "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "became inf at step" in err and str(out) in err
    report = (out / "report.md").read_text()
    assert "status error" in report and "NonFiniteLossError" in report
