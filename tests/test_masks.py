"""Per-task missing labels: data, losses, gradients, every method and architecture, metrics, baselines."""

import math
from dataclasses import replace

import pytest
import torch
from toy_data import make_toy

from mtl_lab import data as datasets
from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData, Split
from mtl_lab.gradients import task_gradients
from mtl_lab.metrics import single_task_baselines
from mtl_lab.models import ARCHITECTURES, DENSE_ARCHITECTURES
from mtl_lab.training import build_trainer, masks
from mtl_lab.weighting import METHODS, StepContext

SMALL = {
    "hard": {"hidden": (16,)},
    "soft_sharing": {"hidden": (16,)},
    "cross_stitch": {"hidden": (16,)},
    "mmoe": {"num_experts": 2, "hidden": (8,), "tower_hidden": (4,)},
    "omoe": {"num_experts": 2, "hidden": (8,), "tower_hidden": (4,)},
    "cgc": {"hidden": (8,), "tower_hidden": (4,)},
    "ple": {"hidden": (8,), "tower_hidden": (4,)},
    "dselect_k": {"num_experts": 4, "k": 2, "hidden": (8,), "tower_hidden": (4,)},
    "mtan_lite": {"channels": (2, 4), "out_dim": 8},
    "grouped": {"hidden": (16,)},
    "fused": {"hidden": (16,), "fuse_hidden": (8,)},
    "relation": {"hidden": (16,)},
    "cascade": {"hidden": (16,)},
    "segnet_lite": {"channels": (2, 4)},
    "mtan_dense": {"channels": (2, 4)},
    "ltb": {"hidden": (16, 8)},
}


def masked_toy(n: int = 240, seed: int = 0) -> MultiTaskData:
    """The toy data with 'cls' labelled on 30 % of the rows and 'reg' on 60 % (NaN where unlabelled)."""
    full = make_toy(n, seed)
    g = torch.Generator().manual_seed(seed + 7)
    x = torch.randn(n, 10, generator=g)
    m_cls = torch.rand(n, generator=g) < 0.3
    m_reg = torch.rand(n, generator=g) < 0.6
    reg = torch.stack([x[:, 4] - x[:, 5], x[:, 6] * 0.5], dim=1)
    reg[~m_reg] = float("nan")
    targets = {"cls": (x[:, 0] > 0).long() + (x[:, 1] > 1).long(), "yes": (x[:, 2] + x[:, 3] > 0).float(), "reg": reg}
    return MultiTaskData.from_tensors(x, targets, full.tasks, seed=seed, masks={"cls": m_cls, "reg": m_reg})


def masked_digits() -> MultiTaskData:
    """160 training digits with the 'digit' label on about a quarter of them."""
    d = datasets.load("digits").select(["digit", "parity", "ink"])
    train = d.train.take(torch.arange(160))
    mask = torch.rand(160, generator=torch.Generator().manual_seed(0)) < 0.25
    few = torch.arange(40)
    return replace(d, train=Split(train.x, train.y, {"digit": mask}), val=d.val.take(few), test=d.test.take(few))


def masked_scenes() -> MultiTaskData:
    """48 tiny scenes (16×16) with the depth maps of about a third of them missing."""
    d = datasets.load("scenes", n_train=48, n_val=8, n_test=8, size=16, max_shapes=2)
    mask = torch.rand(48, generator=torch.Generator().manual_seed(0)) < 0.35
    return replace(d, train=Split(d.train.x, d.train.y, {"depth": mask}))


def batch_without(data: MultiTaskData, absent: str, rows: int = 16):
    """The first ``rows`` training rows with every label of ``absent`` removed (other masks kept)."""
    x, y, m = next(data.train.batches(rows, with_mask=True))
    m = dict(m)
    m[absent] = torch.zeros(rows, dtype=torch.bool)
    return x, y, m


# ---------------------------------------------------------------- the data protocol


