"""The live views' logic, without a browser: config round trip, Stop, threads, live weights, arena, toy, sweep."""

from __future__ import annotations

import base64
import gc
import json
import math
import re
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
import torch

pytest.importorskip("ipywidgets")

from lab_waiting import toy_as_digits, wait_for  # noqa: E402

from mtl_lab import toy  # noqa: E402
from mtl_lab.history import History  # noqa: E402
from mtl_lab.metrics import delta_m, directions, metrics_table, percent, relative_changes  # noqa: E402
from mtl_lab.palette import method_color, task_color, task_dash  # noqa: E402
from mtl_lab.studies import sweep  # noqa: E402
from mtl_lab.toy import arena  # noqa: E402
from mtl_lab.weighting import aggregate  # noqa: E402
from mtl_lab.widgets import GradientArena, Lab, LabConfig, ParetoSweep, RunComparison  # noqa: E402
from mtl_lab.widgets.config import DATA_CACHE  # noqa: E402
from mtl_lab.widgets.lab import metrics_html  # noqa: E402
from mtl_lab.widgets.links import PRESETS, ignored_options, read_query, read_race, setup_link  # noqa: E402
from mtl_lab.widgets.pace import Pace  # noqa: E402
from mtl_lab.widgets.transport import ChartFeed, unpack  # noqa: E402

SMALL = {"epochs": 2, "model_options": {"hidden": [16]}, "baselines": False, "batch_size": 32, "lr": 1e-2}


@pytest.fixture(autouse=True)
def toy_data_set():
    with toy_as_digits():  # every run takes well under a second
        yield


def comparable(h) -> dict:
    d = h.to_dict()
    for e in d["epochs"]:
        e.pop("time")
    for key in ("train_seconds", "threads"):
        d["meta"].pop(key, None)
    return d


# ---------------------------------------------------------------- config


def test_config_round_trip_through_dict_json_and_the_panel():
    config = LabConfig(tasks=["cls", "reg"], method="static", weights={"cls": 2.0, "yes": 0.5, "reg": 3.0},
                       lr=3e-3, epochs=4, seed=7, **{k: v for k, v in SMALL.items() if k not in ("epochs", "lr")})
    assert LabConfig.from_json(config.to_json()) == config
    assert LabConfig.from_dict(config.to_dict()) == config
    lab = Lab(config, name="test-config")
    exported = lab.export_config()
    assert LabConfig.from_dict(exported) == config
    other = Lab(name="test-config-2")
    other.load_config(lab.export_json())
    assert other.export_config() == exported
    assert [t for t, box in other.task_checks.items() if box.value] == ["cls", "reg"]
    assert other.weight_inputs["reg"].value == 3.0
    lab.close()
    other.close()


def test_method_options_come_from_the_declaration_and_survive_a_round_trip():
    lab = Lab(LabConfig(method="cagrad", method_options={"c": 0.25}, **SMALL), name="test-options")
    assert set(lab.option_widgets) == {"c", "rescale", "tol", "max_iter"}
    assert type(lab.option_widgets["c"]).__name__ == "FloatText"
    assert type(lab.option_widgets["rescale"]).__name__ == "Dropdown"  # declared OneOf((0, 1, 2))
    assert list(lab.option_widgets["rescale"].options) == [("0", 0), ("1", 1), ("2", 2)]
    assert type(lab.option_widgets["max_iter"]).__name__ == "IntText"
    assert lab.export_config()["method_options"]["c"] == 0.25
    assert all(s.box.disabled for s in lab.weight_inputs.values())  # cagrad sets its own weights
    lab.ui.method_w.value = "static"
    assert set(lab.option_widgets) == {"normalize"} and not any(s.box.disabled for s in lab.weight_inputs.values())
    lab.close()


@pytest.mark.parametrize("bad,message", [
    ({"lr": "fast"}, "lr must be a finite number"),
    ({"method": "nope"}, "unknown method 'nope'"),
    ({"epochs": 0}, "epochs must be an int"),
    ({"weights": {"cls": -1}}, "weight of task 'cls'"),
    ({"colour": 1}, "unknown config key"),
])
def test_bad_configs_are_refused_with_a_clear_message_in_the_status_line(bad, message):
    with pytest.raises(ValueError, match=message):
        LabConfig.from_dict(bad)
    lab = Lab(LabConfig(**SMALL), name="test-bad")
    lab.ui.config_text.value = json.dumps(bad)
    lab.on_load()
    assert "error" in lab.status_text() and message.split("'")[0] in lab.status_text()
    lab.ui.config_text.value = "{not json"
    lab.on_load()
    assert "not valid JSON" in lab.status_text()
    lab.close()


def test_all_zero_weights_and_bad_option_text_give_status_messages_not_exceptions():
    lab = Lab(LabConfig(**SMALL), name="test-zero")
    for entry in lab.weight_inputs.values():
        entry.set(0.0)
    assert lab.train() is False
    assert "at least one weight must be > 0" in lab.status_text()
    lab.ui.method_w.value = "mgda"
    lab.model_widgets["hidden"].value = "32, many"  # a tuple option typed as numbers
    assert lab.train() is False and "'32, many'" in lab.status_text() and "hidden" in lab.status_text()
    lab.close()


# ---------------------------------------------------------------- running


