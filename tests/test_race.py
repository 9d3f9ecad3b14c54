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
    race.run(max_rounds=3)  # ends every run paused, as fit(max_steps=3) would
    assert seen == [1, 2, 3]
    assert all(t.history.status == "paused" and t.history.meta["test_metrics"] for t in trainers.values())
    race.stop()
    race.run()
    assert {t.global_step for t in trainers.values()} == {4}
    assert all(t.history.status == "stopped" and t.history.meta["test_metrics"] for t in trainers.values())
    assert race.racing == []


def test_a_race_begins_and_ends_each_racer_run_once_and_evaluates_the_test_split_once(monkeypatch):
    data = make_toy()
    trainers = race_trainers(["equal", "pcgrad"], builder(data))
    race = LockStep(trainers)
    events: dict[str, list[str]] = {m: [] for m in trainers}
    tests: dict[str, int] = dict.fromkeys(trainers, 0)
    for method, trainer in trainers.items():
        listen = trainer.records.callback
        trainer.records.callback = lambda e, m=method, listen=listen: (events[m].append(e.kind), listen(e))
        evaluate = trainer.evaluate

        def counting(split="val", *args, m=method, evaluate=evaluate, **kwargs):
            tests[m] += split == "test"
            return evaluate(split, *args, **kwargs)

        monkeypatch.setattr(trainer, "evaluate", counting)
    assert race.run() == dict.fromkeys(trainers, "completed")
    steps = 2 * trainers["equal"].batches_per_epoch
    for method, trainer in trainers.items():
        assert events[method].count("end") == 1 and events[method][-1] == "end"
        assert events[method].count("step") == steps
        assert tests[method] == 1
        assert not trainer.lock.locked()


def test_begin_advance_and_end_make_the_run_fit_makes_whatever_runs_in_between():
    options = {**OPTIONS, "model_options": {"hidden": [16], "dropout": 0.3}}  # dropout draws global numbers
    alone = build_trainer(make_toy(), "hard", "pcgrad", **options)
    alone.fit()
    turns = build_trainer(make_toy(), "hard", "pcgrad", **options)
    turns.begin_run()
    status = "paused"
    while status == "paused":
        torch.rand(7)  # another racer's turn draws from the global generator in between
        status = turns.advance(1)
    assert turns.history.status == "running" and "test_metrics" not in turns.history.meta
    turns.end_run(status)
    assert turns.history.status == "completed" == alone.history.status
    assert turns.history.losses == alone.history.losses
    assert turns.history.meta["test_metrics"] == alone.history.meta["test_metrics"]
    assert turns.history.meta["steps"] == alone.history.meta["steps"]


def test_a_run_is_begun_once_and_advanced_only_while_begun():
    trainer = build_trainer(make_toy(), "hard", "equal", **OPTIONS)
    with pytest.raises(RuntimeError, match="call begin_run"):
        trainer.advance(1)
    with pytest.raises(RuntimeError, match="call begin_run"):
        trainer.end_run("paused")
    trainer.begin_run()
    with pytest.raises(RuntimeError, match="already running"):
        trainer.fit(1)
    with pytest.raises(RuntimeError, match="already running"):
        trainer.begin_run()
    with pytest.raises(ValueError, match="max_steps"):
        trainer.advance(0)
    assert trainer.advance(2) == "paused" and trainer.global_step == 2
    trainer.end_run("paused")
    assert trainer.history.status == "paused" and not trainer.lock.locked()
    trainer.fit(1)
    assert trainer.global_step == 3


def test_a_run_begun_in_another_thread_is_not_advanced_or_ended_from_this_one():
    import threading

    trainer = build_trainer(make_toy(), "hard", "equal", **OPTIONS)
    begun = threading.Thread(target=trainer.begin_run)
    begun.start()
    begun.join()
    for call in (lambda: trainer.advance(1), lambda: trainer.end_run("paused")):
        with pytest.raises(RuntimeError, match="begun in another one"):
            call()
    assert trainer.global_step == 0 and trainer.lock.locked()


