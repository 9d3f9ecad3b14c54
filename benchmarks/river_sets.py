"""Yeast and Solar-flare: one shared model against one model per task, over seeds (quality, not speed).

The question a learner asks first of a multi-label set: does one trunk shared by the 14 Yeast labels (or
the 3 flare counts) do better than a separate model per label? Set-up (ours, small enough for 2 cores):

* data: ``data.load("yeast")`` with MULAN's split (1 200 train / 300 validation / 917 test) and
  ``data.load("solar_flare")`` (640 / 213 / 213), from river's copy or ``--root DIR``;
* models: the hard-sharing MLP with one hidden layer of ``--hidden`` ReLU units (64), one linear head per
  task; single-task: the same architecture trained on one task (:func:`mtl_lab.metrics.single_task_baselines`);
* training: equal weights, Adam at 1e-3, batch 64, ``--epochs`` passes (20); a seed draws the validation
  genes (Yeast), the split (Solar-flare), the initialisation and the batch order;
* measured: the test metric of the last epoch — Yeast: accuracy per label and its mean over the 14 labels
  (1 − Hamming loss); Solar-flare: MSE per count, next to the MSE of predicting the training mean.

Reported: mean ± standard deviation over ``--seeds`` seeds (3), and Δm % (shared against single-task,
Maninis et al.'s mean relative change; positive = sharing helps).

Run: ``python benchmarks/river_sets.py [--root DIR] [--seeds N] [--epochs N] [--hidden N]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab import data as datasets  # noqa: E402
from mtl_lab.metrics import baseline_metrics, delta_m, directions, single_task_baselines  # noqa: E402
from mtl_lab.training import build_trainer  # noqa: E402


def mean_sd(values: list[float], digits: int = 4) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.{digits}f} ± {sd:.{digits}f}"


def run(name: str, root: str | None, seed: int, options: dict) -> dict[str, dict[str, float]]:
    """Test metrics by task of the shared model and of the single-task models, for one seed."""
    data = datasets.load(name, seed=seed, **({"root": root} if root else {}))
    model_options = {"hidden": (options.pop("hidden"),)}
    shared = build_trainer(data, "hard", "equal", model_options, seed=seed, **options).fit()
    single = baseline_metrics(single_task_baselines(data, "hard", model_options, seed=seed, **options))
    mean_target = {t: float(((data.test.y[t] - data.train.y[t].mean()) ** 2).mean()) for t in data.task_names}
    return {"shared": shared.meta["test_metrics"], "single": single, "mean": mean_target,
            "delta_m": {"shared": delta_m(shared.meta["test_metrics"], single, directions(data))}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="a folder with yeast.csv.gz and solar-flare.csv.zip")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    for name in ("yeast", "solar_flare"):
        runs = []
        for seed in range(args.seeds):
            options = {"epochs": args.epochs, "batch_size": 64, "lr": 1e-3, "device": "cpu",
                       "diagnostics_every": 0, "hidden": args.hidden}
            runs.append(run(name, args.root, seed, options))
        tasks = list(runs[0]["shared"])
        print(f"\n{name}: {args.seeds} seeds, {args.epochs} epochs, hidden {args.hidden}")
        print(f"{'task':<10} {'shared':>18} {'single-task':>18}" + ("" if name == "yeast" else f" {'train mean':>10}"))
        for task in tasks:
            line = f"{task:<10} {mean_sd([r['shared'][task] for r in runs]):>18} "
            line += f"{mean_sd([r['single'][task] for r in runs]):>18}"
            if name != "yeast":
                line += f" {statistics.fmean(r['mean'][task] for r in runs):>10.4f}"
            print(line)
        if name == "yeast":
            for key in ("shared", "single"):
                means = [statistics.fmean(r[key].values()) for r in runs]
                print(f"mean accuracy over the 14 labels, {key}: {mean_sd(means)}")
        print(f"Δm % (shared vs single-task): {mean_sd([r['delta_m']['shared'] for r in runs], 2)}")
    print(f"\n{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
