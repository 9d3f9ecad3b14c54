"""Dense (per-pixel) tasks: losses on valid pixels and metrics accumulated over a whole split.

The conventions are those of MTAN's preprocessed NYUv2 and Cityscapes (Liu, Johns and Davison,
"End-to-End Multi-Task Learning with Attention", CVPR 2019), which LibMTL, Nash-MTL, FAMO and
Aligned-MTL reuse. ``B`` is the batch size, ``H × W`` the image:

* **segmentation** — head: logits ``[B, C, H, W]``; target: int64 ``[B, H, W]``, −1 = ignore; loss:
  cross-entropy, mean over the labelled pixels.
* **depth** — head ``[B, 1, H, W]``; target: float ``[B, 1, H, W]``, 0 = invalid; loss ``|ŷ − y|``, mean
  over the pixels with ``y ≠ 0``.
* **normals** — head ``[B, 3, H, W]``; target: float unit vectors ``[B, 3, H, W]``, all-zero = invalid;
  loss ``1 − cos(ŷ/‖ŷ‖, y)``, mean over the valid pixels.

A batch without a single valid pixel has loss exactly 0 with a zero gradient (the sum over no pixels,
divided by a count of at least 1).

Metrics (the field's, with their directions for Δm):

* segmentation — **mIoU** ↑ and **pixel accuracy** ↑ from one ``C × C`` confusion matrix over every
  labelled pixel of the split: ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``, mIoU the mean over the classes
  that occur in the split's labels or predictions (a class with an empty union has no IoU and is left
  out of the mean, rather than counted as 0 or 1); accuracy ``= Σ_c TP_c / #labelled pixels``.
* depth — **absolute error** ``Σ|ŷ − y| / n`` ↓ and **relative error** ``Σ|ŷ − y|/y / n`` ↓ over the
  ``n`` valid pixels of the split (sums, not a mean of batch means).
* normals — the angle ``θ = arccos(ŷ/‖ŷ‖ · y)`` in degrees on every valid pixel: **mean** ↓,
  **median** ↓, and the shares within **11.25°, 22.5°, 30°** ↑. The median comes from a histogram of
  ``θ`` with bins of ``MEDIAN_BIN`` = 0.01° (18 000 bins over [0°, 180°]): each middle angle is read as
  the centre of its bin, so the median is exact to within 0.005° whatever the split's size (keeping
  every angle of NYUv2's validation split would take 72 million floats). The dot product is limited to
  ``[−1, 1]`` before ``arccos``: rounding can push a product of unit vectors past 1.

Each metric kind has a state object with ``update(output, target)`` (one batch, no host sync) and
``result() -> {metric: float}``; :class:`~mtl_lab.tasks.Task` makes one with ``metric_state()``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IGNORE_LABEL = -1
MEDIAN_BIN = 0.01  # degrees: the width of the histogram bins the normal-angle median is read from
ANGLE_THRESHOLDS = (11.25, 22.5, 30.0)

# (metric name, higher is better), the first one being the task's headline metric
SEGMENTATION_METRICS = (("miou", True), ("pixel_accuracy", True))
DEPTH_METRICS = (("abs_err", False), ("rel_err", False))
NORMAL_METRICS = (
    ("mean_angle", False),
    ("median_angle", False),
    ("within_11.25", True),
    ("within_22.5", True),
    ("within_30", True),
)


# ---------------------------------------------------------------- validity


def depth_valid(target: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]`` boolean: pixels whose depth is not 0."""
    return target != 0


def normal_valid(target: torch.Tensor) -> torch.Tensor:
    """``[B, 1, H, W]`` boolean: pixels whose normal is not all-zero."""
    return (target != 0).any(dim=1, keepdim=True)


def valid_count(kind: str, target: torch.Tensor) -> torch.Tensor:
    """How many pixels of ``target`` a task of ``kind`` scores (a 0-d integer tensor)."""
    if kind == "segmentation":
        return (target != IGNORE_LABEL).sum()
    if kind == "depth":
        return depth_valid(target).sum()
    if kind == "normals":
        return normal_valid(target).sum()
    raise ValueError(f"kind {kind!r} is not a pixel kind; pixel kinds: segmentation, depth, normals")


def unit_normals(output: torch.Tensor) -> torch.Tensor:
    """The head's raw 3-vectors per pixel scaled to unit length (as MTAN's decoder does)."""
    return F.normalize(output, p=2, dim=1)


# ---------------------------------------------------------------- losses


def segmentation_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of logits ``[B, C, H, W]`` against labels ``[B, H, W]``, mean over labels ≠ −1."""
    valid = target != IGNORE_LABEL
    per_pixel = F.cross_entropy(output, target.clamp(min=0), reduction="none")  # ignored ones are masked out
    return (per_pixel * valid).sum() / valid.sum().clamp(min=1)


def depth_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``|ŷ − y|`` averaged over the pixels whose depth is not 0."""
    valid = depth_valid(target)
    return ((output - target).abs() * valid).sum() / valid.sum().clamp(min=1)


