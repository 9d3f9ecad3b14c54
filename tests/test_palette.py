"""One colour language: a colour means one thing in every view, and colour is never the only cue."""

import itertools

import pytest

from mtl_lab.colour_vision import closest_pair, delta_e, hex_to_linear, simulate
from mtl_lab.palette import (
    ALIGNED,
    CONFLICT,
    CORE_METHODS,
    TASK_COLORS,
    TASK_DASHES,
    TASK_MARKERS,
    cosine_color,
    method_color,
    task_color,
    task_dash,
    task_linestyle,
    task_marker,
)
from mtl_lab.weighting import METHODS


def test_every_method_has_its_own_colour_and_none_is_a_task_colour_or_the_conflict_colour():
    colours = {name: method_color(name).lower() for name in METHODS}
    assert len(set(colours.values())) == len(colours), "two methods share a colour"
    task = {c.lower() for c in TASK_COLORS}
    assert not set(colours.values()) & (task | {CONFLICT.lower()})
    unregistered = method_color("a-method-added-later").lower()  # derived from the name, dark, not a task's
    assert unregistered.startswith("#") and len(unregistered) == 7 and unregistered not in task | {CONFLICT.lower()}
    assert unregistered == method_color("a-method-added-later").lower() and unregistered != method_color("another")


def test_task_colours_are_distinct_and_never_the_conflict_colour():
    assert len(set(TASK_COLORS)) == len(TASK_COLORS) and CONFLICT not in TASK_COLORS
    assert task_color(0) == task_color(len(TASK_COLORS))


def test_machado_simulation_matches_the_published_matrices_and_known_differences():
    # white stays white and black stays black under each matrix (its rows sum to 1)
    for vision in ("protanopia", "deuteranopia", "tritanopia"):
        assert simulate("#ffffff", vision) == pytest.approx((1, 1, 1), abs=1e-3)
        assert simulate("#000000", vision) == (0, 0, 0)
    assert hex_to_linear("#808080")[0] == pytest.approx(0.2158605, abs=1e-6)  # sRGB decoding of 128
    # pure red and green, told apart by 86 ΔE with normal vision, nearly merge for a deuteranope
    assert delta_e("#ff0000", "#00ff00") > 80 and delta_e("#ff0000", "#00ff00", "deuteranopia") < 40
    # the former matplotlib-tab10 task colours failed exactly where the lab noticed (8.0 and 4.6 ΔE)
    old = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    assert closest_pair(old, "deuteranopia")[0] == pytest.approx(7.97, abs=0.05)
    assert closest_pair(old, "protanopia")[0] == pytest.approx(4.64, abs=0.05)
    with pytest.raises(ValueError, match="vision must be one of"):
        simulate("#ffffff", "achromatopsia")
    with pytest.raises(ValueError, match="'#rrggbb'"):
        hex_to_linear("red")


@pytest.mark.parametrize("vision, floor", [("normal", 15), ("deuteranopia", 15), ("protanopia", 15),
                                           ("tritanopia", 12)])
def test_first_four_task_colours_stay_apart_under_simulated_colour_vision_deficiency(vision, floor):
    gap, a, b = closest_pair(TASK_COLORS[:4], vision)
    assert gap >= floor, f"{a} and {b} are {gap:.1f} ΔE apart under {vision}"


@pytest.mark.parametrize("vision", ["deuteranopia", "protanopia", "tritanopia"])
def test_core_methods_stay_apart_under_simulated_colour_vision_deficiency(vision):
    gap, a, b = closest_pair([method_color(m) for m in CORE_METHODS], vision)
    assert gap >= 20, f"{a} and {b} are {gap:.1f} ΔE apart under {vision}"


def test_every_task_also_differs_by_its_dash_and_its_marker():
    n = len(TASK_COLORS)
    assert len(TASK_DASHES) == len(TASK_MARKERS) == n
    assert len({task_dash(i) for i in range(n)}) == n and len({task_marker(i) for i in range(n)}) == n
    assert task_linestyle(0) == "-" and task_linestyle(1) == (0, (6, 3))
    assert task_dash(n) == task_dash(0) and task_marker(n + 2) == task_marker(2)


def test_cosine_scale_runs_from_conflict_orange_through_white_to_blue_and_survives_deficiencies():
    assert cosine_color(-1.0) == CONFLICT.lower() and cosine_color(1.0) == ALIGNED.lower()
    assert cosine_color(0.0) == "#f7f7f7" and cosine_color(float("nan")) == "#f7f7f7"
    assert cosine_color(-7) == CONFLICT.lower()
    for vision in ("normal", "deuteranopia", "protanopia", "tritanopia"):
        ends = [cosine_color(-1.0), cosine_color(0.0), cosine_color(1.0)]
        assert min(delta_e(a, b, vision) for a, b in itertools.combinations(ends, 2)) > 50, vision
        # conflict grows monotonically more distinct from "no relation" as the cosine falls
        gaps = [delta_e(cosine_color(-c), "#f7f7f7", vision) for c in (0.25, 0.5, 0.75, 1.0)]
        assert gaps == sorted(gaps), vision
