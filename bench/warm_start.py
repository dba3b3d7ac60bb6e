"""Warm start: after painting more labels, continue from the last model instead of training afresh.

The analyst's loop is paint, train, look, paint more. On Indian Pines the k = 5 labels of a seed are a
subset of its k = 10 labels (``draw_labels`` takes the first k of one permutation per class), so "paint
five more pixels per class" is exactly k = 5 -> k = 10. For each method and seed this script trains
``engine run --warm-start <the saved k = 5 model> --labels <k = 10 labels> --steps N`` (``--steps``: 200,
half the fast preset's steps, what a warm start trains by default; 100 for a quarter) and scores it as
the main table does (8 views + smoothing holding the k = 10 labels; OA on all remaining ground-truth
pixels), beside

* the fresh k = 10 model of the same method and seed (the saved run of the main table, full schedule),
  predicted again the same way, and
* the k = 5 model itself, predicted holding the k = 10 labels (what the new labels give without any
  training).

Training seconds are the engine's own ``train_seconds`` (one torch thread per run).

Usage (from the repository root, after the main table's runs exist in bench/data/indian_pines/runs)::

    .venv/bin/python bench/warm_start.py --jobs 2 --out bench/results/warm_start_indian_pines.md
    .venv/bin/python bench/warm_start.py --jobs 2 --steps 100 \
        --out bench/results/warm_start_100_indian_pines.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import shlex
import statistics
import sys

import indian_pines as ip
from smoothing import write_report

REPO = ip.REPO
sys.path.insert(0, REPO)
RUNS = os.path.join(ip.WORK, "runs")
# method -> the main table's run folder name for k and seed
SAVED = {"supervised": "supervised_fast_k{k}_s{seed}", "icnet": "icnet_fast_k{k}_s{seed}",
         "inpaint": "ib_inpaint_fast_k{k}_s{seed}", "inpaint+icnet": "ib_inpaint+icnet_fast_k{k}_s{seed}"}


def source_dir(method: str, seed: int, ks: list[int], steps: int) -> str:
    """The run the warm start of the last step of ``ks`` (e.g. [5, 10, 15]) starts from: the main
    table's fresh model of ``ks[0]`` for one step, else the warm run of the steps before."""
    if len(ks) == 2:
        return os.path.join(RUNS, SAVED[method].format(k=ks[0], seed=seed))
    return warm_dir(method, seed, ks[:-1], steps)


def warm_dir(method: str, seed: int, ks: list[int], steps: int) -> str:
    return os.path.join(RUNS, f"warm_{method}_fast_k{'to'.join(map(str, ks))}_{steps}steps_s{seed}")


def warm_run(method: str, seed: int, python: str, again: bool, steps: int, ks: list[int]) -> dict:
    """The warm-started run of ``method`` and ``seed`` for ``steps`` steps along ``ks``: trained now, or
    (unless ``again``) the finished run already in its folder."""
    source = os.path.join(source_dir(method, seed, ks, steps), "model.semiseg")
    out_dir = warm_dir(method, seed, ks, steps)
    model, metrics = os.path.join(out_dir, "model.semiseg"), os.path.join(out_dir, "metrics.json")
    if again or not (os.path.exists(model) and os.path.exists(metrics)):
        os.makedirs(out_dir, exist_ok=True)
        cmd = ip.engine_cmd(python, method, "fast", seed, os.path.join(ip.WORK, "image.tif"),
                            ip.labels_path(ks[-1], seed), out_dir,
                            ["--warm-start", source, "--steps", str(steps)])
        rec = ip.run_engine(cmd, out_dir, None, threads=1)
        if not rec["ok"]:
            raise RuntimeError(f"{method} seed {seed}: {rec.get('error_tail', '')[-500:]}")
    with open(metrics) as f:
        m = json.load(f)
    return {"method": method, "seed": seed, "model": model, "train_s": m["train_seconds"],
            "steps": m["steps"]}


