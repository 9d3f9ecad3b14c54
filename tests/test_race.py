"""The race's lock-step runner (mtl_lab.training.race): same start, same batches, bitwise the solo runs."""

from __future__ import annotations

import pytest
import torch
from toy_data import make_toy

from mtl_lab.data import base as data_base
from mtl_lab.training import build_trainer
from mtl_lab.training.race import LockStep, check_methods, race_trainers

OPTIONS = {"model_options": {"hidden": [16]}, "epochs": 2, "batch_size": 32, "lr": 1e-2, "seed": 3}


def builder(data):
    return lambda method: build_trainer(data, "hard", method, **OPTIONS)


def test_racers_start_from_the_same_weights_and_draw_the_same_batches(monkeypatch):
    drawn: dict[int, list[list[int]]] = {}
    original = data_base.batch_rows

    def recording(n, batch_size, shuffle, generator, drop_last):
        rows = original(n, batch_size, shuffle, generator, drop_last)
        if shuffle:  # the training batches (evaluation reads slices in order)
            drawn.setdefault(id(generator), []).extend(r.tolist() for r in rows)
        return rows

    monkeypatch.setattr(data_base, "batch_rows", recording)
    data = make_toy()
    trainers = race_trainers(["equal", "pcgrad", "mgda", "uncertainty"], builder(data))
    first = [t.model.state_dict() for t in trainers.values()]
    for state in first[1:]:
        assert all(torch.equal(state[k], first[0][k]) for k in first[0])
    LockStep(trainers).run(max_rounds=1)
    losses = [t.history.losses[0] for t in trainers.values()]
    assert all(row == losses[0] for row in losses[1:])  # the first step: same weights, same batch, same losses
    assert LockStep(trainers).run() == dict.fromkeys(trainers, "completed")
    orders = [drawn[id(t.source.generator)] for t in trainers.values()]
    assert len(orders[0]) == 2 * trainers["equal"].batches_per_epoch  # two epochs, every batch recorded
    assert all(order == orders[0] for order in orders[1:])
    assert len({t.global_step for t in trainers.values()}) == 1


def test_a_racer_trains_bitwise_as_it_would_alone():
    data = make_toy()
    trainers = race_trainers(["pcgrad", "uncertainty"], builder(data))  # a random method and a learned one
    LockStep(trainers).run()
    for method, raced in trainers.items():
        alone = build_trainer(data, "hard", method, **OPTIONS)
        alone.fit()
        assert raced.history.losses == alone.history.losses
        assert raced.history.weights == alone.history.weights
        assert raced.history.meta["test_metrics"] == alone.history.meta["test_metrics"]


def test_stop_ends_every_racer_at_the_same_step_with_its_test_results():
    data = make_toy()
    trainers = race_trainers(["equal", "mgda", "pcgrad"], builder(data))
    seen = []
    race = LockStep(trainers, after_round=seen.append)
    race.run(max_rounds=3)
    assert seen == [1, 2, 3]
    assert all(t.history.status == "paused" and "test_metrics" not in t.history.meta for t in trainers.values())
    race.stop()
    race.run()
    assert {t.global_step for t in trainers.values()} == {4}
    assert all(t.history.status == "stopped" and t.history.meta["test_metrics"] for t in trainers.values())
    assert race.racing == []


def test_a_pause_can_skip_the_test_split_and_the_real_end_evaluates_it():
    trainer = build_trainer(make_toy(), "hard", "equal", **OPTIONS)
    trainer.fit(1, test_at_pause=False)
    assert trainer.history.status == "paused" and "test_metrics" not in trainer.history.meta
    trainer.fit(1)
    assert set(trainer.history.meta["test_metrics"]) == {"cls", "yes", "reg"}


def test_a_failing_racer_leaves_the_race_and_the_others_finish(monkeypatch):
    data = make_toy()
    trainers = race_trainers(["equal", "mgda"], builder(data))

    def broken(*args, **kwargs):
        raise RuntimeError("solver broke")

    monkeypatch.setattr(trainers["mgda"], "train_step", broken)
    race = LockStep(trainers)
    assert race.run() == {"equal": "completed", "mgda": "error"}
    assert "solver broke" in race.errors["mgda"]


@pytest.mark.parametrize("methods, message", [
    (["equal"], "2 to 4 methods, got 1"),
    (["equal", "pcgrad", "mgda", "cagrad", "nash_mtl"], "2 to 4 methods, got 5"),
    (["equal", "equal"], "repeated: ['equal']"),
    (["equal", "pcgrd"], "race method 'pcgrd' is not one of"),
    ("equal,pcgrad", "a list of method names"),
])
def test_a_bad_race_is_refused_by_name(methods, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        check_methods(methods)


def test_racers_that_differ_by_more_than_the_method_are_refused():
    data = make_toy()
    with pytest.raises(ValueError, match="racer 'pcgrad' has epochs 3, the first racer 2"):
        race_trainers(["equal", "pcgrad"], lambda m: build_trainer(
            data, "hard", m, **{**OPTIONS, "epochs": 2 if m == "equal" else 3}))
