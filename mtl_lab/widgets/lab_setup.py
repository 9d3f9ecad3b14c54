"""The lab's set-up: the panel's settings read as a :class:`~mtl_lab.widgets.config.LabConfig` and a
LabConfig applied to the panel, exactly (nothing clamped or replaced); the link, export, load and preset
buttons over them (:mod:`mtl_lab.widgets.links` makes the links and holds the presets).

Each function takes the :class:`~mtl_lab.widgets.lab.Lab` whose controls it reads or sets.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from mtl_lab import data as datasets
from mtl_lab.weighting import METHODS
from mtl_lab.widgets.config import (
    LabConfig,
    data_setup,
    load_data,
    method_parameters,
    selected_data,
    takes_task_weights,
)
from mtl_lab.widgets.fit import architecture_fit
from mtl_lab.widgets.inputs import model_parameters, read_method_option, read_model_option, same_value
from mtl_lab.widgets.lab_controls import refresh_architectures, set_method_options, set_model_options, set_tasks
from mtl_lab.widgets.links import PRESETS, ignored_options

if TYPE_CHECKING:
    from mtl_lab.widgets.lab import Lab


def coerce_config(config: LabConfig | dict | str | None) -> LabConfig:
    """A checked LabConfig from a LabConfig, a dict or a JSON string (``None``: the defaults)."""
    if config is None:
        return LabConfig()
    if isinstance(config, LabConfig):
        config.check()
        return config
    if isinstance(config, str):
        return LabConfig.from_json(config)
    return LabConfig.from_dict(config)


def read_model_options(lab: Lab, strict: bool = True) -> dict:
    """The model options that differ from the architecture's defaults."""
    params = {p.name: p for p in model_parameters(lab.ui.arch_w.value)} if lab.ui.arch_w.value else {}
    out = {}
    for name, widget in lab.model_widgets.items():
        try:
            value = read_model_option(params.get(name), widget) if name in params else None
        except ValueError:
            if strict:
                raise
            continue
        if name in params and not same_value(value, params[name].default):
            out[name] = value
    return out


def read_config(lab: Lab) -> LabConfig:
    """The panel's settings, exactly as shown (``ValueError`` with the API's message when one is bad)."""
    ui = lab.ui
    method = ui.method_w.value
    params = {p.name: p for p in method_parameters(method)}
    declared = METHODS[method].options
    options = {name: read_method_option(name, declared[name], w) for name, w in lab.option_widgets.items()}
    options = {name: v for name, v in options.items() if not same_value(v, params[name].default)}
    tasks = [t for t, box in lab.task_checks.items() if box.value]
    if not tasks:
        raise ValueError("switch on at least one task")
    all_tasks = list(lab.task_checks)
    config = LabConfig(
        data=ui.data_w.value,
        tasks=None if tasks == all_tasks else tasks,
        data_options=dict(lab.data_options),
        architecture=ui.arch_w.value,
        model_options=read_model_options(lab),
        method=method,
        method_options=options,
        weights={t: entry.value for t, entry in lab.weight_inputs.items()} if takes_task_weights(method)
        else {t: w for t, w in lab.weights.items() if t in lab.task_checks},  # this data set's tasks
        optimizer=ui.optimizer_w.value,
        lr=ui.lr_w.value,
        epochs=ui.epochs_w.value,
        batch_size=ui.batch_w.value,
        device=ui.device_w.value,
        seed=ui.seed_w.value,
        diagnostics_every=lab.diagnostics_every,
        baselines=ui.baselines_w.value,
    )
    config.check()
    return config


def apply_config(lab: Lab, config: LabConfig) -> None:
    """Set every control from ``config`` (checked first), exactly: nothing is clamped or replaced."""
    config.check()
    data = load_data(config.data, config.data_options)
    unknown = [t for t in (config.tasks or []) if t not in data.task_names]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown} for data set {config.data!r}; choose from {data.task_names}")
    ui = lab.ui
    lab.building = True
    try:
        lab.data_options = dict(config.data_options)
        lab.diagnostics_every = config.diagnostics_every
        lab.weights = dict(config.weights)  # a set-up's weights replace the last data set's
        ui.data_w.value = config.data
        ui.arch_w.options = [config.architecture]
        ui.arch_w.value = config.architecture
        ui.method_w.value = config.method
        ui.optimizer_w.value = config.optimizer
        ui.lr_w.value = config.lr
        ui.epochs_w.value = config.epochs
        ui.batch_w.value = config.batch_size
        ui.device_w.value = config.device
        ui.seed_w.value = config.seed
        ui.baselines_w.value = config.baselines
        set_tasks(lab, data.task_names, config.tasks)
    finally:
        lab.building = False
    set_model_options(lab, config.architecture, config.model_options)
    set_method_options(lab, config.method, config.method_options)
    refresh_architectures(lab)


