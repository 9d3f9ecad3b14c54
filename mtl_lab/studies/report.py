"""A study's report folder: ``report.md``, ``results.csv``, ``results.json`` and two figures.

* ``metrics.png`` — one panel per task: each method's mean test metric with its 95 % confidence
  interval as an error bar, grouped by architecture; the single-task baseline as a dashed line.
* ``tradeoff.png`` — Δm % (mean ± CI) against training seconds per run: which methods buy their
  gain with compute; one marker shape per architecture.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mtl_lab import plots
from mtl_lab.metrics import hypervolume, minimisation_points, nadir_reference
from mtl_lab.palette import NEUTRAL, method_color
from mtl_lab.studies.spec import BASELINE
from mtl_lab.studies.study import StudyResult

MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]


def colour(label: str) -> str:
    return method_color(label.split(" ")[0])


def fmt(mean: float, ci: float, digits: int = 4) -> str:
    if not math.isfinite(mean):
        return "—"
    return f"{mean:.{digits}f}" + (f" ± {ci:.{digits}f}" if math.isfinite(ci) else "")


def metrics_figure(result: StudyResult) -> Figure:
    tasks = result.task_names
    archs = [a.display for a in result.study.architectures]
    labels = result.study.method_labels
    fig = Figure(figsize=(max(4.0, 1.2 + 0.35 * len(labels) * len(archs)) * min(len(tasks), 3) / 1.5,
                          3.2 * math.ceil(len(tasks) / 3)), layout="constrained")
    axes = fig.subplots(math.ceil(len(tasks) / 3), min(len(tasks), 3), squeeze=False).ravel()
    baselines = result.baselines()
    width = 0.8 / max(len(labels), 1)
    for ax, task in zip(axes, tasks):
        for a, arch in enumerate(archs):
            for m, label in enumerate(labels):
                row = next(r for r in result.records if r["architecture"] == arch and r["method"] == label)
                mean, ci = row[f"{task}_mean"], row[f"{task}_ci"]
                x = a + (m - (len(labels) - 1) / 2) * width
                ax.bar(x, mean if math.isfinite(mean) else 0, width * 0.9, color=colour(label),
                       yerr=ci if math.isfinite(ci) else None, capsize=2, label=label if a == 0 else None)
            base = baselines.get(arch, {}).get(task)
            if base is not None and math.isfinite(base[0]):
                ax.hlines(base[0], a - 0.45, a + 0.45, colors=NEUTRAL, linestyles="--",
                          label="single-task" if a == 0 else None)
        arrow = "↑" if result.higher_is_better[task] else "↓"
        ax.set_title(f"{task}: test {result.metric_names[task]} {arrow}", fontsize=9)
        ax.set_xticks(range(len(archs)), archs, fontsize=9)
        values = [r[f"{task}_mean"] for r in result.records if math.isfinite(r[f"{task}_mean"])]
        if values and result.higher_is_better[task]:
            ax.set_ylim(max(0.0, min(values) - 0.1 * (max(values) - min(values) + 1e-3) - 0.05), None)
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    axes[0].legend(fontsize=9)
    fig.suptitle(f"{result.study.name}: mean ± 95 % CI over {len(result.study.seeds)} seeds", fontsize=10)
    return fig


def tradeoff_figure(result: StudyResult) -> Figure:
    fig = Figure(figsize=(6.4, 4.4), layout="constrained")
    ax = fig.subplots()
    archs = [a.display for a in result.study.architectures]
    drawn = 0
    for row in result.records:
        mean, ci = row["delta_m_mean"], row["delta_m_ci"]
        if not (math.isfinite(mean) and math.isfinite(row["seconds"])):
            continue
        marker = MARKERS[archs.index(row["architecture"]) % len(MARKERS)]
        ax.errorbar(row["seconds"], mean, yerr=ci if math.isfinite(ci) else None, fmt=marker, ms=8,
                    color=colour(row["method"]), capsize=3, label=f"{row['method']} ({row['architecture']})")
        drawn += 1
    ax.axhline(0.0, color=NEUTRAL, lw=0.8, ls="--")
    ax.set_xlabel("training seconds per run")
    ax.set_ylabel("Δm % vs single-task (↑ better)")
    ax.set_title("Gain against cost: mean ± 95 % CI over seeds", fontsize=10)
    if drawn:
        ax.legend(fontsize=9)
    else:
        ax.text(0.5, 0.5, "no Δm % (baselines off or failed)", ha="center", va="center", transform=ax.transAxes)
    return fig


def markdown_table(result: StudyResult) -> str:
    tasks = result.task_names
    head = ["architecture", "method", *[f"{t} ({result.metric_names[t]} {'↑' if result.higher_is_better[t] else '↓'})"
                                        for t in tasks], "Δm %", "mean rank", "s / run", "steps/s", "runs ok"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    baselines = result.baselines()
    for arch, values in baselines.items():
        if values:
            cells = [arch, "single-task", *[fmt(*values[t]) if t in values else "—" for t in tasks], "", "", "", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
    for r in result.records:
        cells = [r["architecture"], r["method"], *[fmt(r[f"{t}_mean"], r[f"{t}_ci"]) for t in tasks],
                 fmt(r["delta_m_mean"], r["delta_m_ci"], 2), f"{r['mean_rank']:.2f}", f"{r['seconds']:.2f}",
                 f"{r['steps_per_s']:.0f}" if math.isfinite(r["steps_per_s"]) else "—", f"{r['completed']}/{r['runs']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def front_scores_table(result: StudyResult) -> str:
    """Per architecture: each method's mean test point scored by its hypervolume against one reference
    (the worst mean of each task + 10 % of its range, metrics where higher is better negated), and the
    hypervolume of all the methods' points together. ``""`` unless the study has 2 or 3 tasks."""
    tasks = result.task_names
    if len(tasks) not in (2, 3):
        return ""
    higher = {t: result.higher_is_better[t] for t in tasks}
    lines = ["| architecture | method | hypervolume | on the methods' front |", "|---|---|---|---|"]
    for arch in dict.fromkeys(r["architecture"] for r in result.records):
        rows = [r for r in result.records if r["architecture"] == arch]
        points = minimisation_points([{t: r[f"{t}_mean"] for t in tasks} for r in rows], higher)
        finite = np.isfinite(points).all(axis=1)
        if not finite.any():
            continue
        reference = nadir_reference(points)
        good = points[finite]
        for r, p, ok in zip(rows, points, finite):
            on_front = ok and not any((q <= p).all() and (q < p).any() for q in good)
            hv = f"{hypervolume(p[None], reference):.4g}" if ok else "—"
            lines.append(f"| {arch} | {r['method']} | {hv} | {'yes' if on_front else ''} |")
        lines.append(f"| {arch} | all methods together | {hypervolume(good, reference):.4g} | |")
    return "\n".join(lines)


