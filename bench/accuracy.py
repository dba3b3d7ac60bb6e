"""Accuracy assessment (``engine sample`` + ``engine assess``): are its 95 % intervals honest, do its
areas beat the map's pixel counts, and what does it cost on a large map?

**Calibration.** Indian Pines' ground truth stands in for a field campaign that could visit every pixel.
For each of the supervised network's k = 5 maps (seeds 0-2; the saved models of
``bench/indian_pines.py``, predicted again with the engine's default output and their labels held, as
``run`` writes them), the map is cut to the pixels whose truth is known and that were not training
pixels, so the true overall accuracy and the true area of every class are known exactly. Then, many
times over (``--reps``, a new sampling seed each time): ``python -m engine sample`` draws N points per
map class, each point's reference class is filled in from the truth (the analyst's part), and
``python -m engine assess`` estimates. Reported per N: how often the 95 % interval of the overall
accuracy, and of each class's area, contains the true value (an honest interval: about 95 %), and how
far the estimated areas are from the truth against how far the map's pixel counts are.

**Cost.** One ``sample`` and one ``assess`` process on each of the large maps ``bench/polygons.py``
writes (4096², 16,384², 49,152² px, when present): wall seconds and peak resident memory.

Usage (from the repository root; the Indian Pines data and runs come from ``bench/indian_pines.py``)::

    .venv/bin/python bench/accuracy.py --reps 100 --out bench/results/accuracy.md
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
import rasterio
from indian_pines import machine
from smoothing import write_report

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IP = os.path.join(REPO, "bench", "data", "indian_pines")
DATA = os.path.join(REPO, "bench", "data", "accuracy")
LARGE = [os.path.join(REPO, "bench", "data", "polygons", name)
         for name in ("map_4096.tif", "map_tiled_4x4.tif", "map_tiled_12x12.tif")]


def engine(args: list[str]) -> tuple[dict, float, float]:
    """Run ``python -m engine ARGS --progress jsonl``: its done event, wall seconds and the child's own
    peak resident memory in MiB (``os.wait4``)."""
    env = {**os.environ, "PYTHONPATH": REPO}
    cmd = [sys.executable, "-m", "engine", *args, "--progress", "jsonl"]
    t0 = time.perf_counter()
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{shlex.join(cmd)} failed:\n{stdout[-2000:]}\n{err.read()[-2000:]}")
    return json.loads(stdout.strip().splitlines()[-1]), time.perf_counter() - t0, usage.ru_maxrss / 1024


def cut_map(seed: int) -> tuple[str, np.ndarray]:
    """The default-output map of the supervised k = 5 model of ``seed`` on the pixels with a known truth
    that were not trained on; returns its path and that truth."""
    os.makedirs(DATA, exist_ok=True)
    image, labels = os.path.join(IP, "image.tif"), os.path.join(IP, f"labels_k5_s{seed}.tif")
    if not os.path.exists(labels):
        raise SystemExit(f"{os.path.relpath(labels, REPO)} is missing; run bench/indian_pines.py once first "
                         "(it fetches and writes the data).")
    model = os.path.join(IP, "runs", f"ib_supervised_fast_k5_s{seed}", "model.semiseg")  # inpaint_bench's
    full = os.path.join(DATA, f"supervised_k5_s{seed}_default.tif")
    if not os.path.exists(full) and os.path.exists(model):
        engine(["predict", "--model", model, "--image", image, "--labels", labels, "--out", full])
    elif not os.path.exists(full):  # train it as the benchmark does, then the default output as run writes
        run = os.path.join(DATA, f"run_k5_s{seed}")
        engine(["run", "--image", image, "--labels", labels, "--out-dir", run, "--method", "supervised",
                "--preset", "fast", "--seed", str(seed), "--val-fraction", "0"])
        shutil.copy(os.path.join(run, "prediction.tif"), full)
        shutil.copy(os.path.join(run, "prediction.tif.aux.xml"), full + ".aux.xml")
    with rasterio.open(os.path.join(IP, f"truth_eval_k5_s{seed}.tif")) as ds:
        truth = ds.read(1)
    with rasterio.open(full) as ds:
        pred = np.where(truth > 0, ds.read(1), 0).astype(np.uint8)
        profile = ds.profile
    path = os.path.join(DATA, f"map_k5_s{seed}.tif")
    with rasterio.open(path, "w", **profile) as out:
        out.write(pred, 1)
        out.write_colormap(1, rasterio.open(full).colormap(1))
    shutil.copy(full + ".aux.xml", path + ".aux.xml")
    return path, truth


def fill_in(sample: str, truth: np.ndarray, transform) -> None:
    """The analyst's part: each point's reference class from the truth under it."""
    from osgeo import ogr

    ds = ogr.Open(sample, 1)
    layer = ds.GetLayer(0)
    inverse = ~transform
    ds.StartTransaction()
    for f in layer:
        col, row = inverse * f.GetGeometryRef().GetPoint_2D()
        f.SetField("reference", int(truth[int(row), int(col)]))
        layer.SetFeature(f)
    ds.CommitTransaction()
    ds = None


def calibrate(path: str, truth: np.ndarray, per_class: int, reps: int, tmp: str,
              sample_args: list[str] | None = None) -> dict:
    """``reps`` samples of the map ``path`` (``per_class`` points of each class, or as ``sample_args``
    say), each filled in from ``truth`` and assessed: how often the intervals hold the truth, how far the
    estimates are, how wide the intervals."""
    with rasterio.open(path) as ds:
        pred, transform = ds.read(1), ds.transform
        pixel_ha = abs(transform.a * transform.e) / 1e4
    mask = pred > 0
    k = int(max(pred.max(), truth.max()))
    true_oa = float((pred == truth)[mask].mean())
    true_ha = np.array([((truth == c) & mask).sum() for c in range(1, k + 1)]) * pixel_ha
    map_ha = np.array([(pred == c).sum() for c in range(1, k + 1)]) * pixel_ha
    both = np.array([((pred == c) & (truth == c)).sum() for c in range(1, k + 1)]) * pixel_ha
    true_users = np.divide(both, map_ha, out=np.full(k, np.nan), where=map_ha > 0)
    true_producers = np.divide(both, true_ha, out=np.full(k, np.nan), where=true_ha > 0)
    # intervals holding the truth, intervals: user's accuracy by ± 1.96 SE and by Wilson's bounds
    acc_hits = {"users_accuracy": [0, 0], "wilson_users": [0, 0], "producers_accuracy": [0, 0]}
    oa_hits, area_hits, area_known, est_err, oa_est = 0, 0, 0, [], []
    by_class = {}  # class name -> [hits, intervals, relative sizes of the misses]
    seconds, ua_width, ua_width_max, pa_half, area_half = [], [], [], [], []
    for rep in range(reps):
        sample = os.path.join(tmp, f"s{rep}.gpkg")
        t0 = time.perf_counter()
        engine(["sample", "--prediction", path, "--out", sample,
                *(sample_args or ["--per-class", str(per_class)]), "--seed", str(rep)])
        fill_in(sample, truth, transform)
        report = engine(["assess", "--prediction", path, "--reference", sample])[0]
        seconds.append(time.perf_counter() - t0)
        oa = report["overall_accuracy"]
        oa_est.append(oa["estimate"])
        oa_hits += bool(oa["ci95"] is not None and abs(oa["estimate"] - true_oa) <= oa["ci95"] + 1e-9)
        est = np.array([c["estimated"]["estimate"] for c in report["classes"].values()])
        entries = list(report["classes"].values())
        widths = [e["users_accuracy"]["high"] - e["users_accuracy"]["low"] for e in entries
                  if e["users_accuracy"] is not None and "low" in e["users_accuracy"]]
        ua_width.append(np.mean(widths))
        ua_width_max.append(np.max(widths))
        pa_half.append(np.mean([e["producers_accuracy"]["ci95"] for e in entries if e["producers_accuracy"]
                                and e["producers_accuracy"]["ci95"] is not None]))
        area_half.append(sum(e["estimated"]["ci95"] or 0 for e in entries) / true_ha.sum())
        for c, (name, entry) in enumerate(report["classes"].items()):
            for key, truth_value in (("users_accuracy", true_users[c]), ("producers_accuracy",
                                                                         true_producers[c])):
                e = entry[key]
                if e is not None and e["ci95"] is not None and not np.isnan(truth_value):
                    acc_hits[key][0] += bool(abs(e["estimate"] - truth_value) <= e["ci95"] + 1e-9)
                    acc_hits[key][1] += 1
                if e is not None and "low" in e and not np.isnan(truth_value):
                    acc_hits["wilson_users"][0] += bool(e["low"] - 1e-9 <= truth_value <= e["high"] + 1e-9)
                    acc_hits["wilson_users"][1] += 1
            ci = entry["estimated"]["ci95"]
            if ci is not None:
                off = abs(entry["estimated"]["estimate"] - true_ha[c])
                hit = bool(off <= ci + 1e-9)
                area_known += 1
                area_hits += hit
                tally = by_class.setdefault(name, [0, 0, []])
                tally[0] += hit
                tally[1] += 1
                if not hit:
                    tally[2].append(float(off / true_ha[c]) if true_ha[c] else float("inf"))
        est_err.append(np.abs(est - true_ha).sum() / 2 / true_ha.sum())
        os.remove(sample)
    return {"per_class": per_class, "reps": reps, "points": int(report["units"]), "true_oa": true_oa,
            "oa_mean": float(np.mean(oa_est)), "oa_sd": float(np.std(oa_est, ddof=1)),
            "oa_coverage": oa_hits / reps, "area_coverage": area_hits / max(area_known, 1),
            "area_intervals": area_known,
            **{f"{key.rsplit('_accuracy', 1)[0]}_coverage": hits / max(n, 1)
               for key, (hits, n) in acc_hits.items()},
            # share of the map's area in the wrong class: half the summed absolute area differences
            "map_area_error": float(np.abs(map_ha - true_ha).sum() / 2 / true_ha.sum()),
            "est_area_error": float(np.mean(est_err)), "seconds_per_rep": float(np.mean(seconds)),
            "users_width": float(np.mean(ua_width)), "users_width_max": float(np.mean(ua_width_max)),
            "producers_halfwidth": float(np.mean(pa_half)), "area_halfwidth_share": float(np.mean(area_half)),
            "classes": {name: {"hits": t[0], "intervals": t[1], "misses_relative": t[2],
                               "true_ha": float(true_ha[list(report["classes"]).index(name)]),
                               "mapped_ha": float(map_ha[list(report["classes"]).index(name)])}
                        for name, t in by_class.items()}}


def cost(path: str, tmp: str) -> dict:
    with rasterio.open(path) as ds:
        size = f"{ds.width:,} × {ds.height:,}"
    sample = os.path.join(tmp, "large.gpkg")
    done, s_sec, s_mib = engine(["sample", "--prediction", path, "--out", sample])
    from osgeo import ogr

    ds = ogr.Open(sample, 1)  # the reference as the map says (cost does not depend on the answers)
    layer = ds.GetLayer(0)
    ds.StartTransaction()
    for f in layer:
        f.SetField("reference", f.GetField("map_class"))
        layer.SetFeature(f)
    ds.CommitTransaction()
    ds = None
    report, a_sec, a_mib = engine(["assess", "--prediction", path, "--reference", sample])
    os.remove(sample)
    return {"map": os.path.relpath(path, REPO), "size": size, "points": done["points"], "sample_s": s_sec,
            "sample_mib": s_mib, "assess_s": a_sec, "assess_mib": a_mib, "units": report["units"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reps", type=int, default=100, help="samples drawn per map and size")
    ap.add_argument("--per-class", type=int, nargs="*", default=[25, 50])
    ap.add_argument("--seeds", type=int, nargs="*", default=[0, 1, 2])
    ap.add_argument("--out", default=os.path.join("bench", "results", "accuracy.md"))
    args = ap.parse_args()
    rows, costs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            path, truth = cut_map(seed)
            for n in args.per_class:
                rec = {"seed": seed, **calibrate(path, truth, n, args.reps, tmp)}
                rows.append(rec)
                print(rec, flush=True)
        for path in LARGE:
            if os.path.exists(path):
                costs.append(cost(path, tmp))
                print(costs[-1], flush=True)
    cmd = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__, REPO), *sys.argv[1:]])
    lines = ["# Accuracy assessment: honest intervals, better areas, cost", "",
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, {machine()}.", "",
             "## Calibration on Indian Pines", "",
             "Supervised k = 5 maps (default output), cut to the pixels with a known truth that were not "
             f"trained on; {args.reps} samples per row, each drawn, filled in from the truth and assessed by "
             "the engine's commands. Coverage: share of the 95 % intervals that contain the true value "
             "(overall accuracy; user's and producer's accuracies and class areas, pooled over the classes "
             "whose interval exists). Area error: "
             "the share of the map's area that sits in the wrong class's total (half the summed absolute "
             "differences from the true areas), for the map's pixel counts and, averaged over the samples, "
             "for the sample's estimates.", "",
             "| seed | points per class | points | true OA | estimated OA (mean ± sd) | OA coverage | "
             "user's acc. coverage, ± 1.96 SE / Wilson | producer's acc. coverage | area coverage | "
             "area error, map's counts | area error, estimated | s per sample + assess |",
             "|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['per_class']} | {r['points']} | {r['true_oa']:.3f} | "
                     f"{r['oa_mean']:.3f} ± {r['oa_sd']:.3f} | {r['oa_coverage']:.2f} | "
                     f"{r['users_coverage']:.2f} / {r['wilson_users_coverage']:.2f} | "
                     f"{r['producers_coverage']:.2f} | "
                     f"{r['area_coverage']:.2f} ({r['area_intervals']}) | {r['map_area_error']:.3f} | "
                     f"{r['est_area_error']:.3f} | {r['seconds_per_rep']:.2f} |")
    lines += ["", "Per class, pooled over the seeds: coverage of the area intervals, and how far off the "
              "missed estimates were (median, as a share of the class's true area). True and mapped "
              "area: seed 0.",
              "", "| class | true ha | mapped ha | " + " | ".join(
                  f"coverage, {n}/class | median miss, {n}/class" for n in args.per_class) + " |",
              "|---|---:|---:|" + "---:|---:|" * len(args.per_class)]
    names = list(rows[0]["classes"]) if rows else []
    for name in names:
        cells = []
        for n in args.per_class:
            mine = [r["classes"][name] for r in rows if r["per_class"] == n and name in r["classes"]]
            hits, known = sum(m["hits"] for m in mine), sum(m["intervals"] for m in mine)
            misses = [x for m in mine for x in m["misses_relative"]]
            cells.append(f"{hits / known:.2f}" if known else "–")
            cells.append(f"{100 * float(np.median(misses)):.1f} %" if misses else "–")
        first = rows[0]["classes"][name]
        lines.append(f"| {name} | {first['true_ha']:.1f} | {first['mapped_ha']:.1f} | " + " | ".join(cells)
                     + " |")
    lines += ["", "## Cost on large maps", "",
              "One `sample` (50 points per class) and one `assess` process per map; wall seconds including "
              "the engine's start, peak resident memory of each process.", "",
              "| map | pixels | points | sample s | sample peak MiB | assess s | assess peak MiB |",
              "|---|---|---:|---:|---:|---:|---:|"]
    for c in costs:
        lines.append(f"| {c['map']} | {c['size']} | {c['points']} | {c['sample_s']:.1f} | "
                     f"{c['sample_mib']:.0f} | {c['assess_s']:.1f} | {c['assess_mib']:.0f} |")
    lines += ["", f"Command: `{cmd}`"]
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    write_report(args.out, lines, {"command": cmd, "cpu": machine(), "calibration": rows, "cost": costs})


if __name__ == "__main__":
    main()