def test_sync_run_and_background_train_give_the_same_history():
    config = LabConfig(method="static", weights={"cls": 2.0}, **SMALL)
    a = Lab(config, name="test-same-a")
    sync = a.run()
    b = Lab(config, name="test-same-b")
    assert b.train()
    b.handle.join(60)
    assert wait_for(lambda: not b.running)
    background = b.trainer.history
    assert sync.status == background.status == "completed"
    assert comparable(sync) == comparable(background)
    assert a.feed.messages >= 2 and len(a.feed.rows["step"]) == len(sync.steps)
    assert "Test metrics" in a.ui.table.value
    a.close()
    b.close()


def test_stop_takes_effect_quickly_and_train_continues_the_same_run():
    lab = Lab(LabConfig(**{**SMALL, "epochs": 10_000}), name="test-stop")
    assert lab.train()
    assert wait_for(lambda: lab.trainer.global_step > 20)
    started = time.perf_counter()
    lab.stop()
    assert wait_for(lambda: not lab.running, timeout=10)
    latency = time.perf_counter() - started
    print(f"\nStop latency: {latency * 1000:.0f} ms")
    assert latency < 5.0  # generous bound: the measured figure is printed and reported, not asserted tightly
    history = lab.trainer.history
    assert history.status == "stopped"
    steps = lab.trainer.global_step
    trainer = lab.trainer
    assert lab.train()  # continues the same trainer
    assert wait_for(lambda: lab.trainer.global_step > steps + 5)
    assert lab.trainer is trainer
    lab.stop(wait=True)
    assert "stopped" in lab.status_text()
    lab.close()


def test_twenty_train_presses_leak_no_threads_or_figures():
    gc.collect()
    threads_before = set(threading.enumerate())
    figures_before = len(plt.get_fignums())
    lab = Lab(LabConfig(**{**SMALL, "epochs": 10_000}), name="test-leak")
    chart = lab.chart
    for _ in range(20):
        lab.ui.train_b.click()
        lab.ui.train_b.click()  # a second press while it runs is refused, not a second thread
        assert wait_for(lambda: lab.trainer is not None and lab.trainer.global_step > 0)
        lab.ui.stop_b.click()
        assert wait_for(lambda: not lab.running, timeout=10)
        lab.ui.reset_b.click()
    lab.close()
    assert wait_for(lambda: set(threading.enumerate()) <= threads_before, timeout=10)
    assert len(plt.get_fignums()) == figures_before
    assert lab.chart is chart and lab.feed.thread is None


def test_a_new_lab_with_the_same_name_stops_the_old_one():
    old = Lab(LabConfig(**{**SMALL, "epochs": 10_000}), name="test-rerun")
    assert old.train()
    new = Lab(LabConfig(**SMALL), name="test-rerun")
    assert not old.running
    new.close()


def test_slider_changes_during_a_run_are_applied_and_recorded():
    lab = Lab(LabConfig(method="static", **{**SMALL, "epochs": 10_000}), name="test-sliders")
    assert lab.train()
    assert wait_for(lambda: lab.trainer.global_step > 10)
    lab.weight_inputs["reg"].set(4.0)
    step = lab.trainer.global_step
    assert wait_for(lambda: lab.trainer.global_step > step + 20)
    lab.weight_inputs["cls"].set(0.0)
    lab.weight_inputs["yes"].set(0.0)
    step = lab.trainer.global_step
    lab.weight_inputs["reg"].set(0.0)  # all zero: refused, the run goes on with the previous weights
    assert "at least one weight must be > 0" in lab.status_text()
    assert wait_for(lambda: lab.trainer.global_step > step + 20)
    lab.stop(wait=True)
    history = lab.trainer.history
    assert history.weights[0] == [1.0, 1.0, 1.0]
    assert [1.0, 1.0, 4.0] in history.weights
    assert history.weights[-1] == [0.0, 0.0, 4.0]
    notes = [n["weights_set"] for n in history.notes if "weights_set" in n]
    assert {"cls": 1.0, "yes": 1.0, "reg": 4.0} in notes
    lab.close()


class FakeChart:
    """Stands in for the browser chart: records what the feed sends."""

    def __init__(self):
        self.sent, self.handlers = [], []
        self.tasks, self.markers, self.note, self.planned_steps = [], [], "", 0

    def send(self, content, buffers):
        self.sent.append((content, buffers))

    def on_msg(self, handler):
        self.handlers.append(handler)

    def set_tasks(self, names):
        self.tasks = list(names)

    def browser_rows(self, stream):
        """The rows a browser view holds after replaying every message (checks contiguity as the view does)."""
        rows = []
        for content, buffers in self.sent:
            if content["kind"] == "reset":
                index = list(content["streams"]).index(stream)
                rows = unpack(buffers[index], content["streams"][stream])
            elif content["stream"] == stream:
                assert content["start"] == len(rows), "an append must start where the view's rows end"
                rows += unpack(buffers[0], content["cols"])
        return rows


def fake_history(n_steps: int, tasks=("a", "b", "c")) -> History:
    history = History(list(tasks))
    T = len(tasks)
    history.add_steps(list(range(n_steps)), [[1.0 + s + t for t in range(T)] for s in range(n_steps)],
                      [[1.0] * T for _ in range(n_steps)])
    for s in range(0, n_steps, 5):
        history.add_diagnostics({"step": s, "shares": [1 / T] * T, "norms": [1.0] * T,
                                 "cosines": [[1.0 if i == j else -0.5 for j in range(T)] for i in range(T)]})
    return history


