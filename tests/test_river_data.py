"""Yeast and Solar-flare, read from the files the river package ships (never importing river) or from root=DIR:
fixtures written here in the exact on-disk formats (gzipped CSV; a zip whose one member has river's name)."""

from __future__ import annotations

import gzip
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from mtl_lab import data
from mtl_lab.data.solar_flare import CATEGORIES
from mtl_lab.data.solar_flare import COLUMNS as SOLAR_COLUMNS
from mtl_lab.data.yeast import COLUMNS as YEAST_COLUMNS
from mtl_lab.training import build_trainer

RIVER_WHEEL = Path("/tmp/river/x")  # an unpacked river wheel, where a machine has one
REAL = RIVER_WHEEL / "river" / "datasets"


def number(v: float) -> str:
    """A decimal as river's file writes it: up to six places, no trailing zeros (``0.04185``, ``-0.170975``)."""
    text = f"{v:.6f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-", "-0") else "0"


def yeast_text(n: int, seed: int = 0) -> tuple[str, np.ndarray]:
    """A Yeast CSV of ``n`` genes: ``Att1`` holds the row id / 10 000, the other features seeded decimals."""
    rng = np.random.default_rng(seed)
    features = rng.normal(0.0, 0.1, size=(n, 103))
    features[:, 0] = np.arange(n) / 10_000
    labels = (rng.random((n, 14)) < 0.4).astype(int)
    lines = [",".join(YEAST_COLUMNS)]
    for f, y in zip(features, labels):
        lines.append(",".join([number(v) for v in f] + [str(v) for v in y]))
    return "\n".join(lines) + "\n", labels


def write_yeast(folder: Path, n: int = 20, name: str = "yeast.csv.gz", text: str | None = None) -> np.ndarray:
    folder.mkdir(parents=True, exist_ok=True)
    made, labels = yeast_text(n)
    body = (text if text is not None else made).encode()
    (folder / name).write_bytes(gzip.compress(body) if name.endswith(".gz") else body)
    return labels


def row_ids(d: data.MultiTaskData, split: data.Split) -> torch.Tensor:
    """The fixture row each example comes from, read back from its standardised ``Att1``."""
    raw = split.x[:, 0] * d.x_std[0, 0] + d.x_mean[0, 0]
    return (raw * 10_000).round().long()


@pytest.mark.parametrize("name", ["yeast.csv.gz", "yeast.csv"])
def test_yeast_tasks_shapes_labels_and_train_only_standardisation(tmp_path, name):
    labels = write_yeast(tmp_path / "yeast", name=name)
    d = data.load("yeast", root=str(tmp_path / "yeast"), split="random", seed=3)
    assert d.task_names == [f"class{k}" for k in range(1, 15)] and d.input_shape == (103,)
    assert (len(d.train), len(d.val), len(d.test)) == (12, 4, 4)
    assert all(t.kind == "binary" and t.metric_name == "accuracy" for t in d.tasks)
    ids = {s: row_ids(d, getattr(d, s)) for s in ("train", "val", "test")}
    assert sorted(torch.cat(list(ids.values())).tolist()) == list(range(20))  # disjoint, every row once
    for split_name, rows in ids.items():
        split = getattr(d, split_name)
        for k in range(14):  # label semantics: column ClassK of the file is task classK, 0/1 as written
            assert torch.equal(split.y[f"class{k + 1}"], torch.tensor(labels[rows.numpy(), k], dtype=torch.float32))
    assert torch.allclose(d.train.x.mean(dim=0), torch.zeros(103), atol=1e-5)  # fitted on train only
    assert torch.allclose(d.train.x.std(dim=0), torch.ones(103), atol=1e-4)
    assert not torch.allclose(d.test.x.mean(dim=0), torch.zeros(103), atol=1e-3)


def test_yeast_mulan_split_follows_the_file_order(tmp_path):
    write_yeast(tmp_path, n=2417)
    d0, again, d1 = (data.load("yeast", root=str(tmp_path), seed=s) for s in (0, 0, 1))
    assert (len(d0.train), len(d0.val), len(d0.test)) == (1200, 300, 917)
    assert torch.equal(row_ids(d0, d0.test), torch.arange(917))  # MULAN's test genes: the first 917 rows
    train, val = row_ids(d0, d0.train), row_ids(d0, d0.val)
    assert sorted(torch.cat([train, val]).tolist()) == list(range(917, 2417))
    assert torch.equal(d0.val.x, again.val.x) and torch.equal(d0.train.y["class5"], again.train.y["class5"])
    assert not torch.equal(row_ids(d1, d1.val), val)  # the seed draws the validation genes
    assert torch.equal(row_ids(d1, d1.test), torch.arange(917))  # and never moves the test split


