"""The statistics of a study: Student-t confidence intervals, average ranks, and the summary records."""

from __future__ import annotations

import math
import statistics

from mtl_lab.metrics import delta_m
from mtl_lab.studies.runs import RunSpec
from mtl_lab.studies.spec import BASELINE, Study


def t_quantile(p: float, df: int) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom (0.5 < p < 1).

    Newton's method on the CDF, which is integrated from the density with Simpson's rule on ``[0, x]``;
    started at 0, where the CDF is concave, the iterates rise monotonically to the root (accurate to
    ~1e-9 for the quantiles a study uses).
    """
    if not 0.5 < p < 1:
        raise ValueError(f"p must be in (0.5, 1), got {p!r}")
    if isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an int ≥ 1, got {df!r}")
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def density(x: float) -> float:
        return math.exp(log_c - (df + 1) / 2 * math.log1p(x * x / df))

    def cdf(x: float, n: int = 2000) -> float:
        h = x / n
        total = density(0.0) + density(x) + sum((4 if i % 2 else 2) * density(i * h) for i in range(1, n))
        return 0.5 + total * h / 3

    x = 0.0
    for _ in range(500):
        step = (p - cdf(x)) / density(x)
        x += step
        if abs(step) < 1e-11 * max(1.0, x):
            break
    return x


def mean_ci(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """``(mean, half-width)`` of the t-interval at ``level``; the half-width is NaN for fewer than 2 values."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return math.nan, math.nan
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, math.nan
    sd = statistics.stdev(values)
    return mean, t_quantile(0.5 + level / 2, len(values) - 1) * sd / math.sqrt(len(values))


def average_ranks(scores: list[float], higher_is_better: bool) -> list[float]:
    """Rank 1 = best; tied scores share the average of their ranks; NaN ranks last."""
    key = [(-s if higher_is_better else s) if math.isfinite(s) else math.inf for s in scores]
    order = sorted(range(len(key)), key=lambda i: key[i])
    ranks = [0.0] * len(key)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and key[order[j + 1]] == key[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def summarise(study: Study, results: dict[str, dict], specs: list[RunSpec], task_names: list[str],
              higher: dict[str, bool]) -> list[dict]:
    """One record per (architecture, method): metrics mean ± CI, Δm % ± CI, mean rank, cost, failures.

    ``task_names`` and ``higher`` (higher is better, per task) are the study's tasks and their directions.
    """
    done = [results[s.key] for s in specs if s.key in results]
    ok = [r for r in done if r["status"] == "completed"]
    baseline: dict[tuple[str, int], dict[str, float]] = {}
    for r in ok:
        if r["method"] == BASELINE:
            baseline.setdefault((r["architecture"], r["seed"]), {}).update(r["test_metrics"])
    records = []
    for arch in study.architectures:
        for label in study.method_labels:
            runs = [r for r in done if r["architecture"] == arch.display and r["method"] == label]
            good = [r for r in runs if r["status"] == "completed"]
            record = {"architecture": arch.display, "method": label, "runs": len(runs), "completed": len(good),
                      "errors": [f"seed {r['seed']}: {r.get('error', r['status'])}" for r in runs if r not in good]}
            for task in task_names:
                record[f"{task}_mean"], record[f"{task}_ci"] = mean_ci([r["test_metrics"][task] for r in good])
            deltas = []
            for r in good:
                base = baseline.get((arch.display, r["seed"]), {})
                values = [r["test_metrics"].get(t, math.nan) for t in task_names] + [base.get(t, math.nan)
                                                                                     for t in task_names]
                usable = all(math.isfinite(v) for v in values) and all(base[t] != 0 for t in task_names)
                if task_names and usable:  # Δm needs finite metrics and non-zero baselines
                    deltas.append(delta_m(r["test_metrics"], {t: base[t] for t in task_names}, higher))
            record["delta_m_mean"], record["delta_m_ci"] = mean_ci(deltas)
            record["seconds"] = statistics.fmean([r["seconds"] for r in good]) if good else math.nan
            record["steps_per_s"] = statistics.fmean([r["steps_per_s"] for r in good]) if good else math.nan
            records.append(record)
    for arch in study.architectures:
        rows = [r for r in records if r["architecture"] == arch.display]
        per_task = [average_ranks([r[f"{t}_mean"] for r in rows], higher.get(t, True)) for t in task_names]
        for i, r in enumerate(rows):
            ranked = per_task and r["completed"]
            r["mean_rank"] = statistics.fmean(ranks[i] for ranks in per_task) if ranked else math.nan
    return records


