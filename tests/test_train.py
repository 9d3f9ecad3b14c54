import math
import threading

import pytest
import torch

from mtl_lab.history import History
from mtl_lab.models import HardSharing, build_model
from mtl_lab.training import Event, NonFiniteLossError, TrainConfig, Trainer, build_trainer, resolve_device
from mtl_lab.weighting import Combination, StepContext, Weighting

FAST = {"epochs": 3, "batch_size": 32, "lr": 1e-2, "model_options": {"hidden": (32, 16)}}


def comparable(h: History) -> dict:
    """A History's content without wall-clock fields."""
    d = h.to_dict()
    for e in d["epochs"]:
        e.pop("time")
    for key in ("train_seconds", "threads"):
        d["meta"].pop(key, None)
    return d


def test_same_seed_same_history_and_different_seed_differs(toy):
    a = build_trainer(toy, **FAST, seed=3).fit()
    b = build_trainer(toy, **FAST, seed=3).fit()
    c = build_trainer(toy, **FAST, seed=4).fit()
    assert a.status == "completed" and len(a.epochs) == 3 and len(a.steps) == 3 * math.ceil(len(toy.train) / 32)
    assert comparable(a) == comparable(b)
    assert a.losses != c.losses


def test_history_records_weights_metrics_and_diagnostics(toy):
    h = build_trainer(toy, "hard", "static", method_options={"weights": [1, 2, 0.5]}, diagnostics_every=4,
                      **FAST).fit()
    assert all(row == [1.0, 2.0, 0.5] for row in h.weights)
    assert [d["step"] for d in h.diagnostics] == list(range(0, len(h.steps), 4))
    for d in h.diagnostics:
        assert sum(d["shares"]) == pytest.approx(1.0, abs=1e-5)
        assert d["weights"] == pytest.approx([1.0, 2.0, 0.5])
    last = h.epochs[-1]
    assert set(last["val_metric"]) == {"cls", "yes", "reg"} and set(last["train_metric"]) == {"cls", "yes", "reg"}
    assert set(h.meta["test_metrics"]) == {"cls", "yes", "reg"}
    assert h.epochs[-1]["val_loss"]["cls"] < h.epochs[0]["val_loss"]["cls"]  # it learns
    off = build_trainer(toy, diagnostics_every=0, **FAST).fit()
    assert off.diagnostics == [] and "off" in off.meta["diagnostics"]


def test_diagnostic_steps_do_not_change_the_update(toy):
    cheap = build_trainer(toy, diagnostics_every=0, **FAST).fit()
    diag = build_trainer(toy, diagnostics_every=1, **FAST).fit()
    torch.testing.assert_close(torch.tensor(cheap.losses), torch.tensor(diag.losses), rtol=1e-4, atol=1e-5)


class FixedWeights(Weighting):
    """A test method that needs per-task information but answers fixed weights."""

    name = "fixed"

    def __init__(self, requires: str, weights: list[float]) -> None:
        super().__init__()
        self.requires = requires
        self.values = weights
        self.seen_shape = None

    def combine(self, losses, grads, ctx: StepContext) -> Combination:
        self.check_inputs(losses, grads)
        self.seen_shape = tuple(grads.shape)
        return Combination(torch.tensor(self.values), head_weights=torch.tensor(self.values))


@pytest.mark.parametrize("requires,path", [("grads", "jacobian"), ("gramian", "jacobian"), ("gramian", "gramian"),
                                           ("rep_grads", "auto")])
def test_every_gradient_path_applies_the_same_weighted_step(toy, requires, path):
    w = [0.5, 2.0, 1.0]
    ref = build_trainer(toy, "hard", "static", method_options={"weights": w}, diagnostics_every=0, **FAST)
    method = FixedWeights(requires, w)
    other = build_trainer(toy, "hard", method, diagnostics_every=3, gradient_path=path, **FAST)
    assert other.history.meta["gradient_path"] == ("gramian" if path == "gramian" else "jacobian")
    h_ref, h = ref.fit(), other.fit()
    expected_cols = {"grads": other.shared, "gramian": None, "rep_grads": None}[requires]
    if expected_cols is not None:
        assert method.seen_shape == (3, sum(p.numel() for p in expected_cols))
    elif requires == "gramian":
        assert method.seen_shape == (3, 3)
    torch.testing.assert_close(torch.tensor(h.losses), torch.tensor(h_ref.losses), rtol=1e-4, atol=1e-5)
    for a, b in zip(ref.model.parameters(), other.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)


