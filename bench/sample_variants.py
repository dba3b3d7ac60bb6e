"""The bundled sample's one-click run (`make demo`'s) with and without engine flags, over seeds.

Each run is ``python -m engine run`` on ``resources/sample/landsat_rgb.tif`` with its painted labels
(fast preset, one torch thread, two runs side by side), once with the defaults and once with
``--extra-args``, for each seed (which also draws the held-out strokes). Scores are the written map's on
the held-out strokes (``map_val_*``, what the dock shows), so both variants of a seed are scored on the
same strokes.

``--base-args`` go to both variants (``{seed}`` in them becomes the run's seed), e.g. another method;
the two variants of a seed then differ by ``--extra-args`` alone.

Usage (from the repository root)::

    .venv/bin/python bench/sample_variants.py --extra-args="--balance-labels" \
        --out bench/results/balance_labels_sample.md
    .venv/bin/python bench/sample_variants.py --base-args="--method inpaint \
        --encoder-cache out/sample_variants/s{seed}.semienc" --extra-args="--transfer-levels 1" \
        --out bench/results/transfer_levels_sample.md
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile

from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "resources", "sample")


def run(seed: int, extra: list[str], folder: str, base: list[str] = ()) -> dict:
    env = {**os.environ, "PYTHONPATH": REPO, "SEMISEG_THREADS": "1"}
    cmd = [sys.executable, "-m", "engine", "run", "--image", os.path.join(SAMPLE, "landsat_rgb.tif"),
           "--labels", os.path.join(SAMPLE, "landsat_rgb_labels.tif"), "--out-dir", folder,
           "--preset", "fast", "--seed", str(seed), "--device", "cpu", "--progress", "none",
           *(a.replace("{seed}", str(seed)) for a in base), *extra]
    subprocess.run(cmd, cwd=REPO, env=env, check=True)
    with open(os.path.join(folder, "metrics.json")) as f:
        m = json.load(f)
    return {"seed": seed, "variant": " ".join(extra) or "defaults", "miou": m["map_val_miou"],
            "oa": m["map_val_oa"], "pixels": m["map_val_pixels"],
            "per_class_iou": m["map_val_per_class_iou"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra-args", required=True, help="the engine flags to compare with the defaults")
    ap.add_argument("--base-args", default="", help="engine flags for both variants ({seed}: the seed)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default=os.path.join("bench", "results", "sample_variants.md"))
    args = ap.parse_args()
    variants, base = [[], shlex.split(args.extra_args)], shlex.split(args.base_args)
    for a in base:  # an encoder cache's folder, say
        if "{seed}" in a and os.path.dirname(a):
            os.makedirs(os.path.dirname(a), exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        # every seed's defaults first: a seed's two variants then rarely run side by side (they may share
        # a per-seed encoder cache; both would write the same file, whole)
        jobs = [(s, v, os.path.join(tmp, f"s{s}-{i}"), base)
                for i, v in enumerate(variants) for s in args.seeds]
        rows = list(pool.map(lambda j: run(*j), jobs))
    for r in rows:
        print(json.dumps(r), flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    title = f"`{args.base_args}`" if base else "defaults"
    lines = [f"# The bundled sample: {title} against `{args.extra_args}` added", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}; `engine run`, fast preset, one torch "
             "thread per run; the written map scored on each seed's held-out strokes (`map_val_*`).", "",
             "| variant | mIoU | OA | mIoU per seed | held-out pixels per seed |", "|---|---|---|---|---|"]
    for v in ("defaults", " ".join(variants[1])):
        mine = [r for r in rows if r["variant"] == v]
        ms = [r["miou"] for r in mine]
        oas = [r["oa"] for r in mine]
        label = title if v == "defaults" else f"+ `{v}`"
        lines.append(f"| {label} | {statistics.mean(ms):.3f} ± {statistics.stdev(ms):.3f} | "
                     f"{statistics.mean(oas):.3f} ± {statistics.stdev(oas):.3f} | "
                     f"{' / '.join(f'{x:.3f}' for x in ms)} | {' / '.join(str(r['pixels']) for r in mine)} |")
    lines += ["", f"Command: `{cmd}`"]
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "rows": rows})


if __name__ == "__main__":
    main()
