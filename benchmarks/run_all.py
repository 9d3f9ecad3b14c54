"""Run every benchmark in this folder, one after the other, and print their tables (``make bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ["bench_core.py", "bench_methods.py", "bench_live.py", "bench_guard.py", "bench_study.py", "bench_toy.py",
              "bench_browser.py"]


def main() -> int:
    extra = sys.argv[1:]
    status = 0
    for name in BENCHMARKS:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n## {name}\n", flush=True)
        status |= subprocess.call([sys.executable, str(path), *extra])
    return status


if __name__ == "__main__":
    sys.exit(main())
