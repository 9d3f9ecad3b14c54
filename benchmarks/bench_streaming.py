"""Streaming CelebA-format images from disk: images/s read, and training steps/s of the CNN trunk.

A synthetic folder in CelebA's exact layout (178×218 JPEGs with textured content, the two list files) is
written to a temporary folder, then measured side by side (medians of interleaved rounds):

* ``cache build``        — decoding and resizing every JPEG once into the ``uint8`` cache (0 and 2 workers);
* ``read: jpeg, w=K``    — one epoch of shuffled batches decoded from the JPEGs, K worker processes;
* ``read: cache, w=K``   — one epoch of shuffled batches read from the decoded cache;
* ``train: …``           — ``hard`` sharing with the CNN trunk on 40 binary tasks, equal weighting: steps/s
                           with the batches streamed from the cache, from the JPEGs, and held in memory.

The loader is not the bottleneck when the streamed training rate is close to the in-memory one.
Run: ``python benchmarks/bench_streaming.py [--quick] [--images N] [--size S]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab.data import load  # noqa: E402
from mtl_lab.data.base import MultiTaskData, Split  # noqa: E402
from mtl_lab.data.streaming import JpegReader, build_cache  # noqa: E402
from mtl_lab.training import build_trainer  # noqa: E402


def write_folder(root: Path, n: int) -> None:
    """CelebA's layout with ``n`` textured 178×218 JPEGs (smooth noise, so the decoder does real work)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    (root / "img_align_celeba").mkdir(parents=True)
    names = [f"{i + 1:06d}.jpg" for i in range(n)]
    for name in names:
        small = rng.integers(0, 256, (28, 23, 3), dtype=np.uint8)
        Image.fromarray(small).resize((178, 218), Image.BICUBIC).save(root / "img_align_celeba" / name, quality=90)
    attrs = np.where(rng.random((n, 40)) < 0.5, 1, -1)
    lines = [str(n), " ".join(f"A{k}" for k in range(40))]
    lines += [f"{name} " + " ".join(f"{v:2d}" for v in row) for name, row in zip(names, attrs)]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    split = [0 if i < 0.8 * n else (1 if i < 0.9 * n else 2) for i in range(n)]
    (root / "list_eval_partition.txt").write_text("".join(f"{a} {b}\n" for a, b in zip(names, split)))


def epoch_rate(data: MultiTaskData, batch_size: int) -> float:
    """Images per second over one shuffled epoch of the training split."""
    start, count = time.perf_counter(), 0
    for x, _ in data.train.batches(batch_size, shuffle=True, generator=torch.Generator().manual_seed(0)):
        count += x.shape[0]
    return count / (time.perf_counter() - start)


def train_rate(data: MultiTaskData, batch_size: int, steps: int) -> float:
    trainer = build_trainer(data, "hard", "equal", epochs=100, batch_size=batch_size, lr=1e-3,
                            model_options={"trunk": "cnn"}, diagnostics_every=0)
    trainer.fit(max_steps=2)  # warm-up: first batches, allocator
    start = time.perf_counter()
    trainer.fit(max_steps=steps)
    return steps / (time.perf_counter() - start)


def in_memory(data: MultiTaskData) -> MultiTaskData:
    splits = [Split(s.x[torch.arange(len(s))], s.y) for s in (data.train, data.val, data.test)]
    return MultiTaskData(data.name, data.tasks, *splits, data.x_mean, data.x_std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, rounds = (800, 1) if args.quick else (args.images, args.rounds)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {n} images {args.size}×{args.size}, "
          f"batch {args.batch_size}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "celeba"
        write_folder(root, n)
        reader = JpegReader(tuple(str(p) for p in sorted((root / "img_align_celeba").iterdir())), args.size)
        rows: dict[str, list[float]] = {}
        for r in range(rounds):
            for workers in (0, 2):
                start = time.perf_counter()
                build_cache(reader, Path(tmp) / f"cache{r}{workers}" / "c.u8", workers)
                rows.setdefault(f"cache build, w={workers}", []).append(n / (time.perf_counter() - start))
        variants = {
            f"{source}, w={w}": load("celeba", root=str(root), size=args.size, cache=source == "cache", workers=w)
            for source in ("jpeg", "cache") for w in (0, 2)
        }
        for _ in range(rounds):
            for label, data in variants.items():
                rows.setdefault(f"read: {label}", []).append(epoch_rate(data, args.batch_size))
        steps = 20 if args.quick else 60
        trains = {"cache, w=2": variants["cache, w=2"], "jpeg, w=2": variants["jpeg, w=2"],
                  "in memory": in_memory(variants["cache, w=0"])}
        for _ in range(rounds):
            for label, data in trains.items():
                rows.setdefault(f"train: {label}", []).append(train_rate(data, args.batch_size, steps))
    memory = statistics.median(rows["train: in memory"])
    print("| variant | images/s (read) or steps/s (train) | ratio to in-memory training |")
    print("|---|---|---|")
    for label, values in rows.items():
        ratio = f"{statistics.median(values) / memory:.2f}" if label.startswith("train") else ""
        print(f"| {label} | {statistics.median(values):.1f} | {ratio} |")


if __name__ == "__main__":
    main()
