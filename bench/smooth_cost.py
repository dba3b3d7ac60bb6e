"""What edge-aware smoothing costs per prediction window: the whole window vs only its core.

A sliding window of ``core`` + 2 ``halo`` px is smoothed, and only its ``core``² px are kept. Smoothing
every round over the whole window (the engine before the ``core`` argument) is compared with rounds that
shrink towards the core (``EdgeAwareSmoothing.__call__(..., core=)``, what ``predict`` does now); both
give the same core values (checked here on every repetition, and in tests/engine/test_engine_smooth.py).

The window is synthetic (random bands, random class probabilities): smoothing's cost depends on the
window size, the class count and the feature count (bands, at most 8 after projection), not on the
content. Timings are interleaved (whole, core, whole, core, ...) in one process on one torch thread,
so load from other work hits both alike; the ratio is the figure to read.

Usage (from the repository root)::

    SEMISEG_THREADS=1 .venv/bin/python bench/smooth_cost.py [--classes 5 16] [--reps 5]
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

from indian_pines import machine  # noqa: E402

from engine.predict import pick_halo  # noqa: E402
from engine.smooth import EdgeAwareSmoothing  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--core", type=int, default=512, help="core side, px (predict's default)")
    ap.add_argument("--bands", type=int, default=4)
    ap.add_argument("--classes", type=int, nargs="+", default=[5, 16])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--out", default=os.path.join("bench", "results", "smooth_cost.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("SEMISEG_THREADS", "1")))

    smooth = EdgeAwareSmoothing(scale=1.0)
    halo = pick_halo(16, smooth)
    side = args.core + 2 * halo
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.normal(0, 1, (args.bands, side, side)).astype(np.float32))
    valid = torch.ones(side, side, dtype=torch.bool)
    core = (halo, halo, args.core, args.core)
    rows = []
    for k in args.classes:
        probs = torch.softmax(torch.from_numpy(rng.normal(0, 1, (k, side, side)).astype(np.float32)), 0)
        times = {"whole": [], "core": []}
        for _ in range(args.reps):
            t0 = time.perf_counter()
            whole = smooth(probs, x, valid)[:, halo:halo + args.core, halo:halo + args.core]
            times["whole"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            part = smooth(probs, x, valid, core=core)
            times["core"].append(time.perf_counter() - t0)
            gap = float((whole - part).abs().max())
            assert gap < 1e-5, gap
        w, c = np.median(times["whole"]), np.median(times["core"])
        rows.append(f"| {k} | {side}² → {args.core}² | {w:.2f} | {c:.2f} | {c / w:.2f} | {gap:.1e} |")
        print(rows[-1], flush=True)

    command = " ".join(["SEMISEG_THREADS=1 python bench/smooth_cost.py", *(argv or sys.argv[1:])])
    lines = ["# Edge-aware smoothing: cost per prediction window, whole window vs its core", "",
             f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {machine()}, one torch thread, "
             f"{args.bands} bands, radius "
             f"{smooth.radius} px × {smooth.iterations} rounds, halo {halo} px; median of {args.reps} "
             "interleaved repetitions (seconds; the CPU may be shared with other work, so read the ratio).",
             "", "| classes | window → core | whole window s | core only s | ratio | max difference |",
             "|---:|---|---:|---:|---:|---:|", *rows, "",
             f"Command: `{command}`", ""]
    with open(args.out, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
