"""The weight-tuning lab's settings as plain data: export, import, check, and build a Trainer from them.

:class:`LabConfig` is what the panel shows and what an instructor hands out: a dict or a JSON string
(``LabConfig.from_json(text)``). Everything that can be checked without training is checked in
:meth:`LabConfig.check`, with messages that name the bad value and what is allowed; the panel shows
them in its status line. This module does not import ipywidgets, so it is tested and used headless.
"""

from __future__ import annotations

import inspect
import json
from dataclasses import asdict, dataclass, field, fields, replace

from mtl_lab import data as datasets
from mtl_lab import validate
from mtl_lab.data.base import MultiTaskData
from mtl_lab.models import ARCHITECTURES
from mtl_lab.training import TrainConfig, Trainer, build_trainer, check_architecture_options
from mtl_lab.training.inputs import input_mode
from mtl_lab.weighting import METHODS, create

FORMAT = "mtl_lab.lab/1"


def method_parameters(method: str) -> list[inspect.Parameter]:
    """The hyper-parameters of a registered method: the keyword parameters of its class ``__init__``."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {sorted(METHODS)}")
    try:  # annotations evaluated, so a Literal[...] of choices reaches the panel as its choices
        params = inspect.signature(METHODS[method].__init__, eval_str=True).parameters.values()
    except (NameError, TypeError, SyntaxError):
        params = inspect.signature(METHODS[method].__init__).parameters.values()
    return [p for p in params if p.name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def takes_task_weights(method: str) -> bool:
    """Does the method take per-task weights that can change during a run (``set_weights``)?"""
    cls = METHODS.get(method)
    return cls is not None and callable(getattr(cls, "set_weights", None)) and any(
        p.name == "weights" for p in method_parameters(method)
    )


@dataclass
class LabConfig:
    """Every setting of the lab panel.

    Attributes:
        data: data-set name (see ``mtl_lab.data.DATASETS``); ``data_options`` its options.
        tasks: the tasks switched on (``None``: all of the data set's tasks).
        architecture: architecture name (``mtl_lab.models.ARCHITECTURES``); ``model_options`` its options.
        method: weighting method (``mtl_lab.weighting.METHODS``); ``method_options`` its hyper-parameters.
        weights: per-task weights for methods that take them (``static``); missing tasks get 1.
        optimizer, lr, epochs, batch_size, device, seed, diagnostics_every: training options.
        baselines: after a completed run, train single-task baselines for the Δm % column.
    """

    data: str = "digits"
    tasks: list[str] | None = None
    data_options: dict = field(default_factory=dict)
    architecture: str = "hard"
    model_options: dict = field(default_factory=dict)
    method: str = "static"
    method_options: dict = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 64
    device: str = "auto"
    seed: int = 0
    diagnostics_every: int = 5
    baselines: bool = True

    # ------------------------------------------------------------ export / import

    def to_dict(self) -> dict:
        return {"format": FORMAT, **asdict(self)}

    def to_json(self, indent: int | None = 1) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @staticmethod
    def from_dict(d: dict) -> LabConfig:
        """A config from a dict (as :meth:`to_dict` writes; keys may be left out), checked."""
        if not isinstance(d, dict):
            raise ValueError(f"a lab config is a dict (or a JSON object), got {type(d).__name__}")
        d = dict(d)
        fmt = d.pop("format", FORMAT)
        if fmt != FORMAT:
            raise ValueError(f"config format {fmt!r} is not {FORMAT!r}")
        names = [f.name for f in fields(LabConfig)]
        unknown = [k for k in d if k not in names]
        if unknown:
            raise ValueError(f"unknown config key(s) {unknown}; allowed: {names}")
        config = replace(LabConfig(), **d)
        config.check()
        return config

    @staticmethod
    def from_json(text: str) -> LabConfig:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise ValueError(f"the config is not valid JSON: {exc.msg} ({where})") from None
        return LabConfig.from_dict(d)

    # ------------------------------------------------------------ checks

    def check(self) -> None:
        """Raise ``ValueError`` naming the first bad value and what is allowed."""
        for name in ("data", "architecture", "method"):  # names looked up in registries (dicts)
            if not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be a string, got {getattr(self, name)!r}")
        if self.data not in datasets.DATASETS:
            raise ValueError(f"unknown data set {self.data!r}; choose from {list(datasets.DATASETS)}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; choose from {list(ARCHITECTURES)}")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {list(METHODS)}")
        for name in ("data_options", "model_options", "method_options", "weights"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name} must be a dict, got {getattr(self, name)!r}")
        if self.tasks is not None and (not isinstance(self.tasks, list) or not self.tasks):
            raise ValueError(f"tasks must be a non-empty list of task names or null, got {self.tasks!r}")
        validate.check_option_names(self.method, METHODS[self.method].options, self.method_options)
        if takes_task_weights(self.method) and "weights" in self.method_options:  # one place for the weights
            raise ValueError(
                f"method_options['weights'] = {self.method_options['weights']!r} does not apply in the lab: "
                f"the {self.method!r} weights are the config's weights ({{task: weight}}, shown as sliders); "
                "move them there"
            )
        validate.check_weight_spec(self.weights)
        for task, w in self.weights.items():
            validate.check_number(f"weight of task {task!r}", w, 0)
        validate.check_bool("baselines", self.baselines)
        TrainConfig(**self.train_options())  # lr, epochs, batch size, seed, device spelling: TrainConfig's checks
        self.check_against_data()

    def check_against_data(self) -> None:
        """The checks that need the data set or the machine, by the same functions the API calls.

        Task names (of ``tasks`` and of ``weights``), the method's options (its constructor checks them),
        what multi-input data refuse (``mgda_ub``: :func:`mtl_lab.validate.check_multi_input`), the
        architecture's option types, and whether the device exists here (``cuda:1`` is never ``auto``).
        """
        data = load_data(self.data, self.data_options)
        if self.tasks is not None:
            validate.check_task_names(self.tasks, "tasks")
            data = data.select(self.tasks)
        unknown = [t for t in self.weights if t not in load_data(self.data, self.data_options).task_names]
        if unknown:
            raise ValueError(f"weights name unknown task(s) {unknown}; the tasks of {self.data!r} are "
                             f"{load_data(self.data, self.data_options).task_names}")
        weighting = create(self.method, **self.method_kwargs(data.task_names))
        weighting.reset(data.task_names)
        config = TrainConfig(**self.train_options())
        input_mode(data).check(weighting.name, weighting.requires, config.rep_grads, config.gradient_path)
        check_architecture_options(self.architecture, self.model_options)
        validate.check_device_available(self.device)

    def train_options(self) -> dict:
        return {"optimizer": self.optimizer, "lr": self.lr, "epochs": self.epochs, "batch_size": self.batch_size,
                "device": self.device, "seed": self.seed, "diagnostics_every": self.diagnostics_every}

    def method_kwargs(self, task_names: list[str]) -> dict:
        """The method's options, with ``weights`` (one per task, in order) for methods that take them."""
        kwargs = dict(self.method_options)
        if takes_task_weights(self.method):  # weights of tasks switched off are kept but not used
            kwargs["weights"] = [float(self.weights.get(t, 1.0)) for t in task_names]
        return kwargs

    def run_key(self) -> str:
        """What decides whether Train may continue an unfinished run: everything but the weights
        (they change live) and the baselines switch."""
        d = asdict(self)
        d.pop("weights")
        d.pop("baselines")
        return json.dumps(d, sort_keys=True)

    def baseline_key(self, task: str) -> str:
        """What a single-task baseline of ``task`` depends on."""
        return json.dumps({"task": task, "data": self.data, "data_options": self.data_options,
                           "architecture": self.architecture, "model_options": self.model_options,
                           **self.train_options()}, sort_keys=True)


# ---------------------------------------------------------------- live set-ups per data set

# What the panel sets when its data menu picks one of these data sets (every value can be changed after):
# the defaults of LabConfig suit the small per-image sets, not an encoder–decoder on images. ``scenes`` at
# 32×32 with a narrow SegNet-lite takes about 12 steps a second on one CPU core (diagnostics included), so
# the curves move within a second and 10 epochs of 256 scenes end in under ten seconds; with equal weights
# depth takes about 0.9 of the trunk's update (the loss-scale lesson of notebook 12).
DATA_SETUPS: dict[str, dict] = {
    "scenes": {"data_options": {"size": 32, "n_train": 256, "n_val": 32, "n_test": 64},
               "architecture": "segnet_lite", "model_options": {"channels": [8, 16, 32]},
               "lr": 1e-2, "batch_size": 32, "epochs": 10},
}


def data_setup(name: str) -> dict:
    """The live set-up of data set ``name`` (:data:`DATA_SETUPS`; ``{}`` when it has none)."""
    return {key: value.copy() if isinstance(value, dict) else value for key, value in DATA_SETUPS.get(name, {}).items()}


# ---------------------------------------------------------------- building

DATA_CACHE: dict[str, MultiTaskData] = {}


def load_data(name: str, options: dict | None = None) -> MultiTaskData:
    """A data set by name, cached (the same name and options give the same object)."""
    key = json.dumps({"name": name, "options": options or {}}, sort_keys=True)
    if key not in DATA_CACHE:
        DATA_CACHE[key] = datasets.load(name, **(options or {}))
    return DATA_CACHE[key]


def selected_data(config: LabConfig) -> MultiTaskData:
    """The config's data set with only its selected tasks."""
    data = load_data(config.data, config.data_options)
    if config.tasks is None:
        return data
    return data.select(config.tasks)


def make_trainer(config: LabConfig, callback=None) -> Trainer:
    """The Trainer a config describes (checked first)."""
    config.check()
    data = selected_data(config)
    return build_trainer(data, config.architecture, config.method, config.model_options,
                         config.method_kwargs(data.task_names), callback, **config.train_options())
