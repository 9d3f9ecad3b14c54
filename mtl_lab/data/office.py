"""Office-31 and Office-Home: one classification task per image domain, in LibMTL's list-file layout.

Office-31 (Saenko, Kulis, Fritz and Darrell, "Adapting Visual Category Models to New Domains", ECCV 2010):
4 110 images of 31 object classes from three domains, ``amazon``, ``dslr``, ``webcam``. Office-Home
(Venkateswara, Eusebio, Chakraborty and Panchanathan, "Deep Hashing Network for Unsupervised Domain
Adaptation", CVPR 2017): 15 588 images of 65 classes from ``Art``, ``Clipart``, ``Product``,
``Real_World``. As a multi-task benchmark (LibMTL, Lin and Zhang 2023) each domain is a task with its own
images: the task predicts the class of images from its domain. Licences: research use as each data set's
site says; nothing is bundled.

Layout (``root=DIR``), LibMTL's: one list file per domain and split, each line an image path relative to
``DIR`` and a class index::

    DIR/data_txt/office-31/amazon_train.txt     "amazon/images/back_pack/frame_0001.jpg 0"
    DIR/data_txt/office-31/amazon_val.txt       … and _test.txt, for every domain
    DIR/<the image paths listed>

(LibMTL's repository holds these list files under ``examples/office/data_txt``: copy that folder into DIR.)

Every task's inputs are its own images. By default (``multi_input=True``) the data come as
:class:`~mtl_lab.data.multi_input.MultiInputData`: each domain has its own train/val/test rows, and the
Trainer runs LibMTL's multi-input mode (:mod:`mtl_lab.training.inputs`): every step draws one batch of
``batch_size`` images from each domain, in each domain's own seeded order, and an epoch is as many steps as
the largest domain needs. ``multi_input=False`` gives the masked single-stream form instead: one
:class:`~mtl_lab.data.base.MultiTaskData` whose rows are all the images, each labelled for its domain's task
only (the other tasks' label masks are ``False`` on it, :mod:`mtl_lab.training.masks`), so one batch mixes
the domains and each task's loss is the mean over its rows of that batch. It is kept because the paths
that need one forward pass over shared rows (``rep_grads``, ``mgda_ub``, ``gradient_path='gramian'``) run
on it and are refused in multi-input mode. Images are resized to ``size × size`` and streamed from disk
like CelebA's (:mod:`mtl_lab.data.streaming`), in both forms.
"""

from __future__ import annotations

from pathlib import Path

import torch

from mtl_lab import tasks as T
from mtl_lab.data.base import MultiTaskData
from mtl_lab.data.celeba import fit_pixels
from mtl_lab.data.mnist import check_root
from mtl_lab.data.multi_input import MultiInputData, TaskSplits
from mtl_lab.data.streaming import CacheReader, ImageRows, JpegReader, StreamedSplit, build_cache
from mtl_lab.validate import check_bool, check_seed

DOMAINS = {
    "office31": ("office-31", ("amazon", "dslr", "webcam"), 31),
    "office_home": ("office-home", ("Art", "Clipart", "Product", "Real_World"), 65),
}
SPLITS = ("train", "val", "test")


def layout(name: str) -> str:
    folder, domains, _ = DOMAINS[name]
    return (f"expected layout: DIR/data_txt/{folder}/{{domain}}_{{train,val,test}}.txt for domains {list(domains)} "
            "(each line: an image path relative to DIR and a class index), and the images at those paths")


def read_list(path: Path, root: Path, n_classes: int, name: str) -> list[tuple[str, int]]:
    """``(image path, class)`` of every line of a list file; an error names a malformed line or missing image."""
    if not path.is_file():
        raise FileNotFoundError(f"{root}: missing {path.relative_to(root)}; {layout(name)}")
    items = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.rsplit(maxsplit=1)
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) >= n_classes:
            raise ValueError(f"{path}, line {number}: expected 'image/path.jpg CLASS' with CLASS in "
                             f"0..{n_classes - 1}, got {line[:80]!r}")
        image = root / fields[0].strip()
        if not image.is_file():
            raise FileNotFoundError(f"{path}, line {number}: the image {fields[0].strip()!r} is not under {root}")
        items.append((str(image), int(fields[1])))
    if not items:
        raise ValueError(f"{path}: lists no image; {layout(name)}")
    return items


