"""Rounds per CPU-second of a race (:class:`mtl_lab.training.race.LockStep`) on the Lab's default set-up.

One process builds the racers as the panel's Race does (``LabConfig()``: digits, the hard-sharing MLP, the
default options; only the method differs), warms up for ``--warm`` rounds and measures
``time.process_time`` over the next ``--rounds`` rounds, read in ``after_round`` (one thread:
``torch.set_num_threads(1)``). The race is run with ``run(max_rounds=warm + rounds)``, so the racers' begin
and end (the test split) fall outside the measured rounds. ``--machinery`` measures only what a turn costs
around its step: each racer's step is replaced by a counter and its batch by one fixed batch (CPU µs per turn).

``--compare OLD_ROOT`` runs the measurement in separate processes, alternating a checkout at ``OLD_ROOT``
(its ``mtl_lab`` first on ``PYTHONPATH``) and this one, ``--pairs`` times for 2 and for 4 racers, and prints
each pair and the median ratio new/old. Run:
``python benchmarks/bench_race.py --compare /path/to/old/checkout [--rounds 200] [--pairs 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

RACES = {2: ("equal", "pcgrad"), 4: ("equal", "uncertainty", "pcgrad", "mgda")}
ROOT = Path(__file__).resolve().parents[1]


def step_free(trainer) -> None:
    """``trainer`` takes no real step: one fixed batch, a counter for the step, an epoch's end that only
    restarts the count (what is left of a turn is the race's and the run's own machinery)."""
    batch = trainer.source.next()
    trainer.source.next = lambda: batch

    def count(x, targets, masks=None) -> None:
        trainer.global_step += 1
        trainer.totals.batches += 1

    def restart() -> None:
        trainer.totals.batches = 0

    trainer.train_step_guarded, trainer.end_epoch = count, restart


def measure(racers: int, warm: int, rounds: int, machinery: bool = False) -> dict:
    """Rounds per CPU-second of one race of ``racers`` methods, in this process (``machinery``: steps
    replaced by counters, :func:`step_free`)."""
    import torch

    import mtl_lab
    from mtl_lab.training.race import LockStep, race_trainers
    from mtl_lab.widgets.config import LabConfig, make_trainer
    from mtl_lab.widgets.race import racer_config

    torch.set_num_threads(1)
    config = LabConfig(device="cpu")
    trainers = race_trainers(list(RACES[racers]), lambda m: make_trainer(racer_config(config, m)))
    if machinery:
        for trainer in trainers.values():
            step_free(trainer)
    marks: dict[int, float] = {}

    def after_round(step: int) -> None:
        if step in (warm, warm + rounds):
            marks[step] = time.process_time()

    LockStep(trainers, after_round=after_round).run(max_rounds=warm + rounds)
    seconds = marks[warm + rounds] - marks[warm]
    return {"racers": racers, "rounds": rounds, "cpu_s": round(seconds, 4), "rounds_per_cpu_s": rounds / seconds,
            "us_per_turn": 1e6 * seconds / (rounds * racers), "machinery": machinery,
            "mtl_lab": str(Path(mtl_lab.__file__).parent)}


def child(root: Path, racers: int, warm: int, rounds: int, machinery: bool) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    args = ["--racers", str(racers), "--warm", str(warm), "--rounds", str(rounds)] + (["--machinery"] if machinery
                                                                                         else [])
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], env=env, capture_output=True,
                         text=True, check=True, cwd=root)
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(old: Path, warm: int, rounds: int, pairs: int, machinery: bool) -> None:
    print("load:", os.getloadavg())
    for racers in RACES:
        ratios = []
        for pair in range(pairs):
            first, second = (old, ROOT) if pair % 2 == 0 else (ROOT, old)  # alternate which goes first
            result = {first: child(first, racers, warm, rounds, machinery),
                      second: child(second, racers, warm, rounds, machinery)}
            a, b = result[old]["rounds_per_cpu_s"], result[ROOT]["rounds_per_cpu_s"]
            ratios.append(b / a)
            print(f"{racers} racers, pair {pair + 1}: old {a:.1f}  new {b:.1f} rounds/CPU-s  new/old {b / a:.3f}  "
                  f"(µs per turn: old {result[old]['us_per_turn']:.1f}, new {result[ROOT]['us_per_turn']:.1f})")
        print(f"{racers} racers: median new/old {statistics.median(ratios):.3f}")
    print("load:", os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--racers", type=int, choices=sorted(RACES), default=2)
    parser.add_argument("--warm", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--machinery", action="store_true", help="steps replaced by counters: a turn's own cost")
    parser.add_argument("--compare", type=Path, default=None, help="an older checkout to compare with")
    args = parser.parse_args()
    if args.compare is not None:
        compare(args.compare.resolve(), args.warm, args.rounds, args.pairs, args.machinery)
    else:
        print(json.dumps(measure(args.racers, args.warm, args.rounds, args.machinery)))


if __name__ == "__main__":
    main()
