"""Channels-last memory format on the CPU: the networks' speed, and what prediction gives.

PyTorch's CPU convolutions (oneDNN) run faster on channels-last (NHWC) tensors. This script measures, on
one core with one torch thread, default (NCHW) against channels-last weights, interleaved:

1. a forward pass of the segmentation network (batch 2 of 640 x 640 px windows: what prediction runs)
   and one training step (forward, backward, SGD; the preset's batch and tile) for the fast preset with 4
   and 200 bands and the balanced preset with 4 bands;
2. ``engine.predict.predict_file`` on the bundled sample (or ``--image``) with a model trained by
   ``make demo`` (``out/demo/model.semiseg``; one view, without and with smoothing) as the engine runs
   it (channels-last networks on a CPU, ``SavedModel.networks``) against NCHW networks, and whether the
   two class maps are identical and how far the confidences differ.

Usage (from the repository root, after ``make demo``)::

    .venv/bin/python bench/channels_last.py --out bench/results/channels_last.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import statistics
import sys
import tempfile
import time

import numpy as np
from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def network_rows(repeats: int) -> list[dict]:
    import torch

    from engine.config import make_config
    from engine.models import build_model

    rows = []
    for preset, bands in (("fast", 4), ("fast", 200), ("balanced", 4)):
        cfg = make_config(preset)
        cfg.model.set_bands(bands)
        cfg.model.num_classes = 5
        times = {}
        for fmt in ("default", "channels_last") * 2:
            torch.manual_seed(0)
            net = build_model(cfg.model)
            x = torch.randn(2, bands, 640, 640)
            xb = torch.randn(cfg.batch_size, bands, cfg.tile_size, cfg.tile_size)
            # channels-last: weights once, and every batch as it arrives (its copy is timed)
            layout = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
            net = net.to(memory_format=layout)

            def forward(net=net, x=x, layout=layout):
                with torch.inference_mode():
                    net.eval()(x.contiguous(memory_format=layout))

            yb = torch.randint(0, 5, (cfg.batch_size, cfg.tile_size, cfg.tile_size))
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)

            def step(net=net, xb=xb, yb=yb, opt=opt, layout=layout):
                net.train()
                loss = torch.nn.functional.cross_entropy(net(xb.contiguous(memory_format=layout)), yb)
                opt.zero_grad()
                loss.backward()
                opt.step()

            t = times.setdefault(fmt, {"forward": [], "train step": []})
            t["forward"] += timed(forward, repeats)
            t["train step"] += timed(step, repeats)
        for what in ("forward", "train step"):
            d, c = (statistics.median(times[f][what]) for f in ("default", "channels_last"))
            rows.append({"case": f"{what}, {preset}, {bands} bands", "default_s": d, "channels_last_s": c})
            print(rows[-1], flush=True)
    return rows


def predict_rows(model_path: str, image: str, repeats: int) -> list[dict]:
    import rasterio
    import torch

    from engine import modelfile
    from engine.predict import predict_file

    model = modelfile.load(model_path)
    networks = modelfile.SavedModel.networks
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for smooth in (False, True):
            times, maps = {}, {}
            for _ in range(repeats):
                for fmt in ("default", "channels_last"):
                    def nets(self, device, fmt=fmt):
                        out = networks(self, device)  # the engine's: channels-last on a CPU
                        if fmt == "default":  # as before: NCHW weights and windows
                            for n in out:
                                n.to(memory_format=torch.contiguous_format).channels_last = False
                        return out

                    modelfile.SavedModel.networks = nets
                    out, conf = os.path.join(tmp, f"{fmt}.tif"), os.path.join(tmp, f"{fmt}_conf.tif")
                    t0 = time.perf_counter()
                    predict_file(model, image, out, conf, torch.device("cpu"), tta="off", smooth=smooth)
                    times.setdefault(fmt, []).append(time.perf_counter() - t0)
                    with rasterio.open(out) as a, rasterio.open(conf) as b:
                        maps[fmt] = (a.read(1), b.read(1))
            modelfile.SavedModel.networks = networks
            (ca, fa), (cb, fb) = maps["default"], maps["channels_last"]
            with rasterio.open(image) as ds:
                size = f"{ds.width}×{ds.height}"
            label = (f"predict_file, {os.path.basename(image)} {size}, one view, "
                     f"smoothing {'on' if smooth else 'off'}")
            rows.append({"case": label,
                         "default_s": statistics.median(times["default"]),
                         "channels_last_s": statistics.median(times["channels_last"]),
                         "pixels_differing": int((ca != cb).sum()),
                         "max_confidence_diff": float(np.abs(fa - fb).max())})
            print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--model", default=os.path.join(REPO, "out", "demo", "model.semiseg"))
    ap.add_argument("--image", default=os.path.join(REPO, "resources", "sample", "landsat_rgb.tif"))
    ap.add_argument("--out", default=os.path.join("bench", "results", "channels_last.md"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = network_rows(args.repeats)
    if os.path.exists(args.model):
        rows += predict_rows(args.model, args.image, args.repeats)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    lines = ["# Channels-last on the CPU: network speed and prediction", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}, torch {torch.__version__}, one thread. "
             f"Median seconds of {args.repeats} runs per format (network rows: twice that, two interleaved "
             "rounds).", "",
             "| case | default s | channels-last s | speed-up | class pixels differing | max conf. diff |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        extra = (f"{r['pixels_differing']} | {r['max_confidence_diff']:.1e}" if "pixels_differing" in r
                 else "– | –")
        lines.append(f"| {r['case']} | {r['default_s']:.3f} | {r['channels_last_s']:.3f} | "
                     f"{r['default_s'] / r['channels_last_s']:.2f}× | {extra} |")
    lines += ["", f"Command: `{cmd}`"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "rows": rows})


if __name__ == "__main__":
    main()
