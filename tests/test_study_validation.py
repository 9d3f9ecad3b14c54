"""Study files checked whole before any run starts, the run cache checked record by record, and Ctrl-C
during a study (mtl_lab.studies: spec.check_study, study.read_record, study.stop_after_run).

Every bad file goes through the CLI's in-process entry (``cli.main``): one line on stderr naming the file,
the key and the value, exit status 2, and no run started (no report folder made). Ctrl-C is a real SIGINT
sent to a ``mtl-lab study`` subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mtl_lab import cli
from mtl_lab.studies import run_study, study_from_dict

ROOT = Path(__file__).resolve().parent.parent

BASE = {
    "name": "checked",
    "data": "digits",
    "tasks": ["digit", "parity"],
    "seeds": [0],
    "baselines": False,
    "train": {"epochs": 1, "batch_size": 256, "lr": 3e-3, "device": "cpu", "diagnostics_every": 0,
              "train_metrics": False},
    "architectures": [{"name": "hard", "options": {"hidden": [16]}}],
    "methods": ["equal"],
}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return repr(value)


def write_toml(path: Path, spec: dict) -> Path:
    """``spec`` as a TOML file (inline tables; enough for these studies)."""
    path.write_text("".join(f"{key} = {toml_value(value)}\n" for key, value in spec.items()))
    return path


def study_cli(tmp_path: Path, capsys, spec: dict, suffix: str = ".toml") -> tuple[int, str, Path, Path]:
    path = tmp_path / f"study{suffix}"
    if suffix == ".toml":
        write_toml(path, spec)
    else:
        path.write_text(json.dumps(spec))
    out = tmp_path / "report"
    code = cli.main(["study", str(path), "--out", str(out), "--quiet"])
    return code, capsys.readouterr().err, path, out


def changed(**changes) -> dict:
    spec = json.loads(json.dumps(BASE))
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__")
            spec[outer][inner] = value
        else:
            spec[key] = value
    return spec


BAD = [
    # (changes, key named, value named)
    (dict(methods="equal"), "'methods'", "'equal'"),
    (dict(methods=["equal", 3]), "methods[1]", "3"),
    (dict(methods=[{"name": "cagrad", "options": {"cc": 0.4}}]), "methods[0]", "['cc']"),
    (dict(methods=[{"name": "cagrad", "options": {"c": True}}]), "methods[0]", "True (bool)"),
    (dict(methods=[{"name": "cagrad", "options": {"c": -1.0}}]), "methods[0]", "-1.0"),
    (dict(methods=[{"name": "cagrad", "options": {"c": "0.4"}}]), "methods[0]", "'0.4' (str)"),
    (dict(methods=[{"name": "nope"}]), "'data'", "nope"),  # placeholder replaced below
    (dict(baselines="no"), "'baselines'", "'no' (str)"),
    (dict(baselines=1), "'baselines'", "1 (int)"),
    (dict(seeds=[-1]), "seeds[0]", "-1"),
    (dict(seeds="012"), "'seeds'", "'012'"),
    (dict(seeds=[True]), "seeds[0]", "True"),
    (dict(seeds=[0.5]), "seeds[0]", "0.5"),
    (dict(tasks="digit"), "'tasks'", "'digit'"),
    (dict(name=5), "'name'", "5 (int)"),
    (dict(train__epoch=1), "'train'", "['epoch']"),
    (dict(train__lr="0.1"), "'train'", "'0.1'"),
    (dict(train__epochs=True), "'train'", "True"),
    (dict(train__device="cuda:7"), "train.device", "'cuda:7'"),
    (dict(train__device="gpu"), "'train'", "'gpu'"),
    (dict(train__seed=3), "train.seed", "3"),
    (dict(architectures=[{"name": "hard", "options": {"hiden": [16]}}]), "architectures[0]", "['hiden']"),
    (dict(architectures=[{"name": "hard", "options": {"hidden": "64"}}]), "architectures[0]", "'64'"),
    (dict(architectures=[{"name": "mmoe", "options": {"num_experts": 2.5}}]), "architectures[0]", "2.5"),
    (dict(architectures=[{"name": "hard", "options": 16}]), "architectures[0].options", "16"),
    (dict(static={"weights": [[1, -1]]}), "static.weights[0]", "-1"),
    (dict(static={"weights": [[1, "2"]]}), "static.weights[0]", "'2'"),
    (dict(static={"weights": [[1, 1, 1]]}), "static weights", "[1.0, 1.0, 1.0]"),
    (dict(static={"grid": True}), "static.grid", "True"),
    (dict(data_options=3), "'data_options'", "3"),
    (dict(data=7), "'data'", "7"),
    (dict(tasks=["digit", "nope"]), "'tasks'", "['nope']"),
    (dict(data_options={"bogus": 1}), "'data_options'", "['bogus']"),
]
BAD[6] = (dict(methods=[{"name": "nope"}]), "method 'nope'", "'nope'")


@pytest.mark.parametrize("changes, key, value", BAD, ids=[str(i) for i in range(len(BAD))])
def test_a_bad_study_file_is_one_line_naming_file_key_and_value_exit_2_before_any_run(
        tmp_path, capsys, changes, key, value):
    code, err, path, out = study_cli(tmp_path, capsys, changed(**changes))
    line = err.strip()
    assert code == 2
    assert "\n" not in line and line.startswith("mtl-lab: error: ")
    assert str(path) in line and key in line and value in line, line
    assert not out.exists()  # nothing ran, no report folder


def test_an_unknown_top_level_key_such_as_epoch_is_named(tmp_path, capsys):
    code, err, path, _ = study_cli(tmp_path, capsys, {**BASE, "epoch": 1})
    assert code == 2 and str(path) in err and "['epoch']" in err and "Traceback" not in err


def test_a_json_study_gets_the_same_verdicts(tmp_path, capsys):
    code, err, path, _ = study_cli(tmp_path, capsys, changed(baselines="no"), suffix=".json")
    assert code == 2 and str(path) in err and "'baselines'" in err and "'no' (str)" in err


def test_a_study_file_that_does_not_parse_names_the_file(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text('data = "digits"\nseeds = [0,\n')
    code = cli.main(["study", str(path), "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and str(path) in err and "\n" not in err


def test_the_api_refuses_a_string_where_a_list_belongs_without_splitting_it():
    with pytest.raises(ValueError, match=r"key 'methods': must be a list, got 'equal' \(str\)"):
        study_from_dict(changed(methods="equal"))


def test_out_naming_a_file_is_one_line_exit_2(tmp_path, capsys):
    path = write_toml(tmp_path / "s.toml", BASE)
    existing = tmp_path / "a_file"
    existing.write_text("x")
    code = cli.main(["study", str(path), "--out", str(existing), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and str(existing) in err and "NotADirectory" not in err
    with pytest.raises(ValueError, match="is an existing file"):
        run_study(study_from_dict(BASE), out=existing)


# ------------------------------------------------------------------ the run cache


@pytest.fixture(scope="module")
def cached_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("cache")
    study = study_from_dict(changed(seeds=[0, 1]))
    result = run_study(study, out=out, threads=1)
    files = sorted((out / "runs").glob("*.json"))
    assert len(files) == 2 and result.cached == 0
    return study, out, {f: f.read_text() for f in files}, result


def rerun(cached_study, tmp_path):
    """The cached study copied to ``tmp_path``, with a hook to damage one record, then run again."""
    study, out, files, first = cached_study
    (tmp_path / "runs").mkdir()
    for f, text in files.items():
        (tmp_path / "runs" / f.name).write_text(text)
    return study, tmp_path, first


def test_an_intact_cache_is_used_without_warnings(cached_study, tmp_path):
    study, out, first = rerun(cached_study, tmp_path)
    said: list[str] = []
    result = run_study(study, out=out, threads=1, warn=said.append)
    assert result.cached == 2 and said == []
    assert [r["test_metrics"] for r in result.runs] == [r["test_metrics"] for r in first.runs]


def test_an_edited_record_is_named_retrained_and_never_reported(cached_study, tmp_path):
    study, out, first = rerun(cached_study, tmp_path)
    victim = sorted((out / "runs").glob("*.json"))[0]
    record = json.loads(victim.read_text())
    record["test_metrics"] = {task: 0.999 for task in record["test_metrics"]}
    victim.write_text(json.dumps(record))
    said: list[str] = []
    result = run_study(study, out=out, threads=1, warn=said.append)
    assert result.cached == 1 and len(said) == 1 and str(victim) in said[0] and "checksum" in said[0]
    retrained = next(r for r in result.runs if r["key"] == record["key"])
    assert retrained["test_metrics"] != record["test_metrics"]
    original = next(r for r in first.runs if r["key"] == record["key"])
    assert retrained["test_metrics"] == original["test_metrics"]  # the same run trained again, same numbers


def test_a_truncated_record_is_named_with_its_file_and_retrained(cached_study, tmp_path):
    study, out, _ = rerun(cached_study, tmp_path)
    victim = sorted((out / "runs").glob("*.json"))[1]
    victim.write_text(victim.read_text()[:40])
    said: list[str] = []
    result = run_study(study, out=out, threads=1, warn=said.append)
    assert result.cached == 1 and len(said) == 1 and str(victim) in said[0] and "JSON" in said[0]
    assert all(r["status"] == "completed" for r in result.runs)
    assert json.loads(victim.read_text())["checksum"]  # rewritten whole


def test_a_record_of_another_run_with_a_valid_checksum_is_refused(cached_study, tmp_path):
    from mtl_lab.studies.study import checksum

    study, out, _ = rerun(cached_study, tmp_path)
    first, second = sorted((out / "runs").glob("*.json"))
    record = json.loads(second.read_text())
    record.pop("checksum")
    record["key"] = first.stem
    first.write_text(json.dumps({**record, "checksum": checksum(record)}))
    said: list[str] = []
    result = run_study(study, out=out, threads=1, warn=said.append)
    assert result.cached == 1 and len(said) == 1 and str(first) in said[0] and "config" in said[0]


def test_the_cli_prints_a_bad_cache_record_as_one_warning_line(cached_study, tmp_path, capsys):
    study, out, _ = rerun(cached_study, tmp_path)
    victim = sorted((out / "runs").glob("*.json"))[0]
    victim.write_text("{")
    path = write_toml(tmp_path / "s.toml", changed(seeds=[0, 1]))
    assert cli.main(["study", str(path), "--out", str(out), "--quiet"]) == 0
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("mtl-lab: warning:")]
    assert len(warnings) == 1 and str(victim) in warnings[0]
    assert "2 runs, 1 cached, 0 failed" in captured.out


# ------------------------------------------------------------------ Ctrl-C (a real SIGINT)


def start_study(tmp_path: Path, seeds: int, epochs: int, *engine: str) -> tuple[subprocess.Popen, Path]:
    path = write_toml(tmp_path / "s.toml", changed(seeds=list(range(seeds)), train__epochs=epochs))
    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mtl_lab.cli", "study", str(path), "--out", str(out), "--quiet",
                             "--threads", "1", *engine], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (out / "runs").is_dir():  # made after the whole file was checked, just before the first run
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the study did not start"
        time.sleep(0.05)
    return proc, out


def wait_for_a_finished_run(proc: subprocess.Popen, out: Path) -> None:
    deadline = time.monotonic() + 120
    while not list((out / "runs").glob("*.json")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no run finished"
        time.sleep(0.02)


@pytest.mark.parametrize("signals", [1, 2])
def test_sigint_stops_the_study_with_a_status_exit_130_and_keeps_finished_runs(tmp_path, signals):
    proc, out = start_study(tmp_path, seeds=8, epochs=6)
    wait_for_a_finished_run(proc, out)
    for _ in range(signals):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    status = [line for line in err.splitlines() if "study interrupted" in line]
    assert len(status) == 1 and "of 8 runs done" in status[0] and "Traceback" not in err
    done = int(status[0].split("study interrupted: ")[1].split(" of")[0])
    kept = sorted((out / "runs").glob("*.json"))
    assert 1 <= len(kept) == done < 8  # every finished run kept, nothing after the interrupt, no partial record
    for f in kept:
        assert json.loads(f.read_text())["status"] == "completed"
    if signals == 1:
        assert done >= 2  # the run under way when Ctrl-C came was finished


def test_a_study_built_through_the_api_refuses_a_negative_seed_too():
    from mtl_lab.studies import Study, Variant

    with pytest.raises(ValueError, match=r"seed must be an int in \[0, .*got -1"):
        Study(data="digits", architectures=(Variant("hard"),), methods=(Variant("equal"),), seeds=(-1,))


def test_ctrl_c_to_the_whole_process_group_stops_a_process_pool_study(tmp_path):
    """A terminal's Ctrl-C reaches the workers too: they ignore it, the study lets the runs under way finish,
    starts no other, and exits 130 with its status line."""
    proc, out = start_study(tmp_path, 8, 6, "--engine", "processes", "--workers", "2")
    wait_for_a_finished_run(proc, out)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    status = [line for line in err.splitlines() if "study interrupted" in line]
    assert len(status) == 1 and "Traceback" not in err and "KeyboardInterrupt" not in err
    done = int(status[0].split("study interrupted: ")[1].split(" of")[0])
    assert 1 <= done < 8 and len(list((out / "runs").glob("*.json"))) >= done