def test_chart_feed_sends_every_row_once_in_order_and_thins_long_runs():
    chart = FakeChart()
    feed = ChartFeed(chart, max_points=64, smoothing=0.0)
    history = fake_history(0)
    feed.begin([lambda: history], history.task_names, planned_steps=1000)
    for chunk in range(10):  # the run goes on between flushes
        more = fake_history(100)
        history.add_steps([s + 100 * chunk for s in more.steps], more.losses, more.weights)
        feed.flush()
    rows = chart.browser_rows("step")
    assert len(rows) <= 64 and rows[0][0] == 0.0  # thinned, the early history kept
    steps = [int(r[0]) for r in rows]
    stride = steps[1] - steps[0]
    assert steps == list(range(0, 1000, stride)) and stride == feed.stride["step"] and stride & (stride - 1) == 0
    assert all(r[1:4] == [1.0 + int(r[0]) % 100 + t for t in range(3)] for r in rows)  # each step's own losses
    resets = sum(1 for c, _ in chart.sent if c["kind"] == "reset")
    assert 2 <= resets <= 1 + 5  # the first, then one per doubling of the stride (1000 / 64 → 4 doublings)


def test_chart_feed_answers_a_late_view_with_everything_and_reports_markers():
    chart = FakeChart()
    feed = ChartFeed(chart, smoothing=0.0)
    history = fake_history(40)
    feed.begin([lambda: history], history.task_names, planned_steps=40)
    feed.flush()
    history.add_note({"step": 12, "weights_set": {"a": 2.0, "b": 1.0, "c": 0.0}})
    feed.flush()
    assert chart.markers == [{"step": 12, "label": "w: a=2, b=1, c=0"}]
    chart.sent.clear()
    chart.handlers[0](chart, {"kind": "hello"}, [])
    assert [c["kind"] for c, _ in chart.sent] == ["reset"]
    diag = chart.browser_rows("diag")
    assert len(diag) == 8 and diag[0][1 + 3:1 + 3 + 3] == [-0.5, -0.5, -0.5]  # the three pair cosines
    assert len(chart.browser_rows("step")) == 40


def test_chart_feed_of_a_race_sends_a_step_once_every_racer_has_it_and_switches_the_gradient_panels():
    chart = FakeChart()
    feed = ChartFeed(chart, smoothing=0.0)
    ahead, behind = fake_history(10), fake_history(6)
    behind.diagnostics[0]["shares"] = [0.5, 0.25, 0.25]  # tells the racers' diagnostics apart
    feed.begin([lambda: ahead, lambda: behind], ahead.task_names, planned_steps=10)
    feed.flush()
    rows = chart.browser_rows("step")
    assert feed.columns() == {"step": 1 + 2 * 2 * 3, "diag": 1 + 2 * 3 + 3, "val": 1 + 2 * 3}
    assert [int(r[0]) for r in rows] == list(range(6))  # the slower racer's rows decide
    assert rows[2][1:7] == [3.0, 4.0, 5.0, 3.0, 4.0, 5.0]  # run by run, the tasks in order within each
    more = fake_history(10)
    behind.add_steps(more.steps[6:], more.losses[6:], more.weights[6:])
    feed.flush()
    assert [int(r[0]) for r in chart.browser_rows("step")] == list(range(10))
    assert chart.browser_rows("diag")[0][1:4] == [1 / 3] * 3  # the first racer's gradient panels
    feed.show(1)
    assert chart.browser_rows("diag")[0][1:4] == [0.5, 0.25, 0.25]
    with pytest.raises(ValueError, match="run 2 is not one of the 2 runs"):
        feed.show(2)


def test_chart_feed_rejects_bad_settings():
    with pytest.raises(ValueError, match="rate must be"):
        ChartFeed(FakeChart(), rate=0)
    with pytest.raises(ValueError, match="max_points must be"):
        ChartFeed(FakeChart(), max_points=3)


def test_pace_caps_steps_per_second_and_full_speed_never_waits():
    pace = Pace(20.0)
    pace.origin = (100.0, 0)
    assert pace.delay(10, now=100.0) == pytest.approx(0.5)
    assert pace.delay(10, now=101.0) == 0.0  # behind schedule: no waiting
    pace.set(None, step=10)
    assert pace.delay(10_000) == 0.0
    for bad in (0, -1, float("nan"), "fast", True):
        with pytest.raises(ValueError, match="pace must be"):
            Pace(bad)


def test_a_paced_run_keeps_its_pace_and_stops_at_once():
    lab = Lab(LabConfig(**{**SMALL, "epochs": 10_000}), name="test-pace", pace=40.0)
    assert lab.train()
    assert wait_for(lambda: lab.trainer.global_step >= 5)
    started, first = time.perf_counter(), lab.trainer.global_step
    time.sleep(1.0)
    rate = (lab.trainer.global_step - first) / (time.perf_counter() - started)
    lab.stop()
    assert wait_for(lambda: not lab.running, timeout=5)
    print(f"\npaced at 40 steps/s: measured {rate:.1f}")
    assert rate < 60  # a cap, not a wall-clock assertion of speed: it never runs far above it
    lab.close()


def test_the_panel_keeps_every_value_exactly_as_the_api_would_and_never_clamps():
    config = LabConfig(method="static", weights={"cls": 50.0, "reg": 0.0005}, lr=10.0, epochs=200_000,
                       **{k: v for k, v in SMALL.items() if k not in ("epochs", "lr")})
    lab = Lab(config, name="test-exact")
    assert lab.ui.lr_w.value == 10.0 and lab.ui.epochs_w.value == 200_000
    assert lab.weight_inputs["cls"].value == 50.0 and lab.weight_inputs["reg"].value == 0.0005
    exported = lab.export_config()
    assert exported["lr"] == 10.0 and exported["epochs"] == 200_000 and exported["weights"]["cls"] == 50.0
    lab.ui.device_w.value = "cuda:1"  # absent here: an error naming it, never a run on another device
    assert lab.ui.device_w.value == "cuda:1"
    assert lab.train() is False and "cuda:1" in lab.status_text() and lab.trainer is None
    lab.ui.device_w.value = "gpu"
    assert lab.train() is False and "'gpu'" in lab.status_text()
    lab.close()


