"""One validation layer: bad inputs through the API, LabConfig and the CLI each give a ValueError (or one
line and exit 2) whose message names the offending value; a property test over the config surfaces."""

from __future__ import annotations

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mtl_lab import data as datasets
from mtl_lab import tasks
from mtl_lab.data.base import MultiTaskData
from mtl_lab.history import History, load_runs
from mtl_lab.models import build_model
from mtl_lab.training import TrainConfig, build_trainer
from mtl_lab.validate import SEED_MAX
from mtl_lab.weighting import aggregate, create
from mtl_lab.widgets.config import LabConfig, make_trainer

FAST = {"epochs": 1, "batch_size": 32, "model_options": {"hidden": (8,)}}
CUDA_DEVICES = torch.cuda.device_count() if torch.cuda.is_available() else 0
MPS = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def small_data(**options) -> MultiTaskData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    targets = {"r": torch.randn(40, 1, generator=g), "c": (x[:, 0] > 0).long()}
    return MultiTaskData.from_tensors(x, targets, [tasks.regression("r"), tasks.classification("c", 2)], **options)


def with_nan(where: str):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20, 4, generator=g)
    y = torch.randn(20, 1, generator=g)
    if where == "x":
        x[3, 1] = float("nan")
        x[7, 2] = float("inf")
    else:
        y[11, 0] = float("-inf")
    return lambda: MultiTaskData.from_tensors(x, {"r": y}, [tasks.regression("r")])


