"""The CAGrad toy problem: the batched path against the per-step path, and the paper's endings."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from mtl_lab import toy
from mtl_lab.toy import batched as toy_batched
from mtl_lab.weighting import create
from mtl_lab.weighting.base import StepContext

VECTORISED = list(toy_batched.VECTORISED)
BALANCED = (0.0, -8.3551)  # the mean-loss optimum on the Pareto set


@pytest.fixture(scope="module")
def paper_runs() -> dict[str, list[toy.Trajectory]]:
    """Mean gradient and CAGrad at the module's defaults (the paper's settings)."""
    return toy.trajectories(["equal", "cagrad"])


def test_the_defaults_are_the_papers_settings():
    assert (toy.PAPER_LR, toy.PAPER_STEPS) == (1e-3, 100_000)
    assert toy.PAPER_STARTS == ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0))
    for function in (toy.trajectories, toy.method_paths):
        params = inspect.signature(function).parameters
        assert (params["steps"].default, params["lr"].default, params["optimizer"].default) == (100_000, 1e-3, "adam")
        assert params["starts"].default == toy.PAPER_STARTS


def test_closed_form_gradients_equal_autograd():
    gen = torch.Generator().manual_seed(0)
    points = (torch.rand(400, 2, generator=gen, dtype=torch.float64) - 0.5) * 22
    # points on and next to the valley floors |u_t| < 5e-6, where the log is floored
    x2 = torch.tensor([0.5, 1.0, 3.0], dtype=torch.float64)
    floor1 = torch.stack([2 * (torch.tanh(x2) - 3.5) + 1e-7, x2], 1)
    floor2 = torch.stack([2 * (3.5 - torch.tanh(x2)) - 1e-7, x2], 1)
    points = torch.cat([points, floor1, floor2, torch.tensor([[0.0, 0.0], [1.0, -1e-9]], dtype=torch.float64)])
    L, G = toy.toy_gradients(points)
    closed = np.array([toy_batched.losses_and_gradients(x1, x2) for x1, x2 in points.tolist()])  # [N, 6]
    np.testing.assert_allclose(closed[:, :2], L.numpy(), rtol=1e-13, atol=1e-12)
    np.testing.assert_allclose(closed[:, 2:].reshape(-1, 2, 2), G.numpy(), rtol=1e-12, atol=1e-12)


def random_gradients(count: int, seed: int) -> np.ndarray:
    """Gramians of two random 2-d gradients with norms from 1e-2 to 1e2.

    (The closed forms lose digits to cancellation when the two norms differ by more than about 1e4;
    on the toy they differ by far less.)
    """
    rng = np.random.default_rng(seed)
    G = rng.standard_normal((count, 2, 2)) * 10.0 ** rng.uniform(-2, 2, (count, 2, 1))
    nearly_opposed = -G[: count // 4, :1] * 10.0 ** rng.uniform(-2, 2, (count // 4, 1, 1))
    G[: count // 4, 1:] = nearly_opposed + 1e-9 * rng.standard_normal((count // 4, 1, 2))  # near-stationary
    return G


@pytest.mark.parametrize("method,options", [("mgda", {}), ("pcgrad", {}), ("cagrad", {}), ("cagrad", {"c": 0.2}),
                                            ("cagrad", {"c": 2.0, "rescale": 0}), ("cagrad", {"rescale": 2})])
def test_closed_form_weights_equal_the_methods_solvers(method, options):
    G = random_gradients(400, seed=1)
    K = G @ G.transpose(0, 2, 1)
    cross2 = (G[:, 0, 0] * G[:, 1, 1] - G[:, 0, 1] * G[:, 1, 0]) ** 2
    weights_of = toy_batched.COMBINE[method](options)
    w1, w2 = np.array([weights_of(k[0][0], k[0][1], k[1][1], c2) for k, c2 in zip(K.tolist(), cross2.tolist())]).T
    weighting = create(method, **options)
    weighting.reset(["L1", "L2"])
    handed_over = np.isnan(w1) | np.isnan(w2)  # to the method's own solver: opposed gradients, non-unique optimum
    assert handed_over.sum() <= len(K) // 4 and not handed_over[len(K) // 4:].any()
    for k in np.flatnonzero(~handed_over):
        ref = weighting.combine(torch.ones(2, dtype=torch.float64), torch.from_numpy(K[k]), StepContext()).weights
        # relative to the weights' size; the solvers' own tolerances (1e-10 ridge, 1e-12 KKT) are the limit
        assert [w1[k], w2[k]] == pytest.approx(ref.tolist(), rel=1e-8, abs=1e-8 * float(ref.abs().max()))


@pytest.mark.parametrize("method,options", [("mgda", {}), ("pcgrad", {}), ("cagrad", {}), ("cagrad", {"c": 2.0})])
@pytest.mark.parametrize("g1,g2", [((1.0, 2.0), (1.0, 2.0)), ((1.0, 2.0), (0.0, 0.0)), ((0.0, 0.0), (3.0, -1.0)),
                                   ((0.0, 0.0), (0.0, 0.0))])
def test_degenerate_gradients_are_handed_to_the_methods_solver(method, options, g1, g2):
    """Equal or zero gradients: a closed form either gives the solver's weights or hands the point over
    (NaN, or a division by zero), and the solver then answers."""
    k11, k12, k22 = g1[0] ** 2 + g1[1] ** 2, g1[0] * g2[0] + g1[1] * g2[1], g2[0] ** 2 + g2[1] ** 2
    cross2 = (g1[0] * g2[1] - g1[1] * g2[0]) ** 2
    solver = toy_batched.solver_fallback(method, options, k11, k12, k22)
    assert all(np.isfinite(solver))
    try:
        closed = toy_batched.COMBINE[method](options)(k11, k12, k22, cross2)
    except ZeroDivisionError:
        return
    assert np.isnan(closed).any() or closed == pytest.approx(solver, rel=1e-8, abs=1e-8)


@pytest.mark.parametrize("undefined", [ZeroDivisionError, float("nan")])
def test_a_step_where_the_closed_form_is_undefined_takes_the_solvers_weights(undefined):
    def weights_of(k11: float, k12: float, k22: float, cross2: float) -> tuple[float, float]:
        if isinstance(undefined, type):
            raise undefined
        return undefined, undefined

    walk = toy_batched.Walk("cagrad", 1.0, 2.0)
    toy_batched.advance(walk, [(True, 1e-3, 1.0)], weights_of, adam=False, options={"c": 0.3})
    _, _, g11, g12, g21, g22 = toy_batched.losses_and_gradients(1.0, 2.0)
    w = toy_batched.solver_fallback("cagrad", {"c": 0.3}, g11 * g11 + g12 * g12, g11 * g21 + g12 * g22,
                                    g21 * g21 + g22 * g22)
    assert walk.weights == list(w) and walk.directions == [w[0] * g11 + w[1] * g21, w[0] * g12 + w[1] * g22]
    assert (walk.x1, walk.x2) == (1.0 - 1e-3 * walk.directions[0], 2.0 - 1e-3 * walk.directions[1])


@pytest.mark.parametrize("method", VECTORISED)
def test_batched_path_equals_the_per_step_path_on_2000_steps(method):
    fast = toy.method_paths(method, steps=2000, max_points=3000)
    slow = toy.method_paths(method, steps=2000, max_points=3000, vectorised=False)
    # the same numbers to rounding: closed forms against the methods' solvers (CAGrad's polished to its
    # KKT conditions), closed-form gradients against autograd, Adam written out against torch.optim
    for a, b in zip(fast, slow):
        assert a.points.shape == b.points.shape == (2001, 2) and a.weights.shape == b.weights.shape == (2000, 2)
        torch.testing.assert_close(a.points, b.points, rtol=0, atol=1e-12)
        torch.testing.assert_close(a.losses, b.losses, rtol=0, atol=1e-10)
        torch.testing.assert_close(a.weights, b.weights, rtol=0, atol=1e-10)
        torch.testing.assert_close(a.directions, b.directions, rtol=0, atol=1e-10)
        assert torch.equal(a.step_index, b.step_index) and not a.error and not b.error


def test_both_paths_keep_the_same_rows_and_sgd_agrees():
    # (plain SGD at lr 0.02 bounces across the log valleys: there rounding grows to 1e-6 in 1 000 steps)
    fast = toy.trajectories(["mgda", "pcgrad"], steps=1001, lr=0.005, optimizer="sgd", max_points=101)
    for method, paths in fast.items():
        slow = toy.method_paths(method, steps=1001, lr=0.005, optimizer="sgd", max_points=101, vectorised=False)
        for a, b in zip(paths, slow):
            assert a.step_index.tolist() == b.step_index.tolist() == [*range(0, 1001, 11), 1001]
            assert a.points.shape == (92, 2) and a.weights.shape == (91, 2) and a.steps == 1001
            torch.testing.assert_close(a.points, b.points, rtol=0, atol=1e-10)
            torch.testing.assert_close(a.points_upto(500), a.points[:46])


def test_paths_keep_at_most_max_points(paper_runs):
    for paths in paper_runs.values():
        for path in paths:
            assert path.points.shape[0] <= toy.MAX_POINTS and path.steps == toy.PAPER_STEPS
            assert path.step_index[0] == 0 and path.step_index[-1] == toy.PAPER_STEPS


def test_at_the_papers_settings_the_mean_gradient_stays_in_the_valleys(paper_runs):
    ends = [p.end for p in paper_runs["equal"]]
    # the valley floors above the axis; where along them the path stops after 100 000 steps is a
    # matter of the slow drift (0.05 in x1 changes L by < 1e-2), hence the tolerance
    assert ends[0] == pytest.approx((-5.04, 2.13), abs=0.1)
    assert ends[2] == pytest.approx((5.04, 2.32), abs=0.1)
    assert ends[1] == pytest.approx(BALANCED, abs=0.01)  # from below the axis it reaches the balanced point


def test_at_the_papers_settings_cagrad_reaches_the_balanced_point_from_every_start(paper_runs):
    for path in paper_runs["cagrad"]:
        distance = float(torch.tensor(path.end).sub(torch.tensor(BALANCED)).norm())
        assert distance < 0.1, (path.start, path.end)


def test_a_short_fast_run_tells_another_story():
    """The lab's old default (Adam, lr 0.05, 1000 steps): the mean gradient leaves the valleys."""
    runs = toy.trajectories(["equal", "cagrad"], steps=1000, lr=0.05)
    assert runs["equal"][0].end[1] < 0 and runs["equal"][2].end[1] < 0
    assert max(float(torch.tensor(p.end).sub(torch.tensor(BALANCED)).norm()) for p in runs["cagrad"]) > 1


