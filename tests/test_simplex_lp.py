"""The small linear program on the simplex (EPO's): trying every vertex gives HiGHS's optimum.

``max cᵀα`` over ``α ≥ 0, Σα = 1, Aα ≤ b`` on random programs — EPO-shaped ones built from random Gramians
(rank-deficient and collinear gradients included), generic ones (many infeasible), and degenerate ones (repeated
rows, several constraints tight at one vertex) — against ``scipy.optimize.linprog`` (HiGHS).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from mtl_lab.weighting import epo
from mtl_lab.weighting.solvers import (
    MAX_VERTEX_CANDIDATES,
    lp_by_highs,
    lp_by_vertices,
    normalized_gramian,
    simplex_lp,
)


def epo_programs(rng: np.random.Generator, T: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The balance and descent programs EPO builds from a random Gramian and random losses."""
    P = int(rng.integers(1, 2 * T + 1))  # P < T: a rank-deficient Gramian
    G = rng.normal(size=(T, P))
    if rng.random() < 0.3:
        G[-1] = G[0] * rng.uniform(0.5, 2.0)  # two collinear gradients
    C, _ = normalized_gramian(G @ G.T)
    rl = rng.uniform(0.1, 3.0, T)
    _, _, shifted = epo.non_uniformity(rl)
    Ca = C @ shifted
    bound = np.where(Ca > 0, -np.inf, Ca) if (Ca > 0).any() else np.zeros(T)
    bound[rl == rl.max()] = 0.0
    rows = np.isfinite(bound)
    balance = (Ca, -C[rows], -bound[rows])
    descent = (C.sum(axis=0), np.vstack([-C, -Ca[None]]), np.append(np.zeros(T), -min(float(Ca.max()), 0.0)))
    return [balance, descent, (C.sum(axis=0), -C, np.zeros(T))]


def generic_program(rng: np.random.Generator, T: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    m = int(rng.integers(0, T + 2))
    A = rng.normal(size=(m, T))
    b = rng.normal(size=m) * rng.choice([0.0, 0.3, 1.0])  # b = 0: many rows tight at one point
    if m > 1 and rng.random() < 0.3:
        A[1], b[1] = A[0], b[0]  # a repeated row
    return rng.normal(size=T), A, b


def assert_same_optimum(c: np.ndarray, A: np.ndarray, b: np.ndarray) -> bool:
    ours, reference = lp_by_vertices(c, A, b), lp_by_highs(c, A, b)
    assert (ours is None) == (reference is None), (c, A, b, ours, reference)
    if ours is None:
        return False
    assert ours.min() >= 0.0 and ours.sum() == pytest.approx(1.0, abs=1e-12)
    if len(b):
        assert np.all(A @ ours <= b + 1e-8 * (1 + np.abs(b)))
    assert c @ ours == pytest.approx(c @ reference, rel=1e-8, abs=1e-9)
    return True


@pytest.mark.parametrize("T", [1, 2, 3, 4, 5])
def test_every_vertex_gives_highs_optimum_on_epo_programs(T):
    rng = np.random.default_rng(T)
    feasible = sum(assert_same_optimum(*program) for _ in range(150) for program in epo_programs(rng, T))
    assert feasible >= 300  # most of EPO's programs are feasible: the comparison above really ran


@pytest.mark.parametrize("T", [2, 3, 4, 5])
def test_every_vertex_gives_highs_optimum_on_generic_programs(T):
    rng = np.random.default_rng(100 + T)
    outcomes = [assert_same_optimum(*generic_program(rng, T)) for _ in range(400)]
    assert 0 < sum(outcomes) < len(outcomes)  # both feasible and infeasible programs were compared


def test_a_vertex_with_many_tight_rows_and_a_tie_in_the_objective():
    """Degenerate: five rows tight at the centre of the simplex, and an objective flat along an edge."""
    T = 3
    A = np.vstack([np.ones((2, T)), -np.eye(T)])  # Σα ≤ 1 twice, and α ≥ 0 again
    b = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    c = np.array([1.0, 1.0, 0.0])  # every α on the edge α_3 = 0 is optimal
    alpha = simplex_lp(c, A, b)
    assert alpha[2] == pytest.approx(0.0, abs=1e-12) and c @ alpha == pytest.approx(1.0)
    assert simplex_lp(c, np.array([[1.0, 1.0, 1.0]]), np.array([0.5])) is None  # Σα = 1 and Σα ≤ ½: infeasible


def test_large_programs_go_to_highs_and_small_ones_do_not(monkeypatch):
    calls = []
    monkeypatch.setattr("mtl_lab.weighting.solvers.lp_by_highs", lambda *a: calls.append("highs"))
    monkeypatch.setattr("mtl_lab.weighting.solvers.lp_by_vertices", lambda *a: calls.append("vertices"))
    for T in (3, 5, 6, 14):
        A, b = np.zeros((T + 1, T)), np.zeros(T + 1)
        simplex_lp(np.ones(T), A, b)
    assert calls == ["vertices", "vertices", "highs", "highs"]
    assert math.comb(5 + 6, 4) <= MAX_VERTEX_CANDIDATES < math.comb(6 + 7, 5)  # EPO's largest programs at T = 5, 6


def test_epo_weights_are_the_same_with_either_solver(monkeypatch):
    """EPO's step (balance and descent) with every vertex tried equals its step with HiGHS."""
    rng = np.random.default_rng(7)
    cases = []
    for _ in range(60):
        T = int(rng.integers(2, 6))
        G = rng.normal(size=(T, 20))
        cases.append((rng.uniform(0.2, 2.0, T), G @ G.T, rng.uniform(0.5, 2.0, T), float(rng.choice([1e-4, 10.0]))))
    ours = [epo.epo_weights(*case) for case in cases]
    monkeypatch.setattr("mtl_lab.weighting.solvers.lp_by_vertices", lp_by_highs)
    reference = [epo.epo_weights(*case) for case in cases]
    modes = {info["mode"] for _, info in ours}
    assert {"balance", "descent"} <= modes
    for (a, info_a), (b, info_b) in zip(ours, reference):
        assert info_a["mode"] == info_b["mode"]
        np.testing.assert_allclose(a, b, atol=1e-7)
