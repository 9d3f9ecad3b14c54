"""Checkpoints: one file with everything a run needs to continue bitwise as if it had never stopped.

A checkpoint holds the model, the optimiser, the scheduler, the method's state, the History, the
counters, the epoch's running loss sums, every random state and the position within the epoch (see
:mod:`mtl_lab.training.resume`), an **identity** (format tag, architecture, task names, optimiser, schedule,
method and batch size) and the **settings** that change the run: the method's options, the optimiser's lr,
weight decay and momentum, the schedule's step size and gamma, the epochs, the L1 penalty, the gradient path
options, augmentation, the model's structure (its options: widths, dropout …) and the data (name, sizes,
tasks).

Reading is safe and all-or-nothing:

1. ``torch.load(..., weights_only=True)`` (no code is unpickled); anything that fails to load, or loads
   but lacks the format tag, is "not an mtl_lab checkpoint: <path>" (never PyTorch's advice to retry
   with ``weights_only=False``, which would run code from the file);
2. the identity and every tensor shape of the model are compared with the trainer's, and a mismatch
   names both sides (``checkpoint is for architecture 'hard' with tasks [...]; this trainer has ...``);
3. the settings are compared one by one (:func:`check_settings`): every difference is named, and the load
   refused — except a legitimate continuation asked for by name (``continue_with=["epochs"]`` or ``["lr"]``,
   :data:`CONTINUABLE`), which the trainer then records in its History. A file written before settings
   were stored is checked on its identity only, and the History says so;
4. only then is anything loaded (``Trainer.load``); should a load still fail, the trainer's previous state
   is put back.

The state itself is the trainer's (:meth:`~mtl_lab.training.trainer.Trainer.state_dict` and
``load_state_dict``); this module only writes, reads and compares files, and imports nothing of the trainer.

Writing goes to a temporary file in the same folder, renamed over the target at the end, so a failed
save never leaves half a file where a good checkpoint was.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

import torch

FORMAT = "mtl_lab.checkpoint/1"


def identity(architecture: str, task_names: list[str], optimizer: str, schedule: str, method: str,
             batch_size: int) -> dict:
    """What a checkpoint must agree on with the trainer that loads it."""
    return {"architecture": architecture, "tasks": list(task_names), "optimizer": optimizer,
            "schedule": schedule, "method": method, "batch_size": batch_size}


CONTINUABLE = ("epochs", "lr")  # settings a run may continue with changed, when asked by name


def describe(ident: dict) -> str:
    return (f"architecture {ident['architecture']!r} with tasks {ident['tasks']}, optimizer {ident['optimizer']!r}, "
            f"schedule {ident['schedule']!r}, method {ident['method']!r}, batch size {ident['batch_size']}")


def write(path: str | Path, state: dict) -> Path:
    """``state`` (with the format tag added) to ``path``, atomically."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"checkpoint path {str(path)!r} is a folder; give a file name such as run.pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(handle)
    try:
        torch.save({"format": FORMAT, **state}, temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


def read(path: str | Path, device: torch.device) -> dict:
    """The checkpoint at ``path``, loaded without unpickling code; ``ValueError`` if it is not one."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no checkpoint file at {str(path)!r}")
    try:
        with warnings.catch_warnings():  # torch's warnings about a foreign pickle: the error below says it all
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises several types here (UnpicklingError, RuntimeError, EOFError …)
        reason = str(exc).split("\n")[0][:120] or type(exc).__name__
        if "weights_only" in reason or "WeightsUnpickler" in reason:
            reason = "it holds objects a checkpoint never contains"
        raise ValueError(f"not an mtl_lab checkpoint: {path} (it could not be read as one: {reason})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"not an mtl_lab checkpoint: {path} (format {found!r}, expected {FORMAT!r})")
    missing = [k for k in ("identity", "model", "optimizer", "weighting", "history", "counters", "position")
               if k not in state]
    if missing:
        raise ValueError(f"not an mtl_lab checkpoint: {path} (it lacks {missing})")
    return state


def check_compatible(state: dict, ident: dict, model_state: dict, path: str | Path) -> None:
    """The checkpoint's identity and model tensor shapes must match the trainer's; name the difference."""
    theirs = state["identity"]
    if theirs != ident:
        diff = [k for k in ident if theirs.get(k) != ident[k]]
        raise ValueError(
            f"checkpoint is for {describe(theirs)}; this trainer has {describe(ident)} "
            f"(they differ in {diff}): {path}"
        )
    saved = state["model"]
    missing = sorted(set(model_state) - set(saved))
    unexpected = sorted(set(saved) - set(model_state))
    if missing or unexpected:
        raise ValueError(
            f"checkpoint's model differs from this trainer's: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}: {path}"
        )
    for key, tensor in model_state.items():
        if not torch.is_tensor(tensor):  # a module's extra state (``get_extra_state``), e.g. a preference sampler's
            continue
        if tuple(saved[key].shape) != tuple(tensor.shape):
            raise ValueError(
                f"checkpoint's {key!r} has shape {tuple(saved[key].shape)}, this trainer's model has "
                f"{tuple(tensor.shape)} (different model options?): {path}"
            )


def check_continue_with(names) -> tuple[str, ...]:
    """``continue_with`` must be a list of names from :data:`CONTINUABLE`."""
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"continue_with must be a list of setting names from {list(CONTINUABLE)}, got {names!r}")
    unknown = [n for n in names if n not in CONTINUABLE]
    if unknown:
        raise ValueError(f"continue_with {unknown}: only {list(CONTINUABLE)} may change when a run continues; "
                         "anything else needs a new run")
    return tuple(names)


def check_settings(saved: dict | None, current: dict, path: str | Path, continue_with: tuple[str, ...],
                   schedule: str) -> dict[str, tuple]:
    """The checkpoint's settings against the trainer's: every difference named, refused unless it is a
    continuation in ``continue_with``; returns those continuations as ``{name: (saved, current)}``.

    ``lr`` and ``epochs`` may not change under a learning-rate schedule (it holds its own base lr and, for
    ``cosine``, ``T_max = epochs`` from the file). ``saved`` is ``None`` for a file written before settings
    were stored: nothing to compare, nothing changed.
    """
    if saved is None:
        return {}
    keys = sorted(set(saved) | set(current))
    differ = [k for k in keys if saved.get(k) != current.get(k)]
    refused = [k for k in differ if k not in continue_with or schedule != "none"]
    if refused:
        named = "; ".join(difference(k, saved.get(k), current.get(k)) for k in refused)
        hint = (f"; to continue with another {' or '.join(k for k in refused if k in CONTINUABLE)}, pass "
                "continue_with=[...]" if any(k in CONTINUABLE for k in refused) and schedule == "none" else "")
        if schedule != "none" and any(k in CONTINUABLE for k in refused):
            hint = f"; under schedule {schedule!r} the lr and the epochs belong to the schedule and cannot change"
        raise ValueError(f"checkpoint {str(path)!r} was saved with other settings than this trainer's: {named}{hint}")
    return {k: (saved.get(k), current.get(k)) for k in differ}


def difference(key: str, saved, current) -> str:
    if key == "model":
        return "model: built with other model options (its layers differ)"
    return f"{key}: checkpoint {saved!r}, this trainer {current!r}"
