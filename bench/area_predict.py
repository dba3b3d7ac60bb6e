"""Segmenting the visible area (``--area``) against the whole raster: time to a map, and equality.

What an analyst waits for after pressing Train and segment with *Segment: Visible map area* is the
prediction of the part of the image the map view shows, not of the whole raster. This script times
``python -m engine predict`` (a fresh engine process each time, one torch thread, as the plugin starts it)
on a large raster for the whole raster and for areas the size of a map view (1280 × 800 px: a laptop
screen's map at one image pixel per screen pixel; 2560 × 1600: the same view zoomed out twice), with the
map's smoothing on (the default) and off, and checks that every area's map equals the whole raster's map
there, pixel for pixel (``--no-whole``: areas only, for a raster whose whole prediction would take
hours).

The model is the bundled sample's (``make demo``: ``out/demo/model.semiseg``, 3 bands); the raster is a
4096 × 4096 px 3-band synthetic scene written on first use (``engine.synthetic``; for timing only, so the
map's quality does not matter), or ``--image``.

Usage (from the repository root, after ``make demo``)::

    .venv/bin/python bench/area_predict.py --out bench/results/area_predict.md
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
from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "bench", "data", "area_predict")
sys.path.insert(0, REPO)

VIEWS = {"1280 × 800 (a map view at 1:1)": (1280, 800), "2560 × 1600 (zoomed out 2×)": (2560, 1600)}


def default_image() -> str:
    path = os.path.join(DATA, "scene_4096.tif")
    if not os.path.exists(path):
        from engine.synthetic import write_scene

        os.makedirs(DATA, exist_ok=True)
        made = write_scene(DATA, 4096, 4096, bands=3, classes=5, seed=0, dtype="uint8")
        os.replace(made["image"], path)
        for key in ("truth", "labels"):
            for leftover in (made[key], made[key] + ".aux.xml"):
                if os.path.exists(leftover):
                    os.remove(leftover)
    return path


def centred_bounds(image: str, width: int, height: int) -> tuple[tuple, tuple[int, int, int, int]]:
    """Bounds (image CRS) of a width × height px area at the image's centre, and its pixel window."""
    import rasterio

    with rasterio.open(image) as ds:
        row, col = (ds.height - height) // 2, (ds.width - width) // 2
        xs, ys = zip(*(ds.transform * (c, r) for c in (col, col + width) for r in (row, row + height)),
                     strict=True)
    return (min(xs), min(ys), max(xs), max(ys)), (row, col, height, width)


def predict(model: str, image: str, out: str, smooth: str, area=None) -> float:
    env = {**os.environ, "PYTHONPATH": REPO, "SEMISEG_THREADS": "1"}
    cmd = [sys.executable, "-m", "engine", "predict", "--model", model, "--image", image, "--out", out,
           "--device", "cpu", "--smooth", smooth, "--progress", "none"]
    if area is not None:
        cmd += ["--area", *(repr(v) for v in area)]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=env, check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "out", "demo", "model.semiseg"))
    ap.add_argument("--image", default=None, help="raster to segment (default: a 4096² synthetic scene)")
    ap.add_argument("--no-whole", action="store_true",
                    help="time the areas only (a raster whose whole prediction would take hours); their "
                         "maps are then not compared")
    ap.add_argument("--out", default=os.path.join("bench", "results", "area_predict.md"))
    args = ap.parse_args()
    import rasterio

    image = args.image or default_image()
    with rasterio.open(image) as ds:
        size = (ds.width, ds.height)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for smooth in ("on", "off"):
            whole_map = None
            if not args.no_whole:
                whole = os.path.join(tmp, f"whole_{smooth}.tif")
                seconds = predict(args.model, image, whole, smooth)
                rows.append({"case": f"whole raster, {size[0]} × {size[1]}", "smooth": smooth,
                             "seconds": seconds, "megapixels": size[0] * size[1] / 1e6,
                             "pixels_differing": None})
                print(rows[-1], flush=True)
                with rasterio.open(whole) as ds:
                    whole_map = ds.read(1)
            for label, (w, h) in VIEWS.items():
                bounds, (r, c, hh, ww) = centred_bounds(image, w, h)
                out = os.path.join(tmp, f"area_{w}_{smooth}.tif")
                seconds = predict(args.model, image, out, smooth, bounds)
                with rasterio.open(out) as ds:
                    part = ds.read(1)
                assert part.shape == (hh, ww), part.shape
                differ = (None if whole_map is None
                          else int(np.count_nonzero(part != whole_map[r:r + hh, c:c + ww])))
                rows.append({"case": f"area {label}", "smooth": smooth, "seconds": seconds,
                             "megapixels": w * h / 1e6, "pixels_differing": differ})
                print(rows[-1], flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    lines = ["# Segmenting the visible area against the whole raster", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}; each row one `python -m engine "
             "predict` process (one torch thread, `--tta auto`: one view at this size), wall seconds "
             f"including the engine's start; model `{os.path.relpath(args.model, REPO)}`, image "
             f"`{os.path.relpath(image, REPO)}`.", "",
             "| case | smoothing | megapixels | seconds | of the whole raster's time | pixels differing from "
             "the whole map |", "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        whole_s = next((x["seconds"] for x in rows
                        if x["smooth"] == r["smooth"] and x["case"].startswith("whole")), None)
        share = "not run" if whole_s is None else f"{r['seconds'] / whole_s:.0%}"
        differ = "–" if r["pixels_differing"] is None else str(r["pixels_differing"])
        lines.append(f"| {r['case']} | {r['smooth']} | {r['megapixels']:.2f} | {r['seconds']:.1f} | "
                     f"{share} | {differ} |")
    lines += ["", f"Command: `{cmd}`"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "rows": rows})


if __name__ == "__main__":
    main()
