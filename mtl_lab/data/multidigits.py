"""Multi-digits: two overlapping 8×8 digits on one canvas, one task per digit (a small MultiMNIST).

Construction after the MultiMNIST of Sener & Koltun, "Multi-Task Learning as Multi-Objective
Optimization", NeurIPS 2018: two different digit images are overlaid, one towards the top-left and one
towards the bottom-right of the canvas; task L names the top-left digit, task R the bottom-right one.
Here the digits are the 8×8 images of :mod:`mtl_lab.data.digits` (UCI handwritten digits, CC BY 4.0).

How one split is built (all draws from one ``torch.Generator`` seeded with ``seed``):

1. The 1797 source images are split, stratified by digit, into disjoint pools of 60 / 20 / 20 % for
   train / val / test (``POOL_FRACTIONS``). A split only ever uses images of its own pool, so no
   handwritten image appears in two splits.
2. Each example takes two *different* images of the pool, uniformly at random.
3. The first is pasted with its top-left pixel at ``(a, b)``, ``a, b`` uniform on ``0..max_offset``;
   the second at ``(canvas - 8 - a', canvas - 8 - b')``, ``a', b'`` uniform on ``0..max_offset``.
4. Where the two patches overlap, the canvas keeps the larger pixel (pixelwise max).

With the defaults (canvas 12, ``max_offset`` 1) the patches overlap by 4 to 6 pixels in each direction.
Inputs are ``[N, 1, canvas, canvas]`` floats ``pixels / 16``, normalised with one mean and standard
deviation of the training split. Tasks ``left`` and ``right``: 10-way classification (CE, accuracy ↑).
"""

from __future__ import annotations

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data
from mtl_lab.data.digits import MAX_PIXEL, SIDE, SOURCE, Placement, load_digit_images, paste, stratified_split

POOL_FRACTIONS = (0.6, 0.2, 0.2)  # shares of the source images kept for train / val / test


def check_sizes(n_train: int, n_val: int, n_test: int) -> None:
    """Raise ``ValueError`` unless the split sizes are ints with ``n_train ≥ 1`` and ``n_val, n_test ≥ 0``."""
    for label, n, least in (("n_train", n_train, 1), ("n_val", n_val, 0), ("n_test", n_test, 0)):
        if isinstance(n, bool) or not isinstance(n, int) or n < least:
            raise ValueError(f"{label} must be an int ≥ {least}, got {n!r}")


def check_canvas(canvas: int) -> None:
    """Raise ``ValueError`` unless ``canvas`` is an int large enough to hold one 8×8 digit."""
    if isinstance(canvas, bool) or not isinstance(canvas, int) or canvas < SIDE:
        raise ValueError(f"canvas must be an int ≥ {SIDE} (the digits are {SIDE}×{SIDE}), got {canvas!r}")


def source_pools(labels: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Disjoint pools of source-image indices for ``train``, ``val`` and ``test`` (stratified by digit)."""
    train, val, test = stratified_split(labels, POOL_FRACTIONS, generator)
    return {"train": train, "val": val, "test": test}


def place_pairs(
    n_train: int,
    n_val: int,
    n_test: int,
    canvas: int = 12,
    max_offset: int = 1,
    generator: torch.Generator | None = None,
) -> dict[str, Placement]:
    """Draw, per split, which two source images each example overlays and where (``source`` is ``[N, 2]``).

    :func:`multidigits` calls this first with a generator seeded with its ``seed``, so calling it
    with ``torch.Generator().manual_seed(seed)`` reproduces the dataset's placement exactly.
    """
    check_sizes(n_train, n_val, n_test)
    check_canvas(canvas)
    if isinstance(max_offset, bool) or not isinstance(max_offset, int) or not 0 <= max_offset <= canvas - SIDE:
        raise ValueError(
            f"max_offset must be an int in [0, canvas - {SIDE}] = [0, {canvas - SIDE}], got {max_offset!r}"
        )
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    _, labels = load_digit_images()
    pools = source_pools(labels, generator)
    far = canvas - SIDE  # top-left pixel of a patch pushed into the bottom-right corner
    placements = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        pool = pools[split]
        first = torch.randint(len(pool), (n,), generator=generator)
        # a second, different image: step 1 .. len(pool) - 1 places further round the pool
        second = (first + 1 + torch.randint(len(pool) - 1, (n,), generator=generator)) % len(pool)
        offsets = torch.randint(max_offset + 1, (n, 4), generator=generator)
        top = torch.stack([offsets[:, 0], far - offsets[:, 2]], dim=1)
        left = torch.stack([offsets[:, 1], far - offsets[:, 3]], dim=1)
        placements[split] = Placement(torch.stack([pool[first], pool[second]], dim=1), top, left)
    return placements


def render_pairs(images: torch.Tensor, placement: Placement, canvas: int) -> torch.Tensor:
    """Canvases ``[N, canvas, canvas]``: the two placed digits combined by pixelwise max."""
    first = paste(images, placement.source[:, 0], placement.top[:, 0], placement.left[:, 0], canvas)
    second = paste(images, placement.source[:, 1], placement.top[:, 1], placement.left[:, 1], canvas)
    return torch.maximum(first, second)


def multidigits(
    n_train: int = 4000,
    n_val: int = 1000,
    n_test: int = 1000,
    canvas: int = 12,
    max_offset: int = 1,
    seed: int = 0,
    normalize: bool = True,
) -> MultiTaskData:
    """Two overlapping digits per canvas (MultiMNIST-style): classify the top-left and the bottom-right one."""
    placements = place_pairs(n_train, n_val, n_test, canvas, max_offset, torch.Generator().manual_seed(seed))
    pixels, labels = load_digit_images()
    pools = source_pools(labels, torch.Generator().manual_seed(seed))  # the pools place_pairs drew first
    images = pixels.to(torch.float32) / MAX_PIXEL
    splits = {}
    for split, placement in placements.items():
        x = render_pairs(images, placement, canvas).unsqueeze(1)
        y = {"left": labels[placement.source[:, 0]], "right": labels[placement.source[:, 1]]}
        splits[split] = Split(x, y)
    tasks = [
        T.classification("left", 10, description="the digit towards the top-left of the canvas"),
        T.classification("right", 10, description="the digit towards the bottom-right of the canvas"),
    ]
    info = {
        "source": SOURCE,
        "construction": "MultiMNIST-style overlay of two different digits (Sener & Koltun, NeurIPS 2018)",
        "canvas": canvas,
        "max_offset": max_offset,
        "pool_fractions": list(POOL_FRACTIONS),
        "pool_sizes": {split: len(pool) for split, pool in pools.items()},
    }
    return make_data(
        "multidigits",
        tasks,
        splits["train"],
        splits["val"],
        splits["test"],
        normalize=normalize,
        per_feature=False,
        info=info,
    )
