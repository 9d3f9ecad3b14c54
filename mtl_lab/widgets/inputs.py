"""Typed inputs of the panels: one widget per option, chosen from its type, never clamping a value.

* :func:`option_widget` / :func:`read_option` — an input for one keyword parameter, chosen from its
  annotation and default: ``bool`` → checkbox; ``Literal[...]`` → a choice; ``int`` / ``float`` → a
  number box (no bounds: the value is checked where the API checks it, and a bad one is reported, not
  clamped); ``X | None`` → an *auto* checkbox next to the number (checked = ``None``); a tuple of
  numbers → a box of comma-separated numbers; ``str`` → text as typed.
* :func:`method_option_widget` / :func:`read_method_option` — the input for a method's option, chosen
  from the constraint the method declares (:mod:`mtl_lab.validate`): ``Flag`` → checkbox, ``OneOf`` and
  the inner method of a wrapper → a choice, ``Integer`` / ``Number`` → a number box (with *auto* when
  ``None`` is allowed), ``Numbers`` → numbers separated by commas. Every value the method accepts is
  shown as itself and read back as a value it accepts (never as text that it would then refuse).
* :func:`model_parameters` / :func:`model_option_widget` / :func:`read_model_option` — the same for an
  architecture's options (and its trunk's), read from their signatures.
* :class:`WeightInput` — a task weight: a log-scale slider (0.001 … 100, 1 in the middle of the track)
  and a box holding the exact value typed. The box is the value; the slider only shows it (a value off
  the slider's range, 0 or 500, stays exactly as typed).
* :class:`MethodToggles` — methods to compare as toggle buttons in their palette colours: a click adds
  or removes one (no Ctrl-click in a long list), every choice visible at once.

Widget ranges are display ranges, never a second validator: whatever the API accepts, the panel
accepts; whatever it refuses, the panel reports with the API's message.
"""

from __future__ import annotations

import ast
import html
import inspect
import json
import math
import typing

import ipywidgets as W
import traitlets

from mtl_lab.models import ARCHITECTURES, architecture_options
from mtl_lab.models.trunks import TRUNKS
from mtl_lab.palette import method_color
from mtl_lab.validate import Constraint, Flag, Integer, Number, Numbers, OneOf, TaskWeights
from mtl_lab.weighting import METHODS
from mtl_lab.weighting.cr_mogm import InnerMethod

STYLE = {"description_width": "initial"}


def annotation_text(param: inspect.Parameter) -> str:
    ann = param.annotation
    if ann is inspect.Parameter.empty:
        return ""
    if isinstance(ann, str):
        return ann
    return ann.__name__ if isinstance(ann, type) else str(ann).replace("typing.", "")


def literal_choices(param: inspect.Parameter) -> tuple | None:
    """The choices of a ``Literal[...]`` annotation (``None`` for any other)."""
    if typing.get_origin(param.annotation) is typing.Literal:
        return typing.get_args(param.annotation)
    text = annotation_text(param).strip()
    for prefix in ("Literal[", "typing.Literal["):
        if text.startswith(prefix) and text.endswith("]"):
            try:
                values = ast.literal_eval(f"({text[len(prefix):-1]},)")
            except (ValueError, SyntaxError):
                return None
            return tuple(values)
    return None


def number_kind(param: inspect.Parameter) -> str | None:
    """``"int"`` or ``"float"`` for a number parameter (from its default, else its annotation)."""
    default = param.default
    if isinstance(default, bool):
        return None
    if isinstance(default, int):
        return "int"
    if isinstance(default, float):
        return "float"
    text = annotation_text(param).replace(" ", "")
    if text.startswith("int|") or text.endswith("|int") or text == "int":
        return "int"
    if text.startswith("float|") or text.endswith("|float") or text == "float":
        return "float"
    return None


def optional(param: inspect.Parameter) -> bool:
    return param.default is None or "None" in annotation_text(param)