def test_yeast_mulan_split_needs_rivers_row_count(tmp_path):
    write_yeast(tmp_path, n=20)
    with pytest.raises(ValueError, match=r"yeast.csv.gz: split='mulan' needs river's 2417 rows .* the file has 20; "
                                         r"use split='random'"):
        data.load("yeast", root=str(tmp_path))


def test_yeast_task_subset_keeps_the_order_given(tmp_path):
    labels = write_yeast(tmp_path)
    d = data.load("yeast", root=str(tmp_path), tasks=["class3", "class1"], split="random")
    assert d.task_names == ["class3", "class1"] and set(d.test.y) == {"class3", "class1"}
    rows = row_ids(d, d.test).numpy()
    assert torch.equal(d.test.y["class3"], torch.tensor(labels[rows, 2], dtype=torch.float32))


@pytest.mark.parametrize(
    "options, message",
    [
        ({"tasks": ["class15"]}, r"unknown task\(s\) \['class15'\]; choose a non-empty subset of \['class1'"),
        ({"tasks": []}, r"tasks \[\]: no task"),
        ({"tasks": "class1"}, r"tasks must be a list of task names, got 'class1'"),
        ({"tasks": ["class2", "class2"]}, r"tasks repeats a name"),
        ({"split": "MULAN"}, r"split 'MULAN' is not one of \('mulan', 'random'\)"),
        ({"split": 1}, r"option split must be a string, got 1"),
    ],
)
def test_yeast_bad_options_are_named(tmp_path, options, message):
    write_yeast(tmp_path)
    with pytest.raises(ValueError, match=message):
        data.load("yeast", root=str(tmp_path), **options)


def replace_line(text: str, number: int, change) -> str:
    lines = text.split("\n")
    lines[number - 1] = change(lines[number - 1])
    return "\n".join(lines)


def set_value(column: int, value: str):
    return lambda line: ",".join(value if k == column else v for k, v in enumerate(line.split(",")))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: "\n".join(",".join(line.split(",")[:-1]) for line in t.split("\n")),
         r"yeast.csv.gz: the header does not match: missing column\(s\) \['Class14'\]; expected the 117 columns"),
        (lambda t: replace_line(t, 5, set_value(105, "2")),
         r"yeast.csv.gz, line 5: label column Class3 is '2', expected 0 or 1"),
        (lambda t: replace_line(t, 3, set_value(6, "abc")),
         r"yeast.csv.gz, line 3: column Att7 is 'abc', expected a finite number"),
        (lambda t: replace_line(t, 7, set_value(0, "nan")),
         r"yeast.csv.gz, line 7: column Att1 is 'nan', expected a finite number"),
        (lambda t: replace_line(t, 4, lambda line: line.rsplit(",", 1)[0]),
         r"yeast.csv.gz, line 4: 116 values, expected 117 values"),
        (lambda t: replace_line(t, 6, lambda line: ""), r"yeast.csv.gz, line 6: a blank line"),
        (lambda t: t.split("\n")[0] + "\n", r"yeast.csv.gz: no data rows after the header"),
    ],
)
def test_yeast_malformed_file_names_the_file_and_what_is_expected(tmp_path, change, message):
    text, _ = yeast_text(20)
    write_yeast(tmp_path, text=change(text))
    with pytest.raises(ValueError, match=message):
        data.load("yeast", root=str(tmp_path), split="random")


def test_yeast_truncated_gzip_names_the_file(tmp_path):
    write_yeast(tmp_path)
    path = tmp_path / "yeast.csv.gz"
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(ValueError, match=r"yeast.csv.gz: not a readable gzip file .* may be truncated"):
        data.load("yeast", root=str(tmp_path), split="random")