# (label, call, fragments every message must contain: the offending value, and what is allowed where useful)
API_CASES = [
    # TrainConfig: types taken as written, ranges, choices
    ("lr text", lambda: TrainConfig(lr="fast"), ["'fast'", "> 0"]),
    ("lr bool", lambda: TrainConfig(lr=True), ["True"]),
    ("lr negative", lambda: TrainConfig(lr=-1), ["-1", "> 0"]),
    ("lr inf", lambda: TrainConfig(lr=math.inf), ["inf"]),
    ("epochs float", lambda: TrainConfig(epochs=2.5), ["2.5", "≥ 1"]),
    ("epochs text", lambda: TrainConfig(epochs="10"), ["'10'"]),
    ("batch size 0", lambda: TrainConfig(batch_size=0), ["got 0", "≥ 1"]),
    ("seed 2**64", lambda: TrainConfig(seed=2**64), [str(2**64), str(SEED_MAX)]),
    ("seed negative", lambda: TrainConfig(seed=-1), ["-1", str(SEED_MAX)]),
    ("seed 2**63-1", lambda: TrainConfig(seed=2**63 - 1), [str(2**63 - 1)]),
    ("seed float", lambda: TrainConfig(seed=1.0), ["1.0"]),
    ("device cpu:abc", lambda: TrainConfig(device="cpu:abc"), ["'cpu:abc'", "'cuda:N'"]),
    ("device cuda:x", lambda: TrainConfig(device="cuda:x"), ["'cuda:x'"]),
    ("device upper case", lambda: TrainConfig(device="CPU"), ["'CPU'"]),
    ("device int", lambda: TrainConfig(device=0), ["device 0"]),
    ("momentum with adam", lambda: TrainConfig(momentum=0.9), ["momentum=0.9", "'sgd'"]),
    ("momentum with adamw", lambda: TrainConfig(optimizer="adamw", momentum=0.5), ["momentum=0.5", "'adamw'"]),
    ("gamma without step schedule", lambda: TrainConfig(gamma=0.1), ["gamma=0.1", "'step'"]),
    ("step_size with cosine", lambda: TrainConfig(schedule="cosine", step_size=3), ["step_size=3", "'cosine'"]),
    ("optimizer case", lambda: TrainConfig(optimizer="Adam"), ["'Adam'", "'adam'"]),
    ("evaluate text", lambda: TrainConfig(evaluate="yes"), ["'yes'"]),
    ("record_every 0", lambda: TrainConfig(record_every=0), ["record_every", "got 0"]),
    ("diagnostics_every negative", lambda: TrainConfig(diagnostics_every=-1), ["-1"]),
    ("nonfinite_check", lambda: TrainConfig(nonfinite_check="sometimes"), ["'sometimes'", "'host'"]),
    ("weight_decay nan", lambda: TrainConfig(weight_decay=math.nan), ["nan"]),
    # trainer and fit
    ("unknown training option", lambda: build_trainer(small_data(), momentun=0.9), ["momentun"]),
    ("max_steps 0", lambda: build_trainer(small_data(), **FAST).fit(max_steps=0), ["max_steps", "got 0"]),
    ("max_steps bool", lambda: build_trainer(small_data(), **FAST).fit(max_steps=True), ["True"]),
    ("augment without an augmentation", lambda: build_trainer(small_data(), augment=True, **FAST),
     ["augment=True", "'custom'"]),
    # static weights
    ("weights '125'", lambda: create("static", weights="125"), ["'125'", "one number per task"]),
    ("weights '1,2,3'", lambda: create("static", weights="1,2,3"), ["'1,2,3'"]),
    ("scalar weight", lambda: create("static", weights=3), ["got 3 (int)"]),
    ("scalar float weight", lambda: create("static", weights=2.5), ["2.5"]),
    ("weight as text", lambda: create("static", weights=[1, "2"]), ["'2'"]),
    ("weight for a misspelt task", lambda: build_trainer(small_data(), "hard", "static",
                                                          method_options={"weights": {"r": 1, "rr": 2}}, **FAST),
     ["'rr'", "['r', 'c']"]),
    ("weights count", lambda: build_trainer(small_data(), "hard", "static", method_options={"weights": [1, 2, 3]},
                                            **FAST), ["3 entries", "2 tasks"]),
    ("negative weight", lambda: build_trainer(small_data(), "hard", "static", method_options={"weights": [1, -1]},
                                              **FAST), ["-1"]),
    ("all weights zero", lambda: build_trainer(small_data(), "hard", "static", method_options={"weights": [0, 0]},
                                               **FAST), ["[0.0, 0.0]"]),
    ("weight key not a name", lambda: create("static", weights={1: 2.0}), ["key 1"]),
    ("normalize text", lambda: create("static", normalize="yes"), ["'yes'"]),
    ("set_weights text", lambda: build_trainer(small_data(), "hard", "static", **FAST).weighting.set_weights("12"),
     ["'12'"]),
    # model options
    ("dropout text", lambda: build_trainer(small_data(), model_options={"dropout": "0.5"}), ["'0.5'"]),
    ("hidden text", lambda: build_trainer(small_data(), model_options={"hidden": "32,16"}), ["'32,16'"]),
    ("hidden element", lambda: build_trainer(small_data(), model_options={"hidden": [32, "a"]}), ["[32, 'a']"]),
    ("num_experts float", lambda: build_trainer(small_data(), "mmoe", model_options={"num_experts": 2.5}), ["2.5"]),
    ("num_experts text", lambda: build_trainer(small_data(), "mmoe", model_options={"num_experts": "8"}), ["'8'"]),
    ("head_hidden scalar", lambda: build_trainer(small_data(), model_options={"head_hidden": 5}), ["got 5"]),
    ("coupling text", lambda: build_trainer(small_data(), "soft_sharing", model_options={"coupling": "x"}),
     ["'x'"]),
    ("build_model dropout text", lambda: build_model("hard", small_data(), dropout="0.5"), ["'0.5'", "dropout"]),
    ("model options not a dict", lambda: build_trainer(small_data(), model_options="hidden"), ["'hidden'"]),
    # History
    ("History task_names str", lambda: History(task_names="abc"), ["'abc'"]),
    ("History task_names int", lambda: History(task_names=["a", 1]), ["got 1"]),
    ("History task_names repeat", lambda: History(task_names=["a", "a"]), ["['a', 'a']"]),
    ("History steps type", lambda: History.from_dict({"task_names": ["a"], "steps": ["x"]}), ["steps[0]", "'x'"]),
    # task names
    ("task name with dot", lambda: tasks.regression("y.1"), ["'y.1'", "without '.'"]),
    ("task name with mathtext", lambda: tasks.regression("$x$"), ["'$x$'"]),
    ("task name a module attribute", lambda: tasks.regression("to"), ["'to'", "torch.nn.Module"]),
    ("empty task name", lambda: tasks.regression(""), ["''"]),
    ("task name with newline", lambda: tasks.regression("a\nb"), ["'a\\nb'", "printable"]),
    ("task name not a string", lambda: tasks.binary(5), ["got 5"]),
    # data
    ("NaN and inf in x", with_nan("x"), ["rows [3, 7]", "columns [1, 2]", "allow_nonfinite"]),
    ("inf in a target", with_nan("y"), ["task 'r'", "rows [11]", "-inf"]),
    ("from_tensors seed", lambda: small_data(seed=-5), ["-5"]),
    ("allow_nonfinite text", lambda: small_data(allow_nonfinite="no"), ["'no'"]),
    ("data set seed 2**64", lambda: datasets.load("linnerud", seed=2**64), [str(2**64), str(SEED_MAX)]),
    ("data set seed text", lambda: datasets.load("linnerud", seed="1"), ["'1'"]),
    ("data set fractions text", lambda: datasets.load("linnerud", fractions="abc"), ["'abc'"]),
    ("data set flag text", lambda: datasets.load("linnerud", normalize="no"), ["'no'"]),
    ("aggregate of text", lambda: aggregate("pcgrad", "x"), ["'x'", "[T, P]"]),
    # LabConfig: the panel's validation layer goes through the same checks
    ("lab weight for a misspelt task", lambda: LabConfig(data="linnerud", weights={"wiast": 2}).check(),
     ["'wiast'", "'waist'"]),
    ("lab weights as text", lambda: LabConfig(weights="125").check(), ["'125'"]),
    ("lab seed 2**64", lambda: LabConfig(data="linnerud", seed=2**64).check(), [str(2**64)]),
    ("lab lr as text", lambda: LabConfig(data="linnerud", lr="1e-3").check(), ["'1e-3'"]),
    ("lab normalize text", lambda: LabConfig(data="linnerud", method_options={"normalize": "yes"}).check(),
     ["'yes'"]),
    ("lab dropout text", lambda: LabConfig(data="linnerud", model_options={"dropout": "x"}).check(), ["'x'"]),
    ("lab data not a string", lambda: LabConfig(data=5).check(), ["got 5"]),
    ("lab task not a string", lambda: LabConfig(data="linnerud", tasks=["weight", 3]).check(), ["3"]),
    ("lab data option text", lambda: LabConfig(data="linnerud", data_options={"seed": "x"}).check(), ["'x'"]),
    ("lab device cpu:abc", lambda: LabConfig(data="linnerud", device="cpu:abc").check(), ["'cpu:abc'"]),
]
if CUDA_DEVICES < 2:
    API_CASES += [
        ("device cuda:1 absent", lambda: build_trainer(small_data(), device="cuda:1", **FAST), ["'cuda:1'"]),
        ("lab device cuda:1 absent", lambda: LabConfig(data="linnerud", device="cuda:1").check(), ["'cuda:1'"]),
    ]
