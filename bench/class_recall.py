"""Per-class recall of saved Indian Pines models: where one method's default output loses to another's.

A mean OA hides *how* a method fails. This script re-predicts saved models of the Indian Pines benchmark
(``bench/data/indian_pines/runs/LABEL_fast_kK_sS/model.semiseg``) as ``run`` and ``predict`` do by
default (8 views + edge-aware smoothing) and tabulates, per class and seed, the recall (share of the
class's evaluation pixels predicted as it) and the predicted area next to the true one. A class whose
recall falls near 0 while its neighbour's predicted area swells has been *swallowed*: the failure that
scattered errors do not explain.

Usage (from the repository root)::

    .venv/bin/python bench/class_recall.py --labels supervised_weight_average icnet_smoothed_pool \\
        --k 5 --seeds 0 1 2 --out bench/results/class_recall_indian_pines.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import indian_pines as ip  # noqa: E402

CLASSES = 16


def recall_and_area(pred: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class 1..16: recall, predicted pixels and true pixels, over the evaluated (truth > 0) pixels."""
    m = truth > 0
    true_n = np.bincount(truth[m], minlength=CLASSES + 1)[1:]
    pred_n = np.bincount(pred[m], minlength=CLASSES + 1)[1:]
    hit = np.bincount(truth[m][pred[m] == truth[m]], minlength=CLASSES + 1)[1:]
    return hit / np.maximum(true_n, 1), pred_n, true_n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labels", nargs="+", required=True,
                    help="run folder labels (LABEL_fast_kK_sS under the runs folder)")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--held-labels", default="on", choices=["on", "off"],
                    help="the smoothing holds the run's training labels (on: what `run` gives today; off: "
                         "the default output before label anchoring, as in files made before it)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    rows, oas = {}, {}
    true_n = None
    for seed in a.seeds:
        truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_k{a.k}_s{seed}.tif"))
        for label in a.labels:
            model = os.path.join(ip.WORK, "runs", f"{label}_fast_k{a.k}_s{seed}", "model.semiseg")
            if not os.path.exists(model):
                raise SystemExit(f"No saved model {os.path.relpath(model, REPO)}; run its benchmark first.")
            held = ip.labels_path(a.k, seed) if a.held_labels == "on" else None
            pred = ip.predict_saved(model, 8, smooth=True, anchors=held)
            rec, pred_n, true_n = recall_and_area(pred, truth)
            rows[(label, seed)] = (rec, pred_n)
            oas[(label, seed)] = float((pred[truth > 0] == truth[truth > 0]).mean())
            print(f"{label} k={a.k} s={seed}: OA {oas[(label, seed)]:.3f}, classes with recall < 0.2: "
                  f"{[c + 1 for c in np.flatnonzero(rec < 0.2)]}", flush=True)
    head = " | ".join(f"{lab} s{s}" for s in a.seeds for lab in a.labels)
    what = "8 views + smoothing" + (" holding the training labels" if a.held_labels == "on" else "")
    lines = [f"# Indian Pines k = {a.k}: recall per class, {what}", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, `python bench/class_recall.py --labels "
             f"{' '.join(a.labels)} --k {a.k} --seeds {' '.join(map(str, a.seeds))} --held-labels "
             f"{a.held_labels}`. Saved models of the "
             "benchmark runs, re-predicted; cells: recall (predicted area / true area in pixels).", "",
             f"| class | true px | {head} |", "|---:|---:|" + "---|" * (len(a.seeds) * len(a.labels))]
    for c in range(CLASSES):
        cells = [f"{rows[(lab, s)][0][c]:.2f} ({rows[(lab, s)][1][c]})" for s in a.seeds for lab in a.labels]
        lines.append(f"| {c + 1} | {true_n[c]} | " + " | ".join(cells) + " |")
    lines.append("| OA | | " + " | ".join(f"{oas[(lab, s)]:.3f}" for s in a.seeds for lab in a.labels) + " |")
    lines += ["", "Classes with recall below 0.2 (swallowed), per run: " + "; ".join(
        f"{lab} s{s}: {[c + 1 for c in np.flatnonzero(rows[(lab, s)][0] < 0.2)] or 'none'}"
        for s in a.seeds for lab in a.labels) + "."]
    md = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "w") as f:
            f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
