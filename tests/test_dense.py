"""Dense prediction: the scenes data, the encoder–decoder architectures, every method on a feature-map trunk."""

import math

import pytest
import torch

from mtl_lab import data as datasets
from mtl_lab import tasks
from mtl_lab.gradients import representation_gradients, task_gradients
from mtl_lab.models import DENSE_ARCHITECTURES, build_model
from mtl_lab.training import build_trainer
from mtl_lab.training.rep_grad import check_rep_grads
from mtl_lab.weighting import METHODS, create

TINY = {"n_train": 16, "n_val": 4, "n_test": 4, "size": 16, "max_shapes": 2}
SMALL = {"channels": (4, 8)}
REP_METHODS = []
for _name in METHODS:
    try:
        check_rep_grads(create(_name), has_shared_trunk=True)
        REP_METHODS.append(_name)
    except ValueError:
        pass


@pytest.fixture(scope="module")
def tiny():
    return datasets.load("scenes", **TINY)


# ---------------------------------------------------------------- scenes


def test_scenes_are_seeded_and_labels_have_the_documented_conventions():
    a = datasets.load("scenes", **TINY, seed=3)
    b = datasets.load("scenes", **TINY, seed=3)
    torch.testing.assert_close(a.train.x, b.train.x, rtol=0, atol=0)
    assert a.input_shape == (3, 16, 16) and a.task_names == ["segmentation", "depth", "normal"]
    seg, depth, normal = (a.train.y[n] for n in a.task_names)
    assert seg.dtype == torch.int64 and int(seg.min()) == -1 and int(seg.max()) <= 3
    holes = depth[:, 0] == 0
    assert holes.any() and bool((normal.norm(dim=1)[holes] == 0).all())
    lengths = normal.norm(dim=1)[~holes]
    torch.testing.assert_close(lengths, torch.ones_like(lengths), rtol=0, atol=1e-5)
    assert bool((normal[:, 2][~holes] > 0).all())  # every visible surface faces the camera


def test_scenes_normals_agree_with_the_depth_of_flat_surfaces():
    """On planes (background, box faces) ``n ∝ (16·∂z/∂x, 16·∂z/∂y, 1)`` holds exactly for central differences."""
    d = datasets.load("scenes", n_train=8, n_val=0, n_test=0, size=32, depth_holes=0.0, seed=1)
    seg, z, n = d.train.y["segmentation"], d.train.y["depth"][:, 0].double(), d.train.y["normal"].double()
    same = torch.ones_like(seg[:, 1:-1, 1:-1], dtype=torch.bool)
    centre = seg[:, 1:-1, 1:-1]
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            same &= seg[:, 1 + dr : seg.shape[1] - 1 + dr, 1 + dc : seg.shape[2] - 1 + dc] == centre
    flat = same & ((centre == 0) | (centre == 3))
    dz_dx = 16 * (z[:, 1:-1, 2:] - z[:, 1:-1, :-2]) / 2
    dz_dy = 16 * (z[:, 2:, 1:-1] - z[:, :-2, 1:-1]) / 2
    nx, ny, nz = (n[:, k, 1:-1, 1:-1] for k in range(3))
    assert int(flat.sum()) > 1000
    torch.testing.assert_close((nx / nz)[flat], dz_dx[flat], rtol=0, atol=1e-3)
    torch.testing.assert_close((ny / nz)[flat], dz_dy[flat], rtol=0, atol=1e-3)


def test_scenes_knobs_change_only_what_they_say():
    base = datasets.load("scenes", **TINY)
    scaled = datasets.load("scenes", **TINY, depth_scale=100.0)
    torch.testing.assert_close(scaled.train.y["depth"], 100.0 * base.train.y["depth"])
    torch.testing.assert_close(scaled.train.x, base.train.x, rtol=0, atol=0)
    noisy = datasets.load("scenes", **{**TINY, "n_train": 64}, label_noise=0.5)
    clean = datasets.load("scenes", **{**TINY, "n_train": 64})
    torch.testing.assert_close(noisy.train.x, clean.train.x, rtol=0, atol=0)  # the same scenes
    torch.testing.assert_close(noisy.val.y["segmentation"], clean.val.y["segmentation"], rtol=0, atol=0)
    objects = clean.train.y["segmentation"] > 0
    changed = (noisy.train.y["segmentation"] != clean.train.y["segmentation"])[objects].float().mean()
    assert 0.25 < float(changed) < 0.75  # about half of the objects carry a wrong class
    with pytest.raises(ValueError, match=r"label_noise must be a number in \[0, 1\)"):
        datasets.load("scenes", label_noise=1.0)
    with pytest.raises(ValueError, match="size must be an int ≥ 16 and a multiple of 8"):
        datasets.load("scenes", size=20)


