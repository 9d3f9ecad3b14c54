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
    cadence.observe(steps, seconds)
    assert cadence.every(capped=False) == expected
    assert cadence.every(capped=True) == 1


def test_a_new_trainer_starts_from_its_own_cadence():
    cadence = RecordCadence(full=10)
    cadence.observe(10, 1.0)
    cadence.restart(25)
    assert cadence.every(capped=False) == 25
    cadence.observe(0, 1.0)  # no steps, no measurement
    assert cadence.every(capped=False) == 25


def test_the_lab_records_every_step_when_its_steps_are_slow():
    lab = Lab(LabConfig(**SMALL), name="test-cadence")
    try:
        trainer = lab.build(lab.read_config(), callback=None)
        lab.trainer = trainer
        assert trainer.records.every == 10  # full speed, nothing measured yet
        lab.last_move = (100.0, 0)
        trainer.global_step = 5
        lab.follow_speed(trainer, now=101.0)  # 5 steps in a second
        assert trainer.records.every == 1
        lab.last_move = (200.0, 5)
        trainer.global_step = 1005
        lab.follow_speed(trainer, now=201.0)  # 1000 steps in a second
        assert trainer.records.every == 10
    finally:
        lab.close()
