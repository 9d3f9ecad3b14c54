"""A NaN never reaches the weights: a non-finite loss or gradient at step 4 leaves every parameter bitwise
equal to its value after step 3, with the host check (CPU default) and the device-side flag alike."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData
from mtl_lab.training import NonFiniteLossError, build_trainer

BAD_STEP = 4
OPTIONS = {"epochs": 3, "batch_size": 8, "lr": 1e-2, "model_options": {"hidden": (8,), "dropout": 0.2},
           "diagnostics_every": 3}


def poisoned_regression(name: str, bad_step: int | None, value: float) -> tasks.Task:
    """A regression task whose training loss is multiplied by ``value`` (nan, inf) at training step ``bad_step``."""
    calls = {"n": 0}

    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        result = F.mse_loss(output, target)
        if torch.is_grad_enabled():  # training passes only (evaluation runs under no_grad)
            if calls["n"] == bad_step:
                result = result * value
            calls["n"] += 1
        return result

    return tasks.Task(name, "regression", 1, loss, tasks.mse_metric, "mse", "mse", False)


def make_data(bad_step: int | None = None, value: float = float("nan")) -> MultiTaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(80, 4, generator=g)
    targets = {"a": x[:, :1] * 2, "b": x[:, 1:2] - x[:, 2:3]}
    task_list = [tasks.regression("a"), poisoned_regression("b", bad_step, value)]
    return MultiTaskData.from_tensors(x, targets, task_list)


def parameters(trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def optimizer_state(trainer) -> list[torch.Tensor]:
    return [t.clone() for s in trainer.optimizer.state.values() for t in s.values() if isinstance(t, torch.Tensor)]


@pytest.mark.parametrize("check", ["host", "device"])
@pytest.mark.parametrize("method", ["equal", "pcgrad", "uncertainty", "mgda"])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_a_non_finite_loss_at_step_4_leaves_the_parameters_of_step_3_bitwise(check, method, value):
    reference = build_trainer(make_data(), "hard", method, nonfinite_check=check, **OPTIONS)
    reference.fit(max_steps=BAD_STEP)
    assert reference.global_step == BAD_STEP
    expected, expected_state = parameters(reference), optimizer_state(reference)

    trainer = build_trainer(make_data(BAD_STEP, value), "hard", method, nonfinite_check=check, **OPTIONS)
    with pytest.raises(NonFiniteLossError, match=rf"task\(s\) \['b'\].* at step {BAD_STEP}") as info:
        trainer.fit()
    assert "keep their values from before" in str(info.value)
    for before, after in zip(expected, parameters(trainer)):
        assert torch.equal(before, after)
    for before, after in zip(expected_state, optimizer_state(trainer)):
        assert torch.equal(before, after)  # the optimiser's moments did not move either
    h = trainer.history
    assert h.status == "error" and "NonFiniteLossError" in h.meta["error"]
    assert any(f"step {BAD_STEP}" in n.get("non_finite", "") and "'b'" in n["non_finite"] for n in h.notes)
    assert BAD_STEP in h.steps  # the bad step's losses are kept in the History (its update is not applied)


@pytest.mark.parametrize("check", ["host", "device"])
def test_a_non_finite_gradient_with_finite_losses_is_caught_before_the_step(check):
    reference = build_trainer(make_data(), nonfinite_check=check, **OPTIONS)
    reference.fit(max_steps=BAD_STEP)
    expected = parameters(reference)

    trainer = build_trainer(make_data(), nonfinite_check=check, **OPTIONS)
    weight = list(trainer.model.shared_parameters())[0]
    weight.register_hook(lambda g: g * float("nan") if trainer.global_step == BAD_STEP else g)
    with pytest.raises(NonFiniteLossError, match=f"at step {BAD_STEP}") as info:
        trainer.fit()
    assert "gradient" in str(info.value)
    if check == "host":
        assert "shared parameter" in str(info.value)
    for before, after in zip(expected, parameters(trainer)):
        assert torch.equal(before, after)


def test_the_device_flag_is_read_only_at_the_flush_and_stays_set():
    """No host read per step: the error comes at the record flush, and no step after the bad one updated."""
    trainer = build_trainer(make_data(BAD_STEP), nonfinite_check="device", record_every=5, **OPTIONS)
    assert trainer.guard.deferred and trainer.optimizer.defaults["fused"] is True
    with pytest.raises(NonFiniteLossError, match=f"at step {BAD_STEP}"):
        trainer.fit()
    assert trainer.global_step == 5  # steps 4 (bad) and the flush at 5 records; nothing was applied from 4 on
    assert float(trainer.guard.found) == 1.0 and int(trainer.guard.first_bad_step) == BAD_STEP


def test_auto_check_is_the_host_one_on_cpu():
    trainer = build_trainer(make_data(), device="cpu", **OPTIONS)
    assert not trainer.guard.deferred and trainer.optimizer.defaults["fused"] is True


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_finite_runs_are_bitwise_identical_with_either_check_mode(optimizer):
    """The guard itself changes no number: host and device checks drive the same fused optimiser."""
    a = build_trainer(make_data(), nonfinite_check="host", optimizer=optimizer, **OPTIONS)
    b = build_trainer(make_data(), nonfinite_check="device", optimizer=optimizer, **OPTIONS)
    assert a.fit().status == b.fit().status == "completed"
    for p, q in zip(a.model.parameters(), b.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("check", ["host", "device"])
def test_a_racer_stopped_by_the_guard_ends_with_its_error_and_the_other_racer_finishes(check):
    """In a race (one run per racer, a step per turn) the guard ends only the racer whose loss went bad."""
    from mtl_lab.training.race import LockStep, race_trainers

    reference = build_trainer(make_data(), "hard", "mgda", nonfinite_check=check, **OPTIONS)
    reference.fit(max_steps=BAD_STEP)
    trainers = race_trainers(["equal", "mgda"], lambda m: build_trainer(
        make_data(BAD_STEP if m == "mgda" else None), "hard", m, nonfinite_check=check, **OPTIONS))
    race = LockStep(trainers)
    assert race.run() == {"equal": "completed", "mgda": "error"}
    assert "NonFiniteLossError" in race.errors["mgda"] and f"at step {BAD_STEP}" in race.errors["mgda"]
    bad = trainers["mgda"]
    assert bad.history.status == "error" and "NonFiniteLossError" in bad.history.meta["error"]
    for before, after in zip(parameters(reference), parameters(bad)):
        assert torch.equal(before, after)
    assert trainers["equal"].global_step == OPTIONS["epochs"] * trainers["equal"].batches_per_epoch
    assert trainers["equal"].history.meta["test_metrics"]
