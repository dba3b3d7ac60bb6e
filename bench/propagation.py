"""How much of the default map is the network's: label propagation alone, on Indian Pines.

``run``'s default output smooths the network's class probabilities edge-aware and holds the training
labels at their class throughout (engine.smooth), which also propagates the labels to alike
neighbouring pixels. This script scores, on the evaluation pixels of the benchmark's label draws
(bench/indian_pines.py), what that smoothing gives with no network at all -- every pixel starts
from equal class probabilities, so only the held labels move it -- next to:

* ``rf + smoothing``: the random-forest baseline's class probabilities (500 trees, as in the benchmark)
  smoothed the same way, holding the same labels;
* saved engine models (``--models LABEL:K:SEED=MODEL``, e.g. the ``model.semiseg`` of benchmark runs):
  one view, and the default output (8 views + smoothing holding the labels); with ``--label-weights``
  also the default output with each held label counting several times (an experiment, not an engine
  option).

Usage (from the repository root)::

    .venv/bin/python bench/propagation.py --k 5 10 --seeds 0 1 2 3 4 \
        --models "supervised:5:0=bench/data/indian_pines/runs/ib_supervised_fast_k5_s0/model.semiseg" ... \
        --out bench/results/propagation_indian_pines.md

Labels and evaluation truths are those bench/indian_pines.py wrote into ``bench/data/indian_pines/``
(a draw it has not run yet is drawn and written here the same way). One torch thread.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import sys
import time

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import indian_pines as ip  # noqa: E402
from smoothing import write_report  # noqa: E402

from engine import modelfile, smooth  # noqa: E402
from engine.labels import LabelPatches  # noqa: E402
from engine.predict import array_reader, predict_array, smoothing_for  # noqa: E402
from engine.raster import compute_band_stats, open_image, read_normalised  # noqa: E402


class PerPixel(torch.nn.Module):
    """A stand-in network whose class probabilities at a pixel are ``probs(values)`` of that pixel's
    normalised band values alone ((N, C) -> (N, K)); ``probs=None``: equal probabilities for every
    class, which leaves the map to the held labels (label propagation alone)."""

    stride = 16
    channels_last = False

    def __init__(self, classes: int, probs=None):
        super().__init__()
        self.classes, self.probs = classes, probs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.probs is None:
            return torch.zeros((b, self.classes, h, w))
        flat = x.permute(0, 2, 3, 1).reshape(-1, c).numpy()
        p = torch.from_numpy(np.asarray(self.probs(flat), np.float32)).clamp_min(1e-6)
        return p.log().reshape(b, h, w, self.classes).permute(0, 3, 1, 2)


@contextlib.contextmanager
def held_label_weight(w: float):
    """An experiment, not an engine option: while active, the smoothing holds each labeled pixel at
    ``w`` times its class's one-hot vector instead of once, so in every round a held label counts as
    ``w`` neighbours of its class (engine.smooth._anchoring, wrapped)."""
    plain = smooth._anchoring

    def weighted(anchors, valid, classes, device):
        fix = plain(anchors, valid, classes, device)
        if anchors is None or w == 1:
            return fix
        a = anchors.to(device=device, dtype=torch.long)

        def fix_weighted(q, box):
            q = fix(q, box)
            return torch.where(a[box[0]:box[2], box[1]:box[3]] > 0, q * w, q)

        return fix_weighted

    smooth._anchoring = weighted
    try:
        yield
    finally:
        smooth._anchoring = plain


def default_and_one_view(nets, x, valid, labels, truth, k_classes, weights=()) -> dict:
    cpu = torch.device("cpu")
    smoothing = smoothing_for(array_reader(x, valid), *valid.shape, True)
    held = LabelPatches.from_array(labels)
    one, _ = predict_array(nets, x, valid, cpu, core=512)
    default, _ = predict_array(nets, x, valid, cpu, core=512, views=8, smooth=smoothing, anchors=held)
    out = {"one view": ip.scores(one, truth, k_classes), "default": ip.scores(default, truth, k_classes)}
    for w in weights:
        with held_label_weight(w):
            cls, _ = predict_array(nets, x, valid, cpu, core=512, views=8, smooth=smoothing, anchors=held)
        out[f"default, labels weighted {w:g}"] = ip.scores(cls, truth, k_classes)
    return out


def rf_probabilities(x: np.ndarray, labels: np.ndarray, classes: int, seed: int):
    """The benchmark's random forest (500 trees) on the labeled pixels' normalised band values, as a
    function of band values -> probabilities of classes 1..K (a class without labels gets 0)."""
    from sklearn.ensemble import RandomForestClassifier

    m = labels > 0
    rf = RandomForestClassifier(n_estimators=500, n_jobs=1, random_state=seed)
    rf.fit(x[:, m].T, labels[m])

    def probs(values: np.ndarray) -> np.ndarray:
        out = np.zeros((len(values), classes), np.float32)
        out[:, rf.classes_ - 1] = rf.predict_proba(values)
        return out

    return probs


def draw(k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The labels and evaluation truth of draw (k, seed), as bench/indian_pines.py writes them."""
    lab, ev = ip.labels_path(k, seed), os.path.join(ip.WORK, f"truth_eval_k{k}_s{seed}.tif")
    if not (os.path.exists(lab) and os.path.exists(ev)):
        _, gt = ip.load_data()
        labels = ip.draw_labels(gt, k, seed)
        ip.write_class_raster(lab, labels)
        ip.write_class_raster(ev, np.where(labels > 0, 0, gt).astype(np.uint8))
    return ip.read_prediction(lab), ip.read_prediction(ev)


