"""The golden gradients: the ``.grad`` of every parameter after one training step on a fixed batch.

One case per gradient path of the Trainer (loss weighting, per-task gradients ``G``, the Gramian on the
Jacobian path and on the linear-layer Gramian path, representation gradients, weights from other batches:
extra batches and the validation look-ahead), each with and without gradient diagnostics, in one process
and as rank 0 of a 2-rank gloo run. ``record()`` wrote ``tests/golden/*.pt`` before the training core was
restructured; ``tests/test_golden_grads.py`` checks the restructured core against them.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch
from toy_data import make_toy

from mtl_lab.training import build_trainer

FOLDER = Path(__file__).parent / "golden"
# name: (method, extra training options); l1 > 0 so the regulariser's place in the step is covered too
PATHS = {
    "losses": ("rlw", {}),
    "grads": ("pcgrad", {}),
    "gramian": ("mgda", {}),
    "gramian_engine": ("mgda", {"gradient_path": "gramian"}),
    "rep_grads": ("mgda", {"rep_grads": True}),
    "cross_gramian": ("sdmgrad", {}),
    "lookahead": ("auto_lambda", {}),
}
DISTRIBUTED_PATHS = [p for p in PATHS if p != "gramian_engine"]  # the Gramian engine refuses data parallelism
OPTIONS = {"batch_size": 40, "lr": 1e-2, "l1": 1e-3, "device": "cpu", "seed": 5}


def fingerprint() -> dict:
    """What decides float rounding: the same fingerprint must give the same bits."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"torch": str(torch.__version__), "cpu": cpu, "capability": torch.backends.cpu.get_cpu_capability(),
            "aten_cpu_capability": os.environ.get("ATEN_CPU_CAPABILITY", "")}


def one_step(path: str, diagnose: bool, data_parallel=None) -> dict:
    """Build the path's trainer, take one step on the first shuffled batch, return every parameter's grad."""
    method, extra = PATHS[path]
    data = make_toy()
    trainer = build_trainer(data, "hard", method, {"hidden": (8,)}, diagnostics_every=1 if diagnose else 0,
                            **OPTIONS, **extra)
    if data_parallel is not None:
        data_parallel.attach(trainer)
    torch.manual_seed(OPTIONS["seed"])
    x, y, masks = next(data.train.batches(OPTIONS["batch_size"], shuffle=True,
                                          generator=torch.Generator().manual_seed(11), with_mask=True))
    trainer.train_step(x, y, masks)
    trainer.flush()
    grads = {name: p.grad.detach().clone() for name, p in trainer.model.named_parameters() if p.grad is not None}
    diagnostics = trainer.history.diagnostics[0] if trainer.history.diagnostics else {}
    return {"grads": grads, "diagnostics": diagnostics, "weights": list(trainer.history.weights[0])}


def case_name(path: str, diagnose: bool, world: int) -> str:
    return f"{path}-{'diag' if diagnose else 'nodiag'}-{'single' if world == 1 else f'{world}ranks'}"


def single_process_cases() -> dict[str, dict]:
    return {case_name(p, d, 1): one_step(p, d) for p in PATHS for d in (False, True)}


def rank_main(rank: int, world: int, port: int, folder: str) -> None:
    """One rank of the gloo run: every data-parallel case, saved to ``folder/rank{rank}.pt``."""
    import torch.distributed as dist

    from mtl_lab.training.parallel import DataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        out = {}
        for path in DISTRIBUTED_PATHS:
            for diagnose in (False, True):
                out[case_name(path, diagnose, world)] = one_step(path, diagnose, DataParallel())
        torch.save(out, os.path.join(folder, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def distributed_cases(folder: str, world: int = 2) -> list[dict[str, dict]]:
    """Every rank's cases (spawned processes on 127.0.0.1)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(rank_main, args=(world, port, folder), nprocs=world, join=True)
    return [torch.load(os.path.join(folder, f"rank{r}.pt"), weights_only=True) for r in range(world)]


def record() -> None:
    """Write the golden files (run once, on the code the later versions must match)."""
    import tempfile

    torch.set_num_threads(1)
    FOLDER.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        ranks = distributed_cases(folder)
    for name, case in ranks[0].items():
        if any(not torch.equal(case["grads"][k], r[name]["grads"][k]) for r in ranks[1:] for k in case["grads"]):
            raise RuntimeError(f"{name}: the ranks disagree")
    cases = {**single_process_cases(), **ranks[0]}
    torch.save({"fingerprint": fingerprint(), "cases": cases}, FOLDER / "grads.pt")


if __name__ == "__main__":
    record()
