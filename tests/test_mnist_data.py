"""Real MNIST and MultiMNIST: the bundled digits, idx files in a user's folder, the Sener & Koltun overlay."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mtl_lab import data
from mtl_lab.data.mnist import BUNDLED, FILES, _bundled, image_pools, overlay, read_idx
from mtl_lab.models import build_model
from mtl_lab.models.trunks import LeNetTrunk


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    raw = idx_bytes(array)
    if gz:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(raw))
    else:
        path.write_bytes(raw)


def make_root(root: Path, n_train: int, n_test: int, gz: bool, offset: int = 0) -> Path:
    """An MNIST-format folder: image ``i`` is one flat intensity ``offset + i + 1`` (so each is unique and
    readable from any pixel it covers), label ``i % 10``."""
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n, start in (("train", n_train, 0), ("t10k", n_test, n_train)):
        values = offset + start + np.arange(n) + 1
        write_idx(root / f"{prefix}-images-idx3-ubyte", np.repeat(values, 28 * 28).reshape(n, 28, 28), gz)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, gz)
    return root


def test_read_idx_gz_and_raw_agree(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    write_idx(tmp_path / "a", array, gz=False)
    write_idx(tmp_path / "b", array, gz=True)
    for name in ("a", "b.gz"):
        out = read_idx(tmp_path / name)
        assert out.dtype == torch.uint8 and out.shape == (2, 3, 4)
        assert out.numpy().tolist() == array.tolist()


@pytest.mark.parametrize(
    "raw, message",
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 3) + b"abc", "two zero bytes"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 3) + b"abc", "type byte is 0x0d"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 4) + b"abc", "the file has 11 bytes"),
        (b"\x00\x00\x08\x03" + b"\x00\x00", "too short"),
    ],
)
def test_read_idx_names_the_malformed_file(tmp_path, raw, message):
    path = tmp_path / "bad-idx"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=message) as info:
        read_idx(path)
    assert "bad-idx" in str(info.value)


def test_bundled_digits_are_real_mnist():
    images, labels = _bundled()
    assert images.shape == (5000, 28, 28) and images.dtype == torch.uint8
    assert torch.bincount(labels).tolist() == [500] * 10
    # MNIST's mean intensity is 0.1307 (training set); a random 5 000 of it stays within 0.005 of that
    assert abs(images.float().mean().item() / 255 - 0.1307) < 0.005
    assert (FILES / BUNDLED[0]).stat().st_size < 2_000_000


def test_overlay_matches_pil_reference():
    g = np.random.default_rng(0)
    left, right = g.integers(0, 256, (3, 28, 28)), g.integers(0, 256, (3, 28, 28))
    ours = overlay(torch.tensor(left, dtype=torch.uint8), torch.tensor(right, dtype=torch.uint8))
    for i in range(3):  # the construction of Sener & Koltun, written with numpy and PIL
        canvas = np.zeros((36, 36), dtype=np.uint8)
        canvas[0:28, 0:28] = left[i]
        canvas[6:34, 6:34] = np.maximum(canvas[6:34, 6:34], right[i])
        ref = np.array(Image.fromarray(canvas).resize((28, 28), resample=Image.NEAREST))
        assert ours[i].numpy().tolist() == ref.tolist()


def test_multimnist_bundled_shapes_tasks_and_disjoint_pools():
    d = data.load("multimnist", seed=0)
    assert d.task_names == ["left", "right"]
    assert d.input_shape == (1, 28, 28)
    assert (len(d.train), len(d.val), len(d.test)) == (3000, 1000, 1000)
    for split in (d.train, d.val, d.test):
        for task in ("left", "right"):
            y = split.y[task]
            assert y.dtype == torch.int64 and int(y.min()) >= 0 and int(y.max()) <= 9
    assert abs(d.train.x.mean().item()) < 1e-4 and abs(d.train.x.std().item() - 1) < 1e-3
    pools, _ = image_pools(None, 0)
    digests = {s: {hashlib.sha1(im.numpy().tobytes()).hexdigest() for im in p[0]} for s, p in pools.items()}
    assert not digests["train"] & digests["val"] and not digests["train"] & digests["test"]
    assert not digests["val"] & digests["test"]
    again = data.load("multimnist", seed=0)
    assert torch.equal(again.train.x, d.train.x) and torch.equal(again.test.y["right"], d.test.y["right"])
    assert not torch.equal(data.load("multimnist", seed=1).train.x, d.train.x)


@pytest.mark.parametrize("gz", [True, False])
def test_multimnist_from_root_label_semantics(tmp_path, gz):
    root = make_root(tmp_path / "mnist", n_train=60, n_test=20, gz=gz)
    d = data.load("multimnist", root=str(root), normalize=False)
    assert (len(d.train), len(d.val), len(d.test)) == (50, 10, 20)
    for split in (d.train, d.val, d.test):
        x = split.x[:, 0] * 255
        left_id, right_id = x[:, 0, 0].round().long() - 1, x[:, 25, 25].round().long() - 1
        assert torch.equal(split.y["left"], left_id % 10)  # pixel (0, 0) shows the left image only
        assert torch.equal(split.y["right"], right_id % 10)  # (25, 25) → canvas (32, 32): the right one only
        assert bool((left_id != right_id).all())  # two different images
        assert torch.equal(x[:, 14, 14].round().long() - 1, torch.maximum(left_id, right_id))  # overlap: max
        assert sorted(left_id.tolist()) == sorted(set(left_id.tolist()))  # every pool image is left once
    test_ids = (d.test.x[:, 0, 0, 0] * 255).round().long() - 1
    assert bool((test_ids >= 60).all())  # the test split reads the t10k files only


def test_mnist_tasks_and_label_semantics(tmp_path):
    d = data.load("mnist", root=str(make_root(tmp_path / "m", 60, 20, gz=True)), normalize=False)
    assert d.task_names == ["digit", "parity", "ge5"]
    for split in (d.train, d.val, d.test):
        ids = (split.x[:, 0, 0, 0] * 255).round().long() - 1
        assert torch.equal(split.y["digit"], ids % 10)
        assert torch.equal(split.y["parity"], (ids % 2).float())
        assert torch.equal(split.y["ge5"], (ids % 10 >= 5).float())
    bundled = data.load("mnist")
    assert (len(bundled.train), len(bundled.val), len(bundled.test)) == (3000, 1000, 1000)


def test_multifashion_mnist_takes_right_items_from_fashion(tmp_path):
    mnist_root = make_root(tmp_path / "mnist", 60, 20, gz=True)
    fashion_root = make_root(tmp_path / "fashion", 60, 20, gz=False, offset=100)
    d = data.load("multifashion_mnist", root=str(mnist_root), fashion_root=str(fashion_root), normalize=False)
    left = (d.train.x[:, 0, 0, 0] * 255).round().long()
    right = (d.train.x[:, 0, 25, 25] * 255).round().long()
    assert bool((left <= 60).all()) and bool((right > 100).all()) and bool((right <= 160).all())
    assert torch.equal(d.train.y["right"], (right - 101) % 10)
    fashion = data.load("multifashion", root=str(fashion_root))
    assert fashion.task_names == ["left", "right"]


def test_missing_and_malformed_files_are_named(tmp_path):
    root = make_root(tmp_path / "m", 60, 20, gz=True)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing t10k-labels-idx1-ubyte \(or t10k-labels-idx1-ubyte.gz\)"):
        data.load("mnist", root=str(root))
    write_idx(root / "t10k-labels-idx1-ubyte", np.arange(7) % 10, gz=False)
    with pytest.raises(ValueError, match="expected 20 labels"):
        data.load("mnist", root=str(root))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        data.load("multimnist", root=str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="Fashion-MNIST, which is not bundled"):
        data.load("multifashion")
    with pytest.raises(ValueError, match="fashion_root=DIR"):
        data.load("multifashion_mnist")


def test_lenet_trunk_fits_28x28_and_trains_in_a_hard_sharing_model():
    trunk = LeNetTrunk((1, 28, 28))
    assert trunk.features[-2].in_features == 320 and trunk.out_dim == 50
    d = data.load("multimnist").subsample_train(0.05)
    model = build_model("hard", d, trunk="lenet")
    out = model(d.train.x[:8])
    assert set(out) == {"left", "right"} and out["left"].shape == (8, 10)
    with pytest.raises(ValueError, match="too small"):
        LeNetTrunk((1, 8, 8))


def test_multimnist_n_train_keeps_the_first_examples():
    whole, part = data.load("multimnist"), data.load("multimnist", n_train=100, normalize=False)
    assert len(part.train) == 100 and len(part.val) == 1000
    assert torch.equal(part.train.y["left"], whole.train.y["left"][:100])
    with pytest.raises(ValueError, match="n_train=4000 is more than the 3000"):
        data.load("multimnist", n_train=4000)
    with pytest.raises(ValueError, match="n_train must be None"):
        data.load("multimnist", n_train=0)


def test_cli_run_reads_root_and_names_a_missing_file(tmp_path, capsys):
    from mtl_lab.cli import main

    root = make_root(tmp_path / "mnist", 60, 20, gz=True)
    out = tmp_path / "report"
    args = ["run", "--data", "multimnist", "--root", str(root), "--trunk", "lenet", "--epochs", "1",
            "--batch-size", "16", "--no-baselines", "--quiet", "--out", str(out)]
    assert main(args) in (0, None)
    assert "train 50, val 10, test 20" in (out / "report.md").read_text()
    (root / "train-images-idx3-ubyte.gz").unlink()
    assert main([*args[:-1], str(tmp_path / "again")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing train-images-idx3-ubyte" in err
    twice = [*args[:-1], str(tmp_path / "twice"), "--data-option", f"root={root}"]
    assert main(twice) == 2 and "--root DIR or --data-option root=DIR, not both" in capsys.readouterr().err