def test_from_tensors_stores_masks_and_zero_placeholders():
    data = masked_toy()
    for split in ("train", "val", "test"):
        part = getattr(data, split)
        assert set(part.mask) == {"cls", "reg"}
        assert part.mask["reg"].dtype == torch.bool and part.mask["reg"].shape == (len(part),)
        assert torch.equal(part.y["reg"][~part.mask["reg"]], torch.zeros(int((~part.mask["reg"]).sum()), 2))
        assert not torch.isnan(part.y["reg"]).any()
    total = sum(getattr(data, s).n_labelled("cls") for s in ("train", "val", "test"))
    assert 0.2 * 240 < total < 0.4 * 240
    assert data.train.n_labelled("yes") == len(data.train)
    assert data.summary()["labelled"]["train"]["cls"] == data.train.n_labelled("cls")


def test_missing_labels_must_be_explicit():
    x = torch.randn(20, 3)
    task = [tasks.regression("r")]
    y = torch.randn(20, 1)
    y[3] = float("nan")
    with pytest.raises(ValueError, match=r"task .r. has non-finite values \(nan …\) in rows \[3\].*with masks="):
        MultiTaskData.from_tensors(x, {"r": y}, task)
    labelled = torch.ones(20, dtype=torch.bool)
    with pytest.raises(ValueError, match="labelled row's target is NaN"):
        MultiTaskData.from_tensors(x, {"r": y}, task, masks={"r": labelled})
    with pytest.raises(ValueError, match=r"masks\['r'\] must be a boolean tensor of shape \[20\].*dtype torch.int64"):
        MultiTaskData.from_tensors(x, {"r": y}, task, masks={"r": torch.ones(20, dtype=torch.long)})
    with pytest.raises(ValueError, match=r"masks has task\(s\) \['q'\] that are not in the task list"):
        MultiTaskData.from_tensors(x, {"r": y}, task, masks={"q": labelled})
    with pytest.raises(ValueError, match=r"task\(s\) \['r'\] have no labelled row in the train split"):
        MultiTaskData.from_tensors(x, {"r": y}, task, masks={"r": torch.zeros(20, dtype=torch.bool)})


def test_select_drops_rows_without_a_kept_label():
    data = masked_toy()
    only_cls = data.select(["cls"])
    assert len(only_cls.train) == data.train.n_labelled("cls")
    assert bool(only_cls.train.mask["cls"].all())
    both = data.select(["cls", "reg"])
    assert len(both.train) == int((data.train.mask["cls"] | data.train.mask["reg"]).sum())
    assert len(data.select(["cls", "yes"]).train) == len(data.train)  # 'yes' is labelled on every row


def test_batches_carry_masks_of_their_rows():
    data = masked_toy()
    g = torch.Generator().manual_seed(3)
    seen = 0
    for x, _y, m in data.train.batches(32, shuffle=True, generator=g, with_mask=True):
        assert set(m) == {"cls", "reg"} and m["cls"].shape == (x.shape[0],)
        seen += int(m["cls"].sum())
    assert seen == data.train.n_labelled("cls")
    x, y = next(data.train.batches(8))  # without with_mask: the old (x, y) pairs
    assert x.shape[0] == 8


# ---------------------------------------------------------------- losses and gradients


def test_loss_is_the_mean_over_labelled_rows_and_ignores_placeholders():
    task = tasks.regression("r", dim=2)
    out = torch.randn(6, 2, requires_grad=True)
    y = torch.randn(6, 2)
    mask = torch.tensor([True, False, True, True, False, False])
    expected = ((out.detach()[mask] - y[mask]) ** 2).mean()
    loss = masks.task_loss(task, out, y, mask)
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-6, atol=0)
    (grad,) = torch.autograd.grad(loss, out)
    y_other = y.clone()
    y_other[~mask] = 1e6  # a different placeholder changes nothing
    (grad_other,) = torch.autograd.grad(masks.task_loss(task, out, y_other, mask), out)
    assert torch.equal(grad, grad_other)
    assert torch.equal(grad[~mask], torch.zeros(3, 2))


