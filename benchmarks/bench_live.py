"""What the live view costs: training throughput headless against the same run in the lab panel.

Two ways to train one configuration (digits, 4 tasks, hard sharing, static weights, 1 torch thread):

* ``headless`` — ``make_trainer(config).fit()``: no callback, no drawing;
* ``live``     — ``Lab(config, pace=None).train()``: the panel's own path at full speed, ``Trainer.start()``
                 in a background thread recording every step, the callback updating the status line,
                 and the chart feed's thread sending new rows ≤ 10×/s (to no browser: the kernel's side
                 of the cost; ``bench_browser.py`` measures it with a real browser attached).

Throughput is steps / training-loop seconds (``History.meta["train_seconds"]``, which excludes the final
test evaluation but includes the per-epoch evaluations, the same in both). Runs alternate
(headless, live, headless, live …) so a busy machine slows both alike; the medians are compared.
Reported: steps/s of each, the live/headless ratio (the cost = 1 − ratio), frames drawn, seconds spent
sent to the chart (messages, bytes). Run: ``python benchmarks/bench_live.py [--quick] [--epochs N] [--repeats R]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mtl_lab.widgets import Lab, LabConfig  # noqa: E402
from mtl_lab.widgets.config import make_trainer  # noqa: E402


def config(epochs: int) -> LabConfig:
    return LabConfig(data="digits", tasks=["digit", "parity", "ge5", "recon"], model_options={"hidden": [256, 256]},
                     method="static", weights={"recon": 5.0}, lr=2e-3, epochs=epochs, baselines=False,
                     device="cpu", diagnostics_every=5)


def headless(cfg: LabConfig) -> dict:
    history = make_trainer(cfg).fit()
    return {"steps_per_s": history.meta["steps"] / history.meta["train_seconds"]}


def live(cfg: LabConfig) -> dict:
    lab = Lab(cfg, name="bench", pace=None)
    assert lab.train(), lab.status_text()
    lab.handle.join()
    while lab.running:
        time.sleep(0.01)
    history = lab.trainer.history
    out = {"steps_per_s": history.meta["steps"] / history.meta["train_seconds"], "messages": lab.feed.messages,
           "bytes": lab.feed.bytes_sent, "seconds": history.meta["train_seconds"]}
    lab.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (a smoke test, noisy)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    epochs = args.epochs or (5 if args.quick else 200)
    repeats = args.repeats or (1 if args.quick else 3)
    cfg = config(epochs)
    headless(config(1))  # warm-up: data loading, first optimizer import
    rows = {"headless": [], "live": []}
    for _ in range(repeats):
        rows["headless"].append(headless(cfg))
        rows["live"].append(live(cfg))
    h = statistics.median(r["steps_per_s"] for r in rows["headless"])
    v = statistics.median(r["steps_per_s"] for r in rows["live"])
    messages = statistics.median(r["messages"] for r in rows["live"])
    sent = statistics.median(r["bytes"] for r in rows["live"])
    seconds = statistics.median(r["seconds"] for r in rows["live"])
    print(f"config: digits, 4 tasks, hard 256-256, static, {epochs} epochs, batch 64, 1 torch thread; "
          f"{repeats} interleaved repeat(s)")
    print("| run | steps/s (median) |")
    print("|---|---|")
    print(f"| headless fit() | {h:.1f} |")
    print(f"| Lab.train() with the live chart feed | {v:.1f} |")
    print(f"\nlive / headless = {v / h:.3f}  (cost of the live view: {100 * (1 - v / h):.1f} %)")
    print(f"live run: {seconds:.1f} s, {messages:.0f} chart messages, {sent / 1024:.0f} KiB "
          f"({sent / max(messages, 1):.0f} B per message)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
