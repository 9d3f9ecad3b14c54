"""Checkpoints: a file that is not one is named as such; one of another run is refused before anything is
loaded, naming the mismatch; a failed load or save overwrites nothing."""

from __future__ import annotations

import copy
import os
import pickle

import pytest
import torch
from golden_grads import FOLDER
from toy_data import make_toy

from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData
from mtl_lab.training import build_trainer, checkpoint

OPTIONS = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "model_options": {"hidden": (8,)}}


def data(names=("r", "s")) -> MultiTaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    return MultiTaskData.from_tensors(x, {n: torch.randn(40, 1, generator=g) for n in names},
                                      [tasks.regression(n) for n in names])


def trained(**extra):
    options = {**OPTIONS, **extra}
    architecture = options.pop("architecture", "hard")
    method = options.pop("method", "equal")
    names = options.pop("names", ("r", "s"))
    trainer = build_trainer(data(names), architecture, method, **options)
    trainer.fit(max_steps=3)
    return trainer


def snapshot(trainer) -> dict:
    return copy.deepcopy(trainer.state_dict())


def assert_unchanged(trainer, before: dict) -> None:
    after = trainer.state_dict()
    for key, value in before["model"].items():
        assert torch.equal(value, after["model"][key]), key
    assert str(before["optimizer"]) == str(after["optimizer"])
    assert before["history"] == after["history"] and before["counters"] == after["counters"]
    assert torch.equal(before["position"]["batch_rng"], after["position"]["batch_rng"])


class Payload:
    """An object torch's weights-only loader refuses (a pickle that would run code)."""


@pytest.mark.parametrize("kind", ["random bytes", "empty", "history.json", "plain dict", "pickled object",
                                  "tensor"])
def test_a_file_that_is_not_a_checkpoint_is_named_so(kind, tmp_path):
    trainer = trained()
    path = tmp_path / f"{kind.replace(' ', '_')}.pt"
    if kind == "random bytes":
        path.write_bytes(os.urandom(256))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "history.json":
        path = trainer.history.save(tmp_path / "history.json")
    elif kind == "plain dict":
        torch.save({"model": {}}, path)
    elif kind == "pickled object":
        path.write_bytes(pickle.dumps(Payload()))
    else:
        torch.save(torch.zeros(3), path)
    before = snapshot(trainer)
    with pytest.raises(ValueError) as info:
        trainer.load(path)
    message = str(info.value)
    assert message.startswith(f"not an mtl_lab checkpoint: {path}")
    assert "weights_only" not in message  # never the advice to unpickle arbitrary code
    assert_unchanged(trainer, before)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="no checkpoint file at .*nothere.pt"):
        trained().load(tmp_path / "nothere.pt")


@pytest.mark.parametrize(
    "saved,loading,fragments",
    [
        ({}, {"architecture": "mmoe"}, ["checkpoint is for architecture 'hard' with tasks ['r', 's']", "'mmoe'",
                                        "['architecture']"]),
        ({}, {"names": ("r", "t")}, ["with tasks ['r', 's']", "['r', 't']", "['tasks']"]),
        ({}, {"optimizer": "sgd"}, ["optimizer 'adam'", "optimizer 'sgd'"]),
        ({}, {"method": "pcgrad"}, ["method 'equal'", "method 'pcgrad'"]),
        ({}, {"schedule": "cosine"}, ["schedule 'none'", "schedule 'cosine'"]),
        ({}, {"batch_size": 4}, ["batch size 8", "batch size 4"]),
        ({}, {"model_options": {"hidden": (16,)}}, ["shape (8, 3)", "(16, 3)"]),
        ({"model_options": {"hidden": (8, 8)}}, {}, ["unexpected ["]),
    ],
)
def test_a_checkpoint_of_another_run_is_refused_before_anything_is_loaded(saved, loading, fragments, tmp_path):
    path = trained(**saved).save(tmp_path / "other.pt")
    trainer = trained(**loading)
    before = snapshot(trainer)
    with pytest.raises(ValueError) as info:
        trainer.load(path)
    for fragment in fragments:
        assert fragment in str(info.value)
    assert str(path) in str(info.value)
    assert_unchanged(trainer, before)


def test_a_load_that_fails_half_way_puts_the_previous_state_back(tmp_path):
    source = trained()
    state = source.state_dict()
    state["weighting"] = {"not": "a state this method knows"}
    state["optimizer"] = {"state": {}, "param_groups": []}  # fails after the model was loaded
    path = checkpoint.write(tmp_path / "broken.pt", state)
    trainer = trained(seed=7)
    before = snapshot(trainer)
    with pytest.raises(ValueError, match="could not be loaded .* the trainer is unchanged"):
        trainer.load(path)
    assert_unchanged(trainer, before)


def test_save_is_atomic_and_refuses_a_folder(tmp_path):
    trainer = trained()
    path = trainer.save(tmp_path / "run.pt")
    good = path.read_bytes()
    with pytest.raises(ValueError, match="is a folder"):
        trainer.save(tmp_path)
    original = torch.save

    def failing_save(obj, f, *args, **kwargs):
        raise OSError("disk full")

    torch.save = failing_save
    try:
        with pytest.raises(OSError, match="disk full"):
            trainer.save(path)
    finally:
        torch.save = original
    assert path.read_bytes() == good  # the previous checkpoint is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.pt"]  # no temporary file left behind


