import json

import pytest
import torch

from mtl_lab import data as datasets
from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData
from mtl_lab.grouping import agglomerative, best_partition, measure_affinity, propose_groups, set_partitions
from mtl_lab.history import History
from mtl_lab.models import ARCHITECTURES, CrossStitch, Fused, HardSharing, SoftSharing, TaskRelation, build_model
from mtl_lab.models.cascade import Cascade
from mtl_lab.plots import gates_figure, matrix_figure, signature_figure
from mtl_lab.training import build_trainer
from mtl_lab.weighting import METHODS

SMALL = {
    "hard": {"hidden": (24, 16)},
    "soft_sharing": {"hidden": (24, 16)},
    "cross_stitch": {"hidden": (24, 16)},
    "mmoe": {"num_experts": 3, "hidden": (16,), "tower_hidden": (8,)},
    "omoe": {"num_experts": 3, "hidden": (16,), "tower_hidden": (8,)},
    "dselect_k": {"num_experts": 4, "k": 2, "hidden": (16,), "tower_hidden": (8,)},
    "cgc": {"hidden": (16,), "tower_hidden": (8,)},
    "ple": {"hidden": (16,), "tower_hidden": (8,)},
    "mtan_lite": {"channels": (4, 8), "out_dim": 16},
    "grouped": {"hidden": (24,)},
    "fused": {"hidden": (24,), "fuse_hidden": (16,)},
    "relation": {"hidden": (24,)},
    "cascade": {"hidden": (24,)},
}
DIGIT_OPTIONS = {
    "grouped": {"groups": [["digit", "parity", "ge5"], ["recon"], ["ink"]]},
    "cascade": {"dependencies": {"parity": ["digit"], "ge5": ["digit"]}},
}


@pytest.fixture(scope="module")
def all_data() -> dict[str, MultiTaskData]:
    return {
        "digits": datasets.load("digits"),
        "multidigits": datasets.load("multidigits", n_train=64, n_val=16, n_test=16),
        "mmoe_synthetic": datasets.load("mmoe_synthetic", n=200),
        "linnerud": datasets.load("linnerud"),
        "localization": datasets.load("localization", n_train=64, n_val=16, n_test=16),
    }


@pytest.fixture(scope="module")
def digits(all_data) -> MultiTaskData:
    return all_data["digits"]


def digit_model(arch: str, digits: MultiTaskData):
    """A small model of the architecture for the digits tasks, seeded."""
    torch.manual_seed(0)
    return build_model(arch, digits, **SMALL[arch], **DIGIT_OPTIONS.get(arch, {}))


def test_registry_names():
    assert set(ARCHITECTURES) == {
        "hard", "soft_sharing", "cross_stitch", "mmoe", "omoe", "cgc", "ple", "mtan_lite", "grouped", "fused",
        "relation", "cascade", "dselect_k",
    }
    assert all(cls.architecture == name for name, cls in ARCHITECTURES.items())


