"""The foundation bar: `engine run`, fast preset, CPU, on a 4-band synthetic scene with scribbles.

Writes a 1024×1024 px, 4-band, 4-class scene (smooth fields, roads, buildings; known truth) with three
short scribbles per class, runs the one-click path, checks the prediction's grid against the input and
scores it against the truth. Usage: python bench/synthetic_scene.py [--size 1024] [--seed 0]
[--method M] [--extra-args="--FLAG ..."] [--tag SUFFIX] [--out DIR]
(engine flags start with --, so give them with "=").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import rasterio  # noqa: E402

from engine.categories import read_category_names  # noqa: E402
from engine.synthetic import write_scene  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--method", default="supervised", help="supervised, icnet, inpaint or inpaint+icnet")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "data", "synthetic_scene"))
    ap.add_argument("--extra-args", default="",
                    help='more flags for the engine run, one string: --extra-args="--no-rounds"')
    ap.add_argument("--tag", default="", help="run folder suffix, to keep runs with other flags apart")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    paths = write_scene(a.out, a.size, a.size, bands=4, classes=4, seed=a.seed)
    run_dir = os.path.join(a.out, ("run" if a.method == "supervised" else f"run_{a.method}") + a.tag)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "engine", "run", "--image", paths["image"], "--labels",
                             paths["labels"], "--out-dir", run_dir, "--preset", a.preset, "--device", "cpu",
                             "--method", a.method, "--seed", str(a.seed), "--progress", "none",
                             *a.extra_args.split()], cwd=ROOT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - t0
    if proc.returncode:
        return proc.returncode
    pred = os.path.join(run_dir, "prediction.tif")
    res = subprocess.run([sys.executable, "-m", "engine", "evaluate", "--prediction", pred, "--truth",
                          paths["truth"]], cwd=ROOT, check=True, capture_output=True, text=True)
    scores = json.loads(res.stdout)
    with rasterio.open(paths["image"]) as src, rasterio.open(pred) as dst:
        same_grid = (src.crs == dst.crs and src.transform == dst.transform and src.shape == dst.shape)
        has_colours = len(dst.colormap(1)) > 0
    names = read_category_names(pred)
    print(json.dumps({"size": a.size, "seed": a.seed, "preset": a.preset, "method": a.method,
                      "extra_args": a.extra_args,
                      "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                      "load_avg_1min": round(os.getloadavg()[0], 1),
                      "miou": round(scores["miou"], 4), "oa": round(scores["oa"], 4),
                      "same_grid": same_grid, "colour_table": has_colours, "category_names": names}))
    return 0 if same_grid and has_colours and len(names) > 1 else 1


if __name__ == "__main__":
    sys.exit(main())