# ---------------------------------------------------------------- architectures


@pytest.mark.parametrize("arch", DENSE_ARCHITECTURES)
def test_dense_models_give_full_resolution_outputs_and_exact_parameter_groups(arch, tiny):
    torch.manual_seed(0)
    model = build_model(arch, tiny, **SMALL).double()
    x, y = next(tiny.train.batches(4))
    x = x.double()
    y = {k: v.double() if v.dtype.is_floating_point else v for k, v in y.items()}
    out = model(x)
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "segmentation": (4, 4, 16, 16), "depth": (4, 1, 16, 16), "normal": (4, 3, 16, 16)
    }
    shared = model.shared_parameters()
    owned = {n: model.task_parameters(n) for n in tiny.task_names}
    ids = [id(p) for p in shared] + [id(p) for ps in owned.values() for p in ps]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    losses = {t.name: t.loss(out[t.name], y[t.name]) for t in tiny.tasks}
    for s in tiny.task_names:
        for t in tiny.task_names:
            if s != t:
                grads = torch.autograd.grad(losses[s], owned[t], retain_graph=True, allow_unused=True)
                assert all(g is None or not g.any() for g in grads), f"{s}'s loss reaches {t}'s parameters"
    rep = model.encode(x)
    out2 = model.decode(rep.detach())
    for name in tiny.task_names:
        torch.testing.assert_close(out2[name], out[name])


def test_segnet_representation_is_a_feature_map_and_rep_grads_push_through_it_exactly(tiny):
    """``(∂z/∂θ)ᵀ (Zᵀw) = Gᵀw``: the trunk gradient from representation gradients equals the one from G."""
    torch.manual_seed(0)
    model = build_model("segnet_lite", tiny, **SMALL).double()
    x, y = next(tiny.train.batches(4))
    x = x.double()
    y = {k: v.double() if v.dtype.is_floating_point else v for k, v in y.items()}
    rep = model.encode(x)
    assert tuple(rep.shape) == (4, 4, 16, 16)
    out = model.decode(rep)
    losses = [t.loss(out[t.name], y[t.name]) for t in tiny.tasks]
    shared = model.shared_parameters()
    heads = [model.task_parameters(n) for n in tiny.task_names]
    G, _ = task_gradients(losses, shared, heads)
    Z, _ = representation_gradients(losses, rep, heads)
    assert tuple(Z.shape) == (3, 4 * 4 * 16 * 16)
    w = torch.tensor([0.5, 2.0, 1.0], dtype=torch.float64)
    through = torch.autograd.grad(rep, shared, grad_outputs=(w @ Z).view_as(rep))
    torch.testing.assert_close(torch.cat([g.reshape(-1) for g in through]), w @ G)


def test_dense_architectures_refuse_what_they_cannot_predict(tiny):
    digits = datasets.load("digits")
    with pytest.raises(ValueError, match=r"segnet_lite predicts one output per pixel; task\(s\) \['digit \(multic"):
        build_model("segnet_lite", digits.select(["digit"]))
    with pytest.raises(ValueError, match=r"architecture 'hard' predicts one output per image; task\(s\) \['segm"):
        build_model("hard", tiny)
    with pytest.raises(ValueError, match=r"image sides 16×16 must be multiples of 2\^5 = 32"):
        build_model("mtan_dense", tiny, channels=(2, 2, 2, 2, 2))


def test_mtan_dense_masks_lie_between_zero_and_one(tiny):
    model = build_model("mtan_dense", tiny, **SMALL)
    model(next(tiny.train.batches(4))[0])
    attention = model.inspect()["attention"]
    assert set(attention) == set(tiny.task_names)
    assert all(len(v) == 2 and all(0.0 < m < 1.0 for m in v) for v in attention.values())


# ---------------------------------------------------------------- every method on a dense model


def one_epoch(data, arch: str, method: str, **options):
    trainer = build_trainer(data, arch, method, SMALL, seed=0, epochs=1, batch_size=8, diagnostics_every=1,
                            evaluate=False, train_metrics=False, device="cpu", **options)
    before = [p.detach().clone() for p in trainer.model.shared_parameters()]
    history = trainer.fit()  # one epoch: two steps of 8 rows
    return trainer, history, before


