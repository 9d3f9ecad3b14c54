"""Studies (mtl_lab.studies) and their engines: statistics against closed forms, the cache, failures,
the report folder, and the same table from the sequential, process-pool and Ray engines."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from mtl_lab import cli
from mtl_lab.metrics import delta_m
from mtl_lab.studies import (
    BASELINE,
    EXAMPLE,
    Study,
    Variant,
    average_ranks,
    load_study,
    mean_ci,
    plan,
    run_study,
    study_from_dict,
    t_quantile,
)
from mtl_lab.studies.report import write_report

TINY = {
    "name": "tiny",
    "data": "digits",
    "tasks": ["digit", "parity"],
    "seeds": [0, 1],
    "train": {"epochs": 1, "batch_size": 256, "lr": 3e-3, "device": "cpu", "diagnostics_every": 0,
              "train_metrics": False},
    "architectures": [{"name": "hard", "options": {"hidden": [16]}}],
    "methods": ["equal", {"name": "mgda"}],
    "static": {"weights": [[2, 1]]},
}


def tiny(**changes) -> Study:
    return study_from_dict({**TINY, **changes})


# ------------------------------------------------------------------ statistics


@pytest.mark.parametrize("df, expected", [(1, 12.7062047362), (2, 4.3026527297), (4, 2.7764451052),
                                          (9, 2.2621571628), (30, 2.0422724563)])
def test_t_quantile_matches_the_published_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)


def test_t_quantile_matches_scipy_over_a_range():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 3, 7, 15, 60):
        for p in (0.9, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), abs=1e-6)


def test_mean_ci_is_the_t_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0])  # s = 1, n = 3
    assert mean == 2.0
    assert half == pytest.approx(4.3026527297 / math.sqrt(3), abs=1e-6)
    assert math.isnan(mean_ci([5.0])[1]) and mean_ci([5.0])[0] == 5.0
    assert all(math.isnan(v) for v in mean_ci([]))


def test_average_ranks_share_ties_and_respect_the_direction():
    assert average_ranks([0.9, 0.8, 0.9, 0.1], higher_is_better=True) == [1.5, 3.0, 1.5, 4.0]
    assert average_ranks([0.9, 0.8, math.nan], higher_is_better=False) == [2.0, 1.0, 3.0]


@pytest.mark.parametrize("bad, message", [
    ({"methods": ["nope"]}, "method 'nope' is not one of"),
    ({"architectures": ["nope"]}, "architecture 'nope' is not one of"),
    ({"methods": ["equal", "equal"]}, r"method label\(s\) \['equal'\] repeat"),
    ({"train": {"seed": 3}}, "must not set 'seed'"),
    ({"train": {"epochs": 0}}, "epochs must be an int ≥ 1, got 0"),
    ({"seeds": [1, 1]}, "seeds repeat"),
    ({"static": {"weights": [[1, 1, 1]]}}, r"static weights \[1.0, 1.0, 1.0\] have 3 entries, the study has 2"),
    ({"colour": "red"}, r"unknown study key\(s\) \['colour'\]"),
    ({"data": "nope"}, "data 'nope' is not one of"),
])
def test_a_bad_study_is_refused_with_the_bad_value_named(bad, message):
    with pytest.raises(ValueError, match=message):
        tiny(**bad)


def test_plan_has_every_run_once_and_keys_follow_the_config():
    study = tiny()
    specs = plan(study)
    # 1 architecture × (2 methods + 1 static vector) × 2 seeds + baselines: 2 tasks × 2 seeds
    assert len(specs) == 3 * 2 + 2 * 2
    assert len({s.key for s in specs}) == len(specs)
    assert [s.key for s in plan(tiny())] == [s.key for s in specs]  # the same config → the same key
    changed = plan(tiny(train={**TINY["train"], "lr": 1e-3}))
    assert not {s.key for s in changed} & {s.key for s in specs}
    assert sum(s.method_label == BASELINE for s in specs) == 4


def test_the_example_study_parses_and_is_the_acceptance_grid():
    import tomllib

    study = study_from_dict(tomllib.loads(EXAMPLE))
    assert len(study.methods) >= 3 and len(study.architectures) == 2 and len(study.seeds) == 3


# ------------------------------------------------------------------ running


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    return out, run_study(tiny(), out=out, engine="sequential", threads=1)


def test_records_hold_metrics_with_ci_delta_m_rank_and_cost(sequential):
    _, result = sequential
    assert [(r["architecture"], r["method"]) for r in result.records] == [
        ("hard", "equal"), ("hard", "mgda"), ("hard", "static 2:1")]
    runs = {(r["method"], r["seed"], tuple(r["tasks"])): r for r in result.runs}
    for record in result.records:
        assert record["completed"] == 2 and record["errors"] == []
        values = [runs[(record["method"], s, ("digit", "parity"))]["test_metrics"]["digit"] for s in (0, 1)]
        assert record["digit_mean"] == pytest.approx(statistics.fmean(values))
        assert record["digit_ci"] == pytest.approx(12.7062047362 * statistics.stdev(values) / math.sqrt(2), abs=1e-6)
        deltas = [delta_m(runs[(record["method"], s, ("digit", "parity"))]["test_metrics"],
                          {t: runs[(BASELINE, s, (t,))]["test_metrics"][t] for t in ("digit", "parity")},
                          {"digit": True, "parity": True}) for s in (0, 1)]
        assert record["delta_m_mean"] == pytest.approx(statistics.fmean(deltas))
        assert record["seconds"] > 0 and record["steps_per_s"] > 0
    assert sorted(r["mean_rank"] for r in result.records) == pytest.approx(
        sorted(statistics.fmean(v) for v in zip(*[average_ranks([r[f"{t}_mean"] for r in result.records], True)
                                                   for t in ("digit", "parity")])))


def test_a_rerun_is_served_from_the_cache_with_the_same_table(sequential):
    out, first = sequential
    again = run_study(tiny(), out=out, engine="sequential", threads=1)
    assert again.cached == len(again.runs) == 10
    assert json.dumps(again.records) == json.dumps(first.records)


def test_a_failing_run_is_recorded_not_fatal_and_not_cached(tmp_path):
    study = tiny(methods=["equal", {"name": "cagrad", "options": {"c": -1.0}}], static={}, baselines=False)
    result = run_study(study, out=tmp_path, threads=1)
    bad = next(r for r in result.records if r["method"] == "cagrad")
    assert bad["completed"] == 0 and len(bad["errors"]) == 2 and "c" in bad["errors"][0]
    assert math.isnan(bad["digit_mean"]) and math.isnan(bad["mean_rank"])
    good = next(r for r in result.records if r["method"] == "equal")
    assert good["completed"] == 2
    assert len(list((tmp_path / "runs").iterdir())) == 2  # only the finished runs are cached
    report = write_report(result, tmp_path).read_text()
    assert "## Failed runs" in report and "cagrad/seed 0" in report


def test_processes_engine_gives_the_same_table(sequential, tmp_path):
    _, first = sequential
    result = run_study(tiny(), out=tmp_path, engine="processes", workers=2, threads=1)
    assert result.cached == 0
    assert strip_cost(result.records) == strip_cost(first.records)


def strip_cost(records: list[dict]) -> list[dict]:
    """The records without the wall-clock columns (the only ones allowed to differ between engines)."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "steps_per_s")} for r in records]


