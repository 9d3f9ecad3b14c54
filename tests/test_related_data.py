"""The `related` data set: shared low-rank task weights, few disjoint labels per task, and its two knobs."""

import pytest
import torch

from mtl_lab.data import load
from mtl_lab.data.related import related, task_weights
from mtl_lab.metrics import baseline_metrics, delta_m, directions, single_task_baselines
from mtl_lab.training import build_trainer


def test_each_training_row_is_labelled_for_exactly_one_task():
    data = related(labels_per_task=7, n_tasks=4, n_val=30, n_test=40)
    assert len(data.train) == 28 and data.task_names == ["t0", "t1", "t2", "t3"]
    labelled = torch.stack([data.train.mask[t] for t in data.task_names])
    assert torch.equal(labelled.sum(dim=0), torch.ones(28, dtype=torch.long))
    assert [data.train.n_labelled(t) for t in data.task_names] == [7, 7, 7, 7]
    assert data.val.mask == {} and data.test.mask == {} and len(data.val) == 30 and len(data.test) == 40
    assert data.summary()["labelled"]["train"] == {"t0": 7, "t1": 7, "t2": 7, "t3": 7}


def test_targets_are_the_linear_tasks_plus_noise():
    W = task_weights(n_tasks=3, d=10, rank=2, relatedness=0.7, seed=5)
    exact = related(relatedness=0.7, n_tasks=3, d=10, noise=0.0, seed=5)
    for split in ("train", "val", "test"):
        part = getattr(exact, split)
        for k, t in enumerate(exact.task_names):
            rows = part.labelled(t)
            expected = (part.x[rows].double() @ W[k]).float()
            torch.testing.assert_close(part.y[t][rows, 0], expected, rtol=1e-5, atol=1e-5)
    noisy = related(relatedness=0.7, n_tasks=3, d=10, noise=0.3, seed=5, n_test=4000)
    residual = noisy.test.y["t1"][:, 0].double() - noisy.test.x.double() @ W[1]
    assert float(residual.std()) == pytest.approx(0.3, rel=0.05)


def test_relatedness_sets_the_rank_of_the_task_weights():
    assert torch.allclose(task_weights(relatedness=0.3).norm(dim=1), torch.ones(6, dtype=torch.float64))
    s_shared = torch.linalg.svdvals(task_weights(n_tasks=6, d=20, rank=2, relatedness=1.0))
    assert float(s_shared[2:].max()) < 1e-12  # every w_t lies in the rank-2 subspace
    s_private = torch.linalg.svdvals(task_weights(n_tasks=6, d=20, rank=2, relatedness=0.0))
    assert float(s_private.min()) > 0.3  # unrelated directions: full rank
    a, b = related(relatedness=1.0, seed=2), related(relatedness=0.0, seed=2)
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.y["t0"], b.train.y["t0"])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"relatedness": 1.5}, r"relatedness must be a number in \[0, 1\], got 1.5"),
        ({"labels_per_task": 0}, "labels_per_task must be an int ≥ 1, got 0"),
        ({"rank": 25}, "rank must be ≤ d = 20, got 25"),
        ({"noise": -1.0}, "noise .* must be a finite number ≥ 0, got -1.0"),
    ],
)
def test_bad_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        related(**options)


def test_registered_and_loadable():
    data = load("related", relatedness=0.5, labels_per_task=10)
    assert data.info["relatedness"] == 0.5 and data.info["labels_per_task"] == 10


TRAIN = dict(epochs=100, lr=0.02, diagnostics_every=0, evaluate=False, train_metrics=False, device="cpu", seed=0)


def sharing_gain(data) -> float:
    """Δm % of hard sharing against single-task models (full-batch training, as in notebook 01)."""
    options = {**TRAIN, "batch_size": len(data.train)}
    shared = build_trainer(data, "hard", "equal", {"hidden": (8,)}, **options).fit().meta["test_metrics"]
    single = {}
    for task in data.task_names:  # each single-task model on its own rows, full batch too
        alone = data.select([task])
        history = single_task_baselines(alone, "hard", {"hidden": (8,)}, **{**options, "batch_size": len(alone.train)})
        single.update(baseline_metrics(history))
    return delta_m(shared, single, directions(data))


def test_sharing_helps_related_tasks_and_hurts_unrelated_ones():
    assert sharing_gain(related(seed=0)) > 15.0
    assert sharing_gain(related(relatedness=0.0, seed=0)) < -15.0


def test_uncoupled_soft_sharing_is_single_task_training_side_by_side():
    """Notebook 01's baseline: full-batch soft sharing with λ = 0 trains each column exactly as a separate
    single-task model on the task's own labelled rows would be trained (same start, same steps)."""
    from mtl_lab.models import HardSharing, SoftSharing
    from mtl_lab.training import Trainer

    data = related(labels_per_task=12, n_tasks=3, n_val=10, n_test=20, seed=1)
    options = dict(epochs=5, lr=0.02, diagnostics_every=0, evaluate=False, train_metrics=False, device="cpu")
    torch.manual_seed(0)
    columns = SoftSharing(data.tasks, data.input_shape, coupling=0.0, same_init=False, hidden=(8,))
    singles = {}
    for task in data.task_names:
        single = HardSharing([data.task(task)], data.input_shape, hidden=(8,))
        single.trunk.load_state_dict(columns.columns[task].state_dict())
        single.heads[task].load_state_dict(columns.heads[task].state_dict())
        own = data.select([task])
        Trainer(single, own, "equal", batch_size=len(own.train), **options).fit()
        singles[task] = single
    Trainer(columns, data, "equal", batch_size=len(data.train), **options).fit()
    for task, single in singles.items():
        for a, b in zip(single.trunk.parameters(), columns.columns[task].parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        for a, b in zip(single.heads[task].parameters(), columns.heads[task].parameters()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
