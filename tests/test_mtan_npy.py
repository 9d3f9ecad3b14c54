"""NYUv2 / Cityscapes loaders on generated fixtures in MTAN's exact .npy layout, and the augmentation."""

import numpy as np
import pytest
import torch

from mtl_lab import data as datasets
from mtl_lab.data.mtan_npy import ScaleCropFlip, scale_crop_flip

H, W = 16, 24


def write_nyuv2(root, n_train: int = 5, n_val: int = 3, seed: int = 0) -> dict:
    """``root/{train,val}/{image,label,depth,normal}/{i}.npy`` with MTAN's shapes and conventions."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("val", n_val)):
        for i in range(n):
            label = rng.integers(-1, 13, size=(H, W)).astype(np.float32)  # MTAN stores labels as floats
            depth = rng.uniform(0.5, 5.0, size=(H, W, 1)).astype(np.float32)
            depth[0, :3] = 0.0
            normal = rng.normal(size=(H, W, 3)).astype(np.float32)
            normal /= np.linalg.norm(normal, axis=-1, keepdims=True)
            normal[1, :2] = 0.0
            item = {"image": rng.uniform(size=(H, W, 3)).astype(np.float32), "label": label, "depth": depth,
                    "normal": normal}
            for folder, a in item.items():
                (root / split / folder).mkdir(parents=True, exist_ok=True)
                np.save(root / split / folder / f"{i}.npy", a)
            arrays[(split, i)] = item
    return arrays


def test_nyuv2_reads_the_layout_exactly(tmp_path):
    arrays = write_nyuv2(tmp_path)
    d = datasets.load("nyuv2", root=str(tmp_path), n_val=1, seed=0)
    assert d.task_names == ["segmentation", "depth", "normal"] and d.input_shape == (3, H, W)
    assert (len(d.train), len(d.val), len(d.test)) == (4, 1, 3)
    item = arrays[("val", 2)]
    torch.testing.assert_close(d.test.x[2], torch.from_numpy(item["image"]).permute(2, 0, 1))
    assert d.test.y["segmentation"].dtype == torch.int64
    torch.testing.assert_close(d.test.y["segmentation"][2], torch.from_numpy(item["label"]).long())
    torch.testing.assert_close(d.test.y["depth"][2, 0], torch.from_numpy(item["depth"][..., 0]))
    torch.testing.assert_close(d.test.y["normal"][2], torch.from_numpy(item["normal"]).permute(2, 0, 1))
    read = {d.train.x[i].permute(1, 2, 0).numpy().tobytes() for i in range(4)}
    read.add(d.val.x[0].permute(1, 2, 0).numpy().tobytes())
    assert read == {arrays[("train", i)]["image"].tobytes() for i in range(5)}  # val drawn from train
    assert d.tasks[0].out_dim == 13 and d.augment is not None
    assert len(datasets.load("nyuv2", root=tmp_path, limit=2).test) == 2


def test_cityscapes_reads_label_7_or_19(tmp_path):
    rng = np.random.default_rng(1)
    for split in ("train", "val"):
        for i in range(2):
            for folder, a in {"image": rng.uniform(size=(H, W, 3)), "label_7": rng.integers(-1, 7, (H, W)),
                              "label_19": rng.integers(-1, 19, (H, W)), "depth": rng.uniform(size=(H, W, 1))}.items():
                (tmp_path / split / folder).mkdir(parents=True, exist_ok=True)
                np.save(tmp_path / split / folder / f"{i}.npy", a.astype(np.float32))
    seven = datasets.load("cityscapes", root=tmp_path)
    nineteen = datasets.load("cityscapes", root=tmp_path, classes=19)
    assert seven.task_names == ["segmentation", "depth"] and seven.tasks[0].out_dim == 7
    assert nineteen.tasks[0].out_dim == 19 and int(nineteen.test.y["segmentation"].max()) <= 18
    with pytest.raises(ValueError, match="classes must be 7 or 19"):
        datasets.load("cityscapes", root=tmp_path, classes=13)


def test_a_malformed_folder_names_the_file_and_the_layout(tmp_path):
    write_nyuv2(tmp_path)
    (tmp_path / "val" / "depth" / "1.npy").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing file .*val/depth/1\.npy; expected layout: \{train,val\}"):
        datasets.load("nyuv2", root=tmp_path)
    write_nyuv2(tmp_path)
    np.save(tmp_path / "train" / "normal" / "0.npy", np.zeros((H, W, 2), np.float32))
    np.save(tmp_path / "train" / "normal" / "1.npy", np.zeros((H, W, 2), np.float32))
    np.save(tmp_path / "train" / "normal" / "2.npy", np.zeros((H, W, 2), np.float32))
    with pytest.raises(ValueError, match=r"normal/3\.npy has shape \(16, 24, 3\), .*normal/0\.npy has \(16, 24, 2\)"):
        datasets.load("nyuv2", root=tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"missing folder .*empty/train/image; expected layout"):
        datasets.load("nyuv2", root=empty)
    with pytest.raises(ValueError, match="root must be the path of a folder"):
        datasets.load("nyuv2")


def test_flip_mirrors_image_and_every_label_and_negates_normal_x():
    image = torch.arange(2 * 3 * 4, dtype=torch.float32).reshape(2, 3, 4)  # a known, asymmetric pattern
    label = torch.tensor([[0, 1, 2, -1], [3, 4, 5, 6], [7, 8, 9, 10]])
    depth = torch.arange(12, dtype=torch.float32).reshape(1, 3, 4) + 1
    normal = torch.stack([torch.full((3, 4), 0.6), torch.zeros(3, 4), torch.full((3, 4), 0.8)])
    normal[0, :, :2] = -0.6
    kinds = {"seg": "segmentation", "depth": "depth", "normal": "normals"}
    x, y = scale_crop_flip(image, {"seg": label, "depth": depth, "normal": normal}, kinds, 1.0, 0, 0, True)
    torch.testing.assert_close(x, image.flip(-1))
    assert torch.equal(y["seg"], label.flip(-1)) and int(y["seg"][0, 0]) == -1
    torch.testing.assert_close(y["depth"], depth.flip(-1))
    assert float(y["normal"][0, 0, 0]) == pytest.approx(-0.6) and float(y["normal"][0, 0, 3]) == pytest.approx(0.6)
    torch.testing.assert_close(y["normal"][2], normal[2])


def test_scale_crop_keeps_image_labels_depth_and_normals_aligned():
    """A piecewise-constant scene: image channel 0 = label, depth = label + 1, normal x = ±0.6 by label parity."""
    g = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 13, (4, 6, 8), generator=g)
    label = blocks.repeat_interleave(4, dim=1).repeat_interleave(4, dim=2)  # [4, 24, 32] in 4×4 blocks
    image = label.float().unsqueeze(1).repeat(1, 3, 1, 1)
    depth = (label.float() + 1).unsqueeze(1)
    sign = 1.0 - 2.0 * (label % 2).float()
    normal = torch.stack([0.6 * sign, torch.zeros_like(sign), torch.full_like(sign, 0.8)], dim=1)
    augment = ScaleCropFlip({"seg": "segmentation", "depth": "depth", "normal": "normals"})
    x, y = augment(image, {"seg": label, "depth": depth, "normal": normal}, torch.Generator().manual_seed(5))
    ratios = set()
    for b in range(4):
        ratio = y["depth"][b, 0] / (y["seg"][b].float() + 1)  # 1/s everywhere for the image's scale s
        assert float(ratio.max() - ratio.min()) < 1e-5
        ratios.add(round(float(ratio.mean()), 4))
        parity = 1.0 - 2.0 * (y["seg"][b] % 2).float()
        flipped = float((y["normal"][b, 0] / (0.6 * parity)).mean())
        assert flipped in (pytest.approx(1.0), pytest.approx(-1.0))
        torch.testing.assert_close(y["normal"][b, 0], flipped * 0.6 * parity)
        # bilinear image vs nearest labels: equal wherever the label's 3×3 neighbourhood is constant
        seg = y["seg"][b]
        inner = torch.ones_like(seg[1:-1, 1:-1], dtype=torch.bool)
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                inner &= seg[1 + dr : seg.shape[0] - 1 + dr, 1 + dc : seg.shape[1] - 1 + dc] == seg[1:-1, 1:-1]
        torch.testing.assert_close(x[b, 0, 1:-1, 1:-1][inner], seg[1:-1, 1:-1][inner].float())
    assert ratios <= {1.0, round(1 / 1.2, 4), round(1 / 1.5, 4)} and len(ratios) > 1


def test_segnet_lite_trains_on_nyuv2_files_with_augmentation(tmp_path):
    from mtl_lab.training import build_trainer

    write_nyuv2(tmp_path, n_train=6, n_val=2)
    d = datasets.load("nyuv2", root=tmp_path)
    trainer = build_trainer(d, "segnet_lite", "pcgrad", {"channels": (4, 8)}, epochs=1, batch_size=3, augment=True,
                            device="cpu", seed=0)
    history = trainer.fit()
    assert history.meta["status"] == "completed" and len(history.steps) == 2
    assert set(history.meta["test_metrics"]) == {"segmentation", "depth", "normal"}
