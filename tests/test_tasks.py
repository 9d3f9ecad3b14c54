import math

import pytest
import torch

from mtl_lab import tasks


def test_cross_entropy_and_accuracy_by_hand():
    out = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    y = torch.tensor([0, 0, 0])
    t = tasks.classification("c", 2)
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1)) + math.log(1 + math.exp(-2))) / 3
    assert float(t.loss(out, y)) == pytest.approx(expected, rel=1e-6)
    assert t.metric(out, y) == pytest.approx(2 / 3)
    assert t.higher_is_better and t.metric_name == "accuracy"


def test_binary_loss_and_accuracy_by_hand():
    out = torch.tensor([[0.0], [2.0], [-1.0]])
    y = torch.tensor([1.0, 1.0, 1.0])
    t = tasks.binary("b")
    expected = (math.log(2) + math.log(1 + math.exp(-2)) + math.log(1 + math.exp(1))) / 3
    assert float(t.loss(out, y)) == pytest.approx(expected, rel=1e-6)
    assert t.metric(out, y) == pytest.approx(1 / 3)  # 0 logit counts as "no"


def test_regression_losses_and_metrics():
    out = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    y = torch.tensor([[0.0, 0.0], [0.0, 2.0]])
    mse = tasks.regression("r", dim=2)
    mae = tasks.regression("r", dim=2, loss="l1", metric="mae")
    assert float(mse.loss(out, y)) == pytest.approx((1 + 4 + 0 + 4) / 4)
    assert mae.metric(out, y) == pytest.approx((1 + 2 + 0 + 2) / 4)
    assert not mse.higher_is_better


def test_iou_and_giou_by_hand():
    a = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2]])
    b = torch.tensor([[0.25, 0.25, 0.75, 0.75], [0.4, 0.4, 0.6, 0.6]])
    iou, giou = tasks.box_iou_giou(a, b)
    # first pair: overlap 0.0625, union 0.4375, hull 0.5625
    assert float(iou[0]) == pytest.approx(0.0625 / 0.4375)
    assert float(giou[0]) == pytest.approx(0.0625 / 0.4375 - (0.5625 - 0.4375) / 0.5625)
    # disjoint pair: IoU 0, GIoU negative (hull 0.36, union 0.08)
    assert float(iou[1]) == 0.0
    assert float(giou[1]) == pytest.approx(-(0.36 - 0.08) / 0.36)


def test_box_head_decoding_and_losses_have_gradient_when_disjoint():
    target = torch.tensor([[0.7, 0.7, 0.9, 0.9]])
    raw = torch.tensor([[-2.0, -2.0, -2.0, -2.0]], requires_grad=True)
    box = tasks.decode_box(raw)
    assert bool((box >= 0).all()) and bool((box <= 1).all())
    assert float(tasks.iou_loss(raw.detach(), target)) == pytest.approx(1.0)
    tasks.giou_loss(raw, target).backward()
    assert raw.grad.abs().sum() > 0  # GIoU still pulls disjoint boxes together
    t = tasks.box("box")
    assert t.metric(raw.detach(), target) == 0.0


def test_bad_task_specs_and_targets():
    with pytest.raises(ValueError, match="n_classes"):
        tasks.classification("c", 1)
    with pytest.raises(ValueError, match="loss 'huber'"):
        tasks.regression("r", loss="huber")
    with pytest.raises(ValueError, match="kind"):
        tasks.Task("x", "ranking", 1, tasks.mse, tasks.mse_metric, "mse", "mse", False)
    c = tasks.classification("c", 3)
    with pytest.raises(ValueError, match=r"class ids must lie in \[0, 2\]"):
        c.check_target(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="rows"):
        c.check_target(torch.tensor([0, 1]), n=3)
    with pytest.raises(ValueError, match="float of shape"):
        tasks.regression("r", dim=2).check_target(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="0 or 1"):
        tasks.binary("b").check_target(torch.tensor([0.0, 0.5]))


def brute_force_auc(scores: list[float], labels: list[int]) -> float:
    """Every (positive, negative) pair: 1 when the positive scores higher, ½ on a tie."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_roc_auc_by_hand_with_ties():
    # positives 0.8, 0.4, 0.4; negatives 0.4, 0.1: pairs 1, 1, ½, 1, ½, 1 → 5/6
    out = torch.tensor([[0.8], [0.4], [0.4], [0.4], [0.1]])
    y = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0])
    t = tasks.binary("b", metric="auc")
    assert t.metric_name == "auc" and t.higher_is_better
    assert t.metric(out, y) == pytest.approx(5 / 6, abs=1e-12)
    assert tasks.roc_auc(-out, y) == pytest.approx(1 / 6, abs=1e-12)  # reversed scores: 1 − AUC
    assert tasks.roc_auc(torch.zeros(5, 1), y) == 0.5  # every pair tied
    assert math.isnan(tasks.roc_auc(out, torch.ones(5)))  # one class only: no pair to order


def test_roc_auc_equals_the_pairwise_count_on_random_scores_with_many_ties():
    g = torch.Generator().manual_seed(3)
    for n in (2, 7, 50, 301):
        scores = torch.randint(0, 6, (n,), generator=g).float() / 5  # few distinct values: many ties
        labels = torch.randint(0, 2, (n,), generator=g)
        labels[0], labels[1] = 0, 1
        expected = brute_force_auc(scores.tolist(), labels.tolist())
        assert tasks.roc_auc(scores[:, None], labels.float()) == pytest.approx(expected, abs=1e-12)


def test_binary_metric_choice_is_checked():
    with pytest.raises(ValueError, match="metric 'f1' is not one of"):
        tasks.binary("b", metric="f1")
