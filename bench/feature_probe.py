"""Linear probe of frozen network features on Indian Pines: how much class information does the
inpainting pretraining put into the segmentation network before any fine-tuning?

For each seed s and labeled draw k (the benchmark's own draws, bench/indian_pines.py), a logistic
regression is fitted on the k labeled pixels per class and scored (OA) on all remaining ground-truth
pixels, with as features:

* the raw normalised bands (what the random forest sees);
* the decoder features (SegNet.features, before the 1×1 classifier) of a randomly initialised network
  — the supervised baseline's start;
* the same features after loading a pretrained encoder + decoder
  (``bench/data/indian_pines/encoders/ip_{VARIANT}_fast_s{s}.enc``, written by bench/inpaint_bench.py,
  one per pretraining variant there; missing ones are skipped).

The report also gives the share of the band variance held by the leading principal components of the
restoration target (what the plain L2 of the inpainting pretraining weighs; ``--spectral-whitening``).

Networks run in eval mode on the whole 145×145 image (padded to the network stride). Features are
standardised per channel. Seconds per seed on one core.

Usage (from the repository root)::

    .venv/bin/python bench/feature_probe.py --k 5 --seeds 0 1 2 \\
        --out bench/results/feature_probe_indian_pines.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import numpy as np
import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import indian_pines as ip  # noqa: E402
from inpaint_bench import VARIANTS  # noqa: E402

from engine.config import ModelConfig  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.pretrain import load_encoder, load_pretrained  # noqa: E402
from engine.raster import open_image, read_normalised  # noqa: E402


def probe_oa(features: np.ndarray, labels: np.ndarray, truth: np.ndarray, seed: int) -> float:
    """OA of a logistic regression fitted on the labeled pixels of (C, H, W) ``features``."""
    from sklearn.linear_model import LogisticRegression  # noqa: PLC0415

    f = features.reshape(features.shape[0], -1).T.astype(np.float64)
    f = (f - f.mean(0)) / (f.std(0) + 1e-6)
    train, test = labels.ravel() > 0, truth.ravel() > 0
    clf = LogisticRegression(max_iter=3000, random_state=seed).fit(f[train], labels.ravel()[train])
    return float((clf.predict(f[test]) == truth.ravel()[test]).mean())


@torch.no_grad()
def decoder_features(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    net.eval()
    h, w = x.shape[1:]
    side = lambda n: -(-n // net.stride) * net.stride  # noqa: E731
    xp = torch.nn.functional.pad(torch.from_numpy(x)[None], (0, side(w) - w, 0, side(h) - h))
    return net.features(xp)[0, :, :h, :w].numpy()


def probe_seed(k: int, seed: int) -> dict:
    encoders = {kind: os.path.join(ip.WORK, "encoders", f"ip_{kind}_fast_s{seed}.enc") for kind in VARIANTS}
    encoders = {kind: p for kind, p in encoders.items() if os.path.exists(p)}
    if not encoders:
        raise SystemExit(f"no pretrained encoder for seed {seed}; run bench/inpaint_bench.py first")
    first = load_encoder(next(iter(encoders.values())))
    with open_image(os.path.join(ip.WORK, "image.tif")) as ds:
        x, _ = read_normalised(ds, first.band_stats, 0, 0, ds.height, ds.width)
    labels = ip.read_prediction(os.path.join(ip.WORK, f"labels_k{k}_s{seed}.tif"))
    truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_k{k}_s{seed}.tif"))
    cfg = ModelConfig.from_dict({**first.model.to_dict(), "num_classes": 16})
    row = {"raw bands": probe_oa(x, labels, truth, seed)}
    torch.manual_seed(seed)
    row["random init"] = probe_oa(decoder_features(build_model(cfg), x), labels, truth, seed)
    for kind, path in encoders.items():
        torch.manual_seed(seed)
        net = build_model(cfg)
        load_pretrained(net, load_encoder(path))
        row[f"pretrained ({VARIANTS[kind][1]})"] = probe_oa(decoder_features(net, x), labels, truth, seed)
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default=None, help="markdown report (also printed)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = {s: probe_seed(a.k, s) for s in a.seeds}
    names = list(dict.fromkeys(n for r in rows.values() for n in r))
    lines = [f"# Linear probe of frozen features, Indian Pines k = {a.k}",
             "", f"{datetime.datetime.now():%Y-%m-%d %H:%M}, `python bench/feature_probe.py --k {a.k} "
             f"--seeds {' '.join(map(str, a.seeds))}`. OA of a logistic regression fitted on the labeled "
             "pixels, scored on all remaining ground-truth pixels.", "",
             "| features | " + " | ".join(f"seed {s}" for s in a.seeds) + " | mean |",
             "|---|" + "---|" * (len(a.seeds) + 1)]
    for n in names:
        vals = [rows[s].get(n) for s in a.seeds]
        got = [v for v in vals if v is not None]
        lines.append(f"| {n} | " + " | ".join("–" if v is None else f"{v:.3f}" for v in vals)
                     + f" | {np.mean(got):.3f} |")
    shares = " / ".join(f"{v:.3f}" for v in variance_shares()[:5])
    lines += ["", "Share of the band variance of the restoration target (2 × normalised − 1, all valid "
              f"pixels) per principal component, leading five: {shares}"]
    ip.print_report(lines, a.out)
    return 0


def variance_shares() -> np.ndarray:
    """Eigenvalues of the band covariance of the restoration target, as shares of their sum, largest first."""
    from engine.inpainting import restoration_target  # noqa: PLC0415

    first = load_encoder(next(p for p in (os.path.join(ip.WORK, "encoders", f"ip_{v}_fast_s0.enc")
                                          for v in VARIANTS) if os.path.exists(p)))
    with open_image(os.path.join(ip.WORK, "image.tif")) as ds:
        x, valid = read_normalised(ds, first.band_stats, 0, 0, ds.height, ds.width)
    t = restoration_target(torch.from_numpy(x)).numpy().reshape(x.shape[0], -1)[:, valid.ravel()]
    lam = np.linalg.eigvalsh(np.cov(t.astype(np.float64)))[::-1]
    return lam / lam.sum()


if __name__ == "__main__":
    sys.exit(main())
