"""The one validation layer: value checks shared by the Python API, the command line and the lab panel.

Every check raises ``ValueError`` with a message that names the bad value (its ``repr``) and what is
allowed. The config objects and constructors call these functions (``TrainConfig``, ``Task``,
``MultiTaskData.from_tensors``, ``History``, the static method's weights, :func:`check_model_options`
in ``build_trainer``); the CLI and ``LabConfig`` only build those objects, so they cannot drift apart.
Widget limits are display ranges, never a second validator.

Rules that are choices, with their reasons:

* **Types are taken as written.** A string is never read as a list (``'125'`` is not ``[1, 2, 5]``), a
  bool is not a number, an int option does not take ``2.5``, a float option takes an int.
* **Seeds** are ints with ``0 ≤ seed ≤ 2**63 − 2``: the trainer seeds the method's generator with
  ``seed + 1``, and both must fit a signed 64-bit integer (what a tensor, a checkpoint and NumPy hold).
* **Devices**: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` (``N`` a non-negative int) or ``mps``; a device
  that is not on this machine is an error when a trainer is built (``cuda:1`` is never quietly ``auto``).
* **Options a setting does not use are errors**, not warnings: ``momentum`` ≠ 0 with Adam, or
  ``gamma``/``step_size`` changed without ``schedule='step'``. A warning would leave the run's recorded
  config claiming something that was not applied; an error costs one edit and cannot be missed.
* **Task names** are 1–64 printable characters without ``.`` (PyTorch module keys) or ``$`` (matplotlib
  mathtext in plot labels) and are not an attribute of ``torch.nn.Module`` (``to``, ``train`` …), since
  the models keep one sub-module per task under its name.
* **Method options are declared once**, as a table at the top of each method's class (``options = {"c":
  Number(low=0), …}``, see :class:`Constraint`), and checked by :func:`check_declared_options` when the
  method is built: the API, ``aggregate``, the CLI, study files and the lab panel all build it, so they
  all get the same verdict and the same message. Nothing is converted, clamped or replaced.
* **Options that do not apply are refused**, whatever surface sets them: an option the chosen setting
  would ignore is an error naming the option, its value and the setting it would need (see the README's
  "Options that do not apply").
* **Data must be finite** where it enters (``from_tensors``): NaN or inf in ``x`` or a target is an error
  naming the rows and columns, unless ``allow_nonfinite=True`` says the caller means it.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

SEED_MAX = 2**63 - 2
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:[0-9]+)?)$")
TASK_NAME_MAX = 64
MODULE_ATTRIBUTES = frozenset(dir(torch.nn.Module()))
MAX_ITERATIONS = 10**6  # a bound on a solver's steps per training step: beyond it one step would take hours


def is_int(value) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """An int or float (not a bool, not a string)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe_range(low, high, low_open: bool = False) -> str:
    """`` > 0``, `` ≥ 1``, `` ≤ 5`` or `` in [0, 9]`` (the allowed range, for messages)."""
    if low is not None and high is not None:
        return f" in {'(' if low_open else '['}{low}, {high}]"
    if low is not None:
        return f" {'>' if low_open else '≥'} {low}"
    return "" if high is None else f" ≤ {high}"


def check_int(name: str, value, low: int | None = None, high: int | None = None) -> int:
    """``value`` must be an int (not a bool) in ``[low, high]`` (either bound may be open-ended)."""
    if not is_int(value) or (low is not None and value < low) or (high is not None and value > high):
        kind = "" if is_int(value) else f" ({type(value).__name__})"
        raise ValueError(f"{name} must be an int{describe_range(low, high)}, got {value!r}{kind}")
    return value


def check_number(
    name: str, value, low: float | None = None, high: float | None = None, low_open: bool = False
) -> float:
    """``value`` must be a finite int or float with ``low ≤ value`` (``<`` when ``low_open``) and ``≤ high``."""
    ok = is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        kind = "" if is_number(value) else f" ({type(value).__name__})"
        raise ValueError(f"{name} must be a finite number{describe_range(low, high, low_open)}, got {value!r}{kind}")
    return value