@pytest.mark.parametrize(
    "task", [tasks.classification("c", 3), tasks.binary("b"), tasks.regression("r"), tasks.box("x")]
)
def test_no_label_gives_zero_loss_and_zero_gradient(task):
    out = torch.randn(5, task.out_dim, requires_grad=True)
    y = torch.zeros(5, 4) if task.kind == "box" else torch.zeros(5, task.out_dim) if task.kind == "regression" else None
    y = torch.zeros(5, dtype=torch.long if task.kind == "multiclass" else torch.float) if y is None else y
    loss = masks.task_loss(task, out, y, torch.zeros(5, dtype=torch.bool))
    assert loss.item() == 0.0
    (grad,) = torch.autograd.grad(loss, out)
    assert torch.equal(grad, torch.zeros_like(out))
    assert math.isnan(masks.task_metric(task, out.detach(), y, torch.zeros(5, dtype=torch.bool)))


def test_absent_task_has_a_zero_row_in_G():
    data = masked_toy()
    trainer = build_trainer(data, "hard", "equal", {"hidden": (16,)}, seed=0)
    x, y, m = batch_without(data, "reg")
    losses = trainer.compute_losses(trainer.model(x), y, m)
    G, head_grads = task_gradients(losses, trainer.shared, trainer.heads)
    assert losses[2].item() == 0.0
    assert torch.equal(G[2], torch.zeros_like(G[2])) and G[0].norm() > 0 and G[1].norm() > 0
    assert all(torch.equal(g, torch.zeros_like(g)) for g in head_grads[2])


