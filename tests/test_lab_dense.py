"""The Lab on pixel data (``scenes``): the dense architectures offered, the live chart fed for every task,
the per-metric table and Δm, and the prediction strip at the end of a run (in the panel and in the export)."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re

import pytest
import torch
from PIL import Image

pytest.importorskip("ipywidgets")

from lab_waiting import wait_for  # noqa: E402

from mtl_lab.metrics import delta_m_by_task, percent, relative_changes  # noqa: E402
from mtl_lab.models import DENSE_ARCHITECTURES  # noqa: E402
from mtl_lab.widgets import Lab, LabConfig  # noqa: E402
from mtl_lab.widgets.config import DATA_SETUPS  # noqa: E402
from mtl_lab.widgets.fit import misfits  # noqa: E402
from mtl_lab.widgets.prediction_strip import PredictionStrip, stack_png  # noqa: E402
from mtl_lab.widgets.run_table import metric_columns, metrics_html, run_results  # noqa: E402

TINY = {"size": 16, "n_train": 16, "n_val": 4, "n_test": 4, "max_shapes": 2}
DENSE = {"data": "scenes", "data_options": TINY, "architecture": "segnet_lite",
         "model_options": {"channels": [4, 8, 8]}, "method": "equal", "epochs": 2, "batch_size": 8, "lr": 1e-2,
         "baselines": False, "diagnostics_every": 1}
METRICS = ["segmentation/miou", "segmentation/pixel_accuracy", "depth/abs_err", "depth/rel_err",
           "normal/mean_angle", "normal/median_angle", "normal/within_11.25", "normal/within_22.5", "normal/within_30"]


def table_rows(table: str) -> list[list[str]]:
    """The cells of an HTML table, row by row (header included), unescaped."""
    return [[html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table)]


def png_size(png: bytes) -> tuple[int, int]:
    return Image.open(io.BytesIO(png)).size


def test_the_lab_trains_on_scenes_and_the_chart_gets_rows_for_every_task():
    lab = Lab(LabConfig(**DENSE), name="test-dense-run")
    history = lab.run()
    assert history.status == "completed" and lab.trainer.task_names == ["segmentation", "depth", "normal"]
    T = 3
    steps, diags, vals = (lab.feed.rows[s] for s in ("step", "diag", "val"))
    assert len(steps) == len(history.steps) == 4  # 16 scenes, batch 8, 2 epochs
    assert all(len(row) == 1 + 2 * T and all(math.isfinite(v) for v in row[1:1 + T]) for row in steps)
    assert diags and all(len(row) == 1 + T + T * (T - 1) // 2 + T for row in diags)
    assert all(abs(sum(row[1:1 + T]) - 1.0) < 1e-4 for row in diags)  # the shares of the three tasks
    assert len(vals) == 2 and all(len(row) == 1 + T for row in vals)
    assert lab.chart.tasks == ["segmentation", "depth", "normal"]
    lab.close()


def test_a_finished_run_shows_the_strip_at_twice_the_density_and_the_export_carries_it():
    lab = Lab(LabConfig(**DENSE), name="test-dense-strip")
    before = lab.snapshot()
    assert lab.ui.strip.png == b"" and lab.ui.strip.widget.children == ()
    lab.run()
    strip = lab.ui.strip
    (image,) = strip.widget.children
    assert strip.png and image.value == strip.png
    width, height = png_size(strip.png)
    assert image.layout.width == f"{width // 2}px"  # rendered at 2×, shown at its display width
    assert height > width / 3  # three rows of images
    after = lab.snapshot()
    assert png_size(after)[1] == png_size(before)[1] + height  # the chart's picture, the strip under it
    bundle = lab._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == after and bundle["text/plain"] == repr(lab)
    assert repr(strip) == "PredictionStrip(n_images=3, drawn=True)"
    lab.reset()
    assert strip.png == b"" and strip.widget.children == () and image.comm is None  # closed, not left behind
    lab.close()


def test_a_stopped_run_keeps_its_strip_and_a_new_run_clears_it():
    lab = Lab(LabConfig(**{**DENSE, "epochs": 50}), name="test-dense-stop", pace=20.0)
    assert lab.train()
    assert wait_for(lambda: lab.trainer.global_step >= 2)
    assert lab.ui.strip.png == b""  # nothing is drawn while it trains
    lab.stop(wait=True)
    assert wait_for(lambda: not lab.running)
    assert lab.trainer.history.status == "stopped" and lab.ui.strip.png
    assert len(lab.ui.strip.widget.children) == 1
    kept = lab.ui.strip.png
    lab.ui.seed_w.value = 1  # other settings: Train starts a new run, whose chart and strip start empty
    lab.set_pace(None)
    assert lab.train()
    lab.handle.join(120)
    assert wait_for(lambda: not lab.running) and lab.trainer.history.status == "completed"
    assert lab.ui.strip.png and lab.ui.strip.png != kept
    lab.close()


def test_per_image_data_draw_no_strip():
    lab = Lab(LabConfig(data="mmoe_synthetic", epochs=1, baselines=False), name="test-dense-none")
    lab.run()
    assert lab.ui.strip.png == b"" and lab.ui.strip.widget.children == ()
    assert stack_png(b"abc", b"") == b"abc"
    lab.close()
    assert PredictionStrip(n_images=2).draw(lab.trainer) is False


def test_the_table_has_every_pixel_metric_with_its_direction_and_delta_m_over_all_of_them():
    lab = Lab(LabConfig(**DENSE), name="test-dense-table")
    history = lab.run()
    data = lab.trainer.data
    columns = metric_columns(data)
    assert list(columns) == METRICS
    assert [up for up in columns.values()] == [True, True, False, False, False, False, True, True, True]
    metrics = run_results(lab.trainer)
    assert metrics["segmentation/miou"] == pytest.approx(history.meta["test_metrics"]["segmentation"])
    assert metrics["depth/abs_err"] == pytest.approx(history.meta["test_metrics"]["depth"])
    table = lab.ui.table.value
    for column, up in columns.items():
        assert f"{column} {'↑' if up else '↓'}" in table and f"{metrics[column]:.4f}" in table
    baseline = {c: v * (1.25 if columns[c] else 0.8) for c, v in metrics.items()}  # 20 % or 25 % worse
    panel = metrics_html(history, lab.trainer, baseline)
    changes = relative_changes(metrics, baseline, columns)
    rows = table_rows(panel)
    assert rows[0] == ["metric", "equal", "single-task", "relative change"]
    for row, column in zip(rows[1:], METRICS):  # one row per metric: name and direction, run, baseline, change
        assert row == [f"{column} {'↑' if columns[column] else '↓'}", f"{metrics[column]:.4f}",
                       f"{baseline[column]:.4f}", percent(changes[column])]
    assert rows[-1][:2] == ["Δm %", f"{sum(changes.values()) / 9:+.2f}"]  # Δm: the mean over all nine metrics
    by_task = delta_m_by_task(metrics, baseline, data)
    assert "Δm within each pixel task: " + ", ".join(
        f"{t} {percent(by_task[t])}" for t in ("segmentation", "depth", "normal")) in panel
    lab.close()


def test_single_task_baselines_of_pixel_tasks_give_every_metric_and_delta_m():
    lab = Lab(LabConfig(**{**DENSE, "baselines": True}), name="test-dense-baselines")
    lab.run()
    table = lab.ui.table.value
    assert "single-task" in table and "Δm %" in table and "Δm within each pixel task" in table
    assert len(lab.baseline_cache) == 3
    assert sorted(k for cached in lab.baseline_cache.values() for k in cached) == sorted(METRICS)
    lab.close()


def test_the_menu_offers_only_the_dense_architectures_and_says_why_once():
    lab = Lab(LabConfig(baselines=False), name="test-dense-menu")
    lab.ui.data_w.value = "scenes"
    setup = DATA_SETUPS["scenes"]
    assert list(lab.ui.arch_w.options) == list(DENSE_ARCHITECTURES) and lab.ui.arch_w.value == "segnet_lite"
    assert lab.export_config()["model_options"] == setup["model_options"]
    assert (lab.ui.lr_w.value, lab.ui.batch_w.value, lab.ui.epochs_w.value) == (setup["lr"], setup["batch_size"],
                                                                                setup["epochs"])
    assert lab.data_options == setup["data_options"] and "live CPU run" in lab.status_text()
    note = lab.ui.arch_note.value
    assert note.count("predicts one output per image") == 1  # one reason, every per-image architecture named
    for name in ("hard", "mmoe", "mtan_lite", "cross_stitch"):
        assert name in note
    lab.ui.data_w.value = "mmoe_synthetic"  # back to per-image data: an architecture that fits them
    assert lab.ui.arch_w.value == "hard" and "segnet_lite does not fit" in lab.status_text()
    assert lab.export_config()["model_options"] == {} and lab.data_options == {}
    lab.close()


def test_misfits_groups_equal_reasons_without_the_names_they_open_with():
    verdicts = {"hard": "architecture 'hard' predicts one output per image; choose x",
                "mmoe": "architecture 'mmoe' predicts one output per image; choose x",
                "mtan_lite": "mtan_lite needs image inputs", "segnet_lite": None}
    assert misfits(verdicts) == {"predicts one output per image; choose x": ["hard", "mmoe"],
                                 "needs image inputs": ["mtan_lite"]}


def test_a_per_image_architecture_on_scenes_is_refused_with_the_api_message():
    lab = Lab(LabConfig(**{**DENSE, "architecture": "hard", "model_options": {}}), name="test-dense-refuse")
    assert lab.ui.arch_w.value == "hard"  # a set-up is shown as it is, never replaced
    assert lab.train() is False and lab.trainer is None
    text = lab.status_text()
    assert "architecture 'hard' predicts one output per image" in text and "segnet_lite" in text
    lab.close()


@pytest.mark.parametrize("change, message", [
    ({"data_options": {**TINY, "size": 20}}, "size must be an int ≥ 16 and a multiple of 8"),
    ({"data_options": {**TINY, "depth_scale": -1.0}}, "depth_scale must be a positive number, got -1.0"),
    ({"model_options": {"channels": "wide"}}, "channels"),
    ({"batch_size": 0}, "batch_size"),
])
def test_bad_dense_settings_give_the_validation_layers_message_in_api_and_panel(change, message):
    config = {**DENSE, **change}
    with pytest.raises(ValueError, match=message):
        LabConfig.from_dict(config)
    lab = Lab(LabConfig(**DENSE), name="test-dense-bad")
    lab.ui.config_text.value = json.dumps(config)
    lab.ui.load_b.click()
    assert "set-up not loaded" in lab.status_text() and message in lab.status_text()
    lab.close()


def test_the_live_set_up_trains_the_scale_lesson_depth_takes_most_of_the_update():
    """Equal weights on the panel's scenes set-up (first 20 steps): depth's share of the trunk's update."""
    torch.manual_seed(0)
    config = LabConfig(**{**DENSE, **DATA_SETUPS["scenes"], "epochs": 3,
                          "data_options": {**DATA_SETUPS["scenes"]["data_options"], "n_train": 64}})
    lab = Lab(config, name="test-dense-scale")
    history = lab.run()
    shares = torch.tensor([d["shares"] for d in history.diagnostics])
    depth = float(shares[:, 1].mean())
    assert depth > 0.6 and depth > 2 * float(shares[:, 0].mean()), shares.mean(0)
    lab.close()
