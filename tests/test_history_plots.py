import json

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from mtl_lab import plots
from mtl_lab.history import History, load_runs
from mtl_lab.palette import CONFLICT, task_dash, task_marker
from mtl_lab.training import build_trainer

FAST = {"epochs": 2, "batch_size": 32, "lr": 1e-2, "diagnostics_every": 2, "model_options": {"hidden": (16,)}}


@pytest.fixture
def history(toy) -> History:
    return build_trainer(toy, **FAST).fit()


def test_json_round_trip(history, tmp_path):
    text = history.to_json()
    json.loads(text)  # valid JSON
    again = History.from_json(text)
    assert again == history and again.diagnostics == history.diagnostics and again.epochs == history.epochs
    path = history.save(tmp_path / "h.json")
    assert History.load(path) == history
    (tmp_path / "runs.json").write_text(json.dumps({"runs": {"a": history.to_dict()}}))
    assert load_runs(tmp_path / "runs.json")["a"] == history
    with pytest.raises(ValueError, match="not a History"):
        History.from_dict({"steps": []})


def test_snapshot_is_independent(history):
    snap = history.snapshot()
    snap.losses.append([0.0] * history.n_tasks)
    snap.meta["status"] = "changed"
    history.add_diagnostics({"step": 99})
    assert len(history.losses) == len(snap.losses) - 1 and history.status == "completed"
    assert snap.diagnostics == history.diagnostics[:-1]


def test_series_accessors(history):
    steps, values = history.loss_series("yes")
    assert steps == history.steps and values == [row[1] for row in history.losses]
    epochs, val = history.epoch_series("val_metric", "cls")
    assert epochs == [1, 2] and all(0 <= v <= 1 for v in val)
    with pytest.raises(KeyError, match="no task 'depth'"):
        history.loss_series("depth")


def test_signature_figure_draws_both_halves(history):
    fig = plots.signature_figure(history)
    losses, weights, shares, cosines, colorbar = fig.axes
    assert len(losses.lines) == 2 * history.n_tasks  # train and validation per task
    assert len(weights.lines) == history.n_tasks
    assert len(shares.collections) >= history.n_tasks  # one stacked band per task
    strip = cosines.images[0].get_array()  # the cosines are a heat strip: one row per task pair
    assert strip.shape == (3, len(history.diagnostics)) and not cosines.lines
    assert cosines.images[0].cmap(0.0)[:3] == pytest.approx(tuple(int(CONFLICT[k:k + 2], 16) / 255 for k in (1, 3, 5)))
    # every task differs by a second cue besides colour: dash in the lines, marker in the validation points
    def dashes(lines):
        return [line._unscaled_dash_pattern[1] or () for line in lines]  # the on/off lengths as drawn

    assert dashes(losses.lines[0::2]) == dashes(weights.lines) == [task_dash(i) for i in range(3)]
    assert len(set(dashes(weights.lines))) == 3
    assert [line.get_marker() for line in losses.lines[1::2]] == [task_marker(i) for i in range(3)]
    png = plots.to_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_static_figures_are_crisp_readable_and_never_clipped(history, toy):
    other = build_trainer(toy, "hard", "static", method_options={"weights": [1, 2, 3]}, **FAST).fit()
    for fig in (plots.signature_figure(history), plots.comparison_figure({"equal": history, "static": other})):
        png = plots.to_png(fig)
        width = int.from_bytes(png[16:20], "big")
        assert width >= 2 * plots.display_width(fig) - 2  # twice the density it is shown at
        renderer = FigureCanvasAgg(fig).get_renderer()
        fig.draw(renderer)
        for text in fig.findobj(Text):
            if text.get_text() and text.get_visible():  # ≥ 11 px when shown (1 pt = DISPLAY_DPI / 72 px)
                assert text.get_fontsize() * plots.DISPLAY_DPI / 72 >= 11, (text.get_text(), text.get_fontsize())
        drawn, page = fig.get_tightbbox(renderer), fig.bbox_inches  # everything drawn, labels included
        assert drawn.x0 >= page.x0 - 0.01 and drawn.y0 >= page.y0 - 0.01, "a label is cut at the left or bottom"
        assert drawn.x1 <= page.x1 + 0.01 and drawn.y1 <= page.y1 + 0.01, "a label is cut at the right or top"


def test_the_share_band_says_why_a_share_leaves_zero_to_one(history):
    h = History.from_dict(history.to_dict())
    h.diagnostics[-1]["shares"] = [1.3, 0.0, -0.3]
    fig = plots.signature_figure(h)
    assert "opposes the step" in fig.axes[2].get_title() and "more than 1" in fig.axes[2].get_title()
    even = History.from_dict({**history.to_dict(),
                              "diagnostics": [{**d, "shares": [1 / 3] * 3} for d in history.diagnostics]})
    assert "opposes" not in plots.signature_figure(even).axes[2].get_title()


def test_signature_figure_says_why_diagnostics_are_missing(toy):
    h = build_trainer(toy, **{**FAST, "diagnostics_every": 0}).fit()
    fig = plots.signature_figure(h)
    texts = [t.get_text() for t in fig.axes[2].texts]
    assert any("off" in t for t in texts)


def test_comparison_figure(history, toy):
    other = build_trainer(toy, "hard", "static", method_options={"weights": [1, 2, 3]}, **FAST).fit()
    fig = plots.comparison_figure({"equal": history, "static": other})
    drawn = [ax for ax in fig.axes if ax.axison]
    titles = [ax.get_title() for ax in drawn]
    # the MSE-scored regression task has one panel (its metric is its loss); the others two; no row repeats
    assert len(drawn) == 5 and all(len(ax.lines) == 2 for ax in drawn) and len(set(titles)) == 5
    assert sum("reg" in t for t in titles) == 1
    assert fig.get_figwidth() <= 13.4  # one 16:9 slide
    with pytest.raises(ValueError, match="at least one"):
        plots.comparison_figure({})


def test_static_figures_colour_a_task_by_its_slot_in_the_data_set(history):
    """A run of some of a data set's tasks keeps each task's colour and dash (``meta["task_slots"]``)."""
    from matplotlib import colors as mcolors

    from mtl_lab.palette import task_color

    first = history.task_names[0]
    history.update_meta(task_slots={first: 3})
    fig = plots.signature_figure(history)
    lines = [line for line in fig.axes[0].get_lines() if line.get_label() == f"{first} train"]
    assert lines and mcolors.to_hex(lines[0].get_color()) == mcolors.to_hex(task_color(3))
    assert plots.task_slots(history)[0] == 3
    history.update_meta(task_slots={})
    assert plots.task_slots(history) == list(range(len(history.task_names)))


def test_the_lab_writes_each_tasks_slot_in_the_data_set():
    from mtl_lab.widgets import Lab, LabConfig

    lab = Lab(LabConfig(data="digits", tasks=["parity", "recon"], model_options={"hidden": [16]}, epochs=1,
                        baselines=False), name="test-slots")
    try:
        trainer = lab.build(lab.read_config(), callback=None)
        assert trainer.history.meta["task_slots"] == {"parity": 1, "recon": 3}  # digit, parity, ge5, recon, ink
        assert plots.task_slots(trainer.history) == [1, 3]
    finally:
        lab.close()
