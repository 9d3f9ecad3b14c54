"""Localisation: find one 8×8 digit on a larger canvas — classify it and draw its bounding box.

The digits are the 8×8 images of :mod:`mtl_lab.data.digits` (UCI handwritten digits, CC BY 4.0).
A classification task and a box-regression task share one input, the classic pairing of object
detection heads. Construction (all draws from one ``torch.Generator`` seeded with ``seed``):

1. The 1797 source images are split, stratified by digit, into disjoint pools of 60 / 20 / 20 % for
   train / val / test (the same pools as :mod:`mtl_lab.data.multidigits`); a split only uses its pool.
2. Each example takes one image of its pool, uniformly at random, and pastes its 8×8 patch with the
   top-left pixel at ``(top, left)``, both uniform on ``0..canvas - 8``.
3. Optional background noise: every pixel without ink gets a value uniform on ``[0, noise)``;
   ``noise`` must stay below the faintest ink, 1/16, so the background never looks like ink.

Inputs are ``[N, 1, canvas, canvas]`` floats ``pixels / 16``, normalised with one mean and standard
deviation of the training split. Tasks:

* ``digit`` — which digit, 10-way classification (CE, accuracy ↑);
* ``box`` — the tight bounding box of the digit's ink (``tasks.box``, loss ``box_loss``, mean IoU ↑).
  The target is the corner box ``(x1, y1, x2, y2)`` divided by ``canvas``, ``x`` counting columns:
  pixel ``(row r, column c)`` covers ``[c, c + 1) × [r, r + 1)``, so ``x1 = first ink column``,
  ``x2 = last ink column + 1`` (and the same for rows), and the box has the area of the ink's extent.

Augmentation (``augment=True``) moves each training canvas by ``dy, dx`` pixels, drawn uniformly from
the shifts in ``-2..2`` (``AUGMENT_MAX_SHIFT``) that keep all ink inside the canvas; the box target
moves by ``(dx, dy, dx, dy) / canvas``. Only background wraps round the border, so noise is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data
from mtl_lab.data.digits import (
    MAX_PIXEL,
    SIDE,
    SOURCE,
    Placement,
    draw_integers,
    ink_boxes,
    load_digit_images,
    paste,
    shift_images,
)
from mtl_lab.data.multidigits import check_canvas, check_sizes, source_pools

AUGMENT_MAX_SHIFT = 2  # the largest shift, in pixels, of the train-time augmentation
FAINTEST_INK = 1.0 / MAX_PIXEL  # the smallest non-zero pixel value after dividing by 16


def place_digits(
    n_train: int, n_val: int, n_test: int, canvas: int = 16, generator: torch.Generator | None = None
) -> dict[str, Placement]:
    """Draw, per split, which source image each example shows and where its patch goes (``source`` is ``[N]``).

    :func:`localization` calls this first with a generator seeded with its ``seed``, so calling it
    with ``torch.Generator().manual_seed(seed)`` reproduces the dataset's placement exactly.
    """
    check_sizes(n_train, n_val, n_test)
    check_canvas(canvas)
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    _, labels = load_digit_images()
    pools = source_pools(labels, generator)
    placements = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        pool = pools[split]
        source = pool[torch.randint(len(pool), (n,), generator=generator)]
        corner = torch.randint(canvas - SIDE + 1, (n, 2), generator=generator)
        placements[split] = Placement(source, corner[:, 0], corner[:, 1])
    return placements


def box_targets(images: torch.Tensor, placement: Placement, canvas: int) -> torch.Tensor:
    """Tight corner boxes ``(x1, y1, x2, y2) / canvas`` of the ink of the placed digits, float ``[N, 4]``."""
    col_min, row_min, col_max, row_max = ink_boxes(images[placement.source] > 0).unbind(dim=1)
    corners = [
        placement.left + col_min,
        placement.top + row_min,
        placement.left + col_max + 1,
        placement.top + row_max + 1,
    ]
    return torch.stack(corners, dim=1).to(torch.float32) / canvas


@dataclass(frozen=True)
class CanvasShift:
    """Train-time augmentation of :func:`localization`: move the canvas, keep the ink inside, move the box.

    Ink is found as raw pixels above ``threshold`` (``x_mean``/``x_std`` undo the input
    normalisation). Shifts are drawn per image from ``-max_shift..max_shift`` in each direction,
    restricted to those that keep every ink pixel on the canvas.
    """

    x_mean: float = 0.0
    x_std: float = 1.0
    threshold: float = FAINTEST_INK / 2
    max_shift: int = AUGMENT_MAX_SHIFT

    def __call__(
        self, x: torch.Tensor, targets: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        height, width = x.shape[2], x.shape[3]
        ink = (x[:, 0] * self.x_std + self.x_mean) > self.threshold
        col_min, row_min, col_max, row_max = ink_boxes(ink).unbind(dim=1)
        m = self.max_shift
        dy = draw_integers((-row_min).clamp(min=-m), (height - 1 - row_max).clamp(max=m), generator)
        dx = draw_integers((-col_min).clamp(min=-m), (width - 1 - col_max).clamp(max=m), generator)
        x_new = shift_images(x, dy, dx, fill=None)  # only background crosses the border
        out = dict(targets)
        if "box" in out:
            box = out["box"]
            move = torch.stack([dx / width, dy / height, dx / width, dy / height], dim=1)
            out["box"] = box + move.to(box.dtype)
        return x_new, out


def localization(
    n_train: int = 3000,
    n_val: int = 600,
    n_test: int = 600,
    canvas: int = 16,
    seed: int = 0,
    normalize: bool = True,
    augment: bool = False,
    box_loss: str = "giou",
    noise: float = 0.0,
) -> MultiTaskData:
    """One digit at a random place on a larger canvas: classify it and box its ink.

    ``box_loss`` is one of ``giou``, ``iou``, ``l1``, ``mse``; ``noise`` in ``[0, 1/16)`` adds uniform
    background noise; ``augment=True`` adds the box-consistent shift of :class:`CanvasShift`.
    """
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0.0 <= noise < FAINTEST_INK:
        raise ValueError(f"noise must be in [0, {FAINTEST_INK}) (below the faintest ink), got {noise!r}")
    generator = torch.Generator().manual_seed(seed)
    placements = place_digits(n_train, n_val, n_test, canvas, generator)
    pixels, labels = load_digit_images()
    images = pixels.to(torch.float32) / MAX_PIXEL
    splits = {}
    for split, placement in placements.items():
        x = paste(images, placement.source, placement.top, placement.left, canvas)
        if noise > 0:
            background = noise * torch.rand(x.shape, generator=generator)
            x = torch.where(x > 0, x, background)
        y = {"digit": labels[placement.source], "box": box_targets(images, placement, canvas)}
        splits[split] = Split(x.unsqueeze(1), y)
    tasks = [
        T.classification("digit", 10, description="which digit is on the canvas"),
        T.box("box", loss=box_loss, description="tight box (x1, y1, x2, y2) of the digit's ink, in canvas units"),
    ]
    info = {
        "source": SOURCE,
        "canvas": canvas,
        "noise": noise,
        "box": "corner form (x1, y1, x2, y2) / canvas; x2 = last ink column + 1",
        "augment": f"shift by up to {AUGMENT_MAX_SHIFT} px keeping the ink inside; box moves too" if augment else None,
    }
    data = make_data(
        "localization",
        tasks,
        splits["train"],
        splits["val"],
        splits["test"],
        normalize=normalize,
        per_feature=False,
        info=info,
    )
    if augment:
        x_mean = float(data.x_mean) if data.x_mean is not None else 0.0
        x_std = float(data.x_std) if data.x_std is not None else 1.0
        threshold = (noise + FAINTEST_INK) / 2  # between the brightest background and the faintest ink
        data = replace(data, augment=CanvasShift(x_mean, x_std, threshold))
    return data