@pytest.mark.parametrize("name", ["digits", "multidigits", "mmoe_synthetic", "linnerud", "localization"])
@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_default_model_gives_every_task_its_output(arch, name, all_data):
    data = all_data[name]
    torch.manual_seed(0)
    if arch == "mtan_lite" and len(data.input_shape) != 3:
        with pytest.raises(ValueError, match="image inputs"):
            build_model(arch, data)
        return
    model = build_model(arch, data)
    x, _ = next(data.train.batches(5))
    out = model(x)
    assert list(out) == data.task_names
    for task in data.tasks:
        assert out[task.name].shape == (5, task.out_dim)
    counts = model.parameter_count()
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert counts["shared"] + sum(counts[n] for n in data.task_names) == counts["total"]
    json.dumps(model.describe())
    json.dumps(model.inspect())


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_parameter_groups_are_exact_and_encode_decode_split_them(arch, digits):
    """Shared + per-task groups cover every parameter once; a task's parameters get no other task's gradient."""
    model = digit_model(arch, digits).double()
    x, y = next(digits.train.batches(16))
    x = x.double()
    y = {k: v.double() if v.dtype.is_floating_point else v for k, v in y.items()}
    shared = model.shared_parameters()
    owned = {n: model.task_parameters(n) for n in digits.task_names}
    ids = [id(p) for p in shared] + [id(p) for ps in owned.values() for p in ps]
    assert len(ids) == len(set(ids)) and set(ids) == {id(p) for p in model.parameters()}
    out = model(x)
    losses = {t.name: t.loss(out[t.name], y[t.name]) for t in digits.tasks}
    for s in digits.task_names:
        for t in digits.task_names:
            if s == t or not owned[t]:
                continue
            grads = torch.autograd.grad(losses[s], owned[t], retain_graph=True, allow_unused=True)
            assert all(g is None or not g.any() for g in grads), f"{s}'s loss reaches {t}'s parameters"
    if not model.has_shared_trunk:
        with pytest.raises(NotImplementedError):
            model.encode(x)
        return
    rep = model.encode(x)
    task_params = [p for ps in owned.values() for p in ps]
    before = torch.autograd.grad(rep.sum(), task_params, allow_unused=True)
    assert all(g is None for g in before), "task parameters must not feed the shared representation"
    rep2 = rep.detach().requires_grad_(True)
    out2 = model.decode(rep2)
    for name in digits.task_names:
        torch.testing.assert_close(out2[name], out[name])
    total = sum(t.loss(out2[t.name], y[t.name]) for t in digits.tasks)
    after = torch.autograd.grad(total, shared, allow_unused=True)
    assert all(g is None or not g.any() for g in after), "shared parameters must all lie before the representation"


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_a_few_training_steps_reduce_every_task_loss(arch, digits, toy):
    data = digits if arch == "mtan_lite" else toy
    options = {**SMALL[arch], **(DIGIT_OPTIONS.get(arch, {}) if data is digits else {})}
    if arch == "cascade" and data is not digits:
        options["dependencies"] = {"yes": ["cls"]}
    if arch == "grouped" and data is not digits:
        options["groups"] = [["cls", "yes"], ["reg"]]
    trainer = build_trainer(data, arch, "equal", model_options=options, epochs=60, batch_size=64, lr=3e-3,
                            diagnostics_every=0, evaluate=False, train_metrics=False)
    before, _ = trainer.evaluate("train")
    trainer.fit(max_steps=40)
    after, _ = trainer.evaluate("train")
    for name in data.task_names:
        assert after[name] < before[name], f"{arch}: {name} went from {before[name]} to {after[name]}"


# ---------------------------------------------------------------- soft sharing


def test_soft_sharing_penalty_is_zero_for_equal_columns_and_pulls_them_together(toy):
    torch.manual_seed(0)
    same = SoftSharing(toy.tasks, toy.input_shape, hidden=(8,), coupling=0.5)
    assert float(same.regularizer().detach()) == 0.0
    torch.manual_seed(0)
    model = SoftSharing(toy.tasks, toy.input_shape, hidden=(8,), coupling=0.5, same_init=False)
    theta = model.column_vectors().detach()
    want = 0.5 * sum((theta[i] - theta[j]).pow(2).sum() for i in range(3) for j in range(i + 1, 3))
    torch.testing.assert_close(model.regularizer().detach(), want)
    assert model.shared_parameters() == [] and not model.has_shared_trunk
    # the penalty's gradient moves every column towards the others
    before = model.distances().detach()
    grads = torch.autograd.grad(model.regularizer(), list(model.columns.parameters()))
    with torch.no_grad():
        for p, g in zip(model.columns.parameters(), grads):
            p -= 0.1 * g
    after = model.distances().detach()
    off = ~torch.eye(3, dtype=torch.bool)
    assert (after[off] < before[off]).all()
    assert SoftSharing(toy.tasks, toy.input_shape, hidden=(8,), coupling=0.0).regularizer() is None
    with pytest.raises(ValueError, match="coupling"):
        SoftSharing(toy.tasks, toy.input_shape, coupling=-1.0)


