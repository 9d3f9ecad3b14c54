"""Image splits that stay on disk: rows are read and decoded batch by batch, by worker processes.

A :class:`StreamedSplit` is a :class:`~mtl_lab.data.base.Split` whose ``x`` is an :class:`ImageRows`
(a lazy ``[N, C, H, W]`` float array: indexing it reads those rows) instead of a tensor. Targets and
label masks stay in memory (they are small). Everything that works on a split works on it.

Guarantees the trainer relies on, kept by construction:

* **Batch order.** ``batches(batch_size, shuffle=True, generator=g)`` draws the epoch's order exactly as
  the in-memory split does (one ``torch.randperm(N, generator=g)``), so a streamed run takes the same
  batches as the same data held in memory, and the generator is left in the same state.
* **Exact resume.** The trainer resumes an epoch by restoring the generator's state from the epoch's start,
  redrawing the order and skipping the batches already trained (:mod:`mtl_lab.resume`); the redraw is the
  same here. Skipped batches are read and dropped (correct, not free: see ``skip`` below).
* **Data-parallel sharding.** Every rank draws the same order from the same seed and takes its rows of
  each batch (:mod:`mtl_lab.training.parallel`); a streamed batch is the same tensor on every rank.

Readers: :class:`CacheReader` reads rows of a decoded ``uint8`` cache file (``numpy.memmap``; one file
written once, see :func:`build_cache`); :class:`JpegReader` decodes and resizes image files with Pillow.
With ``workers > 0`` whole batches are read ahead by that many worker processes
(``torch.utils.data.DataLoader`` over a list of row-index batches, order preserved).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mtl_lab.data.base import Batch, MaskedBatch, Split, batch_rows


def decode_image(path: str, size: int) -> np.ndarray:
    """One image file as uint8 ``[3, size, size]``: RGB, resized with bilinear filtering (Pillow)."""
    from PIL import Image

    with Image.open(path) as image:
        resized = image.convert("RGB").resize((size, size), resample=Image.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1).copy()


@dataclass(frozen=True)
class JpegReader:
    """Decodes rows from image files: row ``i`` is ``paths[i]``, resized to ``size × size``."""

    paths: tuple[str, ...]
    size: int

    def __len__(self) -> int:
        return len(self.paths)

    def read(self, rows: np.ndarray) -> np.ndarray:
        return np.stack([decode_image(self.paths[int(i)], self.size) for i in rows])


@dataclass(frozen=True)
class CacheReader:
    """Reads rows of a decoded cache: a raw ``uint8`` file of shape ``[n, 3, size, size]`` (C order)."""

    path: str
    n: int
    size: int

    def __len__(self) -> int:
        return self.n

    def read(self, rows: np.ndarray) -> np.ndarray:
        table = np.memmap(self.path, dtype=np.uint8, mode="r", shape=(self.n, 3, self.size, self.size))
        order = np.argsort(rows, kind="stable")  # read in file order, give back in the asked order
        out = np.empty((len(rows), 3, self.size, self.size), dtype=np.uint8)
        out[order] = table[rows[order]]
        return out


Reader = JpegReader | CacheReader


def build_cache(reader: JpegReader, path: Path, workers: int = 0, chunk: int = 512) -> CacheReader:
    """Decode every row of ``reader`` once into the cache file ``path`` (written to ``path.partial`` and
    renamed when complete, so an interrupted build is never read), with a JSON sidecar of its shape.

    An existing cache whose sidecar matches (rows, size, the image paths' count and first/last names) is
    reused as it is."""
    meta = {"n": len(reader), "size": reader.size, "first": Path(reader.paths[0]).name,
            "last": Path(reader.paths[-1]).name, "layout": "uint8 [n, 3, size, size], C order"}
    sidecar = path.with_suffix(".json")
    if path.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == meta:
        return CacheReader(str(path), len(reader), reader.size)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    table = np.memmap(partial, dtype=np.uint8, mode="w+", shape=(len(reader), 3, reader.size, reader.size))
    starts = list(range(0, len(reader), chunk))
    pieces = [np.arange(s, min(s + chunk, len(reader))) for s in starts]
    blocks = DataLoader(RawRows(reader), sampler=pieces, batch_size=None, num_workers=workers) if workers else (
        reader.read(rows) for rows in pieces)
    for rows, block in zip(pieces, blocks):
        table[rows[0] : rows[-1] + 1] = np.asarray(block)
    table.flush()
    del table
    os.replace(partial, path)
    sidecar.write_text(json.dumps(meta))
    return CacheReader(str(path), len(reader), reader.size)


@dataclass(frozen=True)
class ImageRows:
    """A lazy float image array ``[N, 3, size, size]``: ``rows[i]`` reads ``reader`` rows ``index[i]`` and
    returns ``(pixels / 255 - mean) / std`` on ``device``."""

    reader: Reader
    index: torch.Tensor
    mean: float = 0.0
    std: float = 1.0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), 3, self.reader.size, self.reader.size))

    @property
    def dtype(self) -> torch.dtype:
        return torch.float32

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, rows: slice | torch.Tensor) -> torch.Tensor:
        ids = self.index[rows]
        pixels = torch.from_numpy(self.reader.read(ids.cpu().numpy())).float()
        return pixels.sub_(255.0 * self.mean).div_(255.0 * self.std).to(self.device)

    def subset(self, rows: torch.Tensor) -> ImageRows:
        return ImageRows(self.reader, self.index[rows.cpu()], self.mean, self.std, self.device)

    def to(self, device: torch.device | str) -> ImageRows:
        """The same rows, read onto ``device`` (as ``Tensor.to``: :meth:`Split.to` moves a streamed split with it)."""
        return ImageRows(self.reader, self.index, self.mean, self.std, torch.device(device))


class RawRows(Dataset):
    """A map-style dataset whose items are blocks of decoded ``uint8`` rows (the cache build's workers)."""

    def __init__(self, reader: Reader):
        self.reader = reader

    def __len__(self) -> int:
        return len(self.reader)

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return self.reader.read(rows)


class BatchRows(Dataset):
    """A map-style dataset whose items are whole batches: item ``rows`` is ``x[rows]`` (read in a worker)."""

    def __init__(self, x: ImageRows):
        self.x = ImageRows(x.reader, x.index, x.mean, x.std)  # workers read on the CPU

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, rows: torch.Tensor) -> torch.Tensor:
        return self.x[rows]


@dataclass(frozen=True)
class StreamedSplit(Split):
    """A split whose images stay on disk (``x`` an :class:`ImageRows`), read ahead by ``workers`` processes."""

    workers: int = 0

    def take(self, index: torch.Tensor) -> StreamedSplit:
        return StreamedSplit(
            self.x.subset(index),
            {name: t[index] for name, t in self.y.items()},
            {name: m[index] for name, m in self.mask.items()},
            self.workers,
        )

    def batches(
        self,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        drop_last: bool = False,
        with_mask: bool = False,
        skip: int = 0,
    ) -> Iterator[Batch] | Iterator[MaskedBatch]:
        """As :meth:`Split.batches` (same order from the same generator), images read by worker processes.

        ``skip`` batches of the order are passed over without reading them (a resume hook: the trainer's
        resume today skips by reading; the order and the generator's state are the same either way)."""
        every = torch.arange(len(self))
        rows = [
            every[r] if isinstance(r, slice) else r.cpu()
            for r in batch_rows(len(self), batch_size, shuffle, generator, drop_last)[skip:]
        ]
        if self.workers > 0 and rows:
            loader = DataLoader(BatchRows(self.x), sampler=rows, batch_size=None, num_workers=self.workers)
            images = (x.to(self.x.device) for x in loader)
        else:
            images = (self.x[r] for r in rows)
        for index, x in zip(rows, images):
            index = index.to(self.y[next(iter(self.y))].device)
            y = {name: t[index] for name, t in self.y.items()}
            if with_mask:
                yield x, y, {name: m[index] for name, m in self.mask.items()}
            else:
                yield x, y