def office(
    name: str, root: str | None, size: int, cache: bool, cache_dir: str | None, workers: int, seed: int,
    normalize: bool, multi_input: bool,
) -> MultiTaskData | MultiInputData:
    folder_name, domains, n_classes = DOMAINS[name]
    if root is None:
        raise ValueError(f"{name} needs its image files, which are not bundled: pass root=DIR; {layout(name)}")
    check_seed(seed)
    check_bool("multi_input", multi_input)
    if isinstance(size, bool) or not isinstance(size, int) or not 8 <= size <= 512:
        raise ValueError(f"size must be an int in [8, 512], got {size!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise ValueError(f"workers must be an int ≥ 0, got {workers!r}")
    folder = check_root(root)
    lists = folder / "data_txt" / folder_name
    paths: list[str] = []
    blocks: dict[str, list[tuple[str, int, int]]] = {s: [] for s in SPLITS}  # (split rows) domain index, class
    for split in SPLITS:
        for d, domain in enumerate(domains):
            for image, label in read_list(lists / f"{domain}_{split}.txt", folder, n_classes, name):
                blocks[split].append((image, d, label))
    for split in SPLITS:
        paths += [image for image, _, _ in blocks[split]]
    reader: CacheReader | JpegReader = JpegReader(tuple(paths), size)
    if cache:
        where = Path(cache_dir).expanduser() if cache_dir is not None else folder / ".mtl_lab_cache"
        reader = build_cache(reader, where / f"{name}_{size}.u8", workers)
    starts, offset = {}, 0
    for split in SPLITS:
        starts[split] = offset
        offset += len(blocks[split])
    train_rows = torch.arange(starts["train"], starts["train"] + len(blocks["train"]))
    mean, std = fit_pixels(reader, train_rows, cache, seed) if normalize else (0.0, 1.0)
    tasks = [T.classification(t, n_classes, description=f"the object class of a {t} image") for t in domains]
    mean_t, std_t = (torch.tensor([mean]), torch.tensor([std])) if normalize else (None, None)
    def columns(split: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The split's rows in the reader (its index), and each row's domain and class."""
        rows = blocks[split]
        index = torch.arange(starts[split], starts[split] + len(rows))
        return index, torch.tensor([d for _, d, _ in rows]), torch.tensor([c for _, _, c in rows])

    if multi_input:
        per_task = {}
        for split in SPLITS:
            index, domain, label = columns(split)
            per_task[split] = TaskSplits({t: StreamedSplit(ImageRows(reader, index[domain == d], mean, std),
                                                           {t: label[domain == d]}, {}, workers)
                                          for d, t in enumerate(domains)})
        info = {"source": f"{name} list files in {lists}", "size": size, "multi_input": True}
        return MultiInputData(name, tasks, per_task["train"], per_task["val"], per_task["test"], mean_t, std_t, None,
                              info)
    splits = {}
    for split in SPLITS:
        index, domain, label = columns(split)
        y = {t: torch.where(domain == d, label, torch.zeros_like(label)) for d, t in enumerate(domains)}
        mask = {t: domain == d for d, t in enumerate(domains)}
        splits[split] = StreamedSplit(ImageRows(reader, index, mean, std), y, mask, workers)
    info = {"source": f"{name} list files in {lists}", "size": size,
            "rows_per_domain": {s: {t: int(m.sum()) for t, m in splits[s].mask.items()} for s in SPLITS}}
    return MultiTaskData(name, tasks, splits["train"], splits["val"], splits["test"], mean_t, std_t, None, info)


def office31(
    root: str | None = None, size: int = 64, cache: bool = True, cache_dir: str | None = None, workers: int = 2,
    seed: int = 0, normalize: bool = True, multi_input: bool = True,
) -> MultiInputData | MultiTaskData:
    """Office-31 (needs root=DIR, LibMTL lists): amazon, dslr, webcam, each a 31-way task on its own images."""
    return office("office31", root, size, cache, cache_dir, workers, seed, normalize, multi_input)


def office_home(
    root: str | None = None, size: int = 64, cache: bool = True, cache_dir: str | None = None, workers: int = 2,
    seed: int = 0, normalize: bool = True, multi_input: bool = True,
) -> MultiInputData | MultiTaskData:
    """Office-Home (needs root=DIR, LibMTL lists): Art, Clipart, Product, Real_World, each 65-way on its own images."""
    return office("office_home", root, size, cache, cache_dir, workers, seed, normalize, multi_input)