if not MPS:
    API_CASES += [
        ("device mps absent", lambda: build_trainer(small_data(), device="mps", **FAST), ["'mps'"]),
        ("lab device mps absent", lambda: LabConfig(data="linnerud", device="mps").check(), ["'mps'"]),
    ]


@pytest.mark.parametrize("label,call,fragments", API_CASES, ids=[c[0] for c in API_CASES])
def test_bad_input_is_a_value_error_naming_the_value(label, call, fragments):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{label}: {fragment!r} not in {message!r}"


def test_the_panel_accepts_exactly_what_the_api_accepts():
    """lr 10, lr 1e-7, a weight of 50, 200 000 epochs: valid for the API, so valid for LabConfig, unchanged."""
    config = LabConfig(data="linnerud", lr=10.0, epochs=200_000, weights={"weight": 50.0})
    config.check()
    trainer = make_trainer(config)
    assert trainer.config.lr == 10.0 and trainer.config.epochs == 200_000
    assert trainer.weighting.values == [50.0, 1.0, 1.0]
    assert make_trainer(LabConfig(data="linnerud", lr=1e-7)).config.lr == 1e-7


def test_any_printable_allowed_task_name_trains_and_plots():
    from mtl_lab import plots

    names = ["y-1", "a b", "é/2", "T"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 2, generator=g)
    data = MultiTaskData.from_tensors(x, {n: torch.randn(30, 1, generator=g) for n in names},
                                      [tasks.regression(n) for n in names])
    history = build_trainer(data, **FAST).fit()
    assert history.status == "completed" and history.task_names == names
    plots.signature_figure(history).savefig(__import__("io").BytesIO(), format="png")


