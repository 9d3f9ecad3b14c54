"""Options that do not apply are refused, and inputs that used to reach an internal error get a message.

Each case names the value and what is allowed: ``grouped`` groups of the wrong shape, a ``cr_mogm``
inner method it cannot average, ``aggregate`` on gradients past the finite range, History files with
meta fields of the wrong type, generated data sets too large to build, a Lab loading the set-up of
another data set, and options that the chosen setting would ignore.
"""

from __future__ import annotations

import json
import math
import re

import pytest
import torch
from toy_data import make_toy

from mtl_lab import data as datasets
from mtl_lab.history import History
from mtl_lab.training import build_trainer
from mtl_lab.validate import GENERATED_VALUES_MAX, MAX_ITERATIONS
from mtl_lab.weighting import METHODS, aggregate, create
from mtl_lab.widgets.config import LabConfig, make_trainer, method_parameters

TOY = make_toy()
FAST = {"epochs": 1, "batch_size": 32, "model_options": {"hidden": (8,)}}
GRADIENT_METHODS = [m for m, cls in METHODS.items() if cls.requires != "lookahead"]


# ---------------------------------------------------------------- grouped: groups of the wrong shape


@pytest.mark.parametrize(("groups", "fragments"), [
    (5, ["groups must be a list of lists of task names", "got 5 (int)"]),
    ("cls", ["groups must be a list of lists", "'cls'"]),
    (["cls", "yes", "reg"], ["group 1 must be a list of task names", "got 'cls' (str)"]),
    ([["cls"], "yes"], ["group 2 must be a list of task names", "got 'yes' (str)"]),
    ({"a": "cls", "b": ["yes", "reg"]}, ["group 'a' must be a list of task names", "'cls'"]),
    ([["cls"], [3]], ["group 2 names unknown task(s) [3]"]),
    ([["cls"], ["yes"]], ["task(s) ['reg'] are in no group"]),
    ([["cls", "yes"], ["yes", "reg"]], ["['yes'] appear in more than one group"]),
])
def test_grouped_groups_of_the_wrong_shape_are_named(groups, fragments):
    with pytest.raises(ValueError) as info:
        build_trainer(TOY, "grouped", "equal", {"groups": groups}, epochs=1)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


def test_grouped_groups_as_lists_of_names_still_build():
    trainer = build_trainer(TOY, "grouped", "equal", {"groups": [["cls"], ["yes", "reg"]]}, epochs=1)
    assert trainer.model.groups == {"group 1": ["cls"], "group 2": ["yes", "reg"]}


# ---------------------------------------------------------------- cr_mogm: an inner method it cannot average


@pytest.mark.parametrize("inner", ["auto_lambda", "graddrop", "moco", "db_mtl", "cr_mogm", "nonsense", 3, None, True])
def test_cr_mogm_refuses_an_inner_method_when_built(inner):
    with pytest.raises(ValueError, match=r"cr_mogm option inner must be .*, got " + re.escape(repr(inner))):
        create("cr_mogm", inner=inner)
    with pytest.raises(ValueError, match="cr_mogm option inner must be"):
        LabConfig.from_dict({"data": "linnerud", "method": "cr_mogm", "method_options": {"inner": inner}})


def test_cr_mogm_inner_auto_lambda_never_reaches_training():
    with pytest.raises(ValueError, match="look-ahead"):
        build_trainer(TOY, "hard", "cr_mogm", method_options={"inner": "auto_lambda"}, **FAST)


@pytest.mark.parametrize("inner", ["mgda", "pcgrad", "sdmgrad", "static", create("cagrad", c=0.2)])
def test_cr_mogm_accepts_the_methods_it_can_average(inner):
    trainer = build_trainer(TOY, "hard", "cr_mogm", method_options={"inner": inner}, **FAST)
    assert trainer.fit().status == "completed"


# ---------------------------------------------------------------- aggregate: finite G stays finite, or is refused


