"""GDAL's block cache in the engine's commands, before and after the fix of its unit.

Every engine command bounds GDAL's block cache (``engine.raster.GDAL_CACHE_MB``, 64 MiB). Until the
fix, the value went to ``rasterio.Env(GDAL_CACHEMAX=64)``, which rasterio passes to GDALSetCacheMax as
bytes: GDAL had a 64-byte cache, and every tile of a tiled, compressed raster was decoded again for
each window that touched it. This script runs the same commands from two checkouts (``--before``: a
checkout of the commit before the fix, e.g. ``git worktree add /tmp/before <rev>``; the current one
after), one fresh engine process each on one torch thread, alternating before/after so that a noisy
neighbour hits both alike, and compares wall seconds, peak resident memory and the maps they write (the
cache must not change a pixel):

- ``predict`` of the 4096² px, 3-band, 256-px-tiled, deflated synthetic scene of ``area_predict.py``
  with the ``make demo`` model (one view at this size), smoothing off and on;
- ``predict --area`` of a 1280 × 800 px view at its centre (smoothing on);
- ``polygons --min-pixels 16`` of the map that ``polygons.py`` keeps.

Usage (from the repository root, after ``make demo`` and ``python bench/polygons.py``)::

    .venv/bin/python bench/gdal_cache.py --before /tmp/before --out bench/results/gdal_cache.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
import tempfile
import time

import numpy as np
from area_predict import VIEWS, centred_bounds, default_image
from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure(checkout: str, args: list[str], threads: int = 1) -> dict:
    """One ``python -m engine ARGS`` of ``checkout`` on ``threads`` torch threads: wall seconds and the
    child's peak resident memory."""
    env = {**os.environ, "PYTHONPATH": checkout, "SEMISEG_THREADS": str(threads)}
    env.pop("GDAL_CACHEMAX", None)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args, "--progress", "none"], cwd=checkout,
                            env=env, stderr=subprocess.PIPE, text=True)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{args} in {checkout} failed:\n{stderr}")
    return {"seconds": time.perf_counter() - t0, "peak_mib": usage.ru_maxrss / 1024}


def same_raster(a: str, b: str) -> bool:
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        return np.array_equal(x.read(), y.read())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--before", required=True, help="a checkout of the commit before the fix")
    ap.add_argument("--model", default=os.path.join(REPO, "out", "demo", "model.semiseg"))
    ap.add_argument("--map", default=os.path.join(REPO, "bench", "data", "polygons", "map_4096.tif"))
    ap.add_argument("--out", default=os.path.join("bench", "results", "gdal_cache.md"))
    args = ap.parse_args()
    image = default_image()
    (w, h), label = next((v, k) for k, v in VIEWS.items())
    bounds, _ = centred_bounds(image, w, h)
    checkouts = {"before": os.path.abspath(args.before), "after": REPO}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [(f"predict 4096², smoothing {s}", "prediction.tif",
                  ["predict", "--model", args.model, "--image", image, "--device", "cpu", "--smooth", s])
                 for s in ("off", "on")]
        cases.append((f"predict {label}, smoothing on", "prediction.tif",
                      ["predict", "--model", args.model, "--image", image, "--device", "cpu",
                       "--area", *(repr(v) for v in bounds)]))
        cases.append(("polygons of the 4096² map, min. patch 16 px", "polygons.gpkg",
                      ["polygons", "--prediction", args.map, "--min-pixels", "16"]))
        for case, name, cmd in cases:
            rec = {"case": case}
            for which, checkout in checkouts.items():
                out = os.path.join(tmp, f"{which}-{name}")
                rec[which] = measure(checkout, [*cmd, "--out", out])
                print(case, which, rec[which], flush=True)
            if name.endswith(".tif"):
                rec["same_map"] = same_raster(os.path.join(tmp, f"before-{name}"),
                                              os.path.join(tmp, f"after-{name}"))
            for which in checkouts:
                os.remove(os.path.join(tmp, f"{which}-{name}"))
            rows.append(rec)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    cmd = cmd.replace(os.path.abspath(args.before), "BEFORE")
    lines = ["# GDAL's block cache: 64 bytes (before) against 64 MiB (after)", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}; each cell one fresh `python -m engine` "
             "process on one torch thread, wall seconds including the engine's start; BEFORE is a checkout "
             "of the commit before the fix.", "",
             "| command | before s | after s | after / before | before peak MiB | after peak MiB "
             "| same map |",
             "|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        b, a = r["before"], r["after"]
        same = {True: "yes", False: "NO"}.get(r.get("same_map"), "–")
        lines.append(f"| {r['case']} | {b['seconds']:.1f} | {a['seconds']:.1f} | "
                     f"{a['seconds'] / b['seconds']:.2f} | {b['peak_mib']:.0f} | {a['peak_mib']:.0f} | "
                     f"{same} |")
    lines += ["", f"Command: `{cmd}`"]
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "rows": rows})


if __name__ == "__main__":
    main()
