import pytest

from mtl_lab.metrics import delta_m, metrics_table, relative_change


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
