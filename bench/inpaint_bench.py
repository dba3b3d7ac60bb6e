"""Indian Pines benchmark of the inpainting method, pretraining once per seed (METHODS.md §2, §3).

Stage 1 uses no labels, so the image is pretrained once per seed — with the adversarial instructor
and, for the ablation, with random cell masks only — and every labeled draw (k, seed) fine-tunes from
the saved encoder file, exactly the ``pretrain`` → ``train --init`` flow an analyst uses. Same protocol
and scoring as bench/indian_pines.py (k labeled pixels per class drawn with ``RandomState(seed)``,
OA/mIoU on all remaining ground-truth pixels, ``--val-fraction 0``); the draw with seed s fine-tunes
from the encoder pretrained with seed s.

Rows: ``supervised`` (same network, same fine-tuning steps), ``inpaint`` (instructor encoder, CE + SSIM),
``inpaint [random masks]`` (``--no-instructor`` encoder), ``inpaint [instructor, own-mask context]`` (the
reference form of the instructor's objective, ``instructor_context="own"``), ``inpaint [CE only]``
(``--ssim-weight 0``), ``inpaint [first encoder level only]`` (``--transfer-levels 1``, the method's
default since it was measured here; every other row starts from the whole encoder, ``--transfer-levels
0``, unless it names fewer levels: ``inpaint [first two encoder levels]``, ...), ``inpaint [encoder
only]`` (``--decoder-transfer off``, the whole encoder: the method's default from when it was measured
here until the first level alone), ``inpaint [encoder and decoder]`` (``--decoder-transfer on``, the
default before; the ``inpaint`` rows of results from before that change), ``inpaint [random masks,
encoder only]``, ``inpaint [encoder LR x 0.1]`` (``--encoder-lr-scale 0.1``), ``inpaint [classifier alone
...]`` (``--head-warmup 0.25``: a linear probe over the frozen pretrained network before full
fine-tuning, with the instructor's or the random-mask encoder), ``inpaint [keeps restoring while
fine-tuning]`` (``--restore-weight 1``), ``inpaint [visible pixels weighted 0.5]`` (pretraining loss
weight 0.5 on erased and visible pixels alike, instead of 0.99 / 0.01), ``inpaint [whitened spectral
restoration loss]``, ``inpaint [3x the pretraining steps]`` (``--pretrain-steps 3600`` in the fast
preset) and ``inpaint+icnet``. Each job runs the engine's own pipeline functions in a worker process with
ONE torch thread; ``--jobs`` workers run side by side. On a shared, loaded CPU that is far faster than
one two-thread process, and it is the same for every row. Wall seconds: pretraining = the ``pretrain``
job; fine-tuning rows = ``pipeline.run`` (read, train, predict, write), in-process (no interpreter
start-up, unlike bench/indian_pines.py).

Usage (from the repository root)::

    .venv/bin/python bench/inpaint_bench.py --k 5 --seeds 0 1 2 --jobs 2 \
        --rows supervised,inpaint,inpaint-random,inpaint+icnet --out bench/results/inpaint_indian_pines.md

``--resume`` (default on) reuses finished jobs from the JSON next to ``--out``; encoders are kept in
``bench/data/indian_pines/encoders/``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing as mp
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import indian_pines as ip  # noqa: E402  (the shared protocol: data, label draws, scores)

ENCODERS = os.path.join(ip.WORK, "encoders")
ROWS = {  # label: (method, encoder variant or None, extra config)
    "supervised": ("supervised", None, {}),
    "inpaint": ("inpaint", "instructor", {}),
    "inpaint-random": ("inpaint", "random", {}),
    "inpaint-own": ("inpaint", "own", {}),
    "inpaint-visible": ("inpaint", "visible", {}),
    "inpaint-whiten": ("inpaint", "whiten", {}),
    "inpaint-long": ("inpaint", "long", {}),
    "inpaint-ce": ("inpaint", "instructor", {"ssim_weight": 0.0}),
    "inpaint-enc": ("inpaint", "instructor", {"transfer_decoder": False}),
    "inpaint-dec": ("inpaint", "instructor", {"transfer_decoder": True}),
    "inpaint-random-enc": ("inpaint", "random", {"transfer_decoder": False}),
    "inpaint-enc-1": ("inpaint", "instructor", {"transfer_levels": 1}),
    "inpaint-enc-2": ("inpaint", "instructor", {"transfer_levels": 2}),
    "inpaint-random-enc-1": ("inpaint", "random", {"transfer_levels": 1}),
    "inpaint-slow": ("inpaint", "instructor", {"encoder_lr_scale": 0.1}),
    "inpaint-probe": ("inpaint", "instructor", {"head_warmup": 0.25}),
    "inpaint-random-probe": ("inpaint", "random", {"head_warmup": 0.25}),
    "inpaint-restore": ("inpaint", "instructor", {"restore_weight": 1.0}),
    "inpaint-restore-0.1": ("inpaint", "instructor", {"restore_weight": 0.1}),
    "inpaint-restore-0.3": ("inpaint", "instructor", {"restore_weight": 0.3}),
    "inpaint-restore-3": ("inpaint", "instructor", {"restore_weight": 3.0}),
    "inpaint+icnet": ("inpaint+icnet", "instructor", {}),
}
LABELS = {"supervised": "supervised", "inpaint": "inpaint", "inpaint-random": "inpaint [random masks]",
          "inpaint-own": "inpaint [instructor, own-mask context]",
          "inpaint-ce": "inpaint [CE only]", "inpaint-enc": "inpaint [encoder only]",
          "inpaint-dec": "inpaint [encoder and decoder]",
          "inpaint-random-enc": "inpaint [random masks, encoder only]",
          "inpaint-enc-1": "inpaint [first encoder level only]",
          "inpaint-enc-2": "inpaint [first two encoder levels]",
          "inpaint-random-enc-1": "inpaint [random masks, first encoder level only]",
          "inpaint-slow": "inpaint [encoder LR x 0.1]",
          "inpaint-probe": "inpaint [classifier alone for the first 25 % of steps]",
          "inpaint-random-probe": "inpaint [random masks, classifier alone first 25 %]",
          "inpaint-visible": "inpaint [visible pixels weighted 0.5]",
          "inpaint-whiten": "inpaint [whitened spectral restoration loss]",
          "inpaint-long": "inpaint [3x the pretraining steps]",
          "inpaint-restore": "inpaint [keeps restoring while fine-tuning, weight 1]",
          "inpaint-restore-0.1": "inpaint [keeps restoring while fine-tuning, weight 0.1]",
          "inpaint-restore-0.3": "inpaint [keeps restoring while fine-tuning, weight 0.3]",
          "inpaint-restore-3": "inpaint [keeps restoring while fine-tuning, weight 3]",
          "inpaint+icnet": "inpaint+icnet"}


# pretraining variants: what each changes in InpaintConfig, and its name in tables
VARIANTS = {
    "instructor": ({}, "instructor masks"),
    "own": ({"instructor_context": "own"}, "own masks"),  # the reference form of the instructor's objective
    # restore the visible pixels as much as the erased ones (an autoencoder share)
    "visible": ({"erased_weight": 0.5}, "visible masks"),
    # restoration error on the bands' whitened principal components
    "whiten": ({"spectral_whitening": True}, "instructor masks, whitened spectral loss"),
    # the fast preset's schedule three times over (3600 inpainter steps instead of 1200)
    "long": ({"steps": 3600}, "instructor masks, 3x the steps"),
    "random": ({"instructor": False}, "random masks"),
}


def encoder_path(variant: str, seed: int, preset: str) -> str:
    return os.path.join(ENCODERS, f"ip_{variant}_{preset}_s{seed}.enc")


# ----------------------------------------------------------------------------------------- jobs
def _setup_worker() -> None:
    import torch

    torch.set_num_threads(1)


def job_pretrain(variant: str, seed: int, preset: str, debug_dir: str | None) -> dict:
    import torch

    from engine.config import make_config
    from engine.pretrain import pretrain
    from engine.progress import Reporter

    cfg = make_config(preset, seed=seed)
    for key, v in VARIANTS[variant][0].items():
        setattr(cfg.inpaint, key, v)
    cfg.inpaint.debug_dir = debug_dir or ""
    out = encoder_path(variant, seed, preset)
    t0 = time.perf_counter()
    metrics = pretrain(os.path.join(ip.WORK, "image.tif"), out, cfg, torch.device("cpu"), Reporter("none"))
    return {"ok": True, "wall_s": time.perf_counter() - t0, "metrics": metrics, "encoder": out}


def job_finetune(row: str, k: int, seed: int, preset: str) -> dict:
    import torch

    from engine import pipeline
    from engine.config import make_config
    from engine.progress import Reporter

    method, variant, extra = ROWS[row]
    cfg = make_config(preset, method=method, seed=seed, val_fraction=0.0)
    cfg.inpaint.transfer_levels = 0  # the whole encoder, as every row measured before the first level
    #                                  alone became the default (rows inpaint-enc-1, ... set it)
    if variant:
        cfg.inpaint.init = encoder_path(variant, seed, preset)
    for key, v in extra.items():
        setattr(cfg.inpaint, key, v)
    tag = f"k{k}_s{seed}"
    out_dir = os.path.join(ip.WORK, "runs", f"ib_{row}_{preset}_{tag}")
    t0 = time.perf_counter()
    labels = os.path.join(ip.WORK, f"labels_{tag}.tif")
    res = pipeline.run(os.path.join(ip.WORK, "image.tif"), labels, out_dir, cfg, torch.device("cpu"),
                       Reporter("none"), confidence=False, tta="off", smooth=False)
    wall = time.perf_counter() - t0
    pred = ip.read_prediction(res["paths"]["prediction"])
    truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_{tag}.tif"))
    rec = {"ok": True, "k": k, "seed": seed, "wall_s": wall,
           "train_seconds": res["metrics"].get("train_seconds")}
    rec.update(ip.scores(pred, truth, 16))
    ip.add_saved_model_scores(rec, res["paths"]["model"], truth, 16)  # 8 views, + smoothing, + labels held
    return rec


def run_job(job: dict) -> dict:
    try:
        if job["kind"] == "pretrain":
            out = job_pretrain(job["variant"], job["seed"], job["preset"], job.get("debug_dir"))
        else:
            out = job_finetune(job["row"], job["k"], job["seed"], job["preset"])
    except Exception as e:  # noqa: BLE001  (record the failure, keep the other jobs going)
        import traceback

        out = {"ok": False, "error": f"{type(e).__name__}: {e}", "trace": traceback.format_exc()[-2000:]}
    return {**job, **out}


def job_key(job: dict) -> str:
    if job["kind"] == "pretrain":
        return f"pretrain/{job['variant']}/{job['preset']}/s{job['seed']}"
    return f"run/{job['row']}/{job['preset']}/k{job['k']}/s{job['seed']}"


# ----------------------------------------------------------------------------------------- report
def _relative(value):
    """``value`` with every absolute path inside the repository made repository-relative."""
    if isinstance(value, dict):
        return {k: _relative(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative(v) for v in value]
    return ip.repo_relative(value) if isinstance(value, str) else value


def summary_table(records: list[dict], rows: list[str], ks: list[int]) -> list[str]:
    def ms(vals):
        v = np.array(vals, float)
        if not len(v):
            return "-"
        return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"

    lines = ["| method | k | OA | mIoU | OA, 8 views | mIoU, 8 views | OA, 8 views + smoothing | "
             "mIoU, 8 views + smoothing | OA, default (labels held) | mIoU, default | fine-tune wall s | "
             "runs |",
             "|---|---:|---|---|---|---|---|---|---|---|---:|---:|"]
    for k in ks:
        for row in rows:
            rs = [r for r in records if r["kind"] == "run" and r["row"] == row and r["k"] == k
                  and r.get("ok")]
            wall = f"{np.mean([r['wall_s'] for r in rs]):.0f}" if rs else "-"
            oa, miou = ms([r["oa"] for r in rs]), ms([r["miou"] for r in rs])
            cols = [ms([r[f"{m}_{sfx}"] for r in rs if f"oa_{sfx}" in r])
                    for sfx in ("tta", "smooth", "anchor") for m in ("oa", "miou")]
            lines.append(f"| {LABELS[row]} | {k} | {oa} | {miou} | {' | '.join(cols)} | {wall} | {len(rs)} |")
    pre = [r for r in records if r["kind"] == "pretrain" and r.get("ok")]
    if pre:
        lines += ["", "| pretraining | seeds | wall s (mean) | erased-structure ratio per round (seed 0) |",
                  "|---|---:|---:|---|"]
        for variant, (_, name) in VARIANTS.items():
            rs = [r for r in pre if r["variant"] == variant]
            if rs:
                ratio = next((r["metrics"].get("erased_structure_ratio") for r in rs if r["seed"] == 0), None)
                lines.append(f"| {name} | {len(rs)} | {np.mean([r['wall_s'] for r in rs]):.0f} | "
                             f"{ratio if ratio else '-'} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", default="supervised,inpaint,inpaint-random,inpaint+icnet",
                    help=f"comma-separated, from {', '.join(ROWS)}")
    ap.add_argument("--k", type=int, nargs="+", default=[5])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (one torch thread each)")
    ap.add_argument("--out", default=os.path.join("bench", "results", "inpaint_indian_pines.md"))
    ap.add_argument("--debug-dir", default=os.path.join(ip.WORK, "debug"),
                    help="rounds picture of the seed-0 instructor pretraining")
    ap.add_argument("--fresh", action="store_true", help="ignore finished jobs in the JSON")
    args = ap.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise SystemExit(f"unknown row(s) {unknown}; choose from {list(ROWS)}")

    image, gt = ip.load_data()
    os.makedirs(ip.WORK, exist_ok=True)
    os.makedirs(ENCODERS, exist_ok=True)
    ip.write_image(image, os.path.join(ip.WORK, "image.tif"))
    for k in args.k:
        for seed in args.seeds:
            labels = ip.draw_labels(gt, k, seed)
            tag = f"k{k}_s{seed}"
            ip.write_class_raster(os.path.join(ip.WORK, f"labels_{tag}.tif"), labels)
            ip.write_class_raster(os.path.join(ip.WORK, f"truth_eval_{tag}.tif"),
                                  np.where(labels > 0, 0, gt).astype(np.uint8))

    out_json = os.path.splitext(args.out)[0] + ".json"
    done: dict[str, dict] = {}
    if os.path.exists(out_json) and not args.fresh:
        with open(out_json) as f:
            done = {job_key(r): r for r in json.load(f)["records"] if r.get("ok")}

    variants = sorted({ROWS[r][1] for r in rows if ROWS[r][1]})
    pretrain_jobs = [{"kind": "pretrain", "variant": v, "seed": s, "preset": args.preset,
                      "debug_dir": args.debug_dir if (v == "instructor" and s == 0) else None}
                     for s in args.seeds for v in variants]
    run_jobs = [{"kind": "run", "row": r, "k": k, "seed": s, "preset": args.preset}
                for s in args.seeds for k in args.k for r in rows]
    records = list(done.values())
    for r in records:  # runs recorded before a column was added: score their saved model that way too
        if r["kind"] == "run" and not all(f"oa_{sfx}" in r for sfx in ("tta", "smooth", "anchor")):
            model = os.path.join(ip.WORK, "runs", f"ib_{r['row']}_{r['preset']}_k{r['k']}_s{r['seed']}",
                                 "model.semiseg")
            truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_k{r['k']}_s{r['seed']}.tif"))
            ip.add_saved_model_scores(r, model, truth, 16)

    command = " ".join(["python bench/inpaint_bench.py", *(sys.argv[1:] if argv is None else argv)])

    def save():
        meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": ip.machine(),
                "preset": args.preset, "jobs": args.jobs, "torch_threads_per_job": 1, "command": command}
        with open(out_json, "w") as f:  # the report names no machine paths
            json.dump({"meta": meta, "records": _relative(records)}, f, indent=1)
        md = ["# Indian Pines: inpainting pretraining (pretrain once per seed, then fine-tune)", "",
              f"Run {meta['date']} on {meta['machine']}; preset `{args.preset}`; {args.jobs} jobs in "
              "parallel, one torch thread each, on a CPU shared with other work (wall seconds are noisy). "
              "OA / mIoU: the run's prediction from one view per window, unsmoothed (`--tta off --smooth "
              "off`); 8 views: the same saved model predicted with test-time augmentation (`--tta on`, the "
              "engine's default on an image this small); 8 views + smoothing: also with edge-aware "
              "smoothing (`--smooth on`), what `predict` gives by default; default: the smoothing also "
              "holds the run's training labels at their class (`--anchor-labels on`), what `run` gives.",
              "",
              *summary_table(records, rows, args.k), "", f"Command: `{meta['command']}`", ""]
        with open(args.out, "w") as f:
            f.write("\n".join(md))

    ctx = mp.get_context("spawn")
    with ctx.Pool(args.jobs, initializer=_setup_worker) as pool:
        for phase in (pretrain_jobs, run_jobs):  # fine-tuning needs the encoders
            todo = [j for j in phase if job_key(j) not in done]
            for rec in pool.imap_unordered(run_job, todo):
                records.append(rec)
                msg = (f"OA {rec['oa']:.3f} mIoU {rec['miou']:.3f}" if rec.get("oa") is not None
                       else ("ok" if rec.get("ok") else f"FAILED {rec.get('error')}"))
                print(f"[{job_key(rec)}] {msg}  wall {rec.get('wall_s', 0):.0f}s", flush=True)
                save()
    save()
    with open(args.out) as f:
        print(f.read())
    return 0


if __name__ == "__main__":
    sys.exit(main())
