"""Exact resume: from a checkpoint taken at any step, or after an interrupt at any point, a run continues
bitwise like the uninterrupted one (CPU), for every registered method, with dropout."""

from __future__ import annotations

import dataclasses
import os
import random
import signal

import pytest
import torch

from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData
from mtl_lab.history import History
from mtl_lab.training import Event, build_trainer
from mtl_lab.weighting import METHODS

OPTIONS = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "diagnostics_every": 3,
           "model_options": {"hidden": (8,), "dropout": 0.3}}


def tiny_data() -> MultiTaskData:
    """Three small tasks; 30 training rows → 4 batches of 8 per epoch (the last one short)."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(44, 4, generator=g)
    targets = {"r": x[:, :1] - x[:, 1:2], "c": (x[:, 2] > 0).long() + (x[:, 3] > 1).long(), "b": (x[:, 0] > 0).float()}
    task_list = [tasks.regression("r"), tasks.classification("c", 3), tasks.binary("b")]
    return MultiTaskData.from_tensors(x, targets, task_list, val_fraction=0.15, test_fraction=0.15)


DATA = tiny_data()


def comparable(history: History) -> dict:
    """Everything of a History but wall-clock times."""
    d = history.to_dict()
    d["epochs"] = [{k: v for k, v in e.items() if k != "time"} for e in d["epochs"]]
    d["notes"] = [n for n in d["notes"] if "callback_error" not in n]
    keep = ("status", "steps", "epochs_done", "test_loss", "test_metrics")
    d["meta"] = {k: v for k, v in d["meta"].items() if k in keep}
    return d


def assert_same_run(a, b) -> None:
    for (name, p), q in zip(a.model.named_parameters(), b.model.parameters()):
        assert torch.equal(p, q), name
    assert History.from_dict(comparable(a.history)) == History.from_dict(comparable(b.history))
    assert a.global_step == b.global_step and a.epoch == b.epoch


def make(method: str, **extra):
    return build_trainer(DATA, "hard", method, **{**OPTIONS, **extra})


@pytest.mark.parametrize("method", sorted(METHODS))
def test_resume_from_a_checkpoint_at_a_random_mid_epoch_step_is_bitwise_exact(method, tmp_path):
    whole = make(method)
    whole.fit()
    total = whole.global_step
    step = random.Random(method).randrange(1, total)  # any step, mid-epoch most of the time
    first = make(method)
    first.fit(max_steps=step)
    path = first.save(tmp_path / "run.pt")
    torch.randn(100)  # the caller's random numbers in between change nothing
    resumed = make(method, seed=12345)  # a fresh trainer; everything comes from the checkpoint
    resumed.load(path)
    assert resumed.global_step == step
    resumed.fit()
    assert resumed.history.status == "completed"
    assert_same_run(whole, resumed)


def test_resume_at_every_step_of_a_random_order_method_with_augmentation_like_draws(tmp_path):
    """PCGrad (random order) with dropout: every step of two epochs, each a checkpoint and a resume."""
    whole = make("pcgrad")
    whole.fit()
    for step in range(1, whole.global_step):
        first = make("pcgrad")
        first.fit(max_steps=step)
        resumed = make("pcgrad")
        resumed.load(first.save(tmp_path / f"s{step}.pt"))
        resumed.fit()
        assert_same_run(whole, resumed)


@pytest.mark.parametrize("kind,n", [("step", 3), ("step", 6), ("epoch", 1)])
def test_a_checkpoint_saved_from_a_callback_during_the_run_resumes_exactly(kind, n, tmp_path):
    whole = make("rlw", record_every=1)
    whole.fit()
    path = tmp_path / "live.pt"
    seen = {"n": 0}

    def save_once(event: Event) -> None:
        if event.kind == kind:
            seen["n"] += 1
            if seen["n"] == n:
                running.save(path)

    running = make("rlw", record_every=1, callback=save_once)
    running.fit()
    assert_same_run(whole, running)  # saving changed nothing in the run itself
    resumed = make("rlw", record_every=1)
    resumed.load(path)
    resumed.fit()
    assert_same_run(whole, resumed)


def jitter(x: torch.Tensor, targets: dict, generator: torch.Generator):
    """A train-time augmentation drawing from the batch-order generator (as the image data sets' shifts do)."""
    return x + 0.1 * torch.randn(x.shape, generator=generator), targets


@pytest.mark.parametrize("step", [1, 2, 3, 5, 6])
def test_resume_mid_epoch_with_augmentation_draws_continues_exactly(step, tmp_path):
    data = dataclasses.replace(DATA, augment=jitter)
    build = lambda: build_trainer(data, "hard", "graddrop", augment=True, **OPTIONS)  # noqa: E731
    whole = build()
    whole.fit()
    first = build()
    first.fit(max_steps=step)
    resumed = build()
    resumed.load(first.save(tmp_path / "aug.pt"))
    resumed.fit()
    assert_same_run(whole, resumed)


def test_pause_and_continue_in_one_process_ignores_the_callers_random_numbers():
    whole = make("rlw")
    whole.fit()
    paused = make("rlw")
    while paused.fit(max_steps=3).status == "paused":
        torch.rand(7)  # someone else uses the global generator between fit() calls
    assert_same_run(whole, paused)


class InterruptAt:
    """A callback raising ``error`` at the ``n``-th event of ``kind`` (once)."""

    def __init__(self, kind: str, n: int, error: type[BaseException] = KeyboardInterrupt) -> None:
        self.kind, self.n, self.error, self.seen, self.fired = kind, n, error, 0, False

    def __call__(self, event: Event) -> None:
        if event.kind != self.kind or self.fired:
            return
        self.seen += 1
        if self.seen == self.n:
            self.fired = True
            raise self.error("from a callback")


@pytest.mark.parametrize("kind,n", [("step", 1), ("step", 2), ("step", 4), ("step", 5), ("step", 7),
                                    ("epoch", 1), ("end", 1)])
def test_keyboard_interrupt_from_a_callback_keeps_everything_and_fit_continues_exactly(kind, n, tmp_path):
    whole = make("pcgrad", record_every=1)
    whole.fit()
    trainer = make("pcgrad", record_every=1, callback=InterruptAt(kind, n))
    with pytest.warns(UserWarning, match="interrupted") if kind != "end" else _nothing():
        history = trainer.fit()
    if kind == "end":
        assert history.status == "completed" and any("KeyboardInterrupt" in x.get("callback_error", "")
                                                     for x in history.notes)
        return
    assert history.status == "interrupted" and len(history.steps) == trainer.global_step >= 1
    # continue in this process …
    again = make("pcgrad", record_every=1, callback=InterruptAt(kind, n))
    with pytest.warns(UserWarning):
        again.fit()
    path = again.save(tmp_path / "after_interrupt.pt")
    assert trainer.fit().status == "completed"
    assert_same_run(whole, trainer)
    # … or from a checkpoint written after the interrupt
    fresh = make("pcgrad", record_every=1)
    fresh.load(path)
    fresh.fit()
    assert_same_run(whole, fresh)


def test_ctrl_c_is_deferred_to_the_end_of_the_step():
    """A real SIGINT in the middle of a step (here from inside the forward pass) ends the run after that step."""
    whole = make("equal")
    whole.fit()
    trainer = make("equal")
    calls = {"n": 0}

    def forward_hook(module, args, output):
        calls["n"] += 1
        if calls["n"] == 3 and module.training:
            os.kill(os.getpid(), signal.SIGINT)

    handle = trainer.model.register_forward_hook(forward_hook)
    with pytest.warns(UserWarning, match="interrupted"):
        history = trainer.fit()
    handle.remove()
    assert history.status == "interrupted" and trainer.global_step == len(history.steps) == 3
    trainer.fit()
    assert_same_run(whole, trainer)


@pytest.mark.parametrize("error", [SystemExit, GeneratorExit, type("Custom", (BaseException,), {})])
def test_a_callback_raising_any_base_exception_ends_the_run_with_a_status_and_a_note(error):
    trainer = make("equal", record_every=1, callback=InterruptAt("step", 3, error))
    with pytest.raises(error):
        trainer.fit()
    h = trainer.history
    assert h.status == "error" and error.__name__ in h.meta["error"]
    assert any(error.__name__ in n.get("error", "") for n in h.notes)
    assert len(h.steps) == trainer.global_step == 3
    assert trainer.fit().status == "completed"  # the run can still go on


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def test_a_background_run_ended_by_system_exit_is_not_left_running():
    trainer = make("equal", record_every=1, callback=InterruptAt("step", 2, SystemExit))
    handle = trainer.start()
    history = handle.join(timeout=60, raise_error=False)
    assert not handle.running and isinstance(handle.error, SystemExit)
    assert history.status == "error" and "SystemExit" in history.meta["error"]


def test_an_interrupt_during_the_test_evaluation_still_ends_with_a_status(monkeypatch):
    trainer = make("equal")
    original = trainer.evaluate

    def evaluate(split="val", batch_size=1024):
        if split == "test":
            raise KeyboardInterrupt
        return original(split, batch_size)

    monkeypatch.setattr(trainer, "evaluate", evaluate)
    history = trainer.fit()
    assert history.status == "interrupted" and history.meta["epochs_done"] == OPTIONS["epochs"]
    assert any("test evaluation" in n.get("note", "") for n in history.notes)
