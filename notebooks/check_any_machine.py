"""Run the notebooks under strict nbval on several CPU code paths of this machine: stored outputs must not
depend on one processor's rounding.

Why: PyTorch's kernels, MKL and oneDNN take the widest vector instructions a processor has, and the
thread count changes how sums are split, so the last bits of a result differ from one machine to the
next. A stored output that only one code path reproduces fails the suite on another processor. This
command is the stand-in for "another processor" that one runs before storing outputs::

    .venv/bin/python notebooks/check_any_machine.py                      # every notebook, every path
    .venv/bin/python notebooks/check_any_machine.py --paths aten-default notebooks/08_cls_reg_detection.ipynb

The code paths (``PATHS``):

* ``native`` — no pins: the widest instructions this processor has (AVX-512 on many machines); what
  ``make test`` runs;
* ``pinned`` — the pins of ``pinned_cpu.py``, the code path the stored outputs are computed with;
* ``aten-default`` — PyTorch's portable kernels without vector instructions (``ATEN_CPU_CAPABILITY=default``);
* ``two-threads`` — no pins, and two threads where a notebook asks for one (an IPython start-up file
  in a temporary profile directory makes ``torch.set_num_threads`` take 2; nothing else is changed).

Each path runs ``pytest --nbval`` in a fresh process whose environment (inherited by every kernel) is set
here. The exit status is 0 only if every notebook passes on every path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from pinned_cpu import PINNED_CPU

HERE = Path(__file__).resolve().parent
PATHS = ("native", "pinned", "aten-default", "two-threads")
THREADS_STARTUP = """\
import torch

_set_num_threads = torch.set_num_threads
torch.set_num_threads = lambda count: _set_num_threads({threads})
"""


def environment(path: str, profile_dir: Path) -> dict[str, str]:
    """The environment of the pytest process (and so of every kernel it starts) for one code path."""
    if path not in PATHS:
        raise ValueError(f"unknown code path {path!r}; the paths are {', '.join(PATHS)}")
    base = {key: value for key, value in os.environ.items() if key not in PINNED_CPU}
    if path == "pinned":
        return {**base, **PINNED_CPU}
    if path == "aten-default":
        return {**base, "ATEN_CPU_CAPABILITY": "default"}
    if path == "two-threads":
        startup = profile_dir / "profile_default" / "startup"
        startup.mkdir(parents=True, exist_ok=True)
        (startup / "00-threads.py").write_text(THREADS_STARTUP.format(threads=2))
        return {**base, "IPYTHONDIR": str(profile_dir)}
    return base


def notebooks(names: list[str]) -> list[str]:
    if not names:
        found = sorted(HERE.glob("*.ipynb")) + sorted(HERE.glob("coursework/*.ipynb"))
        return [str(path) for path in found]
    for name in names:
        if not name.endswith(".ipynb") or not Path(name).is_file():
            raise SystemExit(f"not a notebook file: {name!r}")
    return names


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", default=",".join(PATHS),
                        help=f"comma-separated code paths among {', '.join(PATHS)} (default: all)")
    parser.add_argument("notebooks", nargs="*", help="notebook files (default: every notebook)")
    args = parser.parse_args(argv)
    paths = [path.strip() for path in args.paths.split(",") if path.strip()]
    unknown = [path for path in paths if path not in PATHS]
    if unknown or not paths:
        parser.error(f"--paths {args.paths!r}: unknown {unknown}; choose among {', '.join(PATHS)}")
    files = notebooks(args.notebooks)
    verdicts = {}
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="mtl-lab-ipython-") as profile_dir:
            print(f"== code path {path}: {len(files)} notebook(s)", flush=True)
            command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval",
                       "--nbval-current-env", *files]
            verdicts[path] = subprocess.call(command, env=environment(path, Path(profile_dir)))
    print("\n".join(f"{path:13s} {'passed' if status == 0 else f'FAILED (exit {status})'}"
                    for path, status in verdicts.items()))
    return 0 if all(status == 0 for status in verdicts.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
