"""Tasks: what a model must predict, how it is scored, and how its loss is computed.

A :class:`Task` is a frozen record: a name, a kind, the width of the head's output, a loss
``loss(output, target) -> scalar`` (mean over the batch) and a metric
``metric(output, target) -> float`` with its name and direction.

Kinds and their conventions (``B`` is the batch size):

============  ==================  ====================  =====================  ===============
kind          head output         target                losses                 metric
============  ==================  ====================  =====================  ===============
multiclass    logits ``[B, C]``   int64 ``[B]``         cross-entropy          accuracy ↑
binary        logit ``[B, 1]``    float ``[B]`` in 0/1  binary cross-entropy   accuracy ↑ (or ROC AUC ↑)
regression    ``[B, D]``          float ``[B, D]``      MSE or L1              MSE or MAE ↓
box           ``[B, 4]``          float ``[B, 4]``      IoU, GIoU, L1 or MSE   mean IoU ↑
============  ==================  ====================  =====================  ===============

Pixel kinds (dense prediction; losses on valid pixels only, metrics accumulated over a whole split —
conventions, metrics and their definitions in :mod:`mtl_lab.pixels`):

============  ======================  ==============================  ======================  ======================
kind          head output             target                          loss                    metrics
============  ======================  ==============================  ======================  ======================
segmentation  logits ``[B, C, H, W]``  int64 ``[B, H, W]``, −1 ignore   per-pixel CE            mIoU ↑, pixel acc. ↑
depth         ``[B, 1, H, W]``         float ``[B, 1, H, W]``, 0 invalid  L1                    abs ↓, rel error ↓
normals       ``[B, 3, H, W]``         float ``[B, 3, H, W]``, 0 invalid  1 − cos              angle mean ↓, median ↓,
                                                                                                within 11.25/22.5/30° ↑
============  ======================  ==============================  ======================  ======================

A pixel task has several metrics (``sub_metrics``: names and directions, the first is the headline
``metric``) and a ``metric_state()`` that accumulates them batch by batch over a split; the Trainer's
evaluation uses it instead of concatenating the split's outputs. Other kinds have no state
(``metric_state()`` returns ``None``).

A box head's four raw outputs are read as ``(cx, cy, w, h)`` through a sigmoid, so every predicted
box lies inside the unit canvas; targets are corner boxes ``(x1, y1, x2, y2)`` in ``[0, 1]``.
IoU and GIoU losses follow Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019:
``L_IoU = 1 - IoU`` and ``L_GIoU = 1 - IoU + |C \\ (A ∪ B)| / |C|`` with ``C`` the smallest box
enclosing both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F

from mtl_lab import pixels
from mtl_lab.validate import check_task_name

PIXEL_KINDS = ("segmentation", "depth", "normals")
KINDS = ("multiclass", "binary", "regression", "box", *PIXEL_KINDS)
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MetricFn = Callable[[torch.Tensor, torch.Tensor], float]


class MetricState(Protocol):
    """Split-level metrics: ``update`` with each batch, then ``result`` for ``{metric: value}``."""

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None: ...

    def result(self) -> dict[str, float]: ...


@dataclass(frozen=True)
class Task:
    """One task of a multi-task problem.

    Attributes:
        name: unique name, used as the key of targets and outputs (the rule:
            :func:`mtl_lab.validate.check_task_name`).
        kind: one of ``KINDS``.
        out_dim: width of the task head's output.
        loss: ``loss(output, target)`` returning the batch-mean loss (a scalar tensor).
        metric: ``metric(output, target)`` returning a float.
        loss_name: short name of the loss (``"ce"``, ``"mse"``, ``"giou"`` …).
        metric_name: short name of the metric (``"accuracy"``, ``"mse"`` …).
        higher_is_better: direction of the metric.
        description: one line for tables and tooltips.
        sub_metrics: ``((name, higher_is_better), …)`` of every metric a pixel task reports (``()`` for
            other kinds); the first is ``metric_name``.
        state_factory: makes an empty :class:`MetricState` for a pixel task (``None`` for other kinds).
    """

    name: str
    kind: str
    out_dim: int
    loss: LossFn
    metric: MetricFn
    loss_name: str
    metric_name: str
    higher_is_better: bool
    description: str = ""
    sub_metrics: tuple[tuple[str, bool], ...] = ()
    state_factory: Callable[[], MetricState] | None = None

    @property
    def is_pixel(self) -> bool:
        """Whether this is a dense (per-pixel) task."""
        return self.kind in PIXEL_KINDS

    def metric_state(self) -> MetricState | None:
        """An empty split-level metric accumulator (``None``: the metric is computed on the whole split)."""
        return None if self.state_factory is None else self.state_factory()

    def metric_directions(self) -> dict[str, bool]:
        """``{metric: higher_is_better}`` of every metric this task reports."""
        return dict(self.sub_metrics) if self.sub_metrics else {self.metric_name: self.higher_is_better}

    def __post_init__(self) -> None:
        check_task_name(self.name)
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind {self.kind!r} is not one of {KINDS}")
        if not isinstance(self.out_dim, int) or self.out_dim < 1:
            raise ValueError(f"task {self.name!r}: out_dim must be a positive int, got {self.out_dim!r}")

    def spec(self) -> dict:
        """A JSON-friendly description (everything but the two functions)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "out_dim": self.out_dim,
            "loss": self.loss_name,
            "metric": self.metric_name,
            "higher_is_better": self.higher_is_better,
            "description": self.description,
        } | ({"metrics": [name for name, _ in self.sub_metrics]} if self.sub_metrics else {})

    def check_target(self, y: torch.Tensor, n: int | None = None) -> None:
        """Raise ``ValueError`` when ``y`` cannot be a target of this task (``n`` rows expected)."""
        if not isinstance(y, torch.Tensor):
            raise ValueError(f"task {self.name!r}: target must be a torch.Tensor, got {type(y).__name__}")
        if n is not None and y.shape[0] != n:
            raise ValueError(f"task {self.name!r}: target has {y.shape[0]} rows, the inputs have {n}")
        if self.kind == "multiclass":
            if y.dim() != 1 or y.dtype.is_floating_point:
                raise ValueError(
                    f"task {self.name!r}: multiclass targets must be 1-D integer class ids, "
                    f"got shape {tuple(y.shape)} dtype {y.dtype}"
                )
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= self.out_dim):
                raise ValueError(
                    f"task {self.name!r}: class ids must lie in [0, {self.out_dim - 1}], "
                    f"got range [{int(y.min())}, {int(y.max())}]"
                )
        elif self.kind == "binary":
            if y.dim() != 1:
                raise ValueError(f"task {self.name!r}: binary targets must be 1-D, got shape {tuple(y.shape)}")
            if y.numel() and not bool(((y == 0) | (y == 1)).all()):
                raise ValueError(f"task {self.name!r}: binary targets must be 0 or 1")
        elif self.is_pixel:
            self.check_pixel_target(y)
        else:
            want = 4 if self.kind == "box" else self.out_dim
            if y.dim() != 2 or y.shape[1] != want or not y.dtype.is_floating_point:
                raise ValueError(
                    f"task {self.name!r}: {self.kind} targets must be float of shape [N, {want}], "
                    f"got shape {tuple(y.shape)} dtype {y.dtype}"
                )


    def check_pixel_target(self, y: torch.Tensor) -> None:
        """Segmentation: integer ``[N, H, W]`` in ``{−1, 0 … C−1}``; depth / normals: float ``[N, 1|3, H, W]``."""
        if self.kind == "segmentation":
            if y.dim() != 3 or y.dtype.is_floating_point:
                raise ValueError(
                    f"task {self.name!r}: segmentation targets must be integer labels [N, H, W], "
                    f"got shape {tuple(y.shape)} dtype {y.dtype}"
                )
            if y.numel() and (int(y.min()) < pixels.IGNORE_LABEL or int(y.max()) >= self.out_dim):
                raise ValueError(
                    f"task {self.name!r}: labels must lie in [0, {self.out_dim - 1}] or be "
                    f"{pixels.IGNORE_LABEL} (ignore), got range [{int(y.min())}, {int(y.max())}]"
                )
            return
        channels = 1 if self.kind == "depth" else 3
        if y.dim() != 4 or y.shape[1] != channels or not y.dtype.is_floating_point:
            raise ValueError(
                f"task {self.name!r}: {self.kind} targets must be float of shape [N, {channels}, H, W], "
                f"got shape {tuple(y.shape)} dtype {y.dtype}"
            )