def check_choice(name: str, value, allowed: Sequence[str]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {tuple(allowed)}")
    return value


def check_race(methods, allowed: Sequence[str], low: int = 2, high: int = 4) -> list[str]:
    """A race's methods: a list of ``low`` … ``high`` different names, each one of ``allowed``."""
    if not isinstance(methods, list | tuple) or not all(isinstance(m, str) for m in methods):
        raise ValueError(f"a race is a list of method names, got {methods!r}")
    if not low <= len(methods) <= high:
        raise ValueError(f"a race takes {low} to {high} methods, got {len(methods)}: {list(methods)}")
    repeated = sorted({m for m in methods if list(methods).count(m) > 1})
    if repeated:
        raise ValueError(f"a race names each method once; repeated: {repeated}")
    for method in methods:
        check_choice("race method", method, allowed)
    return list(methods)


def check_bool(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


def check_seed(value, name: str = "seed") -> int:
    """A seed: an int with ``0 ≤ seed ≤ 2**63 − 2`` (see the module docstring)."""
    return check_int(name, value, 0, SEED_MAX)


def check_device(value) -> str:
    """The spelling of a device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``."""
    if not isinstance(value, str) or not DEVICE_PATTERN.match(value):
        raise ValueError(f"device {value!r} is not one of 'auto', 'cpu', 'cuda', 'cuda:N' (N = 0, 1, …) or 'mps'")
    return value


def check_device_available(value: str) -> torch.device:
    """The device ``value`` names (``auto`` resolved), or an error saying that this machine lacks it."""
    check_device(value)
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if value == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    if value.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {value!r} requested but torch.cuda.is_available() is False on this machine")
        index = torch.device(value).index
        if index is not None and index >= torch.cuda.device_count():
            raise ValueError(
                f"device {value!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist "
                f"(cuda:0 … cuda:{torch.cuda.device_count() - 1})"
            )
    if value == "mps" and not mps:
        raise ValueError("device 'mps' requested but torch.backends.mps.is_available() is False on this machine")
    return torch.device(value)


def check_unused_options(optimizer: str, momentum: float, schedule: str, step_options: dict[str, tuple]) -> None:
    """Options the chosen optimiser or schedule would not use are errors (never silently recorded).

    ``step_options`` maps ``step_size`` and ``gamma`` to ``(value, default)``: they apply to ``schedule='step'``.
    """
    if optimizer != "sgd" and momentum != 0:
        raise ValueError(f"momentum={momentum!r} applies only to optimizer 'sgd', not {optimizer!r}; leave it at 0")
    if schedule != "step":
        for name, (value, default) in step_options.items():
            if value != default:
                raise ValueError(
                    f"{name}={value!r} applies only to schedule 'step', not {schedule!r}; leave it at {default}"
                )


# ---------------------------------------------------------------- tasks and data


def check_multi_input(method: str, requires: str, rep_grads: bool, gradient_path: str) -> None:
    """What multi-input training (each task its own inputs and batches) cannot do, refused before a step.

    Each task's losses come from its own forward pass, so every path that needs one forward over rows
    all tasks share is refused: the representation gradients (``rep_grads=True``, or a method that
    requires them, ``mgda_ub``) — each task's representation is of different inputs, so the rows of
    ``Z`` live in different spaces and every pair of them is orthogonal — and the linear-layer Gramian
    (``gradient_path='gramian'``), which reads the layer inputs of a single forward pass.
    """
    if rep_grads or requires == "rep_grads":
        what = "rep_grads=True" if rep_grads else f"method {method!r} (it needs the representation's gradients)"
        raise ValueError(
            f"{what} does not apply to multi-input data: each task's representation is computed from its own "
            "inputs, so the tasks' representation gradients share no rows (every pair is orthogonal); use the "
            "gradients of the shared parameters (rep_grads=False; mgda instead of mgda_ub)"
        )
    if gradient_path == "gramian":
        raise ValueError(
            "gradient_path='gramian' does not apply to multi-input data: the linear-layer Gramian reads one "
            "forward pass over rows every task shares, and here each task has its own batch; use 'auto'"
        )


def check_task_name(name) -> str:
    """A task name that is safe as a module key and in plot labels (see the module docstring)."""
    rule = (
        f"a task name is 1–{TASK_NAME_MAX} printable characters without '.' or '$', "
        "and not an attribute of torch.nn.Module such as 'to' or 'train'"
    )
    if not isinstance(name, str):
        raise ValueError(f"task name must be a string, got {name!r} ({type(name).__name__}); {rule}")
    if not name or len(name) > TASK_NAME_MAX or not name.isprintable() or "." in name or "$" in name:
        raise ValueError(f"task name {name!r} is not allowed: {rule}")
    if name in MODULE_ATTRIBUTES:
        raise ValueError(f"task name {name!r} is not allowed: it is an attribute of torch.nn.Module; {rule}")
    return name


def check_task_names(value, what: str = "task_names") -> list[str]:
    """A list (or tuple) of distinct strings — a single string is not a list of names."""
    if isinstance(value, str) or not isinstance(value, list | tuple):
        raise ValueError(f"{what} must be a list of task names, got {value!r} ({type(value).__name__})")
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise ValueError(f"{what} must contain only strings, got {bad[0]!r} in {list(value)!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{what} repeats a name: {list(value)!r}")
    return list(value)


def check_finite(name: str, tensor: torch.Tensor, allow_nonfinite: bool = False, shown: int = 5,
                 hint: str = "") -> None:
    """No NaN or inf in ``tensor`` (rows are its first dimension); the message names rows and columns
    (and ends with ``hint`` when given)."""
    if allow_nonfinite or not tensor.dtype.is_floating_point:
        return
    bad = ~torch.isfinite(tensor)
    if not bool(bad.any()):
        return
    flat = bad.reshape(bad.shape[0], -1)
    rows = flat.any(dim=1).nonzero().flatten().tolist()
    cols = flat.any(dim=0).nonzero().flatten().tolist()
    more_rows = f" and {len(rows) - shown} more" if len(rows) > shown else ""
    more_cols = f" and {len(cols) - shown} more" if len(cols) > shown else ""
    first = tensor.reshape(tensor.shape[0], -1)[rows[0], cols[0]].item() if tensor.dim() > 1 else tensor[rows[0]].item()
    raise ValueError(
        f"{name} has non-finite values ({first} …) in rows {rows[:shown]}{more_rows}, "
        f"columns {cols[:shown]}{more_cols} (flattened per row); clean the data, or pass allow_nonfinite=True "
        f"if you mean it{hint}"
    )


def check_gradient_scale(name: str, G: torch.Tensor) -> None:
    """Every row of ``G`` must have ``‖g_t‖ ≤ finfo(dtype).max ** 0.25`` (about 4.3e9 in float32, 1.2e77 in
    float64): the methods multiply Gramian entries (``‖g‖⁴``), which must stay finite in the matrix's dtype."""
    limit = torch.finfo(G.dtype).max ** 0.25
    peak = float(G.abs().max()) if G.numel() else 0.0
    largest = peak * float((G / peak).norm(dim=1).max()) if peak > 0 else 0.0  # no overflow while measuring
    if largest > limit:
        raise ValueError(
            f"{name} has a row of norm {largest:.3g}; the methods take rows with norm ≤ {limit:.3g} in {G.dtype} "
            f"(their products of Gramian entries must stay finite): rescale {name}"
            + (" or pass it as float64" if G.dtype != torch.float64 else "")
        )


GENERATED_VALUES_MAX = 2**28  # 1 GiB of float32: the largest data set a generator builds in memory


def check_generated_size(dataset: str, rows: int, columns: int, options: str) -> None:
    """A generated data set of ``rows × columns`` values must fit :data:`GENERATED_VALUES_MAX`."""
    if rows * columns > GENERATED_VALUES_MAX:
        raise ValueError(
            f"{dataset}: {rows} rows × {columns} columns = {rows * columns:.3g} values would be generated in memory; "
            f"the limit is {GENERATED_VALUES_MAX} (1 GiB of float32): lower {options}"
        )


# ---------------------------------------------------------------- weights


def check_weight_spec(weights, name: str = "weights") -> None:
    """Static weights: ``None``, a list/tuple of numbers (one per task) or a ``{task: weight}`` dict.

    Only the shape of the value is checked here; :func:`check_task_weights` checks it against the tasks.
    """
    if weights is None:
        return
    allowed = "a list with one number per task, or a {task: weight} dict"
    if isinstance(weights, str | bytes) or not isinstance(weights, Mapping | Sequence | torch.Tensor):
        raise ValueError(f"{name} must be {allowed}, got {weights!r} ({type(weights).__name__})")
    values = weights.values() if isinstance(weights, Mapping) else weights
    if isinstance(weights, Mapping):
        keys = [k for k in weights if not isinstance(k, str)]
        if keys:
            raise ValueError(f"{name} must be keyed by task name (a string), got key {keys[0]!r}")
    for v in values:
        number = is_number(v) or (isinstance(v, torch.Tensor) and v.numel() == 1)
        if not number:
            raise ValueError(f"{name} must hold numbers, got {v!r} ({type(v).__name__}) in {weights!r}")


def check_task_weights(weights, task_names: list[str], name: str = "weights") -> list[float]:
    """One finite weight ≥ 0 per task (a dict names tasks; missing ones get 1); at least one > 0."""
    check_weight_spec(weights, name)
    if weights is None:
        values = [1.0] * len(task_names)
    elif isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in task_names]
        if unknown:
            raise ValueError(f"{name} name unknown task(s) {unknown}; the tasks are {task_names}")
        values = [weights.get(t, 1.0) for t in task_names]
    else:
        values = list(weights)
        if len(values) != len(task_names):
            raise ValueError(f"{name} has {len(values)} entries, the data has {len(task_names)} tasks ({task_names})")
    out = []
    for task, v in zip(task_names, values):
        v = float(v)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"weight of task {task!r} must be finite and ≥ 0, got {v!r}")
        out.append(v)
    if sum(out) <= 0:
        raise ValueError(f"at least one weight must be > 0, got {out}")
    return out


