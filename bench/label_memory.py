"""Memory and time of reading labels and preparing training on a large raster (the labels' share).

An analyst's labels on a large orthophoto are a few strokes; what the engine holds for them should
follow the strokes, not the raster. This script

1. writes, once, into ``bench/data/label_memory/``: an N x N px 3-band uint8 GeoTIFF (tiled, deflate,
   written window by window: a smooth pattern, so it compresses) and, on its grid, label files with a
   few dozen short strokes of three classes: ``local`` (all strokes inside a 2,000 px square, the usual
   case) and ``spread`` (strokes from corner to corner), each as a uint8 GeoTIFF and as a GeoPackage of
   lines; plus a second, label-free raster for ``--unlabeled``;
2. runs every case in its own child process and records its wall seconds and peak resident memory
   (``ru_maxrss`` from ``os.wait4`` on exactly that process):
   * ``load``: ``engine.labels.load_labels`` alone (under the GDAL block cache the engine's commands
     set, where the measured checkout has one: ``engine.raster.GDAL_CACHE_MB``);
   * ``train``: ``python -m engine train --preset fast --steps 2`` (band statistics, labels, validation
     split, training chips within the preset's memory budget, two steps, the model file), with
     ``--unlabeled`` the second raster for the ``+unlabeled`` rows;
   * ``pretrain``: ``python -m engine pretrain --preset fast --pretrain-steps 8`` (no labels: the image's
     chips for inpainting pretraining, eight steps, the encoder file).

Run it from the repository root (or from a checkout of another commit, with ``--python`` naming the
interpreter, to compare commits on the same machine)::

    .venv/bin/python bench/label_memory.py --size 20000 --out bench/results/label_memory.md
"""

from __future__ import annotations

import argparse
import datetime
import json
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
WORK = os.path.join(REPO, "bench", "data", "label_memory")
CLASSES = 3


def _profile(size: int) -> dict:
    from rasterio.transform import from_origin

    return {"driver": "GTiff", "width": size, "height": size, "tiled": True, "blockxsize": 256,
            "blockysize": 256, "compress": "deflate", "crs": "EPSG:32633",
            "transform": from_origin(500000, 5000000 + size * 0.5, 0.5, 0.5)}


def write_image(path: str, size: int, seed: int) -> None:
    import rasterio
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, 3)
    prof = {**_profile(size), "count": 3, "dtype": "uint8"}
    tmp = path + ".part"
    with rasterio.open(tmp, "w", **prof) as dst:
        step = 2048
        for r in range(0, size, step):
            h = min(step, size - r)
            rr = np.arange(r, r + h, dtype=np.float32)[:, None]
            cc = np.arange(size, dtype=np.float32)[None, :]
            block = np.stack([(127 + 100 * np.sin(rr / 300 + p) * np.cos(cc / 450 + p)).astype(np.uint8)
                              for p in phase])
            dst.write(block, window=Window(0, r, size, h))
    os.replace(tmp, path)


