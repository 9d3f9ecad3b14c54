"""Pareto-set learning: the preference sampler, the conditioned model, the sampled COSMOS loss, the front.

* the sampler is seeded, draws Dirichlet points, and resumes exactly from its state (also through the
  model's ``state_dict`` and a Trainer checkpoint);
* conditioning changes the outputs (both ways of feeding ``r``), and training and evaluation modes read the
  right preference;
* with a fixed preference the sampled loss's weights are COSMOS's (weighting/cosmos.py) to 1e-12;
* a tiny model trained once on two conflicting regression targets moves monotonically along its front as
  the preference moves; ``compare_fronts`` scores it against a sweep.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData
from mtl_lab.models.preference import PreferenceSampler, check_preference
from mtl_lab.models.preference_conditioned import PreferenceConditioned
from mtl_lab.studies.pareto_set import build_pareto_set_trainer, compare_fronts, learned_front
from mtl_lab.studies.sweep import SweepPoint, SweepResult
from mtl_lab.weighting import StepContext, create
from mtl_lab.weighting.cosmos_sampled import SampledCOSMOS


def conflicting(n: int = 600, seed: int = 0) -> MultiTaskData:
    """Two regression targets that one scalar representation cannot both fit: ``y_a = x_1``, ``y_b = x_2``."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    targets = {"a": x[:, :1].clone(), "b": x[:, 1:2].clone()}
    return MultiTaskData.from_tensors(x, targets, [tasks.regression("a"), tasks.regression("b")], seed=seed)


def test_sampler_is_seeded_on_the_simplex_and_resumes():
    a, b = PreferenceSampler(3, alpha=0.7, seed=5), PreferenceSampler(3, alpha=0.7, seed=5)
    first = [a.draw().tolist() for _ in range(4)]
    assert first == [b.draw().tolist() for _ in range(4)]
    assert all(min(r) >= 0 and abs(sum(r) - 1) < 1e-12 for r in first)
    assert first != [PreferenceSampler(3, alpha=0.7, seed=6).draw().tolist() for _ in range(4)]
    state = a.state_dict()
    later = [a.draw().tolist() for _ in range(3)]
    c = PreferenceSampler(3, alpha=0.7, seed=99)
    c.load_state_dict(state)
    assert c.current.tolist() == first[-1]
    assert [c.draw().tolist() for _ in range(3)] == later
    with pytest.raises(ValueError, match="alpha=0.7"):
        PreferenceSampler(3, alpha=1.0).load_state_dict(state)


def test_sampler_alpha_sets_how_far_preferences_spread():
    def spread(alpha):
        s = PreferenceSampler(2, alpha=alpha, seed=0)
        return float(np.std([s.draw()[0].item() for _ in range(2000)]))

    assert spread(0.3) > spread(1.0) > spread(5.0)  # Var = 1 / (4 (2α + 1)) for two tasks
    assert abs(spread(1.0) - (1 / 12) ** 0.5) < 0.01  # α = 1: uniform on [0, 1]


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), True, "1"])
def test_sampler_refuses_a_bad_alpha(bad):
    with pytest.raises(ValueError, match="alpha must be a finite number > 0"):
        PreferenceSampler(2, alpha=bad)


def test_check_preference_normalises_and_names_bad_values():
    assert check_preference([1, 3], 2).tolist() == [0.25, 0.75]
    with pytest.raises(ValueError, match="has 3 entries, the data has 2 tasks"):
        check_preference([1, 1, 1], 2)
    with pytest.raises(ValueError, match="at least one weight must be > 0"):
        check_preference([0, 0], 2)
    with pytest.raises(ValueError, match="must be finite and ≥ 0, got -1.0"):
        check_preference([-1, 2], 2)


@pytest.mark.parametrize("condition", ["input", "every_layer"])
def test_conditioning_changes_the_outputs(condition):
    data = conflicting()
    torch.manual_seed(0)
    model = PreferenceConditioned(list(data.tasks), data.input_shape, PreferenceSampler(2), (8, 4), condition).eval()
    x = data.val.x[:16]
    model.set_preference([0.9, 0.1])
    one = model(x)
    model.set_preference([0.1, 0.9])
    other = model(x)
    for t in ("a", "b"):
        assert (one[t] - other[t]).abs().max() > 1e-4
    model.set_preference([9, 1])  # the same preference as [0.9, 0.1]
    assert torch.allclose(model(x)["a"], one["a"])
    readers = [type(layer).__name__ for layer in model.layers]
    assert readers == (["PreferenceLayer", "PlainLayer"] if condition == "input" else ["PreferenceLayer"] * 2)


def test_training_mode_reads_the_sampler_and_evaluation_mode_the_set_preference():
    data = conflicting()
    sampler = PreferenceSampler(2, seed=3)
    model = PreferenceConditioned(list(data.tasks), data.input_shape, sampler, (8,))
    model.set_preference([0.2, 0.8])
    assert model.train().preference().tolist() == sampler.current.float().tolist()
    assert torch.allclose(model.eval().preference(), torch.tensor([0.2, 0.8]))
    before = sampler.current.clone()
    model.after_step(0)
    assert not torch.equal(sampler.current, before)


