"""A saved weight average's batch-norm statistics: as trained (averaged like the weights) or afresh.

For each saved Indian Pines model (``--models``, e.g. the ``model.semiseg`` of supervised runs made by
``bench/indian_pines.py``), scores the default output (8 views + edge-aware smoothing holding the
training labels, what ``run`` writes) and the one-view map on the evaluation pixels four ways, with the
same weights:

* ``as saved``: the statistics in the file (for the supervised network: its own, averaged like the
  weights over its last ~100 steps);
* ``unlabeled tiles``: estimated afresh (engine.ema.refresh_statistics) from 8 batches of 8 tiles
  anywhere in the image, as ICNet's teachers are;
* ``labeled tiles``: from 8 batches of labeled tiles (flips and turns), the tiles the network trained on;
* ``labeled tiles, jittered``: the same with the band jitter of its training.

Usage (from the repository root)::

    .venv/bin/python bench/average_statistics.py --k 5 \
        --models 0=bench/data/indian_pines/runs/supervised_fast_k5_s0/model.semiseg 1=... \
        --out bench/results/average_statistics_indian_pines.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import indian_pines as ip  # noqa: E402
from smoothing import write_report  # noqa: E402

from engine import modelfile  # noqa: E402
from engine.augment import band_jitter, random_dihedral  # noqa: E402
from engine.data import Chip, TileSampler  # noqa: E402
from engine.ema import refresh_statistics  # noqa: E402
from engine.labels import LabelPatches  # noqa: E402
from engine.predict import array_reader, predict_array, smoothing_for  # noqa: E402
from engine.raster import open_image, read_normalised  # noqa: E402

WAYS = ("as saved", "unlabeled tiles", "labeled tiles", "labeled tiles, jittered")


def score_model(path: str, k: int, seed: int, tile: int = 96, batch: int = 8) -> dict:
    cpu = torch.device("cpu")
    model = modelfile.load(path)
    with open_image(os.path.join(ip.WORK, "image.tif")) as ds:
        x, valid = read_normalised(ds, model.band_stats, 0, 0, ds.height, ds.width)
    labels = ip.read_prediction(ip.labels_path(k, seed))
    truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_k{k}_s{seed}.tif"))
    chip = Chip(0, 0, x, valid, labels.copy(), np.zeros_like(labels))
    chip.index()
    smoothing = smoothing_for(array_reader(x, valid), *valid.shape, True)
    held = LabelPatches.from_array(labels)
    m = truth > 0

    def oa(cls):
        return float((cls[m] == truth[m]).mean())

    def scores(nets):
        default, _ = predict_array(nets, x, valid, cpu, core=512, views=8, smooth=smoothing, anchors=held)
        one, _ = predict_array(nets, x, valid, cpu, core=512)
        return {"default": oa(default), "one view": oa(one)}

    nets = model.networks(cpu)
    out = {"as saved": scores(nets)}
    gen = torch.Generator().manual_seed(seed)
    for way in WAYS[1:]:
        sampler = TileSampler([chip], tile, seed + 65_537)
        batches = []
        for _ in range(8):
            if way == "unlabeled tiles":
                batches.append(torch.from_numpy(sampler.unlabeled(batch)[0]))
                continue
            xb, yb = (torch.from_numpy(a) for a in sampler.labeled(batch))
            xb, _ = random_dihedral(xb, yb, generator=gen)
            batches.append(band_jitter(xb, generator=gen) if way.endswith("jittered") else xb)
        for net in nets:
            refresh_statistics(net, batches)
        out[way] = scores(nets)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--models", nargs="+", required=True, metavar="SEED=MODEL")
    ap.add_argument("--out", default=os.path.join("bench", "results", "average_statistics_indian_pines.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    for item in args.models:
        seed, path = item.split("=", 1)
        rows.append({"seed": int(seed), "model": path, **score_model(path, args.k, int(seed))})
        print(json.dumps(rows[-1]), flush=True)
    lines = [f"# A weight average's batch-norm statistics (Indian Pines, k = {args.k})", "",
             "OA on the evaluation pixels (training pixels left out), same weights; default = 8 views + "
             "smoothing holding the training labels (what `run` writes).", "",
             "| seed | " + " | ".join(f"{w}: default / one view" for w in WAYS) + " |",
             "|---:|" + "---|" * len(WAYS)]
    for r in rows:
        lines.append(f"| {r['seed']} | " + " | ".join(f"{r[w]['default']:.4f} / {r[w]['one view']:.4f}"
                                                     for w in WAYS) + " |")
    means = [" / ".join(f"{np.mean([r[w][v] for r in rows]):.4f}" for v in ("default", "one view"))
             for w in WAYS]
    lines += ["| mean | " + " | ".join(means) + " |", "",
              "Command: `python bench/average_statistics.py " + " ".join(argv or sys.argv[1:]) + "`"]
    write_report(args.out, lines, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