# ---------------------------------------------------------------- options checked against their defaults


def check_model_options(cls: type, options: Mapping, where: str) -> None:
    """Each option against the kind of its default in ``cls.__init__`` (see :func:`check_options`)."""
    check_options(cls.__init__, options, where)


def check_options(function, options: Mapping, where: str) -> None:
    """Each option of ``function`` against the kind of its default value.

    ``int`` defaults take ints, ``float`` defaults take numbers, ``bool`` defaults take bools, ``str``
    defaults take strings, tuple defaults take a list/tuple of the kind of their elements (ints when
    empty), and an option called ``seed`` is a seed. Options whose default is ``None`` or absent are
    left to the function (they accept several shapes).
    """
    params = inspect.signature(function).parameters
    for key, value in options.items():
        if key == "seed":
            check_seed(value, f"{where} option seed")
            continue
        if key not in params or params[key].default is inspect.Parameter.empty:
            continue
        check_like_default(f"{where} option {key}", value, params[key].default)


def check_like_default(name: str, value, default) -> None:
    """``value`` must have the kind of ``default`` (see :func:`check_options`)."""
    if isinstance(default, bool):
        check_bool(name, value)
    elif isinstance(default, int):
        check_int(name, value)
    elif isinstance(default, float):
        check_number(name, value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {value!r} ({type(value).__name__})")
    elif isinstance(default, tuple):
        floats = any(isinstance(v, float) for v in default)
        kind, ok = ("numbers", is_number) if floats else ("ints", is_int)
        if isinstance(value, str) or not isinstance(value, list | tuple) or not all(ok(v) for v in value):
            example = list(default) or [32]
            raise ValueError(f"{name} must be a list of {kind} such as {example}, got {value!r}")


# ---------------------------------------------------------------- declared options (methods)


class Constraint(Protocol):
    """What a declared option allows: ``accepts(value)`` decides, ``allowed()`` says it in words."""

    def accepts(self, value) -> bool: ...

    def allowed(self) -> str: ...


def type_note(value) -> str:
    """`` (bool)``, `` (str)`` …: the type of a bad value, for messages (``repr`` alone hides ``'1'`` vs ``1``)."""
    return f" ({type(value).__name__})"


@dataclass(frozen=True)
class Number:
    """A finite int or float (never a bool or a string) in ``[low, high]``; either end may be open or absent.

    ``optional``: ``None`` is allowed too (it then means the method's own choice, e.g. a solver's tolerance).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    optional: bool = False

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        if not (is_number(value) and math.isfinite(value)):
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def bounds(self) -> str:
        """`` ≥ 0``, `` > 0``, `` in [0, 1)`` … (empty when unbounded)."""
        if self.low is not None and self.high is not None:
            return f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f" {'>' if self.low_open else '≥'} {self.low:g}"
        return "" if self.high is None else f" {'<' if self.high_open else '≤'} {self.high:g}"

    def allowed(self) -> str:
        return f"a finite number{self.bounds()}" + (" or None" if self.optional else "")


@dataclass(frozen=True)
class Integer:
    """An int (never a bool, a float such as ``2.0`` or a string) in ``[low, high]``; ``optional``: or ``None``."""

    low: int | None = None
    high: int | None = None
    optional: bool = False

    def accepts(self, value) -> bool:
        if value is None:
            return self.optional
        return is_int(value) and (self.low is None or value >= self.low) and (self.high is None or value <= self.high)

    def allowed(self) -> str:
        return f"an int{describe_range(self.low, self.high)}" + (" or None" if self.optional else "")


@dataclass(frozen=True)
class Flag:
    """``True`` or ``False`` (not ``0``/``1``, not the string ``'no'``)."""

    def accepts(self, value) -> bool:
        return isinstance(value, bool)

    def allowed(self) -> str:
        return "True or False"


@dataclass(frozen=True)
class OneOf:
    """One of a few values, of the same type as written (``rescale=True`` is not ``1``; ``'1'`` is not ``1``)."""

    choices: tuple

    def accepts(self, value) -> bool:
        return any(type(value) is type(choice) and value == choice for choice in self.choices)

    def allowed(self) -> str:
        return f"one of {', '.join(repr(c) for c in self.choices)}"


@dataclass(frozen=True)
class Numbers:
    """A number as :class:`Number` allows, or a non-empty list (or tuple) of such numbers (e.g. one per task)."""

    each: Number

    def accepts(self, value) -> bool:
        if isinstance(value, list | tuple):
            return len(value) > 0 and all(v is not None and self.each.accepts(v) for v in value)
        return self.each.accepts(value)

    def allowed(self) -> str:
        return f"{self.each.allowed()}, or a list of such numbers"


@dataclass(frozen=True)
class TaskWeights:
    """``None``, a list of finite numbers ≥ 0 (one per task) or a ``{task: weight}`` dict of them.

    The number of entries and the task names are checked against the tasks when the method is reset
    (:func:`check_task_weights`).
    """

    def accepts(self, value) -> bool:
        if value is None:
            return True
        if isinstance(value, torch.Tensor):
            value = value.tolist() if value.dim() == 1 else None
        if isinstance(value, Mapping):
            return all(isinstance(k, str) for k in value) and all(weight_ok(v) for v in value.values())
        return isinstance(value, list | tuple) and all(weight_ok(v) for v in value)

    def allowed(self) -> str:
        return "None, a list with one number per task (finite, ≥ 0) or a {task: weight} dict keyed by task name"


def weight_ok(value) -> bool:
    return is_number(value) and math.isfinite(value) and value >= 0


def check_declared(name: str, value, constraint: Constraint) -> None:
    """``value`` must be what ``constraint`` allows; the message names the option, the value and the rule."""
    if not constraint.accepts(value):
        raise ValueError(f"{name} must be {constraint.allowed()}, got {value!r}{type_note(value)}")


def check_option_names(owner: str, declared: Mapping[str, Constraint], given: Mapping) -> None:
    """Every name in ``given`` must be declared (a misspelt option is an error, never ignored)."""
    unknown = [k for k in given if k not in declared]
    if unknown:
        raise ValueError(f"method {owner!r} has no option(s) {unknown}; its options are {list(declared)}")


def check_declared_options(owner: str, declared: Mapping[str, Constraint], given: Mapping) -> None:
    """The one check of a method's options: names, then each value against its declared constraint.

    Called by :class:`mtl_lab.weighting.base.Weighting` when a method is built, so ``create``,
    ``aggregate``, the CLI, study files and ``LabConfig`` all reach it with the same values.
    """
    check_option_names(owner, declared, given)
    for key, value in given.items():
        check_declared(f"{owner} option {key}", value, declared[key])
