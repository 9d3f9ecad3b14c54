"""Small pieces the widget views share: option inputs built from a signature, HTML tables, one registry.

* :func:`option_widget` / :func:`read_option` — an input for one hyper-parameter, chosen from its
  default: ``float`` → FloatText, ``int`` → IntText, ``bool`` → Checkbox, ``str`` → Text (as typed),
  anything else (``None``, tuples, lists) → Text holding JSON.
* :func:`html_table` — rows of strings as a small HTML table.
* :func:`replace_previous` — a view registered under a name replaces (stops and closes) the previous
  one of that name, so re-running a notebook cell leaves no old run behind.
"""

from __future__ import annotations

import html
import inspect
import json
import weakref

import ipywidgets as W

LIVE_VIEWS: dict[str, weakref.ref] = {}


def option_widget(param: inspect.Parameter, value=inspect.Parameter.empty) -> W.Widget:
    """An input for a hyper-parameter, set to ``value`` (or the parameter's default)."""
    default = param.default
    value = default if value is inspect.Parameter.empty else value
    layout = W.Layout(width="190px")
    style = {"description_width": "initial"}
    if isinstance(default, bool):
        return W.Checkbox(value=bool(value), description=param.name, indent=False, layout=layout)
    if isinstance(default, int):
        return W.IntText(value=int(value), description=param.name, layout=layout, style=style)
    if isinstance(default, float):
        return W.FloatText(value=float(value), description=param.name, layout=layout, style=style)
    if isinstance(default, str):
        return W.Text(value=str(value), description=param.name, layout=layout, style=style)
    return W.Text(value=json.dumps(None if value is inspect.Parameter.empty else value), description=param.name,
                  layout=W.Layout(width="230px"), style=style, placeholder="JSON, e.g. null or [0.1, 0.2]")


def read_option(param: inspect.Parameter, widget: W.Widget):
    """The value of an option input; JSON inputs are parsed (a clear ``ValueError`` when they are not JSON)."""
    default = param.default
    if isinstance(default, bool | int | float | str):
        return widget.value
    try:
        return json.loads(widget.value)
    except json.JSONDecodeError:
        message = f"option {param.name!r} must be JSON (e.g. null, 0.5 or [1, 2]), got {widget.value!r}"
        raise ValueError(message) from None


def html_table(header: list[str], rows: list[list[str]], caption: str = "") -> str:
    """A compact HTML table (cells are escaped)."""
    style = "border-collapse:collapse;font-size:12px;margin:4px 0"
    cell = "border:1px solid #ccc;padding:2px 8px;text-align:right"
    head = "".join(f"<th style='{cell};background:#f3f3f3'>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td style='{cell}'>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption style='text-align:left;font-size:12px'>{html.escape(caption)}</caption>" if caption else ""
    return f"<table style='{style}'>{cap}<tr>{head}</tr>{body}</table>"


def status_html(state: str, text: str, color: str = "#333") -> str:
    """The status line: a coloured state word and a message."""
    return (f"<span style='font-family:monospace;font-size:12px'><b style='color:{color}'>{html.escape(state)}</b>"
            f" {html.escape(text)}</span>")


def close_tree(widget: W.Widget) -> None:
    """Close a widget and every widget inside it (ipywidgets' ``close`` leaves the children open)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


def close_all(widgets) -> None:
    """Close widgets that are being replaced (old task boxes, old option inputs)."""
    for widget in widgets:
        close_tree(widget)


def replace_previous(name: str, view) -> None:
    """Register ``view`` under ``name``; the view registered before under that name is closed."""
    ref = LIVE_VIEWS.get(name)
    previous = ref() if ref is not None else None
    if previous is not None and previous is not view:
        previous.close()
    LIVE_VIEWS[name] = weakref.ref(view)
