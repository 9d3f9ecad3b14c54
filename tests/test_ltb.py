"""Learning to Branch: parents chosen by Gumbel-softmax samples, argmax in evaluation, a decaying temperature."""

from __future__ import annotations

import pytest
import torch

from mtl_lab import data as datasets
from mtl_lab.models import build_model
from mtl_lab.training import build_trainer

DATA = datasets.load("digits", tasks=["digit", "parity", "recon"])


def small_model(**options):
    torch.manual_seed(0)
    return build_model("ltb", DATA, hidden=(24, 16, 8), **options)


def test_evaluation_follows_the_argmax_parents_by_hand():
    model = small_model().eval()
    with torch.no_grad():
        model.alpha[0].copy_(torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [0, 0, 5.0]]))  # tasks 0, 1 share column 0
        model.alpha[1].copy_(torch.tensor([[0, 3.0, 0], [0, 3.0, 0], [0, 0, 3.0]]))
    x = DATA.train.x[:5]
    cols = [model.columns[n] for n in DATA.task_names]
    layer0 = [c[0](x) for c in cols]
    layer1 = [cols[0][1](layer0[0]), cols[1][1](layer0[0]), cols[2][1](layer0[2])]
    layer2 = [cols[0][2](layer1[1]), cols[1][2](layer1[1]), cols[2][2](layer1[2])]
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x), torch.cat(layer2, dim=1))
    # tasks 0 and 1 branch off nowhere: their heads read the same column-1 path, so their
    # representation differs only by the last block's weights
    assert model.inspect()["parents"] == [[0, 0, 2], [1, 1, 2]]


def test_training_samples_one_parent_and_the_logits_learn():
    model = small_model().train()
    x = DATA.train.x[:16]
    out = model(x)
    loss = sum(o.float().pow(2).mean() for o in out.values())
    loss.backward()
    assert all(a.grad is not None and float(a.grad.abs().sum()) > 0 for a in model.alpha)  # straight-through
    z = model.choices(1).detach()
    assert torch.equal(z.sum(dim=1), torch.ones(3)) and set(z.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(model(x)["digit"], out["digit"])  # one noise draw per step: same branching
    before = model.noise.clone()
    model.after_step(0)  # the next step draws new noise
    assert not torch.equal(model.noise, before)


def test_temperature_decays_and_options_are_checked():
    model = small_model(tau=4.0, decay_steps=10)
    assert model.tau == 4.0
    model.after_step(9)  # ten steps taken: one "epoch" of the schedule
    assert model.tau == pytest.approx(4.0 / 2**0.5)
    model.after_step(29)
    assert model.tau == pytest.approx(2.0)
    assert int(model.state_dict()["steps_taken"]) == 30  # the schedule resumes from a checkpoint
    with pytest.raises(ValueError, match="tau"):
        small_model(tau=0.0)
    with pytest.raises(ValueError, match="decay_steps"):
        small_model(decay_steps=0)


def test_ltb_trains_end_to_end_and_records_its_branching():
    trainer = build_trainer(DATA, "ltb", "equal", {"hidden": (32, 16), "decay_steps": 5}, epochs=2,
                            batch_size=128, lr=3e-3, diagnostics_every=4, seed=0)
    h = trainer.fit()
    assert h.status == "completed" and h.meta["test_metrics"]["digit"] > 0.3
    assert h.model_records and len(h.model_records[0]["parents"]) == 1  # one choice of parents: 2 blocks
    assert int(trainer.model.steps_taken) == len(h.steps) == 18 and trainer.model.tau == pytest.approx(5.0 / 2)