def choose_data(lab: Lab, name: str) -> None:
    """The data menu picked ``name``: its file folders (under ``$MTL_LAB_DATA``), its tasks, and an
    architecture that fits it — the data set's live set-up (:data:`~mtl_lab.widgets.config.DATA_SETUPS`:
    data options, architecture, lr, batch, epochs) when it has one, else the current architecture if it fits,
    else the first that does. Raises ``ValueError`` / ``FileNotFoundError`` when the data do not load."""
    setup = data_setup(name)
    options = {**setup.get("data_options", {}), **datasets.menu_options(name)}
    data = load_data(name, options)
    lab.data_options = options
    ui = lab.ui
    lab.building = True
    try:
        for key, widget in (("lr", ui.lr_w), ("batch_size", ui.batch_w), ("epochs", ui.epochs_w)):
            widget.value = setup.get(key, widget.value)
    finally:
        lab.building = False
    set_tasks(lab, data.task_names, None)
    verdicts = architecture_fit(selected_data(LabConfig(data=name, data_options=options)))
    fitting = [a for a, why in verdicts.items() if why is None]
    current = ui.arch_w.value
    architecture = setup.get("architecture", current if current in fitting or not fitting else fitting[0])
    if architecture != current or "model_options" in setup:
        lab.building = True
        try:
            ui.arch_w.options = fitting if architecture in fitting else [*fitting, architecture]
            ui.arch_w.value = architecture
        finally:
            lab.building = False
        set_model_options(lab, architecture, setup.get("model_options", {}))
        refresh_architectures(lab)
    if setup:
        settings = {**setup.get("data_options", {}), **{k: v for k, v in setup.items() if not isinstance(v, dict)}}
        shown = ", ".join(f"{k} {v}" for k, v in settings.items())
        lab.show_status("data", f"{name}: set up for a live CPU run ({shown}); change any of them", "#555")
    elif architecture != current:
        lab.show_status("data", f"{name}: {current} does not fit these data; {architecture} chosen", "#555")


def load_config(lab: Lab, config: LabConfig | dict | str) -> None:
    """Apply a set-up (a LabConfig, dict or JSON string); ``ValueError`` names what is wrong."""
    if lab.running:
        raise ValueError("stop the run before loading a set-up")
    config = coerce_config(config)
    apply_config(lab, config)
    ignored = ignored_options(config)
    if ignored:  # said at once: the screen must not look as if these acted
        lab.show_status("note", "set-up applied, but " + "; ".join(ignored), "#b36b00")
    else:
        lab.show_status("loaded", "set-up applied; press Train", "#555")


def on_link(lab: Lab) -> None:
    try:
        lab.ui.link_w.value = lab.link()
        lab.show_status("link", "the set-up's link is in the box: append it to the classroom page's address",
                         "#555")
    except ValueError as exc:
        lab.show_error(exc)


def load_preset(lab: Lab, name: str) -> None:
    """Load a scenario of :data:`mtl_lab.widgets.links.PRESETS` and show what to look for."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {list(PRESETS)}")
    load_config(lab, PRESETS[name].config)
    lab.ui.look_for.value = (f"<small><b>{html.escape(PRESETS[name].title)}</b> — look for: "
                              f"{html.escape(PRESETS[name].look_for)}</small>")


def on_export(lab: Lab) -> None:
    try:
        lab.ui.config_text.value = read_config(lab).to_json()
        lab.show_status("exported", "the set-up is in the box below the chart", "#555")
    except ValueError as exc:
        lab.show_error(exc)


def on_preset(lab: Lab, name: str) -> None:
    if not name:
        return
    try:
        load_preset(lab, name)
    except ValueError as exc:
        lab.show_error(exc, "preset not loaded:")


def on_load(lab: Lab) -> None:
    try:
        load_config(lab, lab.ui.config_text.value)
    except ValueError as exc:
        lab.show_error(exc, "set-up not loaded:")
