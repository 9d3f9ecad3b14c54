"""The Pareto explorer, headless: a deterministic repr, and moving the preference (from code or as the
browser does, by writing the picture's ``preference``) updates the metrics, the point and the predictions."""

from __future__ import annotations

import pytest
from test_pareto_set import conflicting

from mtl_lab.studies.pareto_set import build_pareto_set_trainer, learned_front
from mtl_lab.studies.sweep import ratio_grid, sweep
from mtl_lab.widgets.pareto_explorer import ParetoExplorer


@pytest.fixture(scope="module")
def trained():
    data = conflicting()
    trainer = build_pareto_set_trainer(data, penalty=0.0, hidden=(16, 1), seed=0, epochs=40, lr=1e-2, batch_size=64,
                                       device="cpu", diagnostics_every=0, train_metrics=False)
    trainer.fit()
    result = sweep(data, weights=ratio_grid(3), methods=(), epochs=3, lr=1e-2, batch_size=64, seed=0,
                   device="cpu", model_options={"hidden": [16, 1]}, diagnostics_every=0, train_metrics=False)
    return data, trainer.model, result


def test_repr_is_deterministic(trained):
    data, model, result = trained
    explorer = ParetoExplorer(model, data, result, name="test-explorer-repr")
    assert repr(explorer) == "ParetoExplorer(tasks=['a', 'b'], preference=[0.50, 0.50])"
    assert repr(explorer.picture) == "ExplorerPicture(tasks=2)"
    bundle = explorer._repr_mimebundle_()
    assert bundle["text/plain"] == repr(explorer) and "image/png" in bundle  # a handout shows its last state
    explorer.close()


def test_setting_the_preference_updates_metrics_point_and_predictions(trained):
    data, model, result = trained
    explorer = ParetoExplorer(model, data, result, preference=[0.9, 0.1], name="test-explorer-set")
    first_metrics, first_point, first_table = list(explorer.picture.metrics), list(explorer.picture.current), \
        explorer.table.value
    explorer.set_preference([1, 9])
    assert explorer.picture.preference == [0.1, 0.9]
    assert explorer.picture.metrics != first_metrics
    assert explorer.picture.current != first_point and explorer.table.value != first_table
    want = learned_front(model, data, [[0.1, 0.9]])[0]
    assert explorer.point == pytest.approx(want)
    assert explorer.picture.current == pytest.approx([want["a"], want["b"]])
    assert explorer.point["a"] > first_point[0]  # less preference for task a: a larger error on a
    explorer.close()


def test_a_drag_in_the_browser_is_a_trait_change(trained):
    data, model, result = trained
    explorer = ParetoExplorer(model, data, result, name="test-explorer-drag")
    before = list(explorer.picture.metrics)
    explorer.picture.preference = [0.25, 0.75]  # what the view writes, once per animation frame
    assert explorer.picture.metrics != before
    assert "r = (0.25, 0.75)" in explorer.table.value
    explorer.picture.preference = [0.0, 0.0]  # not a preference: the status line says so, nothing else moves
    assert "at least one weight must be &gt; 0, got [0.0, 0.0]" in explorer.status.value
    assert "r = (0.25, 0.75)" in explorer.table.value
    explorer.close()


def test_sweep_points_and_the_learned_curve_are_drawn(trained):
    data, model, result = trained
    explorer = ParetoExplorer(model, data, result, name="test-explorer-draw")
    assert len(explorer.picture.sweep_points) == len(result.static) == 3
    assert len(explorer.picture.learned_curve) == 21
    x0, x1, y0, y1 = explorer.picture.extent
    assert all(x0 < x < x1 and y0 < y < y1 for x, y in explorer.picture.learned_curve + explorer.picture.sweep_points)
    explorer.close()


def test_bad_arguments_name_what_is_allowed(trained):
    data, model, result = trained
    with pytest.raises(ValueError, match="pair must name two different tasks"):
        ParetoExplorer(model, data, result, pair=("a", "a"))
    with pytest.raises(ValueError, match="needs a model that reads a preference"):
        ParetoExplorer(object(), data)
    explorer = ParetoExplorer(model, data, name="test-explorer-bad")
    with pytest.raises(ValueError, match="has 3 entries, the data has 2 tasks"):
        explorer.set_preference([1, 1, 1])
    explorer.close()


def test_three_tasks_use_the_simplex():
    import torch

    from mtl_lab import tasks
    from mtl_lab.data.base import MultiTaskData

    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g)
    data = MultiTaskData.from_tensors(x, {n: x[:, k:k + 1].clone() for k, n in enumerate("abc")},
                                      [tasks.regression(n) for n in "abc"])
    trainer = build_pareto_set_trainer(data, hidden=(8, 2), seed=0, epochs=2, device="cpu", diagnostics_every=0)
    trainer.fit()
    explorer = ParetoExplorer(trainer.model, data, pair=("a", "c"), name="test-explorer-3")
    assert explorer.picture.preference == pytest.approx([1 / 3] * 3, abs=1e-6)
    assert explorer.picture.axis_labels[1].startswith("c: val mse")
    assert len(explorer.picture.learned_curve) == 21  # the interior of a simplex grid of resolution 8
    before = list(explorer.picture.metrics)
    explorer.picture.preference = [0.8, 0.1, 0.1]
    assert len(explorer.picture.metrics) == 3 and explorer.picture.metrics != before
    explorer.close()


def test_the_explorer_drives_a_hypernetwork_too():
    data = conflicting()
    trainer = build_pareto_set_trainer(data, "pareto_hypernetwork", hidden=(8, 2), seed=0, epochs=2, device="cpu",
                                       diagnostics_every=0)
    trainer.fit()
    explorer = ParetoExplorer(trainer.model, data, name="test-explorer-phn")
    before = list(explorer.picture.metrics)
    explorer.set_preference([0.95, 0.05])
    assert explorer.picture.metrics != before
    assert explorer.point == pytest.approx(learned_front(trainer.model, data, [[0.95, 0.05]])[0])
    explorer.close()