@pytest.mark.parametrize("kwargs,message", [
    ({"methods": ["nope"]}, "unknown method(s) ['nope']"),
    ({"methods": "equal"}, "non-empty list"),
    ({"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
    ({"lr": -1}, "got -1"),
    ({"steps": 0}, "steps must be a positive int, got 0"),
    ({"steps": 10.5}, "got 10.5"),
    ({"starts": ((1.0,),)}, "start (1.0,) is not a point"),
    ({"starts": ((float("nan"), 1.0),)}, "is not a point (x1, x2) of two finite numbers"),
    ({"starts": ()}, "starts is empty"),
    ({"optimizer": "rmsprop"}, "optimizer 'rmsprop' is not one of"),
    ({"options": {"cagrad": {"c": -1}}}, "c must be a finite number in [0, 1e+06], got -1"),
    ({"options": {"mgda": {}}}, "not among the methods"),
    ({"max_points": 1}, "max_points must be an int ≥ 2"),
])
def test_bad_options_raise_value_errors_naming_the_value(kwargs, message):
    args = {"methods": ["equal", "cagrad"], "steps": 10, **kwargs}
    with pytest.raises(ValueError) as info:
        toy.trajectories(**args)
    assert message in str(info.value)


def test_progress_is_reported_and_stop_ends_every_path_where_it_is():
    seen: list[float] = []

    def progress(fraction: float) -> bool:
        seen.append(fraction)
        return fraction < 0.25

    runs = toy.trajectories(["equal", "cagrad", "nash_mtl"], steps=4000, max_points=41, progress=progress)
    assert seen == sorted(seen) and 0 < seen[0] and seen[-1] >= 0.25
    assert set(runs) == {"equal", "cagrad"}  # stopped before the per-step method started
    full = toy.trajectories(["equal"], steps=4000, max_points=41)["equal"]
    for path, ref in zip(runs["equal"], full):
        stop = path.steps
        assert 0 < stop < 4000 and path.step_index[-1] == stop and path.weights.shape[0] == path.points.shape[0] - 1
        kept = int((ref.step_index < stop).sum())
        torch.testing.assert_close(path.points[:kept], ref.points[:kept])
    calls = []
    slow = toy.method_paths("nash_mtl", steps=1000, progress=lambda f: calls.append(f) or len(calls) < 3)
    assert all(p.steps == 3 * toy.PROGRESS_EVERY and p.points.shape[0] == 3 * toy.PROGRESS_EVERY + 1 for p in slow)


def test_a_failing_method_keeps_its_path_up_to_the_failure():
    failed = toy.trajectory("inverse_loss", (-8.5, -5.0), steps=5)
    assert "needs finite losses" in failed.error and failed.steps == 0 and failed.points.shape == (1, 2)
    shifted = toy.trajectory("inverse_loss", (-8.5, -5.0), steps=50, loss_shift=40.0, max_points=11)
    assert not shifted.error and shifted.steps == 50 and shifted.points.shape == (11, 2)


# --------------------------------------------------------------------------- the landscape widget


def widget_count() -> int:
    import warnings

    import ipywidgets

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the registry's public name is deprecated in 8.x
        return len(ipywidgets.Widget.widgets)


def layout_widths(widget) -> list[str]:
    """Every ``width`` set on the widget tree's layouts."""
    out = [widget.layout.width] if getattr(widget.layout, "width", None) else []
    for child in getattr(widget, "children", ()):
        out += layout_widths(child)
    return out


def test_landscape_defaults_layout_repr_and_synchronous_run():
    from mtl_lab.widgets.landscape import ToyLandscape

    view = ToyLandscape(methods=("equal", "cagrad"), steps=300, lr=0.1, name="test-landscape")
    assert view.controls.layout.flex_flow == "row wrap"
    for width in layout_widths(view.widget):
        assert not width.endswith("px") or int(width[:-2]) <= 460, width
    assert repr(view) == "ToyLandscape(methods=['equal', 'cagrad'], starts=3)" and view.image.value
    runs = view.run()
    assert set(runs) == {"equal", "cagrad"} and all(p.steps == 300 for p in runs["cagrad"])
    assert view.step_w.max == 300 and "done" in view.status.value and "cagrad" in view.legend.value
    reference = toy.trajectories(["equal", "cagrad"], steps=300, lr=0.1)
    assert [p.end for p in runs["cagrad"]] == [p.end for p in reference["cagrad"]]
    view.step_w.value = 100  # replays up to step 100
    view.close()
    defaults = ToyLandscape(name="test-landscape")
    assert (defaults.steps_w.value, defaults.lr_w.value) == (toy.PAPER_STEPS, toy.PAPER_LR)
    defaults.close()


def test_landscape_shows_bad_options_instead_of_raising():
    from mtl_lab.widgets.landscape import ToyLandscape

    view = ToyLandscape(methods=("equal",), steps=50, name="test-landscape")
    for widget, value, message in [(view.lr_w, 0.0, "lr must be a finite number &gt; 0, got 0.0"),
                                   (view.steps_w, 0, "steps must be a positive int, got 0")]:
        good = widget.value
        widget.value = value
        assert view.run() == {} and message in view.status.value
        view.start()
        assert view.thread is None and message in view.status.value
        widget.value = good
    for box in view.start_w.values():
        box.value = False
    view.run()
    assert "starts is empty" in view.status.value
    with pytest.raises(ValueError, match="unknown method"):
        ToyLandscape(methods=("nope",), name="test-landscape")
    view.close()


def test_landscape_computes_in_the_background_and_stops_within_half_a_second():
    from mtl_lab.widgets.landscape import ToyLandscape

    view = ToyLandscape(methods=("equal", "nash_mtl"), steps=toy.PAPER_STEPS, name="test-landscape")
    view.start()
    assert view.thread.is_alive() and view.compute_b.disabled and not view.stop_b.disabled
    # the kernel's thread is free meanwhile; wait (by progress, not by a clock) until the run is under way
    while view.progress_w.value == 0.0 and view.thread.is_alive():
        view.thread.join(0.05)
    view.stop()
    view.wait(timeout=30)  # Stop is checked every few hundred steps: the bound asserted is "it ends"
    assert not view.thread.is_alive() and "stopped" in view.status.value
    assert 0 < view.computed_steps < toy.PAPER_STEPS and not view.compute_b.disabled
    view.close()


def test_closing_landscapes_frees_every_widget_they_made():
    from mtl_lab.widgets.landscape import ToyLandscape

    ToyLandscape(name="test-warm").close()  # the shared background (grid, Pareto set) is made once
    before = widget_count()
    for i in range(50):
        ToyLandscape(name=f"test-landscape-{i}").close()
    assert widget_count() == before
