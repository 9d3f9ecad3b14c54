import json

import pytest

from mtl_lab import plots
from mtl_lab.history import History, load_runs
from mtl_lab.training import build_trainer

FAST = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "diagnostics_every": 2, "model_options": {"hidden": (16,)}}


@pytest.fixture
def history(toy) -> History:
    return build_trainer(toy, **FAST).fit()


def test_json_round_trip(history, tmp_path):
    text = history.to_json()
    json.loads(text)  # valid JSON
    again = History.from_json(text)
    assert again == history and again.diagnostics == history.diagnostics and again.epochs == history.epochs
    path = history.save(tmp_path / "h.json")
    assert History.load(path) == history
    (tmp_path / "runs.json").write_text(json.dumps({"runs": {"a": history.to_dict()}}))
    assert load_runs(tmp_path / "runs.json")["a"] == history
    with pytest.raises(ValueError, match="not a History"):
        History.from_dict({"steps": []})


def test_snapshot_is_independent(history):
    snap = history.snapshot()
    snap.losses.append([0.0] * history.n_tasks)
    snap.meta["status"] = "changed"
    history.add_diagnostics({"step": 99})
    assert len(history.losses) == len(snap.losses) - 1 and history.status == "completed"
    assert snap.diagnostics == history.diagnostics[:-1]


def test_series_accessors(history):
    steps, values = history.loss_series("yes")
    assert steps == history.steps and values == [row[1] for row in history.losses]
    epochs, val = history.epoch_series("val_metric", "cls")
    assert epochs == [1, 2] and all(0 <= v <= 1 for v in val)
    with pytest.raises(KeyError, match="no task 'depth'"):
        history.loss_series("depth")


def test_signature_figure_draws_both_halves(history):
    fig = plots.signature_figure(history)
    losses, weights, shares, cosines = fig.axes
    assert len(losses.lines) == 2 * history.n_tasks  # train and validation per task
    assert len(weights.lines) == history.n_tasks
    assert len(shares.collections) >= history.n_tasks  # one stacked band per task
    assert len(cosines.lines) >= 3  # three task pairs (plus reference lines)
    png = plots.to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_signature_figure_says_why_diagnostics_are_missing(toy):
    h = build_trainer(toy, **{**FAST, "diagnostics_every": 0}).fit()
    fig = plots.signature_figure(h)
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert any("off" in t for t in texts)


def test_comparison_figure(history, toy):
    other = build_trainer(toy, "hard", "static", method_options={"weights": [1, 2, 3]}, **FAST).fit()
    fig = plots.comparison_figure({"equal": history, "static": other})
    assert len(fig.axes) == 2 * 3 and all(len(ax.lines) == 2 for ax in fig.axes)
    with pytest.raises(ValueError, match="at least one"):
        plots.comparison_figure({})
