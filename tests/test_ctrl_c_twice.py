"""Ctrl-C twice, with real signals: a second SIGINT either still ends the run at a step boundary (it then
continues bitwise like the uninterrupted run, from a checkpoint) or the run says it is not exactly resumable
(History meta, a note, the printed warning) — never a silently lost step.

A child process trains and announces each chosen moment on stdout (``WAIT first`` / ``WAIT second``); this
process then sends SIGINT with ``os.kill`` and the child waits for its handler to act (no timing assumed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_resume import assert_same_run, make

TESTS = Path(__file__).resolve().parent
CHILD = r"""
import json, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in any interactive Python
from test_resume import make

first, second, path = sys.argv[1:4]
counts = {"train": 0, "eval": 0, "optimizer": 0, "step": 0}
trainer = None

def wait(tag, done):
    print("WAIT", tag, flush=True)
    deadline = time.monotonic() + 120
    while not done():
        if time.monotonic() > deadline:
            print("NO-SIGNAL-EFFECT", tag, flush=True)
            sys.exit(3)
        time.sleep(0.001)

def at(kind):
    counts[kind] += 1
    moment = f"{kind}:{counts[kind]}"
    if moment == first:
        wait("first", trainer.interrupts.requested.is_set)
    elif moment == second:
        wait("second", lambda: False)  # only the handler's KeyboardInterrupt ends this wait

trainer = make("equal", record_every=1, callback=lambda e: at("step") if e.kind == "step" else None)
trainer.model.register_forward_hook(lambda m, a, o: at("train" if m.training else "eval"))
trainer.optimizer.register_step_post_hook(lambda opt, a, k: at("optimizer"))
history = trainer.fit()
trainer.save(path)
keys = ("status", "exact_resume", "cut_step", "steps")
print("RESULT", json.dumps({**{k: history.meta.get(k) for k in keys}, "recorded": len(history.steps)}), flush=True)
"""


def interrupted_run(first: str, second: str, path: Path) -> tuple[dict, str]:
    """Train in a child, SIGINT it at ``first`` and ``second`` (``kind:n``, the n-th training forward, eval
    forward, optimiser step or step event); returns its result line and its stderr."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS.parent), str(TESTS)])}
    child = subprocess.Popen([sys.executable, "-c", CHILD, first, second, str(path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, cwd=TESTS.parent)
    said, result = [], None
    for line in child.stdout:
        said.append(line.strip())
        if line.startswith("WAIT"):
            os.kill(child.pid, signal.SIGINT)
        elif line.startswith("RESULT"):
            result = json.loads(line.split(" ", 1)[1])
    err = child.stderr.read()
    assert child.wait(timeout=120) == 0, (said, err)
    assert said[:2] == ["WAIT first", "WAIT second"], (said, err)
    return result, err


@pytest.mark.parametrize("second", ["optimizer:3", "step:3"])
def test_a_second_ctrl_c_inside_a_step_marks_the_run_not_exactly_resumable(second, tmp_path):
    """The first SIGINT in step 2's forward pass; the second after its optimiser step, or while its record
    reaches the History: the step is cut part-way, and the run says so, in the file too."""
    result, err = interrupted_run("train:3", second, tmp_path / "cut.pt")
    assert result["status"] == "interrupted" and result["exact_resume"] is False and result["cut_step"] == 2
    assert "NOT exactly resumable" in err and "part-way through step 2" in err
    again = make("equal", record_every=1)
    again.load(tmp_path / "cut.pt")
    assert again.history.meta["exact_resume"] is False
    assert any("NOT exactly resumable" in n.get("warning", "") for n in again.history.notes)
    assert again.fit().status == "completed" and again.history.meta["exact_resume"] is False  # said for good


def test_a_second_ctrl_c_during_the_epoch_evaluation_ends_at_a_step_boundary_and_resumes_bitwise(tmp_path):
    """The first SIGINT in the last step of epoch 1 (4 batches); the second during that epoch's validation
    pass, which changes nothing: the run stops at the step boundary and continues exactly."""
    whole = make("equal", record_every=1)
    whole.fit()
    result, err = interrupted_run("train:4", "eval:1", tmp_path / "boundary.pt")
    assert result["status"] == "interrupted" and result["exact_resume"] is None
    assert result["steps"] == result["recorded"] == 4
    assert "continues exactly" in err and "NOT exactly" not in err
    fresh = make("equal", record_every=1)
    fresh.load(tmp_path / "boundary.pt")
    assert fresh.fit().status == "completed"
    assert_same_run(whole, fresh)
