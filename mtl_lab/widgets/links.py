"""Set-ups as links and as scenario presets, for a room: one URL opens the lab exactly as it was shared.

* :func:`setup_link` — the query string of a whole :class:`~mtl_lab.widgets.config.LabConfig`:
  ``?setup=<the config's JSON, URL-safe base64>`` (any setting, exact round trip, checked on the way in),
  optionally with ``&projector=1`` and a race, ``&race=equal,pcgrad,mgda`` (2–4 of the race's methods,
  :data:`mtl_lab.widgets.race.RACE_METHODS`: the page opens with those toggles on; Race starts it).
* :func:`read_query` — the set-up a query string names: ``setup=…`` or ``preset=<name>`` (one of
  :data:`PRESETS`), and ``projector``; anything else is refused with the keys that are allowed.
  :func:`read_race` — the race a query string names (``race=…``), checked. The
  classroom page reads its URL through Voila, which hands the page's query string to the kernel as
  ``QUERY_STRING``.
* :data:`PRESETS` — scenarios that each teach one thing, with a one-line "what to look for".
* :func:`ignored_options` — the parts of a set-up the chosen method does not use (weights under PCGrad),
  so the panel can say so instead of showing them as if they acted.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from mtl_lab import validate
from mtl_lab.training.race import RACERS
from mtl_lab.widgets.config import DATA_SETUPS, LabConfig, takes_task_weights
from mtl_lab.widgets.race import RACE_METHODS

QUERY_KEYS = ("setup", "preset", "projector", "race")


@dataclass(frozen=True)
class Preset:
    """A scenario: the set-up and what to look for once it trains."""

    title: str
    config: dict
    look_for: str


DIGITS = {"data": "digits", "tasks": ["digit", "parity", "ge5", "recon"], "model_options": {"hidden": [64, 64]},
          "lr": 2e-3, "epochs": 60, "baselines": False}
PRESETS: dict[str, Preset] = {
    "loss-scale": Preset(
        "One task dominates by loss scale",
        {**DIGITS, "method": "static", "weights": {"recon": 20.0}},
        "recon's share fills the update band from the first steps; lower its weight while it trains and watch "
        "the shares rebalance."),
    "conflict": Preset(
        "Conflicting tasks",
        {"data": "mmoe_synthetic", "data_options": {"correlation": -0.9}, "method": "equal", "lr": 3e-3,
         "epochs": 20, "baselines": False},
        "orange cells in the cosine strip are steps where the two gradients point against each other; then "
        "switch to pcgrad and train again — the equal run stays on the chart to compare."),
    "unrelated": Preset(
        "Unrelated tasks",
        {"data": "mmoe_synthetic", "data_options": {"correlation": 0.0}, "method": "equal", "lr": 3e-3,
         "epochs": 20, "baselines": True},
        "the cosine strip stays near white (no relation); at the end, the Δm column says whether sharing "
        "a trunk helped or hurt against each task alone."),
    "missing-labels": Preset(
        "Missing labels",
        {"data": "related", "architecture": "hard", "model_options": {"hidden": [8]}, "method": "equal",
         "lr": 0.02, "epochs": 100, "batch_size": 600, "baselines": True},
        "every task has labels for only some rows and learns from those alone; compare each task's validation "
        "curve, and the relative change against its single-task baseline."),
    "pixel-scale": Preset(
        "Pixel tasks on incomparable scales",
        {"data": "scenes", "data_options": {**DATA_SETUPS["scenes"]["data_options"], "depth_scale": 100.0},
         **{k: v for k, v in DATA_SETUPS["scenes"].items() if k != "data_options"}, "method": "equal",
         "baselines": False},
        "depth in centimetres fills the update band and segmentation's loss hardly falls; the strip at the end "
        "paints every pixel background. Switch to scale_invariant and train again: segmentation gets its share."),
    "ignores-weights": Preset(
        "A method that ignores weights",
        {**DIGITS, "method": "pcgrad", "weights": {"recon": 5.0}},
        "pcgrad sets its own effective weights: the recon=5 of this set-up is not used (the panel says so), "
        "and the greyed boxes show what pcgrad does instead."),
}


def encode(config: LabConfig) -> str:
    text = json.dumps(config.to_dict(), separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode(value: str) -> LabConfig:
    try:
        text = base64.b64decode(value + "=" * (-len(value) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValueError(f"setup= is not a set-up link (URL-safe base64 of a set-up's JSON): {value[:40]!r}") from None
    return LabConfig.from_json(text)


def setup_link(config: LabConfig, projector: bool = False, race: list[str] | tuple = ()) -> str:
    """``?setup=…`` (and ``&projector=1``, ``&race=a,b``): the query string that opens exactly this set-up."""
    query = {"setup": encode(config)}
    if projector:
        query["projector"] = "1"
    if race:
        query["race"] = ",".join(check_race(list(race)))
    return "?" + urlencode(query, safe=",")


def check_race(methods: list[str]) -> list[str]:
    """2–4 different methods of the race's toggles (:data:`~mtl_lab.widgets.race.RACE_METHODS`)."""
    return validate.check_race(methods, RACE_METHODS, *RACERS)


def read_race(query: str) -> list[str] | None:
    """The race a query string names (``race=equal,pcgrad``), checked; ``None`` when it names none."""
    fields = parse_qs(query.lstrip("?"), keep_blank_values=True)
    if "race" not in fields:
        return None
    return check_race(fields["race"][0].split(","))


def read_query(query: str) -> tuple[LabConfig | None, str | None, bool]:
    """``(config, preset name, projector)`` from a query string (with or without its ``?``); ``(None, None,
    False)`` for an empty one. Raises ``ValueError`` naming a bad key or value."""
    fields = parse_qs(query.lstrip("?"), keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(fields) - set(QUERY_KEYS))
    if unknown:
        raise ValueError(f"unknown link key(s) {unknown}; a set-up link may hold {list(QUERY_KEYS)}")
    repeated = [k for k, v in fields.items() if len(v) > 1]
    if repeated:
        raise ValueError(f"link key(s) {repeated} given more than once")
    value = {k: v[0] for k, v in fields.items()}
    if "setup" in value and "preset" in value:
        raise ValueError("a link names either setup= or preset=, not both")
    projector = value.get("projector", "0")
    if projector not in ("0", "1"):
        raise ValueError(f"projector must be 0 or 1, got {projector!r}")
    if "preset" in value:
        if value["preset"] not in PRESETS:
            raise ValueError(f"unknown preset {value['preset']!r}; choose from {list(PRESETS)}")
        return LabConfig.from_dict(PRESETS[value["preset"]].config), value["preset"], projector == "1"
    config = decode(value["setup"]) if "setup" in value else None
    return config, None, projector == "1"


def ignored_options(config: LabConfig) -> list[str]:
    """What the set-up holds that its method does not use, in words (empty when everything acts)."""
    notes = []
    if config.weights and not takes_task_weights(config.method):
        weights = ", ".join(f"{t}={w:g}" for t, w in config.weights.items())
        notes.append(f"{config.method} sets its own task weights: the weights {weights} are not used")
    return notes
