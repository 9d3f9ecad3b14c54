"""Handwritten digits: one 8×8 image, five tasks of different kinds.

Source: the UCI "Optical Recognition of Handwritten Digits" test set (E. Alpaydin and C. Kaynak, 1998;
licence CC BY 4.0), as bundled with scikit-learn: 1797 images written by 13 people. Each 32×32 bitmap
was cut into 4×4 blocks and the ink pixels of each block counted, so a pixel is an integer in 0..16.
The file ``files/digits.csv.gz`` holds one image per line: 64 pixels (row by row) and then the label.

Inputs are ``[N, 1, 8, 8]`` floats ``pixels / 16``, normalised with one mean and one standard deviation
of the training split. The split is stratified by digit (every class split ``fractions`` on its own).

Tasks, in head order:

* ``digit`` — which digit, 10-way classification (cross-entropy, accuracy ↑);
* ``parity`` — is the digit odd (1) or even (0), binary (BCE, accuracy ↑);
* ``ge5`` — is the digit 5 or more (1), binary (BCE, accuracy ↑);
* ``recon`` — reconstruct the image: 64 targets ``pixels / 16`` in ``[0, 1]`` (MSE ↓);
* ``ink`` — the mean ink of the image, standardised with the training mean and std (MSE ↓).

Augmentation (``augment=True``) shifts each training image by ``dy, dx`` drawn uniformly from
``{-1, 0, 1}`` and fills the uncovered row/column with blank pixels. Every digit in this data touches
the top and bottom rows, so a vertical shift cuts one row of ink off. The targets follow the image the
model sees: ``recon`` is shifted in the same way (the task stays "reproduce your input"; keeping it
unshifted would quietly turn it into the harder "undo the shift") and ``ink`` is recomputed from the
shifted image; the three label tasks do not change.

This module also holds the image helpers that ``multidigits`` and ``localization`` build on: the
file reader, a stratified split, pasting digits onto a canvas, tight ink boxes and per-image shifts.
"""

from __future__ import annotations

import csv
import gzip
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, check_selection, make_data

DIGITS_FILE = Path(__file__).parent / "files" / "digits.csv.gz"
SIDE = 8  # the images are SIDE × SIDE pixels
MAX_PIXEL = 16  # pixels are counts of ink in a 4×4 block: 0..16
TASK_NAMES = ("digit", "parity", "ge5", "recon", "ink")
SOURCE = (
    "UCI Optical Recognition of Handwritten Digits, test set (Alpaydin & Kaynak 1998), "
    "as bundled with scikit-learn; licence CC BY 4.0"
)


# ---------------------------------------------------------------- the embedded file


@lru_cache(maxsize=1)
def _read_digits_file() -> tuple[torch.Tensor, torch.Tensor]:
    with gzip.open(DIGITS_FILE, "rt", newline="") as handle:
        rows = [[int(v) for v in row] for row in csv.reader(handle) if row]
    table = torch.tensor(rows, dtype=torch.int64)
    if table.dim() != 2 or table.shape[1] != SIDE * SIDE + 1:
        raise ValueError(f"{DIGITS_FILE.name}: expected {SIDE * SIDE + 1} columns, got shape {tuple(table.shape)}")
    pixels, labels = table[:, :-1], table[:, -1]
    if int(pixels.min()) < 0 or int(pixels.max()) > MAX_PIXEL or int(labels.min()) < 0 or int(labels.max()) > 9:
        raise ValueError(f"{DIGITS_FILE.name}: pixels must lie in 0..{MAX_PIXEL} and labels in 0..9")
    return pixels.reshape(-1, SIDE, SIDE).to(torch.uint8), labels


def load_digit_images() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 images as uint8 ``[1797, 8, 8]`` (values 0..16) and their labels int64 ``[1797]``."""
    pixels, labels = _read_digits_file()
    return pixels.clone(), labels.clone()


# ---------------------------------------------------------------- helpers shared by the image datasets


def check_fractions(fractions: tuple[float, float, float]) -> None:
    """Raise ``ValueError`` unless ``fractions`` is three numbers ≥ 0 that sum to 1."""
    if len(fractions) != 3:
        raise ValueError(f"fractions must be (train, val, test), got {len(fractions)} entries: {fractions}")
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise ValueError(f"split fractions must be ≥ 0 and sum to 1, got {fractions}")


def stratified_split(
    labels: torch.Tensor, fractions: tuple[float, float, float], generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Disjoint train/val/test row indices; every class is shuffled and split by ``fractions`` on its own.

    Each index set is returned in ascending order.
    """
    check_fractions(fractions)
    parts: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] = ([], [], [])
    for label in torch.unique(labels).tolist():
        members = (labels == label).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        n_train = round(fractions[0] * len(members))
        n_val = round(fractions[1] * len(members))
        parts[0].append(members[:n_train])
        parts[1].append(members[n_train : n_train + n_val])
        parts[2].append(members[n_train + n_val :])
    return tuple(torch.cat(p).sort().values for p in parts)  # type: ignore[return-value]


