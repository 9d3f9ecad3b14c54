"""Small pieces the widget views share: HTML tables, closing widget trees, one registry of live views.

* :func:`html_table` — rows of strings as a small HTML table.
* :func:`replace_previous` — a view registered under a name replaces (stops and closes) the previous
  one of that name, so re-running a notebook cell leaves no old run behind.
"""

from __future__ import annotations

import base64
import html
import weakref

import ipywidgets as W

LIVE_VIEWS: dict[str, weakref.ref] = {}


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
    """Close a widget, every widget inside it, and their layout and style models (ipywidgets' ``close``
    leaves all of those open: each is a model of its own in the kernel and the browser)."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    for part in (getattr(widget, "layout", None), getattr(widget, "style", None)):
        if isinstance(part, W.Widget):
            part.close()
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


def view_bundle(view, widget: W.Widget, png: bytes | None, **kwargs) -> dict:
    """The display bundle of an instrument: its live widget, its short ``repr`` as text, and — for an
    exported notebook (``nbconvert --to html``), a handout, or any front end without the widget — a PNG of
    its last state, embedded (nothing fetched from anywhere). A live front end draws the widget."""
    bundle = widget._repr_mimebundle_(**kwargs)
    bundle["text/plain"] = repr(view)
    if png:
        bundle["image/png"] = base64.b64encode(png).decode("ascii")
    return bundle
