import pytest

from mtl_lab.metrics import (
    delta_m,
    delta_m_by_kind,
    directions,
    dominance_note,
    dominating_task,
    metrics_table,
    relative_change,
    relative_changes,
)


def test_delta_m_by_hand():
    # accuracy 0.9 → 0.99 (+10 %), MSE 0.2 → 0.3 (50 % worse): Δm = (10 − 50) / 2 = −20 %
    metrics = {"acc": 0.99, "mse": 0.3}
    base = {"acc": 0.9, "mse": 0.2}
    hib = {"acc": True, "mse": False}
    assert delta_m(metrics, base, hib) == pytest.approx(-20.0)
    assert delta_m(base, base, hib) == 0.0
    assert relative_change(0.1, 0.2, higher_is_better=False) == pytest.approx(0.5)


def test_delta_m_errors():
    with pytest.raises(ValueError, match="baseline metric of 0"):
        relative_change(1.0, 0.0, True)
    with pytest.raises(ValueError, match="no metric"):
        delta_m({"a": 1.0}, {"a": 1.0, "b": 2.0}, {"a": True, "b": True})
    with pytest.raises(ValueError, match="finite"):
        relative_change(float("nan"), 1.0, True)


def test_metrics_table_has_delta_m_column(toy):
    base = {"cls": 0.5, "yes": 0.5, "reg": 1.0}
    table = metrics_table({"equal": {"cls": 0.55, "yes": 0.5, "reg": 1.0}}, toy, base)
    lines = table.splitlines()
    assert "Δm %" in lines[0] and "cls (accuracy ↑)" in lines[0] and "reg (mse ↓)" in lines[0]
    assert lines[2].startswith("| single-task") and lines[3].endswith("+3.33 |")


def test_relative_changes_are_the_terms_of_delta_m():
    metrics, base = {"acc": 0.99, "mse": 0.3}, {"acc": 0.9, "mse": 0.2}
    changes = relative_changes(metrics, base, {"acc": True, "mse": False})
    assert changes == pytest.approx({"acc": 10.0, "mse": -50.0})
    assert delta_m(metrics, base, {"acc": True, "mse": False}) == pytest.approx(sum(changes.values()) / 2)


def test_a_near_zero_regression_baseline_is_shown_not_hidden(toy):
    # the demo's old trap: three accuracies about equal, one tiny regression error that grows 28-fold
    base = {"cls": 0.90, "yes": 0.95, "reg": 0.0003}
    run = {"cls": 0.91, "yes": 0.95, "reg": 0.0084}
    by_kind = delta_m_by_kind(run, base, toy)
    assert by_kind["classification"] == pytest.approx(100 * (0.01 / 0.90) / 2)
    assert by_kind["regression"] == pytest.approx(-2700.0)
    changes = relative_changes(run, base, directions(toy))
    assert dominating_task(changes) == "reg"
    assert "dominated by 'reg' (-2700.0 %" in dominance_note(changes)
    assert dominating_task({"a": 10.0, "b": -9.0, "c": 2.0}) is None and dominance_note({"a": 1.0}) == ""
    lines = metrics_table({"equal": run}, toy, base, digits=3).splitlines()
    assert lines[0].endswith("| reg (mse ↓) | Δm classification % | Δm regression % | Δm % |")
    assert "| 0.910 (+1.1 %) | 0.950 (+0.0 %) | 0.008 (-2700.0 %) | +0.56 | -2700.00 | -899.63 |" in lines[3]
    assert lines[2] == "| single-task | 0.900 | 0.950 | 0.000 | +0.00 | +0.00 | +0.00 |"