def test_allow_nonfinite_lets_the_data_in_and_the_run_says_why_its_metrics_are_nan():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=g)
    y = torch.randn(40, 1, generator=g)
    data = MultiTaskData.from_tensors(x, {"r": y}, [tasks.regression("r")], allow_nonfinite=True, seed=1)
    y_test = data.test.y["r"].clone()
    y_test[0, 0] = float("nan")
    object.__setattr__(data.test, "y", {"r": y_test})
    history = build_trainer(data, **FAST).fit()
    assert history.status == "completed"
    assert any("test_loss['r'] = nan" in w for w in history.meta["warnings"])
    assert any("non-finite evaluation" in n.get("warning", "") for n in history.notes)


# ---------------------------------------------------------------- History files: the file and the field named

GOOD = {"task_names": ["a", "b"], "steps": [0, 1], "losses": [[1.0, 2.0], [0.5, 1.5]],
        "weights": [[1.0, 1.0], [1.0, 1.0]], "epochs": [{"epoch": 1, "val_loss": {"a": 0.1, "b": 0.2}}]}
HISTORY_FILE_CASES = [
    ("malformed", "{not json", ["is not valid JSON", "line 1, column 2"]),
    ("truncated", '{"task_names": ["a"], "steps": [0, ', ["is not valid JSON", "line 1"]),
    ("empty", "", ["is empty"]),
    ("whitespace", "  \n ", ["is empty"]),
    ("a list", "[1, 2]", ["is not a History record", "list"]),
    ("task_names a string", {"task_names": "abc"}, ["field 'task_names'", "'abc'"]),
    ("format text", {**GOOD, "format": "1"}, ["field 'format'", "'1'"]),
    ("format newer", {**GOOD, "format": 99}, ["format 99 is newer"]),
    ("meta a list", {**GOOD, "meta": [1]}, ["field 'meta'", "[1]"]),
    ("steps a string", {**GOOD, "steps": "abc"}, ["field 'steps'", "'abc'"]),
    ("step a float", {**GOOD, "steps": [0, 1.5]}, ["field 'steps[1]'", "1.5"]),
    ("losses row short", {**GOOD, "losses": [[1.0], [0.5, 1.5]]}, ["field 'losses[0]'", "2 numbers", "[1.0]"]),
    ("losses count", {**GOOD, "losses": [[1.0, 2.0]]}, ["field 'losses' has 1 rows, 'steps' has 2"]),
    ("weight text", {**GOOD, "weights": [[1.0, "x"], [1.0, 1.0]]}, ["field 'weights[0]'", "'x'"]),
    ("epoch record text", {**GOOD, "epochs": ["e1"]}, ["field 'epochs[0]'", "'e1'"]),
    ("epoch number missing", {**GOOD, "epochs": [{"val_loss": {}}]}, ["field 'epochs[0].epoch'", "None"]),
    ("val_loss a list", {**GOOD, "epochs": [{"epoch": 1, "val_loss": [0.1]}]},
     ["field 'epochs[0].val_loss'", "[0.1]"]),
    ("notes a dict", {**GOOD, "notes": {"a": 1}}, ["field 'notes'", "{'a': 1}"]),
    ("regularizer text", {**GOOD, "regularizer": ["r"]}, ["field 'regularizer[0]'", "'r'"]),
]


@pytest.mark.parametrize("label,content,fragments", HISTORY_FILE_CASES, ids=[c[0] for c in HISTORY_FILE_CASES])
def test_a_bad_history_file_names_the_file_and_the_field(label, content, fragments, tmp_path):
    path = tmp_path / "history.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    for load in (History.load, load_runs):
        with pytest.raises(ValueError) as info:
            load(path)
        message = str(info.value)
        assert f"history file {str(path)!r}" in message, message
        for fragment in fragments:
            assert fragment in message, f"{label}: {fragment!r} not in {message!r}"


def test_a_report_history_names_the_bad_run(tmp_path):
    path = tmp_path / "history.json"
    path.write_text(json.dumps({"runs": {"equal": GOOD, "pcgrad": {**GOOD, "steps": "x"}}}))
    with pytest.raises(ValueError, match=r"run 'pcgrad': field 'steps'"):
        load_runs(path)
    with pytest.raises(ValueError, match="does not exist"):
        History.load(tmp_path / "missing.json")
    assert History.load(History.from_dict(GOOD).save(tmp_path / "ok.json")) == History.from_dict(GOOD)


# ---------------------------------------------------------------- property: the config surfaces

JUNK = st.one_of(st.none(), st.booleans(), st.text(max_size=6), st.integers(-3, 3), st.integers(2**62, 2**65),
                 st.floats(allow_nan=True, allow_infinity=True), st.lists(st.integers(0, 3), max_size=3))