BASE = torch.tensor([[1.0, 0.2, -0.3, 0.5], [-0.5, 1.0, 0.4, 0.1], [0.2, -0.1, 0.9, 0.3]], dtype=torch.float64)
BASE = BASE / BASE.norm(dim=1).max()


@pytest.mark.filterwarnings("ignore::mtl_lab.weighting.solvers.ConvergenceWarning")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_aggregate_is_finite_up_to_the_limit_and_refuses_past_it(method, dtype):
    limit = torch.finfo(dtype).max ** 0.25
    for scale in (0.9 * limit, 1e-30 * limit, 1.0):
        d = aggregate(method, (BASE * scale).to(dtype), [1.0, 2.0, 0.5])
        assert bool(torch.isfinite(d).all()), (method, dtype, scale, d)
    for scale in (1.1 * limit, 1e20 if dtype == torch.float32 else 1e300):
        with pytest.raises(ValueError, match=r"G has a row of norm .* the methods take rows with norm ≤"):
            aggregate(method, (BASE * scale).to(dtype), [1.0, 2.0, 0.5])


def test_aggregate_names_float64_as_the_way_out_for_float32():
    with pytest.raises(ValueError, match="or pass it as float64"):
        aggregate("mgda", (BASE * 1e20).float())
    assert bool(torch.isfinite(aggregate("mgda", BASE * 1e20)).all())  # the same G in float64 is in range


# ---------------------------------------------------------------- History files: meta fields of the wrong type

GOOD = History(["a", "b"], meta={"status": "completed", "method": {"name": "equal"}}).to_dict()


@pytest.mark.parametrize(("key", "value", "want"), [
    ("status", 3, "a string"),
    ("method", "equal", "an object with a string 'name'"),
    ("method", {"name": 3}, "an object with a string 'name'"),
    ("data", ["linnerud"], "an object with a string 'name'"),
    ("model", "hard", "an object"),
    ("test_metrics", [0.5, 0.6], "an object {task: number}"),
    ("test_metrics", {"a": "high"}, "an object {task: number}"),
    ("test_loss", 0.3, "an object {task: number}"),
    ("train_seconds", "12s", "a number"),
    ("train_seconds", True, "a number"),
    ("steps", 2.5, "an int"),
    ("epochs_done", "3", "an int"),
    ("warnings", "careful", "a list of strings"),
    ("error", {"msg": "x"}, "a string"),
    ("diagnostics", 1, "a string or null"),
])
def test_history_file_with_a_bad_meta_field_names_the_file_and_field(tmp_path, key, value, want):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({**GOOD, "meta": {**GOOD["meta"], key: value}}))
    with pytest.raises(ValueError) as info:
        History.load(path)
    message = str(info.value)
    assert f"history file {str(path)!r}" in message and f"field 'meta.{key}' must be {want}" in message, message


def test_history_file_with_good_meta_fields_loads(tmp_path):
    meta = {"status": "completed", "method": {"name": "cagrad", "c": 0.5}, "data": {"name": "toy"}, "model": {},
            "test_metrics": {"a": 0.5, "b": math.nan}, "train_seconds": 1.5, "steps": 3, "epochs_done": 1,
            "warnings": ["w"], "diagnostics": None, "custom": ["anything"]}
    path = History(["a", "b"], meta=meta).save(tmp_path / "h.json")
    assert History.load(path).meta["method"] == {"name": "cagrad", "c": 0.5}


# ---------------------------------------------------------------- generated data sets: the size limit


@pytest.mark.parametrize("options", [{"labels_per_task": 10**12}, {"n_test": 10**10}, {"n_val": 10**10},
                                     {"d": 10**9}, {"n_tasks": 10**8, "rank": 1}])
def test_related_refuses_sizes_past_the_limit_before_allocating(options):
    with pytest.raises(ValueError, match=rf"related: .* values would be generated in memory; the limit is "
                                         rf"{GENERATED_VALUES_MAX}"):
        datasets.load("related", **options)


# ---------------------------------------------------------------- options that do not apply are refused