def test_soft_sharing_trains_with_every_weighting_and_records_its_penalty(toy):
    for method in METHODS:
        trainer = build_trainer(toy, "soft_sharing", method, model_options={"hidden": (8,)}, epochs=1,
                                batch_size=64, diagnostics_every=1, evaluate=False, train_metrics=False)
        h = trainer.fit(max_steps=2)
        assert h.status == "paused", method
        assert len(h.regularizer) == len(h.steps) == 2
        assert h.diagnostics == [] and "not applicable" in h.meta["diagnostics"]
    h = build_trainer(toy, "soft_sharing", "equal", model_options={"hidden": (8,)}, epochs=2, batch_size=64,
                      diagnostics_every=2).fit()
    assert h.regularizer[0] == 0.0 and h.regularizer[-1] > 0.0
    assert [r["step"] for r in h.model_records] == list(range(0, len(h.steps), 2))
    assert len(h.model_records[-1]["distances"]) == 3
    again = History.from_json(h.to_json())
    assert again.regularizer == h.regularizer and again.model_records == h.model_records
    fig = signature_figure(h)
    assert "regularizer" in [line.get_label() for line in fig.axes[0].get_lines()]


# ---------------------------------------------------------------- cross-stitch


def test_cross_stitch_starts_near_identity_and_at_identity_is_separate_columns(toy):
    torch.manual_seed(0)
    model = CrossStitch(toy.tasks, toy.input_shape, hidden=(12, 8))
    alpha = model.stitches[0].alpha.detach()
    torch.testing.assert_close(alpha.diagonal(), torch.full((3,), 0.9))
    torch.testing.assert_close(alpha.sum(dim=1), torch.ones(3))
    with torch.no_grad():
        for unit in model.stitches:
            unit.alpha.copy_(torch.eye(3))
    x, _ = next(toy.train.batches(10))
    out = model(x)
    for name in toy.task_names:
        h = x
        for block in model.columns[name]:
            h = block(h)
        torch.testing.assert_close(out[name], model.heads[name](h))


# ---------------------------------------------------------------- mixtures of experts


@pytest.mark.parametrize("arch", ["mmoe", "omoe", "cgc", "ple", "dselect_k"])
def test_gates_are_distributions_and_are_recorded(arch, digits):
    model = digit_model(arch, digits)
    x, _ = next(digits.train.batches(12))
    model(x)
    names = model.describe()["gate_experts"]
    assert set(model.last_gates) == set(names)
    for gate, weights in model.last_gates.items():
        assert weights.shape == (12, len(names[gate])) and (weights >= 0).all()
        torch.testing.assert_close(weights.sum(dim=1), torch.ones(12))
    means = model.inspect()["gates"]
    assert all(abs(sum(w) - 1) < 1e-5 for w in means.values())


@pytest.mark.parametrize("arch", ["mmoe", "cgc"])
def test_the_gate_input_carried_in_the_representation_gets_no_gradient(arch, digits):
    model = digit_model(arch, digits)
    x, y = next(digits.train.batches(8))
    rep = model.encode(x).detach().requires_grad_(True)
    out = model.decode(rep)
    (grad,) = torch.autograd.grad(sum(t.loss(out[t.name], y[t.name]) for t in digits.tasks), rep)
    width = rep.shape[1] - x[0].numel()
    assert grad[:, :width].any() and not grad[:, width:].any()


def test_mixture_models_record_gates_over_time(digits):
    h = build_trainer(digits, "mmoe", "equal", model_options=SMALL["mmoe"], epochs=1, batch_size=128,
                      diagnostics_every=3, train_metrics=False).fit()
    assert [r["step"] for r in h.model_records] == list(range(0, len(h.steps), 3))
    assert set(h.model_records[0]["gates"]) == set(digits.task_names)
    assert gates_figure(h).axes