# ---------------------------------------------------------------- losses


def cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of logits ``[B, C]`` against class ids ``[B]``."""
    return F.cross_entropy(output, target)


def binary_cross_entropy(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of one logit per row ``[B, 1]`` against 0/1 targets ``[B]``."""
    return F.binary_cross_entropy_with_logits(output.reshape(-1), target.to(output.dtype))


def mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every entry."""
    return F.mse_loss(output, target)


def l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over every entry."""
    return F.l1_loss(output, target)


def decode_box(output: torch.Tensor) -> torch.Tensor:
    """Raw head output ``[B, 4]`` → corner box ``(x1, y1, x2, y2)`` inside the unit canvas."""
    cx, cy, w, h = torch.sigmoid(output).unbind(-1)
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=-1)


def box_iou_giou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-wise IoU and GIoU of corner boxes ``a, b`` of shape ``[B, 4]``."""
    area_a = (a[:, 2] - a[:, 0]).clamp(min=0) * (a[:, 3] - a[:, 1]).clamp(min=0)
    area_b = (b[:, 2] - b[:, 0]).clamp(min=0) * (b[:, 3] - b[:, 1]).clamp(min=0)
    lt = torch.maximum(a[:, :2], b[:, :2])
    rb = torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    union = area_a + area_b - inter
    iou = inter / union.clamp(min=1e-9)
    c_lt = torch.minimum(a[:, :2], b[:, :2])
    c_rb = torch.maximum(a[:, 2:], b[:, 2:])
    c_area = (c_rb - c_lt).clamp(min=0).prod(dim=1)
    giou = iou - (c_area - union) / c_area.clamp(min=1e-9)
    return iou, giou


def iou_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean(1 - IoU)`` of the decoded predicted boxes against target corner boxes."""
    iou, _ = box_iou_giou(decode_box(output), target)
    return (1.0 - iou).mean()