@dataclass(frozen=True)
class Placement:
    """Which source digits make each example, and where their 8×8 patches are pasted.

    ``source``, ``top`` and ``left`` have one row per example (``[N]`` for one digit per canvas,
    ``[N, K]`` for ``K`` digits); ``source`` indexes :func:`load_digit_images`, ``top``/``left`` are
    the canvas row/column of each patch's top-left pixel.
    """

    source: torch.Tensor
    top: torch.Tensor
    left: torch.Tensor


def paste(
    images: torch.Tensor, source: torch.Tensor, top: torch.Tensor, left: torch.Tensor, canvas: int
) -> torch.Tensor:
    """Canvases ``[N, canvas, canvas]``, zero except the patch ``images[source[n]]`` at ``(top[n], left[n])``."""
    n = source.shape[0]
    out = torch.zeros(n, canvas, canvas, dtype=images.dtype)
    rows = top.reshape(n, 1, 1) + torch.arange(SIDE).reshape(1, SIDE, 1)
    cols = left.reshape(n, 1, 1) + torch.arange(SIDE).reshape(1, 1, SIDE)
    out[torch.arange(n).reshape(n, 1, 1), rows, cols] = images[source]
    return out


def ink_boxes(ink: torch.Tensor) -> torch.Tensor:
    """Tight pixel boxes of boolean ink masks ``[N, H, W]``: int64 ``[N, 4]`` = (col_min, row_min, col_max, row_max).

    The bounds are inclusive pixel indices. Every mask must contain some ink.
    """
    if not bool(ink.flatten(1).any(dim=1).all()):
        raise ValueError("ink_boxes needs at least one ink pixel in every image")
    rows = ink.any(dim=2).to(torch.int64)  # [N, H]: does row r hold ink?
    cols = ink.any(dim=1).to(torch.int64)  # [N, W]
    h, w = rows.shape[1], cols.shape[1]
    row_min = rows.argmax(dim=1)  # argmax returns the first maximum
    row_max = h - 1 - rows.flip(1).argmax(dim=1)
    col_min = cols.argmax(dim=1)
    col_max = w - 1 - cols.flip(1).argmax(dim=1)
    return torch.stack([col_min, row_min, col_max, row_max], dim=1)


def shift_images(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, fill: float | None) -> torch.Tensor:
    """Move image ``n`` of ``x [N, C, H, W]`` down by ``dy[n]`` and right by ``dx[n]`` pixels (negative: up/left).

    Pixels that enter from the border take the value ``fill``; with ``fill=None`` they wrap around from
    the opposite border instead (use that only when the wrapped pixels are background).
    """
    n, _, h, w = x.shape
    rows = torch.arange(h, device=x.device).reshape(1, h, 1) - dy.reshape(n, 1, 1).to(x.device)
    cols = torch.arange(w, device=x.device).reshape(1, 1, w) - dx.reshape(n, 1, 1).to(x.device)
    if fill is None:
        inside = None
        rows, cols = rows % h, cols % w
    else:
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        rows, cols = rows.clamp(0, h - 1), cols.clamp(0, w - 1)
    batch = torch.arange(n, device=x.device).reshape(n, 1, 1)
    out = x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)  # [N, C, H, W]
    if inside is not None:
        out = torch.where(inside.unsqueeze(1), out, torch.full_like(out, fill))
    return out.contiguous()


