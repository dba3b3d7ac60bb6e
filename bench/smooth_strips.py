"""Edge-aware smoothing worked through a few rows at a time, against the whole window at once.

Each smoothing round adds, for every pixel, its 121 neighbours' class probabilities weighted by how
alike they are; done over a whole 640² window at once, each of the 121 passes streams the window's
probabilities through memory again. Working through strips of a few rows whose data stays in the CPU's
cache (``engine.smooth.strips``) does the same sums in the same order. This script runs the same
``predict`` commands from two checkouts (``--before``: a checkout of the commit before the change, e.g.
``git worktree add /tmp/before <rev>``; the current one after), alternating, one fresh engine process
each, and compares wall seconds, peak resident memory and the maps (they must be the same to the bit):

- the 4096² px, 3-band synthetic scene of ``area_predict.py`` with the ``make demo`` model (5 classes,
  one view at this size), smoothing on, on one torch thread and on two (and smoothing off, which the
  change does not touch: a control, and the network's share of the time);
- Indian Pines (145², 200 bands, 16 classes, 8 views) with the supervised k = 5 seed 0 model of
  ``inpaint_bench.py``, smoothing on, its labels held, one thread.

Usage (from the repository root, after ``make demo``)::

    .venv/bin/python bench/smooth_strips.py --before /tmp/before --repeats 3 \
        --out bench/results/smooth_strips.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import tempfile

from area_predict import default_image
from gdal_cache import measure, same_raster
from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IP = os.path.join(REPO, "bench", "data", "indian_pines")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="a checkout of the commit before the change")
    ap.add_argument("--model", default=os.path.join(REPO, "out", "demo", "model.semiseg"))
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=os.path.join("bench", "results", "smooth_strips.md"))
    args = ap.parse_args()
    image = default_image()
    checkouts = {"before": os.path.abspath(args.before), "after": REPO}
    cases = [(f"predict 4096², 5 classes, smoothing {s}, {t} thread{'s' * (t > 1)}", t,
              ["predict", "--model", args.model, "--image", image, "--device", "cpu", "--smooth", s])
             for t in (1, 2) for s in ("off", "on")]
    ip_model = os.path.join(IP, "runs", "ib_supervised_fast_k5_s0", "model.semiseg")
    if os.path.exists(ip_model):
        cases.append(("predict Indian Pines 145², 16 classes, 8 views, smoothing on, labels held, "
                      "1 thread", 1,
                      ["predict", "--model", ip_model, "--image", os.path.join(IP, "image.tif"), "--device",
                       "cpu", "--labels", os.path.join(IP, "labels_k5_s0.tif")]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for case, threads, cmd in cases:
            rec = {"case": case, "threads": threads}
            for _ in range(args.repeats):
                for which, checkout in checkouts.items():
                    out = os.path.join(tmp, f"{which}.tif")
                    run = measure(checkout, [*cmd, "--out", out], threads)
                    rec.setdefault(which, []).append(run)
                    print(case, which, run, flush=True)
                rec.setdefault("same_map", []).append(same_raster(os.path.join(tmp, "before.tif"),
                                                                  os.path.join(tmp, "after.tif")))
            rows.append(rec)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    cmd = cmd.replace(os.path.abspath(args.before), "BEFORE")
    lines = ["# Edge-aware smoothing in strips of rows (after) against whole windows (before)", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}; each cell the median of "
             f"{args.repeats} fresh `python -m engine predict` process(es), before and after alternating, "
             "wall seconds including the engine's start; BEFORE is a checkout of the commit before the "
             "change.", "",
             "| command | before s | after s | after / before | before peak MiB | after peak MiB "
             "| same map |",
             "|---|---:|---:|---:|---:|---:|---|"]

    def median(runs: list[dict], key: str) -> float:
        values = sorted(r[key] for r in runs)
        return values[len(values) // 2]

    for r in rows:
        b, a = median(r["before"], "seconds"), median(r["after"], "seconds")
        same = "yes" if all(r["same_map"]) else "NO"
        lines.append(f"| {r['case']} | {b:.1f} | {a:.1f} | {a / b:.2f} | "
                     f"{median(r['before'], 'peak_mib'):.0f} | {median(r['after'], 'peak_mib'):.0f} | "
                     f"{same} |")
    lines += ["", f"Command: `{cmd}`"]
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "rows": rows})


if __name__ == "__main__":
    main()