def giou_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean(1 - GIoU)``: unlike IoU it still has a gradient when the boxes do not overlap."""
    _, giou = box_iou_giou(decode_box(output), target)
    return (1.0 - giou).mean()


def box_l1(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 distance between decoded corner boxes and targets."""
    return F.l1_loss(decode_box(output), target)


def box_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Squared error between decoded corner boxes and targets."""
    return F.mse_loss(decode_box(output), target)


# ---------------------------------------------------------------- metrics


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Share of rows whose arg-max logit is the target class."""
    return float((output.argmax(dim=1) == target).float().mean())


def binary_accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Share of rows whose logit has the target's side of 0."""
    return float(((output.reshape(-1) > 0).to(target.dtype) == target).float().mean())


def roc_auc(output: torch.Tensor, target: torch.Tensor) -> float:
    """Area under the ROC curve of one logit per row ``[B, 1]`` against 0/1 targets ``[B]``, exact.

    The rank formula (Mann–Whitney U): with ``r_i`` the rank of row ``i``'s score among all ``B`` scores
    (1 = lowest; tied scores share the mean of their ranks), ``n₊`` positives and ``n₋`` negatives,
    ``AUC = (Σ_{i positive} r_i − n₊(n₊ + 1)/2) / (n₊ n₋)`` — the probability that a random positive
    scores above a random negative, a tie counting ½. The Trainer evaluates it over a whole split (never
    a mean of batch AUCs). ``nan`` when the rows hold only one class (no pair to order).
    """
    score = output.reshape(-1).double()
    positive = target.reshape(-1) > 0.5
    n_pos = int(positive.sum())
    n_neg = positive.numel() - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    values, inverse, counts = torch.unique(score, return_inverse=True, return_counts=True)
    last = torch.cumsum(counts, 0).double()  # the rank of each distinct score's last row
    mean_rank = last - (counts.double() - 1) / 2  # tied rows share the mean of their ranks
    rank_sum = mean_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def mse_metric(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean squared error as a float."""
    return float(F.mse_loss(output, target))


def mae_metric(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean absolute error as a float."""
    return float(F.l1_loss(output, target))


def mean_iou(output: torch.Tensor, target: torch.Tensor) -> float:
    """Mean IoU of decoded predicted boxes against the targets."""
    iou, _ = box_iou_giou(decode_box(output), target)
    return float(iou.mean())


# ---------------------------------------------------------------- constructors

REGRESSION_LOSSES: dict[str, LossFn] = {"mse": mse, "l1": l1}
REGRESSION_METRICS: dict[str, MetricFn] = {"mse": mse_metric, "mae": mae_metric}
BOX_LOSSES: dict[str, LossFn] = {"giou": giou_loss, "iou": iou_loss, "l1": box_l1, "mse": box_mse}


def _pick(table: dict, key: str, what: str, task: str):
    if key not in table:
        raise ValueError(f"task {task!r}: {what} {key!r} is not one of {sorted(table)}")
    return table[key]


def classification(name: str, n_classes: int, description: str = "") -> Task:
    """A ``n_classes``-way classification task (cross-entropy, accuracy)."""
    if not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"task {name!r}: n_classes must be an int ≥ 2, got {n_classes!r}")
    return Task(name, "multiclass", n_classes, cross_entropy, accuracy, "ce", "accuracy", True, description)


