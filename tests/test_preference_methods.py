"""Preference-conditioned methods (EPO, Pareto MTL) on two quadratics whose Pareto set is known exactly.

``L_1(x) = ½‖x − a‖²`` and ``L_2(x) = ½‖x − b‖²``: the Pareto set is the segment ``x(s) = a + s(b − a)``,
``s ∈ [0, 1]``, where ``L_1 = ½ s² D²`` and ``L_2 = ½ (1 − s)² D²`` (``D = ‖b − a‖``).

* EPO's ray ``r_1 L_1 = r_2 L_2`` meets the segment at ``s = √r_2 / (√r_1 + √r_2)`` (closed form).
* Pareto MTL's sector of ``u_k`` is the set of loss vectors closer in angle to ``u_k`` than to the other
  reference vectors; on the segment it is an interval of ``s`` computed here from the angles.

Each run descends from a point off the segment with the method's weights (plain gradient steps).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_lab.weighting import METHODS, StepContext, aggregate, available, create
from mtl_lab.weighting.epo import non_uniformity
from mtl_lab.weighting.pareto_mtl import reference_vectors

A = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
B = torch.tensor([2.0, 1.0, -1.0], dtype=torch.float64)
D2 = float(((B - A) ** 2).sum())


def losses_and_grads(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    G = torch.stack([x - A, x - B])
    return 0.5 * (G**2).sum(dim=1), G


def descend(method: str, start, steps: int = 3000, lr: float = 0.05, steps_per_epoch: int = 100, **options):
    weighting = create(method, **options)
    weighting.reset(["t1", "t2"])
    x = torch.tensor(start, dtype=torch.float64)
    modes = []
    for step in range(steps):
        L, G = losses_and_grads(x)
        comb = weighting.combine(L, G @ G.T, StepContext(step=step, epoch=step // steps_per_epoch))
        modes.append(comb.info.get("mode", comb.info.get("phase")))
        x = x - lr * comb.weights @ G
    return x, modes


def segment_position(x: torch.Tensor) -> tuple[float, float]:
    """``s`` of the closest segment point and the distance to it."""
    s = float((x - A) @ (B - A)) / D2
    return s, float(torch.linalg.norm(x - (A + s * (B - A))))


@pytest.mark.parametrize(("r", "start"), [((1.0, 4.0), (3.0, -2.0, 2.0)), ((3.0, 1.0), (-1.0, 2.0, 1.0)),
                                          ((0.2, 1.0), (3.0, -2.0, 2.0)), ((1.0, 1.0), (-1.0, 2.0, 1.0))])
def test_epo_ends_on_its_ray(r, start):
    # eps = 1e-6 on the non-uniformity μ = KL(l̂ ‖ 1/T) leaves l̂ within about √(2·eps) of uniform: the
    # descent mode stops correcting there, so s is within ~3e-4 of the ray (5e-4 allowed)
    x, modes = descend("epo", start, steps=300, lr=0.1, preference=list(r), eps=1e-6)
    s, distance = segment_position(x)
    expected = math.sqrt(r[1]) / (math.sqrt(r[0]) + math.sqrt(r[1]))
    assert distance < 1e-8  # Pareto-optimal
    assert s == pytest.approx(expected, abs=5e-4)  # on the ray
    L, _ = losses_and_grads(x)
    assert r[0] * float(L[0]) == pytest.approx(r[1] * float(L[1]), rel=5e-3)
    assert "balance" in modes and modes[-1] == "descent"


def test_epo_default_eps_stops_within_its_tolerance():
    x, _ = descend("epo", (3.0, -2.0, 2.0), steps=300, lr=0.1, preference=[1.0, 4.0])
    L, _ = losses_and_grads(x)
    _, mu, _ = non_uniformity(np.array([1.0, 4.0]) * L.numpy())
    assert segment_position(x)[1] < 1e-8 and mu <= 3e-4  # a few steps' worth beyond eps = 1e-4


def test_epo_step_by_hand():
    # two orthogonal gradients, losses off the ray: the balance LP puts all weight on the task above it
    L = torch.tensor([2.0, 1.0], dtype=torch.float64)
    K = torch.eye(2, dtype=torch.float64)
    l_hat, mu, shifted = non_uniformity(np.array([2.0, 1.0]))
    np.testing.assert_allclose(l_hat, [2 / 3, 1 / 3])
    assert mu == pytest.approx(2 / 3 * math.log(4 / 3) + 1 / 3 * math.log(2 / 3))
    # a = log(2 l̂) − μ: a_1 > 0 > a_2; Ca = a; J = {1}; the max-rl task is 1 → (Cα)_1 ≥ 0; task 2 has
    # (Cα)_2 ≥ a_2 (< 0): maximise α_1 a_1 + α_2 a_2 → α = (1, 0), w = 2α
    d = aggregate("epo", torch.eye(2, dtype=torch.float64), L)
    torch.testing.assert_close(d, torch.tensor([2.0, 0.0], dtype=torch.float64))
    # on the ray (μ = 0): descent LP maximises 1ᵀCα over the simplex with Cα ≥ 0 — any α for C = I; with
    # C = [[1, .5], [.5, 2]] the best vertex is α = (0, 1) (1ᵀCα = 2.5 against 1.5)
    comb = create("epo")
    comb.reset(["a", "b"])
    out = comb.combine(torch.tensor([1.0, 1.0], dtype=torch.float64),
                       torch.tensor([[1.0, 0.5], [0.5, 2.0]], dtype=torch.float64), StepContext())
    assert out.info["mode"] == "descent"
    torch.testing.assert_close(out.weights, torch.tensor([0.0, 2.0], dtype=torch.float64))
    assert K.shape == (2, 2)


def sector_interval(u: np.ndarray, references: np.ndarray, n: int = 20001) -> tuple[float, float]:
    """The ``s`` of the segment whose loss vector is closest in angle to ``u`` (numerically, fine grid)."""
    s = np.linspace(0.0, 1.0, n)
    L = np.stack([0.5 * s**2 * D2, 0.5 * (1 - s) ** 2 * D2], axis=1)
    L = L / np.linalg.norm(L, axis=1, keepdims=True)
    own = L @ u
    best_other = (L @ references.T).max(axis=1)
    inside = s[own >= best_other - 1e-12]
    return float(inside.min()), float(inside.max())


@pytest.mark.parametrize("k", [0, 1, 2, 3, 4])
def test_pareto_mtl_ends_in_its_sector(k):
    R = reference_vectors(2, 4)
    u = R[k]
    others = np.delete(R, k, axis=0)
    low, high = sector_interval(u, others)
    for start in [(3.0, -2.0, 2.0), (-1.0, 2.0, 1.0), (1.0, 0.5, -0.5)]:
        x, phases = descend("pareto_mtl", start, steps=400, lr=0.1, preference=u.tolist())
        s, distance = segment_position(x)
        assert distance < 1e-3  # Pareto-optimal
        assert low - 1e-3 <= s <= high + 1e-3, (k, start, s, (low, high))
        assert phases[-1] == "main"


def test_pareto_mtl_initial_phase_descends_the_active_constraints():
    # the loss vector (1, 0) is outside the sector of u = (0, 1): the constraint row u_j − u_k of each
    # other reference with a positive product is active; the initial step uses only their gradients
    method = create("pareto_mtl", preference=[0.0, 1.0], divisions=1)  # references (1, 0) and (0, 1)
    method.reset(["a", "b"])
    out = method.combine(torch.tensor([1.0, 0.0], dtype=torch.float64), torch.eye(2, dtype=torch.float64),
                         StepContext())
    assert out.info["phase"] == "initial" and out.info["active_constraints"] == 1
    # one active row W = (1, 0) − (0, 1) = (1, −1): weights = W (λ = 1): lower L_a, raise L_b
    torch.testing.assert_close(out.weights, torch.tensor([1.0, -1.0], dtype=torch.float64))
    # inside the sector: the main phase, MGDA on K = I (λ = ½, ½) rescaled to Σ|w| = 2
    out = method.combine(torch.tensor([0.0, 1.0], dtype=torch.float64), torch.eye(2, dtype=torch.float64),
                         StepContext())
    assert out.info["phase"] == "main" and out.info["active_constraints"] == 0
    torch.testing.assert_close(out.weights, torch.tensor([1.0, 1.0], dtype=torch.float64))


def test_registry_and_errors_name_the_bad_value():
    names = [n for n, _ in available()]
    assert "epo" in names and "pareto_mtl" in names and METHODS["epo"].requires == "gramian"
    G = torch.tensor([[1.0, 0.0], [0.5, 1.0]], dtype=torch.float64)
    for method in ("epo", "pareto_mtl"):
        with pytest.raises(ValueError, match="uses the loss values"):
            aggregate(method, G)
        with pytest.raises(ValueError, match="preference has 3 entries"):
            aggregate(method, G, [1.0, 1.0], preference=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="must be > 0"):
        aggregate("epo", G, [1.0, 1.0], preference=[1.0, 0.0])
    with pytest.raises(ValueError, match="logarithm of the losses"):
        aggregate("epo", G, [1.0, 0.0])
    with pytest.raises(ValueError, match="eps must be a finite number ≥ 0"):
        create("epo", eps=-1.0)
    with pytest.raises(ValueError, match=r"divisions must be an int in \[1, 64\]"):
        create("pareto_mtl", divisions=0)
    with pytest.raises(ValueError, match="init_epochs"):
        create("pareto_mtl", init_epochs=-1)
    assert reference_vectors(3, 2).shape == (6, 3) and reference_vectors(3, 4).shape == (15, 3)
    np.testing.assert_allclose(np.linalg.norm(reference_vectors(3, 4), axis=1), 1.0)


# ------------------------------------------------------------------ the toy landscape


def test_toy_one_run_per_preference_lands_on_its_ray():
    from mtl_lab.toy import preferences as toy_preferences

    paths = toy_preferences.preference_paths("epo", [[1.0, 3.0], [3.0, 1.0]], steps=400)
    assert all(not p.error for p in paths)
    assert [toy_preferences.angle_to_ray(p, "epo") for p in paths] == pytest.approx([0.0, 0.0], abs=1.5)
    # the two runs end on opposite sides of the balanced point: L1 < L2 for r = (3, 1)
    low, high = (p.losses[-1] for p in paths)
    assert float(low[0]) > float(low[1]) and float(high[0]) < float(high[1])
    fig = toy_preferences.preference_figure(paths, "epo", pareto=torch.zeros(2, 2, dtype=torch.float64))
    assert len(fig.axes[1].get_legend().get_texts()) == 3  # the front and one entry per preference


def test_toy_pareto_mtl_ends_in_its_sector():
    from mtl_lab.toy import preferences as toy_preferences

    R = reference_vectors(2, 4).tolist()  # 22.5° apart: a sector reaches 11.25° either side of its vector
    paths = toy_preferences.preference_paths("pareto_mtl", [R[1], R[3]], steps=600)
    for path in paths:
        assert toy_preferences.angle_to_ray(path, "pareto_mtl") <= 11.25 + 0.1
    with pytest.raises(ValueError, match="takes no preference"):
        toy_preferences.ray_direction("mgda", [1.0, 1.0])


def test_the_lab_panel_offers_a_preference_and_reads_it_back():
    pytest.importorskip("ipywidgets")
    from mtl_lab.widgets.config import LabConfig
    from mtl_lab.widgets.lab import Lab

    small = {"data": "linnerud", "epochs": 1, "baselines": False}
    lab = Lab(LabConfig(method="epo", method_options={"preference": [1.0, 2.0, 0.5]}, **small), name="test-epo")
    assert set(lab.option_widgets) == {"preference", "eps"}
    assert lab.export_config()["method_options"]["preference"] == [1.0, 2.0, 0.5]
    lab.option_widgets["preference"].value = ""  # empty: the default (None, every task 1)
    assert "preference" not in lab.export_config()["method_options"]
    lab.ui.method_w.value = "pareto_mtl"
    assert set(lab.option_widgets) == {"preference", "divisions", "init_epochs"}
    lab.close()
