"""The machinery every exercise check shares: cases, a grader, and the messages a student reads.

A check runs a student's function on a list of seeded :class:`Case` objects (edge cases first, then
random ones) and compares each answer with the library's. The :class:`Grader` turns every way this can
go wrong into one :class:`ExerciseError` whose message names the case, its inputs (rounded), the
expected and the received value, and a hint:

* the function is still the stub (``NotImplementedError``) → "not written yet", nothing else;
* it raised another exception → the exception, the case, and a hint when the error is a known one;
* it returned the wrong type, shape, or a NaN → what was expected instead;
* it changed its inputs in place → "work on a copy";
* the value is off → expected/received, and the hint of the first known :class:`Mistake` whose
  answer matches what was received (else the exercise's general hint).

On success the check prints one deterministic line (``✓ name: 25 cases passed``), which a notebook
stores and nbval compares.
"""

from __future__ import annotations

import copy
import math
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, NoReturn

import torch

FORGOT_RETURN = "did you forget the `return` statement?"
RTOL = 1e-5  # relative tolerance: loose enough for an answer computed in float32
ATOL = 1e-8  # absolute tolerance, for values that should be 0


class ExerciseError(AssertionError):
    """A failed exercise check. The message says which case failed, what was expected, and a hint."""


@dataclass(frozen=True)
class Case:
    """One input of an exercise check.

    Attributes:
        kind: a few words on what the case tests ("conflicting pair", "zero g_j" …).
        inputs: the arguments, by name, passed positionally to the student's function in this order.
        shown: what the failure message prints as the inputs (``None``: the inputs themselves).
        note: a hint that belongs to this case (an edge case's trap), shown when it fails.
        number: the case's position, from 1 (set by the :class:`Grader`).
    """

    kind: str
    inputs: dict[str, Any]
    shown: dict[str, Any] | None = None
    note: str = ""
    number: int = 0


@dataclass(frozen=True)
class Mistake:
    """A typical wrong solution: ``answer`` computes what it returns from the case's inputs."""

    hint: str
    answer: Callable[..., Any]


@dataclass(frozen=True)
class ExceptionHint:
    """A hint for an exception whose message contains ``fragment``."""

    fragment: str
    hint: str


# --------------------------------------------------------------------------- formatting


