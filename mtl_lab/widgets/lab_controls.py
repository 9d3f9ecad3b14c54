"""The lab's choice controls: one switch and one weight box per task, the architectures that fit the data,
and one input per option of the method and of the architecture.

Each function takes the :class:`~mtl_lab.widgets.lab.Lab` whose controls it builds; the controls sit where
:class:`~mtl_lab.widgets.lab_layout.LabLayout` put them. While ``lab.building`` is set the observers stay
quiet (a set-up is being applied, not chosen by hand).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import ipywidgets as W

from mtl_lab.palette import task_color, task_dash
from mtl_lab.weighting import METHODS
from mtl_lab.widgets.common import close_all
from mtl_lab.widgets.config import LabConfig, method_parameters, selected_data, takes_task_weights
from mtl_lab.widgets.fit import architecture_fit, misfits
from mtl_lab.widgets.inputs import WeightInput, method_option_widget, model_option_widget, model_parameters

if TYPE_CHECKING:
    from mtl_lab.widgets.lab import Lab


def set_tasks(lab: Lab, task_names: list[str], selected: list[str] | None) -> None:
    """One switch and one weight input per task of the data set."""
    selected = task_names if selected is None else selected
    close_all([*lab.task_checks.values(), *lab.weight_inputs.values()])
    lab.task_checks = {t: W.Checkbox(value=t in selected, description=t, indent=False,
                                      layout=W.Layout(width="auto", margin="0 10px 0 0")) for t in task_names}
    for box in lab.task_checks.values():
        box.observe(lambda _: refresh_weight_box(lab), names="value")
    lab.ui.task_box.children = list(lab.task_checks.values())
    lab.chart.task_order = list(task_names)  # one colour per task everywhere: its place in the data set
    lab.weight_inputs = {}
    for i, t in enumerate(task_names):
        entry = WeightInput(t, float(lab.weights.get(t, 1.0)), task_color(i), task_dash(i))  # the data set's order
        entry.observe_value(lambda value, task=t: lab.on_weight(task, value))
        lab.weight_inputs[t] = entry
    refresh_weight_box(lab)
    refresh_architectures(lab)


def refresh_weight_box(lab: Lab) -> None:
    chosen = [t for t, box in lab.task_checks.items() if box.value]
    lab.ui.weight_box.children = [lab.weight_inputs[t] for t in chosen]
    if lab.trainer is None:  # before a run the chart's legend shows the chosen tasks
        lab.chart.set_tasks(chosen)
    refresh_weight_mode(lab)


def refresh_weight_mode(lab: Lab) -> None:
    live = takes_task_weights(lab.ui.method_w.value)
    for entry in lab.weight_inputs.values():
        entry.set_disabled(not live)
    lab.ui.weight_note.value = (
        "<small>The weights act live: a change applies from the next step (slider: 0.001 … 100 on a log "
        "scale; type any other value in the box).</small>" if live else
        f"<small>{html.escape(lab.ui.method_w.value)} sets the weights itself; the boxes show its "
        "effective weights.</small>"
    )


def refresh_architectures(lab: Lab) -> None:
    """Offer the architectures that fit the data (with the chosen tasks); say why the others do not."""
    try:
        data = selected_data(partial_config(lab))
    except ValueError:
        return
    verdicts = architecture_fit(data)
    fitting = [a for a, why in verdicts.items() if why is None]
    current = lab.ui.arch_w.value
    lab.building, was = True, lab.building
    try:
        lab.ui.arch_w.options = fitting if current in fitting or current is None else [*fitting, current]
        if current is not None:
            lab.ui.arch_w.value = current
    finally:
        lab.building = was
    refused = [f"<b>{html.escape(', '.join(names))}</b>: {html.escape(why)}"
               for why, names in misfits(verdicts).items()]
    lab.ui.arch_note.value = ("<small>Not offered for this data: " + "; ".join(refused) + "</small>"
                               if refused else "")


def set_method_options(lab: Lab, method: str, values: dict) -> None:
    params = [p for p in method_parameters(method) if not (p.name == "weights" and takes_task_weights(method))]
    close_all(lab.option_widgets.values())
    declared = METHODS[method].options
    lab.option_widgets = {p.name: method_option_widget(p.name, declared[p.name], values.get(p.name, p.default))
                           for p in params}
    lab.ui.option_box.children = list(lab.option_widgets.values()) or [W.HTML("<i>none</i>")]
    description = METHODS[method].description
    lab.ui.method_help.value = f"<small><b>{html.escape(method)}</b>: {html.escape(description)}</small>"
    refresh_weight_mode(lab)


def set_model_options(lab: Lab, architecture: str, values: dict) -> None:
    """One input per option of the architecture (and its trunk); values not given show the default."""
    params = model_parameters(architecture, values.get("trunk"))
    close_all(lab.model_widgets.values())
    lab.model_widgets = {p.name: model_option_widget(p, values) for p in params}
    if "trunk" in lab.model_widgets:  # another trunk has other options
        lab.model_widgets["trunk"].observe(lambda _: lab.on_architecture({"new": lab.ui.arch_w.value}),
                                            names="value")
    lab.ui.model_box.children = list(lab.model_widgets.values()) or [W.HTML("<i>none</i>")]


def partial_config(lab: Lab) -> LabConfig:
    """The data and tasks as the panel shows them (for choices that depend on them)."""
    tasks = [t for t, box in lab.task_checks.items() if box.value] or None
    return LabConfig(data=lab.ui.data_w.value, tasks=None if tasks == list(lab.task_checks) else tasks,
                     data_options=dict(lab.data_options))
