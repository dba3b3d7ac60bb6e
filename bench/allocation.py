"""How to share the points of an accuracy sample among the map's classes: the same number for every
class, by area with a floor per class (``engine sample --total N --min-per-class M``, Olofsson et al.'s
compromise), or by area alone, at the same total.

On the same Indian Pines maps as ``bench/accuracy.py`` (supervised k = 5, default output, cut to the
pixels with a known truth that were not trained on; 16 classes from 0.6 to 98 ha), each design is drawn
``--reps`` times (a new seed each time), filled in from the truth and assessed by the engine. Reported:
the spread of the overall accuracy estimate, the error of the estimated class areas, how wide the
intervals are (user's accuracy by Wilson's bounds, mean and widest class; producer's accuracy; the
summed class-area intervals as a share of the map) and how often they hold the truth.

Usage (from the repository root; the Indian Pines runs come from ``bench/indian_pines.py``)::

    .venv/bin/python bench/allocation.py --reps 100 --out bench/results/allocation.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import sys
import tempfile

import numpy as np
from accuracy import REPO, calibrate, cut_map
from indian_pines import machine
from smoothing import write_report

TOTAL = 800  # 16 classes x 50: what the equal design draws


def designs(total: int) -> list[tuple[str, list[str]]]:
    by_area = ["--total", str(total), "--min-per-class"]
    return [(f"the same for every class ({total // 16} each)", ["--per-class", str(total // 16)]),
            (f"by area, at least 25 per class ({total} in all)", [*by_area, "25"]),
            (f"by area, at least 10 per class ({total} in all)", [*by_area, "10"]),
            (f"by area alone (at least 2 per class, {total} in all)", [*by_area, "2"])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=100, help="samples drawn per map and design")
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--total", type=int, default=TOTAL)
    ap.add_argument("--out", default=os.path.join("bench", "results", "allocation.md"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            path, truth = cut_map(seed)
            for name, sample_args in designs(args.total):
                rec = {"seed": seed, "design": name, "sample_args": sample_args,
                       **calibrate(path, truth, 0, args.reps, tmp, sample_args)}
                rec.pop("classes")
                rows.append(rec)
                print({k: v for k, v in rec.items() if not isinstance(v, dict)}, flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    lines = ["# Accuracy sample: sharing the points among the classes", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}.", "",
             "Indian Pines, supervised k = 5 maps (default output) of seeds "
             f"{', '.join(map(str, args.seeds))}, cut to the pixels with a known truth that were not trained "
             f"on (16 classes). Each design drawn {args.reps} times per map, filled in from the truth and "
             "assessed by `python -m engine assess`; "
             "the figures are means over the samples and the maps. OA sd: the spread of the overall accuracy "
             "estimate over the samples (its true value is known). Area error: the share of the map's area "
             "in the wrong class's total after correction (the map's own pixel counts: "
             f"{np.mean([r['map_area_error'] for r in rows]):.3f}). Interval widths: user's accuracy from "
             "Wilson's bounds (mean over classes, and the widest class), producer's accuracy ± (mean), the "
             "class areas' ± summed over the classes as a share of the map. Coverage: how often the 95 % "
             "intervals hold the truth.", "",
             "| design | points | OA sd | area error | user's acc. width, mean / widest | "
             "producer's acc. ± | areas' ± / map | coverage: OA / user's / producer's / area |",
             "|---|---:|---:|---:|---|---:|---:|---|"]
    for name, _ in designs(args.total):
        mine = [r for r in rows if r["design"] == name]

        def mean(key: str, mine=mine) -> float:
            return float(np.mean([r[key] for r in mine]))

        lines.append(f"| {name} | {mean('points'):.0f} | {mean('oa_sd'):.4f} | "
                     f"{mean('est_area_error'):.4f} | "
                     f"{mean('users_width'):.3f} / {mean('users_width_max'):.3f} | "
                     f"{mean('producers_halfwidth'):.3f} | {mean('area_halfwidth_share'):.3f} | "
                     f"{mean('oa_coverage'):.2f} / {mean('wilson_users_coverage'):.2f} / "
                     f"{mean('producers_coverage'):.2f} / {mean('area_coverage'):.2f} |")
    lines += ["", f"Command: `{cmd}`"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "rows": rows})


if __name__ == "__main__":
    main()
