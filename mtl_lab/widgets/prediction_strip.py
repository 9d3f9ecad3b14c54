"""The Lab's prediction strip: at the end of a run on pixel tasks, a few validation inputs with the
predicted and the true segmentation, depth and normals (:func:`mtl_lab.plots_dense.prediction_strip`).

* Drawn once when a run ends (completed, stopped or paused after Step / Epoch), never while it trains:
  a figure takes a few tenths of a second, which the loop must not wait for.
* Shown as a PNG rendered at twice the display density (:func:`mtl_lab.plots.to_png`) and displayed at
  the figure's own width (narrower columns scale it down): crisp on a projector.
* The same PNG goes under the live chart's picture in the Lab's exported image (:func:`stack_png`), so an
  exported notebook shows what the run predicted.
* Data without pixel tasks draw nothing: the box stays empty (no image element in the page).
"""

from __future__ import annotations

import io

import ipywidgets as W
from PIL import Image

from mtl_lab.plots import display_width, to_png
from mtl_lab.plots_dense import prediction_strip, predictions
from mtl_lab.training import Trainer
from mtl_lab.widgets.common import close_tree

N_IMAGES = 3


class PredictionStrip:
    """The strip's box (:attr:`widget`: one image once drawn, empty before) and the PNG it shows (:attr:`png`,
    ``b""`` when none)."""

    def __init__(self, n_images: int = N_IMAGES) -> None:
        self.n_images = n_images
        self.png = b""
        self.widget = W.Box(layout=W.Layout(width="100%"))  # empty (no image element) until a strip is drawn

    def draw(self, trainer: Trainer) -> bool:
        """Draw the first validation images (the test split's when there is no validation split) with the
        model's predictions as they are now; ``False`` (and nothing shown) when no task is a pixel task."""
        data = trainer.data
        if not any(task.is_pixel for task in data.tasks):
            self.clear()
            return False
        split = data.val if len(data.val) else data.test
        x, y = next(split.batches(self.n_images))
        outputs = predictions(trainer.model, x)  # on the model's device, as the trainer put the data
        mean, std = (None if v is None else v.cpu() for v in (data.x_mean, data.x_std))
        method = trainer.history.meta.get("method", {}).get("name", "run")
        title = (f"{method} · {data.name} · step {trainer.global_step}: "
                 f"{len(x)} validation images, predicted | true")
        figure = prediction_strip(x.cpu(), y, outputs, data.tasks, mean, std, title=title)
        self.clear()
        self.png = to_png(figure)
        image = W.Image(value=self.png, format="png",
                        layout=W.Layout(width=f"{display_width(figure)}px", max_width="100%", height="auto"))
        image.add_class("mtl-strip")
        self.widget.children = [image]
        return True

    def clear(self) -> None:
        """No strip (a new run, Reset, data without pixel tasks): the image is closed and removed."""
        self.png = b""
        for child in self.widget.children:
            close_tree(child)
        self.widget.children = []

    def __repr__(self) -> str:
        return f"PredictionStrip(n_images={self.n_images}, drawn={bool(self.png)})"


def stack_png(top: bytes, bottom: bytes) -> bytes:
    """Two PNGs one above the other on white, left-aligned (``top`` alone when ``bottom`` is empty)."""
    if not bottom:
        return top
    upper, lower = Image.open(io.BytesIO(top)).convert("RGB"), Image.open(io.BytesIO(bottom)).convert("RGB")
    canvas = Image.new("RGB", (max(upper.width, lower.width), upper.height + lower.height), "white")
    canvas.paste(upper, (0, 0))
    canvas.paste(lower, (0, upper.height))
    buffer = io.BytesIO()
    canvas.save(buffer, format="png")
    return buffer.getvalue()