TRAIN_FIELDS = {
    "epochs": st.integers(1, 3),
    "batch_size": st.integers(1, 64),
    "optimizer": st.sampled_from(["adam", "adamw", "sgd"]),
    "lr": st.floats(1e-6, 10.0),
    "momentum": st.sampled_from([0.0, 0.9]),
    "schedule": st.sampled_from(["none", "step", "cosine"]),
    "gamma": st.sampled_from([0.5, 0.1]),
    "device": st.sampled_from(["cpu", "auto", "cuda:1", "mps", "cpu:abc", "tpu"]),
    "seed": st.integers(0, SEED_MAX),
    "diagnostics_every": st.integers(0, 5),
    "augment": st.booleans(),
}


def fragments_of(value) -> list[str]:
    """The ways a message may name ``value``: its repr, or the repr of one of its elements."""
    out = [repr(value), str(value)]
    if isinstance(value, list | tuple | dict):
        out += [repr(v) for v in (value.values() if isinstance(value, dict) else value)]
    return out


def check_outcome(options: dict, build) -> None:
    try:
        built = build()
    except ValueError as exc:
        message = str(exc)
        assert any(f in message for v in options.values() for f in fragments_of(v)), message
    else:
        assert built is not None


@st.composite
def train_options(draw):
    names = draw(st.lists(st.sampled_from(sorted(TRAIN_FIELDS)), min_size=1, max_size=4, unique=True))
    return {n: draw(st.one_of(TRAIN_FIELDS[n], JUNK)) for n in names}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=train_options())
def test_property_train_config_builds_a_trainer_or_names_the_bad_value(options):
    data = small_data()
    check_outcome(options, lambda: build_trainer(data, model_options={"hidden": (4,)}, **options))


LAB_FIELDS = {
    "lr": st.floats(1e-6, 10.0), "epochs": st.integers(1, 3), "batch_size": st.integers(1, 64),
    "seed": st.integers(0, SEED_MAX), "device": st.sampled_from(["cpu", "cuda:1", "mps", "cpu:abc"]),
    "optimizer": st.sampled_from(["adam", "sgd", "lion"]), "method": st.sampled_from(["static", "equal", "pcgrad"]),
    "weights": st.dictionaries(st.sampled_from(["weight", "waist", "pulse", "wieght"]),
                               st.one_of(st.floats(0, 50), JUNK), max_size=2),
    "tasks": st.one_of(st.none(), st.lists(st.sampled_from(["weight", "waist", "pulse", "puls"]), min_size=1,
                                           max_size=3, unique=True)),
    "model_options": st.dictionaries(st.sampled_from(["dropout", "hidden"]),
                                     st.one_of(st.floats(0, 0.9), st.lists(st.integers(1, 8), min_size=1,
                                                                            max_size=2), JUNK), max_size=2),
}


@st.composite
def lab_options(draw):
    names = draw(st.lists(st.sampled_from(sorted(LAB_FIELDS)), min_size=1, max_size=4, unique=True))
    return {n: draw(st.one_of(LAB_FIELDS[n], JUNK)) for n in names}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=lab_options())
def test_property_lab_config_builds_a_trainer_or_names_the_bad_value(options):
    check_outcome(options, lambda: make_trainer(LabConfig.from_dict({"data": "linnerud", **options})))


SHARED_FIELDS = {k: TRAIN_FIELDS[k] for k in ("epochs", "batch_size", "optimizer", "lr", "device", "seed",
                                              "diagnostics_every")}


@st.composite
def shared_options(draw):
    names = draw(st.lists(st.sampled_from(sorted(SHARED_FIELDS)), min_size=1, max_size=3, unique=True))
    return {n: draw(st.one_of(SHARED_FIELDS[n], JUNK)) for n in names}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=shared_options())
def test_property_the_panel_and_the_api_accept_and_refuse_the_same_values_with_the_same_message(options):
    """One validation layer: LabConfig never clamps or re-validates differently from build_trainer."""
    data = datasets.load("linnerud")

    def outcome(build):
        try:
            trainer = build()
        except ValueError as exc:
            return "refused", str(exc)
        return "built", {k: getattr(trainer.config, k) for k in options}

    api = outcome(lambda: build_trainer(data, "hard", "equal", **options))
    panel = outcome(lambda: make_trainer(LabConfig(data="linnerud", method="equal", baselines=False, **options)))
    assert api == panel