BINARY_METRICS: dict[str, MetricFn] = {"accuracy": binary_accuracy, "auc": roc_auc}


def binary(name: str, description: str = "", metric: str = "accuracy") -> Task:
    """A yes/no task with one logit (binary cross-entropy); ``metric`` in {accuracy, auc} (ROC AUC, exact
    over the split: :func:`roc_auc`)."""
    return Task(name, "binary", 1, binary_cross_entropy, _pick(BINARY_METRICS, metric, "metric", name), "bce",
                metric, True, description)


def regression(name: str, dim: int = 1, loss: str = "mse", metric: str = "mse", description: str = "") -> Task:
    """A regression task of ``dim`` outputs; ``loss`` in {mse, l1}, ``metric`` in {mse, mae}."""
    return Task(
        name,
        "regression",
        dim,
        _pick(REGRESSION_LOSSES, loss, "loss", name),
        _pick(REGRESSION_METRICS, metric, "metric", name),
        loss,
        metric,
        False,
        description,
    )


def box(name: str, loss: str = "giou", description: str = "") -> Task:
    """A single-box localisation task; ``loss`` in {giou, iou, l1, mse}; metric mean IoU."""
    return Task(name, "box", 4, _pick(BOX_LOSSES, loss, "loss", name), mean_iou, loss, "iou", True, description)


def headline(state_factory: Callable[[], MetricState], metric_name: str) -> MetricFn:
    """The metric function of a pixel task: its headline metric over one ``(output, target)`` pair."""

    def metric(output: torch.Tensor, target: torch.Tensor) -> float:
        state = state_factory()
        state.update(output, target)
        return state.result()[metric_name]

    metric.__name__ = metric_name
    return metric


def pixel_task(
    name: str,
    kind: str,
    out_dim: int,
    loss: LossFn,
    loss_name: str,
    sub_metrics: tuple[tuple[str, bool], ...],
    state_factory: Callable[[], MetricState],
    description: str,
) -> Task:
    metric_name, higher = sub_metrics[0]
    return Task(
        name, kind, out_dim, loss, headline(state_factory, metric_name), loss_name, metric_name, higher,
        description, sub_metrics, state_factory,
    )


def segmentation(name: str, n_classes: int, description: str = "") -> Task:
    """Per-pixel ``n_classes``-way segmentation (CE on labels ≠ −1; mIoU, pixel accuracy)."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
        raise ValueError(f"task {name!r}: n_classes must be an int ≥ 2, got {n_classes!r}")
    return pixel_task(
        name, "segmentation", n_classes, pixels.segmentation_loss, "pixel_ce", pixels.SEGMENTATION_METRICS,
        lambda: pixels.SegmentationState(n_classes), description,
    )


def depth(name: str = "depth", description: str = "") -> Task:
    """Per-pixel depth (L1 on depth ≠ 0; absolute and relative error)."""
    return pixel_task(
        name, "depth", 1, pixels.depth_loss, "l1", pixels.DEPTH_METRICS, pixels.DepthState, description
    )


def normals(name: str = "normal", description: str = "") -> Task:
    """Per-pixel surface normals (1 − cosine on non-zero normals; angle mean, median and shares within)."""
    return pixel_task(
        name, "normals", 3, pixels.normal_loss, "cosine", pixels.NORMAL_METRICS, pixels.NormalState, description
    )