# ---------------------------------------------------------------- fusion


def test_fused_losses_equal_separate_heads_when_weights_are_tied(toy):
    torch.manual_seed(0)
    hard = HardSharing(toy.tasks, toy.input_shape, hidden=(12,))
    fused = Fused(toy.tasks, toy.input_shape, hidden=(12,), fuse_hidden=())
    fused.trunk.load_state_dict(hard.trunk.state_dict())
    for name in toy.task_names:
        fused.blocks[name].load_state_dict(hard.heads[name][0].state_dict())
    x, y = next(toy.train.batches(32))
    a, b = hard(x), fused(x)
    for task in toy.tasks:
        torch.testing.assert_close(task.loss(b[task.name], y[task.name]), task.loss(a[task.name], y[task.name]))
    # with a shared fusion layer the output is still one linear layer: the task blocks stacked
    model = Fused(toy.tasks, toy.input_shape, hidden=(12,), fuse_hidden=(6,))
    W, bias = model.output_layer()
    single = torch.nn.Linear(6, 3 + 1 + 2)
    with torch.no_grad():
        single.weight.copy_(W)
        single.bias.copy_(bias)
    whole = single(model.encode(x))
    torch.testing.assert_close(torch.cat([model(x)[n] for n in toy.task_names], dim=1), whole)


# ---------------------------------------------------------------- grouping


