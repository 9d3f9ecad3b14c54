"""Data-parallel training (mtl_lab.training.parallel) against one process on the whole batch, for every method.

Two ranks on the gloo backend (spawned processes on 127.0.0.1), each on its part of every batch, must end
with the parameters that one process reaches on the whole batches, for every registered method
(``METHODS`` is read when the test runs, so methods added later are covered too). The batch size leaves
uneven shards (45 → 23 + 22 rows; the last batch 33 → 17 + 16) and the diagnostics path runs every third
step. Both ranks must also agree with each other exactly: they take the same step.
"""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from toy_data import make_toy

from mtl_lab import cli
from mtl_lab.training import build_trainer
from mtl_lab.training.parallel import DataParallel, launch, without_nproc
from mtl_lab.weighting import METHODS

OPTIONS = {"epochs": 2, "batch_size": 45, "lr": 1e-2, "diagnostics_every": 3, "device": "cpu", "seed": 3}
MODEL = {"hidden": (16,)}
# float32 training, 8 steps: the two computations differ only in the order of floating-point sums
ATOL, RTOL = 2e-5, 1e-4
# Methods whose result amplifies float rounding: SDMGrad's inner loop (20 projected SGD steps at lr 10 on the
# simplex) turns a 1e-7 relative change of the starting parameters into 6e-3 after these 8 steps (measured),
# so for it the two computations are compared where rounding has not been amplified yet: the losses of the
# first two steps (the second one already follows the first data-parallel update).
SENSITIVE = {"sdmgrad"}


def flat_parameters(trainer) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in trainer.model.parameters()]).double()


def train(method: str, data, data_parallel: DataParallel | None) -> dict:
    trainer = build_trainer(data, "hard", method, MODEL, **OPTIONS)
    if data_parallel is not None:
        data_parallel.attach(trainer)
    history = trainer.fit()
    return {"params": flat_parameters(trainer), "losses": torch.tensor(history.losses), "status": history.status}


def rank_main(rank: int, world: int, port: int, methods: list[str], folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        data_parallel = DataParallel()
        data = make_toy()
        out = {}
        for method in methods:
            data_parallel.bytes = 0
            try:
                out[method] = train(method, data, data_parallel)
            except Exception as exc:  # reported by the test, per method
                out[method] = {"error": f"{type(exc).__name__}: {exc}"}
            out[method]["bytes"] = data_parallel.bytes
        # the command line as torchrun starts it: WORLD_SIZE set, the process group reused, then left
        os.environ["WORLD_SIZE"] = str(world)
        out["cli_out"] = Path(folder) / "cli"
        out["cli_status"] = cli.main([*CLI_RUN, "--out", str(out["cli_out"])])
        torch.save(out, os.path.join(folder, f"rank{rank}.pt"))
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    """Both ranks' results for every method: one process group, one spawn for the whole module."""
    folder = tmp_path_factory.mktemp("ranks")
    mp.spawn(rank_main, args=(2, free_port(), list(METHODS), str(folder)), nprocs=2, join=True)
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(2)]


@pytest.mark.parametrize("method", list(METHODS))
def test_two_ranks_on_half_batches_match_one_process_on_whole_batches(ranks, method):
    rank0, rank1 = ranks[0][method], ranks[1][method]
    assert "error" not in rank0, rank0.get("error")
    torch.set_num_threads(1)
    reference = train(method, make_toy(), None)
    assert rank0["status"] == reference["status"] == "completed"
    if method in SENSITIVE:
        torch.testing.assert_close(rank0["losses"][:2], reference["losses"][:2], atol=ATOL, rtol=RTOL)
    else:
        torch.testing.assert_close(rank0["losses"], reference["losses"], atol=ATOL, rtol=RTOL)
        torch.testing.assert_close(rank0["params"], reference["params"], atol=ATOL, rtol=RTOL)
    # the ranks take the very same steps
    assert torch.equal(rank0["params"], rank1["params"])
    # and training moved the parameters (a comparison of two untouched models would prove nothing)
    start = flat_parameters(build_trainer(make_toy(), "hard", method, MODEL, **OPTIONS))
    assert (reference["params"] - start).abs().max() > 1e-3