def check_step(trainer, history, before) -> None:
    assert history.meta["status"] == "completed" and len(history.steps) == 2
    assert all(math.isfinite(v) for row in history.losses + history.weights for v in row)
    assert all(math.isfinite(v) for v in history.meta["test_metrics"].values())
    after = trainer.model.shared_parameters()
    assert any(not torch.equal(a, b) for a, b in zip(after, before)), "the shared trunk did not move"


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_takes_two_steps_on_segnet_lite(method, tiny):
    check_step(*one_epoch(tiny, "segnet_lite", method))


@pytest.mark.parametrize("method", REP_METHODS)
def test_every_rep_grads_method_takes_two_steps_on_segnet_lite(method, tiny):
    check_step(*one_epoch(tiny, "segnet_lite", method, rep_grads=True))


@pytest.mark.parametrize(
    ("method", "rep_grads"),
    [("equal", False), ("uncertainty", False), ("pcgrad", False), ("pcgrad", True), ("mgda", True), ("nash_mtl", True)],
)
def test_methods_take_two_steps_on_mtan_dense(method, rep_grads, tiny):
    check_step(*one_epoch(tiny, "mtan_dense", method, rep_grads=rep_grads))


def test_evaluation_accumulates_pixel_metrics_over_the_split(tiny):
    trainer = build_trainer(tiny, "segnet_lite", "equal", SMALL, seed=0, epochs=1, batch_size=3, device="cpu")
    losses, metrics = trainer.evaluate("train")  # batches of 3 over 16 rows: 5 full and one of 1
    model = trainer.model.eval()
    with torch.no_grad():
        out = model(tiny.train.x)
    for task in tiny.tasks:
        state = task.metric_state()
        state.update(out[task.name], tiny.train.y[task.name])
        assert metrics[task.name] == pytest.approx(state.result()[task.metric_name], rel=1e-5, abs=1e-4)
        assert losses[task.name] == pytest.approx(float(task.loss(out[task.name], tiny.train.y[task.name])), rel=1e-5)


def test_a_pixel_task_keeps_its_kind_in_specs():
    spec = tasks.normals().spec()
    assert spec["kind"] == "normals" and spec["metrics"][0] == "mean_angle"


def test_pixel_metrics_and_delta_m_by_task(tiny):
    from mtl_lab.metrics import delta_m_by_task, pixel_directions, pixel_metrics

    torch.manual_seed(0)
    model = build_model("segnet_lite", tiny, **SMALL)
    values = pixel_metrics(model, tiny, "test", batch_size=3)
    assert set(values) == set(pixel_directions(tiny)) and len(values) == 2 + 2 + 5
    assert pixel_directions(tiny)["depth/abs_err"] is False and pixel_directions(tiny)["normal/within_30"] is True
    values = {key: 0.5 for key in values}  # an untrained model may score 0 within 11.25°: no baseline
    better = dict(values)
    better["depth/abs_err"] = 0.45  # 10 % lower error: +10 % for that metric
    by_task = delta_m_by_task(better, values, tiny)
    assert by_task["depth"] == pytest.approx(5.0) and by_task["segmentation"] == pytest.approx(0.0)
    assert by_task["all"] == pytest.approx(10.0 / 9)


def test_prediction_strip_draws_input_prediction_and_truth_per_task(tiny):
    from mtl_lab.plots import to_png
    from mtl_lab.plots_dense import prediction_strip, predictions

    model = build_model("segnet_lite", tiny, **SMALL)
    x, y = next(tiny.test.batches(2))
    fig = prediction_strip(x, y, predictions(model, x), tiny.tasks, tiny.x_mean, tiny.x_std, title="t")
    assert len(fig.axes) == 2 * (1 + 2 * 3)
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "segmentation predicted", "segmentation true"]
    assert to_png(fig)[:4] == b"\x89PNG"
    from mtl_lab.plots_dense import task_panels

    normal = tiny.tasks[2]
    target = torch.zeros(3, 4, 5)
    target[2, :, :2] = 1.0  # two valid columns, facing the camera
    _, truth, _ = task_panels(normal, torch.ones(3, 4, 5), target)
    assert truth[:, :2].tolist() == [[[0.5, 0.5, 1.0]] * 2] * 4 and not truth[:, 2:].any()  # holes black
    with pytest.raises(ValueError, match="prediction_strip draws pixel tasks"):
        prediction_strip(x, y, {}, [tasks.classification("c", 2)])
