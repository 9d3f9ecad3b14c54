"""Every registered method trains the digits data through the real Trainer and is recorded in History."""

import math

import pytest
import torch

from mtl_lab import data as datasets
from mtl_lab.training import build_trainer
from mtl_lab.weighting import METHODS, create

DIGITS = datasets.load("digits", tasks=["digit", "parity", "recon"])
OPTIONS = {"epochs": 2, "batch_size": 128, "lr": 3e-3, "diagnostics_every": 4, "model_options": {"hidden": (48,)}}
STATEFUL = ["dwa", "gradvac", "famo", "db_mtl", "nash_mtl", "uncertainty", "gradnorm", "imtl_l", "rlw", "pcgrad"]


@pytest.mark.parametrize("name", list(METHODS))
def test_method_trains_digits_end_to_end(name):
    h = build_trainer(DIGITS, "hard", name, **OPTIONS).fit()
    assert h.status == "completed" and h.meta["method"]["name"] == name
    assert len(h.weights) == len(h.steps) > 0
    assert all(len(row) == 3 and all(math.isfinite(v) for v in row) for row in h.weights)
    assert [d["step"] for d in h.diagnostics] == list(range(0, len(h.steps), 4))
    for d in h.diagnostics:
        assert all(math.isfinite(v) for v in d["shares"] + d["norms"] + d["weights"] + d["loss_change"])
    first = sum(h.losses[0])
    last = sum(sum(row) for row in h.losses[-3:]) / 3
    assert last < first, f"{name}: total loss went from {first:.3f} to {last:.3f}"
    assert h.meta["test_metrics"]["digit"] > 0.3  # far above chance after two short epochs


@pytest.mark.parametrize("name", STATEFUL)
def test_a_reused_instance_is_reset_between_runs(name):
    method = create(name)
    a = build_trainer(DIGITS, "hard", method, **{**OPTIONS, "epochs": 1}).fit()
    b = build_trainer(DIGITS, "hard", method, **{**OPTIONS, "epochs": 1}).fit()
    torch.testing.assert_close(torch.tensor(a.weights), torch.tensor(b.weights))
    torch.testing.assert_close(torch.tensor(a.losses), torch.tensor(b.losses))
