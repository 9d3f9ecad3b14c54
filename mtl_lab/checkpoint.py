"""Checkpoints: one file with everything a run needs to continue bitwise as if it had never stopped.

A checkpoint holds the model, the optimiser, the scheduler, the method's state, the History, the
counters, the epoch's running loss sums, every random state and the position within the epoch (see
:mod:`mtl_lab.resume`), and an **identity**: format tag, architecture, task names, optimiser, schedule,
method and batch size.

Reading is safe and all-or-nothing:

1. ``torch.load(..., weights_only=True)`` (no code is unpickled); anything that fails to load, or loads
   but lacks the format tag, is "not an mtl_lab checkpoint: <path>" (never PyTorch's advice to retry
   with ``weights_only=False``, which would run code from the file);
2. the identity and every tensor shape of the model are compared with the trainer's, and a mismatch
   names both sides (``checkpoint is for architecture 'hard' with tasks [...]; this trainer has ...``);
3. only then is anything loaded; should a load still fail, the trainer's previous state is put back.

:func:`trainer_state` and :func:`apply_state` are the two halves (``Trainer.save`` and ``Trainer.load`` call
them); the trainer's attributes they read and write are all public.

Writing goes to a temporary file in the same folder, renamed over the target at the end, so a failed
save never leaves half a file where a good checkpoint was.
"""

from __future__ import annotations

import copy
import os
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from mtl_lab.history import History
from mtl_lab.resume import RunPosition, epoch_batches, global_rng_state

if TYPE_CHECKING:
    from mtl_lab.train import Trainer

FORMAT = "mtl_lab.checkpoint/1"


def identity(architecture: str, task_names: list[str], optimizer: str, schedule: str, method: str,
             batch_size: int) -> dict:
    """What a checkpoint must agree on with the trainer that loads it."""
    return {"architecture": architecture, "tasks": list(task_names), "optimizer": optimizer,
            "schedule": schedule, "method": method, "batch_size": batch_size}


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
        if tuple(saved[key].shape) != tuple(tensor.shape):
            raise ValueError(
                f"checkpoint's {key!r} has shape {tuple(saved[key].shape)}, this trainer's model has "
                f"{tuple(tensor.shape)} (different model options?): {path}"
            )


# ---------------------------------------------------------------- a trainer's state


def trainer_identity(trainer: Trainer) -> dict:
    """What a checkpoint of ``trainer`` must agree on with the trainer that loads it."""
    c = trainer.config
    return identity(trainer.model.architecture, trainer.task_names, c.optimizer, c.schedule, trainer.weighting.name,
                    c.batch_size)


def trainer_position(trainer: Trainer) -> RunPosition:
    """Every random state of ``trainer`` and its position within the epoch (see :mod:`mtl_lab.resume`)."""
    running = trainer.lock.locked()  # saved from a callback: the live global state is the run's
    rng = global_rng_state(trainer.device) if running else trainer.rng_state
    return RunPosition(rng, trainer.batch_generator.get_state(), trainer.method_generator.get_state(),
                       trainer.epoch_start_rng, trainer.epoch_batches)


def trainer_state(trainer: Trainer) -> dict:
    """Everything a checkpoint holds, as a dict (tensors shared with the live objects; buffered steps flushed)."""
    trainer.flush()
    return {
        "identity": trainer_identity(trainer),
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict() if trainer.scheduler is not None else None,
        "weighting": trainer.weighting.state_dict(),
        "history": trainer.history.to_dict(),
        "counters": {"global_step": trainer.global_step, "epoch": trainer.epoch,
                     "epoch_batches": trainer.epoch_batches},
        "epoch_loss_sum": trainer.epoch_loss_sum.detach().cpu().clone(),
        "epoch_labelled": trainer.epoch_labelled.detach().cpu().clone(),
        "extra_batches": trainer.extra_batches.state_dict() if trainer.extra_batches is not None else None,
        "lookahead_batches": trainer.lookahead.batches.state_dict() if trainer.lookahead is not None else None,
        "epoch_losses": [list(e) for e in trainer.epoch_losses],
        "first_losses": list(trainer.first_losses) if trainer.first_losses is not None else None,
        "position": trainer_position(trainer).to_dict(),
    }


def load_into(trainer: Trainer, path: str | Path) -> None:
    """Read, check, then apply the checkpoint at ``path``; on any failure ``trainer`` is left as it was."""
    state = read(path, trainer.device)
    check_compatible(state, trainer_identity(trainer), trainer.model.state_dict(), path)
    backup = copy.deepcopy(trainer_state(trainer))
    try:
        apply_state(trainer, state)
    except Exception as exc:
        apply_state(trainer, backup)
        message = f"checkpoint {str(path)!r} could not be loaded ({exc}); the trainer is unchanged"
        raise ValueError(message) from None


def apply_state(trainer: Trainer, state: dict) -> None:
    """Put a :func:`trainer_state` dict into ``trainer``'s live objects."""
    impl = [(g.get("foreach"), g.get("fused")) for g in trainer.optimizer.param_groups]
    trainer.model.load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    for group, (foreach, fused) in zip(trainer.optimizer.param_groups, impl):  # keep this trainer's implementation
        group["foreach"], group["fused"] = foreach, fused
    if trainer.scheduler is not None and state["scheduler"] is not None:
        trainer.scheduler.load_state_dict(state["scheduler"])
    trainer.weighting.load_state_dict(state["weighting"])
    trainer.history = History.from_dict(state["history"])
    counters = state["counters"]
    trainer.global_step, trainer.epoch = counters["global_step"], counters["epoch"]
    trainer.epoch_batches = counters["epoch_batches"]
    trainer.epoch_loss_sum = state["epoch_loss_sum"].to(trainer.device).clone()
    trainer.epoch_labelled = state["epoch_labelled"].to(trainer.device).clone()
    if trainer.extra_batches is not None:
        trainer.extra_batches.load_state_dict(state["extra_batches"])
    if trainer.lookahead is not None:
        trainer.lookahead.batches.load_state_dict(state["lookahead_batches"])
    trainer.epoch_losses = tuple(tuple(e) for e in state["epoch_losses"])
    trainer.first_losses = tuple(state["first_losses"]) if state["first_losses"] is not None else None
    position = RunPosition.from_dict(state["position"])
    position.batch_rng, position.method_rng = position.batch_rng.cpu(), position.method_rng.cpu()
    if position.epoch_start_rng is not None:
        position.epoch_start_rng = position.epoch_start_rng.cpu()
    trainer.rng_state = position.global_rng
    trainer.method_generator.set_state(position.method_rng)
    trainer.epoch_start_rng = position.epoch_start_rng
    trainer.batch_iterator = epoch_batches(trainer.data.train, trainer.config.batch_size, trainer.batch_generator,
                                           position)
    trainer.buffer = []