def test_a_folder_without_the_file_names_what_it_needs(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing yeast.csv.gz \(or yeast.csv\); expected layout"):
        data.load("yeast", root=str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"missing solar-flare.csv.zip \(or solar-flare.csv\)"):
        data.load("solar_flare", root=str(tmp_path))


def fake_river(site: Path, monkeypatch, files: dict[str, bytes]) -> Path:
    """A package folder named ``river`` on ``sys.path`` whose ``__init__`` fails if it is ever imported."""
    (site / "river" / "datasets").mkdir(parents=True)
    (site / "river" / "__init__.py").write_text("raise ImportError('the lab must not import river')\n")
    for name, content in files.items():
        (site / "river" / "datasets" / name).write_bytes(content)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "river", raising=False)
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    return site / "river" / "datasets"


def test_rivers_copy_is_found_without_importing_river(tmp_path, monkeypatch):
    write_yeast(tmp_path / "made")
    made = (tmp_path / "made" / "yeast.csv.gz").read_bytes()
    folder = fake_river(tmp_path / "site", monkeypatch, {"yeast.csv.gz": made})
    d = data.load("yeast", split="random")
    assert d.info["source"].endswith(str(folder / "yeast.csv.gz")) and len(d.train) == 12
    assert "river" not in sys.modules
    offered = data.menu()
    assert "yeast" in offered and "solar_flare" not in offered  # river's copy counts as present
    with pytest.raises(FileNotFoundError, match=r"no installed river package has river/datasets/solar-flare.csv.zip: "
                                                r"install it \(`pip install river`.*or pass root=DIR with the file"):
        data.load("solar_flare")
    write_yeast(tmp_path / "mine", n=30)  # root= wins over river's copy
    assert len(data.load("yeast", root=str(tmp_path / "mine"), split="random").train) == 18


# ---------------------------------------------------------------- solar flare