def normal_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 − cos`` between unit predicted normals and the target normals, averaged over valid pixels."""
    valid = normal_valid(target)
    cosine = (unit_normals(output) * target).sum(dim=1, keepdim=True)
    return ((1.0 - cosine) * valid).sum() / valid.sum().clamp(min=1)


# ---------------------------------------------------------------- split-level metric states


class SegmentationState:
    """A ``C × C`` confusion matrix (rows: true class, columns: predicted) over the labelled pixels."""

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.confusion: torch.Tensor | None = None

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        C = self.n_classes
        valid = target != IGNORE_LABEL
        pairs = target[valid] * C + output.argmax(dim=1)[valid]
        counts = torch.bincount(pairs, minlength=C * C).reshape(C, C)
        self.confusion = counts if self.confusion is None else self.confusion + counts

    def result(self) -> dict[str, float]:
        if self.confusion is None or int(self.confusion.sum()) == 0:
            return {name: math.nan for name, _ in SEGMENTATION_METRICS}
        h = self.confusion.double()
        tp = h.diagonal()
        union = h.sum(0) + h.sum(1) - tp
        present = union > 0
        return {"miou": float((tp[present] / union[present]).mean()), "pixel_accuracy": float(tp.sum() / h.sum())}


class DepthState:
    """Sums of ``|ŷ − y|`` and ``|ŷ − y|/y`` and the count of valid pixels."""

    def __init__(self) -> None:
        self.sums: torch.Tensor | None = None  # [abs sum, rel sum, count], float64

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        valid = depth_valid(target)
        error = (output - target).abs()[valid].double()
        truth = target[valid].double()
        sums = torch.stack([error.sum(), (error / truth.abs()).sum(), valid.sum().double()])
        self.sums = sums if self.sums is None else self.sums + sums

    def result(self) -> dict[str, float]:
        if self.sums is None or float(self.sums[2]) == 0:
            return {name: math.nan for name, _ in DEPTH_METRICS}
        abs_sum, rel_sum, n = self.sums.tolist()
        return {"abs_err": abs_sum / n, "rel_err": rel_sum / n}


def normal_angles(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The angle in degrees between unit predicted and target normals, one per valid pixel (1-D)."""
    valid = normal_valid(target).squeeze(1)
    cosine = (unit_normals(output) * target).sum(dim=1)[valid].double()
    return torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0)))


class NormalState:
    """The angle sum and a histogram of angles (bins of ``MEDIAN_BIN`` degrees) over valid pixels."""

    def __init__(self) -> None:
        self.n_bins = round(180.0 / MEDIAN_BIN)
        self.histogram: torch.Tensor | None = None
        self.angle_sum: torch.Tensor | None = None
        self.within: torch.Tensor | None = None

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        angles = normal_angles(output, target)
        bins = (angles / MEDIAN_BIN).long().clamp(max=self.n_bins - 1)  # 180° exactly goes in the last bin
        histogram = torch.bincount(bins, minlength=self.n_bins)
        within = torch.stack([(angles < t).sum() for t in ANGLE_THRESHOLDS])
        total = angles.sum()
        if self.histogram is None:
            self.histogram, self.angle_sum, self.within = histogram, total, within
        else:
            self.histogram, self.angle_sum, self.within = (
                self.histogram + histogram, self.angle_sum + total, self.within + within
            )

    def order_statistic(self, k: int) -> float:
        """The ``k``-th smallest angle (from 1), read as the centre of the bin that holds it."""
        cumulative = self.histogram.cumsum(0)
        index = int(torch.searchsorted(cumulative, torch.tensor([k], dtype=cumulative.dtype))[0])
        return (index + 0.5) * MEDIAN_BIN

    def median(self) -> float:
        """The middle angle (the mean of the two middle ones for an even count), to within ``MEDIAN_BIN / 2``."""
        n = int(self.histogram.sum())
        if n % 2:
            return self.order_statistic((n + 1) // 2)
        return (self.order_statistic(n // 2) + self.order_statistic(n // 2 + 1)) / 2.0

    def result(self) -> dict[str, float]:
        if self.histogram is None or int(self.histogram.sum()) == 0:
            return {name: math.nan for name, _ in NORMAL_METRICS}
        n = float(self.histogram.sum())
        shares = (self.within.double() / n).tolist()
        return {
            "mean_angle": float(self.angle_sum) / n,
            "median_angle": self.median(),
            "within_11.25": shares[0],
            "within_22.5": shares[1],
            "within_30": shares[2],
        }
