"""The Lab's record cadence: every step at a capped pace; at full speed the trainer's own cadence, or more
often when steps are slow, so the chart takes rows at least 10 times a second."""

import pytest

from mtl_lab.widgets import Lab, LabConfig
from mtl_lab.widgets.pace import RecordCadence

SMALL = dict(data="digits", tasks=["digit", "parity"], model_options={"hidden": [16]}, epochs=1, baselines=False)


def test_capped_pace_records_every_step():
    cadence = RecordCadence(full=10)
    assert cadence.every(capped=True) == 1
    assert cadence.every(capped=False) == 10


@pytest.mark.parametrize(("steps", "seconds", "expected"), [
    (1000, 1.0, 10),  # 1000 steps/s: 100 rows/s would be more than needed; the trainer's own 10
    (300, 1.0, 10),  # 300 steps/s: every 10 steps is 30 moves a second, enough
    (50, 1.0, 5),  # 50 steps/s: every 5 steps, 10 moves a second
    (100, 1.0, 10),  # 100 steps/s: every 10 steps is exactly 10 moves a second
    (99, 1.0, 9),  # every 10 would be 9.9 moves a second: every 9
    (10, 1.0, 1),  # a dense model at 10 steps/s: every step (it would move once a second at 10)
    (1, 2.0, 1),  # slower than a step a second: still every step, never 0
])
def test_full_speed_follows_the_measured_speed(steps, seconds, expected):
    cadence = RecordCadence(full=10)
    cadence.moved(40, 100.0)
    cadence.moved(40 + steps, 100.0 + seconds)
    assert cadence.every(capped=False) == expected
    assert cadence.every(capped=True) == 1


def test_a_new_trainer_starts_from_its_own_cadence():
    cadence = RecordCadence(full=10)
    cadence.moved(0, 0.0)
    cadence.moved(10, 1.0)
    assert cadence.every(capped=False) == 1
    cadence.restart(25)
    assert cadence.every(capped=False) == 25
    cadence.moved(10, 5.0)  # the first move of the new trainer: nothing to measure yet
    cadence.moved(10, 6.0)  # no steps, no measurement
    assert cadence.every(capped=False) == 25


def test_a_pause_between_runs_is_not_measured():
    cadence = RecordCadence(full=10)
    cadence.moved(100, 1.0)
    cadence.begin()  # Stop, a minute's pause, Train again
    cadence.moved(110, 61.0)  # would read as 10 steps in 60 s without begin()
    assert cadence.every(capped=False) == 10


def test_the_lab_records_every_step_when_its_steps_are_slow():
    lab = Lab(LabConfig(**SMALL), name="test-cadence")
    try:
        trainer = lab.build(lab.read_config(), callback=None)
        lab.trainer = trainer
        assert trainer.records.every == 10  # full speed, nothing measured yet
        lab.follow_speed(trainer, now=100.0)  # the run's first move
        assert trainer.records.every == 10
        trainer.global_step = 5
        lab.follow_speed(trainer, now=101.0)  # 5 steps in a second
        assert trainer.records.every == 1
        trainer.global_step = 1005
        lab.follow_speed(trainer, now=102.0)  # 1000 steps in a second
        assert trainer.records.every == 10
    finally:
        lab.close()