def test_model_refuses_a_sampler_for_other_tasks_and_a_bad_condition():
    data = conflicting()
    with pytest.raises(ValueError, match="PreferenceSampler for 2 tasks"):
        PreferenceConditioned(list(data.tasks), data.input_shape, PreferenceSampler(3))
    with pytest.raises(ValueError, match="condition"):
        PreferenceConditioned(list(data.tasks), data.input_shape, PreferenceSampler(2), condition="output")


@pytest.mark.parametrize("penalty", [0.0, 0.5, 2.0])
def test_with_a_fixed_preference_the_loss_is_cosmos(penalty):
    sampler = PreferenceSampler(3, seed=1)
    sampled = SampledCOSMOS(sampler, penalty)
    sampled.reset(["x", "y", "z"])
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        r = sampler.draw()
        losses = torch.rand(3, generator=g, dtype=torch.float64) + 0.05
        fixed = create("cosmos", preference=r.tolist(), penalty=penalty)
        fixed.reset(["x", "y", "z"])
        got = sampled.combine(losses, None, StepContext()).weights
        want = fixed.combine(losses, None, StepContext()).weights
        assert torch.allclose(got, want, atol=1e-12, rtol=0)


def test_sampled_cosmos_checks_its_options_and_tasks():
    with pytest.raises(ValueError, match="penalty"):
        SampledCOSMOS(PreferenceSampler(2), penalty=-1.0)
    with pytest.raises(ValueError, match="for 2 tasks, the data has 3"):
        SampledCOSMOS(PreferenceSampler(2)).reset(["a", "b", "c"])


def trained(penalty: float, seed: int = 0, epochs: int = 40):
    data = conflicting()
    trainer = build_pareto_set_trainer(data, alpha=1.0, penalty=penalty, hidden=(16, 1), seed=seed, epochs=epochs,
                                       lr=1e-2, batch_size=64, device="cpu", diagnostics_every=0,
                                       train_metrics=False)
    trainer.fit()
    return data, trainer


GRID = [[w, 1 - w] for w in (0.1, 0.3, 0.5, 0.7, 0.9)]


def test_the_learned_front_moves_monotonically_with_the_preference():
    """One scalar representation cannot fit both targets: the model must trade; with the linear term
    alone (λ = 0) a larger ``r_a`` buys task a a smaller error, step by step along the grid."""
    data, trainer = trained(penalty=0.0)
    points = learned_front(trainer.model, data, GRID)
    a, b = [p["a"] for p in points], [p["b"] for p in points]
    assert all(x > y for x, y in zip(a, a[1:])), f"task a's error should fall as its preference rises: {a}"
    assert all(x < y for x, y in zip(b, b[1:])), f"task b's error should rise as its preference falls: {b}"
    assert a[0] - a[-1] > 0.5 and b[-1] - b[0] > 0.5, (a, b)  # it moves along the front, not in place
    assert trainer.model.evaluation_preference.tolist() == [0.5, 0.5]  # put back afterwards


def test_the_cosine_term_pulls_the_losses_into_proportion_with_r():
    """COSMOS's ``−λ cos(r, L)`` rewards ``L ∝ r``: a larger ``r_a`` asks for a *larger* share of loss on
    task a, against the linear term. At λ = 1 on this problem the cosine wins: the front runs the other way
    (the sign convention notebook 13 explains)."""
    data, trainer = trained(penalty=1.0)
    a = [p["a"] for p in learned_front(trainer.model, data, GRID)]
    assert all(x < y for x, y in zip(a, a[1:])), f"at λ = 1 task a's error should rise with r_a: {a}"


def test_a_resumed_run_is_the_uninterrupted_one(tmp_path):
    data = conflicting()

    def build():
        return build_pareto_set_trainer(data, alpha=0.8, penalty=1.0, hidden=(8, 2), seed=4, epochs=2, lr=1e-2,
                                        batch_size=64, device="cpu", diagnostics_every=0, train_metrics=False)

    straight = build()
    straight.fit()
    first = build()
    first.fit(max_steps=5)
    first.save(tmp_path / "run.pt")
    second = build()
    second.load(tmp_path / "run.pt")
    assert second.model.sampler.draws == first.model.sampler.draws
    second.fit()
    assert second.model.sampler.current.tolist() == straight.model.sampler.current.tolist()
    for p, q in zip(second.model.parameters(), straight.model.parameters()):
        assert torch.equal(p, q)


def test_the_trainer_and_the_model_share_one_sampler():
    trainer = build_pareto_set_trainer(conflicting(), seed=2, epochs=1, device="cpu")
    assert trainer.model.sampler is trainer.weighting.sampler
    assert trainer.history.meta["method"]["name"] == "cosmos_sampled"


