"""Multi-input mode (mtl_lab.training.inputs): each task draws its own batch from its own inputs every step.

The fixture: three tasks, each with its own random inputs and labels, of different sizes (31, 19 and 14
training rows), so that with batches of 8 the largest task needs 4 steps an epoch and the smaller ones wrap
around inside an epoch.
"""

from __future__ import annotations

import math
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_real_data import office_root

from mtl_lab import cli
from mtl_lab import data as datasets
from mtl_lab import tasks as T
from mtl_lab.data.multi_input import MultiInputData, TaskSplits
from mtl_lab.data.streaming import StreamedSplit
from mtl_lab.training import build_trainer
from mtl_lab.training.parallel import DataParallel
from mtl_lab.training.streams import TASK_SEED_STRIDE
from mtl_lab.weighting import METHODS, Combination, Weighting

SIZES = {"colour": 45, "size": 27, "price": 20}  # rows per task before the split (train 31, 19, 14)
OPTIONS = {"epochs": 2, "batch_size": 8, "lr": 1e-2, "diagnostics_every": 3, "device": "cpu", "seed": 5}
MODEL = {"hidden": (12,)}
REFUSED = {  # what multi-input mode cannot do, and the message saying so
    "mgda_ub": r"method 'mgda_ub' \(it needs the representation's gradients\) does not apply to multi-input data",
}


def make_data(seed: int = 0) -> MultiInputData:
    g = torch.Generator().manual_seed(seed)
    inputs = {task: torch.randn(n, 6, generator=g) + k for k, (task, n) in enumerate(SIZES.items())}
    targets = {
        "colour": torch.randint(0, 3, (SIZES["colour"],), generator=g),
        "size": torch.randint(0, 2, (SIZES["size"],), generator=g).float(),
        "price": torch.randn(SIZES["price"], 2, generator=g),
    }
    tasks = [T.classification("colour", 3), T.binary("size"), T.regression("price", 2)]
    return MultiInputData.from_tensors(inputs, targets, tasks, seed=seed)


DATA = make_data()


def flat_parameters(trainer) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()]).double()


# --------------------------------------------------------------------------- the data form


def test_each_task_has_its_own_disjoint_rows_and_one_normalisation():
    sizes = DATA.summary()["sizes"]
    assert sizes["train"] == {"colour": 31, "size": 19, "price": 14}
    assert {t: sizes["train"][t] + sizes["val"][t] + sizes["test"][t] for t in SIZES} == SIZES
    assert DATA.input_shape == (6,) and len(DATA.train) == 64
    for task in SIZES:
        assert list(DATA.train[task].y) == [task]  # a task's rows hold its own targets only
    pooled = torch.cat([DATA.train[t].x for t in SIZES])  # normalised with every task's training rows together
    torch.testing.assert_close(pooled.mean(0), torch.zeros(6), atol=1e-5, rtol=0)
    one = DATA.select(["price"])
    assert one.task_names == ["price"] and len(one.train) == 14


def test_malformed_multi_input_data_is_named():
    x = {"a": torch.randn(10, 3), "b": torch.randn(10, 4)}
    y = {"a": torch.zeros(10, dtype=torch.long), "b": torch.zeros(10, dtype=torch.long)}
    tasks = [T.classification("a", 2), T.classification("b", 2)]
    with pytest.raises(ValueError, match=r"the tasks. inputs differ in shape \[\(3,\), \(4,\)\]"):
        MultiInputData.from_tensors(x, y, tasks)
    with pytest.raises(ValueError, match=r"inputs must map every task to its own tensor: tasks \['a', 'b'\]"):
        MultiInputData.from_tensors({"a": x["a"]}, y, tasks)
    with pytest.raises(ValueError, match="task 'b': target has 9 rows, the inputs have 10"):
        MultiInputData.from_tensors({"a": x["a"], "b": x["a"]}, {"a": y["a"], "b": y["b"][:9]}, tasks)
    split = TaskSplits({"a": DATA.train["colour"]})
    with pytest.raises(ValueError, match=r"the train split has tasks \['a'\], expected \['colour'\]"):
        MultiInputData("bad", [T.classification("colour", 3)], split, split, split)


# --------------------------------------------------------------------------- batches and epochs


