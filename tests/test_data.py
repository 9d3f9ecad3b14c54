"""Tests of the embedded datasets: shapes, seeds, disjoint splits, normalisation and target construction."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_lab import tasks as T
from mtl_lab.data import DATASETS, MultiTaskData, Split, available, load, make_data, option_names, split_indices
from mtl_lab.data.digits import DigitShift, digits, ink_boxes, load_digit_images, shift_images, stratified_split
from mtl_lab.data.linnerud import linnerud
from mtl_lab.data.localization import AUGMENT_MAX_SHIFT, localization, place_digits
from mtl_lab.data.mmoe_synthetic import mmoe_synthetic, pearson, response, task_parameters
from mtl_lab.data.multidigits import multidigits, place_pairs

SPLITS = ("train", "val", "test")
# small but representative options, so the whole file stays fast
SMALL = {
    "digits": {},
    "multidigits": {"n_train": 300, "n_val": 100, "n_test": 100},
    "mmoe_synthetic": {"correlation": 0.5, "n": 2000},
    "linnerud": {},
    "localization": {"n_train": 300, "n_val": 100, "n_test": 100},
    "related": {"labels_per_task": 20, "n_val": 50, "n_test": 100},
    "scenes": {"n_train": 12, "n_val": 4, "n_test": 4, "size": 16},
}
INPUT_SHAPES = {
    "digits": (1, 8, 8),
    "multidigits": (1, 12, 12),
    "mmoe_synthetic": (100,),
    "linnerud": (3,),
    "localization": (1, 16, 16),
    "related": (20,),
    "scenes": (3, 16, 16),
}


def small(name: str, **options) -> MultiTaskData:
    return load(name, **{**SMALL[name], **options})


def row_set(x: torch.Tensor) -> set[bytes]:
    return {row.numpy().tobytes() for row in x.reshape(x.shape[0], -1)}


def raw_inputs(data: MultiTaskData, split: str) -> torch.Tensor:
    x = getattr(data, split).x
    return x * data.x_std + data.x_mean if data.x_mean is not None else x


# ---------------------------------------------------------------- registry


def test_registry_names_and_descriptions():
    assert list(DATASETS)[:6] == ["digits", "multidigits", "mmoe_synthetic", "linnerud", "localization", "related"]
    assert "scenes" in DATASETS and DATASETS["nyuv2"] is not None
    listed = available()
    assert [name for name, _ in listed] == list(DATASETS)
    assert all(isinstance(text, str) and len(text) > 10 for _, text in listed)


def test_load_unknown_dataset_lists_the_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist3d'.*digits.*localization"):
        load("mnist3d")


def test_load_unknown_option_lists_the_options():
    with pytest.raises(ValueError, match=r"no option\(s\) \['colour'\].*'tasks', 'seed'"):
        load("digits", colour="red")
    assert option_names("linnerud") == ["seed", "fractions", "normalize"]


def test_load_passes_options_and_fills_the_mmoe_default():
    assert load("mmoe_synthetic", n=500).info["correlation"] == 0.5
    assert load("mmoe_synthetic", n=500, correlation=0.9).info["correlation"] == 0.9
    assert load("digits", tasks=["ink"]).task_names == ["ink"]


# ---------------------------------------------------------------- every dataset


@pytest.mark.parametrize("name", list(SMALL))  # the real data sets: tests/test_mnist_data.py, test_real_data.py
def test_shapes_and_dtypes(name):
    data = small(name)
    assert data.input_shape == INPUT_SHAPES[name]
    for split in SPLITS:
        part = getattr(data, split)
        assert part.x.dtype == torch.float32
        assert len(part) > 0
        for task in data.tasks:
            y = part.y[task.name]
            assert y.shape[0] == len(part)
            if task.kind == "multiclass":
                assert y.dtype == torch.int64 and y.dim() == 1
            elif task.kind == "binary":
                assert y.dtype == torch.float32 and y.dim() == 1
            elif task.is_pixel:
                task.check_target(y)
            else:
                assert y.dtype == torch.float32 and y.shape[1] == (4 if task.kind == "box" else task.out_dim)
    x, y = next(data.train.batches(7))
    assert x.shape == (7, *INPUT_SHAPES[name]) and set(y) == set(data.task_names)


@pytest.mark.parametrize("name", list(SMALL))  # the real data sets: tests/test_mnist_data.py, test_real_data.py
def test_same_seed_same_tensors_other_seed_other_tensors(name):
    a, b, c = small(name, seed=3), small(name, seed=3), small(name, seed=4)
    for split in SPLITS:
        assert torch.equal(getattr(a, split).x, getattr(b, split).x)
        for task in a.task_names:
            assert torch.equal(getattr(a, split).y[task], getattr(b, split).y[task])
    assert not torch.equal(a.train.x, c.train.x)


@pytest.mark.parametrize("name", ["digits", "multidigits", "localization", "linnerud", "mmoe_synthetic"])
def test_normalisation_is_fitted_on_train_only(name):
    options = {"normalize": True} if name == "mmoe_synthetic" else {}
    data, raw = small(name, **options), small(name, **{**options, "normalize": False})
    assert raw.x_mean is None and raw.x_std is None
    image = len(INPUT_SHAPES[name]) == 3
    dims = None if image else 0
    train = data.train.x
    mean = train.mean() if image else train.mean(dim=0)
    std = train.std() if image else train.std(dim=0)
    assert torch.allclose(mean, torch.zeros_like(mean), atol=1e-5)
    assert torch.allclose(std, torch.ones_like(std), atol=1e-4)
    # the statistics are those of the raw training rows, not of all rows
    fitted = raw.train.x.mean() if dims is None else raw.train.x.mean(dim=0)
    assert torch.allclose(data.x_mean.reshape(-1), fitted.reshape(-1), atol=1e-6)
    everything = torch.cat([raw.train.x, raw.val.x, raw.test.x])
    overall = everything.mean() if dims is None else everything.mean(dim=0)
    assert not torch.allclose(data.x_mean.reshape(-1), overall.reshape(-1), atol=1e-7)
    # and they were applied to val and test as they are
    assert torch.allclose(data.val.x, (raw.val.x - data.x_mean) / data.x_std, atol=1e-5)
    assert float(data.val.x.mean()) != 0.0


# ---------------------------------------------------------------- digits


def test_digits_file_and_split_sizes():
    pixels, labels = load_digit_images()
    assert pixels.shape == (1797, 8, 8) and pixels.dtype == torch.uint8 and int(pixels.max()) == 16
    assert torch.equal(torch.bincount(labels)[:3], torch.tensor([178, 182, 177]))
    data = digits()
    assert (len(data.train), len(data.val), len(data.test)) == (1078, 359, 360)
    for split in SPLITS:  # stratified: every split holds every digit in about the right share
        share = torch.bincount(getattr(data, split).y["digit"], minlength=10) / len(getattr(data, split))
        assert torch.all((share - 0.1).abs() < 0.01)


def test_digits_splits_are_disjoint():
    data = digits(seed=5)
    rows = [row_set(getattr(data, split).x) for split in SPLITS]
    assert sum(len(r) for r in rows) == 1797  # the source holds no duplicate image
    assert not rows[0] & rows[1] and not rows[0] & rows[2] and not rows[1] & rows[2]


def test_digits_targets_follow_the_construction():
    data = digits(normalize=False)
    for split in SPLITS:
        part = getattr(data, split)
        digit = part.y["digit"]
        assert torch.equal(part.y["parity"], (digit % 2).float())
        assert torch.equal(part.y["ge5"], (digit >= 5).float())
        assert torch.equal(part.y["recon"], part.x.reshape(-1, 64))
        assert float(part.y["recon"].min()) == 0.0 and float(part.y["recon"].max()) == 1.0
        ink = (part.x.mean(dim=(1, 2, 3)) - data.info["ink_mean"]) / data.info["ink_std"]
        assert torch.allclose(part.y["ink"].flatten(), ink, atol=1e-5)
    assert abs(float(data.train.y["ink"].mean())) < 1e-5 and abs(float(data.train.y["ink"].std()) - 1) < 1e-4
    assert data.task("parity").kind == "binary" and data.task("recon").out_dim == 64


def test_digits_task_subset_and_its_errors():
    data = digits(tasks=["ge5", "digit"])
    assert data.task_names == ["ge5", "digit"] and set(data.train.y) == {"ge5", "digit"}
    assert digits(tasks="ink").task_names == ["ink"]
    unknown = r"unknown task\(s\) \['odd'\] for dataset 'digits'; choose from \['digit', 'parity'"
    with pytest.raises(ValueError, match=unknown):
        digits(tasks=["digit", "odd"])
    with pytest.raises(ValueError, match="at least one"):
        digits(tasks=[])
    with pytest.raises(ValueError, match="repeat"):
        digits(tasks=["digit", "digit"])
    with pytest.raises(ValueError, match="sum to 1"):
        digits(fractions=(0.5, 0.2, 0.2))


def test_shift_images_moves_pixels_and_fills_or_wraps():
    x = torch.zeros(2, 1, 4, 4)
    x[:, 0, 0, 3] = 1.0  # top-right pixel
    out = shift_images(x, torch.tensor([1, 0]), torch.tensor([-1, 1]), fill=-5.0)
    assert out[0, 0, 1, 2] == 1.0 and out[0, 0, 0].eq(-5.0).all()  # down 1, left 1; top row uncovered
    assert out[1, 0, :, 0].eq(-5.0).all() and out[1].max() == 0.0  # moved off the right border
    wrapped = shift_images(x, torch.tensor([0, 0]), torch.tensor([1, 1]), fill=None)
    assert wrapped[0, 0, 0, 0] == 1.0


def test_ink_boxes_are_inclusive_pixel_bounds():
    mask = torch.zeros(1, 5, 6, dtype=torch.bool)
    mask[0, 1, 2] = mask[0, 3, 4] = True
    assert ink_boxes(mask).tolist() == [[2, 1, 4, 3]]
    with pytest.raises(ValueError, match="at least one ink pixel"):
        ink_boxes(torch.zeros(1, 3, 3, dtype=torch.bool))


def test_digits_augmentation_shifts_input_and_recon_together():
    data = digits(augment=True)
    assert isinstance(data.augment, DigitShift) and digits().augment is None
    x, y = data.train.x[:64], {k: v[:64] for k, v in data.train.y.items()}
    x_new, y_new = data.augment(x, y, torch.Generator().manual_seed(0))
    assert x_new.shape == x.shape and {k: v.shape for k, v in y_new.items()} == {k: v.shape for k, v in y.items()}
    assert not torch.equal(x_new, x)
    for task in ("digit", "parity", "ge5"):
        assert torch.equal(y_new[task], y[task])
    raw_new = x_new * data.x_std + data.x_mean
    assert torch.allclose(y_new["recon"], raw_new.reshape(64, 64), atol=1e-5)
    ink = (raw_new.mean(dim=(1, 2, 3)) - data.info["ink_mean"]) / data.info["ink_std"]
    assert torch.allclose(y_new["ink"].flatten(), ink, atol=1e-4)
    # every image is its original moved by some (dy, dx) in {-1, 0, 1}², blank-filled
    recon = y["recon"].reshape(64, 1, 8, 8)
    found = torch.zeros(64, dtype=torch.bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            moved = shift_images(recon, torch.full((64,), dy), torch.full((64,), dx), fill=0.0)
            found |= (moved.reshape(64, 64) - y_new["recon"]).abs().amax(dim=1) < 1e-6
    assert bool(found.all())
    again, _ = data.augment(x, y, torch.Generator().manual_seed(0))
    assert torch.equal(again, x_new)
    only_digit = data.select(["digit"])  # the augmentation also works on a task subset
    x_sub, y_sub = only_digit.augment(x, {"digit": y["digit"]}, torch.Generator().manual_seed(0))
    assert torch.equal(x_sub, x_new) and set(y_sub) == {"digit"}


def test_stratified_split_checks_fractions():
    labels = torch.arange(30) % 3
    train, val, test = stratified_split(labels, (0.6, 0.2, 0.2), torch.Generator().manual_seed(0))
    assert (len(train), len(val), len(test)) == (18, 6, 6)
    assert torch.equal(torch.cat([train, val, test]).sort().values, torch.arange(30))
    with pytest.raises(ValueError, match="3 entries|got 2 entries"):
        stratified_split(labels, (0.5, 0.5), torch.Generator())


# ---------------------------------------------------------------- multidigits


def test_multidigits_pools_are_disjoint_and_labels_match_the_pasted_digits():
    data = multidigits(n_train=500, n_val=200, n_test=200, seed=2, normalize=False)
    placements = place_pairs(500, 200, 200, 12, 1, torch.Generator().manual_seed(2))
    pixels, labels = load_digit_images()
    images = pixels.float() / 16
    used = {split: set(placements[split].source.flatten().tolist()) for split in SPLITS}
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]
    assert len(used["train"]) > 500  # the train pool (60 % of 1797 images) is really used
    for split in SPLITS:
        part, place = getattr(data, split), placements[split]
        assert torch.equal(part.y["left"], labels[place.source[:, 0]])
        assert torch.equal(part.y["right"], labels[place.source[:, 1]])
        assert bool((place.source[:, 0] != place.source[:, 1]).all())
        assert place.top[:, 0].max() <= 1 and place.left[:, 0].max() <= 1  # top-left digit
        assert place.top[:, 1].min() >= 3 and place.left[:, 1].min() >= 3  # bottom-right digit
        for n in range(0, len(part), 37):
            canvas = torch.zeros(2, 12, 12)
            for k in range(2):
                t, l = int(place.top[n, k]), int(place.left[n, k])
                canvas[k, t : t + 8, l : l + 8] = images[place.source[n, k]]
            assert torch.equal(part.x[n, 0], canvas.amax(dim=0))


def test_multidigits_checks_its_options():
    with pytest.raises(ValueError, match=r"max_offset must be an int in \[0, canvas - 8\] = \[0, 4\], got 5"):
        multidigits(max_offset=5)
    with pytest.raises(ValueError, match="canvas must be an int ≥ 8"):
        multidigits(canvas=6)
    with pytest.raises(ValueError, match="n_train must be an int ≥ 1, got 0"):
        multidigits(n_train=0)
    wide = multidigits(n_train=50, n_val=10, n_test=10, canvas=16, max_offset=3)
    assert wide.input_shape == (1, 16, 16)


# ---------------------------------------------------------------- localization


def test_localization_boxes_are_tight_around_the_ink():
    data = localization(n_train=400, n_val=100, n_test=100, normalize=False)
    for split in SPLITS:
        part = getattr(data, split)
        box = part.y["box"] * 16
        assert torch.allclose(box, box.round(), atol=1e-5) and bool(((box >= 0) & (box <= 16)).all())
        ink = part.x[:, 0] > 0
        cols = torch.arange(16).reshape(1, 1, 16).expand_as(ink)
        rows = torch.arange(16).reshape(1, 16, 1).expand_as(ink)
        x1, y1, x2, y2 = (box.round().long()[:, k].reshape(-1, 1, 1) for k in range(4))
        inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
        assert not bool((ink & ~inside).any())  # the box contains every ink pixel
        for edge in (cols == x1, cols == x2 - 1, rows == y1, rows == y2 - 1):  # and each edge touches ink
            assert bool((ink & edge).flatten(1).any(dim=1).all())


def test_localization_pools_are_disjoint_and_labels_match():
    data = localization(n_train=400, n_val=100, n_test=100, seed=1, normalize=False)
    placements = place_digits(400, 100, 100, 16, torch.Generator().manual_seed(1))
    pixels, labels = load_digit_images()
    used = {split: set(placements[split].source.tolist()) for split in SPLITS}
    assert not used["train"] & used["val"] and not used["train"] & used["test"] and not used["val"] & used["test"]
    for split in SPLITS:
        part, place = getattr(data, split), placements[split]
        assert torch.equal(part.y["digit"], labels[place.source])
        n = len(part) // 2
        t, l = int(place.top[n]), int(place.left[n])
        assert torch.equal(part.x[n, 0, t : t + 8, l : l + 8], pixels[place.source[n]].float() / 16)
        assert float(part.x[n, 0].sum()) == pytest.approx(float(pixels[place.source[n]].sum()) / 16)


def test_localization_options_noise_and_box_loss():
    noisy = localization(n_train=100, n_val=20, n_test=20, noise=0.05, normalize=False, box_loss="l1")
    assert noisy.task("box").loss_name == "l1" and noisy.task("box").metric_name == "iou"
    background = noisy.train.x[(noisy.train.x > 0) & (noisy.train.x < 1 / 16)]
    assert background.numel() > 100 * 150 and float(background.max()) < 0.05
    with pytest.raises(ValueError, match=r"noise must be in \[0, 0.0625\)"):
        localization(noise=0.1)
    with pytest.raises(ValueError, match="loss 'smooth' is not one of"):
        localization(n_train=10, n_val=2, n_test=2, box_loss="smooth")


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_localization_augmentation_moves_the_box_with_the_digit(noise):
    data = localization(n_train=300, n_val=20, n_test=20, augment=True, noise=noise)
    x, y = data.train.x, data.train.y
    x_new, y_new = data.augment(x, y, torch.Generator().manual_seed(0))
    assert x_new.shape == x.shape and y_new["box"].shape == y["box"].shape
    assert torch.equal(y_new["digit"], y["digit"])
    moved = (y_new["box"] - y["box"]) * 16
    assert float(moved.abs().max()) == pytest.approx(AUGMENT_MAX_SHIFT, abs=1e-4)  # some shifts are that large
    assert torch.allclose(moved[:, 0], moved[:, 2], atol=1e-4) and torch.allclose(moved[:, 1], moved[:, 3], atol=1e-4)
    assert bool(((y_new["box"] >= -1e-6) & (y_new["box"] <= 1 + 1e-6)).all())  # the digit stays inside
    threshold = (noise + 1 / 16) / 2  # between the brightest background and the faintest ink
    ink_before = (x[:, 0] * data.x_std + data.x_mean) > threshold
    ink_after = (x_new[:, 0] * data.x_std + data.x_mean) > threshold
    box = ink_boxes(ink_after).float()
    box[:, 2:] += 1
    assert torch.allclose(box / 16, y_new["box"], atol=1e-5)  # the moved box is the new image's tight box
    assert torch.equal(ink_after.flatten(1).sum(dim=1), ink_before.flatten(1).sum(dim=1))  # no ink lost


# ---------------------------------------------------------------- mmoe_synthetic


@pytest.mark.parametrize("rho", [-1.0, -0.3, 0.0, 0.5, 0.9, 1.0])
def test_mmoe_weight_cosine_is_rho(rho):
    p = task_parameters(rho, d=100, c=2.0, seed=7)
    w1, w2 = p["w1"], p["w2"]
    assert float(w1 @ w2 / (w1.norm() * w2.norm())) == pytest.approx(rho, abs=1e-9)
    assert float(w1.norm()) == pytest.approx(2.0) and float(w2.norm()) == pytest.approx(2.0)
    assert mmoe_synthetic(rho, n=200, seed=7, c=2.0).info["weight_cosine"] == pytest.approx(rho, abs=1e-9)


def test_mmoe_labels_follow_the_generating_formula():
    data = mmoe_synthetic(0.3, n=600, noise=0.0, seed=4)
    p = task_parameters(0.3, seed=4)
    for split in SPLITS:
        part = getattr(data, split)
        x = part.x.double()
        for task, w in (("y1", p["w1"]), ("y2", p["w2"])):
            expected = response(x @ w, p["alpha"], p["beta"]).float().reshape(-1, 1)
            assert torch.allclose(part.y[task], expected, atol=1e-4)
    noisy = mmoe_synthetic(0.3, n=600, noise=0.1, seed=4)
    residual = noisy.train.y["y1"] - data.train.y["y1"]
    assert float(residual.std()) == pytest.approx(0.1, rel=0.15)


def test_mmoe_label_correlation_grows_with_rho_and_is_not_rho():
    measured = [mmoe_synthetic(rho, n=4000, seed=0).info["label_correlation"] for rho in (0.0, 0.5, 0.9, 1.0)]
    assert measured == sorted(measured) and measured[-1] > 0.95 and abs(measured[0]) < 0.1
    assert abs(measured[1] - 0.5) > 0.05  # the labels' correlation is a different number from ρ
    data = mmoe_synthetic(0.5, n=4000, seed=0)
    y = torch.cat([data.train.y["y1"], data.val.y["y1"], data.test.y["y1"]]).flatten()
    y2 = torch.cat([data.train.y["y2"], data.val.y["y2"], data.test.y["y2"]]).flatten()
    assert pearson(y, y2) == pytest.approx(data.info["label_correlation"], abs=1e-4)


def test_mmoe_same_seed_shares_inputs_across_rho_and_checks_arguments():
    a, b = mmoe_synthetic(0.1, n=300), mmoe_synthetic(0.8, n=300)
    assert torch.equal(a.train.x, b.train.x) and not torch.equal(a.train.y["y2"], b.train.y["y2"])
    assert torch.equal(a.train.y["y1"], b.train.y["y1"])  # w1 = c·u1 does not depend on ρ
    assert a.x_mean is None and a.input_shape == (100,)
    with pytest.raises(ValueError, match=r"correlation must be in \[-1, 1\], got 1.5"):
        mmoe_synthetic(1.5)
    with pytest.raises(ValueError, match="d must be an int ≥ 2"):
        mmoe_synthetic(0.5, d=1)
    with pytest.raises(ValueError, match="noise .* must be ≥ 0"):
        mmoe_synthetic(0.5, noise=-1.0)


# ---------------------------------------------------------------- linnerud


def test_linnerud_sizes_and_standardised_targets():
    data = linnerud(seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (12, 4, 4)
    assert data.task_names == ["weight", "waist", "pulse"]
    for name in data.task_names:
        y = data.train.y[name]
        assert abs(float(y.mean())) < 1e-5 and float(y.std()) == pytest.approx(1.0, abs=1e-5)
    # undoing the standardisation gives back the file's values (weights 138..247 lb, pulses 46..74)
    weights = torch.cat([getattr(data, s).y["weight"] for s in SPLITS]) * data.info["target_std"]["weight"]
    weights = (weights + data.info["target_mean"]["weight"]).round().flatten()
    assert sorted(weights.tolist())[0] == 138 and sorted(weights.tolist())[-1] == 247
    raw = linnerud(seed=0, normalize=False)
    assert sorted(torch.cat([getattr(raw, s).x[:, 0] for s in SPLITS]).tolist())[-1] == 17  # chins
    assert row_set(raw.train.x).isdisjoint(row_set(raw.test.x))


# ---------------------------------------------------------------- the base helpers


def small_tasks() -> tuple[torch.Tensor, dict[str, torch.Tensor], list[T.Task]]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    targets = {"a": (x[:, 0] > 0).long(), "b": x[:, 1:2] * 2}
    return x, targets, [T.classification("a", 2), T.regression("b")]


def test_from_tensors_splits_disjointly_and_normalises_on_train():
    x, targets, tasks = small_tasks()
    data = MultiTaskData.from_tensors(x, targets, tasks, val_fraction=0.25, test_fraction=0.25, seed=1)
    assert (len(data.train), len(data.val), len(data.test)) == (20, 10, 10)
    raw = MultiTaskData.from_tensors(x, targets, tasks, val_fraction=0.25, test_fraction=0.25, seed=1, normalize=False)
    rows = [row_set(getattr(raw, s).x) for s in SPLITS]
    assert sum(len(r) for r in rows) == 40 and not rows[0] & rows[1] and not rows[1] & rows[2]
    assert torch.allclose(data.train.x.mean(dim=0), torch.zeros(3), atol=1e-6)
    assert torch.equal(raw.train.y["a"], (raw.train.x[:, 0] > 0).long())  # targets travel with their rows


def test_from_tensors_errors():
    x, targets, tasks = small_tasks()
    with pytest.raises(ValueError, match="target has 39 rows, the inputs have 40"):
        MultiTaskData.from_tensors(x, {"a": targets["a"][:39], "b": targets["b"]}, tasks)
    with pytest.raises(ValueError, match=r"targets has tasks \['a', 'b', 'c'\]"):
        MultiTaskData.from_tensors(x, {**targets, "c": targets["a"]}, tasks)
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got 1.0"):
        MultiTaskData.from_tensors(x, targets, tasks, val_fraction=1.0)
    with pytest.raises(ValueError, match="val_fraction \\+ test_fraction must be < 1"):
        MultiTaskData.from_tensors(x, targets, tasks, val_fraction=0.5, test_fraction=0.5)


def test_split_indices_partitions_and_checks_fractions():
    parts = split_indices(10, (0.6, 0.2, 0.2), seed=0)
    assert [len(p) for p in parts] == [6, 2, 2]
    assert torch.equal(torch.cat(parts).sort().values, torch.arange(10))
    for bad in ((0.5, 0.5), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1)):
        with pytest.raises(ValueError, match="fractions"):
            split_indices(10, bad, seed=0)


def test_make_data_and_split_reexports():
    split = Split(torch.arange(8.0).reshape(4, 2), {"b": torch.ones(4, 1)})
    data = make_data("toy", [T.regression("b")], split, split.take(torch.tensor([0])), split.take(torch.tensor([1])))
    assert torch.allclose(data.x_mean, torch.tensor([[3.0, 4.0]]))
    assert math.isclose(float(data.val.x[0, 0]), (0.0 - 3.0) / float(data.x_std[0, 0]), rel_tol=1e-6)


def test_a_single_training_row_normalises_without_nan():
    split = Split(torch.tensor([[1.0, 2.0]]), {"b": torch.ones(1, 1)})
    data = make_data("one", [T.regression("b")], split, split, split)
    assert torch.equal(data.x_std, torch.ones(1, 2)) and torch.equal(data.train.x, torch.zeros(1, 2))
