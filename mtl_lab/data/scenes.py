"""Scenes: small procedural 3-D scenes with exact segmentation, depth and surface normals.

A generated stand-in for NYUv2's three tasks that trains on a CPU. Each image is a tilted background
plane and 1 to ``max_shapes`` objects in front of it, rendered by a z-buffer and lit by one
directional light. Because every surface is given in closed form, the labels are exact.

Geometry (all draws from one ``torch.Generator`` seeded with ``seed``). Pixel ``(row r, column c)`` has
its centre at ``(x, y) = (c + ½, r + ½)``; one pixel is ``1/16`` of a depth unit. A surface is a depth
field ``z(x, y)`` (distance from the camera, in units), and its unit normal, pointing towards the camera,
is ``n ∝ (16·∂z/∂x, 16·∂z/∂y, 1)`` — so depth and normals always agree.

* **background** (class 0): the plane ``z = z₀ + t·(y − H/2)/16`` with ``z₀ ~ U[7, 9]`` and a tilt
  ``t ~ U[−0.3, 0.3]``: a floor or ceiling seen at an angle; normal ``(0, t, 1)/‖·‖``.
* **sphere** (class 1): centre ``(cx, cy)``, radius ``ρ`` pixels, front at depth ``zc``:
  ``z = zc + (ρ − s)/16`` with ``s = √(ρ² − dx² − dy²)``; normal ``(dx, dy, s)/ρ``.
* **cylinder** (class 2), upright, radius ``ρ``, height ``2ρ`` pixels: ``z = zc + (ρ − s)/16`` with
  ``s = √(ρ² − dx²)``; normal ``(dx, 0, s)/ρ``.
* **box** (class 3), a square of side ``2ρ`` facing the camera, turned about the vertical axis by
  ``φ ~ U[−0.6, 0.6]`` rad: ``z = zc + tan(φ)·dx/16``; normal ``(sin φ, 0, cos φ)``.

``ρ ~ U[8, 16]·size/64`` pixels, the centre uniform in the image, ``zc ~ U[2, 6]``; the nearest surface
wins each pixel. The colour is the class's base colour times a per-object brightness ``U[0.7, 1.3]``,
shaded by ``0.25 + 0.75·max(0, n·ℓ)`` for a random light direction ``ℓ`` (one per image, towards the
camera), plus Gaussian pixel noise of standard deviation 0.02: objects of one class differ in colour and
shading, and a surface's shading is what carries its normal.

Invalid pixels, as in MTAN's NYUv2: the one-pixel ring where two surfaces meet is labelled −1 (ignore)
for segmentation; ``depth_holes`` (default 2 %) of the pixels, drawn at random, have depth 0 and
normal ``(0, 0, 0)`` (a depth sensor's missing returns).

Knobs that teach:

* ``depth_scale`` multiplies the depth targets (``100``: depth in centimetres instead of metres). The
  losses of the three tasks are then on incomparable scales, and with equal weights depth takes the
  shared trunk for itself — the loss-scale problem of NYUv2, that loss-weighting methods address.
* ``label_noise``: each object's segmentation label is replaced by a uniformly drawn wrong object class
  with this probability (in the training split only; validation and test labels stay exact): a task
  with noisy labels, that sharing can help or that can pull the others down.

Tasks: ``segmentation`` (4 classes: background, sphere, cylinder, box), ``depth``, ``normal``; the pixel
kinds of :mod:`mtl_lab.tasks`. Inputs ``[N, 3, size, size]``, normalised with one mean and standard
deviation of the training split.
"""

from __future__ import annotations

import math

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data
from mtl_lab.validate import check_seed

CLASSES = ("background", "sphere", "cylinder", "box")
BASE_COLOURS = torch.tensor([[0.55, 0.5, 0.45], [0.85, 0.25, 0.2], [0.2, 0.6, 0.3], [0.25, 0.35, 0.85]])
PIXELS_PER_UNIT = 16.0
PIXEL_NOISE = 0.02


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=generator))