def test_a_checkpoint_round_trip_restores_everything(tmp_path):
    trainer = trained()
    path = trainer.save(tmp_path / "run.pt")
    other = trained(seed=99)
    other.load(path)
    assert_unchanged(other, snapshot(trainer))
    assert other.identity() == trainer.identity()


def test_a_checkpoint_written_before_the_training_package_loads_and_continues():
    """``tests/golden/checkpoint_v1_pcgrad.pt`` was saved by the code before the restructuring (``mtl_lab.train``)
    after 3 steps of PCGrad; continued here, the run's losses are those the old code recorded for the whole
    run (``…_losses.pt``), to float rounding (another processor may round the last bits differently)."""
    trainer = build_trainer(make_toy(), "hard", "pcgrad", {"hidden": (8,)}, device="cpu", epochs=2, batch_size=40)
    trainer.load(FOLDER / "checkpoint_v1_pcgrad.pt")
    assert trainer.global_step == 3
    trainer.fit()
    expected = torch.load(FOLDER / "checkpoint_v1_pcgrad_losses.pt", weights_only=True)
    torch.testing.assert_close(torch.tensor(trainer.history.losses), expected, rtol=1e-5, atol=1e-7)


# --------------------------------------------------------------------------- one checkpoint, one configuration


@pytest.mark.parametrize(
    "saved,loading,fragments",
    [
        ({"method": "cagrad", "method_options": {"c": 0.1}}, {"method": "cagrad", "method_options": {"c": 0.9}},
         ["method_options: checkpoint {'name': 'cagrad', 'c': 0.1", "this trainer {'name': 'cagrad', 'c': 0.9"]),
        ({}, {"lr": 1e-3}, ["lr: checkpoint 0.01, this trainer 0.001", "continue_with"]),
        ({}, {"weight_decay": 0.1}, ["weight_decay: checkpoint 0.0, this trainer 0.1"]),
        ({}, {"epochs": 5}, ["epochs: checkpoint 2, this trainer 5", "continue_with"]),
        ({"method": "static", "method_options": {"weights": [1.0, 2.0]}},
         {"method": "static", "method_options": {"weights": [1.0, 1.0]}}, ["'weights': [1.0, 2.0]"]),
        ({"model_options": {"hidden": (8,), "dropout": 0.1}}, {"model_options": {"hidden": (8,), "dropout": 0.5}},
         ["model: built with other model options"]),
        ({}, {"l1": 0.01, "lr": 0.1},
         ["l1: checkpoint 0.0, this trainer 0.01", "lr: checkpoint 0.01, this trainer 0.1"]),
        ({"schedule": "cosine"}, {"schedule": "cosine", "epochs": 4}, ["epochs: checkpoint 2, this trainer 4",
                                                                       "belong to the schedule"]),
    ],
)
def test_a_checkpoint_saved_with_other_settings_is_refused_naming_each(saved, loading, fragments, tmp_path):
    path = trained(**saved).save(tmp_path / "run.pt")
    trainer = trained(**loading)
    before = snapshot(trainer)
    with pytest.raises(ValueError) as info:
        trainer.load(path, continue_with=["epochs"] if loading.get("schedule") else [])
    for fragment in fragments:
        assert fragment in str(info.value)
    assert str(path) in str(info.value)
    assert_unchanged(trainer, before)


def test_more_epochs_and_a_lower_lr_are_explicit_continuations_recorded_in_the_history(tmp_path):
    path = trained().save(tmp_path / "run.pt")  # 2 epochs, lr 0.01
    trainer = trained(epochs=5, lr=1e-3, seed=4)
    trainer.load(path, continue_with=["epochs", "lr"])
    assert [g["lr"] for g in trainer.optimizer.param_groups] == [1e-3]
    notes = [n["note"] for n in trainer.history.notes if "note" in n]
    assert "continued with epochs 2 → 5" in notes and "continued with lr 0.01 → 0.001" in notes
    assert trainer.history.meta["config"]["epochs"] == 5 and trainer.history.meta["config"]["lr"] == 1e-3
    history = trainer.fit()
    assert history.status == "completed" and len(history.epochs) == 5


@pytest.mark.parametrize("names", [["dropout"], "epochs", [3]])
def test_continue_with_names_only_what_may_change(names, tmp_path):
    path = trained().save(tmp_path / "run.pt")
    with pytest.raises(ValueError, match="continue_with"):
        trained().load(path, continue_with=names)


def test_an_older_checkpoint_without_settings_is_checked_on_its_identity_and_says_so():
    trainer = build_trainer(make_toy(), "hard", "pcgrad", {"hidden": (8,)}, device="cpu", epochs=2, batch_size=40)
    trainer.load(FOLDER / "checkpoint_v1_pcgrad.pt")
    assert any("without its settings" in n.get("note", "") for n in trainer.history.notes)
