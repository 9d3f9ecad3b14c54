"""The steps/s a view shows is the run's own: read from the run's clock, never dragged down by the single-task
baselines trained after it (each baseline says its own rate), by the test evaluation or by a pause.

The baselines are made slow on purpose (a sleep in each of their steps, several times the main run's time
per step), and the rates are compared with the runs' own clocks — relations, never the machine's speed."""

from __future__ import annotations

import json
import re
import time
import types

import pytest

pytest.importorskip("ipywidgets")

from lab_waiting import toy_as_digits, wait_for  # noqa: E402

from mtl_lab.training import ending  # noqa: E402
from mtl_lab.training.ending import RunClock  # noqa: E402
from mtl_lab.widgets import Lab, LabConfig, run_table  # noqa: E402
from mtl_lab.widgets.run_status import progress_text  # noqa: E402

SMALL = {"epochs": 2, "model_options": {"hidden": [16]}, "batch_size": 32, "lr": 1e-2}
RATE = re.compile(r"(\d+) steps/s")
SLOWER = 3.0  # each baseline step sleeps this many times the main run's seconds per step


@pytest.fixture(autouse=True)
def toy_data_set():
    with toy_as_digits():  # every run takes well under a second
        yield


def rate_in(text: str) -> int:
    found = RATE.findall(text)
    assert len(found) == 1, text
    return int(found[0])


def own_rate(trainer) -> float:
    """Steps over the run's own clock, the whole run (the clock stopped at its end)."""
    assert trainer.clock.started is None  # the run has ended: its clock stands still
    return trainer.global_step / trainer.clock.seconds


def slow_baselines(monkeypatch, seconds_per_step) -> list:
    """Every single-task baseline the panel builds sleeps ``seconds_per_step()`` in each of its steps (its own
    time: it shows in its own rate); returns the list the baseline trainers are put in."""
    built = []
    real = run_table.build_trainer

    def build(*args, **kwargs):
        trainer = real(*args, **kwargs)
        step = trainer.train_step

        def slow_step(*a, **k):
            time.sleep(seconds_per_step())
            return step(*a, **k)

        trainer.train_step = slow_step
        built.append(trainer)
        return trainer

    monkeypatch.setattr(run_table, "build_trainer", build)
    return built


def record_statuses(lab: Lab) -> list[tuple[str, str]]:
    """Every ``(state, text)`` the lab's status line shows from now on."""
    shown = []
    show = lab.show_status

    def record(state: str, text: str, color: str = "#333") -> None:
        shown.append((state, text))
        show(state, text, color)

    lab.show_status = record
    return shown


def main_seconds_per_step(lab: Lab) -> float:
    trainer = lab.trainer
    return trainer.clock.seconds / max(trainer.global_step, 1)


# ---------------------------------------------------------------- the clock


def test_the_run_clock_counts_only_while_a_loop_runs_and_gives_the_rate_since_an_origin(monkeypatch):
    now = [10.0]
    monkeypatch.setattr(ending, "time", types.SimpleNamespace(perf_counter=lambda: now[0]))
    clock = RunClock()
    now[0] = 50.0  # before the first loop: nothing counted
    assert clock.elapsed() == 0.0 and clock.steps_per_second(0) == 0.0
    clock.start()
    now[0] = 52.0
    assert clock.elapsed() == 2.0 and clock.steps_per_second(10) == 5.0
    clock.stop()
    now[0] = 80.0  # between loops (test split, baselines, a pause): the clock stands still
    assert clock.elapsed() == 2.0 and clock.steps_per_second(10) == 5.0
    clock.stop()  # a second stop adds nothing
    assert clock.seconds == 2.0
    origin = (clock.elapsed(), 10)  # the run goes on from step 10
    clock.start()
    now[0] = 83.0
    assert clock.elapsed() == 5.0
    assert clock.steps_per_second(40, origin) == 10.0  # 30 steps in the 3 s since the origin
    assert clock.steps_per_second(40) == 8.0  # 40 steps in 5 s of the whole run


# ---------------------------------------------------------------- the lab


