"""CelebA: face images with 40 binary attributes, each a task; read from the user's copy, streamed from disk.

Liu, Luo, Wang and Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015: 202 599 aligned face
images (178×218 JPEG), each annotated with 40 yes/no attributes; the official split (file
``list_eval_partition.txt``) has 162 770 / 19 867 / 19 962 images. As a multi-task benchmark: one
binary task per attribute (Sener & Koltun, NeurIPS 2018, all 40; Nash-MTL and FAMO follow them).
Licence: the CelebA agreement (non-commercial research use); not redistributable, so nothing is bundled.

Layout (``root=DIR``)::

    DIR/list_attr_celeba.txt       line 1: the number of images; line 2: the 40 attribute names;
                                   then "000001.jpg  -1  1 …" (whitespace-separated, -1 = no, 1 = yes)
    DIR/list_eval_partition.txt    "000001.jpg 0" (0 train, 1 val, 2 test), one line per image
    DIR/img_align_celeba/*.jpg     the aligned images

Images are resized (bilinear, the whole 178×218 frame) to ``size × size`` RGB. They are not held in
memory: every split is a :class:`~mtl_lab.data.streaming.StreamedSplit`. With ``cache=True`` (default)
all images are decoded once into ``DIR/.mtl_lab_cache/celeba_{size}.u8`` (``uint8 [N, 3, size, size]``;
``cache_dir`` puts it elsewhere), and batches read rows of that file; with ``cache=False`` every batch
decodes its JPEGs. Either way ``workers`` processes read batches ahead. Inputs are ``pixels / 255``
standardised with one mean and standard deviation of the training images (all of them from the cache;
without a cache, of a seeded sample of ``NORMALIZATION_SAMPLE`` training images, said in ``info``).
Targets: 1.0 where the attribute file says 1, 0.0 where it says -1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData
from mtl_lab.data.mnist import check_root, find_file
from mtl_lab.data.streaming import CacheReader, ImageRows, JpegReader, StreamedSplit, build_cache
from mtl_lab.validate import check_seed

ATTRIBUTES_FILE, PARTITION_FILE, IMAGE_DIR = "list_attr_celeba.txt", "list_eval_partition.txt", "img_align_celeba"
LAYOUT = (f"expected layout: DIR/{ATTRIBUTES_FILE} (count, 40 attribute names, then 'name.jpg -1 1 …' per image), "
          f"DIR/{PARTITION_FILE} ('name.jpg 0|1|2' per image), DIR/{IMAGE_DIR}/NAME.jpg")
N_ATTRIBUTES = 40
SPLITS = ("train", "val", "test")
NORMALIZATION_SAMPLE = 2048


def read_attributes(path: Path) -> tuple[list[str], list[str], torch.Tensor]:
    """Attribute names, image names, and float ``[N, 40]`` targets in {0, 1} from ``list_attr_celeba.txt``."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise ValueError(f"{path}: expected a count line and an attribute-name line; {LAYOUT}")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise ValueError(f"{path}, line 1: expected the number of images, got {lines[0]!r}") from None
    names = lines[1].split()
    if len(names) != N_ATTRIBUTES:
        raise ValueError(f"{path}, line 2: {len(names)} attribute names, expected {N_ATTRIBUTES}")
    images, values = [], []
    for number, line in enumerate(lines[2:], start=3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != N_ATTRIBUTES + 1 or any(v not in ("-1", "1") for v in fields[1:]):
            raise ValueError(f"{path}, line {number}: expected an image name and {N_ATTRIBUTES} values -1 or 1, "
                             f"got {line[:80]!r}")
        images.append(fields[0])
        values.append([v == "1" for v in fields[1:]])
    if len(images) != count:
        raise ValueError(f"{path}: line 1 announces {count} images, the file lists {len(images)}")
    return names, images, torch.tensor(values, dtype=torch.float32)


def read_partition(path: Path, images: list[str]) -> torch.Tensor:
    """The split code (0 train, 1 val, 2 test) of every image in ``images``, from ``list_eval_partition.txt``."""
    codes: dict[str, int] = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise ValueError(f"{path}, line {number}: expected 'name.jpg 0|1|2', got {line[:80]!r}")
        codes[fields[0]] = int(fields[1])
    missing = [name for name in images if name not in codes]
    if missing:
        raise ValueError(f"{path}: no split for {len(missing)} image(s) of {ATTRIBUTES_FILE}, e.g. {missing[0]!r}")
    return torch.tensor([codes[name] for name in images])


def check_options(tasks: list[str] | None, names: list[str], size: int, workers: int) -> list[str]:
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 218:
        raise ValueError(f"size must be an int in [8, 218] (the images are 178×218), got {size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an int ≥ 0, got {workers!r}")
    if tasks is None:
        return list(names)
    if isinstance(tasks, str) or not isinstance(tasks, (list, tuple)) or not tasks:
        raise ValueError(f"tasks must be a non-empty list of attribute names, got {tasks!r}")
    unknown = [t for t in tasks if t not in names]
    if unknown:
        raise ValueError(f"unknown CelebA attribute(s) {unknown}; choose from {names}")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks repeats an attribute: {list(tasks)}")
    return list(tasks)


def fit_pixels(reader: CacheReader | JpegReader, rows: torch.Tensor, cached: bool, seed: int) -> tuple[float, float]:
    """Mean and standard deviation of ``pixels / 255`` over ``rows`` (all of them from a cache, else a sample)."""
    if not cached and len(rows) > NORMALIZATION_SAMPLE:
        rows = rows[torch.randperm(len(rows), generator=torch.Generator().manual_seed(seed))[:NORMALIZATION_SAMPLE]]
    total = total_sq = 0.0
    count = 0
    ids = np.sort(rows.numpy())
    for start in range(0, len(ids), 4096):
        block = reader.read(ids[start : start + 4096]).astype(np.float64) / 255.0
        total += float(block.sum())
        total_sq += float((block * block).sum())
        count += block.size
    mean = total / count
    std = max((total_sq / count - mean * mean) ** 0.5, 1e-6)
    return mean, std


def celeba(
    root: str | None = None,
    tasks: list[str] | None = None,
    size: int = 64,
    cache: bool = True,
    cache_dir: str | None = None,
    workers: int = 2,
    seed: int = 0,
    normalize: bool = True,
) -> MultiTaskData:
    """CelebA face attributes (needs root=DIR): any of the 40 attributes as binary tasks, streamed from disk."""
    if root is None:
        raise ValueError(f"celeba needs the CelebA files, which are not bundled (licence): pass root=DIR; {LAYOUT}")
    check_seed(seed)
    folder = check_root(root)
    names, images, targets = read_attributes(find_file(folder, ATTRIBUTES_FILE, LAYOUT))
    chosen = check_options(tasks, names, size, workers)
    split_of = read_partition(find_file(folder, PARTITION_FILE, LAYOUT), images)
    image_dir = folder / IMAGE_DIR
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{folder}: missing the folder {IMAGE_DIR}/; {LAYOUT}")
    present = {p.name for p in image_dir.iterdir()}
    absent = [name for name in images if name not in present]
    if absent:
        raise FileNotFoundError(f"{image_dir}: {len(absent)} image(s) listed in {ATTRIBUTES_FILE} are missing, "
                                f"e.g. {absent[0]!r}; {LAYOUT}")
    reader: CacheReader | JpegReader = JpegReader(tuple(str(image_dir / n) for n in images), size)
    if cache:
        where = Path(cache_dir).expanduser() if cache_dir is not None else folder / ".mtl_lab_cache"
        reader = build_cache(reader, where / f"celeba_{size}.u8", workers)
    rows = {s: (split_of == k).nonzero().flatten() for k, s in enumerate(SPLITS)}
    if len(rows["train"]) == 0:
        raise ValueError(f"{folder / PARTITION_FILE}: no image has split 0 (train)")
    mean, std = fit_pixels(reader, rows["train"], cache, seed) if normalize else (0.0, 1.0)
    column = {name: k for k, name in enumerate(names)}
    splits = {
        s: StreamedSplit(ImageRows(reader, index, mean, std), {t: targets[index, column[t]] for t in chosen},
                         workers=workers)
        for s, index in rows.items()
    }
    task_list = [T.binary(t, description=f"CelebA attribute {t} (1 = yes)") for t in chosen]
    info = {
        "source": f"CelebA files in {folder}",
        "size": size,
        "reader": "decoded cache " + reader.path if isinstance(reader, CacheReader) else "JPEG files",
        "normalization": ("all training images" if cache else f"a sample of ≤ {NORMALIZATION_SAMPLE} training "
                          "images") if normalize else "none",
    }
    mean_t = torch.tensor([mean]) if normalize else None
    std_t = torch.tensor([std]) if normalize else None
    return MultiTaskData("celeba", task_list, splits["train"], splits["val"], splits["test"], mean_t, std_t,
                         None, info)
