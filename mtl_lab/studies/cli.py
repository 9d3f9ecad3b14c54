"""``mtl-lab study FILE --out DIR``: run a study file (TOML or JSON) and write its report folder.

``mtl-lab study --example`` prints an example study. ``--engine processes`` trains the runs in a local
process pool, ``--engine ray`` on Ray (``--address`` joins a running cluster; without it a local one is
started with ``--workers`` CPUs). Finished runs are cached in ``DIR/runs``: running the same study
again trains only what is missing.
"""

from __future__ import annotations

import argparse
import sys

from mtl_lab.studies.engines import ENGINES


def add_study_parser(sub) -> None:
    study = sub.add_parser("study", help="a grid of runs (methods × architectures × seeds) → report with CIs")
    study.add_argument("file", nargs="?", help="the study file (.toml or .json)")
    study.add_argument("--out", help="report folder (created; runs/ in it caches finished runs)")
    study.add_argument("--example", action="store_true", help="print an example study file and exit")
    study.add_argument("--engine", default="sequential", choices=ENGINES, help="where the runs train")
    study.add_argument("--workers", type=int, default=None, help="parallel runs (processes, local ray)")
    study.add_argument("--threads", type=int, default=None, help="torch threads per run")
    study.add_argument("--address", default=None, help="ray: address of an existing cluster to join")
    study.add_argument("--quiet", action="store_true", help="no progress bar")


def study_command(args: argparse.Namespace) -> None:
    from mtl_lab.studies.report import write_report
    from mtl_lab.studies.spec import EXAMPLE, load_study
    from mtl_lab.studies.study import run_study

    if args.example:
        sys.stdout.write(EXAMPLE)
        return
    if args.file is None or args.out is None:
        raise ValueError("mtl-lab study needs a study FILE and --out DIR (or --example to print a study file)")
    study = load_study(args.file)
    result = run_study(study, out=args.out, engine=args.engine, workers=args.workers, threads=args.threads,
                       address=args.address, progress=not args.quiet)
    report = write_report(result, args.out)
    failed = sum(r["status"] != "completed" for r in result.runs)
    print(f"report: {report} ({len(result.runs)} runs, {result.cached} cached, {failed} failed)")