def overall_ranks(result: StudyResult) -> list[tuple[str, float]]:
    """Each method's mean rank over every architecture and task, best first."""
    out = {}
    for label in result.study.method_labels:
        ranks = [r["mean_rank"] for r in result.records if r["method"] == label and math.isfinite(r["mean_rank"])]
        out[label] = sum(ranks) / len(ranks) if ranks else math.nan
    return sorted(out.items(), key=lambda kv: (not math.isfinite(kv[1]), kv[1]))


def write_report(result: StudyResult, out: str | Path) -> Path:
    """Write the report folder; returns the path of ``report.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    study = result.study
    (out / "results.json").write_text(json.dumps(
        {"study": study.name, "tasks": result.task_names, "records": result.records, "runs": result.runs},
        indent=1, allow_nan=True))
    columns = list(result.records[0]) if result.records else []
    with open(out / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for r in result.records:
            writer.writerow({k: "; ".join(v) if isinstance(v, list) else v for k, v in r.items()})
    plots.save(metrics_figure(result), out / "metrics.png")
    plots.save(tradeoff_figure(result), out / "tradeoff.png")
    failed = [r for r in result.runs if r["status"] != "completed"]
    lines = [
        f"# Study: {study.name}",
        "",
        f"- data: {study.data} {study.data_options or ''}, tasks {result.task_names}",
        "- architectures: " + ", ".join(f"{a.display} {a.options}" if a.options else a.display
                                        for a in study.architectures),
        f"- methods: {', '.join(study.method_labels)}",
        f"- seeds: {list(study.seeds)}; training: " + ", ".join(f"{k}={v}" for k, v in study.train.items()),
        f"- runs: {len(result.runs)} ({result.cached} from the cache), engine {result.engine}, "
        f"wall time {result.seconds:.1f} s",
        "",
        "## Test metrics (mean ± 95 % CI over seeds)",
        "",
        markdown_table(result),
        "",
        "The interval is Student's t: mean ± t(0.975, n−1)·s/√n over the seeds. Δm % averages each task's "
        "relative change against the single-task model of the same architecture and seed (positive is "
        "better; Maninis et al., CVPR 2019). The mean rank ranks the methods within an architecture on "
        "each task's mean (1 = best) and averages over tasks.",
        "",
        "## Mean rank over all architectures",
        "",
        *[f"{i + 1}. {label}: {rank:.2f}" for i, (label, rank) in enumerate(overall_ranks(result))],
        "",
        *(["## Front scores (hypervolume of the mean test metrics, larger is better)", "",
            front_scores_table(result), "",
            "Hypervolume (Zitzler & Thiele 1998, exact): the area (volume) that a point dominates up to a "
            "reference placed at the worst mean of each task plus 10 % of its range; metrics where higher "
            "is better are negated first. Comparable only within one architecture's rows.", ""]
           if front_scores_table(result) else []),
        "## Figures",
        "![metrics](metrics.png)",
        "",
        "![trade-off](tradeoff.png)",
        "",
    ]
    if failed:
        lines += ["## Failed runs (retried on the next run of the study)", ""]
        lines += [f"- {r['architecture']}/{r['method']}/seed {r['seed']}"
                  + (f" (task {r['tasks'][0]})" if r["method"] == BASELINE else "")
                  + f": {r.get('error', r['status'])}" for r in failed] + [""]
    (out / "report.md").write_text("\n".join(lines))
    return out / "report.md"