class OptionalNumber(W.HBox):
    """A number, or ``None`` (*auto*: the method's own choice)."""

    def __init__(self, name: str, kind: str, value) -> None:
        self.auto = W.Checkbox(value=value is None, description=f"{name}: auto", indent=False,
                               layout=W.Layout(width="auto"))
        box = W.IntText if kind == "int" else W.FloatText
        self.number = box(value=0 if value is None else value, layout=W.Layout(width="90px"),
                          disabled=value is None)
        self.auto.observe(lambda change: setattr(self.number, "disabled", change["new"]), names="value")
        super().__init__([self.auto, self.number], layout=W.Layout(width="auto", margin="0 8px 0 0"))

    @property
    def value(self):
        return None if self.auto.value else self.number.value

    def close(self) -> None:
        self.auto.close()
        self.number.close()
        super().close()


class NumberList(W.Text):
    """A tuple of numbers typed as ``64, 64``."""

    def __init__(self, name: str, value) -> None:
        text = ", ".join(repr(v) for v in (value or ()))  # repr: a float is shown to its last digit
        super().__init__(value=text, description=name, style=STYLE, layout=W.Layout(width="190px"),
                         placeholder="e.g. 64, 64")


def parse_numbers(name: str, text: str) -> list:
    """``"64, 64"`` → ``[64, 64]``; ``ValueError`` naming the option and the text otherwise."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    out = []
    for part in parts:
        try:
            value = ast.literal_eval(part)
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"option {name!r} takes numbers separated by commas (e.g. 64, 64), got {text!r}")
        out.append(value)
    return out


def option_widget(param: inspect.Parameter, value=inspect.Parameter.empty) -> W.Widget:
    """An input for a keyword parameter, set to ``value`` (or the parameter's default)."""
    default = param.default
    value = default if value is inspect.Parameter.empty else value
    choices = literal_choices(param)
    if choices is not None:
        options = list(choices) if value in choices else [*choices, value]  # an unknown value is shown, not replaced
        return W.Dropdown(options=options, value=value, description=param.name, style=STYLE,
                          layout=W.Layout(width="auto"))
    if isinstance(default, bool):
        return W.Checkbox(value=bool(value), description=param.name, indent=False, layout=W.Layout(width="auto"))
    kind = number_kind(param)
    if kind is not None and optional(param):
        return OptionalNumber(param.name, kind, value)
    if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        return W.IntText(value=value, description=param.name, style=STYLE, layout=W.Layout(width="170px"))
    if kind is not None and isinstance(value, int | float) and not isinstance(value, bool):
        return W.FloatText(value=float(value), description=param.name, style=STYLE, layout=W.Layout(width="170px"))
    if isinstance(default, tuple | list) or isinstance(value, tuple | list):
        return NumberList(param.name, value)
    return W.Text(value="" if value is None else str(value), description=param.name, style=STYLE,
                  layout=W.Layout(width="190px"))


def read_option(param: inspect.Parameter, widget: W.Widget):
    """The value an option input holds (number lists parsed; ``ValueError`` naming a bad one)."""
    if isinstance(widget, NumberList):
        return parse_numbers(param.name, widget.value)
    return widget.value


def method_option_widget(name: str, constraint: Constraint, value) -> W.Widget:
    """The input for a method's option ``name`` declared as ``constraint``, set to ``value`` (accepted by it)."""
    if isinstance(constraint, OneOf | InnerMethod):
        choices = constraint.choices if isinstance(constraint, OneOf) else tuple(n for n in METHODS
                                                                                 if constraint.accepts(n))
        pairs = [(str(c), c) for c in choices]
        if not any(type(c) is type(value) and c == value for c in choices):  # e.g. a ready inner instance
            pairs.append((getattr(value, "name", str(value)), value))
        return W.Dropdown(options=pairs, value=value, description=name, style=STYLE, layout=W.Layout(width="auto"))
    if isinstance(constraint, Flag):
        return W.Checkbox(value=value, description=name, indent=False, layout=W.Layout(width="auto"))
    if isinstance(constraint, Integer | Number):
        kind = "int" if isinstance(constraint, Integer) else "float"
        if constraint.optional:
            return OptionalNumber(name, kind, value)
        box = W.IntText if kind == "int" else W.FloatText
        return box(value=value, description=name, style=STYLE, layout=W.Layout(width="170px"))
    if isinstance(constraint, Numbers):
        return NumberList(name, value if isinstance(value, list | tuple) else [value])
    if isinstance(constraint, TaskWeights) and not isinstance(value, dict):  # one number per task; empty = None
        return NumberList(name, value)
    raise ValueError(f"option {name!r}: the panel has no input for {type(constraint).__name__} options")


def read_method_option(name: str, constraint: Constraint, widget: W.Widget):
    """The value a method option's input holds; a single entry of a ``Numbers`` box is that number."""
    if isinstance(widget, NumberList):
        values = parse_numbers(name, widget.value)
        if isinstance(constraint, TaskWeights):
            return values or None
        return values[0] if isinstance(constraint, Numbers) and len(values) == 1 else values
    return widget.value


def swatch_svg(color: str, dash: tuple[float, ...] = ()) -> str:
    """A task's swatch as the chart's legend draws it: a short line in its colour and its dash."""
    pattern = f" stroke-dasharray='{' '.join(f'{v:g}' for v in dash)}'" if dash else ""
    return (f"<svg class='mtl-swatch' width='26' height='8' style='vertical-align:middle'><line x1='0' y1='4' "
            f"x2='26' y2='4' stroke='{color}' stroke-width='2.5'{pattern}/></svg>")


class WeightInput(W.HBox):
    """A task weight: a log slider for moving it, a box for the exact value (the box is the value)."""

    LOW, HIGH = -3.0, 2.0  # the slider shows 0.001 … 100; the box takes any value the method accepts

    def __init__(self, task: str, value: float, color: str, dash: tuple[float, ...] = ()) -> None:
        self.task = task
        self.moving = False
        self.color, self.dash = color, tuple(dash)
        self.label = W.HTML(f"{swatch_svg(color, dash)}&nbsp;{html.escape(task)}",
                            layout=W.Layout(width="auto", min_width="70px"))
        self.slider = W.FloatLogSlider(value=1.0, base=10, min=self.LOW, max=self.HIGH, step=0.05,
                                       readout=False, continuous_update=False, layout=W.Layout(width="150px"))
        self.box = W.FloatText(value=float(value), layout=W.Layout(width="80px"))
        self.show(self.box.value)
        self.slider.observe(self.on_slider, names="value")
        self.box.observe(lambda change: self.show(change["new"]), names="value")
        super().__init__([self.label, self.slider, self.box], layout=W.Layout(width="auto", margin="0 10px 0 0"))
        self.add_class("mtl-weight")

    @property
    def value(self) -> float:
        return self.box.value

    def set(self, value: float) -> None:
        self.box.value = value

    def show(self, value: float) -> None:
        """Move the slider to ``value`` (to an end of its track when off the range), without feedback."""
        self.moving = True
        try:
            exponent = math.log10(value) if isinstance(value, int | float) and value > 0 else self.LOW
            self.slider.value = 10 ** min(max(exponent, self.LOW), self.HIGH)
        finally:
            self.moving = False

    def on_slider(self, change) -> None:
        if not self.moving:
            self.box.value = float(f"{change['new']:.3g}")

    def observe_value(self, handler) -> None:
        """``handler(value)`` when the weight changes (typed or dragged)."""
        self.box.observe(lambda change: handler(change["new"]), names="value")

    def set_disabled(self, disabled: bool) -> None:
        self.slider.disabled = disabled
        self.box.disabled = disabled

    def close(self) -> None:
        for w in (self.label, self.slider, self.box):
            w.close()
        super().close()


# ---------------------------------------------------------------- model options

def model_parameters(architecture: str, trunk: str | None = None) -> list[inspect.Parameter]:
    """The options of an architecture (and of its trunk, for those that pass options on), with defaults."""
    allowed = architecture_options(architecture, trunk)
    params = dict(inspect.signature(ARCHITECTURES[architecture].__init__).parameters)
    kind = trunk or (params["trunk"].default if "trunk" in params else None)
    if kind in TRUNKS:
        params.update({k: v for k, v in inspect.signature(TRUNKS[kind].__init__).parameters.items() if k not in params})
    return [params[name] for name in allowed if name in params]


def set_disabled(widget: W.Widget, disabled: bool) -> None:
    for child in getattr(widget, "children", ()):
        set_disabled(child, disabled)
    if hasattr(widget, "disabled"):
        widget.disabled = disabled


def same_value(a, b) -> bool:
    """Equal as settings (a list typed for a tuple default counts as the same)."""
    return (list(a) if isinstance(a, tuple) else a) == (list(b) if isinstance(b, tuple) else b)


def model_option_widget(param: inspect.Parameter, values: dict) -> W.Widget:
    """A typed input for a model option; options without a simple type take JSON (empty = default)."""
    value = values.get(param.name, param.default)
    if param.name == "trunk" and isinstance(param.default, str):
        options = list(TRUNKS) if value in TRUNKS else [*TRUNKS, value]
        return W.Dropdown(options=options, value=value, description="trunk", style=STYLE,
                          layout=W.Layout(width="auto"))
    simple = isinstance(param.default, bool | int | float | str | tuple) or isinstance(value, int | float | list)
    if simple and value is not None:
        return option_widget(param, tuple(value) if isinstance(value, list) else value)
    text = "" if value is None else json.dumps(value)
    return W.Text(value=text, description=param.name, style={"description_width": "initial"},
                  layout=W.Layout(width="230px"), placeholder="default (JSON to set)")


def read_model_option(param: inspect.Parameter, widget: W.Widget):
    if isinstance(widget, W.Text) and not isinstance(param.default, str) and type(widget) is W.Text:
        text = widget.value.strip()
        if not text:
            return param.default
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise ValueError(f"model option {param.name!r} must be JSON (e.g. [[0, 1], [2]]), got {text!r}") from None
    value = read_option(param, widget)
    return list(value) if isinstance(value, tuple) else value


class MethodToggles(W.HBox):
    """One toggle button per method, its label in the method's colour; ``value`` is the tuple of chosen
    methods in the order of ``names`` (observe it like any widget value)."""

    value = traitlets.Tuple()

    def __init__(self, names: list[str], value: tuple[str, ...] | list[str]) -> None:
        unknown = [m for m in value if m not in names]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; choose from {list(names)}")
        self.buttons = {}
        for name in names:
            button = W.ToggleButton(value=name in value, description=name, tooltip=f"compare {name}",
                                    layout=W.Layout(width="auto", min_width="64px", margin="1px"))
            button.style.text_color = method_color(name)
            button.style.font_weight = "bold"
            self.buttons[name] = button
        super().__init__(list(self.buttons.values()), layout=W.Layout(flex_flow="row wrap", width="100%"))
        self.add_class("mtl-method-toggles")
        self.value = tuple(n for n in names if n in value)
        for button in self.buttons.values():
            button.observe(lambda _: self.read_buttons(), names="value")

    def read_buttons(self) -> None:
        self.value = tuple(name for name, button in self.buttons.items() if button.value)

    @traitlets.observe("value")
    def show_value(self, change) -> None:
        unknown = [m for m in change["new"] if m not in self.buttons]
        if unknown:
            raise traitlets.TraitError(f"unknown method(s) {unknown}; choose from {list(self.buttons)}")
        for name, button in self.buttons.items():
            if button.value != (name in change["new"]):
                button.value = name in change["new"]
