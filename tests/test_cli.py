import json
import subprocess
import sys
from pathlib import Path

import pytest

from mtl_lab.cli import main
from mtl_lab.history import load_runs


def test_run_writes_the_report_folder(tmp_path, capsys):
    out = tmp_path / "report"
    code = main(["run", "--data", "linnerud", "--methods", "equal,static", "--weights", "1,2,1", "--epochs", "3",
                 "--batch-size", "4", "--hidden", "16", "--out", str(out), "--quiet"])
    assert code == 0
    for name in ("report.md", "metrics.json", "history.json", "curves.png", "curves_static.png", "comparison.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["runs"]) == {"equal", "static"}
    assert set(metrics["baseline"]) == {"weight", "waist", "pulse"}
    assert isinstance(metrics["runs"]["static"]["delta_m"], float)
    report = (out / "report.md").read_text()
    assert "| single-task |" in report and "| static |" in report and "Δm %" in report
    assert "![equal](curves_equal.png)" in report
    runs = load_runs(out / "history.json")
    assert runs["static"].weights[0] == [1.0, 2.0, 1.0] and runs["equal"].status == "completed"
    assert str(out / "report.md") in capsys.readouterr().out


@pytest.mark.parametrize(
    "args,message",
    [
        (["--methods", "equal,mystery"], "unknown method(s) ['mystery']"),
        (["--methods", "static", "--weights", "1,2"], "weights has 2 entries, the data has 3 tasks"),
        (["--methods", "static", "--weights", "1,x,1"], "--weights must be numbers"),
        (["--weights", "1,1,1"], "'static' is not among --methods"),
        (["--lr", "0"], "lr must be a finite number > 0"),
        (["--data", "imagenet"], "unknown dataset 'imagenet'"),
        (["--tasks", "weight,height"], "unknown task(s) ['height']"),
        (["--optimizer", "lion"], "optimizer 'lion' is not one of"),
        (["--device", "cuda:7"], "cuda"),
        (["--option", "cagrad.c=1"], "not in --methods"),
        (["--model-option", "bogus=1"], "architecture 'hard' has no option(s) ['bogus']"),
        (["--arch", "mtan_lite"], "image inputs"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(tmp_path, capsys, args, message):
    base = ["run", "--data", "linnerud", "--epochs", "1", "--out", str(tmp_path / "x"), "--quiet"]
    if "--data" in args:
        base = base[:1] + base[3:]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.startswith("mtl-lab: error:")


def test_run_with_another_architecture_and_its_options(tmp_path):
    out = tmp_path / "moe"
    code = main(["run", "--data", "linnerud", "--arch", "mmoe", "--model-option", "num_experts=3", "--epochs", "2",
                 "--batch-size", "4", "--no-baselines", "--out", str(out), "--quiet"])
    assert code == 0
    runs = load_runs(out / "history.json")
    assert runs["equal"].meta["model"]["architecture"] == "mmoe"
    assert "no Δm %" in (out / "report.md").read_text()


def test_console_script_lists_methods_and_rejects_missing_out():
    listing = subprocess.run([sys.executable, "-m", "mtl_lab.cli", "list"], capture_output=True, text=True)
    assert listing.returncode == 0 and "static" in listing.stdout and "digits" in listing.stdout
    missing = subprocess.run([sys.executable, "-m", "mtl_lab.cli", "run"], capture_output=True, text=True)
    assert missing.returncode == 2 and "--out" in missing.stderr and "Traceback" not in missing.stderr


def test_mtl_lab_lab_turns_off_the_news_toast_and_update_checks_with_options_jupyterlab_knows(tmp_path):
    labapp = pytest.importorskip("jupyterlab.labapp")
    from mtl_lab.cli import jupyterlab_command

    command = jupyterlab_command(tmp_path, 8899, no_browser=True)
    settings = next(part for part in command if part.startswith("--LabApp.app_settings_dir="))
    assert "--LabApp.news_url=None" in command and "--no-browser" in command and "--ip=127.0.0.1" in command
    assert "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate" in command
    assert not any("token" in part for part in command)  # authentication stays on
    traits = labapp.LabApp.class_traits()
    for part in command:
        if part.startswith("--LabApp."):
            name, value = part[len("--LabApp."):].split("=", 1)
            assert name in traits, f"JupyterLab has no option LabApp.{name}"
    overrides = json.loads((Path(settings.split("=", 1)[1]) / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"  # no "news?" toast
    app = labapp.LabApp()
    app.parse_command_line([p for p in command if p.startswith("--LabApp.")])
    assert app.news_url is None and app.check_for_updates_class.__name__ == "NeverCheckForUpdate"
