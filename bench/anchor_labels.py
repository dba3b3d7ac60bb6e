"""Label-anchored smoothing beyond Indian Pines: synthetic scenes labeled with scribbles.

Indian Pines is labeled with single pixels scattered over its fields; an analyst paints strokes. For
each seed this writes the 4-band synthetic scene of ``bench/synthetic_scene.py`` (fields, roads,
buildings; known truth; a few short scribbles per class), trains once (``engine run --anchor-labels
off --val-fraction 0``), then predicts the saved model twice in fresh ``engine predict`` processes:
without ``--labels`` (smoothing alone) and with the scene's scribbles as ``--labels`` (what ``run``
gives by default). Both maps are scored with ``engine evaluate`` against the truth with the labeled
pixels removed (they are given, so they do not count), as on Indian Pines. Wall seconds and peak
memory are those of each predict child.

Usage (from the repository root)::

    SEMISEG_THREADS=1 .venv/bin/python bench/anchor_labels.py --seeds 0 1 2 \\
        --out bench/results/anchor_labels_synthetic.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys

import numpy as np
import rasterio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from engine.synthetic import write_scene  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from smoothing import engine, evaluate, write_report  # noqa: E402


def truth_without_labels(truth: str, labels: str, out: str) -> str:
    """The truth raster with the labeled pixels set to 0 (not scored)."""
    with rasterio.open(truth) as t, rasterio.open(labels) as lab:
        data, profile = t.read(1), t.profile
        data[lab.read(1) > 0] = 0
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--method", default="supervised")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--out", default=os.path.join("bench", "results", "anchor_labels_synthetic.md"))
    args = ap.parse_args(argv)
    rows = []
    for seed in args.seeds:
        work = os.path.join(REPO, "bench", "data", "anchor_labels", f"scene_{args.size}_s{seed}")
        os.makedirs(work, exist_ok=True)
        scene = write_scene(work, args.size, args.size, bands=4, classes=4, seed=seed)
        run_dir = os.path.join(work, f"run_{args.method}")
        model = os.path.join(run_dir, "model.semiseg")
        if not os.path.exists(model):
            engine(["run", "--image", scene["image"], "--labels", scene["labels"], "--out-dir", run_dir,
                    "--method", args.method, "--preset", args.preset, "--seed", str(seed), "--val-fraction",
                    "0", "--anchor-labels", "off", "--device", "cpu", "--progress", "none"])
        truth = truth_without_labels(scene["truth"], scene["labels"],
                                     os.path.join(work, "truth_unlabeled.tif"))
        with rasterio.open(scene["labels"]) as ds:
            labeled = int((ds.read(1) > 0).sum())
        for mode, extra in (("smoothing", []), ("smoothing, labels held", ["--labels", scene["labels"]])):
            out = os.path.join(work, f"pred_{args.method}_{'held' if extra else 'free'}.tif")
            rec = {"seed": seed, "mode": mode, "labeled_px": labeled,
                   **engine(["predict", "--model", model, "--image", scene["image"], "--out", out, *extra,
                             "--device", "cpu", "--progress", "none"])}
            sc = evaluate(out, truth)
            rec.update(oa=sc["oa"], miou=sc["miou"], per_class_iou=sc["per_class_iou"])
            rows.append(rec)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()
                              if k != "per_class_iou"}), flush=True)

    def mean(mode, key):
        v = np.array([r[key] for r in rows if r["mode"] == mode], float)
        return f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.4f}"

    lines = ["# Label-anchored smoothing on synthetic scenes labeled with scribbles", "",
             f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} CPU cores (no GPU), "
             f"SEMISEG_THREADS={os.environ.get('SEMISEG_THREADS', 'unset')}; {args.size}² px 4-band scenes "
             f"(seeds {', '.join(map(str, args.seeds))}), `{args.method}`, preset `{args.preset}`, one "
             "training per seed; each prediction a fresh `python -m engine predict` process with the "
             "defaults (`--tta auto`, `--smooth on`), without and with `--labels` (the scene's scribbles); "
             "scored with `engine evaluate` against the truth without the labeled pixels.", "",
             "| seed | labeled px | mode | OA | mIoU | predict wall s | CPU s | peak RSS MiB |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['seed']} | {r['labeled_px']} | {r['mode']} | {r['oa']:.4f} | {r['miou']:.4f} | "
              f"{r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['peak_rss_mib']:.0f} |" for r in rows]
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    lines += ["", "| mode | OA (mean ± std) | mIoU (mean ± std) |", "|---|---|---|"]
    lines += [f"| {m} | {mean(m, 'oa')} | {mean(m, 'miou')} |" for m in modes]
    cmd = " ".join(["python bench/anchor_labels.py", *(sys.argv[1:] if argv is None else argv)])
    lines += ["", f"Command: `{cmd}`"]
    write_report(args.out, lines, {"command": cmd, "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