def background(size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth ``[H, W]`` and normals ``[3, H, W]`` of the tilted background plane."""
    z0, tilt = uniform(generator, 7.0, 9.0), uniform(generator, -0.3, 0.3)
    y = torch.arange(size, dtype=torch.float64) + 0.5
    depth = (z0 + tilt * (y - size / 2) / PIXELS_PER_UNIT).reshape(size, 1).expand(size, size).clone()
    normal = torch.tensor([0.0, tilt, 1.0], dtype=torch.float64) / math.hypot(tilt, 1.0)
    return depth, normal.reshape(3, 1, 1).expand(3, size, size).clone()


def shape_surface(kind: int, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Depth ``[H, W]`` (``inf`` outside the object) and normals ``[3, H, W]`` of one object of class ``kind``."""
    radius = uniform(generator, 8.0, 16.0) * size / 64
    cx, cy = uniform(generator, 0.0, size), uniform(generator, 0.0, size)
    zc = uniform(generator, 2.0, 6.0)
    coords = torch.arange(size, dtype=torch.float64) + 0.5
    dx = (coords - cx).reshape(1, size).expand(size, size)
    dy = (coords - cy).reshape(size, 1).expand(size, size)
    zero = torch.zeros_like(dx)
    if kind == 1:  # sphere
        inside = dx**2 + dy**2 < radius**2
        s = (radius**2 - dx**2 - dy**2).clamp(min=0).sqrt()  # 0 outside, where it is not used
        depth = zc + (radius - s) / PIXELS_PER_UNIT
        normal = torch.stack([dx, dy, s]) / radius
    elif kind == 2:  # upright cylinder
        inside = (dx.abs() < radius) & (dy.abs() < radius)
        s = (radius**2 - dx**2).clamp(min=0).sqrt()
        depth = zc + (radius - s) / PIXELS_PER_UNIT
        normal = torch.stack([dx, zero, s]) / radius
    else:  # box face turned by phi about the vertical axis
        phi = uniform(generator, -0.6, 0.6)
        inside = (dx.abs() < radius) & (dy.abs() < radius)
        depth = zc + math.tan(phi) * dx / PIXELS_PER_UNIT
        normal = torch.tensor([math.sin(phi), 0.0, math.cos(phi)], dtype=torch.float64).reshape(3, 1, 1)
        normal = normal.expand(3, size, size)
    return torch.where(inside, depth, torch.full_like(depth, math.inf)), normal


def boundary(labels: torch.Tensor) -> torch.Tensor:
    """``[H, W]`` boolean: pixels with a 4-neighbour of another label."""
    edge = torch.zeros_like(labels, dtype=torch.bool)
    edge[1:, :] |= labels[1:, :] != labels[:-1, :]
    edge[:-1, :] |= labels[:-1, :] != labels[1:, :]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edge[:, :-1] |= labels[:, :-1] != labels[:, 1:]
    return edge


def render(
    size: int, max_shapes: int, depth_holes: float, label_noise: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One scene: image ``[3, H, W]``, labels ``[H, W]``, depth ``[1, H, W]``, normals ``[3, H, W]``."""
    depth, normal = background(size, generator)
    labels = torch.zeros(size, size, dtype=torch.int64)
    objects = torch.zeros(size, size, dtype=torch.int64)  # which object (0: background) for the boundary ring
    albedo = BASE_COLOURS[0].double().reshape(3, 1, 1).expand(3, size, size).clone()
    n_shapes = 1 + int(torch.randint(max_shapes, (1,), generator=generator))
    for index in range(n_shapes):
        kind = 1 + int(torch.randint(len(CLASSES) - 1, (1,), generator=generator))
        shape_depth, shape_normal = shape_surface(kind, size, generator)
        brightness = uniform(generator, 0.7, 1.3)
        # both draws are made whatever label_noise is, so the scenes themselves never depend on it
        noisy = float(torch.rand((), generator=generator)) < label_noise
        others = [k for k in range(1, len(CLASSES)) if k != kind]
        wrong = others[int(torch.randint(len(others), (1,), generator=generator))]
        label = wrong if noisy else kind
        front = shape_depth < depth
        depth = torch.where(front, shape_depth, depth)
        normal = torch.where(front, shape_normal, normal)
        labels = torch.where(front, torch.tensor(label), labels)
        objects = torch.where(front, torch.tensor(index + 1), objects)
        colour = (BASE_COLOURS[kind].double() * brightness).reshape(3, 1, 1)
        albedo = torch.where(front, colour, albedo)
    light = torch.randn(3, generator=generator, dtype=torch.float64)
    light[2] = light[2].abs() + 0.5  # from the camera's side
    light = light / light.norm()
    shading = 0.25 + 0.75 * (normal * light.reshape(3, 1, 1)).sum(0).clamp(min=0)
    image = albedo * shading + PIXEL_NOISE * torch.randn(3, size, size, generator=generator, dtype=torch.float64)
    labels = torch.where(boundary(objects), torch.tensor(-1), labels)
    holes = torch.rand(size, size, generator=generator) < depth_holes
    depth = torch.where(holes, torch.zeros_like(depth), depth)
    normal = torch.where(holes, torch.zeros_like(normal), normal)
    return image.float(), labels, depth.unsqueeze(0).float(), normal.float()


def check_fraction(name: str, value: object, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < high:
        raise ValueError(f"{name} must be a number in [0, {high:g}), got {value!r}")
    return float(value)


def scenes(
    n_train: int = 512,
    n_val: int = 128,
    n_test: int = 128,
    size: int = 64,
    max_shapes: int = 4,
    depth_scale: float = 1.0,
    label_noise: float = 0.0,
    depth_holes: float = 0.02,
    seed: int = 0,
) -> MultiTaskData:
    """Procedural 3-D scenes with exact segmentation, depth and surface normals (a CPU-sized NYUv2).

    ``depth_scale`` multiplies the depth targets (the loss-scale problem); ``label_noise`` is the chance
    that an object's training label names a wrong class; ``depth_holes`` the share of pixels without
    depth or normal. See the module docstring for the construction.
    """
    check_seed(seed)
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "n_train" else 0):
            raise ValueError(f"{name} must be an int ≥ {1 if name == 'n_train' else 0}, got {value!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 16 or size % 8:
        raise ValueError(f"size must be an int ≥ 16 and a multiple of 8 (three pooling stages), got {size!r}")
    if isinstance(max_shapes, bool) or not isinstance(max_shapes, int) or not 1 <= max_shapes <= 8:
        raise ValueError(f"max_shapes must be an int in 1..8, got {max_shapes!r}")
    if isinstance(depth_scale, bool) or not isinstance(depth_scale, (int, float)) or not depth_scale > 0:
        raise ValueError(f"depth_scale must be a positive number, got {depth_scale!r}")
    label_noise = check_fraction("label_noise", label_noise, 1.0)
    depth_holes = check_fraction("depth_holes", depth_holes, 0.5)
    generator = torch.Generator().manual_seed(seed)
    splits = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        noise = label_noise if split == "train" else 0.0
        rendered = [render(size, max_shapes, depth_holes, noise, generator) for _ in range(n)]
        x, labels, depth, normal = (
            torch.stack([r[i] for r in rendered]) if rendered else torch.zeros(0) for i in range(4)
        )
        if n == 0:
            x, labels = torch.zeros(0, 3, size, size), torch.zeros(0, size, size, dtype=torch.int64)
            depth, normal = torch.zeros(0, 1, size, size), torch.zeros(0, 3, size, size)
        splits[split] = Split(x, {"segmentation": labels, "depth": depth * depth_scale, "normal": normal})
    tasks = [
        T.segmentation("segmentation", len(CLASSES), description="which surface each pixel shows (4 classes)"),
        T.depth("depth", description=f"distance from the camera (units × {depth_scale:g}); 0 = missing"),
        T.normals("normal", description="unit surface normal per pixel; (0, 0, 0) = missing"),
    ]
    info = {
        "classes": list(CLASSES),
        "size": size,
        "max_shapes": max_shapes,
        "depth_scale": depth_scale,
        "label_noise": label_noise,
        "depth_holes": depth_holes,
        "ignore": "segmentation −1 on the ring where two surfaces meet; depth 0 and normal (0,0,0) in holes",
    }
    return make_data("scenes", tasks, splits["train"], splits["val"], splits["test"], per_feature=False, info=info)