def test_each_task_draws_its_own_seeded_order_and_restarts_when_it_runs_out():
    trainer = build_trainer(DATA, "hard", "equal", MODEL, **OPTIONS)
    B, seed = OPTIONS["batch_size"], OPTIONS["seed"]
    drawn = {task: [] for task in SIZES}
    for _ in range(9):  # price (14 rows: 2 batches a pass) starts a new pass four times, colour (31: 4 a pass) twice
        x, y, masks = trainer.source.next()
        assert masks == {}
        for task in SIZES:
            drawn[task].append(x[task])
    for k, task in enumerate(SIZES):
        rows = DATA.train[task]
        g = torch.Generator().manual_seed(seed + TASK_SEED_STRIDE * k)
        expected = []
        while len(expected) < 9:  # pass after pass, each a new permutation from the task's own generator
            order = torch.randperm(len(rows), generator=g)
            expected += [rows.x[order[i : i + B]] for i in range(0, len(rows), B)]
        for got, want in zip(drawn[task], expected[:9]):
            assert torch.equal(got, want), task


def test_extra_and_validation_batches_are_one_per_task_from_their_own_streams():
    """MoDo's extra batches (seed + 2) and Auto-λ's validation batches (seed + 3): each task from its own rows."""
    seed, B = OPTIONS["seed"], OPTIONS["batch_size"]
    for method, split, offset in (("modo", DATA.train, 2), ("auto_lambda", DATA.val, 3)):
        trainer = build_trainer(DATA, "hard", method, MODEL, **OPTIONS)
        stream = trainer.extra_batches if method == "modo" else trainer.lookahead.batches
        x, y, _ = stream.next()
        for k, task in enumerate(SIZES):
            g = torch.Generator().manual_seed(seed + offset + TASK_SEED_STRIDE * k)
            rows = torch.randperm(len(split[task]), generator=g)[:B]
            assert torch.equal(x[task], split[task].x[rows]) and torch.equal(y[task], split[task].y[task][rows])


def test_an_epoch_is_the_largest_tasks_pass():
    trainer = build_trainer(DATA, "hard", "equal", MODEL, **OPTIONS)
    assert trainer.batches_per_epoch == max(math.ceil(n / 8) for n in (31, 19, 14)) == 4
    history = trainer.fit()
    assert trainer.global_step == 8 and [e["step"] for e in history.epochs] == [4, 8]
    assert history.status == "completed"


# --------------------------------------------------------------------------- forward, losses, G


class Spy(Weighting):
    """Equal weights from ``G``, keeping the ``G`` it was given."""

    name = "spy"
    requires = "grads"

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def combine(self, losses, grads, ctx) -> Combination:
        self.seen.append(grads.clone())
        return Combination(torch.ones_like(losses))


def test_G_rows_are_each_tasks_gradient_on_its_own_batch_by_hand():
    spy = Spy()
    trainer = build_trainer(DATA, "hard", spy, MODEL, **{**OPTIONS, "diagnostics_every": 0})
    x, y, masks = trainer.source.next()
    model = trainer.model
    expected, expected_losses = [], []
    for task in DATA.tasks:
        loss = task.loss(model(x[task.name])[task.name], y[task.name])  # task t's own forward pass and head
        grads = torch.autograd.grad(loss, trainer.shared)
        expected.append(torch.cat([g.reshape(-1) for g in grads]))
        expected_losses.append(float(loss.detach()))
    heads = {t: [p.detach().clone() for p in trainer.model.task_parameters(t)] for t in SIZES}
    losses = trainer.train_step(x, y, masks)
    torch.testing.assert_close(spy.seen[0], torch.stack(expected), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(losses, torch.tensor(expected_losses), rtol=1e-6, atol=0)
    for task in SIZES:  # every head moved (each task's loss reaches its own head)
        assert any(not torch.equal(a, b) for a, b in zip(heads[task], trainer.model.task_parameters(task)))


def test_each_task_is_evaluated_on_its_own_rows():
    trainer = build_trainer(DATA, "hard", "equal", MODEL, **OPTIONS)
    trainer.fit(max_steps=3)
    losses, metrics = trainer.evaluate("test", batch_size=2)
    with torch.no_grad():
        for task in DATA.tasks:
            rows = DATA.test[task.name]
            out = trainer.model(rows.x)[task.name]
            assert losses[task.name] == pytest.approx(float(task.loss(out, rows.y[task.name])), rel=1e-5)
            assert metrics[task.name] == pytest.approx(task.metric(out, rows.y[task.name]), rel=1e-5)


# --------------------------------------------------------------------------- every method


@pytest.mark.parametrize("name", list(METHODS))
def test_every_method_trains_a_few_multi_input_steps_or_is_refused(name):
    if name in REFUSED:
        with pytest.raises(ValueError, match=REFUSED[name]):
            build_trainer(DATA, "hard", name, MODEL, **OPTIONS)
        return
    trainer = build_trainer(DATA, "hard", name, MODEL, **OPTIONS)
    start = flat_parameters(trainer)
    history = trainer.fit(max_steps=5)
    assert history.status == "paused" and trainer.global_step == 5
    assert all(len(row) == 3 and all(math.isfinite(v) for v in row) for row in history.weights)
    assert all(math.isfinite(v) for row in history.losses for v in row)
    assert (flat_parameters(trainer) - start).abs().max() > 0
    assert [d["step"] for d in history.diagnostics] == [0, 3]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"rep_grads": True}, r"rep_grads=True does not apply to multi-input data: each task's representation"),
        ({"gradient_path": "gramian"}, r"gradient_path='gramian' does not apply to multi-input data"),
    ],
)
def test_paths_that_need_one_forward_over_shared_rows_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        build_trainer(DATA, "hard", "mgda", MODEL, **{**OPTIONS, **options})


