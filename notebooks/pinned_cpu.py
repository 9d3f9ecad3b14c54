"""Execute notebooks and store their outputs, on one named CPU code path.

PyTorch's CPU kernels, MKL and oneDNN each take the widest vector instructions the processor has
(AVX-512 on one machine, AVX2 on the next), and the thread count changes how sums are split, so the
last bits of a result differ from one machine to the next; a long training run amplifies them into
the third printed digit. The notebooks are written so that this does not matter: what they print and
nbval compares is exact or rounded far above that noise, trained results sit in cells marked
``# NBVAL_IGNORE_OUTPUT`` and the cell after each one asserts what they teach with a tolerance.
``check_any_machine.py`` beside this file verifies it on several code paths of one machine.

The test suite therefore pins nothing (``make test`` runs on the machine's own code path). Outputs are
still stored from one named path — ATen's AVX2 kernels, MKL's processor-independent mode
(``MKL_CBWR=COMPATIBLE``) and oneDNN limited to AVX2 — so that two people storing them get the same
text. Store, then check::

    .venv/bin/python notebooks/pinned_cpu.py notebooks/02_static_weights_and_adam.ipynb   # or: make notebooks
    .venv/bin/python notebooks/check_any_machine.py notebooks/02_static_weights_and_adam.ipynb

On other processors (ARM) nothing is pinned. A person running a notebook in JupyterLab needs none of this.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

PINNED_CPU = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE", "DNNL_MAX_CPU_ISA": "AVX2"}


def pinned_environment(environment: dict[str, str]) -> dict[str, str]:
    """``environment`` with the pins added (overriding), on x86-64 only."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return dict(environment)
    return {**environment, **PINNED_CPU}


def execute(path: Path) -> int:
    """Run every cell of one notebook in a fresh kernel with the pins and store its outputs in place."""
    command = [sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
               "--ExecutePreprocessor.store_widget_state=False", path.name]  # widget views keep their text form
    return subprocess.call(command, cwd=path.parent, env=pinned_environment(dict(os.environ)))


def main(paths: list[str]) -> int:
    if not paths:
        print("usage: python notebooks/pinned_cpu.py NOTEBOOK.ipynb [...]", file=sys.stderr)
        return 2
    status = 0
    for name in paths:
        path = Path(name).resolve()
        if path.suffix != ".ipynb" or not path.is_file():
            print(f"not a notebook file: {name!r}", file=sys.stderr)
            return 2
        print(f"executing {name}", flush=True)
        status |= execute(path)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
