"""Strongly unbalanced labels: one big filled block beside short scribbles, with and without the cap.

Synthetic scenes (``engine.synthetic.scene``: 4 classes, known truth) labeled the way an analyst who drew
one big polygon and a few short scribbles would: the class with the most area gets a filled square
block (~2,500 px) inside one of its regions, every other class ``--strokes`` short 3-px strokes
(~20-60 px). Each scene is trained with ``python -m engine run --preset fast`` (one torch thread, two runs
side by side) three ways:

* ``cap off``: ``imbalance_cap = 0`` -- plain cross-entropy, the default (``imbalance_cap`` is set
  through the ``fast`` preset in the child process; there is no flag for it);
* ``cap 10``: ``imbalance_cap = 10``: a class with fewer than 1/10 of the largest class's labeled pixels
  is weighed up to that share (measured worse here, so not the default);
* ``--balance-labels``: every class weighs the same (inverse of its share).

The written map (``prediction.tif``, defaults) is scored against the synthetic truth on all pixels (OA,
mIoU). ``--sample`` also counts the labeled pixels per class of the bundled sample, to show whether the
cap changes anything there (it does not when the largest/smallest ratio is below the cap).

Usage (from the repository root)::

    .venv/bin/python bench/label_imbalance.py --out bench/results/label_imbalance.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np
import rasterio
from scipy import ndimage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from indian_pines import machine  # noqa: E402
from smoothing import write_report  # noqa: E402

from engine.synthetic import scribbles, write_scene  # noqa: E402

VARIANTS = {  # row label -> (imbalance_cap for the fast preset, extra flags)
    "cap off (default)": (0.0, []),
    "cap 10": (10.0, []),
    "--balance-labels": (10.0, ["--balance-labels"]),
}
CHILD = ("import sys, engine.config as c; c.PRESETS['fast'].imbalance_cap = float(sys.argv[1]); "
         "from engine.cli import main; sys.exit(main(sys.argv[2:]))")


def make_labels(truth: np.ndarray, seed: int, block: int, strokes: int, length: int) -> np.ndarray:
    """One filled ``block``² square of the class with the most area, short strokes for the others."""
    big = int(np.argmax(np.bincount(truth.ravel(), minlength=5)[1:])) + 1
    labels = scribbles(truth, strokes, length, seed=seed + 1)
    labels[labels == big] = 0
    # the square's centre: a pixel whose whole block lies in the big class (the deepest one otherwise)
    depth = ndimage.distance_transform_cdt(truth == big, metric="chessboard")
    inside = np.argwhere(depth > block // 2)
    rng = np.random.default_rng(seed)
    r, c = inside[rng.integers(len(inside))] if len(inside) else np.unravel_index(depth.argmax(), depth.shape)
    r0, c0 = max(int(r) - block // 2, 0), max(int(c) - block // 2, 0)
    win = (slice(r0, r0 + block), slice(c0, c0 + block))
    labels[win] = np.where(truth[win] == big, big, labels[win])
    return labels


def score(pred: np.ndarray, truth: np.ndarray, k: int) -> dict:
    m = truth > 0
    p, t = pred[m].astype(int), truth[m].astype(int)
    ious = []
    for c in range(1, k + 1):
        inter = int(((p == c) & (t == c)).sum())
        union = int(((p == c) | (t == c)).sum())
        ious.append(inter / union if union else float("nan"))
    return {"oa": float((p == t).mean()), "miou": float(np.nanmean(ious)), "per_class_iou": ious}


def run_one(seed: int, row: str, scene: dict, folder: str, steps: int | None) -> dict:
    cap, extra = VARIANTS[row]
    env = {**os.environ, "PYTHONPATH": REPO, "SEMISEG_THREADS": "1"}
    cmd = [sys.executable, "-c", CHILD, str(cap), "run", "--image", scene["image"], "--labels",
           scene["labels"], "--out-dir", folder, "--preset", "fast", "--seed", str(seed), "--device", "cpu",
           "--progress", "none", *(["--steps", str(steps)] if steps else []), *extra]
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=REPO, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    with rasterio.open(os.path.join(folder, "prediction.tif")) as ds:
        pred = ds.read(1)
    with rasterio.open(scene["truth"]) as ds:
        truth = ds.read(1)
    rec = {"seed": seed, "row": row, "wall_s": wall, **score(pred, truth, 4)}
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}), flush=True)
    return rec


def sample_counts() -> dict:
    with rasterio.open(os.path.join(REPO, "resources", "sample", "landsat_rgb_labels.tif")) as ds:
        lab = ds.read(1)
    counts = {int(c): int(n) for c, n in enumerate(np.bincount(lab.ravel())) if c > 0 and n > 0}
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--block", type=int, default=50, help="side of the big class's filled square (px)")
    ap.add_argument("--strokes", type=int, default=2, help="strokes per small class")
    ap.add_argument("--length", type=int, default=8, help="stroke length (px; strokes are 3 px wide)")
    ap.add_argument("--steps", type=int, default=None, help="override the fast preset's 400 steps")
    ap.add_argument("--rows", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join("bench", "results", "label_imbalance.md"))
    args = ap.parse_args(argv)
    work = os.path.join(REPO, "bench", "data", "label_imbalance")
    scenes, counts = {}, {}
    for seed in args.seeds:
        folder = os.path.join(work, f"scene_{args.size}_s{seed}")
        os.makedirs(folder, exist_ok=True)
        sc = write_scene(folder, args.size, args.size, bands=4, classes=4, seed=seed)
        with rasterio.open(sc["truth"]) as ds:
            truth = ds.read(1)
        with rasterio.open(sc["labels"], "r+") as ds:
            labels = make_labels(truth, seed, args.block, args.strokes, args.length)
            ds.write(labels, 1)
        scenes[seed] = sc
        counts[seed] = [int(n) for n in np.bincount(labels.ravel(), minlength=5)[1:]]
        print(f"seed {seed}: labeled px per class {counts[seed]}", flush=True)
    jobs = [(s, r) for s in args.seeds for r in args.rows]
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futs = [pool.submit(run_one, s, r, scenes[s], os.path.join(work, f"run_s{s}_{i}"), args.steps)
                for s, r in jobs for i in [args.rows.index(r)]]
        rows = [f.result() for f in futs]
    sample = sample_counts()
    ratio = max(sample.values()) / min(sample.values())

    def stat(row, key):
        v = np.array([r[key] for r in rows if r["row"] == row], float)
        return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"

    cmd = shlex.join(["python", "bench/label_imbalance.py", *(sys.argv[1:] if argv is None else argv)])
    lines = ["# Strongly unbalanced labels: the imbalance cap", "",
             f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {machine()}, SEMISEG_THREADS=1, "
             f"{args.jobs} runs side by side. Synthetic {args.size}² 4-band, 4-class scenes "
             f"(`engine.synthetic.scene`, seeds {', '.join(map(str, args.seeds))}); labels: a filled "
             f"{args.block}² square of the class with the most area, {args.strokes} stroke(s) of length "
             f"{args.length} (3 px wide) for each other class. `python -m engine run --preset fast`"
             f"{f' --steps {args.steps}' if args.steps else ''} (supervised, default output "
             "`prediction.tif`), scored against the truth on all pixels. The engine's own validation "
             "split holds out part of the labels, so the training counts are a little lower.", "",
             "Labeled px per class (1..4): " + "; ".join(f"seed {s}: {counts[s]}" for s in args.seeds), "",
             "| row | OA (mean ± std) | mIoU (mean ± std) |", "|---|---|---|"]
    lines += [f"| {r} | {stat(r, 'oa')} | {stat(r, 'miou')} |" for r in args.rows]
    lines += ["", "| seed | row | OA | mIoU | IoU per class | wall s |", "|---:|---|---:|---:|---|---:|"]
    lines += [f"| {r['seed']} | {r['row']} | {r['oa']:.4f} | {r['miou']:.4f} | "
              f"{' / '.join(f'{x:.2f}' for x in r['per_class_iou'])} | {r['wall_s']:.0f} |"
              for r in sorted(rows, key=lambda r: (r["seed"], args.rows.index(r["row"])))]
    lines += ["", f"Bundled sample (`resources/sample/landsat_rgb_labels.tif`), labeled px per class: "
              f"{sample}; largest/smallest = {ratio:.2f}, "
              f"{'below' if ratio < 10 else 'NOT below'} 10, so a cap of 10 would train there "
              f"{'without class weights, exactly as with none' if ratio < 10 else 'with class weights'}.",
              "", f"Command: `{cmd}`"]
    write_report(args.out, lines, {"command": cmd, "label_counts": counts, "sample_counts": sample,
                                   "sample_ratio": ratio, "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