def test_step_takes_one_step_and_epoch_finishes_the_epoch():
    lab = Lab(LabConfig(method="equal", **SMALL), name="test-step")
    assert lab.step()
    lab.handle.join(60)
    assert wait_for(lambda: not lab.running) and lab.trainer.global_step == 1
    assert lab.step()
    lab.handle.join(60)
    assert wait_for(lambda: not lab.running) and lab.trainer.global_step == 2
    assert lab.epoch()
    lab.handle.join(60)
    assert wait_for(lambda: not lab.running)
    assert lab.trainer.global_step == lab.trainer.batches_per_epoch and lab.trainer.epoch == 1
    lab.close()


def test_the_panel_prints_relative_change_in_percent_as_the_report_table_does():
    lab = Lab(LabConfig(method="equal", **SMALL), name="test-percent")
    history = lab.run()
    data = lab.trainer.data
    metrics = history.meta["test_metrics"]
    baseline = {t: metrics[t] * (1.25 if data.task(t).higher_is_better else 0.8) for t in data.task_names}
    panel = metrics_html(history, lab.trainer, baseline)
    report = metrics_table({"equal": metrics}, data, baseline)
    run_row = report.splitlines()[-1]
    changes = relative_changes(metrics, baseline, directions(data))
    for t in data.task_names:
        text = percent(changes[t])
        assert text in panel and f"({text})" in run_row
        assert text.endswith(" %") and abs(float(text[:-2]) - changes[t]) <= 0.05
    assert all(abs(v + 20.0) < 1e-6 or abs(v + 25.0) < 1e-6 for v in changes.values())  # percent, not fractions
    assert f"{delta_m(metrics, baseline, directions(data)):+.2f}" in panel and "+0.2" not in panel
    lab.close()


def test_every_finished_run_is_kept_and_a_method_switch_keeps_the_previous_curves():
    lab = Lab(LabConfig(method="static", **SMALL), name="test-pin")
    assert lab.pin() is False and "nothing to keep" in lab.status_text()
    history = lab.run()  # a completed run joins the run list by itself
    assert len(lab.pins) == 1 and len(lab.chart.pinned) == 1
    pin = lab.chart.pinned[0]
    assert pin["x"] == [e["step"] for e in history.epochs] and len(pin["val"]) == 3
    assert pin["label"].startswith("static (cls=1") and pin["color"] == method_color("static") and not pin["hidden"]
    assert lab.ui.run_box.children[0].description.startswith("1: static")
    lab.ui.method_w.value = "pcgrad"
    assert lab.train()
    lab.handle.join(60)
    assert wait_for(lambda: not lab.running)
    assert [p["label"].split(" ")[0] for p in lab.chart.pinned] == ["static", "pcgrad"]
    assert lab.chart.pinned[1]["color"] == method_color("pcgrad")
    lab.ui.run_box.children[0].value = False  # hide the first run
    assert lab.chart.pinned[0]["hidden"] and not lab.chart.pinned[1]["hidden"]
    lab.clear_pins()
    assert lab.chart.pinned == [] and lab.ui.run_box.children == ()
    lab.close()


def test_a_run_continued_after_stop_replaces_its_own_entry():
    lab = Lab(LabConfig(method="equal", **{**SMALL, "epochs": 3}), name="test-keep")
    assert lab.epoch()
    lab.handle.join(60)
    assert wait_for(lambda: not lab.running) and lab.pin()
    assert lab.pin() and len(lab.pins) == 1  # the same run again: one entry
    assert lab.train()
    lab.handle.join(60)
    assert wait_for(lambda: not lab.running)
    assert len(lab.pins) == 1 and len(lab.pins[0]["x"]) == 3
    lab.close()


def test_architectures_that_do_not_fit_the_data_are_not_offered_and_say_why():
    lab = Lab(LabConfig(data="mmoe_synthetic", epochs=1), name="test-fit")
    assert "mtan_lite" not in lab.ui.arch_w.options and "hard" in lab.ui.arch_w.options
    assert "mtan_lite" in lab.ui.arch_note.value and "image inputs" in lab.ui.arch_note.value
    lab.ui.arch_w.value = "mmoe"
    assert {"num_experts", "tower_hidden"} <= set(lab.model_widgets)
    lab.model_widgets["num_experts"].value = 3
    assert lab.export_config()["model_options"] == {"num_experts": 3}
    lab.ui.model_reset_b.click()
    assert lab.export_config()["model_options"] == {}
    lab.close()


def test_fifty_labs_created_and_closed_leave_no_widgets_behind():

    Lab(LabConfig(**SMALL), name="test-widgets-warm").close()
    gc.collect()
    from ipywidgets.widgets.widget import _instances  # the live widget models (Widget.widgets is deprecated)

    before = len(_instances)
    for k in range(50):
        lab = Lab(LabConfig(**SMALL), name=f"test-widgets-{k}")
        lab.ui.method_w.value = "cagrad"  # rebuilt option inputs must be closed too
        lab.close()
    gc.collect()
    assert len(_instances) - before <= 0


# ---------------------------------------------------------------- arena, toy, sweep, comparison


