"""Polygons from a class map (``python -m engine polygons``): time, polygons written and peak memory, by
map size and minimum mapping unit.

Each row is one fresh ``python -m engine polygons`` process; its wall time includes the engine's start and
its peak memory is the process's maximum resident set (from ``os.wait4``). Maps:

- the bundled sample's map (``make demo``: ``out/demo/prediction.tif``, 640² px of a Landsat scene);
- a 4096² px map: the sample's model applied to a 4096² synthetic scene (the one ``area_predict.py``
  writes), predicted once with the defaults and kept in ``bench/data/polygons/``;
- that map tiled 4 × 4 (16,384² px; ``--tiled 4 12`` adds 49,152² px), to see whether time and memory
  follow the raster's size.

Usage (from the repository root, after ``make demo``)::

    .venv/bin/python bench/polygons.py --out bench/results/polygons.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from area_predict import default_image
from area_predict import predict as predict_map
from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "bench", "data", "polygons")
MIN_PIXELS = (0, 16, 64)


def map_4096(model: str) -> str:
    path = os.path.join(DATA, "map_4096.tif")
    if not os.path.exists(path):
        os.makedirs(DATA, exist_ok=True)
        seconds = predict_map(model, default_image(), path, "on")
        print(f"predicted the 4096² map in {seconds:.0f} s", flush=True)
    return path


def tiled(src: str, times: int) -> str:
    """``src`` repeated ``times`` × ``times`` as one GeoTIFF (class names kept)."""
    import rasterio
    from rasterio.windows import Window

    path = os.path.join(DATA, f"map_tiled_{times}x{times}.tif")
    if os.path.exists(path):
        return path
    with rasterio.open(src) as ds:
        w, h = ds.width, ds.height
        profile = {**ds.profile, "width": w * times, "height": h * times, "BIGTIFF": "IF_SAFER",
                   "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
        cmap = ds.colormap(1)
        with rasterio.open(path + ".partial.tif", "w", **profile) as out:
            out.write_colormap(1, cmap)
            for i in range(times):
                for j in range(times):
                    for _, window in ds.block_windows(1):
                        data = ds.read(1, window=window)
                        out.write(data, 1, window=Window(window.col_off + j * w, window.row_off + i * h,
                                                         window.width, window.height))
    os.replace(path + ".partial.tif", path)
    shutil.copy(src + ".aux.xml", path + ".aux.xml")
    return path


PREPARE = ("import sys; sys.path.insert(0, {bench!r}); import polygons as p\n"
           "big = p.map_4096({model!r})\n"
           "for n in {tiled!r}: p.tiled(big, n)\n")


def polygonize(prediction: str, out: str, min_pixels: int) -> dict:
    env = {**os.environ, "PYTHONPATH": REPO}
    cmd = [sys.executable, "-m", "engine", "polygons", "--prediction", prediction, "--out", out,
           "--min-pixels", str(min_pixels), "--progress", "jsonl"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{stdout}")
    import json

    done = json.loads(stdout.strip().splitlines()[-1])
    return {"seconds": seconds, "features": done["features"], "peak_mib": usage.ru_maxrss / 1024,
            "gpkg_mib": os.path.getsize(out) / 2 ** 20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=os.path.join(REPO, "out", "demo", "model.semiseg"))
    ap.add_argument("--tiled", type=int, nargs="*", default=[4],
                    help="also the 4096² map tiled N × N, for each N given (default 4: 16,384²)")
    ap.add_argument("--out", default=os.path.join("bench", "results", "polygons.md"))
    args = ap.parse_args()
    import rasterio

    big = os.path.join(DATA, "map_4096.tif")
    # the maps are made by a child process: a measured child's ru_maxrss starts from what its parent held
    # when it forked, and writing a map fills GDAL's default cache (5 % of the RAM)
    subprocess.run([sys.executable, "-c", PREPARE.format(bench=os.path.dirname(os.path.abspath(__file__)),
                                                         model=args.model, tiled=args.tiled)], check=True)
    maps = {"sample map (Landsat)": os.path.join(REPO, "out", "demo", "prediction.tif"),
            "synthetic scene map": big,
            **{f"synthetic map tiled {n} × {n}": tiled(big, n) for n in args.tiled}}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, path in maps.items():
            with rasterio.open(path) as ds:
                size = f"{ds.width:,} × {ds.height:,}"
            for n in MIN_PIXELS:
                rec = {"map": label, "size": size, "min_pixels": n,
                       **polygonize(path, os.path.join(tmp, f"{len(rows)}.gpkg"), n)}
                rows.append(rec)
                print(rec, flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    lines = ["# Polygons from a class map", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}; each row one `python -m engine "
             "polygons` process: wall seconds including the engine's start, peak resident memory of the "
             "process.", "",
             "| map | pixels | min. patch px | polygons | seconds | peak MiB | GeoPackage MiB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['map']} | {r['size']} | {r['min_pixels']} | {r['features']:,} | "
                     f"{r['seconds']:.1f} | {r['peak_mib']:.0f} | {r['gpkg_mib']:.1f} |")
    lines += ["", f"Command: `{cmd}`"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "rows": rows})


if __name__ == "__main__":
    main()
