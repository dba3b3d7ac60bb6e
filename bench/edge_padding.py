"""What the context beyond a raster's edge does to a prediction: zeros (the engine before the change)
against the raster mirrored at its edge (engine.predict.mirrored, the engine now).

Re-predicts saved Indian Pines models (each run folder's ``model.semiseg``; by default the copies kept
in ``bench/data/indian_pines/runs_zero_pad/``, trained before the change) both ways with the engine's
own sliding-window code (same halo, same windows) and scores OA / mIoU on the run's evaluation pixels
(``truth_eval_k{k}_s{seed}.tif``). Indian Pines is 145 px square and the halo 64 px, so every pixel is
within reach of the border: the worst case, and the case of any small clip an analyst segments.

Usage (from the repository root)::

    .venv/bin/python bench/edge_padding.py --out bench/results/edge_padding_indian_pines.md
"""

from __future__ import annotations

import argparse
import datetime
import glob
import os
import re
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import indian_pines as ip  # noqa: E402

from engine import modelfile  # noqa: E402
from engine.predict import array_reader, core_windows, mirrored, pick_halo, run_windows  # noqa: E402
from engine.raster import open_image, read_normalised  # noqa: E402

RUN = re.compile(r"^(?P<label>.+)_fast_k(?P<k>\d+)_s(?P<seed>\d+)$")


def predict(nets, x: np.ndarray, valid: np.ndarray, mirror: bool) -> np.ndarray:
    _, h, w = x.shape
    inside = array_reader(x, valid)  # zeros and invalid beyond the raster (the engine before the change)
    read = mirrored(inside, h, w) if mirror else inside
    stride = nets[0].stride
    out = np.zeros((h, w), np.uint8)
    for (r, c, hh, ww), cls, _, v in run_windows(nets, read, core_windows(h, w, 512), pick_halo(stride),
                                                 stride, torch.device("cpu")):
        out[r:r + hh, c:c + ww] = np.where(v, cls, 0)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default=os.path.join(ip.WORK, "runs_zero_pad"),
                    help="folder of run folders named LABEL_fast_kK_sS with a model.semiseg")
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for run in sorted(glob.glob(os.path.join(a.runs, "*", "model.semiseg"))):
        m = RUN.match(os.path.basename(os.path.dirname(run)))
        if not m:
            continue
        k, seed = int(m["k"]), int(m["seed"])
        model = modelfile.load(run)
        nets = model.networks(torch.device("cpu"))
        with open_image(os.path.join(ip.WORK, "image.tif")) as ds:
            x, valid = read_normalised(ds, model.band_stats, 0, 0, ds.height, ds.width)
        truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_k{k}_s{seed}.tif"))
        got = [ip.scores(predict(nets, x, valid, mirror), truth, 16) for mirror in (False, True)]
        rows.append((m["label"], k, seed, got[0], got[1]))
        print(f"{m['label']} k={k} s={seed}: zeros OA {got[0]['oa']:.3f}, mirrored OA {got[1]['oa']:.3f}",
              flush=True)
    if not rows:
        raise SystemExit(f"No saved run (LABEL_fast_kK_sS/model.semiseg) under {a.runs}; point --runs at "
                         "a folder of benchmark runs (bench/data/indian_pines/runs after "
                         "bench/indian_pines.py).")
    lines = ["# Context beyond the raster's edge: zeros vs mirrored (Indian Pines, saved models)", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, `python bench/edge_padding.py`. Each saved model "
             "predicted twice with the engine's sliding windows (512-px cores, 64-px halo); OA / mIoU on "
             "the run's evaluation pixels.", "",
             "| run | k | seed | OA zeros | OA mirrored | mIoU zeros | mIoU mirrored |",
             "|---|---:|---:|---|---|---|---|"]
    for label, k, seed, z, mi in rows:
        lines.append(f"| {label} | {k} | {seed} | {z['oa']:.3f} | {mi['oa']:.3f} | {z['miou']:.3f} | "
                     f"{mi['miou']:.3f} |")
    lines += ["", "| run | k | mean OA zeros | mean OA mirrored | runs |", "|---|---:|---|---|---:|"]
    for label, k in dict.fromkeys((r[0], r[1]) for r in rows):
        sel = [r for r in rows if r[0] == label and r[1] == k]
        lines.append(f"| {label} | {k} | {np.mean([r[3]['oa'] for r in sel]):.3f} | "
                     f"{np.mean([r[4]['oa'] for r in sel]):.3f} | {len(sel)} |")
    ip.print_report(lines, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
