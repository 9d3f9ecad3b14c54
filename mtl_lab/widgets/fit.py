"""Which architectures fit a data set, and why the others do not (the panel offers only the ones that fit).

An architecture fits when it can be built for the data's tasks and input shape with the given model
options — the same :func:`mtl_lab.models.build_model` call a run makes, so the panel's verdict and the
run's cannot disagree. Building the small models of the embedded data sets takes milliseconds; the
verdicts are cached per data set and options. :func:`misfits` groups the architectures that share a
reason (on pixel data, every per-image architecture is refused for the same one), so the note stays short.
"""

from __future__ import annotations

import json

from mtl_lab.data.base import MultiTaskData
from mtl_lab.models import ARCHITECTURES, architecture_options, build_model

VERDICTS: dict[str, dict[str, str | None]] = {}


def architecture_fit(data: MultiTaskData, model_options: dict | None = None) -> dict[str, str | None]:
    """``{architecture: None if it fits, else the reason}`` for every registered architecture."""
    key = json.dumps({"data": data.name, "tasks": data.task_names, "shape": list(data.input_shape),
                      "options": model_options or {}}, sort_keys=True, default=str)
    if key not in VERDICTS:
        verdicts: dict[str, str | None] = {}
        for name in ARCHITECTURES:
            options = {k: v for k, v in (model_options or {}).items() if k in architecture_options(name)}
            try:
                build_model(name, data, **options)
                verdicts[name] = None
            except (ValueError, TypeError, RuntimeError, KeyError) as exc:
                verdicts[name] = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
        VERDICTS[key] = verdicts
    return dict(VERDICTS[key])


def misfits(verdicts: dict[str, str | None]) -> dict[str, list[str]]:
    """``{reason: [architectures]}`` of the architectures that do not fit, each reason once, the name it
    opens with (``architecture 'hard' predicts …``, ``mtan_lite needs …``) left out so that equal reasons
    are one."""
    grouped: dict[str, list[str]] = {}
    for name, why in verdicts.items():
        if why:
            for opening in (f"architecture {name!r} ", f"{name} "):
                why = why.removeprefix(opening)
            grouped.setdefault(why, []).append(name)
    return grouped