def test_arena_numbers_equal_aggregate():
    widget = GradientArena(methods=("equal", "mgda", "pcgrad", "cagrad", "upgrad"), preset="conflicting")
    G = widget.G
    for result in widget.results:
        d = aggregate(result.method, G, [1.0, 1.0])
        assert result.direction == pytest.approx(d.tolist(), abs=1e-12)
        assert result.norm == pytest.approx(float(d.norm()), abs=1e-12)
        lr = float(widget.lr_w.value)
        assert result.loss_change == pytest.approx((-lr * G @ d).tolist(), abs=1e-12)
    widget.set_gradients([0.0, 90.0, 200.0], [1.0, 2.0, 0.5])
    assert widget.G.shape == (3, 2)
    assert widget.results[0].weights == pytest.approx([1.0] * 3)  # equal: every weight 1
    bad = arena.combine_all(widget.G, ["inverse_loss"], losses=[-1.0, 1.0, 1.0])
    assert bad[0].error
    widget.close()


def test_toy_losses_match_the_papers_formulas():
    def reference(x1: float, x2: float) -> tuple[float, float]:
        a1 = math.log(max(abs(0.5 * (-x1 - 7) - math.tanh(-x2)), 5e-6)) + 6
        a2 = math.log(max(abs(0.5 * (-x1 + 3) + math.tanh(-x2) + 2), 5e-6)) + 6
        b1 = ((-x1 + 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
        b2 = ((-x1 - 7) ** 2 + 0.1 * (-x2 - 8) ** 2) / 10 - 20
        up, down = max(math.tanh(x2 / 2), 0), max(math.tanh(-x2 / 2), 0)
        return up * a1 + down * b1, up * a2 + down * b2

    for point in [(-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0), (0.0, 0.0), (3.0, -8.36), (-7.0, 0.5)]:
        got = toy.toy_losses(torch.tensor(point, dtype=torch.float64)).tolist()
        assert got == pytest.approx(reference(*point), rel=1e-12, abs=1e-12)
    L, G = toy.toy_gradients((1.0, 2.0))
    x = torch.tensor([1.0, 2.0], dtype=torch.float64, requires_grad=True)
    for t in range(2):
        (g,) = torch.autograd.grad(toy.toy_losses(x)[t], x)
        assert G[t].tolist() == pytest.approx(g.tolist())


def test_toy_pareto_set_and_trajectories():
    pareto = toy.pareto_set(n=11)
    assert pareto[0, 0] == pytest.approx(-7.0, abs=1e-3) and pareto[-1, 0] == pytest.approx(7.0, abs=1e-3)
    assert pareto[5].tolist() == pytest.approx([0.0, -8.355], abs=2e-3)
    runs = toy.trajectories(["equal", "mgda"], toy.PAPER_STARTS, steps=60, lr=0.1)
    for paths in runs.values():
        assert len(paths) == 3
        for p in paths:
            assert p.points.shape == (61, 2) and p.weights.shape == (60, 2) and not p.error
            assert float(p.losses[-1].mean()) < float(p.losses[0].mean())
    one = toy.trajectory("equal", (-8.5, -5.0), steps=60, lr=0.1)
    torch.testing.assert_close(one.points, runs["equal"][1].points)
    failed = toy.trajectory("inverse_loss", (-8.5, -5.0), steps=5)
    assert "needs finite losses" in failed.error and failed.steps == 0


def test_sweep_returns_a_front_with_the_expected_number_of_points(toy):
    weights = sweep.ratio_grid(5)
    assert len(weights) == 5 and all(sum(w) == pytest.approx(1.0) for w in weights)
    assert weights[0][0] < weights[-1][0]
    assert len(sweep.simplex_grid(3, 4)) == 3 and len(sweep.simplex_grid(3, 4, interior=False)) == 15
    two = toy.select(["cls", "reg"])
    result = sweep.sweep(two, weights, ("equal", "mgda"), epochs=1, model_options={"hidden": (8,)})
    assert len(result.static) == 5 and [p.method for p in result.adaptive] == ["equal", "mgda"]
    front = result.front()
    assert 1 <= len(front) <= 5
    for i in front:
        for j in range(5):
            assert not sweep.dominates(result.static[j].metrics, result.static[i].metrics, result.higher_is_better)
    assert sweep.front_figure(result) is not None
    assert json.loads(json.dumps(result.to_dict()))["front"] == front


def test_pareto_sweep_widget_and_run_comparison():
    widget = ParetoSweep(data="digits", tasks=("cls", "yes"), points=3, methods=("equal",), epochs=1,
                         model_options={"hidden": [8]})
    result = widget.run()
    assert len(result.static) == 3 and len(result.adaptive) == 1 and widget.image.value
    widget.close()
    lab = Lab(LabConfig(**SMALL), name="test-compare")
    lab.run()
    compare = RunComparison()
    compare.add_lab(lab)
    lab.ui.method_w.value = "mgda"
    lab.run()
    compare.add_lab(lab)
    assert len(compare.runs) == 2 and compare.image.value and "test metrics" in compare.table.value
    lab.close()
    compare.close()


# ---------------------------------------------------------------- the panel's bad inputs (one validation layer)


def set_lr(lab, v):
    lab.ui.lr_w.value = v


PANEL_BAD_INPUTS = [
    ("lr -1", lambda lab: set_lr(lab, -1.0), "-1"),
    ("lr 0", lambda lab: set_lr(lab, 0.0), "0"),
    ("lr nan", lambda lab: set_lr(lab, float("nan")), "nan"),
    ("epochs 0", lambda lab: setattr(lab.ui.epochs_w, "value", 0), "0"),
    ("batch -5", lambda lab: setattr(lab.ui.batch_w, "value", -5), "-5"),
    ("seed -1", lambda lab: setattr(lab.ui.seed_w, "value", -1), "-1"),
    ("device gpu", lambda lab: setattr(lab.ui.device_w, "value", "gpu"), "gpu"),
    ("device cuda:7", lambda lab: setattr(lab.ui.device_w, "value", "cuda:7"), "cuda:7"),
    ("weight -2", lambda lab: lab.weight_inputs["cls"].set(-2.0), "-2"),
    ("weight inf", lambda lab: lab.weight_inputs["cls"].set(float("inf")), "inf"),
    ("hidden text", lambda lab: setattr(lab.model_widgets["hidden"], "value", "64, x"), "64, x"),
    ("no task", lambda lab: [setattr(box, "value", False) for box in lab.task_checks.values()], "at least one task"),
]


@pytest.mark.parametrize("name,spoil,shown", PANEL_BAD_INPUTS, ids=[b[0] for b in PANEL_BAD_INPUTS])
def test_the_panel_reports_a_bad_value_by_name_and_never_trains_on_another(name, spoil, shown):
    lab = Lab(LabConfig(method="static", **SMALL), name=f"test-bad-{name}")
    spoil(lab)
    assert lab.train() is False and lab.trainer is None
    text = lab.status_text()
    assert text.startswith("error") and shown in text, text
    lab.close()


def test_the_lab_trains_partially_labelled_data():
    """The related data set labels each task on its own rows only: the panel trains it like any other."""
    lab = Lab(LabConfig(data="related", method="equal", epochs=1, baselines=False), name="test-related")
    history = lab.run()
    assert history.status == "completed" and lab.feed.rows["step"]
    assert all(math.isfinite(v) for v in history.meta["test_metrics"].values())
    lab.close()


def test_method_options_with_choices_are_choices_in_the_panel():
    from typing import get_args

    from mtl_lab.weighting.mgda import Solver
    from mtl_lab.weighting.solvers import MIN_NORM_SOLVERS

    assert set(get_args(Solver)) == set(MIN_NORM_SOLVERS)  # the annotation names exactly the solvers there are
    lab = Lab(LabConfig(method="mgda", method_options={"normalization": "l2"}, **SMALL), name="test-choices")
    assert {v for _, v in lab.option_widgets["solver"].options} == set(MIN_NORM_SOLVERS)
    assert lab.option_widgets["normalization"].value == "l2"
    assert type(lab.option_widgets["tol"]).__name__ == "OptionalNumber" and lab.option_widgets["tol"].value is None
    lab.option_widgets["tol"].auto.value = False
    lab.option_widgets["tol"].number.value = 1e-6
    assert lab.export_config()["method_options"] == {"normalization": "l2", "tol": 1e-6}
    lab.close()


def test_the_epoch_button_trains_to_the_end_of_the_current_epoch():
    lab = Lab(LabConfig(**SMALL), name="test-step")
    assert lab.epoch()
    lab.handle.join(60)
    assert wait_for(lambda: not lab.running)
    trainer = lab.trainer
    assert trainer.history.status == "paused" and trainer.epoch == 1
    assert trainer.global_step == trainer.batches_per_epoch and trainer.totals.batches == 0
    lab.close()


# ---------------------------------------------------------------- exported notebooks

HANDOUT_FLAGS = ["--HTMLExporter.mathjax_url=", "--HTMLExporter.require_js_url=", "--HTMLExporter.jquery_url="]


class ExportedPage(HTMLParser):
    """The images and the network addresses an exported HTML page refers to."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.remote: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if re.match(r"(https?:)?//", value) and tag != "a":  # a link to read is not a request
                self.remote.append(f"<{tag} {key}={value}>")
        if tag == "img":
            self.images.append(attrs.get("src") or "")


def test_the_html_export_of_notebook_07_shows_every_instrument_as_an_image_offline(tmp_path):
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "07_weight_tuning_lab.ipynb"
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", *HANDOUT_FLAGS, str(notebook),
                    "--output-dir", str(tmp_path)], check=True, capture_output=True, timeout=240)
    page = ExportedPage()
    page.feed((tmp_path / "07_weight_tuning_lab.html").read_text())
    pngs = [base64.b64decode(src.split(",", 1)[1]) for src in page.images if src.startswith("data:image/png;base64,")]
    assert len(pngs) == len(page.images) == 4, "one embedded image per instrument (lab, arena, landscape, sweep)"
    for png in pngs:
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") >= 600  # a chart, not an icon
    assert page.remote == [], f"the page asks the network for {page.remote}"
    outputs = [o.get("data", {}) for c in json.loads(notebook.read_text())["cells"] for o in c.get("outputs", [])]
    texts = ["".join(data["text/plain"]) for data in outputs if "image/png" in data]
    assert [t.split("(")[0] for t in texts] == ["Lab", "GradientArena", "ToyLandscape", "ParetoSweep"]


def test_each_instrument_bundle_holds_its_widget_its_repr_and_a_png_of_its_last_state():
    lab = Lab(LabConfig(method="static", **SMALL), name="test-bundle")
    before = lab._repr_mimebundle_()
    assert before["text/plain"] == repr(lab) and "application/vnd.jupyter.widget-view+json" in before
    lab.run()
    after = lab._repr_mimebundle_()
    assert base64.b64decode(after["image/png"])[:4] == b"\x89PNG" and after["image/png"] != before["image/png"]
    lab.close()


def test_arena_methods_are_toggles_in_their_palette_colours():
    view = GradientArena(methods=("equal", "mgda"), name="test-toggles")
    toggles = view.methods_w
    assert toggles.value == ("equal", "mgda") and toggles.buttons["pcgrad"].style.text_color == method_color("pcgrad")
    toggles.buttons["pcgrad"].value = True  # one click adds a method, no Ctrl-click
    assert [r.method for r in view.results] == ["equal", "mgda", "pcgrad"]
    toggles.buttons["equal"].value = False
    assert toggles.value == ("mgda", "pcgrad") and [r.method for r in view.results] == ["mgda", "pcgrad"]
    with pytest.raises(ValueError, match="unknown method"):
        GradientArena(methods=("equal", "nope"), name="test-toggles-bad")
    view.close()


def test_a_set_up_link_round_trips_and_a_bad_link_is_refused_by_name():
    config = LabConfig(method="static", weights={"reg": 5.0}, lr=0.0123, tasks=["cls", "reg"], **{
        k: v for k, v in SMALL.items() if k != "lr"})
    link = setup_link(config, projector=True)
    again, preset, projector = read_query(link)
    assert again == config and preset is None and projector is True
    assert read_query("") == (None, None, False)
    for bad, message in [("?colour=red", "unknown link key"), ("?setup=%%%", "not a set-up link"),
                         ("?preset=nope", "unknown preset"), ("?projector=yes", "projector must be 0 or 1"),
                         ("?preset=conflict&setup=abc", "either setup= or preset=")]:
        with pytest.raises(ValueError, match=message):
            read_query(bad)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_set_up_with_something_to_look_for(name):
    DATA_CACHE.pop(json.dumps({"name": "digits", "options": {}}, sort_keys=True), None)  # the real digits
    preset = PRESETS[name]
    config = LabConfig.from_dict(preset.config)
    assert read_query(f"?preset={name}")[0] == config and len(preset.look_for) > 40


def test_a_preset_loads_in_the_panel_and_weights_a_method_ignores_are_named_at_once():
    lab = Lab(LabConfig(**SMALL), name="test-preset")
    lab.load_config(LabConfig(method="pcgrad", weights={"reg": 5.0}, **SMALL))
    assert "pcgrad sets its own task weights: the weights reg=5 are not used" in lab.status_text()
    assert ignored_options(LabConfig(method="static", weights={"reg": 5.0})) == []
    lab.close()
    DATA_CACHE.pop(json.dumps({"name": "digits", "options": {}}, sort_keys=True), None)  # the preset's real digits
    lab = Lab(LabConfig(**SMALL), name="test-preset")
    lab.ui.preset_w.value = "ignores-weights"
    assert lab.ui.method_w.value == "pcgrad" and "look for" in lab.ui.look_for.value
    assert "not used" in lab.status_text() and lab.link().startswith("?setup=")
    assert read_query(lab.link())[0] == lab.read_config()
    lab.close()


def test_the_classroom_page_opens_the_set_up_of_its_link():
    from mtl_lab.widgets.classroom import Classroom

    DATA_CACHE.pop(json.dumps({"name": "digits", "options": {}}, sort_keys=True), None)  # the real digits
    config = LabConfig(method="uncertainty", tasks=["digit", "recon"], **SMALL)
    room = Classroom(name="test-room", query=setup_link(config, projector=True))
    assert room.lab.read_config() == config and room.lab.chart.projector is True
    room.close()
    room = Classroom(name="test-room", query="?colour=red")
    assert "link was not used: unknown link key" in room.lab.status_text()
    room.close()


# ---------------------------------------------------------------- the race


def test_a_four_method_race_draws_every_racer_keeps_each_run_and_ends_with_its_delta_m():
    lab = Lab(LabConfig(method="static", weights={"reg": 2.0}, **SMALL), name="test-race")
    lab.race.methods_w.value = ("equal", "static", "pcgrad", "mgda")
    assert lab.race.start()
    assert wait_for(lambda: not lab.race.running and "ended" in lab.status_text())
    trainers = lab.race.trainers
    assert list(trainers) == ["equal", "static", "pcgrad", "mgda"]
    assert [r["color"] for r in lab.chart.racers] == [method_color(m) for m in trainers]
    assert lab.feed.columns()["step"] == 1 + 2 * 4 * 3  # a loss and a weight line per racer and task
    assert list(trainers["static"].weighting.weights) == [1.0, 1.0, 2.0]  # the panel's weights, for all
    assert len({t.global_step for t in trainers.values()}) == 1
    assert [pin["label"].split(" ")[0] for pin in lab.pins] == list(trainers)  # every racer kept
    table = lab.ui.table.value
    for trainer in trainers.values():  # metric per task and Δm % against the first racer
        metrics = trainer.history.meta["test_metrics"]
        up = directions(trainer.data)
        assert f"{metrics['cls']:.4f}" in table
        assert percent(delta_m(metrics, trainers["equal"].history.meta["test_metrics"], up)) in table
    assert "against the first racer (equal)" in table
    lab.race.show("pcgrad")
    assert lab.feed.shown == 2 and "gradient panels: pcgrad" in lab.chart.title
    lab.close()


def test_stop_ends_every_racer_at_the_same_step_and_a_bad_race_is_named_in_the_status_line():
    lab = Lab(LabConfig(method="equal", **SMALL), name="test-race-stop", pace=20.0)
    lab.race.methods_w.value = ("equal",)
    assert not lab.race.start() and "race not started: a race takes 2 to 4 methods, got 1" in lab.status_text()
    lab.race.methods_w.value = ("equal", "mgda", "uncertainty")
    assert lab.race.start()
    assert lab.ui.train_b.disabled and lab.race.start_b.disabled
    assert not lab.race.start()  # one race at a time
    assert wait_for(lambda: lab.race.runner.step >= 7)  # past the first epoch: a run is kept from one epoch on
    lab.stop(wait=True)
    assert wait_for(lambda: not lab.race.running)
    steps = {t.global_step for t in lab.race.trainers.values()}
    assert len(steps) == 1 and steps.pop() < lab.race.trainers["equal"].config.epochs * 6
    assert {t.history.status for t in lab.race.trainers.values()} == {"stopped"}
    assert not lab.ui.train_b.disabled and len(lab.pins) == 3
    lab.close()


def test_a_race_travels_in_the_link_and_the_classroom_page_opens_it():
    from mtl_lab.widgets.classroom import Classroom

    lab = Lab(LabConfig(method="equal", **SMALL), name="test-race-link")
    lab.race.methods_w.value = ("equal", "pcgrad", "mgda")
    link = lab.race.link()
    assert link.endswith("&race=equal,pcgrad,mgda") and read_race(link) == ["equal", "pcgrad", "mgda"]
    assert read_query(link)[0] == lab.read_config() and read_race("?preset=conflict") is None
    lab.close()
    for bad, message in [("?race=equal", "2 to 4 methods, got 1"), ("?race=equal,equal", "repeated"),
                         ("?race=equal,famo", "race method 'famo' is not one of")]:
        with pytest.raises(ValueError, match=message):
            read_race(bad)
    DATA_CACHE.pop(json.dumps({"name": "digits", "options": {}}, sort_keys=True), None)  # the real digits
    room = Classroom(name="test-room", query="?preset=conflict&race=mgda,pcgrad,equal")
    assert room.lab.race.methods_w.value == ("equal", "pcgrad", "mgda") and room.lab.ui.method_w.value == "equal"
    room.close()
    room = Classroom(name="test-room", query="?race=equal,famo")
    assert "link was not used: race method 'famo'" in room.lab.status_text()
    room.close()


def test_a_task_keeps_its_colour_and_dash_in_the_swatches_and_the_chart_when_another_is_switched_off():
    lab = Lab(LabConfig(method="static", **SMALL), name="test-swatches")
    lab.task_checks["cls"].value = False  # the data set's first task
    chart = lab.chart
    assert chart.tasks == ["yes", "reg"]
    for task, color, dash in zip(chart.tasks, chart.colors, chart.dashes):
        entry = lab.weight_inputs[task]
        assert (entry.color, list(entry.dash)) == (color, dash)
        assert color in entry.label.value
    assert chart.colors == [task_color(1), task_color(2)] and chart.dashes == [list(task_dash(1)), list(task_dash(2))]
    lab.run()  # the run's chart (its tasks only) keeps the same colours
    assert chart.tasks == ["yes", "reg"] and chart.colors == [task_color(1), task_color(2)]
    lab.close()



def test_full_speed_shows_as_chosen_in_the_pace_menu():
    lab = Lab(LabConfig(method="equal", **SMALL), name="test-pace-menu", pace=None)
    assert lab.ui.pace_w.label == "full speed" and lab.pace.steps_per_second is None
    lab.set_pace(25.0)
    assert lab.ui.pace_w.label.startswith("25 steps/s")
    lab.ui.pace_w.index = 0
    assert lab.pace.steps_per_second is None and lab.ui.pace_w.label == "full speed"
    lab.set_pace(7.0)  # a pace given in code is offered as it is
    assert lab.ui.pace_w.label == "7 steps/s" and lab.pace.steps_per_second == 7.0
    lab.close()


def test_the_classroom_page_command_denies_each_extension_by_its_own_flag():
    """Voila reads the denylist from the command line as written: one flag per name (a Python list written as
    one value was read as a single, unknown name and denied nothing)."""
    pytest.importorskip("voila")
    from voila.app import Voila
    from voila.configuration import VoilaConfiguration

    from mtl_lab.widgets.classroom import NOT_ON_THE_PAGE, voila_command

    app = Voila()
    app.parse_command_line([a for a in voila_command(token=False) if a.startswith("--VoilaConfiguration.")])
    assert VoilaConfiguration(config=app.config).extension_denylist == NOT_ON_THE_PAGE



def test_the_synchronous_race_is_the_background_race_step_for_step():
    lab = Lab(LabConfig(method="equal", **SMALL), name="test-race-sync")
    lab.race.methods_w.value = ("equal", "pcgrad", "uncertainty")
    histories = lab.race.run()
    assert {m: h.status for m, h in histories.items()} == dict.fromkeys(["equal", "pcgrad", "uncertainty"],
                                                                         "completed")
    assert len(lab.pins) == 3 and "Δm %" in lab.ui.table.value and not lab.ui.train_b.disabled
    assert lab.race.start()
    assert wait_for(lambda: not lab.race.running and "ended" in lab.status_text())
    for method, trainer in lab.race.trainers.items():
        assert trainer.history.losses == histories[method].losses
        assert trainer.history.meta["test_metrics"] == histories[method].meta["test_metrics"]
    lab.race.methods_w.value = ("equal",)
    with pytest.raises(ValueError, match="a race takes 2 to 4 methods, got 1"):
        lab.race.run()
    lab.close()
