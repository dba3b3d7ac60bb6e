"""Pool the runs of one row from several benchmark JSONs into one mean ± std per k, and compare rows seed
by seed.

A row's seeds may come from different benchmark runs (seeds 0-2 from the table that introduced it, more
seeds from a later run with the same settings). Each ``--row`` names a row and where its runs are:
``NAME=FILE:LABEL[;FILE:LABEL...]`` with FILE a JSON in bench/results/ written by indian_pines.py (runs
keyed by ``label``) or inpaint_bench.py (records keyed by ``row``). The first row is the reference of the
per-seed differences. Scores: the smoothed output (``--score smooth``: 8 views + smoothing, ``oa_smooth`` /
``miou_smooth``, what `run` gave before label anchoring; ``--score anchor``: the smoothing also holds the
training labels, ``oa_anchor`` / ``miou_anchor``, what `run` gives today) and the run's own one-view map
(``oa``).

  python bench/pool_seeds.py --k 5 10 \
      --row "supervised=weight_average_indian_pines.json:supervised [weight average];\
seeds_3_4_indian_pines.json:supervised [weight average]" --row "icnet=..." --out bench/results/F.md

(the command that made each pooled table is written under it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def load_runs(spec: str, score: str = "smooth") -> dict[tuple[int, int], dict]:
    """(k, seed) -> run record with an ``oa_<score>``, for ``FILE:LABEL[;FILE:LABEL...]``; a (k, seed) found
    twice is an error."""
    runs: dict[tuple[int, int], dict] = {}
    for part in spec.split(";"):
        path, _, label = part.partition(":")
        with open(os.path.join(RESULTS, path.strip())) as f:
            data = json.load(f)
        for r in data.get("runs", data.get("records", [])):
            if r.get("kind", "run") != "run" or not r.get("ok") or r.get(f"oa_{score}") is None:
                continue
            if (r.get("label") or r.get("row")) != label.strip():
                continue
            key = (r["k"], r["seed"])
            if key in runs:
                raise SystemExit(f"{path}: k={key[0]} seed={key[1]} of '{label}' appears twice; "
                                 "name each seed once")
            runs[key] = r
    return runs


def mean_std(values: list[float]) -> str:
    v = np.asarray(values, float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if len(v) > 1 else f"{v.mean():.3f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--row", action="append", required=True, help="NAME=FILE:LABEL[;FILE:LABEL...]")
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--score", default="smooth", choices=["smooth", "anchor"],
                    help="smooth: 8 views + smoothing (the default output before label anchoring); anchor: "
                         "the smoothing also holds the training labels (today's default)")
    ap.add_argument("--out", default="", help="markdown file to write (also printed)")
    args = ap.parse_args(argv)
    oa_key, miou_key = f"oa_{args.score}", f"miou_{args.score}"
    what = {"smooth": "8 views + edge-aware smoothing (what `run` gave before label anchoring)",
            "anchor": "8 views + edge-aware smoothing holding the training labels (what `run` gives)",
            }[args.score]
    rows = []
    for spec in args.row:
        name, _, where = spec.partition("=")
        rows.append((name.strip(), load_runs(where, args.score)))

    lines = ["| row | k | seeds | OA, default | mIoU, default | OA, 1 view | OA per seed (default) | "
             f"vs {rows[0][0]} per seed | seeds ahead |", "|---|---:|---|---|---|---|---|---|---:|"]
    for k in args.k:
        ref = {s: r for (kk, s), r in rows[0][1].items() if kk == k}
        for i, (name, runs) in enumerate(rows):
            mine = {s: r for (kk, s), r in runs.items() if kk == k}
            seeds = sorted(mine)
            if not seeds:
                continue
            oa = [mine[s][oa_key] for s in seeds]
            diff = [mine[s][oa_key] - ref[s][oa_key] for s in seeds if s in ref]
            versus, ahead = "–", "–"  # the reference row, or no seed in common with it
            if i > 0 and diff:
                versus = f"{' / '.join(f'{d:+.3f}' for d in diff)} (mean {np.mean(diff):+.3f})"
                ahead = f"{sum(d > 0 for d in diff)}/{len(diff)}"
            lines.append(f"| {name} | {k} | {','.join(map(str, seeds))} | {mean_std(oa)} | "
                         f"{mean_std([mine[s][miou_key] for s in seeds])} | "
                         f"{mean_std([mine[s]['oa'] for s in seeds])} | "
                         f"{' / '.join(f'{v:.3f}' for v in oa)} | {versus} | {ahead} |")
    command = "python bench/pool_seeds.py " + " ".join(
        f'"{a}"' if " " in a or ";" in a else a for a in (sys.argv[1:] if argv is None else argv))
    text = "\n".join(["# Indian Pines: rows pooled over every seed measured", "",
                      "Mean ± sample standard deviation (ddof=1) over the seeds listed; default = " + what
                      + ", 1 view = the run's own map. Per-seed "
                      "differences are paired on the same label draw.", "", *lines, "",
                      f"Command: `{command}`", ""])
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
