"""One colour language: a colour means one thing in every view."""

from mtl_lab.palette import CONFLICT, TASK_COLORS, cosine_color, method_color, task_color
from mtl_lab.weighting import METHODS


def test_every_method_has_its_own_colour_and_none_is_a_task_colour_or_conflict_red():
    colours = {name: method_color(name).lower() for name in METHODS}
    assert len(set(colours.values())) == len(colours), "two methods share a colour"
    task = {c.lower() for c in TASK_COLORS}
    assert not set(colours.values()) & (task | {CONFLICT.lower()})
    unregistered = method_color("a-method-added-later").lower()  # derived from the name, dark, not a task's
    assert unregistered.startswith("#") and len(unregistered) == 7 and unregistered not in task | {CONFLICT.lower()}
    assert unregistered == method_color("a-method-added-later").lower() and unregistered != method_color("another")


def test_task_colours_are_distinct_and_never_conflict_red():
    assert len(set(TASK_COLORS)) == len(TASK_COLORS) and CONFLICT not in TASK_COLORS
    assert task_color(0) == task_color(len(TASK_COLORS))


def test_cosine_scale_runs_from_conflict_red_through_white_to_grey():
    assert cosine_color(-1.0) == CONFLICT.lower()
    assert cosine_color(0.0) == "#f7f7f7" and cosine_color(1.0) == "#404040"
    assert cosine_color(float("nan")) == "#f7f7f7" and cosine_color(-7) == CONFLICT.lower()