def test_checkpoint_round_trip_and_resume_equals_uninterrupted(toy, tmp_path):
    straight = build_trainer(toy, **{**FAST, "epochs": 4}).fit()
    first = build_trainer(toy, **{**FAST, "epochs": 4})
    first.fit(max_steps=2 * math.ceil(len(toy.train) / 32))  # exactly two epochs
    first.flush()
    assert first.epoch == 2
    path = first.save(tmp_path / "run.pt")
    second = build_trainer(toy, **{**FAST, "epochs": 4}, seed=99)  # different init, overwritten by load
    second.load(path)
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        assert torch.equal(a, b)
    assert second.global_step == first.global_step and second.history.losses == first.history.losses
    resumed = second.fit()
    torch.testing.assert_close(torch.tensor(resumed.losses), torch.tensor(straight.losses), rtol=1e-5, atol=1e-6)


def test_background_run_stops_and_keeps_history_and_model(toy):
    trainer = build_trainer(toy, **{**FAST, "epochs": 10_000})
    seen = threading.Event()
    trainer.records.callback = lambda e: seen.set() if e.kind == "step" and e.step > 20 else None
    handle = trainer.start()
    assert seen.wait(30), "the background run made no progress"
    with pytest.raises(RuntimeError, match="already running"):
        trainer.fit()
    history = handle.stop(timeout=30)
    assert not handle.running and not threading.Thread.is_alive(handle.thread)
    assert history.status == "stopped" and len(history.steps) > 20
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    steps = trainer.global_step
    again = trainer.fit(max_steps=5)  # the same trainer continues
    assert again.status == "paused" and trainer.global_step == steps + 5
    kinds = {e.kind for e in trainer.records.events.drain()}
    assert {"step", "end"} <= kinds


def test_history_snapshot_is_consistent_while_training(toy):
    handle = build_trainer(toy, **{**FAST, "epochs": 30}).start()
    for _ in range(20):
        snap = handle.history
        assert len(snap.steps) == len(snap.losses) == len(snap.weights)
    handle.join(timeout=60)
    assert handle.history.status == "completed"


def test_callback_errors_are_recorded_not_raised(toy):
    def broken(event: Event) -> None:
        raise RuntimeError("view broke")

    h = build_trainer(toy, callback=broken, **FAST).fit()
    assert h.status == "completed" and any("view broke" in n.get("callback_error", "") for n in h.notes)


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_history(toy):
    trainer = build_trainer(toy, **FAST)
    bad = toy.train.x.clone()
    bad[5:] = float("nan")
    object.__setattr__(trainer.data.train, "x", bad)
    with pytest.raises(NonFiniteLossError, match="became nan at step"):
        trainer.fit()
    assert trainer.history.status == "error" and "NonFiniteLossError" in trainer.history.meta["error"]
    assert len(trainer.history.steps) >= 1


def test_background_error_is_kept_on_the_handle(toy):
    trainer = build_trainer(toy, **FAST)
    object.__setattr__(trainer.data.train, "x", torch.full_like(toy.train.x, float("nan")))
    handle = trainer.start()
    with pytest.raises(NonFiniteLossError):
        handle.join(timeout=30)
    assert handle.history.status == "error"
    assert any(e.kind == "error" for e in trainer.records.events.drain())


def test_l1_schedule_and_optimizers(toy):
    plain = build_trainer(toy, **FAST)
    sparse = build_trainer(toy, l1=1e-2, **FAST)
    plain.fit()
    sparse.fit()
    mass = lambda t: sum(float(p.detach().abs().sum()) for p in t.model.shared_parameters())  # noqa: E731
    assert mass(sparse) < mass(plain)
    h = build_trainer(toy, schedule="step", step_size=1, gamma=0.5, **FAST).fit()
    assert [e["lr"] for e in h.epochs] == pytest.approx([1e-2, 5e-3, 2.5e-3])
    cos = build_trainer(toy, schedule="cosine", **FAST).fit()
    assert cos.epochs[0]["lr"] == pytest.approx(1e-2) and cos.epochs[-1]["lr"] < 1e-2
    for name in ("sgd", "adamw"):
        assert build_trainer(toy, optimizer=name, momentum=0.9 if name == "sgd" else 0.0, **FAST).fit().status == (
            "completed")


