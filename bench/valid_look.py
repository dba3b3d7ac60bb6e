"""What the whole-raster look for valid pixels costs (engine.raster.valid_places).

When the randomly placed windows for the band statistics find few valid pixels (a mosaic whose valid
pixels are a thin strip), the engine looks at the whole raster for where they are: validity read
decimated to at most ``LOOK_SIDE`` px per side, and only when that finds nothing, every pixel. This
script writes ``--side``² uint8 GeoTIFFs, nodata 0, whose valid pixels are a 300 px diagonal strip, in
the layouts such files come in (tiled and sparse, tiled and deflated, striped, tiled with overviews), and
an all-nodata one, and times on each: the decimated look, the look at every pixel, and
``compute_band_stats`` (which runs the look when its windows miss the strip). One process, one thread.

Usage (from the repository root; the rasters go to bench/data/valid_look, a few GB of disk at most)::

    .venv/bin/python bench/valid_look.py --side 50000 --out bench/results/valid_look.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from indian_pines import machine  # noqa: E402
from smoothing import write_report  # noqa: E402

STRIP = 300  # px across the diagonal strip of valid pixels
LAYOUTS = {
    "tiled, sparse (unwritten tiles are nodata)": {"tiled": True, "SPARSE_OK": "TRUE"},
    "tiled, deflate": {"tiled": True, "compress": "deflate"},
    "striped, deflate": {"tiled": False, "compress": "deflate"},
    "tiled, deflate, with overviews": {"tiled": True, "compress": "deflate", "overviews": True},
    "all nodata, tiled, deflate": {"tiled": True, "compress": "deflate", "empty": True},
}


def write_strip(path: str, side: int, options: dict) -> None:
    """A side² uint8 raster, nodata 0, valid (values 50..149) on a STRIP px band along its diagonal."""
    import rasterio
    from rasterio.enums import Resampling
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    opts = {k: v for k, v in options.items() if k not in ("overviews", "empty")}
    if opts.get("tiled"):
        opts.update(blockxsize=512, blockysize=512)
    band = 512
    with rasterio.open(path, "w", driver="GTiff", height=side, width=side, count=1, dtype="uint8", nodata=0,
                       crs="EPSG:32633", transform=from_origin(500000, 5000000, 1, 1), BIGTIFF="YES",
                       **opts) as ds:
        for r0 in range(0, side, band):
            h = min(band, side - r0)
            rows = np.arange(r0, r0 + h)[:, None]
            if options.get("empty"):
                if not opts.get("SPARSE_OK"):
                    ds.write(np.zeros((1, h, side), np.uint8), window=Window(0, r0, side, h))
                continue
            lo = max(0, r0 - STRIP)  # the strip meets these rows between columns lo .. r0 + h
            hi = min(side, r0 + h + STRIP)
            cols = np.arange(lo, hi)[None, :]
            inside = np.abs(cols - rows) < STRIP // 2
            block = np.where(inside, 50 + (rows + cols) % 100, 0).astype(np.uint8)
            if opts.get("SPARSE_OK"):
                ds.write(block[None], window=Window(lo, r0, hi - lo, h))
            else:
                full = np.zeros((h, side), np.uint8)
                full[:, lo:hi] = block
                ds.write(full[None], window=Window(0, r0, side, h))
        if options.get("overviews"):
            ds.build_overviews([2, 4, 8, 16, 32, 64], Resampling.nearest)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--side", type=int, default=50000)
    ap.add_argument("--out", default=os.path.join("bench", "results", "valid_look.md"))
    args = ap.parse_args(argv)
    import rasterio

    from engine.errors import InputError
    from engine.raster import LOOK_SIDE, compute_band_stats, gdal_cache, open_image, valid_places

    work = os.path.join(REPO, "bench", "data", "valid_look")
    os.makedirs(work, exist_ok=True)
    rows = []
    for i, (label, options) in enumerate(LAYOUTS.items()):
        path = os.path.join(work, f"strip{i}_{args.side}.tif")
        write_seconds, _ = timed(lambda p=path, o=options: write_strip(p, args.side, o))
        with rasterio.Env(**gdal_cache()), open_image(path) as ds:
            look, places = timed(lambda d=ds: valid_places(d, LOOK_SIDE, 256))
            full, exact = timed(lambda d=ds: valid_places(d, None, 256))
            try:
                stats_s, stats = timed(lambda d=ds, p=path: compute_band_stats(d, p))
                result = f"{stats.low[0]:.0f}–{stats.high[0]:.0f}"
            except InputError as e:
                message = e.message.replace(path, os.path.basename(path))
                stats_s, result = None, f"refused: {message[:70]}…"
        rows.append({"layout": label, "file_mib": os.path.getsize(path) / 2**20, "write_s": write_seconds,
                     "look_s": look, "look_cells": int((places.weight > 0).sum()), "full_s": full,
                     "full_cells": int((exact.weight > 0).sum()), "stats_s": stats_s, "stats": result})
        print(rows[-1], flush=True)
        os.remove(path)
    lines = [f"# The whole-raster look for valid pixels, {args.side:,}² uint8, a {STRIP} px diagonal strip",
             "", f"{machine()}; {datetime.datetime.now().isoformat(timespec='seconds')}; "
             f"`python bench/valid_look.py --side {args.side}`", "",
             "| layout | file MiB | decimated look, s (cells found) | every pixel, s (cells found) | "
             "compute_band_stats, s | its 2–98 % range |", "|---|---:|---:|---:|---:|---|"]
    for r in rows:
        stats_s = f"{r['stats_s']:.2f}" if r["stats_s"] is not None else "–"
        lines.append(f"| {r['layout']} | {r['file_mib']:.0f} | {r['look_s']:.2f} ({r['look_cells']}) | "
                     f"{r['full_s']:.2f} ({r['full_cells']}) | {stats_s} | {r['stats']} |")
    write_report(args.out, lines, {"side": args.side, "strip": STRIP, "machine": machine(), "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