def planted_groups(n: int = 512, seed: int = 0) -> MultiTaskData:
    """a1, a2 read features 0-7 only, b1, b2 features 8-15 only; tasks within a pair are related."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 16, generator=g)
    za = x[:, :8] @ (torch.randn(8, 2, generator=g) / 8**0.5)
    zb = x[:, 8:] @ (torch.randn(8, 2, generator=g) / 8**0.5)
    y = {"a1": za[:, :1], "b1": zb[:, :1], "a2": za[:, :1] + 0.3 * za[:, 1:], "b2": zb[:, :1] + 0.3 * zb[:, 1:]}
    return MultiTaskData.from_tensors(x, y, [tasks.regression(k, 1) for k in y], seed=seed)


def test_grouping_recovers_planted_groups():
    data = planted_groups()
    affinity = measure_affinity(data, steps=30, hidden=(32, 32))
    assert affinity.task_names == ["a1", "b1", "a2", "b2"]
    for measure in ("gradient_cosine", "lookahead"):
        assert propose_groups(affinity.matrix(measure), data.task_names, 2) == [["a1", "a2"], ["b1", "b2"]]
    fig = matrix_figure(affinity.lookahead, data.task_names, "lookahead affinity")
    assert fig.axes


def test_grouping_reports_a_diverged_probe():
    data = planted_groups()
    with pytest.raises(ValueError, match="lower the probe's lr"):
        measure_affinity(data, steps=30, lr=1e6, hidden=(32, 32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        propose_groups([[1.0, float("nan")], [0.0, 1.0]], ["a", "b"])


def test_partitions_and_agglomerative_grouping():
    assert len(list(set_partitions(list(range(5)), 2))) == 15  # Stirling number S(5, 2)
    assert len(list(set_partitions(list(range(6)), 3))) == 90
    S = torch.tensor([[1.0, 0.8, 0.1, 0.0], [0.8, 1.0, 0.0, 0.1], [0.1, 0.0, 1.0, 0.7], [0.0, 0.1, 0.7, 1.0]])
    assert best_partition(S, 2) == [[0, 1], [2, 3]]
    assert agglomerative(S, threshold=0.3) == [[0, 1], [2, 3]]
    assert agglomerative(S, threshold=-1.0) == [[0, 1, 2, 3]]
    with pytest.raises(ValueError, match="n_groups"):
        best_partition(S, 5)


def test_grouped_checks_groups_and_auto_groups_run_a_probe(toy):
    with pytest.raises(ValueError, match="more than one group"):
        build_model("grouped", toy, groups=[["cls", "yes"], ["yes", "reg"]])
    with pytest.raises(ValueError, match="in no group"):
        build_model("grouped", toy, groups=[["cls", "yes"]])
    with pytest.raises(ValueError, match="unknown task"):
        build_model("grouped", toy, groups=[["cls", "yes", "reg", "nope"]])
    with pytest.raises(ValueError, match="probe run"):
        build_model("grouped", toy, groups="auto")
    assert build_model("grouped", toy).groups == {"classification": ["cls", "yes"], "regression": ["reg"]}
    trainer = build_trainer(toy, "grouped", model_options={"groups": "auto", "hidden": (16,),
                                                          "grouping": {"n_groups": 2, "steps": 5, "hidden": (16,)}},
                            epochs=1)
    meta = trainer.history.meta["model"]
    assert len(meta["groups"]) == 2 and len(meta["affinity"]["lookahead"]) == 3


# ---------------------------------------------------------------- task relations and cascades


def test_relation_omega_closed_form_and_recording(toy):
    torch.manual_seed(0)
    model = TaskRelation(toy.tasks, toy.input_shape, hidden=(16,), strength=1e-2, update_every=3)
    assert model.level == "unit" and model.columns == ["cls[0]", "cls[1]", "cls[2]", "yes", "reg[0]", "reg[1]"]
    model.update_omega()
    omega, inverse = model.omega.double(), model.omega_inv.double()
    torch.testing.assert_close(omega, omega.T)
    assert abs(float(omega.trace()) - 1) < 1e-5 and float(torch.linalg.eigvalsh(omega).min()) > 0
    torch.testing.assert_close(omega @ inverse, torch.eye(6, dtype=torch.float64), atol=1e-4, rtol=0)
    # at the optimal Ω the penalty is λ·(trace norm of W)²
    W = model.weight_columns().detach().double()
    nuclear = torch.linalg.svdvals(W).sum()
    torch.testing.assert_close(model.regularizer().double(), 1e-2 * nuclear**2, rtol=1e-3, atol=0)
    with pytest.raises(ValueError, match="same number of outputs"):
        TaskRelation(toy.tasks, toy.input_shape, level="task")
    h = build_trainer(toy, "relation", "equal", model_options={"hidden": (16,), "update_every": 2}, epochs=2,
                      batch_size=32, diagnostics_every=2).fit()
    relations = [r["task_relation"] for r in h.model_records]
    assert len(relations) == len(range(0, len(h.steps), 2)) and relations[0] != relations[-1]
    assert len(h.regularizer) == len(h.steps)


def test_cascade_orders_heads_and_checks_the_graph(digits):
    model = Cascade(digits.tasks, digits.input_shape, dependencies={"parity": ["digit"], "ge5": ["digit"]},
                    hidden=(16,))
    assert model.order[0] == "digit"
    assert model.heads["parity"][0].in_features == 16 + 10
    with pytest.raises(ValueError, match="cycle"):
        Cascade(digits.tasks, digits.input_shape, dependencies={"parity": ["digit"], "digit": ["parity"]})
    with pytest.raises(ValueError, match="unknown task"):
        Cascade(digits.tasks, digits.input_shape, dependencies={"parity": ["colour"]})
    with pytest.raises(ValueError, match="itself"):
        Cascade(digits.tasks, digits.input_shape, dependencies={"parity": ["parity"]})


def test_mtan_lite_masks_lie_between_zero_and_one(digits):
    model = digit_model("mtan_lite", digits)
    x, _ = next(digits.train.batches(6))
    model(x)
    for masks in model.last_masks.values():
        assert len(masks) == 2 and all(((m > 0) & (m < 1)).all() for m in masks)
    assert set(model.inspect()["attention"]) == set(digits.task_names)