@pytest.mark.parametrize("method", ["equal", "uncertainty", "famo", "pcgrad", "mgda", "mgda_ub"])
def test_bytes_per_step_follow_the_readme_table(ranks, method):
    """README, "Scaling up": what each method family sends per step, in float32 numbers.

    Every step: the T losses and the average of all P gradients; gradient methods add G (T·P_s);
    representation methods add their block of Z (T·⌈B/N⌉·D); the diagnostics steps (every third)
    add G for the others; methods that look at the losses after the step (FAMO) add T more.
    """
    trainer = build_trainer(make_toy(), "hard", method, MODEL, **OPTIONS)
    T = len(trainer.task_names)
    P = sum(p.numel() for p in trainer.model.parameters())
    P_s = sum(p.numel() for p in trainer.shared)
    D = MODEL["hidden"][-1]
    batches = [45, 45, 45, 33] * 2  # 168 training rows in batches of 45, two epochs
    need = trainer.weighting.requires
    numbers = 0
    for step, B in enumerate(batches):
        numbers += T + P
        if need in ("grads", "gramian") or (step % 3 == 0):
            numbers += T * P_s
        if need == "rep_grads":
            numbers += T * math.ceil(B / 2) * D
        if trainer.weighting.needs_losses_after_step:
            numbers += T
    assert ranks[0][method]["bytes"] == ranks[1][method]["bytes"] == 4 * numbers


def test_shard_bounds_cover_the_batch_once():
    class Fake(DataParallel):
        def __init__(self, rank, world):  # no process group needed for the arithmetic
            self.rank, self.world, self.bytes = rank, world, 0

    x = torch.arange(10).float()[:, None]
    for world in (1, 2, 3, 4):
        rows = torch.cat([Fake(r, world).shard(x, {"t": x})[0] for r in range(world)])
        assert torch.equal(rows, x)
    with pytest.raises(ValueError, match="cannot be split among 4 ranks"):
        Fake(0, 4).shard(x[:3], {"t": x[:3]})


def test_data_parallel_needs_a_process_group():
    with pytest.raises(ValueError, match="init_process_group"):
        DataParallel()


def test_nproc_is_removed_from_the_forwarded_command_and_checked():
    assert without_nproc(["run", "--nproc", "2", "--out", "x", "--nproc=3"]) == ["run", "--out", "x"]
    with pytest.raises(ValueError, match="--nproc must be an int ≥ 1, got 0"):
        launch(0, [])



CLI_RUN = ["run", "--data", "linnerud", "--methods", "mgda", "--epochs", "3", "--batch-size", "8",
           "--device", "cpu", "--no-baselines", "--quiet"]


def test_the_command_line_as_two_ranks_writes_the_report_of_one_process(ranks, tmp_path):
    """``mtl-lab run`` under torchrun's variables (run in the same two spawned ranks): rank 0 alone writes
    the report, and its numbers are those of the same command in one process."""
    folder = ranks[0]["cli_out"]
    assert ranks[0]["cli_status"] == ranks[1]["cli_status"] == 0
    assert sorted(p.name for p in folder.iterdir()) == sorted(["report.md", "metrics.json", "history.json",
                                                                "curves.png", "curves_mgda.png"])
    assert cli.main([*CLI_RUN, "--out", str(tmp_path)]) == 0
    two = json.loads((folder / "metrics.json").read_text())["runs"]
    one = json.loads((tmp_path / "metrics.json").read_text())["runs"]
    for task, value in one["mgda"]["test_metrics"].items():
        assert two["mgda"]["test_metrics"][task] == pytest.approx(value, rel=1e-4, abs=1e-5), task
