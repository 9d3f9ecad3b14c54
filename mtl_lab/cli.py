"""The ``mtl-lab`` command line: headless runs that write a report folder.

``mtl-lab run --data digits --methods equal,static --epochs 30 --out reports/demo`` trains one model per
method (same seed, same initial weights), single-task baselines for Δm %, and writes

* ``report.md``      — the configuration, a per-task test-metric table with Δm %, and the figures;
* ``metrics.json``   — the same numbers, machine-readable;
* ``history.json``   — every run's History (``mtl_lab.history.load_runs`` reads it back);
* ``curves.png``     — the signature figure of the first method (``curves_<method>.png`` for each);
* ``comparison.png`` — validation curves of all runs overlaid, when there are several.

``mtl-lab run --nproc N …`` trains each model data-parallel on N processes (torchrun; :mod:`mtl_lab.training.parallel`).
``mtl-lab study FILE --out DIR`` runs a grid of methods × architectures × seeds (:mod:`mtl_lab.studies.cli`).

``mtl-lab list`` shows the data sets, methods and architectures. ``mtl-lab lab`` opens JupyterLab on the
notebooks and ``mtl-lab app`` serves the weight-tuning lab as a standalone page (Voila: the notebook's
widgets without its code); both listen on 127.0.0.1 only and keep token authentication.
``mtl-lab exercises list`` lists the coursework exercises and ``mtl-lab exercises strip SOLUTIONS.ipynb
OUT.ipynb`` writes the student version of a solutions notebook (solutions replaced by stubs). Bad arguments
end with a one-line message and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mtl_lab import data as datasets
from mtl_lab import plots, validate
from mtl_lab.history import History
from mtl_lab.metrics import (
    baseline_metrics,
    delta_m,
    delta_m_by_kind,
    directions,
    dominance_note,
    metrics_table,
    relative_changes,
    single_task_baselines,
)
from mtl_lab.models import ARCHITECTURES, build_model
from mtl_lab.studies.cli import add_study_parser, study_command
from mtl_lab.training import Event, TrainConfig, build_trainer, check_architecture_options
from mtl_lab.training import parallel as distributed
from mtl_lab.training.guards import NonFiniteLossError
from mtl_lab.training.inputs import input_mode
from mtl_lab.weighting import METHODS, available, create


class UsageError(ValueError):
    """A bad command-line value (reported in one line, exit status 2)."""


def parse_list(text: str, what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise UsageError(f"{what} is empty")
    return items


def parse_value(text: str):
    """``"3"`` → 3, ``"0.5"`` → 0.5, ``"true"`` → True, ``"[1,2]"`` → [1, 2], else the string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignments(items: list[str], flag: str) -> dict:
    """``["a=1", "b=x"]`` → ``{"a": 1, "b": "x"}`` (values parsed by :func:`parse_value`)."""
    out = {}
    for item in items:
        if "=" not in item:
            raise UsageError(f"{flag} must look like NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        out[key.strip()] = parse_value(value)
    return out


def parse_weights(text: str | None) -> list[float] | dict[str, float] | None:
    """``"2,1,1"`` (one per task, in order) or ``"digit=2,parity=1"`` (missing tasks get 1)."""
    if text is None:
        return None
    parts = parse_list(text, "--weights")
    try:
        if all("=" in p for p in parts):
            return {k.strip(): float(v) for k, v in (p.split("=", 1) for p in parts)}
        if any("=" in p for p in parts):
            raise UsageError(f"--weights mixes 'name=value' and plain values: {text!r}")
        return [float(p) for p in parts]
    except ValueError as exc:
        if isinstance(exc, UsageError):
            raise
        raise UsageError(f"--weights must be numbers, got {text!r}") from None


def parse_method_options(items: list[str], methods: list[str]) -> dict[str, dict]:
    """``--option cagrad.c=0.4`` → ``{"cagrad": {"c": 0.4}}``."""
    out: dict[str, dict] = {m: {} for m in methods}
    for item in items:
        if "=" not in item or "." not in item.split("=", 1)[0]:
            raise UsageError(f"--option must look like METHOD.NAME=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        method, name = key.split(".", 1)
        if method not in out:
            raise UsageError(f"--option {item!r} names method {method!r}, which is not in --methods {methods}")
        out[method][name] = parse_value(value)
    return out


class Progress:
    """A tqdm progress bar over a run's epochs on stderr, showing the summed training loss."""

    def __init__(self, label: str, epochs: int, stream=sys.stderr) -> None:
        from tqdm.auto import tqdm

        self.bar = tqdm(total=epochs, desc=f"{label:>18}", unit="epoch", file=stream, leave=True)

    def __call__(self, event: Event) -> None:
        if event.kind == "epoch":
            self.bar.set_postfix(loss=f"{sum(event.data['train_loss'].values()):.4f}")
            self.bar.update(1)
        elif event.kind in ("end", "error"):
            self.bar.close()


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (``mtl-lab: error: …``) and exit status 2."""

    def error(self, message: str):
        self.exit(2, f"mtl-lab: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="mtl-lab", description="mtl_lab: a teaching lab for multi-task learning")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train one model per method and write a report folder")
    run.add_argument("--data", default="digits", help=f"data set: {', '.join(datasets.DATASETS)}")
    run.add_argument("--tasks", default=None, help="comma-separated subset of the data set's tasks")
    run.add_argument("--data-option", action="append", default=[], metavar="NAME=VALUE",
                     help="data set option, e.g. correlation=0.9 (repeatable)")
    run.add_argument("--root", default=None, metavar="DIR",
                     help="folder holding a real data set's files (mnist, multimnist, celeba …; see data/README.md)")
    run.add_argument("--methods", default="equal", help=f"comma-separated methods: {', '.join(METHODS)}")
    run.add_argument("--weights", default=None, help="static weights: '2,1,1' or 'digit=2,parity=1'")
    run.add_argument("--normalize-weights", action="store_true", help="rescale static weights to sum to 1")
    run.add_argument("--option", action="append", default=[], metavar="METHOD.NAME=VALUE",
                     help="method hyper-parameter, e.g. cagrad.c=0.4 (repeatable)")
    run.add_argument("--arch", default="hard", help=f"architecture: {', '.join(ARCHITECTURES)}")
    run.add_argument("--trunk", default=None, choices=["mlp", "cnn", "lenet"],
                     help="trunk type, where the architecture has one")
    run.add_argument("--hidden", default=None, help="MLP trunk widths, e.g. 256,256 (architectures with an MLP trunk)")
    run.add_argument("--model-option", action="append", default=[], metavar="NAME=VALUE",
                     help="architecture option, e.g. n_experts=8 (repeatable; see `mtl-lab list`)")
    defaults = TrainConfig()
    run.add_argument("--epochs", type=int, default=defaults.epochs)
    run.add_argument("--batch-size", type=int, default=defaults.batch_size)
    run.add_argument("--optimizer", default=defaults.optimizer)
    run.add_argument("--lr", type=float, default=defaults.lr)
    run.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    run.add_argument("--l1", type=float, default=defaults.l1)
    run.add_argument("--schedule", default=defaults.schedule)
    run.add_argument("--device", default=defaults.device)
    run.add_argument("--seed", type=int, default=defaults.seed)
    run.add_argument("--diagnostics-every", type=int, default=defaults.diagnostics_every)
    run.add_argument("--augment", action="store_true", help="train-time augmentation of the data set")
    run.add_argument("--no-baselines", action="store_true", help="skip the single-task baselines (no Δm %%)")
    run.add_argument("--out", required=True, help="report folder (created)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--nproc", type=int, default=1,
                     help="data-parallel processes for each run (torch.distributed; see README, Scaling up)")

    sub.add_parser("list", help="list data sets, methods and architectures")
    add_study_parser(sub)

    lab = sub.add_parser("lab", help="open JupyterLab on the notebooks (localhost, token authentication)")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--notebooks", default="notebooks")
    lab.add_argument("--no-browser", action="store_true", help="do not open a browser window")

    app = sub.add_parser("app", help="the classroom page: the instruments without code or prose (Voila)")
    app.add_argument("--port", type=int, default=8866)
    app.add_argument("--notebook", default=None, help="the notebook to serve (default: the classroom page)")
    app.add_argument("--cull-idle", type=int, default=120,
                     help="seconds after which the kernel of a closed page is shut down (default 120)")
    app.add_argument("--no-browser", action="store_true", help="do not open a browser window")

    exercises = sub.add_parser("exercises", help="coursework: list the exercises, make the student notebook")
    exercises_sub = exercises.add_subparsers(dest="exercises_command", required=True)
    exercises_sub.add_parser("list", help="the exercises and the function each one asks for")
    strip = exercises_sub.add_parser("strip", help="write the student version of a solutions notebook")
    strip.add_argument("solutions", help="the solutions notebook (### BEGIN SOLUTION … ### END SOLUTION blocks)")
    strip.add_argument("out", help="the student notebook to write (not the solutions notebook itself)")
    strip.add_argument("--keep-outputs", action="store_true", help="keep the stored outputs of unchanged cells")
    return parser


@dataclass
class PreparedRun:
    """A ``run`` command's values, every one checked (:func:`prepare_run`), before anything trains."""

    data: object
    methods: list[str]
    options: dict[str, dict]
    model_options: dict
    train_options: dict
    out: Path


def prepare_run(args: argparse.Namespace) -> PreparedRun:
    """Parse and check every value of ``mtl-lab run`` through the API's own checks; nothing trains, no folder
    is made. Called by :func:`run_command`, and once in the parent by ``--nproc`` before any rank starts."""
    data_options = parse_assignments(args.data_option, "--data-option")
    if args.root is not None:
        if "root" in data_options:
            raise UsageError("give the data folder once: --root DIR or --data-option root=DIR, not both")
        data_options["root"] = args.root
    if args.augment:  # the data set carries the augmentation; the trainer applies it
        data_options.setdefault("augment", True)
    data = datasets.load(args.data, **data_options)
    if args.tasks:
        data = data.select(parse_list(args.tasks, "--tasks"))
    methods = parse_list(args.methods, "--methods")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise UsageError(f"unknown method(s) {unknown}; choose from {sorted(METHODS)}")
    if len(set(methods)) != len(methods):
        raise UsageError(f"--methods repeats a method: {methods}")
    options = parse_method_options(args.option, methods)
    if "static" in methods:
        options["static"].setdefault("weights", parse_weights(args.weights))
        options["static"].setdefault("normalize", args.normalize_weights)
    elif args.weights is not None:
        raise UsageError("--weights is given but 'static' is not among --methods")
    if args.arch not in ARCHITECTURES:
        raise UsageError(f"unknown architecture {args.arch!r}; choose from {sorted(ARCHITECTURES)}")
    model_options = parse_assignments(args.model_option, "--model-option")
    if args.trunk is not None:
        model_options["trunk"] = args.trunk
    if args.hidden is not None:
        try:
            model_options["hidden"] = tuple(int(h) for h in parse_list(args.hidden, "--hidden"))
        except ValueError:
            raise UsageError(f"--hidden must be comma-separated ints, got {args.hidden!r}") from None
    train_options = {
        "epochs": args.epochs, "batch_size": args.batch_size, "optimizer": args.optimizer, "lr": args.lr,
        "weight_decay": args.weight_decay, "l1": args.l1, "schedule": args.schedule, "device": args.device,
        "seed": args.seed, "diagnostics_every": args.diagnostics_every, "augment": args.augment,
    }
    check_before_training(data, args.arch, model_options, methods, options, train_options)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is an existing file; give a folder for the report")
    return PreparedRun(data, methods, options, model_options, train_options, out)


def run_command(args: argparse.Namespace) -> Path | None:
    run = prepare_run(args)
    data, methods, options = run.data, run.methods, run.options
    model_options, train_options, out = run.model_options, run.train_options, run.out
    data_parallel = distributed.from_environment(args.device)  # started by torchrun: one rank of several
    if data_parallel is not None:
        train_options["device"] = data_parallel.device(args.device)
    quiet = args.quiet or (data_parallel is not None and data_parallel.rank != 0)
    out.mkdir(parents=True, exist_ok=True)
    say = (lambda *_: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    say(f"data {data.name}: tasks {data.task_names}, train/val/test = "
        f"{len(data.train)}/{len(data.val)}/{len(data.test)}")

    started = time.perf_counter()
    histories: dict[str, History] = {}
    failures: list[str] = []
    for method in methods:
        progress = None if quiet else Progress(method, args.epochs)
        trainer = build_trainer(data, args.arch, method, model_options, options[method], progress, **train_options)
        if data_parallel is not None:
            data_parallel.attach(trainer)
        try:
            histories[method] = trainer.fit()
        except NonFiniteLossError as exc:  # keep the run (status error) and go on with the other methods
            histories[method] = trainer.history
            failures.append(f"method {method!r}: {exc}")
    if data_parallel is not None:
        distributed.finish()
        if data_parallel.rank != 0:  # only rank 0 trains the baselines and writes the report
            return None
    baseline = None
    if not args.no_baselines and not failures:
        say("single-task baselines …")
        baseline_runs = single_task_baselines(data, args.arch, model_options, **train_options)
        baseline = baseline_metrics(baseline_runs)
    seconds = time.perf_counter() - started
    world = data_parallel.world if data_parallel is not None else 1
    write_report(out, data, histories, baseline, args, train_options, model_options, options, seconds, world)
    if failures:
        raise RunFailed(f"{'; '.join(failures)} (the report in {str(out)!r} keeps what was trained)")
    return out


def dominance_notes(histories: dict[str, History], baseline: dict | None, dirs: dict[str, bool]) -> list[str]:
    """A paragraph per run whose Δm one task dominates (see :func:`mtl_lab.metrics.dominance_note`)."""
    if not baseline:
        return []
    notes = []
    for label, h in histories.items():
        if "test_metrics" not in h.meta:  # a run that failed has no test metrics
            continue
        note = dominance_note(relative_changes(h.meta["test_metrics"], baseline, dirs))
        if note:
            notes += ["", f"**{label}:** {note}"]
    return notes


class RunFailed(RuntimeError):
    """A run stopped with an error after its report was written (one line, exit status 2)."""


def check_before_training(data, arch: str, model_options: dict, methods: list[str], options: dict,
                          train_options: dict) -> None:
    """Every value through the API's own checks before anything trains or any folder is made."""
    config = TrainConfig(**train_options)
    validate.check_device_available(train_options["device"])
    check_architecture_options(arch, model_options)
    inputs = input_mode(data)  # multi-input data refuse some paths: the Trainer's own check, before any run
    for method in methods:
        weighting = create(method, **options[method])
        weighting.reset(data.task_names)
        inputs.check(weighting.name, weighting.requires, config.rep_grads, config.gradient_path)


def write_report(out, data, histories, baseline, args, train_options, model_options, options, seconds,
                 world: int = 1) -> None:
    finished = {label: h for label, h in histories.items() if "test_metrics" in h.meta}
    runs = {label: h.final_metrics("test") for label, h in finished.items()}
    dirs = directions(data)
    metrics = {
        "data": data.summary(),
        "baseline": baseline,
        "runs": {
            label: {
                "test_metrics": h.meta.get("test_metrics"),
                "test_loss": h.meta.get("test_loss"),
                "delta_m": delta_m(h.meta["test_metrics"], baseline, dirs) if baseline and label in finished else None,
                "relative_changes": relative_changes(h.meta["test_metrics"], baseline, dirs)
                if baseline and label in finished else None,
                "delta_m_by_kind": delta_m_by_kind(h.meta["test_metrics"], baseline, data)
                if baseline and label in finished else None,
                "train_seconds": h.meta.get("train_seconds"),
                "status": h.status,
                **({"error": h.meta["error"]} if "error" in h.meta else {}),
                **({"warnings": h.meta["warnings"]} if "warnings" in h.meta else {}),
            }
            for label, h in histories.items()
        },
        "total_seconds": round(seconds, 2),
        "world_size": world,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=True))
    (out / "history.json").write_text(json.dumps({"runs": {k: h.to_dict() for k, h in histories.items()}}))
    figures = []
    for i, (label, h) in enumerate(histories.items()):
        fig = plots.signature_figure(h, title=f"{label} on {data.name}")
        plots.save(fig, out / f"curves_{label}.png")
        if i == 0:
            plots.save(fig, out / "curves.png")
        figures.append(f"curves_{label}.png")
    if len(histories) > 1:
        plots.save(plots.comparison_figure(histories), out / "comparison.png")
    lines = [
        f"# mtl_lab report: {data.name}",
        "",
        f"Command: `mtl-lab {' '.join(sys.argv[1:])}`" + (f" (launched with --nproc {world})" if world > 1 else "")
        if sys.argv[1:] else "",
        "",
        "## Data",
        f"- tasks: {', '.join(f'{t.name} ({t.kind}, {t.loss_name} loss)' for t in data.tasks)}",
        f"- rows: train {len(data.train)}, val {len(data.val)}, test {len(data.test)}; input {list(data.input_shape)}",
        "",
        "## Configuration",
        f"- architecture: {args.arch} {model_options}",
        f"- methods: {', '.join(f'{m} {o}' if o else m for m, o in options.items())}",
        "- training: " + ", ".join(f"{k}={v}" for k, v in train_options.items()),
        f"- processes: {world}" + (f" (data parallel, world size {world}: each rank trains on its slice of every "
                                   "batch; see mtl_lab.training.parallel)" if world > 1 else ""),
        *([f"- note: {distributed.dropout_note(model_options.get('dropout'), world)}"]
          if world > 1 and distributed.dropout_note(model_options.get("dropout"), world) else []),
        f"- wall time for all runs{' and baselines' if baseline else ''}: {seconds:.1f} s",
        "",
        "## Test metrics",
        metrics_table(runs, data, baseline),
        "",
        "Each cell shows the test metric and, in brackets, the task's relative change against its single-task "
        "baseline (same architecture, that task alone; positive is better). Δm % averages these changes "
        "(Maninis et al., CVPR 2019); with tasks of several kinds, Δm per kind averages them within "
        "classification, regression and box tasks, so that a task with a near-zero baseline error cannot "
        "hide the others." if baseline else
        "Single-task baselines were skipped (--no-baselines), so there is no Δm %.",
        *dominance_notes(histories, baseline, dirs),
        "",
        "## Curves",
        "Left: per-task loss curves (train, validation) and effective weights. Right: each task's share "
        "of the shared-trunk update and the pairwise gradient cosines.",
        "",
    ]
    lines += [f"### {label}\n![{label}]({name})\n" for label, name in zip(histories, figures)]
    if len(histories) > 1:
        lines += ["### All runs", "![comparison](comparison.png)", ""]
    problems = [f"- {label}: status {h.status}: {m}" for label, h in histories.items()
                for m in ([h.meta["error"]] if "error" in h.meta else []) + h.meta.get("warnings", [])]
    if problems:
        lines += ["## Errors and warnings", *problems, ""]
    notes = [(label, n) for label, h in histories.items() for n in h.notes]
    if notes:
        lines += ["## Method notes", *[f"- {label}: {json.dumps(n)}" for label, n in notes[:20]], ""]
    (out / "report.md").write_text("\n".join(lines))


def list_command() -> None:
    print("data sets:")
    for name, text in datasets.available():
        print(f"  {name:16} {text}")
    print("methods:")
    for name, text in available():
        print(f"  {name:16} {text}")
    print("architectures:")
    for name in ARCHITECTURES:
        print(f"  {name}")


def check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be in 1..65535, got {port}")


LAB_SETTINGS = Path(__file__).parent / "widgets" / "jupyterlab"


def jupyterlab_command(folder: Path, port: int, no_browser: bool = False) -> list[str]:
    """The JupyterLab command line of ``mtl-lab lab``: 127.0.0.1, token authentication left on, and no news
    toast or update check (in a lecture the toast covers the chart, and a classroom is often offline): the
    server fetches no news, and the settings in ``widgets/jupyterlab/overrides.json`` (``fetchNews`` off)
    keep JupyterLab from asking whether it may."""
    command = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={folder}", "--ip=127.0.0.1",
               f"--port={port}", "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               f"--LabApp.app_settings_dir={LAB_SETTINGS}"]
    if no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # Jupyter refuses root without this flag
        command.append("--allow-root")
    return command


def lab_command(args: argparse.Namespace) -> int:
    """JupyterLab on the notebook folder (:func:`jupyterlab_command`)."""
    folder = Path(args.notebooks)
    if not folder.is_dir():
        raise UsageError(f"notebook folder {str(folder)!r} does not exist")
    check_port(args.port)
    return subprocess.call(jupyterlab_command(folder, args.port, args.no_browser))


def app_command(args: argparse.Namespace) -> int:
    """Voila on the weight-tuning notebook: its widgets as a page, its code hidden; 127.0.0.1, with a token."""
    from mtl_lab.widgets.classroom import APP_NOTEBOOK, voila_command, voila_environment

    notebook = Path(args.notebook) if args.notebook else APP_NOTEBOOK
    if not notebook.is_file():
        raise UsageError(f"notebook {str(notebook)!r} does not exist")
    check_port(args.port)
    try:
        import voila  # noqa: F401
    except ImportError:
        raise UsageError("Voila is not installed: pip install 'mtl-lab[app]' (make install does it)") from None
    notebook = notebook.resolve()
    try:
        command = voila_command(notebook, args.port, args.cull_idle)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if args.no_browser:
        command.append("--no-browser")
    return subprocess.call(command, cwd=str(notebook.parent), env=voila_environment(dict(os.environ)))


def exercises_command(args: argparse.Namespace) -> None:
    """``exercises list``: name, function and topic of each exercise; ``exercises strip``: the student notebook."""
    from mtl_lab import exercises

    if args.exercises_command == "list":
        print("exercises (check one with mtl_lab.exercises.check_<name>(your_function)):")
        for exercise in exercises.EXERCISES.values():
            print(f"  {exercise.name:20} {exercise.function:55} {exercise.description}")
        return
    try:
        report = exercises.strip_notebook(args.solutions, args.out, clear_all_outputs=not args.keep_outputs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    print(f"wrote {args.out}: {report.summary()}")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run" and args.nproc != 1:
            return launch_checked(args, sys.argv[1:] if argv is None else argv)
        if args.command == "run":
            out = run_command(args)
            if out is not None:
                print(f"report: {out / 'report.md'}")
        elif args.command == "list":
            list_command()
        elif args.command == "study":
            study_command(args)
        elif args.command == "lab":
            return lab_command(args)
        elif args.command == "app":
            return app_command(args)
        elif args.command == "exercises":
            exercises_command(args)
    except (ValueError, KeyError, RunFailed, NonFiniteLossError) as exc:
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"mtl-lab: error: {one_line(str(message))}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 — the promise is one line and exit 2 for every error path
        print(f"mtl-lab: error: {type(exc).__name__}: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a study says how far it got (StudyInterrupted)
        if argv is None:  # the program itself (not a caller in Python): a further Ctrl-C cannot cut the exit short
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        print(f"mtl-lab: {one_line(str(exc)) or 'interrupted'}", file=sys.stderr)
        return 130
    return 0


def launch_checked(args: argparse.Namespace, argv: list[str]) -> int:
    """``mtl-lab run --nproc N``: every value checked once here, in the parent, before any rank starts.

    Then the ranks: at most as many as the rows of the smallest batch, and the one note on what data
    parallelism does not make exact (dropout), said once. Only then is torchrun launched.
    """
    distributed.check_nproc(args.nproc)
    run = prepare_run(args)
    for rows in input_mode(run.data).train_sizes(run.data):  # every task's stream in multi-input mode
        distributed.check_ranks(args.nproc, rows, run.train_options["batch_size"])
    dropout = run.model_options.get("dropout")
    if run.model_options.get("groups") != "auto":  # what the model's constructor checks (an "auto" grouping
        with torch.random.fork_rng(devices=[]):     # trains a probe: its model is built by the ranks)
            dropout = distributed.dropout_rate(build_model(args.arch, run.data, **run.model_options))
    note = distributed.dropout_note(dropout, args.nproc)
    if note is not None:
        print(f"mtl-lab: note: {note}", file=sys.stderr, flush=True)
    return distributed.launch(args.nproc, argv)


def one_line(text: str) -> str:
    return " ".join(text.split())


if __name__ == "__main__":
    sys.exit(main())
