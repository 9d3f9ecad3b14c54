"""Every option of every registered method gets one verdict, with one message, on every surface.

The surfaces: the API (``create`` and a reset for the tasks), ``aggregate``, the command line
(``mtl-lab run --option METHOD.NAME=VALUE``, run in-process up to the point where training would start)
and ``LabConfig``. The values: booleans, numeric strings, ``'no'``, NaN, ±inf, negatives, zero, lists,
``None`` and values the declaration allows. Besides agreeing, the verdict must follow the declaration:
a bool is never a number, a string never a number or a bool, NaN and inf never a number.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl_lab import cli
from mtl_lab.validate import Flag, Integer, Number, Numbers, OneOf, TaskWeights
from mtl_lab.weighting import METHODS, aggregate, create
from mtl_lab.weighting.cr_mogm import InnerMethod
from mtl_lab.widgets.config import LabConfig, load_data

DATA = "linnerud"
TASKS = load_data(DATA).task_names
OPTIONS = [(method, name) for method, cls in METHODS.items() for name in cls.options]
G = torch.tensor([[1.0, 0.5, -0.2, 0.0], [-0.3, 1.0, 0.4, 0.1], [0.2, -0.6, 1.0, 0.3]], dtype=torch.float64)
LOSSES = [0.9, 1.2, 0.7]
EDGES = [True, False, "0.5", "1", "no", "true", "", math.nan, math.inf, -math.inf, -1, -0.5, 0, 0.0, 1, 2.5,
         [], [0.5], [1, 2], [0.1, 0.2, 0.3], None, {"a": 1}, 10**30]


class ReachedTraining(Exception):
    """Raised instead of building a trainer: the command line accepted every value."""


def api_verdict(method: str, name: str, value, tasks: list[str] = TASKS) -> str | None:
    """``None`` when the method is built and reset for ``tasks``, else the error message."""
    try:
        create(method, **{name: value}).reset(tasks)
    except ValueError as exc:
        return str(exc)
    return None


def aggregate_verdict(method: str, name: str, value) -> str | None:
    try:
        d = aggregate(method, G, LOSSES, **{name: value})
    except ValueError as exc:
        return str(exc)
    assert bool(torch.isfinite(d).all()), (method, name, value, d)
    return None


def cli_verdict(method: str, name: str, value, monkeypatch, capsys, tmp_path) -> str | None:
    def stop(*args, **kwargs):
        raise ReachedTraining

    monkeypatch.setattr(cli, "build_trainer", stop)
    text = json.dumps(value)  # what a user types: true, 0.5, "0.5", NaN, Infinity, [1, 2] …
    argv = ["run", "--data", DATA, "--methods", method, "--option", f"{method}.{name}={text}", "--epochs", "1",
            "--out", str(tmp_path / "report"), "--quiet", "--no-baselines"]
    try:
        code = cli.main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    if "ReachedTraining" in err:
        return None
    assert err.startswith("mtl-lab: error: "), err
    return err[len("mtl-lab: error: "):].rstrip("\n")


def lab_verdict(method: str, name: str, value) -> str | None:
    try:
        LabConfig.from_dict({"data": DATA, "method": method, "method_options": {name: value}})
    except ValueError as exc:
        return str(exc)
    return None


def one_line(message: str | None) -> str | None:
    return None if message is None else " ".join(message.split())


def declared_verdict(constraint, value) -> bool | None:
    """What the declaration's kind alone says of ``value`` (``None``: it depends on the range)."""
    if isinstance(value, bool):
        return isinstance(constraint, Flag) or (isinstance(constraint, OneOf) and value in constraint.choices
                                                and any(c is value for c in constraint.choices))
    if isinstance(value, str):
        return None if isinstance(constraint, OneOf | InnerMethod) else False
    if isinstance(value, float) and not math.isfinite(value):
        return False if isinstance(constraint, Number | Integer | Numbers | Flag) else None
    if isinstance(constraint, Flag):
        return False
    return None


def check_every_surface(method, name, value, monkeypatch, capsys, tmp_path) -> None:
    constraint = METHODS[method].options[name]
    api = api_verdict(method, name, value)
    expected = declared_verdict(constraint, value)
    if expected is not None:
        assert (api is None) == expected, (method, name, value, api)
    if api is not None and api.startswith(f"{method} option {name} "):  # refused by the declaration
        assert repr(value) in api and "must be" in api, api
    assert one_line(cli_verdict(method, name, value, monkeypatch, capsys, tmp_path)) == one_line(api), (name, value)
    if not (method == "static" and name == "weights"):  # static weights are the config's weights (one rule)
        assert lab_verdict(method, name, value) == api, (method, name, value)
    in_aggregate = api_verdict(method, name, value, [f"task{i}" for i in range(3)])
    if METHODS[method].requires != "lookahead":
        assert aggregate_verdict(method, name, value) == in_aggregate, (method, name, value)
    elif in_aggregate is not None:
        assert aggregate_verdict(method, name, value) == in_aggregate


def test_every_method_declares_exactly_its_constructor_options():
    import inspect

    for method, cls in METHODS.items():
        params = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "values")]
        assert list(cls.options) == params, method
        create(method)  # the defaults pass their own declaration


@pytest.mark.filterwarnings("ignore::mtl_lab.weighting.solvers.ConvergenceWarning")  # max_iter = 1 stops early
@pytest.mark.parametrize(("method", "name"), OPTIONS, ids=[f"{m}.{n}" for m, n in OPTIONS])
def test_edge_values_get_one_verdict_everywhere(method, name, monkeypatch, capsys, tmp_path):
    for value in EDGES:
        check_every_surface(method, name, value, monkeypatch, capsys, tmp_path)


def allowed_values(constraint) -> st.SearchStrategy:
    if isinstance(constraint, Flag):
        return st.booleans()
    if isinstance(constraint, OneOf):
        return st.sampled_from(constraint.choices)
    if isinstance(constraint, InnerMethod):
        return st.sampled_from(list(METHODS))
    if isinstance(constraint, TaskWeights):
        return st.lists(st.floats(0, 10), min_size=1, max_size=4)
    if isinstance(constraint, Numbers):
        return st.one_of(allowed_values(constraint.each), st.lists(allowed_values(constraint.each), max_size=4))
    if isinstance(constraint, Integer):
        low = -5 if constraint.low is None else constraint.low
        return st.integers(low - 2, low + 300 if constraint.high is None else constraint.high + 2)
    low = -10.0 if constraint.low is None else constraint.low
    high = low + 1e3 if constraint.high is None else constraint.high
    return st.one_of(st.floats(low - 1, high + 1), st.integers(int(low) - 1, int(high) + 1), st.just(low))


JUNK = st.one_of(st.booleans(), st.none(), st.text(max_size=4),
                 st.sampled_from(["0.5", "1", "no", "yes", "True", "nan", "inf"]),
                 st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10),
                 st.lists(st.one_of(st.floats(-1, 2), st.booleans()), max_size=3))


@pytest.mark.filterwarnings("ignore::mtl_lab.weighting.solvers.ConvergenceWarning")  # max_iter = 1 stops early
@pytest.mark.parametrize(("method", "name"), OPTIONS, ids=[f"{m}.{n}" for m, n in OPTIONS])
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_property_one_verdict_and_message_on_every_surface(method, name, data, monkeypatch, capsys, tmp_path):
    constraint = METHODS[method].options[name]
    value = data.draw(st.one_of(allowed_values(constraint), JUNK))
    check_every_surface(method, name, value, monkeypatch, capsys, tmp_path)