@pytest.mark.parametrize(
    "options,match",
    [
        ({"lr": 0}, "lr must be a finite number > 0"),
        ({"lr": float("nan")}, "lr must be"),
        ({"epochs": 0}, "epochs must be an int ≥ 1"),
        ({"batch_size": 2.5}, "batch_size must be an int"),
        ({"optimizer": "rmsprop"}, "optimizer 'rmsprop' is not one of"),
        ({"schedule": "linear"}, "schedule 'linear'"),
        ({"device": "tpu"}, "device 'tpu'"),
        ({"weight_decay": -1}, "weight_decay must be"),
        ({"gradient_path": "fast"}, "gradient_path 'fast'"),
    ],
)
def test_bad_training_options(options, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**options)


def test_bad_inputs_to_the_trainer(toy):
    model = build_model("hard", toy)
    with pytest.raises(ValueError, match="unknown training option"):
        Trainer(model, toy, "equal", learning_rate=0.1)
    with pytest.raises(ValueError, match="unknown method 'pcgrad2'"):
        Trainer(model, toy, "pcgrad2")
    with pytest.raises(ValueError, match="weights has 2 entries, the data has 3 tasks"):
        build_trainer(toy, "hard", "static", method_options={"weights": [1, 2]})
    with pytest.raises(ValueError, match=r"static option weights must be .*\(finite, ≥ 0\).*got \[1, nan, 1\]"):
        build_trainer(toy, "hard", "static", method_options={"weights": [1, float("nan"), 1]})
    with pytest.raises(ValueError, match=r"static option weights must be .*\(finite, ≥ 0\).*got \[1, -1, 1\]"):
        build_trainer(toy, "hard", "static", method_options={"weights": [1, -1, 1]})
    with pytest.raises(ValueError, match="unknown task"):
        build_trainer(toy, "hard", "static", method_options={"weights": {"depth": 1}})
    other = HardSharing(toy.select(["cls"]).tasks, toy.input_shape)
    with pytest.raises(ValueError, match="differ from the data's tasks"):
        Trainer(other, toy)
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("towers", toy)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'cuda' requested but torch.cuda.is_available"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="cuda"):
            build_trainer(toy, device="cuda", **FAST)


def test_static_weights_change_mid_run_apply_from_the_next_step(toy):
    trainer = build_trainer(toy, "hard", "static", method_options={"weights": [1, 1, 1]}, **FAST)
    trainer.fit(max_steps=3)
    trainer.weighting.set_weights([0.0, 1.0, 3.0])
    trainer.fit(max_steps=2)
    trainer.flush()
    assert trainer.history.weights[2] == [1.0, 1.0, 1.0] and trainer.history.weights[3] == [0.0, 1.0, 3.0]


def test_gramian_path_is_opt_in_and_needs_linear_layers(toy):
    assert build_trainer(toy, "hard", "mgda", **FAST).gramian is None  # auto: the Jacobian path
    assert build_trainer(toy, "hard", "mgda", gradient_path="gramian", **FAST).gramian is not None
    with pytest.raises(ValueError, match="gradient_path='gramian' does not apply to method 'graddrop'"):
        build_trainer(toy, "hard", "graddrop", gradient_path="gramian", **FAST)  # it needs G itself: refused
    from mtl_lab import data

    digits = data.load("digits", tasks=["digit", "parity"])
    with pytest.raises(ValueError, match="nn.Linear layers"):
        build_trainer(digits, "hard", "mgda", model_options={"trunk": "cnn"}, gradient_path="gramian", epochs=1)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_fused_optimizer_updates_like_the_per_tensor_loop(toy, optimizer):
    """The Trainer's optimisers are PyTorch's fused ones: the numbers of its CPU default loop, to float32 rounding.

    A large learning rate and weight decay make every option visible: a decay or momentum left out would move
    a parameter by ~1e-3 or more, against a tolerance of 1e-5."""
    import copy
    import inspect

    momentum = 0.9 if optimizer == "sgd" else 0.0  # momentum with Adam is an error (it would not be applied)
    trainer = build_trainer(toy, **{**FAST, "lr": 0.05}, optimizer=optimizer, weight_decay=0.05, momentum=momentum)
    assert trainer.optimizer.defaults["fused"] is True
    model = copy.deepcopy(trainer.model)
    start = [p.detach().clone() for p in model.parameters()]
    kind = type(trainer.optimizer)
    options = {k: v for k, v in trainer.optimizer.defaults.items() if k in inspect.signature(kind).parameters}
    reference = kind(model.parameters(), **{**options, "fused": False, "foreach": False})
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        for p, q in zip(trainer.model.parameters(), model.parameters()):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        trainer.optimizer.step()
        reference.step()
    for p, q, p0 in zip(trainer.model.parameters(), model.parameters(), start):
        assert (q - p0).abs().max() > 1e-2  # the steps moved every parameter, far beyond the tolerance
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-5)