def scribble_scene(seed: int, size: int) -> tuple[str, np.ndarray, np.ndarray, int]:
    """The 4-band synthetic scene of bench/anchor_labels.py (fields, roads, buildings; a few scribbles
    per class): its image path, labels, truth without the labeled pixels, and class count."""
    from engine.synthetic import write_scene

    work = os.path.join(REPO, "bench", "data", "anchor_labels", f"scene_{size}_s{seed}")
    os.makedirs(work, exist_ok=True)
    scene = write_scene(work, size, size, bands=4, classes=4, seed=seed)
    labels, truth = ip.read_prediction(scene["labels"]), ip.read_prediction(scene["truth"])
    return scene["image"], labels, np.where(labels > 0, 0, truth), 4


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, nargs="*", default=[5, 10],
                    help="label draws scored without a network (none: only --models)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--models", nargs="*", default=[], metavar="LABEL:K:SEED=MODEL")
    ap.add_argument("--label-weights", type=float, nargs="*", default=[],
                    help="also score the models' default output with each held label counting this many "
                         "times (an experiment: held_label_weight)")
    ap.add_argument("--scribble-scenes", type=int, nargs="*", default=[], metavar="SEED",
                    help="also the synthetic scenes of bench/anchor_labels.py with these seeds (scribbles)")
    ap.add_argument("--scene-size", type=int, default=1024)
    ap.add_argument("--no-rf", action="store_true", help="leave out the rf + smoothing rows")
    ap.add_argument("--out", default=os.path.join("bench", "results", "propagation_indian_pines.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ip.fetch_data()
    image_path = os.path.join(ip.WORK, "image.tif")
    if not os.path.exists(image_path):
        ip.write_image(ip.load_data()[0], image_path)
    classes = len(ip.CLASS_NAMES)
    rows = []

    def add(label, k, seed, res, seconds):
        for output, sc in res.items():
            rows.append({"row": label, "k": k, "seed": seed, "output": output, "oa": sc["oa"],
                         "miou": sc["miou"], "seconds": seconds})
            print(json.dumps(rows[-1]), flush=True)

    def baselines(where, k, seed, path, labels, truth, classes):
        with open_image(path) as ds:
            stats = compute_band_stats(ds, path, seed=seed)
            x, valid = read_normalised(ds, stats, 0, 0, ds.height, ds.width)
        t0 = time.perf_counter()
        res = default_and_one_view([PerPixel(classes)], x, valid, labels, truth, classes)
        add(f"label propagation alone{where}", k, seed, {"default": res["default"]}, time.perf_counter() - t0)
        if not args.no_rf:
            t0 = time.perf_counter()
            rf = PerPixel(classes, rf_probabilities(x, labels, classes, seed))
            res = default_and_one_view([rf], x, valid, labels, truth, classes)
            add(f"rf + smoothing{where}", k, seed, res, time.perf_counter() - t0)

    for k in args.k:
        for seed in args.seeds:
            baselines("", k, seed, image_path, *draw(k, seed), classes)
    for seed in args.scribble_scenes:
        path, labels, truth, n = scribble_scene(seed, args.scene_size)
        baselines(f", {args.scene_size}² scribble scene", "-", seed, path, labels, truth, n)
    for item in args.models:
        spec, path = item.split("=", 1)
        label, k, seed = spec.rsplit(":", 2)
        k, seed = int(k), int(seed)
        labels, truth = draw(k, seed)
        model = modelfile.load(path)
        with open_image(image_path) as ds:
            x, valid = read_normalised(ds, model.band_stats, 0, 0, ds.height, ds.width)
        t0 = time.perf_counter()
        res = default_and_one_view(model.networks(torch.device("cpu")), x, valid, labels, truth, classes,
                                   args.label_weights)
        add(label, k, seed, res, time.perf_counter() - t0)

    lines = ["# How much of the default map is the network's (Indian Pines)", "",
             f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {ip.machine()}; one torch thread.", "",
             "OA / mIoU on the evaluation pixels (the draw's labels left out). *default* = 8 views + "
             "edge-aware smoothing holding the draw's labels at their class (what `run` writes); "
             "*label propagation alone* = the same smoothing from equal class probabilities (no network); "
             "*labels weighted w*: each held "
             "label counts w times in every smoothing round.", "",
             "| row | k | output | OA mean ± sd | mIoU mean | per seed OA |", "|---|---:|---|---|---:|---|"]
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["row"], r["k"], r["output"]), []).append(r)
    order = list(groups)
    for (label, k, output), rs in sorted(groups.items(), key=lambda g: (g[0][1] if isinstance(g[0][1], int)
                                                                        else 10**6, order.index(g[0]))):
        oa = np.array([r["oa"] for r in rs])
        sd = f"{oa.std(ddof=1):.3f}" if len(oa) > 1 else "-"
        per = " / ".join(f"{r['oa']:.3f}" for r in sorted(rs, key=lambda r: r["seed"]))
        seeds = ",".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"]))
        lines.append(f"| {label} | {k} | {output} | {oa.mean():.3f} ± {sd} | "
                     f"{np.mean([r['miou'] for r in rs]):.3f} | {per} (seeds {seeds}) |")
    lines += ["", "Command: `python bench/propagation.py " + " ".join(argv or sys.argv[1:]) + "`"]
    write_report(args.out, lines, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
