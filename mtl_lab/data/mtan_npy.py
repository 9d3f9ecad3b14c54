"""NYUv2 and Cityscapes from local files in MTAN's preprocessed ``.npy`` layout (nothing downloaded).

The dense multi-task benchmarks of Liu, Johns and Davison ("End-to-End Multi-Task Learning with
Attention", CVPR 2019), in the preprocessed copies their code and LibMTL read. Point ``root`` at a
folder that already holds them::

    NYUv2       root/{train,val}/image/{i}.npy    H×W×3 float (288×384), colours in [0, 1]
                root/{train,val}/label/{i}.npy    H×W, 13 classes, −1 = ignore
                root/{train,val}/depth/{i}.npy    H×W×1, 0 = invalid
                root/{train,val}/normal/{i}.npy   H×W×3 unit vectors, (0, 0, 0) = invalid
    Cityscapes  root/{train,val}/{image,label_7,label_19,depth}/{i}.npy   (128×256; label_7 / label_19
                the 7- or 19-class labels, −1 = ignore; depth H×W×1, 0 = invalid)

with ``i = 0, 1, …`` in each folder (NYUv2: 795 train / 654 val; Cityscapes: 2 975 / 500). As in the
papers, the ``val`` folder is the **test** split; ``n_val`` items drawn (seeded) from ``train`` form
the validation split (0 by default: no validation). Every array is read into memory (NYUv2: about
5 GB as float32; ``limit`` reads only the first items of each folder). Images are left as stored unless
``normalize=True``. The augmentation is attached to the data and applied when training with
``augment=True`` (a :class:`~mtl_lab.training.TrainConfig` option). A missing folder or file, a gap in the
numbering or an array of the wrong shape is an error that names the file and the expected layout.

Augmentation (``augment=True``, training batches only), MTAN's and LibMTL's ``RandomScaleCrop`` and
flip, drawn per image from the trainer's generator:

1. a scale ``s`` from ``(1.0, 1.2, 1.5)``; a crop of ``⌊H/s⌋ × ⌊W/s⌋`` at a uniform position, resized
   back to ``H × W`` — bilinear (corners aligned) for the image, nearest for labels, depth and normals;
   depth is divided by ``s`` (the scene looks ``s`` times closer). The labels take the source pixel
   nearest to the very point the image's bilinear resize samples (:func:`sample_points`): MTAN's code
   uses ``F.interpolate(mode="nearest")`` there, whose sampling grid is offset from the bilinear one by
   up to a pixel, so its labels can sit one pixel off the image they describe;
2. with probability ½ a left–right flip of the image and every label; the normals' x component
   changes sign with it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data
from mtl_lab.validate import check_seed

SCALES = (1.0, 1.2, 1.5)
NYUV2_FOLDERS = ("image", "label", "depth", "normal")
NYUV2_LAYOUT = "{train,val}/{image,label,depth,normal}/{i}.npy (image H×W×3, label H×W, depth H×W×1, normal H×W×3)"
CITYSCAPES_LAYOUT = "{train,val}/{image,label_7,label_19,depth}/{i}.npy (image H×W×3, labels H×W, depth H×W×1)"


def read_folder(root: Path, split: str, folder: str, dataset: str, layout: str, limit: int | None) -> np.ndarray:
    """Every ``{i}.npy`` of ``root/split/folder`` stacked, ``i`` from 0 without gaps."""
    path = root / split / folder
    if not path.is_dir():
        raise FileNotFoundError(f"{dataset} at {root}: missing folder {path}; expected layout: {layout}")
    numbers = sorted(int(p.stem) for p in path.glob("*.npy") if p.stem.isdigit())
    if not numbers:
        raise FileNotFoundError(f"{dataset} at {root}: missing file {path / '0.npy'}; expected layout: {layout}")
    count = len(numbers) if limit is None else min(limit, len(numbers))
    if numbers[:count] != list(range(count)):
        gap = next(i for i, n in enumerate(numbers) if n != i)
        raise FileNotFoundError(f"{dataset} at {root}: missing file {path / f'{gap}.npy'}; expected layout: {layout}")
    arrays = [np.load(path / f"{i}.npy") for i in range(count)]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise ValueError(f"{dataset}: {path / f'{i}.npy'} has shape {a.shape}, {path / '0.npy'} has {shape}")
    return np.stack(arrays)


def check_shape(array: np.ndarray, want: tuple, name: str, dataset: str, layout: str) -> None:
    """``array`` is ``[N, *want]`` (``None`` in ``want``: any size)."""
    ok = array.ndim == len(want) + 1 and all(w is None or w == s for w, s in zip(want, array.shape[1:]))
    if not ok:
        raise ValueError(
            f"{dataset}: the arrays of {name} have shape {array.shape[1:]}, expected {want} "
            f"(None: any); expected layout: {layout}"
        )


def read_split(root: Path, split: str, folders: dict[str, str], dataset: str, layout: str, limit: int | None):
    """``x [N, 3, H, W]`` and ``{task: target}`` of one folder split, the shapes checked against each other."""
    image = read_folder(root, split, "image", dataset, layout, limit)
    check_shape(image, (None, None, 3), f"{split}/image", dataset, layout)
    _, h, w, _ = image.shape
    targets = {}
    for task, folder in folders.items():
        array = read_folder(root, split, folder, dataset, layout, limit)
        if len(array) != len(image):
            raise ValueError(f"{dataset}: {split}/{folder} has {len(array)} files, {split}/image has {len(image)}")
        if folder.startswith("label"):
            check_shape(array, (h, w), f"{split}/{folder}", dataset, layout)
            targets[task] = torch.from_numpy(np.rint(array).astype(np.int64))
        else:
            channels = 3 if folder == "normal" else 1
            check_shape(array, (h, w, channels), f"{split}/{folder}", dataset, layout)
            targets[task] = torch.from_numpy(array.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    x = torch.from_numpy(image.astype(np.float32)).permute(0, 3, 1, 2).contiguous()
    return x, targets


def sample_points(size: int, out: int) -> torch.Tensor:
    """For each of ``out`` output pixels, the nearest of ``size`` source pixels to the point that bilinear
    resizing with aligned corners samples, ``i·(size − 1)/(out − 1)``."""
    if out == 1:
        return torch.zeros(1, dtype=torch.long)
    return torch.round(torch.arange(out, dtype=torch.float64) * (size - 1) / (out - 1)).long()


def scale_crop_flip(
    image: torch.Tensor, targets: dict[str, torch.Tensor], kinds: dict[str, str],
    scale: float, top: int, left: int, flip: bool,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One image ``[C, H, W]`` and its targets cropped at ``(top, left)`` to ``⌊H/scale⌋ × ⌊W/scale⌋``, resized
    back, and flipped left–right when ``flip`` (see the module docstring for the rules per kind)."""
    _, height, width = image.shape
    h, w = int(height / scale), int(width / scale)
    crop = (slice(top, top + h), slice(left, left + w))
    out = F.interpolate(image[None, :, crop[0], crop[1]], size=(height, width), mode="bilinear", align_corners=True)[0]
    if flip:
        out = out.flip(-1)
    rows, cols = sample_points(h, height), sample_points(w, width)
    labels = {}
    for name, y in targets.items():
        piece = y[..., crop[0], crop[1]][..., rows, :][..., cols]
        if kinds[name] == "depth":
            piece = piece / scale
        if flip:
            piece = piece.flip(-1)
            if kinds[name] == "normals":
                piece = piece * torch.tensor([-1.0, 1.0, 1.0], dtype=piece.dtype).reshape(3, 1, 1)
        labels[name] = piece
    return out, labels


