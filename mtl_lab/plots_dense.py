"""Static figures for dense tasks: a few inputs with their predicted and true pixel maps.

:func:`prediction_strip` draws one row per image: the input, then for each pixel task the prediction
next to the truth — segmentation as class colours, depth as a grey ramp (near = bright, the farthest
surface dark grey) on one colour scale per image shared by prediction and truth, normals as
RGB = ``(n + 1)/2``. Invalid pixels (label −1, depth 0, normal 0) are drawn black in the truth, so what
the metrics skip is visible. A pure function of tensors; :func:`predictions` runs a model on a batch to get them.
"""

from __future__ import annotations

import torch
from matplotlib import colormaps
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from mtl_lab.pixels import IGNORE_LABEL, depth_valid, normal_valid, unit_normals
from mtl_lab.tasks import Task

# depth's grey ramp ends this share of the depth range beyond the farthest valid depth: far is dark grey, not black
FAR_MARGIN = 0.3
# class colours: Okabe–Ito's colour-blind-safe set (background first, a neutral grey)
CLASS_COLOURS = ["#999999", "#D55E00", "#009E73", "#0072B2", "#E69F00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"]


@torch.no_grad()
def predictions(model: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's outputs on ``x`` in evaluation mode (the model's mode is restored)."""
    was_training = model.training
    model.eval()
    out = model(x)
    model.train(was_training)
    return {name: value.detach().cpu() for name, value in out.items()}


def show_image(x: torch.Tensor, x_mean: torch.Tensor | None, x_std: torch.Tensor | None):
    """An input ``[3, H, W]`` (un-normalised when the statistics are given) as ``[H, W, 3]`` in [0, 1]."""
    if x_mean is not None and x_std is not None:
        x = x * x_std.reshape(-1, 1, 1) + x_mean.reshape(-1, 1, 1)
    low, high = float(x.min()), float(x.max())
    return ((x - low) / max(high - low, 1e-12)).permute(1, 2, 0).numpy()


def segmentation_rgb(labels: torch.Tensor, n_classes: int):
    """Labels ``[H, W]`` as colours ``[H, W, 3]``; ignored pixels black."""
    if n_classes > len(CLASS_COLOURS) - 1:
        colours = [tuple(c) for c in torch.rand(n_classes, 3, generator=torch.Generator().manual_seed(0)).tolist()]
    else:
        colours = CLASS_COLOURS[:n_classes]
    cmap = ListedColormap([*colours, "#000000"])
    index = torch.where(labels == IGNORE_LABEL, torch.tensor(n_classes), labels)
    return cmap(index.numpy())[..., :3]


def task_panels(task: Task, output: torch.Tensor, target: torch.Tensor) -> tuple:
    """``(prediction image, truth image, imshow options)`` for one image of one pixel task."""
    if task.kind == "segmentation":
        return segmentation_rgb(output.argmax(0), task.out_dim), segmentation_rgb(target, task.out_dim), {}
    if task.kind == "depth":
        valid = depth_valid(target)[0]
        truth = target[0]
        low = float(truth[valid].min()) if valid.any() else 0.0
        high = float(truth[valid].max()) if valid.any() else 1.0
        shown = torch.where(valid, truth, torch.tensor(float("nan")))
        cmap = colormaps["gray_r"].with_extremes(bad="black")  # holes (NaN) black
        far = high + FAR_MARGIN * (high - low)  # the farthest surface dark grey, so that holes stay visible
        return output[0].numpy(), shown.numpy(), {"cmap": cmap, "vmin": low, "vmax": far}
    valid = normal_valid(target[None])[0]  # [1, H, W]
    truth = torch.where(valid, (target + 1) / 2, torch.zeros_like(target))
    return ((unit_normals(output[None])[0] + 1) / 2).permute(1, 2, 0).numpy(), truth.permute(1, 2, 0).numpy(), {}


def prediction_strip(
    x: torch.Tensor,
    targets: dict[str, torch.Tensor],
    outputs: dict[str, torch.Tensor],
    tasks: list[Task],
    x_mean: torch.Tensor | None = None,
    x_std: torch.Tensor | None = None,
    title: str = "",
) -> Figure:
    """One row per image of ``x`` ``[N, 3, H, W]``: the input, then prediction | truth for every pixel task."""
    pixel = [t for t in tasks if t.is_pixel]
    if not pixel:
        raise ValueError(f"prediction_strip draws pixel tasks; the tasks are {[(t.name, t.kind) for t in tasks]}")
    n = x.shape[0]
    cols = 1 + 2 * len(pixel)
    fig = Figure(figsize=(1.6 * cols, 1.6 * n + (0.4 if title else 0.2)))
    axes = fig.subplots(n, cols, squeeze=False)
    for i in range(n):
        axes[i][0].imshow(show_image(x[i].cpu(), x_mean, x_std))
        for k, task in enumerate(pixel):
            pred, truth, options = task_panels(task, outputs[task.name][i].cpu(), targets[task.name][i].cpu())
            axes[i][1 + 2 * k].imshow(pred, **options)
            axes[i][2 + 2 * k].imshow(truth, **options)
    headings = ["input"] + [f"{t.name} {side}" for t in pixel for side in ("predicted", "true")]
    for c, heading in enumerate(headings):
        axes[0][c].set_title(heading, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
