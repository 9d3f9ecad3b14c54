"""The CPU code paths the stored notebook outputs are computed with, and a command that re-executes notebooks.

Why: PyTorch's CPU kernels, MKL and oneDNN each take the widest vector instructions the processor has
(AVX-512 on one machine, AVX2 on the next), so sums round differently in their last bits. Most numbers
the notebooks print do not notice, but a training run that is sensitive on purpose (SGD at a large
learning rate with a ×100 loss weight, in 02) ends a few thousandths away on another processor, and
strict nbval fails there. Pinned to the paths below, the stored outputs reproduce on any x86-64
processor with AVX2: ATen's AVX2 kernels, MKL's processor-independent mode (``MKL_CBWR=COMPATIBLE``:
the same results on Intel and AMD) and oneDNN limited to AVX2.

``notebooks/conftest.py`` applies them to every nbval run (each kernel starts with the environment of
the pytest process); this module also executes notebooks with them to store new outputs::

    .venv/bin/python notebooks/pinned_cpu.py notebooks/02_static_weights_and_adam.ipynb   # or: make notebooks

On other processors (ARM) nothing is pinned: there the stored outputs may differ in their last digits.
A person running a notebook in JupyterLab needs none of this; the numbers are then those of their machine.
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
