"""Front scores against brute force: hypervolume (2 and 3 objectives) and IGD+.

The brute-force hypervolume cuts space into the cells of the grid of every point's coordinates (and
the reference's): a cell lies in the dominated region exactly when some point is ≤ its lower corner,
so the sum of the covered cells' volumes is exact. Inclusion–exclusion over every subset (the
intersection of boxes ``[p, r]`` is the box ``[max p, r]``) is a second, independent check.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mtl_lab.metrics import hypervolume, igd_plus, minimisation_points, nadir_reference


def grid_hypervolume(P: np.ndarray, ref: np.ndarray) -> float:
    P = P[(P < ref).all(axis=1)]
    if len(P) == 0:
        return 0.0
    axes = [np.unique(np.append(P[:, k], ref[k])) for k in range(len(ref))]
    total = 0.0
    for cell in itertools.product(*[range(len(a) - 1) for a in axes]):
        low = np.array([axes[k][i] for k, i in enumerate(cell)])
        size = np.prod([axes[k][i + 1] - axes[k][i] for k, i in enumerate(cell)])
        if (P <= low).all(axis=1).any():
            total += size
    return float(total)


def inclusion_exclusion(P: np.ndarray, ref: np.ndarray) -> float:
    P = P[(P < ref).all(axis=1)]
    total = 0.0
    for r in range(1, len(P) + 1):
        for subset in itertools.combinations(range(len(P)), r):
            corner = P[list(subset)].max(axis=0)
            total += (-1) ** (r + 1) * float(np.prod(ref - corner))
    return total


def random_front(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """Points near the simplex (a front) plus dominated points, duplicates and points beyond the reference."""
    front = rng.dirichlet(np.ones(m), size=n)
    dominated = front[: n // 2] + rng.uniform(0.05, 0.3, size=(n // 2, m))
    duplicates = front[:2]
    outside = front[:1] + np.eye(m)[0] * 2.0  # worse than the reference in one coordinate
    ties = np.round(rng.uniform(0, 1, size=(2, m)) * 4) / 4  # coordinates shared with other points
    return np.vstack([front, dominated, duplicates, outside, ties])


@pytest.mark.parametrize("m", [2, 3])
@pytest.mark.parametrize("seed", range(6))
def test_hypervolume_against_brute_force(m: int, seed: int):
    rng = np.random.default_rng(seed)
    P = random_front(rng, 7, m)
    ref = np.full(m, 1.2)
    exact = grid_hypervolume(P, ref)
    assert exact > 0
    assert hypervolume(P, ref) == pytest.approx(exact, rel=1e-12, abs=1e-14)
    # shuffling the points changes nothing
    assert hypervolume(P[rng.permutation(len(P))], ref) == pytest.approx(exact, rel=1e-12)


@pytest.mark.parametrize("m", [2, 3])
def test_hypervolume_inclusion_exclusion(m: int):
    rng = np.random.default_rng(11)
    P = np.vstack([rng.uniform(0, 1, size=(6, m)), rng.uniform(0, 1, size=(1, m))])
    P = np.vstack([P, P[:1]])  # a duplicate
    ref = np.ones(m) * 1.1
    assert hypervolume(P, ref) == pytest.approx(inclusion_exclusion(P, ref), rel=1e-12)


def test_hypervolume_by_hand():
    # two points of a 2-D front against (4, 4): 3·1 + 1·2 = 5 (rectangles from the sweep)
    assert hypervolume([[1.0, 3.0], [3.0, 1.0]], [4.0, 4.0]) == pytest.approx(5.0)
    # adding a dominated point or a duplicate changes nothing
    assert hypervolume([[1.0, 3.0], [3.0, 1.0], [3.5, 3.5], [1.0, 3.0]], [4.0, 4.0]) == pytest.approx(5.0)
    # a unit cube corner in 3-D: one point at 0 against (1, 1, 1)
    assert hypervolume([[0.0, 0.0, 0.0]], [1.0, 1.0, 1.0]) == pytest.approx(1.0)
    # nothing strictly better than the reference: zero
    assert hypervolume([[4.0, 1.0]], [4.0, 4.0]) == 0.0
    assert hypervolume(np.zeros((0, 2)), [1.0, 1.0]) == 0.0


def test_hypervolume_errors_name_the_value():
    with pytest.raises(ValueError, match="2 or 3 objectives; the reference has 4"):
        hypervolume([[0, 0, 0, 0]], [1, 1, 1, 1])
    with pytest.raises(ValueError, match="3 objective.*expected 2"):
        hypervolume([[0, 0, 0]], [1, 1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        hypervolume([[0, float("nan")]], [1, 1])
    with pytest.raises(ValueError, match="reference must be finite"):
        hypervolume([[0, 0]], [1, float("inf")])


def brute_igd_plus(A: np.ndarray, Z: np.ndarray) -> float:
    total = 0.0
    for z in Z:
        best = float("inf")
        for a in A:
            d = 0.0
            for k in range(len(z)):
                d += max(a[k] - z[k], 0.0) ** 2
            best = min(best, d**0.5)
        total += best
    return total / len(Z)


@pytest.mark.parametrize("m", [2, 3, 4])
def test_igd_plus_against_brute_force(m: int):
    rng = np.random.default_rng(m)
    Z = rng.dirichlet(np.ones(m), size=9)
    A = random_front(rng, 6, m)
    assert igd_plus(A, Z) == pytest.approx(brute_igd_plus(A, Z), rel=1e-12)
    # a set that contains the front, or dominates it, scores 0; a worse copy scores its shift
    assert igd_plus(np.vstack([Z, A]), Z) == 0.0
    assert igd_plus(Z - 0.1, Z) == 0.0
    assert igd_plus(Z + 0.1, Z) == pytest.approx(0.1 * m**0.5, rel=1e-12)


def test_igd_plus_by_hand():
    # z = (0, 0); a = (1, −1) is worse only in the first coordinate: distance 1 (plain IGD would say √2)
    assert igd_plus([[1.0, -1.0]], [[0.0, 0.0]]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one point"):
        igd_plus(np.zeros((0, 2)), [[0.0, 0.0]])
    with pytest.raises(ValueError, match="3 objective.*expected 2"):
        igd_plus([[0.0, 0.0, 0.0]], [[0.0, 0.0]])


def test_minimisation_points_and_reference():
    P = minimisation_points([{"acc": 0.9, "mse": 0.2}, {"acc": 0.8, "mse": 0.1}], {"acc": True, "mse": False})
    np.testing.assert_allclose(P, [[-0.9, 0.2], [-0.8, 0.1]])
    np.testing.assert_allclose(nadir_reference(P, 0.1), [-0.8 + 0.01, 0.2 + 0.01])
    with pytest.raises(ValueError, match="margin"):
        nadir_reference(P, -1.0)


def test_sweep_scores_use_the_negated_directions():
    from mtl_lab.studies.sweep import SweepPoint, SweepResult, front_figure

    result = SweepResult(["acc", "mse"], {"acc": True, "mse": False}, {"acc": "accuracy", "mse": "mse"}, "val")
    result.static = [SweepPoint("a", "static", [0.5, 0.5], {"acc": 0.9, "mse": 0.3}),
                     SweepPoint("b", "static", [0.9, 0.1], {"acc": 0.8, "mse": 0.1})]
    result.adaptive = [SweepPoint("mgda", "mgda", None, {"acc": 0.95, "mse": 0.05}),
                       SweepPoint("equal", "equal", None, {"acc": 0.7, "mse": 0.4})]
    s = result.scores()
    # minimisation points (−acc, mse); reference = worst + 10 % of range = (−0.7 + 0.025, 0.4 + 0.035)
    ref = [-0.675, 0.435]
    np.testing.assert_allclose(s["reference"], ref)
    assert s["hv_static"] == pytest.approx(hypervolume([[-0.9, 0.3], [-0.8, 0.1]], ref))
    assert s["hv_with"]["mgda"] == pytest.approx((0.95 - 0.675) * (0.435 - 0.05))  # dominates both
    assert s["hv_with"]["equal"] == pytest.approx(s["hv_static"])  # dominated: adds nothing
    assert "added by mgda +" in result.scores_text()
    assert "hypervolume" in front_figure(result)._suptitle.get_text()
    result.adaptive.append(SweepPoint("nash", "nash_mtl", None, {"acc": float("nan"), "mse": 0.1}))
    assert "nash_mtl" not in result.scores()["hv_with"] and "not scored (non-finite metrics): nash_mtl" in (
        result.scores_text())


def test_study_report_front_scores_table():
    from mtl_lab.studies import StudyResult
    from mtl_lab.studies.report import front_scores_table

    records = [{"architecture": "hard", "method": "equal", "acc_mean": 0.9, "mse_mean": 0.3},
               {"architecture": "hard", "method": "mgda", "acc_mean": 0.8, "mse_mean": 0.1},
               {"architecture": "hard", "method": "pcgrad", "acc_mean": 0.7, "mse_mean": 0.4},
               {"architecture": "hard", "method": "broken", "acc_mean": float("nan"), "mse_mean": float("nan")}]
    result = StudyResult(None, records, [], ["acc", "mse"], {"acc": True, "mse": False},
                         {"acc": "accuracy", "mse": "mse"}, 0, 0.0, "sequential")
    table = front_scores_table(result)
    ref = [-0.68, 0.43]  # worst (−0.7, 0.4) + 10 % of the ranges (0.2, 0.3)
    lines = {line.split(" | ")[1]: line for line in table.splitlines()[2:]}
    assert f"{hypervolume([[-0.9, 0.3]], ref):.4g}" in lines["equal"] and lines["equal"].endswith("yes |")
    assert lines["pcgrad"].endswith(" |  |")  # dominated by equal
    assert "—" in lines["broken"]
    assert f"{hypervolume([[-0.9, 0.3], [-0.8, 0.1], [-0.7, 0.4]], ref):.4g}" in lines["all methods together"]