class ScaleCropFlip:
    """MTAN's training augmentation for a batch: :func:`scale_crop_flip` with per-image random draws."""

    def __init__(self, kinds: dict[str, str], scales: tuple[float, ...] = SCALES) -> None:
        self.kinds = dict(kinds)
        self.scales = tuple(scales)

    def __call__(self, x: torch.Tensor, targets: dict[str, torch.Tensor], generator: torch.Generator):
        _, _, height, width = x.shape
        images, labels = [], {name: [] for name in targets}
        for b in range(x.shape[0]):
            scale = self.scales[int(torch.randint(len(self.scales), (1,), generator=generator))]
            h, w = int(height / scale), int(width / scale)
            top = int(torch.randint(height - h + 1, (1,), generator=generator))
            left = int(torch.randint(width - w + 1, (1,), generator=generator))
            flip = bool(torch.rand((), generator=generator) < 0.5)
            image, y = scale_crop_flip(x[b], {n: t[b] for n, t in targets.items()}, self.kinds, scale, top, left, flip)
            images.append(image)
            for name, value in y.items():
                labels[name].append(value)
        return torch.stack(images), {name: torch.stack(values) for name, values in labels.items()}


def check_loader_options(root: object, n_val: int, limit: int | None, seed: int) -> Path:
    check_seed(seed)
    if not isinstance(root, (str, Path)):
        raise ValueError(f"root must be the path of a folder in MTAN's layout (nothing is downloaded), got {root!r}")
    if isinstance(n_val, bool) or not isinstance(n_val, int) or n_val < 0:
        raise ValueError(f"n_val must be an int ≥ 0, got {n_val!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be None or a positive int, got {limit!r}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"root {path} is not a folder")
    return path


def assemble(
    name: str, root: Path, tasks: list[T.Task], folders: dict[str, str], layout: str,
    n_val: int, limit: int | None, seed: int, normalize: bool, augment: bool,
) -> MultiTaskData:
    x, y = read_split(root, "train", folders, name, layout, limit)
    x_test, y_test = read_split(root, "val", folders, name, layout, limit)
    if n_val >= len(x):
        raise ValueError(f"n_val={n_val} leaves no training items ({len(x)} in {root / 'train'})")
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    whole = Split(x, y)
    val, train = whole.take(order[:n_val]), whole.take(order[n_val:])
    for task in tasks:
        task.check_target(train.y[task.name])
    kinds = {t.name: t.kind for t in tasks}
    info = {"root": str(root), "test": "the val folder", "augment": "scale-crop + flip" if augment else None}
    data = make_data(name, tasks, train, val, Split(x_test, y_test), normalize=normalize, per_feature=False,
                     augment=ScaleCropFlip(kinds) if augment else None, info=info)
    return data


def nyuv2(
    root: str | Path | None = None, n_val: int = 0, limit: int | None = None, seed: int = 0, normalize: bool = False,
    augment: bool = True,
) -> MultiTaskData:
    """NYUv2 (13-class segmentation, depth, surface normals) from MTAN's .npy files under ``root``."""
    path = check_loader_options(root, n_val, limit, seed)
    tasks = [
        T.segmentation("segmentation", 13, description="13 NYUv2 classes per pixel; −1 = ignore"),
        T.depth("depth", description="depth per pixel; 0 = invalid"),
        T.normals("normal", description="surface normal per pixel; (0, 0, 0) = invalid"),
    ]
    folders = {"segmentation": "label", "depth": "depth", "normal": "normal"}
    return assemble("nyuv2", path, tasks, folders, NYUV2_LAYOUT, n_val, limit, seed, normalize, augment)


def cityscapes(
    root: str | Path | None = None, classes: int = 7, n_val: int = 0, limit: int | None = None, seed: int = 0,
    normalize: bool = False, augment: bool = True,
) -> MultiTaskData:
    """Cityscapes (7- or 19-class segmentation, depth) from MTAN's .npy files under ``root``."""
    if classes not in (7, 19) or isinstance(classes, bool):
        raise ValueError(f"classes must be 7 or 19 (the label_7 or label_19 folder), got {classes!r}")
    path = check_loader_options(root, n_val, limit, seed)
    tasks = [
        T.segmentation("segmentation", classes, description=f"{classes} Cityscapes classes per pixel; −1 = ignore"),
        T.depth("depth", description="depth per pixel; 0 = invalid"),
    ]
    folders = {"segmentation": f"label_{classes}", "depth": "depth"}
    return assemble("cityscapes", path, tasks, folders, CITYSCAPES_LAYOUT, n_val, limit, seed, normalize, augment)
