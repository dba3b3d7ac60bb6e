"""Where to paint next: labels painted at the map's least sure places against labels painted at random places.

A simulated analyst on Indian Pines. After the k = 5 model of a seed (the main table's saved run), the map
is made as the engine makes it (8 views, smoothing holding the k = 5 labels) and its spots are listed
(``engine.spots``: the least confident cells, 8 px on this 145² image, spread apart). The analyst then
paints ``--spots`` places, ``--pixels`` ground-truth pixels at most in each (those nearest the cell's
centre: a blob of paint), and trains again from the k = 5 model (``--warm-start``, 200 steps: the
default). Two analysts:

* **spots**: goes down the engine's list (its order; SPACING kept) and paints the first ``--spots`` cells
  that show any ground-truth pixel (Indian Pines leaves half the image without a class; a place showing
  nothing the analyst can name is skipped, as it would be);
* **random**: paints ``--spots`` cells drawn at random (same grid, same seed-dependent generator) among
  the cells that show any unlabeled ground-truth pixel.

Both are scored on the same pixels: all ground truth minus the k = 5 labels and minus what either analyst
painted; OA of the default output (8 views + smoothing holding that analyst's labels), and of the k = 5
model holding the new labels without training.

Usage (from the repository root, after the main table's runs exist in bench/data/indian_pines/runs)::

    .venv/bin/python bench/paint_next.py --jobs 2 --out bench/results/paint_next_indian_pines.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import shlex
import statistics
import sys

import indian_pines as ip
import numpy as np
from smoothing import write_report

REPO = ip.REPO
sys.path.insert(0, REPO)
RUNS = os.path.join(ip.WORK, "runs")
SAVED = {"supervised": "supervised_fast_k5_s{seed}", "icnet": "icnet_fast_k5_s{seed}"}
STEPS = 200


def ranked_cells(model_path: str, seed: int) -> tuple[list[tuple[int, int]], int]:
    """Every eligible cell of the k = 5 model's default map, least sure first (the engine's spots, listed
    in full), and the cell size."""
    import tempfile

    import rasterio
    import torch

    from engine import modelfile
    from engine.labels import LabelPatches
    from engine.predict import predict_file
    from engine.spots import SpotFinder

    torch.set_num_threads(1)
    model = modelfile.load(model_path)
    anchors = LabelPatches.from_array(ip.read_prediction(ip.labels_path(5, seed)))
    with tempfile.TemporaryDirectory() as tmp:
        how = predict_file(model, os.path.join(ip.WORK, "image.tif"), os.path.join(tmp, "p.tif"),
                           os.path.join(tmp, "c.tif"), torch.device("cpu"), anchors=anchors)
        with rasterio.open(os.path.join(tmp, "c.tif")) as ds:
            conf, transform = ds.read(1), ds.transform
    finder = SpotFinder(*conf.shape, transform)
    finder.add(conf, conf >= 0, 0, 0)
    listed = finder.spots(limit=10 ** 6)
    assert listed[:len(how["spots"])] == how["spots"]  # the engine's own list, continued
    return [(s["row"], s["col"]) for s in listed], finder.cell


def paint(cell: tuple[int, int], size: int, gt: np.ndarray, taken: np.ndarray, pixels: int) -> np.ndarray:
    """Up to ``pixels`` unlabeled ground-truth pixels of the cell nearest its centre, as (rows, cols)."""
    r, c = cell
    rows, cols = np.nonzero((gt[r:r + size, c:c + size] > 0) & ~taken[r:r + size, c:c + size])
    order = np.argsort((rows - size / 2 + 0.5) ** 2 + (cols - size / 2 + 0.5) ** 2, kind="stable")[:pixels]
    return np.stack([rows[order] + r, cols[order] + c])


def analyst_labels(kind: str, seed: int, gt: np.ndarray, k5: np.ndarray, cells: list, size: int,
                   spots: int, pixels: int) -> tuple[np.ndarray, list]:
    labels = k5.copy()
    taken = k5 > 0
    if kind == "random":
        h, w = gt.shape
        grid = [(r, c) for r in range(0, h, size) for c in range(0, w, size)]
        rng = np.random.default_rng(1000 + seed)
        cells = [grid[i] for i in rng.permutation(len(grid))]
    used = []
    for cell in cells:
        if len(used) == spots:
            break
        rr, cc = paint(cell, size, gt, taken, pixels)
        if len(rr) == 0:
            continue  # nothing the analyst can name here
        labels[rr, cc] = gt[rr, cc]
        taken[rr, cc] = True
        used.append(cell)
    return labels, used


def warm(method: str, seed: int, kind: str, labels_file: str, python: str, again: bool, extra: list[str],
         tag: str) -> str:
    out_dir = os.path.join(RUNS, f"paint_{kind}_{method}{tag}_s{seed}")
    model = os.path.join(out_dir, "model.semiseg")
    if again or not os.path.exists(model):
        os.makedirs(out_dir, exist_ok=True)
        source = os.path.join(RUNS, SAVED[method].format(seed=seed), "model.semiseg")
        cmd = ip.engine_cmd(python, method, "fast", seed, os.path.join(ip.WORK, "image.tif"), labels_file,
                            out_dir, ["--warm-start", source, "--steps", str(STEPS), *extra])
        rec = ip.run_engine(cmd, out_dir, None, threads=1)
        if not rec["ok"]:
            raise RuntimeError(f"{method} {kind} seed {seed}: {rec.get('error_tail', '')[-500:]}")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="supervised")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--spots", type=int, default=5, help="places painted per analyst")
    ap.add_argument("--pixels", type=int, default=16, help="ground-truth pixels painted per place, at most")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--again", action="store_true", help="train again even where a run exists")
    ap.add_argument("--extra-args", default="",
                    help="more engine flags for the warm runs (e.g. an experiment)")
    ap.add_argument("--tag", default="", help="run folder suffix for those runs (e.g. _balanced)")
    ap.add_argument("--out", default=os.path.join("bench", "results", "paint_next_indian_pines.md"))
    args = ap.parse_args()
    methods = args.methods.split(",")
    _, gt = ip.load_data()
    n_classes = int(gt.max())
    plans = []
    for method in methods:
        for seed in args.seeds:
            k5 = ip.read_prediction(ip.labels_path(5, seed))
            source = os.path.join(RUNS, SAVED[method].format(seed=seed), "model.semiseg")
            cells, size = ranked_cells(source, seed)
            plan = {"method": method, "seed": seed, "source": source, "cell": size, "k5": k5}
            for kind in ("spots", "random"):
                labels, used = analyst_labels(kind, seed, gt, k5, cells, size, args.spots, args.pixels)
                name = f"labels_paint_{kind}_{method}_s{seed}_{args.spots}x{args.pixels}.tif"
                path = os.path.join(ip.WORK, name)
                ip.write_class_raster(path, labels)
                plan[kind] = {"labels": labels, "path": path, "cells": used,
                              "added": int((labels > 0).sum() - (k5 > 0).sum()),
                              "classes_added": sorted({int(v) for v in labels[(labels > 0) & (k5 == 0)]})}
            plans.append(plan)
    jobs = [(p, kind) for p in plans for kind in ("spots", "random")]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        models = list(pool.map(lambda pk: warm(pk[0]["method"], pk[0]["seed"], pk[1], pk[0][pk[1]]["path"],
                                               args.python, args.again, shlex.split(args.extra_args),
                                               args.tag), jobs))
    for (p, kind), model in zip(jobs, models, strict=True):
        p[kind]["model"] = model
    rows = []
    for p in plans:
        # the same pixels for both analysts: all ground truth none of them painted
        painted = (p["k5"] > 0) | (p["spots"]["labels"] > 0) | (p["random"]["labels"] > 0)
        truth_eval = gt * ~painted
        row = {"method": p["method"], "seed": p["seed"], "cell": p["cell"],
               "eval_pixels": int((truth_eval > 0).sum())}
        for kind in ("spots", "random"):
            q = p[kind]
            trained = ip.predict_saved(q["model"], 8, smooth=True, anchors=q["path"])
            held = ip.predict_saved(p["source"], 8, smooth=True, anchors=q["path"])
            row[kind] = {"oa": ip.scores(trained, truth_eval, n_classes)["oa"],
                         "held_oa": ip.scores(held, truth_eval, n_classes)["oa"],
                         "added": q["added"], "classes_added": q["classes_added"],
                         "cells": [list(c) for c in q["cells"]]}
        k5_only = ip.predict_saved(p["source"], 8, smooth=True, anchors=ip.labels_path(5, p["seed"]))
        row["k5_oa"] = ip.scores(k5_only, truth_eval, n_classes)["oa"]
        rows.append(row)
        print(json.dumps(row), flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    cell = rows[0]["cell"]
    lines = ["# Where to paint next: the map's least sure places against random places (Indian Pines, "
             "k = 5)", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {ip.machine()}; fast preset; seeds "
             f"{', '.join(map(str, args.seeds))}; each analyst paints {args.spots} places of "
             f"{cell} × {cell} px, at most {args.pixels} ground-truth pixels each, on top of the k = 5 "
             f"labels, then trains {STEPS} steps from the k = 5 model (`--warm-start`); OA of the default "
             "output (8 views + smoothing holding the analyst's labels) on the same pixels for both (all "
             "ground truth nobody painted); mean ± sample standard deviation over seeds.", "",
             "| method | k = 5 model | + random places, held (trained) | + least sure places, held "
             "(trained) | trained: spots − random, per seed | pixels painted, random / spots | classes "
             "touched, random / spots |", "|---|---|---|---|---|---|---|"]

    def ms(vals):
        if len(vals) == 1:
            return f"{vals[0]:.3f}"
        return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"

    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        per_seed = " / ".join(f"{r['spots']['oa'] - r['random']['oa']:+.3f}" for r in mine)
        lines.append(
            f"| {method} | {ms([r['k5_oa'] for r in mine])} | {ms([r['random']['held_oa'] for r in mine])} "
            f"({ms([r['random']['oa'] for r in mine])}) | {ms([r['spots']['held_oa'] for r in mine])} "
            f"({ms([r['spots']['oa'] for r in mine])}) | {per_seed} | "
            f"{statistics.mean(r['random']['added'] for r in mine):.0f} / "
            f"{statistics.mean(r['spots']['added'] for r in mine):.0f} | "
            f"{statistics.mean(len(r['random']['classes_added']) for r in mine):.1f} / "
            f"{statistics.mean(len(r['spots']['classes_added']) for r in mine):.1f} |")
    lines += ["", f"Command: `{cmd}`"]
    write_report(args.out, lines, {"command": cmd, "cpu": ip.machine(), "rows": rows})


if __name__ == "__main__":
    main()