def test_equal_weighting_step_is_the_gradient_of_the_labelled_losses():
    """Reference: the summed per-task means over labelled rows, written out by hand."""
    data = masked_toy()
    trainer = build_trainer(data, "hard", "equal", {"hidden": (16,)}, seed=0, optimizer="sgd", lr=0.1)
    x, y, m = next(data.train.batches(24, with_mask=True))
    out = trainer.model(x)
    by_hand = (
        torch.nn.functional.cross_entropy(out["cls"][m["cls"]], y["cls"][m["cls"]])
        + torch.nn.functional.binary_cross_entropy_with_logits(out["yes"].reshape(-1), y["yes"])
        + ((out["reg"][m["reg"]] - y["reg"][m["reg"]]) ** 2).mean()
    )
    params = list(trainer.model.parameters())
    expected = [p.detach() - 0.1 * g for p, g in zip(params, torch.autograd.grad(by_hand, params))]
    trainer.train_step(x, y, m)
    for p, e in zip(params, expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- every method, every architecture


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_is_finite_when_a_task_has_no_label(method):
    data = masked_toy()
    trainer = build_trainer(data, "hard", method, {"hidden": (16,)}, seed=0, diagnostics_every=1, batch_size=16)
    reg_head = [p.detach().clone() for p in trainer.model.task_parameters("reg")]
    x, y, m = batch_without(data, "reg")
    losses = trainer.train_step(x, y, m)  # the first step: nothing carries momentum for 'reg' yet
    assert losses[2].item() == 0.0 and bool(torch.isfinite(losses).all())
    for p, before in zip(trainer.model.task_parameters("reg"), reg_head):
        assert torch.equal(p.detach(), before), "a task without labels must not move its own head"
    for _ in range(3):  # partially labelled batches, and again one without any 'reg' label
        x, y, m = next(data.train.batches(16, shuffle=True, generator=trainer.source.generator, with_mask=True))
        trainer.train_step(x, y, m)
        trainer.train_step(*batch_without(data, "cls"))
    trainer.flush()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert all(math.isfinite(w) for row in trainer.history.weights for w in row)
    for record in trainer.history.diagnostics:
        assert all(math.isfinite(v) for v in record["norms"] + record["weights"] + record["shares"])


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("method", ["equal", "mgda", "upgrad"])
def test_every_architecture_trains_on_partially_labelled_batches(arch, method):
    if arch in DENSE_ARCHITECTURES:
        data = masked_scenes()
    else:
        data = masked_digits() if arch == "mtan_lite" else masked_toy(n=160)  # MTAN needs images
    options = SMALL[arch]
    absent = data.task_names[0]
    trainer = build_trainer(data, arch, method, options, seed=0, epochs=1, batch_size=40, diagnostics_every=1)
    trainer.train_step(*batch_without(data, absent))
    history = trainer.fit()
    assert history.meta["status"] == "completed"
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert all(math.isfinite(v) for v in history.meta["test_metrics"].values())


# ---------------------------------------------------------------- records, metrics, baselines


def test_epoch_loss_averages_only_batches_with_labels():
    data = masked_toy()
    trainer = build_trainer(data, "hard", "equal", {"hidden": (16,)}, seed=0)
    x, y, m = next(data.train.batches(16, with_mask=True))
    a = trainer.train_step(x, y, m)
    b = trainer.train_step(*batch_without(data, "reg"))
    trainer.end_epoch()
    mean = trainer.history.epochs[-1]["train_loss"]
    assert mean["reg"] == pytest.approx(a[2].item(), rel=1e-6)  # not (a + 0) / 2
    assert mean["yes"] == pytest.approx((a[1].item() + b[1].item()) / 2, rel=1e-6)


def test_metrics_use_only_labelled_rows():
    data = masked_toy()
    trainer = build_trainer(data, "hard", "equal", {"hidden": (16,)}, seed=0, epochs=2)
    trainer.fit()
    _, metric = trainer.evaluate("test")
    with torch.no_grad():
        out = trainer.model(trainer.data.test.x)
    m = data.test.mask["cls"]
    expected = float((out["cls"][m].argmax(dim=1) == data.test.y["cls"][m]).float().mean())
    assert metric["cls"] == pytest.approx(expected)
    m = data.test.mask["reg"]
    assert metric["reg"] == pytest.approx(float(((out["reg"][m] - data.test.y["reg"][m]) ** 2).mean()), rel=1e-5)


def test_single_task_baselines_train_on_their_labelled_rows():
    data = masked_toy()
    base = single_task_baselines(data, "hard", {"hidden": (16,)}, epochs=1, batch_size=16, seed=0)
    assert base["cls"].meta["data"]["sizes"]["train"] == data.train.n_labelled("cls")
    assert base["yes"].meta["data"]["sizes"]["train"] == len(data.train)
    assert all(math.isfinite(h.meta["test_metrics"][t]) for t, h in base.items())


@pytest.mark.parametrize("method", sorted(METHODS))
def test_present_tasks_still_move_when_one_task_has_no_label(method):
    """A step without 'reg' labels still trains the shared trunk — except MGDA (and CR-MOGM, whose default inner
    method is MGDA), which by definition stops: a zero gradient row makes the min-norm point 0. Pareto MTL
    still moves: its hull also holds the sector constraints' gradients, which the present tasks make."""
    data = masked_toy()
    trainer = build_trainer(data, "hard", method, {"hidden": (16,)}, seed=0, optimizer="sgd", lr=0.1)
    shared = [p.detach().clone() for p in trainer.shared]
    trainer.train_step(*batch_without(data, "reg"))
    moved = max(float((p.detach() - s).abs().max()) for p, s in zip(trainer.shared, shared))
    trainer.flush()
    assert trainer.history.weights[-1][2] == 0.0  # the absent task's effective weight is recorded as 0
    if method in ("mgda", "mgda_ub", "cr_mogm"):
        assert moved < 1e-7
    else:
        assert moved > 1e-4


def test_stand_in_keeps_the_ratios_of_the_present_tasks():
    losses = torch.tensor([2.0, 0.5, 0.0], dtype=torch.float64)
    seen = masks.stand_in(losses, torch.tensor([1.0, 1.0, 0.0]))
    assert seen.tolist() == [2.0, 0.5, 1.25]
    assert masks.stand_in(losses, None) is losses
    assert masks.stand_in(torch.zeros(2), torch.zeros(2)).tolist() == [0.0, 0.0]
    inverse = METHODS["inverse_loss"]()
    inverse.reset(["a", "b", "c"])
    w = inverse.combine(seen, None, StepContext()).weights
    assert float(w[0] / w[1]) == pytest.approx(0.5 / 2.0)  # 1/L ratio of the two labelled tasks
    assert masks.effective_weights(w, torch.tensor([1.0, 1.0, 0.0]))[2] == 0


def test_the_cli_runs_on_partially_labelled_data(tmp_path):
    import json

    from mtl_lab.cli import main

    out = tmp_path / "report"
    argv = ["run", "--data", "related", "--data-option", "labels_per_task=10", "--methods", "equal,mgda",
            "--epochs", "2", "--batch-size", "16", "--hidden", "8", "--out", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"]["labelled"]["train"] == {f"t{k}": 10 for k in range(6)}
    assert set(metrics["runs"]["mgda"]["relative_changes"]) == {f"t{k}" for k in range(6)}
    assert all(math.isfinite(v) for v in metrics["runs"]["equal"]["test_metrics"].values())


def test_the_grouping_probe_refuses_missing_labels_instead_of_reading_placeholders():
    from mtl_lab.grouping import measure_affinity

    with pytest.raises(ValueError, match=r"needs every training row labelled; task\(s\) \['cls', 'reg'\] miss"):
        measure_affinity(masked_toy(), steps=2)


# --------------------------------------------------------------------------- every batch stream carries the masks


def one_label_per_row(n: int = 240, seed: int = 0) -> MultiTaskData:
    """Three regression tasks, every row (training, validation, test) labelled for exactly one of them."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    names = ["a", "b", "c"]
    targets = {name: (x[:, i : i + 2].sum(dim=1, keepdim=True) + 1.0) for i, name in enumerate(names)}
    row_masks = {name: torch.arange(n) % 3 == i for i, name in enumerate(names)}
    return MultiTaskData.from_tensors(x, targets, [tasks.regression(name) for name in names], masks=row_masks,
                                      val_fraction=0.25, test_fraction=0.25, seed=seed)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_batch_stream_carries_the_label_masks(method, monkeypatch):
    """The step's batch, the extra batches (SDMGrad, MoDo) and the look-ahead batches (Auto-λ): every loss of
    every method is a mean over labelled rows, so every call computing losses gets this batch's masks."""
    data = one_label_per_row()
    trainer = build_trainer(data, "hard", method, {"hidden": (8,)}, batch_size=24, diagnostics_every=0, seed=0)
    calls, shown = [], []
    real_losses, real_combine = masks.losses, trainer.weighting.combine

    def spy_losses(task_list, outputs, targets, batch_masks=None):
        result = real_losses(task_list, outputs, targets, batch_masks)
        calls.append((len(next(iter(targets.values()))), batch_masks, torch.stack([r.detach() for r in result])))
        return result

    def spy_combine(losses, grads, ctx):
        shown.append(losses.detach().clone())
        return real_combine(losses, grads, ctx)

    monkeypatch.setattr(masks, "losses", spy_losses)
    monkeypatch.setattr(trainer.weighting, "combine", spy_combine)
    trainer.fit(max_steps=2)
    streams = {"cross_gramian": 3, "lookahead": 2}.get(trainer.weighting.requires, 1)
    assert len(calls) >= 2 * streams, f"{method}: {len(calls)} loss computations in 2 steps"
    for rows, batch_masks, _ in calls:
        assert batch_masks is not None and sorted(batch_masks) == ["a", "b", "c"], f"{method}: masks {batch_masks}"
        labelled = torch.stack([batch_masks[name].long() for name in ("a", "b", "c")])
        assert labelled.shape == (3, rows) and torch.equal(labelled.sum(dim=0), torch.ones(rows, dtype=torch.long))
    # the method's view of the first step: the labelled-row losses of the step's own batch (its first loss call)
    assert shown and torch.equal(shown[0], calls[0][2].to(shown[0].dtype)), method
