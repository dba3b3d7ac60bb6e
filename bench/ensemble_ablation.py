"""ICNet's prediction from both teachers against one teacher, on the same saved models (paired).

The ``- ensemble`` row of the ablation (bench/icnet_ablation.py) trains a separate run, so it mixes the
effect of predicting with one teacher with the run-to-run noise of training (several OA points on
Indian Pines). Predicting is deterministic, so this script takes the main table's saved ICNet models
(``bench/data/indian_pines/runs/icnet_fast_k{k}_s{seed}``) and scores each with both teachers' mean
softmax (the default), teacher A alone and teacher B alone (what ``--no-ensemble`` saves), each from one
view per window and from 8 (test-time augmentation). OA / mIoU on the run's evaluation pixels.

Usage (from the repository root)::

    .venv/bin/python bench/ensemble_ablation.py --out bench/results/icnet_ensemble_indian_pines.md
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

MEMBERS = {"both teachers (default)": slice(None), "teacher A": slice(0, 1), "teacher B": slice(1, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--label", default="icnet", help="run folders LABEL_fast_kK_sS under the runs folder")
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    got: dict[tuple, list[dict]] = {}
    for k in a.k:
        for seed in a.seeds:
            model = os.path.join(ip.WORK, "runs", f"{a.label}_fast_k{k}_s{seed}", "model.semiseg")
            if not os.path.exists(model):
                raise SystemExit(f"No saved model {os.path.relpath(model, REPO)}; run the main table first "
                                 "(python bench/icnet_ablation.py --only main).")
            truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_k{k}_s{seed}.tif"))
            for name, members in MEMBERS.items():
                for views in (1, 8):
                    s = ip.scores(ip.predict_saved(model, views, members), truth, 16)
                    got.setdefault((k, name, views), []).append(s)
                    print(f"k={k} s={seed} {name}, {views} view(s): OA {s['oa']:.3f} mIoU {s['miou']:.3f}",
                          flush=True)
    lines = [f"# ICNet: prediction from both teachers vs one (Indian Pines, saved `{a.label}` models)", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, `python bench/ensemble_ablation.py`. Same saved "
             f"models for every row (seeds {', '.join(map(str, a.seeds))}); mean ± std over seeds.", "",
             "| k | predicted by | views | OA | mIoU | OA per seed |", "|---:|---|---:|---|---|---|"]
    for (k, name, views), rs in got.items():
        oa, miou = np.array([r["oa"] for r in rs]), np.array([r["miou"] for r in rs])
        lines.append(f"| {k} | {name} | {views} | {oa.mean():.3f} ± {oa.std(ddof=1):.3f} | "
                     f"{miou.mean():.3f} ± {miou.std(ddof=1):.3f} | {' / '.join(f'{v:.3f}' for v in oa)} |")
    ip.print_report(lines, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