def test_automatic_task_grouping_is_refused_by_name():
    with pytest.raises(ValueError, match="each have their own inputs \\(multi-input data\\): give the groups yourself"):
        build_trainer(DATA, "grouped", "equal", {"groups": "auto"}, **OPTIONS)


def test_soft_sharing_trains_in_multi_input_mode():
    history = build_trainer(DATA, "cross_stitch", "pcgrad", **OPTIONS).fit(max_steps=3)
    assert history.status == "paused" and len(history.losses) == 3


# --------------------------------------------------------------------------- exact resume


@pytest.mark.parametrize("method", ["pcgrad", "modo", "auto_lambda"])
def test_resume_mid_epoch_is_exact(tmp_path, method):
    """2k steps in one go == k steps, save, load into a fresh trainer, k steps: identical parameters (the
    task streams stand mid-pass at different places; MoDo's extra and Auto-λ's validation streams too)."""
    k = 5
    whole = build_trainer(DATA, "hard", method, MODEL, **OPTIONS)
    whole.fit(max_steps=2 * k)
    first = build_trainer(DATA, "hard", method, MODEL, **OPTIONS)
    first.fit(max_steps=k)
    first.save(tmp_path / "run.pt")
    second = build_trainer(DATA, "hard", method, MODEL, **OPTIONS)
    second.load(tmp_path / "run.pt")
    second.fit(max_steps=k)
    assert torch.equal(flat_parameters(second), flat_parameters(whole))
    assert second.history.losses == whole.history.losses


# --------------------------------------------------------------------------- data parallelism (2 gloo ranks)

PARALLEL_METHODS = ["equal", "famo", "pcgrad", "modo", "auto_lambda"]