def solar_rows(n: int, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        codes = [allowed[rng.integers(len(allowed))] for allowed in CATEGORIES.values()]
        rows.append(codes + [str(c) for c in rng.poisson((0.5, 0.2, 0.05))])
    return rows


def solar_text(rows: list[list[str]]) -> str:
    return "\n".join([",".join(SOLAR_COLUMNS)] + [",".join(r) for r in rows]) + "\n"


def write_solar(folder: Path, rows: list[list[str]], members: tuple[str, ...] = ("solar-flare.csv.zip",)) -> Path:
    """river's layout: a zip archive ``solar-flare.csv.zip`` whose one member carries the same name."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "solar-flare.csv.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for member in members:
            archive.writestr(member, solar_text(rows))
    return folder / "solar-flare.csv.zip"


def expected_one_hot(row: list[str]) -> torch.Tensor:
    out, offset = torch.zeros(33), 0
    for value, allowed in zip(row, CATEGORIES.values()):
        out[offset + allowed.index(value)] = 1.0
        offset += len(allowed)
    return out


def test_solar_flare_one_hot_counts_and_seeded_split(tmp_path):
    rows = solar_rows(20)
    write_solar(tmp_path, rows)
    d = data.load("solar_flare", root=str(tmp_path), seed=4)
    assert d.task_names == ["c_flares", "m_flares", "x_flares"] and d.input_shape == (33,)
    assert all(t.kind == "regression" and t.loss_name == "mse" and t.metric_name == "mse" for t in d.tasks)
    assert len(d.info["features"]) == 33 and d.info["features"][0] == "zurich-class=A"
    for split, index in zip((d.train, d.val, d.test), data.split_indices(20, (0.6, 0.2, 0.2), 4)):
        index = index.sort().values
        assert torch.equal(split.x, torch.stack([expected_one_hot(rows[i]) for i in index]))
        for column, task in enumerate(d.task_names, start=10):
            assert torch.equal(split.y[task], torch.tensor([[float(rows[i][column])] for i in index]))
    assert (len(d.train), len(d.val), len(d.test)) == (12, 4, 4)
    again, other = data.load("solar_flare", root=str(tmp_path), seed=4), data.load("solar_flare", root=str(tmp_path))
    assert torch.equal(again.train.x, d.train.x) and torch.equal(again.test.y["c_flares"], d.test.y["c_flares"])
    assert not torch.equal(other.train.x, d.train.x)


def test_solar_flare_reads_a_plain_csv(tmp_path):
    rows = solar_rows(10)
    (tmp_path / "solar-flare.csv").write_text(solar_text(rows))
    d = data.load("solar_flare", root=str(tmp_path))
    assert len(d.train) + len(d.val) + len(d.test) == 10


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda rows: rows[1].__setitem__(0, "Z"),
         r"solar-flare.csv.zip, line 3: column zurich-class is 'Z', expected one of \['A', 'B', 'C', 'D', 'E', 'F', "
         r"'H'\]"),
        (lambda rows: rows[4].__setitem__(11, "-1"),
         r"solar-flare.csv.zip, line 6: column m-class-flares is '-1', expected a count \(0, 1, 2, …\)"),
        (lambda rows: rows[2].__setitem__(12, "0.5"), r"line 4: column x-class-flares is '0.5', expected a count"),
        (lambda rows: rows[3].pop(), r"solar-flare.csv.zip, line 5: 12 values, expected 13 values"),
    ],
)
def test_solar_flare_malformed_rows_are_named(tmp_path, change, message):
    rows = solar_rows(12)
    change(rows)
    write_solar(tmp_path, rows)
    with pytest.raises(ValueError, match=message):
        data.load("solar_flare", root=str(tmp_path))


def test_solar_flare_malformed_archives_are_named(tmp_path):
    path = write_solar(tmp_path, solar_rows(8), members=("a.csv", "b.csv"))
    with pytest.raises(ValueError, match=r"solar-flare.csv.zip: a zip archive must hold exactly one CSV file, "
                                         r"this one holds \['a.csv', 'b.csv'\]"):
        data.load("solar_flare", root=str(tmp_path))
    write_solar(tmp_path, solar_rows(8))
    path.write_bytes(path.read_bytes()[:60])
    with pytest.raises(ValueError, match=r"solar-flare.csv.zip: not a readable zip file"):
        data.load("solar_flare", root=str(tmp_path))
    (tmp_path / "solar-flare.csv.zip").unlink()
    (tmp_path / "solar-flare.csv").write_text(solar_text(solar_rows(8)).replace("hist-complex,", "complex,", 1))
    with pytest.raises(ValueError, match=r"solar-flare.csv: the header does not match: missing column\(s\) "
                                         r"\['hist-complex'\]; unexpected column\(s\) \['complex'\]"):
        data.load("solar_flare", root=str(tmp_path))


def test_menu_offers_the_sets_whose_folders_are_present(tmp_path, monkeypatch):
    fake_river(tmp_path / "site", monkeypatch, {})  # a river without the files: nothing found through it
    assert "yeast" not in data.menu() and "solar_flare" not in data.menu()
    write_solar(tmp_path / "data" / "solar_flare", solar_rows(10))
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path / "data"))
    assert "solar_flare" in data.menu() and "yeast" not in data.menu()
    options = data.menu_options("solar_flare")
    assert options == {"root": str(tmp_path / "data" / "solar_flare")}
    assert data.load("solar_flare", **options).task_names == ["c_flares", "m_flares", "x_flares"]


def test_both_sets_train(tmp_path):
    write_yeast(tmp_path, n=40)
    write_solar(tmp_path, solar_rows(40))
    for d in (data.load("yeast", root=str(tmp_path), tasks=["class1", "class2"], split="random"),
              data.load("solar_flare", root=str(tmp_path))):
        history = build_trainer(d, "hard", "equal", epochs=1, batch_size=20, device="cpu", diagnostics_every=0).fit()
        assert set(history.meta["test_metrics"]) == set(d.task_names)


@pytest.mark.skipif(not (REAL / "yeast.csv.gz").is_file(), reason="no unpacked river wheel on this machine")
def test_rivers_real_files(monkeypatch):
    d = data.load("yeast", root=str(REAL))
    assert len(d.train) + len(d.val) + len(d.test) == 2417 and d.input_shape == (103,) and len(d.tasks) == 14
    assert (len(d.train), len(d.val), len(d.test)) == (1200, 300, 917)
    s = data.load("solar_flare", root=str(REAL))
    assert (len(s.train), len(s.val), len(s.test)) == (640, 213, 213) and s.input_shape == (33,)
    monkeypatch.syspath_prepend(str(RIVER_WHEEL))  # the wheel's own river folder, found and never imported
    monkeypatch.delitem(sys.modules, "river", raising=False)
    assert torch.equal(data.load("yeast").test.y["class12"], d.test.y["class12"])
    assert "river" not in sys.modules