def draw_integers(low: torch.Tensor, high: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One integer per row, uniform on ``low[n] .. high[n]`` (inclusive), drawn from ``generator``."""
    device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(low.shape, generator=generator, device=device).to(low.device)
    step = torch.floor(u * (high - low + 1).to(u.dtype)).to(low.dtype)
    return low + torch.minimum(step, high - low)  # the minimum guards against u * span rounding up


# ---------------------------------------------------------------- augmentation


@dataclass(frozen=True)
class DigitShift:
    """Train-time augmentation of :func:`digits`: shift every image by up to ``max_shift`` pixels.

    The uncovered border is filled with blank pixels (``x_mean``/``x_std`` undo the input
    normalisation, so blank is ``-x_mean / x_std``). ``recon`` moves with the image; ``ink`` is
    recomputed from the shifted image and standardised with ``ink_mean``/``ink_std``.
    """

    x_mean: float = 0.0
    x_std: float = 1.0
    ink_mean: float = 0.0
    ink_std: float = 1.0
    max_shift: int = 1

    def __call__(
        self, x: torch.Tensor, targets: dict[str, torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n = x.shape[0]
        low = torch.full((n,), -self.max_shift, dtype=torch.int64, device=x.device)
        high = torch.full((n,), self.max_shift, dtype=torch.int64, device=x.device)
        dy = draw_integers(low, high, generator)
        dx = draw_integers(low, high, generator)
        blank = (0.0 - self.x_mean) / self.x_std
        x_new = shift_images(x, dy, dx, fill=blank)
        out = dict(targets)
        if "recon" in out:
            recon = out["recon"].reshape(n, 1, SIDE, SIDE)
            out["recon"] = shift_images(recon, dy, dx, fill=0.0).reshape(n, SIDE * SIDE)
        if "ink" in out:
            ink = (x_new * self.x_std + self.x_mean).mean(dim=(1, 2, 3))
            out["ink"] = ((ink - self.ink_mean) / self.ink_std).reshape(n, 1).to(out["ink"].dtype)
        return x_new, out


# ---------------------------------------------------------------- the dataset


def make_digit_tasks() -> list[T.Task]:
    """The five tasks of :func:`digits`, in head order."""
    return [
        T.classification("digit", 10, description="which digit is written (0-9)"),
        T.binary("parity", description="is the digit odd (1) or even (0)"),
        T.binary("ge5", description="is the digit 5 or more (1) or less (0)"),
        T.regression("recon", SIDE * SIDE, description="reconstruct the 64 pixels, scaled to [0, 1]"),
        T.regression("ink", 1, description="mean ink of the image, standardised on the training split"),
    ]


def _check_task_names(tasks: list[str] | tuple[str, ...] | str | None) -> list[str]:
    if tasks is None:
        return list(TASK_NAMES)
    return check_selection("digits", list(TASK_NAMES), tasks)


def digits(
    tasks: list[str] | tuple[str, ...] | str | None = None,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
    normalize: bool = True,
    augment: bool = False,
) -> MultiTaskData:
    """8×8 handwritten digits with five tasks: digit, parity, ge5, recon, ink.

    ``tasks`` picks a subset by name (in the order given); ``fractions`` are the train/val/test shares
    of every class; ``augment=True`` adds the random ±1 pixel shift of :class:`DigitShift`.
    """
    names = _check_task_names(tasks)
    check_fractions(fractions)
    pixels, labels = load_digit_images()
    image = pixels.to(torch.float32) / MAX_PIXEL  # [N, 8, 8] in [0, 1]
    train_idx, val_idx, test_idx = stratified_split(labels, fractions, torch.Generator().manual_seed(seed))

    ink = image.mean(dim=(1, 2))
    ink_mean, ink_std = float(ink[train_idx].mean()), float(ink[train_idx].std())
    targets = {
        "digit": labels,
        "parity": (labels % 2).to(torch.float32),
        "ge5": (labels >= 5).to(torch.float32),
        "recon": image.reshape(-1, SIDE * SIDE),
        "ink": ((ink - ink_mean) / ink_std).reshape(-1, 1),
    }
    whole = Split(image.unsqueeze(1), targets)
    info = {
        "source": SOURCE,
        "rows": len(labels),
        "split": "stratified by digit",
        "fractions": list(fractions),
        "ink_mean": ink_mean,
        "ink_std": ink_std,
        "augment": "shift by dy, dx in {-1, 0, 1}, blank fill; recon shifts too, ink recomputed" if augment else None,
    }
    data = make_data(
        "digits",
        make_digit_tasks(),
        whole.take(train_idx),
        whole.take(val_idx),
        whole.take(test_idx),
        normalize=normalize,
        per_feature=False,
        info=info,
    )
    if augment:
        x_mean = float(data.x_mean) if data.x_mean is not None else 0.0
        x_std = float(data.x_std) if data.x_std is not None else 1.0
        data = replace(data, augment=DigitShift(x_mean, x_std, ink_mean, ink_std))
    return data.select(names) if names != list(TASK_NAMES) else data
