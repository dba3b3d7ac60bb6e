"""What the prediction rasters' overviews buy when QGIS draws a large map zoomed out, and what they cost.

1. Writes, once, into ``bench/data/overviews/``: an N x N px class raster like the engine's prediction
   (uint8, 0 = nodata, tiled 256 px, deflate; 5 classes in smooth regions from coarse random fields
   upsampled, 2 % of the pixels speckled with a random class, a nodata margin) and a float32 confidence
   raster beside it (-1 = nodata, predictor 3), written window by window.
2. Copies both and gives the copies internal overviews with the engine's own ``add_overviews`` (mode for
   classes, average for confidence), timing that.
3. Draws each raster at its full extent into a 1000 x 1000 px image with QGIS's map renderer
   (``QgsMapRendererSequentialJob``; a headless QGIS application), with and without overviews, each
   ``--repeats`` times, interleaved; and reads each at 1000 x 1000 px through rasterio (GDAL picks the
   overview). Reports the median seconds.

Usage (from the repository root)::

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/overviews.py --size 16384 \
        --out bench/results/overviews.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import shutil
import statistics
import sys
import time

import numpy as np
from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
WORK = os.path.join(REPO, "bench", "data", "overviews")


def write_maps(size: int, seed: int = 0) -> tuple[str, str]:
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window
    from scipy import ndimage

    cls_path = os.path.join(WORK, f"classes_{size}.tif")
    conf_path = os.path.join(WORK, f"confidence_{size}.tif")
    if os.path.exists(cls_path) and os.path.exists(conf_path):
        return cls_path, conf_path
    os.makedirs(WORK, exist_ok=True)
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(5, size // 512 + 2, size // 512 + 2)).astype(np.float32)
    prof = {"driver": "GTiff", "width": size, "height": size, "count": 1, "tiled": True, "blockxsize": 256,
            "blockysize": 256, "compress": "deflate", "BIGTIFF": "IF_SAFER", "crs": "EPSG:32633",
            "transform": from_origin(500000, 5000000 + size * 0.5, 0.5, 0.5)}
    step = 1024
    with rasterio.open(cls_path + ".part", "w", dtype="uint8", nodata=0, **prof) as cd, \
            rasterio.open(conf_path + ".part", "w", dtype="float32", nodata=-1.0, predictor=3, **prof) as fd:
        for r in range(0, size, step):
            h = min(step, size - r)
            zoom = np.arange(r, r + h) / 512.0, np.arange(size) / 512.0
            rows = np.repeat(zoom[0][:, None], size, 1).ravel()
            cols = np.repeat(zoom[1][None, :], h, 0).ravel()
            fields = np.stack([ndimage.map_coordinates(f, [rows, cols], order=1).reshape(h, size)
                               for f in coarse])
            order = np.sort(fields, 0)
            cls = (fields.argmax(0) + 1).astype(np.uint8)
            speckle = np.random.default_rng((seed, r)).random(cls.shape) < 0.02  # isolated pixels
            cls[speckle] = np.random.default_rng((seed, r, 1)).integers(1, 6, int(speckle.sum()))
            conf = (1 / (1 + np.exp(-4 * (order[-1] - order[-2])))).astype(np.float32)
            edge = min(size // 20, 512)  # a nodata margin, as a rotated orthophoto has
            cls[:, :edge] = 0
            conf[:, :edge] = -1
            cd.write(cls, 1, window=Window(0, r, size, h))
            fd.write(conf, 1, window=Window(0, r, size, h))
    os.replace(cls_path + ".part", cls_path)
    os.replace(conf_path + ".part", conf_path)
    return cls_path, conf_path


def render_seconds(path: str, pixels: int = 1000) -> float:
    from qgis.core import QgsMapRendererSequentialJob, QgsMapSettings, QgsRasterLayer
    from qgis.PyQt.QtCore import QSize

    layer = QgsRasterLayer(path, os.path.basename(path))
    assert layer.isValid(), path
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(pixels, pixels))
    t0 = time.perf_counter()
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    seconds = time.perf_counter() - t0
    img = job.renderedImage()
    assert not img.isNull()
    return seconds


def read_seconds(path: str, pixels: int = 1000) -> float:
    import rasterio

    t0 = time.perf_counter()
    with rasterio.open(path) as ds:
        ds.read(1, out_shape=(pixels, pixels))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=16384)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=os.path.join("bench", "results", "overviews.md"))
    args = ap.parse_args()
    import rasterio
    from rasterio.enums import Resampling

    from engine.predict import add_overviews, overview_factors

    t0 = time.perf_counter()
    plain = dict(zip(("classes", "confidence"), write_maps(args.size), strict=True))
    print(f"maps ready in {time.perf_counter() - t0:.0f} s", flush=True)
    factors = overview_factors(args.size, args.size)
    with_ovr, build = {}, {}
    for kind, path in plain.items():
        copy = path.replace(".tif", "_ovr.tif")
        shutil.copyfile(path, copy)
        t0 = time.perf_counter()
        add_overviews(copy, factors, Resampling.mode if kind == "classes" else Resampling.average)
        build[kind] = time.perf_counter() - t0
        with_ovr[kind] = copy
        print(f"{kind}: overviews {factors} in {build[kind]:.1f} s", flush=True)
    sizes = {k: (os.path.getsize(plain[k]), os.path.getsize(with_ovr[k])) for k in plain}

    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    times = {(k, v): {"render": [], "read": []} for k in plain for v in ("without", "with")}
    for _ in range(args.repeats):
        for kind in plain:
            for variant, path in (("without", plain[kind]), ("with", with_ovr[kind])):
                times[(kind, variant)]["render"].append(render_seconds(path))
                times[(kind, variant)]["read"].append(read_seconds(path))
                last = {m: round(v[-1], 3) for m, v in times[(kind, variant)].items()}
                print(kind, variant, last, flush=True)
    app.exitQgis()

    cpu = machine()
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    with rasterio.open(plain["classes"]) as ds:
        gdal_version = rasterio.__gdal_version__
        assert ds.overviews(1) == []
    lines = [f"# Overviews of a {args.size:,} x {args.size:,} px prediction: drawing it zoomed out", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {cpu}, GDAL {gdal_version}. Median of "
             f"{args.repeats} (interleaved). Render: QGIS draws the layer at its full extent into 1000 x "
             "1000 px (`QgsMapRendererSequentialJob`); read: rasterio reads band 1 at 1000 x 1000 px.", "",
             "| raster | overviews | build s | file MB | render s | read s |",
             "|---|---|---:|---:|---:|---:|"]
    for kind in plain:
        for variant in ("without", "with"):
            t = times[(kind, variant)]
            b = f"{build[kind]:.1f}" if variant == "with" else "–"
            levels = ", ".join(map(str, factors)) if variant == "with" else "none"
            mb = sizes[kind][variant == "with"] / 1e6
            render, read = statistics.median(t["render"]), statistics.median(t["read"])
            lines.append(f"| {kind} | {variant} ({levels}) | {b} | {mb:.1f} | {render:.2f} | {read:.2f} |")
    lines += ["", f"Command: `{cmd}`"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_report(args.out, lines, {"command": cmd, "cpu": cpu, "size": args.size, "factors": factors,
                                   "build_s": build, "bytes": sizes,
                                   "times": {f"{k}/{v}": t for (k, v), t in times.items()}})


if __name__ == "__main__":
    main()