def strokes(size: int, spread: bool, seed: int, n: int = 36) -> list[tuple[int, np.ndarray]]:
    """(class, (m, 2) row/col vertices) of short random-walk strokes."""
    rng = np.random.default_rng(seed)
    lo, hi = (0, size) if spread else (size // 2 - 1000, size // 2 + 1000)
    out = []
    for i in range(n):
        start = rng.uniform(lo + 100, hi - 100, 2)
        steps = rng.normal(0, 15, (20, 2)).cumsum(0)
        out.append((i % CLASSES + 1, np.clip(start + steps, lo, hi - 1)))
    return out


def write_labels(tif: str, gpkg: str, size: int, spread: bool, seed: int) -> None:
    import rasterio
    from osgeo import gdal, ogr, osr
    from rasterio.features import rasterize
    from rasterio.windows import Window

    prof = {**_profile(size), "count": 1, "dtype": "uint8", "nodata": None}
    tr = prof["transform"]
    lines = []
    for cls, pts in strokes(size, spread, seed):
        xy = [tr * (c + 0.5, r + 0.5) for r, c in pts]
        lines.append((cls, xy))
    gdal.UseExceptions()
    if os.path.exists(gpkg):
        os.remove(gpkg)
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(gpkg)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = ds.CreateLayer("labels", srs, ogr.wkbLineString)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    for cls, xy in lines:
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("class", cls)
        g = ogr.Geometry(ogr.wkbLineString)
        for x, y in xy:
            g.AddPoint_2D(x, y)
        f.SetGeometry(g)
        layer.CreateFeature(f)
    ds = None
    tmp = tif + ".part"
    shapes = [({"type": "LineString", "coordinates": xy}, cls) for cls, xy in lines]
    with rasterio.open(tmp, "w", **prof) as dst:
        step = 2048
        for r in range(0, size, step):
            h = min(step, size - r)
            wt = rasterio.windows.transform(Window(0, r, size, h), tr)
            block = rasterize(shapes, out_shape=(h, size), transform=wt, fill=0, all_touched=True,
                              dtype="uint8")
            dst.write(block, 1, window=Window(0, r, size, h))
    os.replace(tmp, tif)


def make_data(size: int) -> dict:
    os.makedirs(WORK, exist_ok=True)
    paths = {"image": os.path.join(WORK, f"image_{size}.tif"), "more": os.path.join(WORK, f"more_{size}.tif")}
    for key, seed in (("image", 0), ("more", 1)):
        if not os.path.exists(paths[key]):
            print(f"writing {paths[key]}", flush=True)
            write_image(paths[key], size, seed)
    for kind in ("local", "spread"):
        tif = os.path.join(WORK, f"labels_{kind}_{size}.tif")
        gpkg = os.path.join(WORK, f"labels_{kind}_{size}.gpkg")
        if not (os.path.exists(tif) and os.path.exists(gpkg)):
            print(f"writing {tif} and {gpkg}", flush=True)
            write_labels(tif, gpkg, size, kind == "spread", seed=2)
        paths[f"{kind}_tif"], paths[f"{kind}_gpkg"] = tif, gpkg
    return paths


# load_labels under the GDAL cache the engine's commands set (engine.raster.gdal_cache), where the
# measured checkout has one (checkouts before it passed GDAL_CACHE_MB, which rasterio took as bytes)
LOAD = ("import sys, rasterio; sys.path.insert(0, {repo!r}); from engine import raster\n"
        "from engine.labels import load_labels\n"
        "env = raster.gdal_cache() if hasattr(raster, 'gdal_cache') else (\n"
        "    {{'GDAL_CACHEMAX': raster.GDAL_CACHE_MB}} if hasattr(raster, 'GDAL_CACHE_MB') else {{}})\n"
        "with rasterio.Env(**env):\n"
        "    with rasterio.open({image!r}) as ds: lab = load_labels({labels!r}, ds)\n"
        "print(lab.counts().tolist())\n")


def measure(cmd: list[str], cwd: str) -> dict:
    """Wall seconds and peak RSS (MiB) of one child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out, err = proc.stdout.read(), proc.stderr.read()
    code = os.waitstatus_to_exitcode(status)
    rec = {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "rc": code}
    if code != 0:
        rec["error"] = (err or out).strip().splitlines()[-1:] if (err or out).strip() else ["?"]
    else:
        rec["stdout_tail"] = out.strip().splitlines()[-1:] if out.strip() else []
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=20000, help="raster side, px")
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs the engine")
    ap.add_argument("--repo", default=REPO, help="checkout whose engine is measured (default: this one)")
    ap.add_argument("--cases", default="load,train,pretrain", help="comma-separated: load, train, pretrain")
    ap.add_argument("--out", default=os.path.join("bench", "results", "label_memory.md"))
    ap.add_argument("--generate-only", action="store_true", help="write the data and stop")
    args = ap.parse_args()
    if args.generate_only:
        make_data(args.size)
        return
    # The data are written by a child of their own: a child's peak RSS (ru_maxrss) starts from what its
    # parent held when it forked, so the measuring process must stay small.
    subprocess.run([sys.executable, os.path.abspath(__file__), "--size", str(args.size), "--generate-only"],
                   check=True)
    paths = make_data(args.size)
    env_repo = os.path.abspath(args.repo)
    rows = []
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("local", "spread"):
            for fmt in ("tif", "gpkg"):
                labels = paths[f"{kind}_{fmt}"]
                if "load" in cases:
                    code = LOAD.format(repo=env_repo, image=paths["image"], labels=labels)
                    rows.append({"case": "load", "labels": f"{kind} {fmt}",
                                 **measure([args.python, "-c", code], env_repo)})
                    print(json.dumps(rows[-1]), flush=True)
                if "train" in cases:
                    for extra in ([], ["--unlabeled", paths["more"]]) if fmt == "tif" else ([],):
                        cmd = [args.python, "-m", "engine", "train", "--image", paths["image"], "--labels",
                               labels, "--preset", "fast", "--steps", "2", "--device", "cpu",
                               "--progress", "none", "--out", os.path.join(tmp, "m.semiseg"), *extra]
                        rows.append({"case": "train" + (" +unlabeled" if extra else ""),
                                     "labels": f"{kind} {fmt}", **measure(cmd, env_repo)})
                        print(json.dumps(rows[-1]), flush=True)
        if "pretrain" in cases:  # no labels: what reading the image for pretraining holds
            cmd = [args.python, "-m", "engine", "pretrain", "--image", paths["image"], "--preset", "fast",
                   "--pretrain-steps", "8", "--device", "cpu", "--progress", "none",
                   "--out", os.path.join(tmp, "e.semienc")]
            rows.append({"case": "pretrain", "labels": "none", **measure(cmd, env_repo)})
            print(json.dumps(rows[-1]), flush=True)
    commit = subprocess.run(["git", "-C", env_repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    cpu = machine()
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "cpu": cpu, "commit": commit,
            "size": args.size, "command": cmd}
    lines = [f"# Labels on a {args.size:,} x {args.size:,} px raster: memory and time", "",
             f"{meta['date']}, {cpu}, engine at commit {commit}. Each row is one child process; peak RSS "
             "is its `ru_maxrss`. `load` = `engine.labels.load_labels` alone; `train` = `python -m engine "
             "train --preset fast --steps 2` (statistics, labels, validation split, chips, 2 steps, model "
             "file); `pretrain` = `python -m engine pretrain --preset fast --pretrain-steps 8`.", "",
             "| case | labels | wall s | peak RSS, MiB | ok |", "|---|---|---:|---:|---|"]
    for r in rows:
        ok = "yes" if r["rc"] == 0 else f"no: {' '.join(r.get('error', []))[:120]}"
        lines.append(f"| {r['case']} | {r['labels']} | {r['wall_s']:.1f} | {r['peak_rss_mib']:.0f} | {ok} |")
    lines += ["", f"Command: `{cmd}`"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_report(args.out, lines, {"meta": meta, "rows": rows})


if __name__ == "__main__":
    main()