def test_racers_with_dropout_train_bitwise_as_alone_and_a_mid_race_checkpoint_resumes_exactly(tmp_path):
    options = {**OPTIONS, "model_options": {"hidden": [16], "dropout": 0.3}}
    data = make_toy()
    trainers = race_trainers(["equal", "pcgrad"], lambda m: build_trainer(data, "hard", m, **options))

    def save_at(step):
        torch.rand(5)  # a view drawing from the global generator between rounds shifts no racer
        if step == 3:
            trainers["equal"].save(tmp_path / "racer.pt")  # between turns: its kept state, not the last racer's

    LockStep(trainers, after_round=save_at).run()
    for method, raced in trainers.items():
        alone = build_trainer(data, "hard", method, **options)
        alone.fit()
        assert raced.history.losses == alone.history.losses
    resumed = build_trainer(data, "hard", "equal", **options)
    resumed.load(tmp_path / "racer.pt")
    resumed.fit()
    assert resumed.history.losses == trainers["equal"].history.losses


@pytest.mark.parametrize("pressed_by", ["equal", "mgda"])
def test_ctrl_c_in_a_turn_ends_the_race_every_racer_interrupted_at_the_same_step(pressed_by):
    """One press ends a race of any size: the round is finished, then every run ends interrupted; each run
    then continues exactly, as after an interrupted fit()."""
    data = make_toy()
    trainers = race_trainers(["equal", "mgda", "pcgrad"], builder(data))
    race = LockStep(trainers)
    listen = trainers[pressed_by].records.callback

    def first_ctrl_c(event):  # what the deferred SIGINT handler does on a first Ctrl-C
        listen(event)
        if event.kind == "step" and event.step == 2:
            trainers[pressed_by].interrupts.requested.set()

    trainers[pressed_by].records.callback = first_ctrl_c
    assert race.run() == {"equal": "interrupted", "mgda": "interrupted", "pcgrad": "interrupted"}
    for raced in trainers.values():
        assert raced.global_step == 2 and raced.history.meta.get("exact_resume", True)
        assert raced.history.meta["test_metrics"] and not raced.lock.locked()
    assert_each_continues_as_alone(data, trainers)


def test_an_interrupt_between_turns_ends_every_racer_and_each_continues_exactly():
    data = make_toy()
    trainers = race_trainers(["equal", "pcgrad"], builder(data))

    def interrupt(step):
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        LockStep(trainers, after_round=interrupt).run()
    assert all(t.history.status == "interrupted" and not t.lock.locked() for t in trainers.values())
    assert {t.global_step for t in trainers.values()} == {2}
    assert_each_continues_as_alone(data, trainers)


def assert_each_continues_as_alone(data, trainers) -> None:
    """Each interrupted racer, run on with fit(), ends with the losses of the same method trained alone."""
    for method, raced in trainers.items():
        raced.fit()  # each run continues where the race left it
        alone = build_trainer(data, "hard", method, **OPTIONS)
        alone.fit()
        assert raced.history.losses == alone.history.losses


def test_a_racer_already_running_elsewhere_keeps_the_race_from_starting():
    data = make_toy()
    trainers = race_trainers(["equal", "pcgrad"], builder(data))
    trainers["pcgrad"].begin_run()
    with pytest.raises(RuntimeError, match="already running"):
        LockStep(trainers).run()
    assert not trainers["equal"].lock.locked() and trainers["equal"].global_step == 0


def test_a_failing_racer_leaves_the_race_and_the_others_finish(monkeypatch):
    data = make_toy()
    trainers = race_trainers(["equal", "mgda"], builder(data))

    def broken(*args, **kwargs):
        raise RuntimeError("solver broke")

    monkeypatch.setattr(trainers["mgda"], "train_step", broken)
    race = LockStep(trainers)
    assert race.run() == {"equal": "completed", "mgda": "error"}
    assert "solver broke" in race.errors["mgda"]
    assert "solver broke" in trainers["mgda"].history.meta["error"] and not trainers["mgda"].lock.locked()


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