def rank_main(rank: int, world: int, port: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        data_parallel = DataParallel()
        out = {}
        for method in PARALLEL_METHODS:
            trainer = build_trainer(make_data(), "hard", method, MODEL, **OPTIONS)
            data_parallel.attach(trainer)
            history = trainer.fit()
            out[method] = {"params": flat_parameters(trainer), "losses": torch.tensor(history.losses)}
        torch.save(out, os.path.join(folder, f"rank{rank}.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def test_two_ranks_on_every_tasks_half_batches_match_one_process(tmp_path):
    """Each rank takes its rows of every task's batch (uneven: 8 → 4 + 4, 7 → 4 + 3, 3 → 2 + 1 …); whole-batch
    losses and G are those of one process, for loss weighting, a gradient method, FAMO (losses after the
    step), MoDo (extra batches per task) and Auto-λ (a validation batch per task)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_main, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    torch.set_num_threads(1)
    for method in PARALLEL_METHODS:
        reference = build_trainer(make_data(), "hard", method, MODEL, **OPTIONS)
        start = flat_parameters(reference)
        history = reference.fit()
        # float32 sums in another order only (measured ≤ 4e-7); Auto-λ's look-ahead on each rank's share of G
        # instead of the whole batch's drifted to 2e-4 in these 8 steps
        torch.testing.assert_close(ranks[0][method]["losses"], torch.tensor(history.losses), atol=2e-6, rtol=1e-5)
        torch.testing.assert_close(ranks[0][method]["params"], flat_parameters(reference), atol=2e-6, rtol=1e-5)
        assert torch.equal(ranks[0][method]["params"], ranks[1][method]["params"])  # the very same step
        assert (flat_parameters(reference) - start).abs().max() > 1e-3


# --------------------------------------------------------------------------- Office-31 and the command line


def test_office31_loads_multi_input_by_default(tmp_path):
    d = datasets.load("office31", root=str(office_root(tmp_path / "office")), size=8, workers=0)
    assert isinstance(d, MultiInputData) and d.task_names == ["amazon", "dslr", "webcam"]
    assert d.train.sizes() == {"amazon": 3, "dslr": 4, "webcam": 5}
    assert d.val.sizes() == {"amazon": 1, "dslr": 1, "webcam": 1}
    assert isinstance(d.train["dslr"], StreamedSplit)  # streamed from disk as before
    assert d.train["dslr"].y["dslr"].tolist() == [1, 2, 3, 4]
    masked = datasets.load("office31", root=str(tmp_path / "office"), size=8, workers=0, multi_input=False)
    x, y, _ = next(d.train["dslr"].batches(4, with_mask=True))
    rows = masked.train.mask["dslr"].nonzero().flatten()
    assert torch.equal(x, masked.train.x[rows])  # the same images, read per task
    trainer = build_trainer(d, "hard", "equal", {"trunk": "cnn"}, epochs=1, batch_size=2, device="cpu")
    assert trainer.batches_per_epoch == 3  # webcam: 5 images in batches of 2
    assert trainer.fit().status == "completed"


def test_the_command_line_trains_office31_in_multi_input_mode_and_refuses_with_the_apis_message(tmp_path, capsys):
    root = str(office_root(tmp_path / "office"))
    argv = ["run", "--data", "office31", "--root", root, "--data-option", "size=8", "--data-option", "workers=0",
            "--trunk", "cnn", "--epochs", "1", "--batch-size", "2", "--device", "cpu", "--no-baselines", "--quiet"]
    assert cli.main([*argv, "--methods", "pcgrad", "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.md").read_text()
    assert "office31" in report
    status = cli.main([*argv, "--methods", "mgda_ub", "--out", str(tmp_path / "refused")])
    assert status != 0
    assert "method 'mgda_ub' (it needs the representation's gradients) does not apply to multi-input data" in (
        capsys.readouterr().err)
    assert not (tmp_path / "refused").exists()  # refused before any folder is made


def test_the_lab_panel_refuses_with_the_apis_message(tmp_path):
    from mtl_lab.widgets.config import LabConfig

    options = {"root": str(office_root(tmp_path / "office")), "size": 8, "workers": 0}
    with pytest.raises(ValueError, match=REFUSED["mgda_ub"]):
        LabConfig(data="office31", data_options=options, method="mgda_ub", device="cpu").check()
    LabConfig(data="office31", data_options=options, method="mgda", device="cpu").check()  # mgda is fine


def test_office31_streamed_from_disk_resumes_exactly(tmp_path):
    root = str(office_root(tmp_path / "office"))
    d = datasets.load("office31", root=root, size=8, workers=0, cache=False)  # JPEGs decoded batch by batch
    options = {"epochs": 3, "batch_size": 2, "device": "cpu", "lr": 1e-2, "seed": 1}
    whole = build_trainer(d, "hard", "pcgrad", {"trunk": "cnn"}, **options)
    whole.fit(max_steps=4)  # 3 steps an epoch: one epoch and one step, amazon and dslr mid-pass
    first = build_trainer(d, "hard", "pcgrad", {"trunk": "cnn"}, **options)
    first.fit(max_steps=2)
    first.save(tmp_path / "run.pt")
    second = build_trainer(d, "hard", "pcgrad", {"trunk": "cnn"}, **options)
    second.load(tmp_path / "run.pt")
    second.fit(max_steps=2)
    assert torch.equal(flat_parameters(second), flat_parameters(whole))