def score(model: str, seed: int, k: int, truth_eval, n_classes: int) -> dict:
    cls = ip.predict_saved(model, 8, smooth=True, anchors=ip.labels_path(k, seed))
    one = ip.predict_saved(model, 1)
    return {"oa": ip.scores(cls, truth_eval, n_classes)["oa"],
            "oa_1view": ip.scores(one, truth_eval, n_classes)["oa"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="supervised,icnet,inpaint,inpaint+icnet")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--again", action="store_true", help="train the warm runs again even where they exist")
    ap.add_argument("--steps", type=int, default=200,
                    help="warm runs' steps (default 200: half the fast preset's, the engine's default)")
    ap.add_argument("--ks", type=int, nargs="+", default=[5, 10],
                    help="labels per class along the loop: 5 10 (one warm start from the main table's k = 5 "
                         "model) or 5 10 15 (a second one, from that warm run; needs fresh k = 15 runs)")
    ap.add_argument("--out", default=os.path.join("bench", "results", "warm_start_indian_pines.md"))
    args = ap.parse_args()
    methods = args.methods.split(",")
    ks, k, before = args.ks, args.ks[-1], args.ks[-2]
    image, gt = ip.load_data()
    n_classes = int(gt.max())
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        runs = list(pool.map(lambda ms: warm_run(*ms, args.python, args.again, args.steps, ks),
                             [(m, s) for m in methods for s in args.seeds]))
    rows = []
    for r in runs:
        seed, method = r["seed"], r["method"]
        truth_eval = gt * (ip.read_prediction(ip.labels_path(k, seed)) == 0)  # the remaining pixels
        fresh = os.path.join(RUNS, SAVED[method].format(k=k, seed=seed))
        with open(os.path.join(fresh, "metrics.json")) as f:
            fresh_metrics = json.load(f)
        rows.append({**r, "warm": score(r["model"], seed, k, truth_eval, n_classes),
                     "fresh": score(os.path.join(fresh, "model.semiseg"), seed, k, truth_eval, n_classes),
                     "fresh_train_s": fresh_metrics["train_seconds"], "fresh_steps": fresh_metrics["steps"],
                     "held": score(os.path.join(source_dir(method, seed, ks, args.steps), "model.semiseg"),
                                      seed, k, truth_eval, n_classes)})
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "model"}), flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    chain = " → ".join(f"k = {v}" for v in ks)
    source = (f"the main table's k = {before} model" if len(ks) == 2
              else f"the warm k = {before} model ({' → '.join(map(str, ks[:-1]))})")
    lines = [f"# Warm start on Indian Pines: {chain}, five more labels per class each time", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {ip.machine()}; fast preset, seeds "
             f"{', '.join(map(str, args.seeds))}; the warm start from {source}; OA with 8 views + "
             f"smoothing holding the k = {k} labels, on all remaining ground-truth pixels (one view without "
             "smoothing in brackets); mean ± sample standard deviation over seeds; training seconds of one "
             "torch thread.", "",
             f"| method | k = {before} model, k = {k} labels held (no training) | warm start from it "
             f"(steps) | fresh k = {k} model (steps) | warm − fresh, per seed | training s, warm / fresh |",
             "|---|---|---|---|---|---|"]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]

        def mean(key, sub="oa", mine=mine):
            vals = [r[key][sub] for r in mine]
            return f"{statistics.mean(vals):.3f} ± {statistics.stdev(vals):.3f}"

        per_seed = " / ".join(f"{r['warm']['oa'] - r['fresh']['oa']:+.3f}" for r in mine)
        lines.append(
            f"| {method} | {mean('held')} ({mean('held', 'oa_1view')}) | {mean('warm')} "
            f"({mean('warm', 'oa_1view')}; {mine[0]['steps']}) | {mean('fresh')} "
            f"({mean('fresh', 'oa_1view')}; {mine[0]['fresh_steps']}) | {per_seed} | "
            f"{statistics.mean(r['train_s'] for r in mine):.0f} / "
            f"{statistics.mean(r['fresh_train_s'] for r in mine):.0f} |")
    lines += ["", "Per seed (OA, default output):", ""]
    for r in rows:
        lines.append(f"- {r['method']}, seed {r['seed']}: k = {before} held {r['held']['oa']:.3f}, warm "
                     f"{r['warm']['oa']:.3f}, fresh {r['fresh']['oa']:.3f}")
    lines += ["", f"Command: `{cmd}`"]
    for r in rows:
        r["model"] = os.path.relpath(r["model"], REPO)
    write_report(args.out, lines, {"command": cmd, "cpu": ip.machine(), "rows": rows})


if __name__ == "__main__":
    main()
