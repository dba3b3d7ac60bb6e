"""How far inpainting pretraining moves the encoder's weights from their random start (and fine-tuning
from the pretrained ones): per conv-BN layer, filter norms and directions.

A pretrained network whose filters grew (or shrank) fine-tunes at another speed than a fresh one: after
a batch norm a filter's scale does not change the function, but SGD's effective step on it shrinks with
its squared norm. This script measures whether that happens. It rebuilds the inpainter's random start
exactly as pretraining did (``torch.manual_seed(seed)`` then the network), loads the saved encoder
file, and for every convolution that feeds a batch norm reports the ratio of pretrained to initial
filter norms and the cosine between each pretrained filter and its own start. With ``--model``, the
fine-tuned segmentation network's encoder (a ``.semiseg`` file fine-tuned from that encoder) is compared
with the pretrained one the same way.

Usage (from the repository root; encoders from bench/inpaint_bench.py)::

    .venv/bin/python bench/encoder_drift.py \\
        --encoder bench/data/indian_pines/encoders/ip_instructor_fast_s0.enc --seed 0 \\
        --model bench/data/indian_pines/runs/ib_inpaint_fast_k5_s0/model.semiseg \\
        --out bench/results/encoder_drift_indian_pines.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

import torch
from torch import nn

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from engine.config import ModelConfig  # noqa: E402
from engine.modelfile import load as load_model  # noqa: E402
from engine.models import build_model  # noqa: E402
from engine.pretrain import load_encoder  # noqa: E402


def conv_bn_convs(module: nn.Module) -> list[tuple[str, nn.Conv2d]]:
    """(name, conv) of every convolution whose output goes straight into a batch norm."""
    mods = list(module.named_modules())
    return [(n, a) for (n, a), (_, b) in zip(mods, mods[1:], strict=False)
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)
            and a.out_channels == b.num_features]


def filters(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    return [(n, c.weight.detach().flatten(1).clone()) for n, c in conv_bn_convs(module)]


def compare(a: list, b: list) -> list[dict]:
    rows = []
    for (name, wa), (_, wb) in zip(a, b, strict=True):
        ratio = wb.norm(dim=1) / wa.norm(dim=1).clamp_min(1e-12)
        cos = torch.nn.functional.cosine_similarity(wa, wb, dim=1)
        rows.append({"layer": name, "filters": len(wa), "ratio": float(ratio.mean()),
                     "ratio_min": float(ratio.min()), "ratio_max": float(ratio.max()),
                     "cos": float(cos.mean())})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True, help=".enc file written by pretraining")
    ap.add_argument("--seed", type=int, required=True, help="the seed it was pretrained with")
    ap.add_argument("--model", default=None, help="a .semiseg model fine-tuned from that encoder")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    enc = load_encoder(args.encoder)
    cfg = ModelConfig.from_dict({**enc.model.to_dict(), "num_classes": enc.model.in_channels})
    if cfg.stem_init != "random":
        raise SystemExit(f"{args.encoder} started its stem on principal directions; this script rebuilds "
                         "only the random start")
    torch.manual_seed(args.seed)  # as InpaintingPretrainer builds its inpainter
    net = build_model(cfg, imagenet=True)
    start = filters(net.encoder) + filters(net.decoder)
    net.encoder.load_state_dict(enc.encoder)
    if enc.decoder:
        net.decoder.load_state_dict(enc.decoder)
    pre = filters(net.encoder) + (filters(net.decoder) if enc.decoder else [])
    drift = compare(start[:len(pre)], pre)
    tuned = None
    if args.model:
        seg = load_model(args.model).networks(torch.device("cpu"))[0]
        tuned = compare(pre, filters(seg.encoder) + (filters(seg.decoder) if enc.decoder else []))

    head = "| layer | filters | norm pretrained / start (mean, min–max) | cos(pretrained, start) |"
    sep = "|---|---:|---|---:|"
    if tuned:
        head += " norm fine-tuned / pretrained | cos(fine-tuned, pretrained) |"
        sep += "---|---:|"
    lines = [f"# Encoder drift: `{os.path.basename(args.encoder)}`", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, `python bench/encoder_drift.py --encoder "
             f"{os.path.relpath(args.encoder, REPO)} --seed {args.seed}"
             + (f" --model {os.path.relpath(args.model, REPO)}" if args.model else "") + "`", "", head, sep]
    for i, r in enumerate(drift):
        cells = (f"| {r['layer']} | {r['filters']} | {r['ratio']:.2f} "
                 f"({r['ratio_min']:.2f}–{r['ratio_max']:.2f}) | {r['cos']:.3f} |")
        if tuned:
            t = tuned[i]
            cells += f" {t['ratio']:.2f} ({t['ratio_min']:.2f}–{t['ratio_max']:.2f}) | {t['cos']:.3f} |"
        lines.append(cells)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