def test_compare_fronts_scores_both_sets_on_one_reference():
    up = {"a": False, "b": False}
    sweep = SweepResult(["a", "b"], up, {"a": "mse", "b": "mse"}, "val",
                        static=[SweepPoint("s1", "static", [0.5, 0.5], {"a": 2.0, "b": 2.0}),
                                SweepPoint("s2", "static", [0.9, 0.1], {"a": 1.0, "b": 4.0})])
    learned = [{"a": 1.0, "b": 3.0}, {"a": 3.0, "b": 1.0}]
    c = compare_fronts(learned, sweep, margin=0.0)
    assert c.reference == [3.0, 4.0]
    assert c.hv_learned == pytest.approx(2.0)  # boxes [1,3]×[3,4] and [3,3]×[1,4]: 2 + 0
    assert c.hv_sweep == pytest.approx(2.0)  # [2,3]×[2,4] and [1,3]×[4,4]: 2 + 0
    assert sorted(map(tuple, c.front)) == [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0)]
    assert c.igd_learned == pytest.approx((0 + 1.0 + 0) / 3)  # (2, 2) is 1 away from (1, 3) or (3, 1)
    assert c.igd_sweep == pytest.approx((1.0 + 0 + 1.0) / 3)  # (1, 3) and (3, 1): each 1 worse on one task
    assert "ratio 1.000" in c.text()
    worst = compare_fronts([{"a": 1.0, "b": 1.0}], sweep, margin=0.0)  # the sweep adds nothing inside the box
    assert worst.hv_sweep == 0 and "ratio undefined: the sweep's is 0" in worst.text()


def test_a_bad_seed_or_option_is_refused_before_training():
    with pytest.raises(ValueError, match="seed must be"):
        build_pareto_set_trainer(conflicting(), seed=-1)
    with pytest.raises(ValueError, match="unknown training option"):
        build_pareto_set_trainer(conflicting(), epochz=3)


def test_the_pareto_set_loss_has_its_own_colour():
    from mtl_lab.palette import CONFLICT, TASK_COLORS, method_color
    from mtl_lab.weighting import METHODS

    mine = method_color(SampledCOSMOS.name).lower()
    assert mine == "#99000d"
    assert mine not in {method_color(name).lower() for name in METHODS} | {c.lower() for c in TASK_COLORS}
    assert mine != CONFLICT.lower()


def test_model_options_that_do_not_apply_are_refused_by_name():
    with pytest.raises(ValueError, match=r"model option\(s\) \['ray_hidden'\] do not apply to preference_conditioned; "
                                         r"allowed: \['condition'\]"):
        build_pareto_set_trainer(conflicting(), model_options={"ray_hidden": 8})
    with pytest.raises(ValueError, match="condition"):
        build_pareto_set_trainer(conflicting(), model_options={"condition": 3})
    with pytest.raises(ValueError, match="architecture"):
        build_pareto_set_trainer(conflicting(), architecture="hard")


def related_two():
    from mtl_lab import data as datasets

    return datasets.load("related", relatedness=0.0, n_tasks=2, labels_per_task=300, d=8, noise=0.1)


def test_the_hypernetwork_generates_one_model_per_preference():
    data = related_two()
    trainer = build_pareto_set_trainer(data, "pareto_hypernetwork", hidden=(8, 1), model_options={"ray_hidden": 8},
                                       seed=0, epochs=1, device="cpu")
    model = trainer.model.eval()
    assert trainer.model.sampler is trainer.weighting.sampler
    assert model.task_parameters("t0") == [] and len(model.shared_parameters()) == len(list(model.parameters()))
    model.set_preference([0.9, 0.1])
    one, theta = model(data.val.x[:8]), model.generated()
    model.set_preference([0.1, 0.9])
    other = model(data.val.x[:8])
    assert (one["t0"] - other["t0"]).abs().max() > 1e-4
    assert theta["trunk0.weight"].shape == (8, 8) and theta["t1.weight"].shape == (1, 1)


def test_a_trained_hypernetwork_moves_along_the_front_and_resumes(tmp_path):
    data = related_two()

    def build(epochs):
        return build_pareto_set_trainer(data, "pareto_hypernetwork", hidden=(32, 1), seed=0, epochs=epochs, lr=1e-2,
                                        batch_size=64, device="cpu", diagnostics_every=0, train_metrics=False)

    trainer = build(20)
    trainer.fit()
    errors = [p["t0"] for p in learned_front(trainer.model, data, GRID)]
    assert all(x > y for x, y in zip(errors, errors[1:])) and errors[0] - errors[-1] > 0.5, errors
    first = build(1)
    first.fit(max_steps=3)
    first.save(tmp_path / "phn.pt")
    second, straight = build(1), build(1)
    second.load(tmp_path / "phn.pt")
    second.fit()
    straight.fit()
    assert all(torch.equal(p, q) for p, q in zip(second.model.parameters(), straight.model.parameters()))