@pytest.mark.parametrize("path", ["train", "run"])
def test_the_lab_rate_is_the_main_runs_own_and_each_baseline_says_its_own(monkeypatch, path):
    lab = Lab(LabConfig(method="equal", baselines=True, **SMALL), name=f"test-rate-{path}")
    built = slow_baselines(monkeypatch, lambda: SLOWER * main_seconds_per_step(lab))
    shown = record_statuses(lab)
    if path == "train":  # the panel's Train button: the run and its baselines in the training thread
        assert lab.train()
        assert wait_for(lambda: not lab.running and "Δm" in lab.ui.table.value)
    else:
        lab.run()
    trainer = lab.trainer
    assert trainer.history.status == "completed" and len(built) == 3  # one baseline per task, all trained
    state, text = shown[-1]
    assert state == "completed" and f"step {trainer.global_step}/{trainer.global_step}" in text
    main = own_rate(trainer)
    assert abs(rate_in(text) - main) <= 1  # the main run's steps over the main run's own time
    baseline_seconds = sum(b.clock.seconds for b in built)
    assert baseline_seconds > SLOWER * trainer.clock.seconds  # they were slow: counting them would show it
    everything = trainer.global_step / (trainer.clock.seconds + baseline_seconds)
    assert rate_in(text) > 2 * everything + 1
    for k, baseline in enumerate(built):  # each baseline's last line: its own steps over its own time
        label = f"single-task baseline {k + 1}/3 ({baseline.task_names[0]}) for Δm · "
        lines = [t for s, t in shown if s == "baselines" and t.startswith(label)]
        assert lines, f"no status line of {label!r}"
        assert f"step {baseline.global_step}/{baseline.global_step}" in lines[-1]
        assert abs(rate_in(lines[-1]) - own_rate(baseline)) <= 1
        assert own_rate(baseline) < main / 2  # the slow baselines did not borrow the main run's rate
    lab.close()


def test_a_run_that_goes_on_after_a_pause_counts_from_where_it_went_on(monkeypatch):
    lab = Lab(LabConfig(method="equal", baselines=False, **SMALL), name="test-rate-resume")
    assert lab.step()
    assert wait_for(lambda: not lab.running)
    trainer = lab.trainer
    paused_at = (trainer.clock.elapsed(), trainer.global_step)
    assert trainer.history.status == "paused" and paused_at[1] == 1
    time.sleep(0.2)  # the pause is nobody's run time
    assert trainer.clock.elapsed() == paused_at[0]
    assert lab.train()
    assert wait_for(lambda: not lab.running and trainer.history.status == "completed")
    assert lab.rate_origin == paused_at
    expected = (trainer.global_step - paused_at[1]) / (trainer.clock.seconds - paused_at[0])
    assert abs(rate_in(lab.status_text()) - expected) <= 1
    assert progress_text(trainer, paused_at) in lab.status_text()
    lab.close()


# ---------------------------------------------------------------- the race


def test_a_race_never_shows_a_rate_with_the_baselines_time_and_its_baselines_say_their_own(monkeypatch):
    lab = Lab(LabConfig(method="equal", baselines=True, **SMALL), name="test-rate-race")
    lab.race.methods_w.value = ("equal", "pcgrad")

    def seconds_per_step() -> float:
        first = next(iter(lab.race.trainers.values()))
        return SLOWER * first.clock.seconds / max(first.global_step, 1)

    built = slow_baselines(monkeypatch, seconds_per_step)
    shown = record_statuses(lab)
    assert lab.race.start()
    assert wait_for(lambda: not lab.race.running and "ended" in lab.status_text())
    racer = lab.race.trainers
    assert {t.history.status for t in racer.values()} == {"completed"} and len(built) == 3
    assert "single-task baselines" in lab.ui.table.value
    first_baseline = next(i for i, (s, _) in enumerate(shown) if s == "baselines")
    race_rates = [rate_in(t) for s, t in shown[:first_baseline] if s == "race" and "steps/s" in t]
    after = [(s, t) for s, t in shown[first_baseline:] if s != "baselines"]
    assert after and all("steps/s" not in t for _, t in after)  # the race's end says no rate
    assert all(rate > 0 for rate in race_rates)
    for k, baseline in enumerate(built):
        label = f"single-task baseline {k + 1}/3 ({baseline.task_names[0]}) for Δm · "
        lines = [t for s, t in shown if s == "baselines" and t.startswith(label)]
        assert lines and abs(rate_in(lines[-1]) - own_rate(baseline)) <= 1
    lab.close()


# ---------------------------------------------------------------- the command line


def test_the_command_lines_run_times_are_each_runs_own_and_only_the_total_holds_the_baselines(
        monkeypatch, tmp_path):
    """``mtl-lab run`` shows no rate of its own beyond each run's progress bar (closed at the run's end,
    before the baselines); its report keeps each run's own ``train_seconds`` and names the total wall time
    as the runs' and the baselines'. Slow baselines must land in the total only."""
    from mtl_lab import cli

    pause = 1.0  # well above the report's own overheads (building, test splits), so a leak could not hide
    real = cli.single_task_baselines

    def slow(*args, **kwargs):
        time.sleep(pause)
        return real(*args, **kwargs)

    monkeypatch.setattr(cli, "single_task_baselines", slow)
    out = tmp_path / "report"
    assert cli.main(["run", "--data", "linnerud", "--methods", "equal,pcgrad", "--epochs", "2", "--batch-size", "4",
                     "--hidden", "8", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    own = [run["train_seconds"] for run in metrics["runs"].values()]
    assert all(seconds > 0 for seconds in own)
    assert sum(own) <= metrics["total_seconds"] - pause + 0.01  # the baselines' time is in no run's own time
    assert "wall time for all runs and baselines" in (out / "report.md").read_text()