def test_rep_grads_on_soft_sharing_is_refused():
    with pytest.raises(ValueError, match="rep_grads=True does not apply: this architecture has no shared"):
        build_trainer(TOY, "soft_sharing", "mgda", rep_grads=True, epochs=1)
    assert build_trainer(TOY, "hard", "mgda", rep_grads=True, **FAST) is not None


@pytest.mark.parametrize("method", ["graddrop", "moco", "equal", "static", "sdmgrad"])
def test_gradient_path_gramian_with_a_method_that_needs_more_is_refused(method):
    with pytest.raises(ValueError, match=f"gradient_path='gramian' does not apply to method '{method}'"):
        build_trainer(TOY, "hard", method, gradient_path="gramian", **FAST)


def test_static_weights_as_method_options_in_the_lab_are_refused():
    with pytest.raises(ValueError, match=r"method_options\['weights'\] = \[3, 1, 1\] does not apply in the lab"):
        LabConfig.from_dict({"data": "linnerud", "method": "static", "method_options": {"weights": [3, 1, 1]}})
    config = LabConfig.from_dict({"data": "linnerud", "method": "static", "weights": {"weight": 3}})
    assert make_trainer(config).weighting.values == [3.0, 1.0, 1.0]


@pytest.mark.parametrize("workers", [0, 1, 4])
def test_workers_with_the_sequential_engine_is_refused(workers):
    from mtl_lab.studies.engines import run_all

    with pytest.raises(ValueError, match=f"workers={workers} applies only to engine 'processes' or 'ray'"):
        list(run_all([], "sequential", workers=workers))


def test_solver_iterations_past_the_bound_are_refused_not_run():
    with pytest.raises(ValueError, match=rf"sdmgrad option n_iter must be an int in \[1, {MAX_ITERATIONS}\]"):
        create("sdmgrad", n_iter=10**12)


# ---------------------------------------------------------------- the lab: a set-up of another data set


def test_lab_loading_a_set_up_of_another_data_set_trains():
    pytest.importorskip("ipywidgets")
    from mtl_lab.widgets import Lab

    lab = Lab(LabConfig(data="linnerud", method="static", weights={"weight": 2.0}, epochs=1, baselines=False),
              name="test-other-data")
    try:
        lab.load_config(LabConfig(data="related", method="equal", epochs=1, baselines=False))
        config = lab.read_config()
        assert config.data == "related" and config.weights == {}
        lab.ui.data_w.value = "linnerud"  # switching data in the panel keeps only this data set's weights
        assert set(lab.read_config().weights) <= {"weight", "waist", "pulse"}
    finally:
        lab.close()


# ---------------------------------------------------------------- the panel shows accepted values as themselves


ACCEPTED = {"c": [0, 1, 0.123456789012345], "rescale": [0, 2], "tol": [1e-300, 3], "max_iter": [1, MAX_ITERATIONS],
            "solver": ["frank_wolfe"], "leak": [0, 1.0, [0.1, 0.2, 0.3]], "normalize": [True, False],
            "inner": ["pcgrad", "static"], "alpha": [0, 1]}


def test_the_panel_reads_back_every_accepted_value_as_itself():
    pytest.importorskip("ipywidgets")
    from mtl_lab.widgets import Lab

    lab = Lab(LabConfig(data="linnerud", epochs=1, baselines=False), name="test-panel-values")
    shown = 0
    try:
        for method in ("cagrad", "mgda", "graddrop", "moco", "cr_mogm"):
            lab.ui.method_w.value = method
            for name, values in ACCEPTED.items():
                if name not in METHODS[method].options or (method == "moco" and name != "normalize"):
                    continue
                for value in values:
                    lab.set_method_options(method, {name: value})
                    config = lab.read_config()
                    default = next(p.default for p in method_parameters(method) if p.name == name)
                    read = config.method_options.get(name, default)  # a value equal to the default is left out
                    assert read == value and create(method, **{name: read}) is not None, (method, name, value)
                    shown += 1
    finally:
        lab.close()
    assert shown >= 15
