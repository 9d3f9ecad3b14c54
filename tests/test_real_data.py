"""Loaders of the field's benchmarks from local files (CelebA, Census-Income, Office-31/Home), on small
fixtures written here in the exact on-disk formats; the streamed splits' order, resume and sharding."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mtl_lab import data
from mtl_lab.data.base import Split
from mtl_lab.data.census import CATEGORICAL, NUMERIC
from mtl_lab.data.streaming import StreamedSplit
from mtl_lab.history import History
from mtl_lab.training import build_trainer

ATTRS = [f"Attr_{k}" for k in range(40)]
ATTRS[2], ATTRS[20], ATTRS[31] = "Attractive", "Male", "Smiling"


def write_jpeg(path: Path, value: int, size: tuple[int, int] = (18, 22)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (value, 255 - value, value // 2)).save(path, quality=95)


PARTITION = (0,) * 8 + (1, 1, 2, 2)


def celeba_root(folder: Path, n: int = 12, partition: tuple[int, ...] = PARTITION) -> tuple[Path, np.ndarray]:
    """A CelebA folder: image i is one flat colour (red = 20 i + 5); attribute values drawn with a seed."""
    values = np.where(np.random.default_rng(0).random((n, 40)) < 0.4, 1, -1)
    lines = [str(n), " ".join(ATTRS)]
    for i in range(n):  # the real file pads the values with one or two spaces
        lines.append(f"{i + 1:06d}.jpg " + " ".join(f"{v:2d}" for v in values[i]))
        write_jpeg(folder / "img_align_celeba" / f"{i + 1:06d}.jpg", 20 * i + 5)
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (folder / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(partition)))
    return folder, values


def red_ids(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    """The image id each row shows, read back from its red channel."""
    red = (x[:, 0].mean(dim=(1, 2)) * std + mean) * 255
    return ((red - 5) / 20).round().long()


@pytest.mark.parametrize("cache", [True, False])
def test_celeba_tasks_shapes_splits_and_label_semantics(tmp_path, cache):
    root, values = celeba_root(tmp_path / "celeba")
    d = data.load("celeba", root=str(root), size=16, cache=cache, workers=0)
    assert d.task_names == ATTRS and d.input_shape == (3, 16, 16)
    assert (len(d.train), len(d.val), len(d.test)) == (8, 2, 2)
    mean, std = float(d.x_mean), float(d.x_std)
    for split, rows in ((d.train, range(8)), (d.val, range(8, 10)), (d.test, range(10, 12))):
        assert isinstance(split, StreamedSplit)
        x = split.x[torch.arange(len(split))]
        assert x.shape == (len(split), 3, 16, 16) and x.dtype == torch.float32
        assert red_ids(x, mean, std).tolist() == list(rows)
        for k, name in enumerate(ATTRS):
            assert split.y[name].tolist() == [float(values[i, k] == 1) for i in rows]
    if cache:
        assert (root / ".mtl_lab_cache" / "celeba_16.u8").stat().st_size == 12 * 3 * 16 * 16
        assert abs(float(d.train.x[torch.arange(8)].mean())) < 1e-5  # fitted on all training images
    some = data.load("celeba", root=str(root), tasks=["Smiling", "Male"], size=16, cache=cache, workers=0)
    assert some.task_names == ["Smiling", "Male"]
    assert some.test.y["Male"].tolist() == [float(values[i, 20] == 1) for i in (10, 11)]


def test_celeba_cached_and_decoded_reads_agree_and_the_cache_is_reused(tmp_path):
    root, _ = celeba_root(tmp_path / "celeba")
    cached = data.load("celeba", root=str(root), size=16, workers=0, normalize=False)
    decoded = data.load("celeba", root=str(root), size=16, cache=False, workers=0, normalize=False)
    rows = torch.arange(8)
    assert torch.equal(cached.train.x[rows], decoded.train.x[rows])
    cache = root / ".mtl_lab_cache" / "celeba_16.u8"
    stamp = cache.stat().st_mtime_ns
    data.load("celeba", root=str(root), size=16, workers=0)
    assert cache.stat().st_mtime_ns == stamp  # read again, not rebuilt


def test_streamed_batches_follow_the_in_memory_order_with_workers(tmp_path):
    root, _ = celeba_root(tmp_path / "celeba")
    d = data.load("celeba", root=str(root), size=16, workers=2)
    memory = Split(d.train.x[torch.arange(8)], d.train.y)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    streamed = list(d.train.batches(3, shuffle=True, generator=g1, with_mask=True))
    held = list(memory.batches(3, shuffle=True, generator=g2, with_mask=True))
    assert len(streamed) == len(held) == 3
    for (xs, ys, ms), (xh, yh, mh) in zip(streamed, held):
        assert torch.equal(xs, xh) and ms == mh == {}
        assert all(torch.equal(ys[t], yh[t]) for t in ATTRS)
    assert torch.equal(g1.get_state(), g2.get_state())  # the generator is left as the in-memory split leaves it
    # skip=k: the same order without reading the first k batches (a resume hook)
    g3 = torch.Generator().manual_seed(5)
    rest = list(d.train.batches(3, shuffle=True, generator=g3, skip=2))
    assert len(rest) == 1 and torch.equal(rest[0][0], held[2][0])


def test_every_rank_draws_the_same_streamed_batches(tmp_path):
    """Data-parallel ranks each draw the epoch's order from the same seed and take their rows of each
    batch: the streamed batches must be the same tensors in every process that reads them."""
    root, _ = celeba_root(tmp_path / "celeba")
    ranks = [data.load("celeba", root=str(root), size=16, workers=w) for w in (0, 1, 2)]
    draws = [[x for x, _ in r.train.batches(4, shuffle=True, generator=torch.Generator().manual_seed(9))]
             for r in ranks]
    for other in draws[1:]:
        assert all(torch.equal(a, b) for a, b in zip(draws[0], other))


def comparable(history: History) -> dict:
    d = history.to_dict()
    d["epochs"] = [{k: v for k, v in e.items() if k != "time"} for e in d["epochs"]]
    d["meta"] = {k: v for k, v in d["meta"].items() if k in ("status", "steps", "test_loss", "test_metrics")}
    return d


def test_trainer_runs_unchanged_on_streamed_data_and_resumes_exactly(tmp_path):
    root, _ = celeba_root(tmp_path / "celeba")
    streamed = data.load("celeba", root=str(root), tasks=["Smiling", "Male", "Attractive"], size=16, workers=0)
    held = streamed.__class__(streamed.name, streamed.tasks,
                              *(Split(s.x[torch.arange(len(s))], s.y) for s in (streamed.train, streamed.val,
                                                                                 streamed.test)))
    options = {"epochs": 2, "batch_size": 3, "lr": 1e-2, "model_options": {"trunk": "cnn", "channels": (4,),
                                                                          "out_dim": 8}}
    whole = build_trainer(streamed, "hard", "pcgrad", **options)
    whole.fit()
    memory = build_trainer(held, "hard", "pcgrad", **options)
    memory.fit()
    assert comparable(whole.history) == comparable(memory.history)
    first = build_trainer(streamed, "hard", "pcgrad", **options)
    first.fit(max_steps=4)  # mid-way through the second epoch (3 batches per epoch)
    resumed = build_trainer(streamed, "hard", "pcgrad", **{**options, "seed": 77})
    resumed.load(first.save(tmp_path / "run.pt"))
    resumed.fit()
    assert comparable(resumed.history) == comparable(whole.history)
    for p, q in zip(whole.model.parameters(), resumed.model.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: (r / "list_eval_partition.txt").unlink(), "missing list_eval_partition.txt"),
        (lambda r: (r / "img_align_celeba" / "000007.jpg").unlink(), "1 image.*missing, e.g. '000007.jpg'"),
        (lambda r: (r / "list_attr_celeba.txt").write_text("3\n" + " ".join(ATTRS) + "\n"),
         "announces 3 images, the file lists 0"),
        (lambda r: (r / "list_attr_celeba.txt").write_text("1\nA B\n"), "line 2: 2 attribute names, expected 40"),
        (lambda r: (r / "list_attr_celeba.txt").write_text("1\n" + " ".join(ATTRS) + "\n000001.jpg" + " 0" * 40),
         "line 3: expected an image name and 40 values -1 or 1"),
        (lambda r: (r / "list_eval_partition.txt").write_text("000001.jpg 0\n"), "no split for 11 image"),
        (lambda r: (r / "list_eval_partition.txt").write_text("000001.jpg 3\n"), "line 1: expected 'name.jpg 0"),
    ],
)
def test_celeba_malformed_folder_names_the_file(tmp_path, change, message):
    root, _ = celeba_root(tmp_path / "celeba")
    change(root)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        data.load("celeba", root=str(root), size=16, workers=0)


def test_celeba_option_errors(tmp_path):
    root, _ = celeba_root(tmp_path / "celeba")
    with pytest.raises(ValueError, match=r"unknown CelebA attribute\(s\) \['Smile'\]"):
        data.load("celeba", root=str(root), tasks=["Smile"], workers=0)
    with pytest.raises(ValueError, match="size must be an int in"):
        data.load("celeba", root=str(root), size=4, workers=0)
    with pytest.raises(ValueError, match="celeba needs the CelebA files"):
        data.load("celeba")


# ---------------------------------------------------------------- Census-Income


def census_row(i: int, income: str, marital: str) -> str:
    values = []
    for column in range(42):
        if column == 41:
            values.append(income)
        elif column == 7:
            values.append(marital)
        elif column == 24:
            values.append(f"{1000 + i}.5")  # instance weight: never a feature
        elif column in NUMERIC:
            values.append(str(i * (column + 1) % 97))
        else:
            values.append(["Not in universe", "Private", "Self-employed"][(i + column) % 3])
    return values[0] + "".join(f", {v}" for v in values[1:])


def census_root(folder: Path, gz: bool) -> Path:
    folder.mkdir(parents=True)
    incomes, maritals = ["- 50000.", "50000+."], ["Never married", "Married-civilian spouse present", "Divorced"]
    for name, rows in (("census-income.data", range(9)), ("census-income.test", range(9, 17))):
        text = "".join(census_row(i, incomes[i % 2], maritals[i % 3]) + "\n" for i in rows)
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(text.encode("latin-1")))
        else:
            (folder / name).write_text(text, encoding="latin-1")
    return folder


@pytest.mark.parametrize("gz", [True, False])
def test_census_mmoe_setup(tmp_path, gz):
    d = data.load("census", root=str(census_root(tmp_path / "census", gz)), seed=1)
    assert d.task_names == ["income", "never_married"]
    assert (len(d.train), len(d.val), len(d.test)) == (9, 4, 4)
    n_onehot = 3 * len(CATEGORICAL)  # every categorical column takes each of the three values somewhere
    assert d.input_shape == (len(NUMERIC) + n_onehot,)
    assert d.train.y["income"].tolist() == [float(i % 2) for i in range(9)]
    assert d.train.y["never_married"].tolist() == [float(i % 3 == 0) for i in range(9)]
    onehot = d.train.x[:, len(NUMERIC):]
    assert torch.equal(onehot.sum(dim=1), torch.full((9,), float(len(CATEGORICAL))))
    numeric = d.train.x[:, : len(NUMERIC)]
    assert torch.allclose(numeric.mean(dim=0), torch.zeros(len(NUMERIC)), atol=1e-5)
    # the test file is split half into validation and test: together they hold its 8 rows once
    rest = torch.cat([d.val.y["income"], d.test.y["income"]])
    assert sorted(rest.tolist()) == sorted(float(i % 2) for i in range(9, 17))
    assert d.info["features"]["one_hot"]["sex"] == 3
    assert [t.metric_name for t in d.tasks] == ["auc", "auc"]  # the MMoE paper's metric


def test_census_scores_auc_over_the_whole_split_and_keeps_accuracy_on_request(tmp_path):
    from mtl_lab.tasks import roc_auc
    from mtl_lab.training import build_trainer

    root = str(census_root(tmp_path / "census", gz=False))
    d = data.load("census", root=root, seed=1)
    trainer = build_trainer(d, "hard", "equal", {"hidden": (8,)}, epochs=1, batch_size=4, device="cpu")
    losses, metrics = trainer.evaluate("test", batch_size=3)  # batches of 3: the AUC is not a mean of batch AUCs
    with torch.no_grad():
        out = trainer.model(d.test.x)
    for task in d.task_names:
        assert metrics[task] == pytest.approx(roc_auc(out[task], d.test.y[task]), abs=1e-12)
    accuracy = data.load("census", root=root, seed=1, metric="accuracy")
    assert [t.metric_name for t in accuracy.tasks] == ["accuracy", "accuracy"]
    with pytest.raises(ValueError, match=r"metric 'gini' is not one of \('auc', 'accuracy'\)"):
        data.load("census", root=root, metric="gini")


@pytest.mark.parametrize(
    "line, message",
    [
        (" 1, 2, 3\n", r"census-income.data, line 10: 3 columns, expected 42"),
        (census_row(0, "maybe", "Divorced") + "\n", r"line 10: income column 42 is 'maybe'"),
    ],
)
def test_census_malformed_row_is_named(tmp_path, line, message):
    root = census_root(tmp_path / "census", gz=False)
    with open(root / "census-income.data", "a", encoding="latin-1") as handle:
        handle.write(line)
    with pytest.raises(ValueError, match=message):
        data.load("census", root=str(root))


def test_census_missing_file_names_it(tmp_path):
    root = census_root(tmp_path / "census", gz=True)
    (root / "census-income.test.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing census-income.test \(or census-income.test.gz\)"):
        data.load("census", root=str(root))


# ---------------------------------------------------------------- Office-31 (LibMTL list files)


def office_root(folder: Path) -> Path:
    lists = folder / "data_txt" / "office-31"
    lists.mkdir(parents=True)
    value = 0
    for d, domain in enumerate(("amazon", "dslr", "webcam")):
        for split, n in (("train", 3 + d), ("val", 1), ("test", 2)):
            lines = []
            for k in range(n):
                path = f"{domain}/images/c{k}/frame_{split}_{k}.jpg"
                write_jpeg(folder / path, 5 + 10 * value)
                lines.append(f"{path} {(k + d) % 31}")
                value += 1
            (lists / f"{domain}_{split}.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_office31_masked_form_each_domain_is_a_task_on_its_own_images(tmp_path):
    d = data.load("office31", root=str(office_root(tmp_path / "office")), size=8, workers=0, multi_input=False)
    assert d.task_names == ["amazon", "dslr", "webcam"]
    assert (len(d.train), len(d.val), len(d.test)) == (12, 3, 6)
    assert [t.out_dim for t in d.tasks] == [31, 31, 31]
    train = d.train
    assert [int(train.mask[t].sum()) for t in d.task_names] == [3, 4, 5]
    assert not bool((train.mask["amazon"] & train.mask["dslr"]).any())  # one domain per image
    assert train.y["dslr"][train.mask["dslr"]].tolist() == [1, 2, 3, 4]
    x, y, masks = next(train.batches(12, with_mask=True))
    one = d.select(["dslr"])  # rows of the other domains are dropped; the split stays streamed
    assert isinstance(one.train, StreamedSplit) and len(one.train) == 4
    assert x.shape == (12, 3, 8, 8) and set(masks) == {"amazon", "dslr", "webcam"}


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda r: (r / "data_txt" / "office-31" / "webcam_val.txt").unlink(),
         r"missing data_txt/office-31/webcam_val"),
        (lambda r: (r / "data_txt" / "office-31" / "dslr_test.txt").write_text("a.jpg 40\n"), "CLASS in 0..30"),
        (lambda r: (r / "data_txt" / "office-31" / "dslr_test.txt").write_text("gone.jpg 3\n"),
         "the image 'gone.jpg' is not under"),
    ],
)
def test_office_malformed_folder_names_the_file(tmp_path, change, message):
    root = office_root(tmp_path / "office")
    change(root)
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        data.load("office31", root=str(root), size=8, workers=0)


def test_menu_lists_the_real_data_sets_whose_files_are_present(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    offered = data.menu()
    assert "multimnist" in offered and "mnist" in offered and "celeba" not in offered and "census" not in offered
    census_root(tmp_path / "census", gz=True)
    (tmp_path / "fashion_mnist").mkdir()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    offered = data.menu()
    assert {"census", "multifashion", "multifashion_mnist"} <= set(offered) and "celeba" not in offered
    assert data.menu_options("census") == {"root": str(tmp_path / "census")}
    assert data.menu_options("multimnist") == {}  # no mnist/ folder: the bundled digits
    assert data.load("census", **data.menu_options("census")).task_names == ["income", "never_married"]


def test_census_non_numeric_value_is_named(tmp_path):
    root = census_root(tmp_path / "census", gz=False)
    row = census_row(3, "- 50000.", "Divorced").split(", ")
    row[0] = "forty"
    with open(root / "census-income.test", "a", encoding="latin-1") as handle:
        handle.write(", ".join(row) + "\n")
    with pytest.raises(ValueError, match=r"census-income.test: row 9, column 1 \(age\) is 'forty'"):
        data.load("census", root=str(root))
