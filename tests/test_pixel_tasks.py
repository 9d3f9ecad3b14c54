"""Pixel tasks: losses on valid pixels and split-level metrics, against values computed by hand."""

import math

import pytest
import torch

from mtl_lab import tasks


def logits_for(pred: torch.Tensor, n_classes: int, margin: float = 5.0) -> torch.Tensor:
    """Logits ``[B, C, H, W]`` whose arg-max is ``pred`` ``[B, H, W]``."""
    out = torch.zeros(pred.shape[0], n_classes, *pred.shape[1:])
    out.scatter_(1, pred.unsqueeze(1), margin)
    return out


def test_segmentation_loss_skips_ignored_pixels():
    seg = tasks.segmentation("seg", 2)
    out = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # [1, 2, 1, 2]: pixel 0 logits (2, 0), pixel 1 (0, 1)
    y = torch.tensor([[[0, -1]]])
    assert float(seg.loss(out, y)) == pytest.approx(math.log(1 + math.exp(-2)), rel=1e-6)
    y_all_ignored = torch.full((1, 1, 2), -1)
    out.requires_grad_(True)
    loss = seg.loss(out, y_all_ignored)
    loss.backward()
    assert float(loss.detach()) == 0.0 and float(out.grad.abs().sum()) == 0.0


def test_segmentation_miou_and_accuracy_by_hand_over_two_batches():
    seg = tasks.segmentation("seg", 3)
    # batch 1: truth 0 0 1 −1, prediction 0 1 1 2 ; batch 2: truth 1 1 0 −1, prediction 1 0 0 0
    t1, p1 = torch.tensor([[[0, 0], [1, -1]]]), torch.tensor([[[0, 1], [1, 2]]])
    t2, p2 = torch.tensor([[[1, 1], [0, -1]]]), torch.tensor([[[1, 0], [0, 0]]])
    state = seg.metric_state()
    state.update(logits_for(p1, 3), t1)
    state.update(logits_for(p2, 3), t2)
    # labelled pixels: (t, p) = (0,0) (0,1) (1,1) (1,1) (1,0) (0,0): class 0 TP 2 FP 1 FN 1, class 1 TP 2 FP 1 FN 1
    # class 2 never occurs among labelled pixels (its predicted pixel is ignored): left out of the mean
    result = state.result()
    assert result["miou"] == pytest.approx((2 / 4 + 2 / 4) / 2)
    assert result["pixel_accuracy"] == pytest.approx(4 / 6)
    # not the mean of the per-batch values: batch 1 alone has accuracy 2/3 and batch 2 alone 2/3, but mIoU differs
    one = seg.metric_state()
    one.update(logits_for(p1, 3), t1)
    assert one.result()["miou"] == pytest.approx((1 / 2 + 1 / 2) / 2)
    assert seg.metric(logits_for(p1, 3), t1) == pytest.approx(0.5)
    assert seg.metric_directions() == {"miou": True, "pixel_accuracy": True}


def test_depth_loss_and_errors_skip_zero_depth():
    task = tasks.depth()
    y = torch.tensor([[[[2.0, 0.0], [4.0, 1.0]]]])
    out = torch.tensor([[[[1.0, 9.0], [5.0, 1.5]]]])
    assert float(task.loss(out, y)) == pytest.approx((1 + 1 + 0.5) / 3)
    state = task.metric_state()
    state.update(out, y)
    state.update(torch.tensor([[[[3.0, 0.0], [0.0, 0.0]]]]), torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]]))
    result = state.result()
    assert result["abs_err"] == pytest.approx((1 + 1 + 0.5 + 2) / 4)
    assert result["rel_err"] == pytest.approx((1 / 2 + 1 / 4 + 0.5 / 1 + 2 / 1) / 4)
    assert task.metric_directions() == {"abs_err": False, "rel_err": False}


def test_normal_loss_and_angles_skip_zero_normals():
    task = tasks.normals()
    # three pixels: truth +z, +z, invalid (0,0,0); predictions +z (0°), +x scaled by 3 (90°), anything
    y = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]).reshape(1, 3, 1, 3)
    out = torch.tensor([[0.0, 3.0, 1.0], [0.0, 0.0, 1.0], [2.0, 0.0, 1.0]]).reshape(1, 3, 1, 3)
    assert float(task.loss(out, y)) == pytest.approx((0 + 1) / 2, abs=1e-6)
    state = task.metric_state()
    state.update(out, y)
    # second batch: truth +x, prediction at 20° from it in the x–y plane
    angle = math.radians(20.0)
    y2 = torch.tensor([1.0, 0.0, 0.0]).reshape(1, 3, 1, 1)
    out2 = torch.tensor([math.cos(angle), math.sin(angle), 0.0]).reshape(1, 3, 1, 1)
    state.update(out2, y2)
    result = state.result()
    assert result["mean_angle"] == pytest.approx((0 + 90 + 20) / 3, abs=1e-4)
    assert result["median_angle"] == pytest.approx(20.0, abs=0.005)  # histogram bins of 0.01°: bin centres
    assert result["within_11.25"] == pytest.approx(1 / 3)
    assert result["within_22.5"] == pytest.approx(2 / 3)
    assert result["within_30"] == pytest.approx(2 / 3)
    assert [d for _, d in task.sub_metrics] == [False, False, True, True, True]


def test_normal_median_of_many_angles_matches_torch_median():
    g = torch.Generator().manual_seed(0)
    y = torch.nn.functional.normalize(torch.randn(2, 3, 8, 8, generator=g), dim=1)
    out = y + 0.5 * torch.randn(2, 3, 8, 8, generator=g)
    state = tasks.normals().metric_state()
    state.update(out[:1], y[:1])
    state.update(out[1:], y[1:])
    cos = (torch.nn.functional.normalize(out, dim=1) * y).sum(1).double().clamp(-1, 1)
    angles = torch.rad2deg(torch.arccos(cos)).flatten().sort().values
    exact = float(angles[63:65].mean())  # 128 angles: the mean of the two middle ones
    assert state.result()["median_angle"] == pytest.approx(exact, abs=0.005)
    assert state.result()["mean_angle"] == pytest.approx(float(angles.mean()), rel=1e-9)


def test_pixel_targets_are_checked():
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\] or be -1"):
        tasks.segmentation("seg", 3).check_target(torch.tensor([[[0, 3]]]))
    with pytest.raises(ValueError, match=r"depth targets must be float of shape \[N, 1, H, W\]"):
        tasks.depth().check_target(torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match="n_classes must be an int ≥ 2"):
        tasks.segmentation("seg", 1)
    assert tasks.classification("c", 2).metric_state() is None


def test_empty_split_metrics_are_nan():
    assert all(math.isnan(v) for v in tasks.depth().metric_state().result().values())


def test_split_accumulator_weights_batches_by_valid_pixels_and_honours_row_masks():
    from mtl_lab.training.masks import SplitAccumulator

    task = tasks.depth()
    acc = SplitAccumulator(task)
    y1 = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])  # one valid pixel, error 1
    y2 = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]]]])  # three valid pixels, error 0
    acc.update(y1 + 1.0, y1)
    acc.update(y2, y2)
    acc.update(y2 + 5.0, y2, mask=torch.tensor([False]))  # an unlabelled row is never read
    assert acc.loss() == pytest.approx(1 / 4)  # not the mean of batch means, (1 + 0) / 2
    assert acc.metrics()["abs_err"] == pytest.approx(1 / 4)
    assert acc.metric() == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="has no split-level metric state"):
        SplitAccumulator(tasks.classification("c", 2))