def test_ray_engine_with_two_cpus_gives_the_same_table(sequential, tmp_path):
    ray = pytest.importorskip("ray")
    _, first = sequential
    try:
        result = run_study(tiny(), out=tmp_path, engine="ray", workers=2, threads=1)
    finally:
        ray.shutdown()
    assert result.cached == 0
    assert strip_cost(result.records) == strip_cost(first.records)


def test_engine_options_are_checked():
    with pytest.raises(ValueError, match="engine 'spark' is not one of"):
        run_study(tiny(), engine="spark")
    with pytest.raises(ValueError, match="only for engine='ray'"):
        run_study(tiny(), engine="processes", address="127.0.0.1:6379")


# ------------------------------------------------------------------ command line


def test_cli_study_example_and_report_folder(sequential, tmp_path, capsys):
    out, _ = sequential
    assert cli.main(["study", "--example"]) == 0
    assert "[[methods]]" in capsys.readouterr().out
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    assert load_study(path) == tiny()
    assert cli.main(["study", str(path), "--out", str(out), "--quiet", "--threads", "1"]) == 0
    assert "10 runs, 10 cached, 0 failed" in capsys.readouterr().out
    for name in ("report.md", "results.csv", "results.json", "metrics.png", "tradeoff.png"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "| hard | mgda |" in report and "Δm %" in report
    assert (out / "results.csv").read_text().splitlines()[0].startswith("architecture,method,runs,completed")


def test_cli_study_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["study", str(tmp_path / "missing.toml"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["study"]) == 2
    assert "needs a study FILE and --out DIR" in capsys.readouterr().err


def test_a_static_grid_is_the_sweep_grid():
    from mtl_lab.studies.sweep import weight_grid

    study = tiny(static={"weights": [[2, 1]], "grid": 3})
    assert study.static_weights == ((2.0, 1.0), *(tuple(w) for w in weight_grid(2, 3)))
    assert study.method_labels[-3:] == ["static 0.0099:0.99", "static 0.5:0.5", "static 0.99:0.0099"]
    with pytest.raises(ValueError, match="points must be an int ≥ 2, got 1"):
        tiny(static={"grid": 1})
    with pytest.raises(ValueError, match="'static' must be a table with 'weights'"):
        tiny(static={"vectors": []})


def test_variants_with_labels():
    study = tiny(methods=[{"name": "cagrad", "options": {"c": 0.2}, "label": "cagrad 0.2"},
                          {"name": "cagrad", "options": {"c": 0.5}, "label": "cagrad 0.5"}])
    assert study.methods[0] == Variant("cagrad", {"c": 0.2}, "cagrad 0.2")
    assert study.method_labels == ["cagrad 0.2", "cagrad 0.5", "static 2:1"]
