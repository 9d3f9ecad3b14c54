"""The classroom page: the lab's instruments and nothing else, for ``mtl-lab app`` (Voila).

An instructor opens one page for a lecture: tabs with the weight-tuning lab (at lecture pace), the
gradient arena, the toy landscape and the Pareto sweep — no notebook prose, no code, no printed
leftovers. The page is ``widgets/app/classroom.ipynb`` (one cell that shows :func:`classroom`); Voila
serves it with idle-kernel culling (see :func:`mtl_lab.cli.app_command`). Every instrument stays idle
until its button is pressed, so the page is usable as soon as it has loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import ipywidgets as W

from mtl_lab.widgets.arena import GradientArena
from mtl_lab.widgets.common import close_tree, replace_previous
from mtl_lab.widgets.config import LabConfig
from mtl_lab.widgets.lab import LECTURE_PACE, Lab
from mtl_lab.widgets.landscape import ToyLandscape
from mtl_lab.widgets.links import read_query, read_race
from mtl_lab.widgets.sweep import ParetoSweep

LECTURE_CONFIG = LabConfig(data="digits", tasks=["digit", "parity", "ge5", "recon"],
                           model_options={"hidden": [64, 64]}, method="static", weights={"recon": 5.0},
                           lr=2e-3, epochs=60, baselines=False)
TITLES = ("Weight-tuning lab", "Gradient arena", "Toy landscape", "Pareto sweep")


class Classroom:
    """The four instruments in tabs (``classroom.instruments``); ``close()`` closes them all."""

    def __init__(self, name: str = "classroom", query: str | None = None) -> None:
        """``query``: a set-up link's query string (:mod:`mtl_lab.widgets.links`); by default the page's own,
        which Voila hands to the kernel as ``QUERY_STRING``. A bad link is reported on the page."""
        self.name = name
        query = os.environ.get("QUERY_STRING", "") if query is None else query
        problem = ""
        try:
            config, preset, projector = read_query(query)
            race = read_race(query)
        except ValueError as exc:
            config, preset, projector, race, problem = None, None, False, None, str(exc)
        self.lab = Lab(config or LECTURE_CONFIG, name=f"{name}-lab", pace=LECTURE_PACE)
        if preset:
            self.lab.ui.preset_w.value = preset
        if config is not None:
            self.lab.load_config(config)  # the status line says what the set-up's method ignores
        self.lab.ui.projector_w.value = projector
        if race:
            self.lab.race.methods_w.value = tuple(race)  # the toggles of the link's race; Race starts it
        if problem:
            self.lab.show_status("link", f"the page's link was not used: {problem}", "#c00")
        self.arena = GradientArena(name=f"{name}-arena")
        self.landscape = ToyLandscape(name=f"{name}-landscape")
        self.sweep = ParetoSweep(name=f"{name}-sweep")
        self.instruments = [self.lab, self.arena, self.landscape, self.sweep]
        header = W.HTML("<h2 style='margin:4px 0'>mtl_lab · multi-task learning, live</h2>"
                        "<div style='font-size:13px;color:#444'>Train a shared network and move the task "
                        "weights while it learns; drag task gradients; watch methods travel on a toy problem; "
                        "trace a trade-off front.</div>")
        self.tabs = W.Tab(children=[i.widget for i in self.instruments], titles=TITLES)
        self.widget = W.VBox([header, self.tabs], layout=W.Layout(width="100%"))
        self.widget.add_class("mtl-classroom")
        replace_previous(name, self)

    def close(self) -> None:
        for instrument in self.instruments:
            instrument.close()
        close_tree(self.widget)

    def __repr__(self) -> str:
        return f"Classroom(name={self.name!r})"

    def _repr_mimebundle_(self, **kwargs) -> dict:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle


def classroom() -> Classroom:
    return Classroom()


APP_NOTEBOOK = Path(__file__).parent / "app" / "classroom.ipynb"
APP_DATA = Path(__file__).parent / "app"  # holds voila/templates/mtl: the page template (no CDN links)
# JupyterLab-side extensions that mean nothing on a Voila page. One command-line flag per name: a list
# written as one value ("['a', 'b']") is read by traitlets as a single name and denies nothing.
# The page's remaining console warnings ("Unsatisfied version 4.2.5 … of shared singleton module
# @jupyterlab/…") cannot be removed here: they come from @jupyter-widgets/jupyterlab-manager, which the page
# needs (it registers the widget classes), built against JupyterLab 4.6 while Voila 0.5.13 bundles 4.2.5 —
# see tests/test_browser.py, VERSION_WARNING.
NOT_ON_THE_PAGE = ["@voila-dashboards/jupyterlab-preview"]


def voila_environment(environment: dict[str, str]) -> dict[str, str]:
    """``environment`` with the package's Jupyter data folder first on ``JUPYTER_PATH``, where Voila finds
    the classroom page's template (``--template=mtl``)."""
    paths = [str(APP_DATA), *filter(None, environment.get("JUPYTER_PATH", "").split(os.pathsep))]
    return {**environment, "JUPYTER_PATH": os.pathsep.join(paths)}


def voila_command(notebook: Path = APP_NOTEBOOK, port: int = 8866, cull_idle: int = 120,
                  token: bool = True) -> list[str]:
    """The Voila command line of the classroom page: sources hidden, 127.0.0.1, idle kernels culled, the
    ``mtl`` template (run it with :func:`voila_environment`), JupyterLab-only extensions left out.

    A kernel whose page was closed (no connection left) and that has been idle ``cull_idle`` seconds is
    shut down, checked every ``max(1, cull_idle // 4)`` seconds — so a room of page loads leaves only
    the pages still open. Keep ``cull_idle`` well above the time a page takes to load after its run: until
    the page opens the kernel's websocket, the kernel counts as idle and unconnected (about 2 s on a quiet
    machine, far more on a loaded one). ``token=False`` is for test harnesses only.
    """
    if not isinstance(cull_idle, int) or isinstance(cull_idle, bool) or cull_idle < 1:
        raise ValueError(f"cull_idle must be a whole number of seconds ≥ 1, got {cull_idle!r}")
    command = [sys.executable, "-m", "voila", str(notebook), f"--port={port}", "--Voila.ip=127.0.0.1",
               "--strip_sources=True", "--template=mtl",
               *[f"--VoilaConfiguration.extension_denylist={name}" for name in NOT_ON_THE_PAGE],
               f"--MappingKernelManager.cull_idle_timeout={cull_idle}",
               f"--MappingKernelManager.cull_interval={max(1, cull_idle // 4)}",
               "--MappingKernelManager.cull_connected=False"]
    if token:
        command.append("--token")
    return command