def fmt(value: Any, digits: int = 4) -> str:
    """A short, rounded text form of a number, tensor, list or dict, for failure messages."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.dim() == 0:
            return fmt(value.item(), digits)
        return "[" + ", ".join(fmt(v, digits) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {fmt(v, digits)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        inner = ", ".join(fmt(v, digits) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    return repr(value)


def type_name(value: Any) -> str:
    """``"a list"``, ``"None"``, ``"a numpy.ndarray"``: how a failure message names a returned value."""
    if value is None:
        return "None"
    cls = type(value)
    name = cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__.split('.')[0]}.{cls.__name__}"
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


# --------------------------------------------------------------------------- comparing


def close(received: Any, expected: Any, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Whether two numbers or tensors agree within the tolerances (shapes must match; NaN never agrees)."""
    try:
        a = torch.as_tensor(received, dtype=torch.float64)
        b = torch.as_tensor(expected, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        return False
    return a.shape == b.shape and bool(torch.allclose(a, b, rtol=rtol, atol=atol))


def snapshot(value: Any) -> Any:
    """A copy of an input to compare with after the call (``None`` for inputs that are not checked)."""
    if isinstance(value, torch.Tensor):
        return None if value.requires_grad else value.detach().clone()
    if isinstance(value, (dict, list, tuple)) and not any(isinstance(v, torch.Tensor) for v in _leaves(value)):
        return copy.deepcopy(value)
    return None


def _leaves(value: Any) -> Iterator[Any]:
    items = value.values() if isinstance(value, dict) else value
    for item in items:
        if isinstance(item, (dict, list, tuple)):
            yield from _leaves(item)
        else:
            yield item


def unchanged(value: Any, before: Any) -> bool:
    """Whether an input still equals its :func:`snapshot`."""
    if before is None:
        return True
    if isinstance(before, torch.Tensor):
        return isinstance(value, torch.Tensor) and value.shape == before.shape and torch.equal(value, before)
    return value == before


# --------------------------------------------------------------------------- the grader


class Grader:
    """Runs one exercise's cases against a student's function; every problem becomes an :class:`ExerciseError`.

    Args:
        exercise: the exercise's name, as in :data:`mtl_lab.exercises.EXERCISES`.
        function: the student's function.
        cases: the cases, in order (numbered here from 1).
        hint: the general hint, shown when no more specific one applies.
        exception_hints: hints for exceptions the function may raise (matched on the message).
    """

    def __init__(
        self,
        exercise: str,
        function: Callable,
        cases: Sequence[Case],
        hint: str,
        exception_hints: Sequence[ExceptionHint] = (),
    ) -> None:
        if not callable(function):
            raise ExerciseError(f"{exercise}: pass your function itself to the check, got {type_name(function)}")
        self.exercise = exercise
        self.function = function
        self.cases = [replace(case, number=i) for i, case in enumerate(cases, start=1)]
        self.hint = hint
        self.exception_hints = list(exception_hints)

    @property
    def function_name(self) -> str:
        return getattr(self.function, "__name__", "your function")

    # ---- calling the student's function

    def call(self, case: Case) -> Any:
        """The student's answer on ``case``; tensors are passed as copies and checked for in-place changes."""
        args = [_fresh(v) for v in case.inputs.values()]
        before = [snapshot(v) for v in args]
        try:
            result = self.function(*args)
        except NotImplementedError as exc:
            raise ExerciseError(self.not_written_message(exc)) from None
        except Exception as exc:
            hint = next((h.hint for h in self.exception_hints if h.fragment in str(exc)), case.note or self.hint)
            self.fail(case, f"{self.function_name} raised {type(exc).__name__}: {exc}", hint=hint, cause=exc)
        for name, value, saved in zip(case.inputs, args, before):
            if not unchanged(value, saved):
                self.fail(
                    case,
                    f"{self.function_name} changed its input {name!r} in place",
                    hint=f"work on a copy (e.g. {name}.clone() for a tensor) instead of modifying {name} itself",
                )
        return result

    def not_written_message(self, exc: NotImplementedError) -> str:
        """The "not written yet" message, naming the function that raised (maybe one the student's function calls)."""
        reason = f" ({exc})" if str(exc) else ""
        raised_in = traceback.extract_tb(exc.__traceback__)[-1].name
        who = self.function_name
        if raised_in not in (who, "<lambda>", "<module>"):
            who = f"{raised_in} (called by {who})"
        return (
            f"{self.exercise}: {who} is not written yet — it raised NotImplementedError{reason}. "
            f"Replace the `raise NotImplementedError(...)` line with your code, run that cell, then run this check "
            f"again."
        )

    # ---- reading the answer

    def vector(self, case: Case, value: Any, length: int) -> torch.Tensor:
        """``value`` as a float64 vector of ``length`` entries, or a failure naming what is wrong with it."""
        return self.tensor(case, value, (length,))

    def tensor(self, case: Case, value: Any, shape: tuple[int, ...]) -> torch.Tensor:
        """``value`` as a finite float64 tensor of ``shape``, or a failure naming what is wrong with it."""
        returned = f"{self.function_name} returned"
        if not isinstance(value, torch.Tensor):
            self.fail(case, f"{returned} {type_name(value)}, not a torch.Tensor", received=value,
                      hint=FORGOT_RETURN if value is None else
                      "return a torch.Tensor (build it with torch operations, torch.stack or torch.tensor)")
        if tuple(value.shape) != shape:
            transposed = len(shape) == 2 and tuple(value.shape) == shape[::-1]
            hint = "one row per task: check along which dimension you stacked" if transposed else \
                f"return a tensor of shape {shape}"
            self.fail(case, f"{returned} a tensor of shape {tuple(value.shape)}, expected {shape}", hint=hint)
        if value.is_complex() or not (value.dtype.is_floating_point or value.dtype in _INTEGER_TYPES):
            self.fail(case, f"{returned} a tensor of dtype {value.dtype}, expected real numbers",
                      hint="return a float tensor (e.g. torch.float64, like the inputs)")
        value = value.detach().to("cpu", torch.float64)
        self.finite(case, value)
        return value

    def number(self, case: Case, value: Any) -> float:
        """``value`` as a finite Python float (a number or a one-element tensor), or a failure."""
        returned = f"{self.function_name} returned"
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                self.fail(case, f"{returned} a tensor of shape {tuple(value.shape)}, expected one number",
                          received=value, hint="return a single number (a float or a 0-d tensor)")
            value = value.detach().reshape(()).item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(case, f"{returned} {type_name(value)}, expected a number", received=value,
                      hint=FORGOT_RETURN if value is None else "return a single number (a float or a 0-d tensor)")
        value = float(value)
        self.finite(case, value)
        return value

    def finite(self, case: Case, value: torch.Tensor | float, problem: str = "") -> None:
        """Fail when ``value`` holds a NaN or an infinity (the case's own note is the hint: edge cases say why)."""
        ok = math.isfinite(value) if isinstance(value, float) else bool(torch.isfinite(value).all())
        if not ok:
            self.fail(case, problem or f"{self.function_name} returned NaN or infinity", received=value,
                      hint=case.note or "look for a division by zero or the log of 0")

    # ---- verdicts

    def diagnose(self, case: Case, received: Any, mistakes: Sequence[Mistake], rtol: float = RTOL) -> str:
        """The hint of the first mistake whose answer matches ``received``; else the case's note or the general hint."""
        for mistake in mistakes:
            try:
                wrong = mistake.answer(*[_fresh(v) for v in case.inputs.values()])
            except Exception:  # a mistake that cannot even be computed on this case is not the one made
                continue
            if close(received, wrong, rtol=rtol):
                return mistake.hint
        return case.note or self.hint

    def fail(
        self,
        case: Case,
        problem: str,
        expected: Any = None,
        received: Any = None,
        hint: str = "",
        cause: BaseException | None = None,
    ) -> NoReturn:
        """Raise the :class:`ExerciseError` for ``case``: the problem, the inputs, expected/received, the hint."""
        shown = case.shown if case.shown is not None else case.inputs
        lines = [
            f"{self.exercise} failed on case {case.number} of {len(self.cases)} ({case.kind}): {problem}",
            "  inputs:   " + ", ".join(f"{name} = {fmt(value)}" for name, value in shown.items()),
        ]
        if expected is not None:
            lines.append(f"  expected: {fmt(expected)}")
        if received is not None:
            lines.append(f"  received: {fmt(received)}")
        lines.append(f"  hint: {hint or case.note or self.hint}")
        error = ExerciseError("\n".join(lines))
        if cause is not None:
            raise error from cause
        raise error

    def passed(self) -> None:
        """Print the one-line success message (deterministic, so a notebook can store it)."""
        print(f"✓ {self.exercise}: {len(self.cases)} cases passed")


_INTEGER_TYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _fresh(value: Any) -> Any:
    """A copy of a case input for one call: tensors that need no gradient are cloned, the rest deep-copied."""
    if isinstance(value, torch.Tensor):
        return value if value.requires_grad else value.clone()
    if isinstance(value, (dict, list, tuple)) and not any(isinstance(v, torch.Tensor) for v in _leaves(value)):
        return copy.deepcopy(value)
    return value


def check_n_cases(n_cases: Any, minimum: int = 1) -> int:
    """``n_cases`` as an int ≥ ``minimum``; ``ValueError`` otherwise (a bad call of the check, not of the student)."""
    if isinstance(n_cases, bool) or not isinstance(n_cases, int) or n_cases < minimum:
        raise ValueError(f"n_cases must be an int ≥ {minimum}, got {n_cases!r}")
    return n_cases


def take(edge_cases: list[Case], random_case: Callable[[torch.Generator, int], Case], n_cases: int,
         seed: int) -> list[Case]:
    """The first ``n_cases`` of the edge cases followed by random ones drawn from a generator seeded with ``seed``."""
    n_cases = check_n_cases(n_cases)
    generator = torch.Generator().manual_seed(seed)
    cases = edge_cases[:n_cases]
    cases += [random_case(generator, i) for i in range(n_cases - len(cases))]
    return cases
