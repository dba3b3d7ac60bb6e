"""Indian Pines sparse-label benchmark (METHODS.md section 3).

Protocol: k labeled pixels per class (k = 5, 10) drawn from the ground truth with
``numpy.random.RandomState(seed)`` for seeds 0, 1, 2; every method is trained on exactly those pixels
and scored (OA, mIoU) on all *remaining* ground-truth pixels. Methods:

* ``rf``: scikit-learn RandomForestClassifier(n_estimators=500, n_jobs=-1, random_state=seed) on the
  per-pixel band values of the labeled pixels (the classical baseline QGIS users have today);
* any engine method (``supervised``, ``icnet``, ``inpaint``, ``inpaint+icnet``): a child process
  ``python -m engine run --method M --preset P --seed S --val-fraction 0 --progress none``.

Usage (from the repository root)::

    .venv/bin/python bench/indian_pines.py --methods rf,supervised --k 5 10 --seeds 0 1 2 \
        --preset fast --out bench/results/indian_pines.md

Ablations: ``--variant "LABEL=METHOD ENGINE-FLAGS..."`` (repeatable) adds a row with its own engine
flags, e.g. ``--variant "icnet-ref=icnet --icnet-mode reference"``; ``--extra-args`` adds flags to every
engine run and ``--row-label`` renames the rows of ``--methods`` engine runs.

Outputs: a markdown table (printed and written to ``--out``) and a JSON with every per-run number
(``--out`` with the suffix ``.json``). ``--resume`` reuses successful runs already in that JSON.
The dataset is fetched once into ``bench/data/`` (git-ignored) from the PyPI wheel ``tensorly==0.10.0``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
import zipfile

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "bench", "data")
WORK = os.path.join(DATA, "indian_pines")
IMAGE_NPY = os.path.join(DATA, "Indian_pines_corrected.npy")
GT_NPY = os.path.join(DATA, "Indian_pines_gt.npy")
WHEEL_MEMBERS = {
    IMAGE_NPY: "tensorly/datasets/data/Indian_pines_corrected.npy",
    GT_NPY: "tensorly/datasets/data/Indian_pines_gt.npy",
}

CLASS_NAMES = [
    "Alfalfa", "Corn-notill", "Corn-mintill", "Corn", "Grass-pasture", "Grass-trees",
    "Grass-pasture-mowed", "Hay-windrowed", "Oats", "Soybean-notill", "Soybean-mintill",
    "Soybean-clean", "Wheat", "Woods", "Buildings-Grass-Trees-Drives", "Stone-Steel-Towers",
]
PIXEL_SIZE_M = 20.0  # AVIRIS Indian Pines ground sampling distance
# A plausible projected grid (UTM 16N, where the Indian Pines test site lies in Indiana). The
# position is nominal; only the pixel grid matters to the benchmark.
CRS = "EPSG:32616"
ORIGIN = (500000.0, 4490000.0)

RF_REFERENCE = {5: (0.447, 0.309), 10: (0.511, 0.356)}  # METHODS.md section 3: (OA, mIoU)


# ----------------------------------------------------------------------------------------- data
def fetch_data() -> None:
    """Put the two .npy files in bench/data/, downloading the tensorly wheel once if needed."""
    if all(os.path.exists(p) for p in WHEEL_MEMBERS):
        return
    os.makedirs(DATA, exist_ok=True)
    wheels = [f for f in os.listdir(DATA) if f.startswith("tensorly-0.10.0") and f.endswith(".whl")]
    if not wheels:
        print("fetching tensorly==0.10.0 wheel (Indian Pines ships inside it) ...", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "tensorly==0.10.0",
                        "-d", DATA], check=True)
        wheels = [f for f in os.listdir(DATA) if f.startswith("tensorly-0.10.0") and f.endswith(".whl")]
    with zipfile.ZipFile(os.path.join(DATA, wheels[0])) as z:
        for dest, member in WHEEL_MEMBERS.items():
            with z.open(member) as src, open(dest + ".part", "wb") as dst:
                dst.write(src.read())
            os.replace(dest + ".part", dest)


def load_data() -> tuple[np.ndarray, np.ndarray]:
    fetch_data()
    image = np.ascontiguousarray(np.load(IMAGE_NPY))  # (H, W, 200) uint16
    gt = np.ascontiguousarray(np.load(GT_NPY))  # (H, W), 0 = none, 1..16
    assert image.ndim == 3 and gt.shape == image.shape[:2], (image.shape, gt.shape)
    return image, gt.astype(np.uint8)


def _profile(height: int, width: int, count: int, dtype: str) -> dict:
    from rasterio.transform import from_origin

    return {
        "driver": "GTiff", "height": height, "width": width, "count": count, "dtype": dtype,
        "crs": CRS, "transform": from_origin(ORIGIN[0], ORIGIN[1], PIXEL_SIZE_M, PIXEL_SIZE_M),
        "compress": "deflate", "interleave": "band" if count > 1 else "pixel",
    }


def write_class_raster(path: str, arr: np.ndarray, named: bool = True) -> None:
    """A uint8 class raster (0 = unlabeled/ignored) with the Indian Pines class names and colours."""
    import rasterio

    tmp = path + ".part.tif"
    with rasterio.open(tmp, "w", **_profile(arr.shape[0], arr.shape[1], 1, "uint8")) as ds:
        ds.write(arr.astype(np.uint8), 1)
    os.replace(tmp, path)
    if named:
        try:  # class names + colours, the way the engine itself stores them
            sys.path.insert(0, REPO)
            from engine.categories import ClassTable, default_colour, write_class_table

            ids = range(1, len(CLASS_NAMES) + 1)
            write_class_table(path, ClassTable(list(CLASS_NAMES), [default_colour(i) for i in ids]))
        except Exception as e:  # names are cosmetic; the benchmark works without them
            print(f"note: class names not written to {os.path.basename(path)} ({e})", file=sys.stderr)


def write_image(image: np.ndarray, path: str) -> None:
    import rasterio

    if os.path.exists(path):
        return
    h, w, c = image.shape
    tmp = path + ".part.tif"
    with rasterio.open(tmp, "w", **_profile(h, w, c, "uint16")) as ds:
        ds.write(np.ascontiguousarray(np.transpose(image, (2, 0, 1))))  # bands first
    os.replace(tmp, path)


def draw_labels(gt: np.ndarray, k: int, seed: int) -> np.ndarray:
    """k pixels per class drawn with RandomState(seed) (classes with <= k pixels keep one back)."""
    rng = np.random.RandomState(seed)
    flat_gt = np.ascontiguousarray(gt).reshape(-1)
    flat_lab = np.zeros_like(flat_gt)
    for c in range(1, int(gt.max()) + 1):
        idx = np.flatnonzero(flat_gt == c)
        n = min(k, len(idx) - 1)
        if n <= 0:
            continue
        pick = rng.choice(idx, n, replace=False)
        flat_lab[pick] = c
    return flat_lab.reshape(gt.shape)


# ----------------------------------------------------------------------------------------- scores
def scores(pred: np.ndarray, truth: np.ndarray, num_classes: int) -> dict:
    """OA, mIoU (mean over classes present in ``truth``), kappa on pixels where truth > 0.

    A prediction of 0 (no data) or a class outside 1..K counts as wrong for that pixel.
    """
    m = truth > 0
    t = truth[m].astype(np.int64)
    p = pred[m].astype(np.int64)
    p = np.where((p >= 1) & (p <= num_classes), p, 0)
    cm = np.zeros((num_classes + 1, num_classes + 1), np.int64)  # rows truth, cols prediction
    np.add.at(cm, (t, p), 1)
    cm = cm[1:]  # truth rows 1..K; column 0 = "no class"
    n = cm.sum()
    tp = np.array([cm[c - 1, c] for c in range(1, num_classes + 1)])
    support = cm.sum(axis=1)
    predicted = cm[:, 1:].sum(axis=0)
    union = support + predicted - tp
    present = support > 0
    iou = np.where(union > 0, tp / np.maximum(union, 1), 0.0)
    oa = tp.sum() / n
    pe = float((support * predicted).sum()) / float(n) ** 2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 0.0
    return {"oa": float(oa), "miou": float(iou[present].mean()), "kappa": float(kappa),
            "per_class_iou": [float(v) if s else None for v, s in zip(iou, present, strict=True)],
            "n_eval": int(n)}


def print_report(lines: list[str], out: str | None) -> None:
    """Print a markdown report and, with ``out``, write it there (the diagnostics' last step)."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        with open(out, "w") as f:
            f.write(text)


def read_prediction(path: str) -> np.ndarray:
    import rasterio

    with rasterio.open(path) as ds:
        return ds.read(1)


def predict_saved(model_path: str, views: int, members: slice | None = None,
                  smooth: bool = False, anchors: str | None = None) -> np.ndarray:
    """A saved model's class map of the whole Indian Pines image with the engine's own windows and
    mirrored edges, from ``views`` (1, or 8 = test-time augmentation) views per window and the
    ``members`` of its ensemble (all by default), edge-aware smoothed if ``smooth`` (as `predict`
    does by default), holding the labels of the raster ``anchors`` at their class (as `run` does with
    its training labels); one thread."""
    import torch

    from engine import modelfile
    from engine.labels import LabelPatches
    from engine.predict import array_reader, predict_array, smoothing_for
    from engine.raster import open_image, read_normalised

    torch.set_num_threads(1)
    model = modelfile.load(model_path)
    with open_image(os.path.join(WORK, "image.tif")) as ds:
        x, valid = read_normalised(ds, model.band_stats, 0, 0, ds.height, ds.width)
    nets = model.networks(torch.device("cpu"))[members or slice(None)]
    smoothing = smoothing_for(array_reader(x, valid), *valid.shape, smooth)
    held = LabelPatches.from_array(read_prediction(anchors)) if anchors else None
    cls, _ = predict_array(nets, x, valid, torch.device("cpu"), core=512, views=views, smooth=smoothing,
                           anchors=held)
    return cls


def labels_path(k: int, seed: int) -> str:
    """The labels a run of ``k`` pixels per class and ``seed`` trained on."""
    return os.path.join(WORK, f"labels_k{k}_s{seed}.tif")


# ----------------------------------------------------------------------------------------- methods
def run_rf(image: np.ndarray, labels: np.ndarray, seed: int, out_dir: str) -> dict:
    from sklearn.ensemble import RandomForestClassifier

    t0 = time.perf_counter()
    c0 = time.process_time()
    x = image.reshape(-1, image.shape[2]).astype(np.float32)
    y = labels.ravel()
    m = y > 0
    rf = RandomForestClassifier(n_estimators=500, n_jobs=-1, random_state=seed)
    rf.fit(x[m], y[m])
    pred = rf.predict(x).astype(np.uint8).reshape(labels.shape)
    write_class_raster(os.path.join(out_dir, "prediction.tif"), pred, named=False)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0  # all threads of this process (joblib threads included)
    return {"ok": True, "wall_s": wall, "cpu_s": cpu, "pred_path": os.path.join(out_dir, "prediction.tif")}


def engine_cmd(python: str, method: str, preset: str, seed: int, image: str, labels: str,
               out_dir: str, extra: list[str]) -> list[str]:
    return [python, "-m", "engine", "run", "--image", image, "--labels", labels, "--out-dir", out_dir,
            "--method", method, "--preset", preset, "--seed", str(seed), "--val-fraction", "0",
            "--progress", "none", "--tta", "off", "--smooth", "off", *extra]  # the rest: saved model


def run_engine(cmd: list[str], out_dir: str, timeout: float | None, threads: int = 0) -> dict:
    """Run one engine child; wall seconds and the CPU seconds (user + sys) of exactly that child.
    ``threads`` > 0 caps its torch CPU threads (SEMISEG_THREADS), for several runs side by side."""
    env = dict(os.environ)
    if threads > 0:
        env["SEMISEG_THREADS"] = str(threads)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    log_path = os.path.join(out_dir, "engine.log")
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        while True:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                rc = os.waitstatus_to_exitcode(status)
                break
            if timeout is not None and time.perf_counter() - t0 > timeout:
                proc.kill()
                _, status, ru = os.wait4(proc.pid, 0)
                rc = "timeout"
                break
            time.sleep(0.1)
        proc.returncode = rc if isinstance(rc, int) else -9  # keep Popen from waiting again
    wall = time.perf_counter() - t0
    rec = {"ok": rc == 0, "rc": rc, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
           "peak_rss_mib": ru.ru_maxrss / 1024.0,
           "pred_path": os.path.join(out_dir, "prediction.tif")}
    if rc != 0:
        with open(log_path, errors="replace") as f:
            rec["error_tail"] = f.read()[-2000:]
    metrics = os.path.join(out_dir, "metrics.json")
    if rc == 0 and os.path.exists(metrics):
        try:
            with open(metrics) as f:
                rec["engine_metrics"] = json.load(f)
        except ValueError:
            pass
    return rec


def repo_relative(arg: str) -> str:
    """A path inside the repository as seen from its root (reports name no machine paths)."""
    if os.path.isabs(arg) and (arg + os.sep).startswith(REPO + os.sep):
        return os.path.relpath(arg, REPO)
    return arg


def add_tta_scores(rec: dict, truth_eval: np.ndarray, n_classes: int) -> None:
    """OA / mIoU of the run's saved model predicted with 8 views per window (the engine's ``--tta on``),
    with 8 views and edge-aware smoothing (``--smooth on``), and with the smoothing holding the run's
    training labels (what `run` gives by default on an image this small: `--anchor-labels on`); the run
    itself predicted with one view and no smoothing, so all figures come from the same model. Only the
    columns a record lacks are computed."""
    model = os.path.join(os.path.dirname(os.path.join(REPO, rec["pred_path"])), "model.semiseg")
    if rec.get("method") != "rf":
        add_saved_model_scores(rec, model, truth_eval, n_classes)


def add_saved_model_scores(rec: dict, model: str, truth_eval: np.ndarray, n_classes: int) -> None:
    """``rec``'s missing ``oa/miou_tta`` (8 views), ``oa/miou_smooth`` (8 views + smoothing) and
    ``oa/miou_anchor`` (8 views + smoothing holding the training labels ``rec``'s k and seed name)
    columns, from the saved ``model`` (nothing when it is gone)."""
    if not os.path.exists(model):
        return
    anchors = labels_path(rec["k"], rec["seed"])
    for suffix, smooth, held in (("tta", False, None), ("smooth", True, None), ("anchor", True, anchors)):
        if f"oa_{suffix}" not in rec:
            sc = scores(predict_saved(model, 8, smooth=smooth, anchors=held), truth_eval, n_classes)
            rec.update({f"oa_{suffix}": sc["oa"], f"miou_{suffix}": sc["miou"]})


def finish_record(rec: dict, gt: np.ndarray, n_classes: int, engine_ok: bool, args) -> dict:
    """Score a finished run against its evaluation truth, cross-check with `engine evaluate`, print."""
    eval_tif, truth_eval = rec.pop("eval_tif"), rec.pop("truth_eval")
    if rec["ok"] and os.path.exists(rec["pred_path"]):
        pred = read_prediction(rec["pred_path"])
        if pred.shape != gt.shape:
            rec.update(ok=False, error_tail=f"prediction shape {pred.shape} != {gt.shape}")
        else:
            rec.update(scores(pred, truth_eval, n_classes))
            add_tta_scores(rec, truth_eval, n_classes)
            if engine_ok and not args.no_crosscheck:
                ev = engine_evaluate(args.python, rec["pred_path"], eval_tif)
                rec["engine_evaluate"] = ev
                if ev and "error" not in ev:
                    d_oa = abs(float(ev.get("oa", np.nan)) - rec["oa"])
                    d_miou = abs(float(ev.get("miou", np.nan)) - rec["miou"])
                    rec["crosscheck_max_abs_diff"] = float(max(d_oa, d_miou))
    elif rec["ok"]:
        rec.update(ok=False, error_tail="no prediction.tif written")
    rec["loadavg_after"] = os.getloadavg()[0]
    rec["pred_path"] = os.path.relpath(rec["pred_path"], REPO)
    msg = (f"OA {rec['oa']:.3f} mIoU {rec['miou']:.3f}" if rec.get("ok") and "oa" in rec
           else f"FAILED rc={rec.get('rc')}: {rec.get('error_tail', '')[-300:]}")
    cc = rec.get("crosscheck_max_abs_diff")
    cc_msg = "" if cc is None else f" (engine evaluate diff {cc:.2g})"
    print(f"[{rec['label']} k={rec['k']} seed={rec['seed']}] {msg}  wall {rec['wall_s']:.1f}s{cc_msg}",
          flush=True)
    return rec


def engine_evaluate(python: str, pred: str, truth: str) -> dict | None:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([python, "-m", "engine", "evaluate", "--prediction", pred, "--truth", truth],
                          cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": (proc.stderr or proc.stdout)[-1000:], "rc": proc.returncode}
    return _parse_json(proc.stdout)


def _parse_json(text: str) -> dict:
    """The JSON object a command printed (tolerates log lines before it)."""
    try:
        obj = json.loads(text)
        if isinstance(obj, dict):
            return obj
    except ValueError:
        pass
    start = text.find("{")
    while start >= 0:
        try:
            obj = json.loads(text[start:])
            if isinstance(obj, dict):
                return obj
        except ValueError:
            pass
        start = text.find("{", start + 1)
    return {"error": "printed no JSON object: " + text[-500:]}


def engine_available(python: str) -> bool:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO
    p = subprocess.run([python, "-m", "engine", "--help"], cwd=REPO, env=env, capture_output=True)
    return p.returncode == 0


# ----------------------------------------------------------------------------------------- table
def summarise(records: list[dict]) -> list[dict]:
    rows: dict[tuple, list[dict]] = {}
    order: list[tuple] = []
    for r in records:
        key = (r["label"], r["k"])
        if key not in rows:
            rows[key] = []
            order.append(key)
        rows[key].append(r)
    out = []
    for key in sorted(order, key=lambda kk: (kk[1], order.index(kk))):
        rs = rows[key]
        ok = [r for r in rs if r.get("ok") and "oa" in r]

        def ms(name, ok=ok):
            v = np.array([r[name] for r in ok], float)
            if len(v) == 0:
                return float("nan"), float("nan")
            return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0

        out.append({"label": key[0], "k": key[1], "n_ok": len(ok), "n": len(rs),
                    "seeds": [r["seed"] for r in ok],
                    "oa": ms("oa"), "miou": ms("miou"), "wall_s": ms("wall_s"),
                    **{f"{m}_{sfx}": ms(f"{m}_{sfx}", [r for r in ok if f"oa_{sfx}" in r])
                       for m in ("oa", "miou") for sfx in ("tta", "smooth", "anchor")},
                    "cpu_s": [r["cpu_s"] for r in ok if r.get("cpu_s") is not None]})
    return out


def markdown(summary: list[dict], meta: dict) -> str:
    lines = [
        "# Indian Pines, sparse labels (METHODS.md section 3)",
        "",
        f"Run {meta['date']} on {meta['machine']}; preset `{meta['preset']}`; "
        f"seeds {', '.join(map(str, meta['seeds']))}.",
        "",
        "k labeled pixels per class drawn from the ground truth with `RandomState(seed)`; OA and mIoU over "
        "all remaining ground-truth pixels (10,249 - 16k). Mean ± sample standard deviation (ddof=1) "
        "over seeds. Wall s = time from start to a finished prediction raster (engine methods: the whole "
        "`python -m engine run` child process, interpreter start-up included; rf: fit + predict of all "
        "pixels in-process). CPU s = user + system CPU seconds of that work (engine: of the child "
        "process), which other load on the machine does not inflate; both are means over seeds. "
        "OA / mIoU: each run's prediction from one view per window (`--tta off`); 8 views: the same "
        "saved model predicted with test-time augmentation (`--tta on`, the engine's default on an image "
        "this small); 8 views + smoothing: also with edge-aware smoothing of the probabilities (`--smooth "
        "on`), what `predict` gives by default; default: the smoothing also holds the run's training labels "
        "at their class (`--anchor-labels on`), what `run` gives by default.",
        "",
        "| method | k | OA | mIoU | OA, 8 views | mIoU, 8 views | OA, 8 views + smoothing | "
        "mIoU, 8 views + smoothing | OA, default (labels held) | mIoU, default | wall s | CPU s | runs ok |",
        "|---|---:|---|---|---|---|---|---|---|---|---:|---:|---:|",
    ]
    for s in summary:
        def f(pair, nd=3, missing="failed"):
            m, sd = pair
            return missing if np.isnan(m) else f"{m:.{nd}f} ± {sd:.{nd}f}"
        wall = "-" if np.isnan(s["wall_s"][0]) else f"{s['wall_s'][0]:.1f}"
        cpu = "-" if not s["cpu_s"] else f"{np.mean(s['cpu_s']):.1f}"
        if s["cpu_s"] and len(s["cpu_s"]) < s["n_ok"]:
            cpu += f" ({len(s['cpu_s'])} runs)"
        lines.append(f"| {s['label']} | {s['k']} | {f(s['oa'])} | {f(s['miou'])} | "
                     f"{f(s['oa_tta'], missing='-')} | {f(s['miou_tta'], missing='-')} | "
                     f"{f(s['oa_smooth'], missing='-')} | {f(s['miou_smooth'], missing='-')} | "
                     f"{f(s['oa_anchor'], missing='-')} | {f(s['miou_anchor'], missing='-')} | "
                     f"{wall} | {cpu} | {s['n_ok']}/{s['n']} |")
    lines += ["", f"Command: `{meta['command']}`", ""]
    if meta.get("notes"):
        lines += [*("- " + n for n in meta["notes"]), ""]
    lines.append("RF reference (METHODS.md): OA 0.447 / mIoU 0.309 (k=5), OA 0.511 / mIoU 0.356 (k=10).")
    return "\n".join(lines) + "\n"


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores, CPU only" if model else f"{os.cpu_count()} cores"


# ----------------------------------------------------------------------------------------- main
def parse_variants(args) -> list[dict]:
    """Rows to run: dicts with label, method, extra (engine flags)."""
    extra = shlex.split(args.extra_args) if args.extra_args else []
    variants = []
    for m in [m.strip() for m in args.methods.split(",") if m.strip()]:
        if m == "rf":
            variants.append({"label": "rf", "method": "rf", "extra": []})
        else:
            label = f"{m} [{args.row_label}]" if args.row_label else m
            variants.append({"label": label, "method": m, "extra": list(extra)})
    for v in args.variant or []:
        label, _, rest = v.partition("=")
        parts = shlex.split(rest)
        if not label or not parts:
            raise SystemExit(f"--variant {v!r}: expected LABEL=METHOD [ENGINE FLAGS]")
        variants.append({"label": label.strip(), "method": parts[0], "extra": parts[1:] + list(extra)})
    return variants


def write_report(records: list[dict], args, argv, out_md: str, out_json: str) -> tuple[str, list]:
    """Write the markdown table and the JSON for ``records``; returns (markdown, failed runs)."""
    summary = summarise(records)
    notes = []
    for s in summary:
        if s["label"] == "rf" and s["k"] in RF_REFERENCE and s["n_ok"]:
            ref = RF_REFERENCE[s["k"]]
            notes.append(f"rf k={s['k']}: OA {s['oa'][0]:.3f} / mIoU {s['miou'][0]:.3f} here vs "
                         f"reference {ref[0]:.3f} / {ref[1]:.3f}.")
    diffs = [r["crosscheck_max_abs_diff"] for r in records if "crosscheck_max_abs_diff" in r]
    if diffs:
        notes.append(f"Cross-check: `engine evaluate` on a truth raster with the training pixels zeroed "
                     f"agrees with the benchmark's own OA/mIoU to within {max(diffs):.1e} "
                     f"({len(diffs)} runs).")
    loads = [r[k] for r in records for k in ("loadavg_before", "loadavg_after") if k in r]
    if loads:
        notes.append(f"1-min load average seen around the runs: {min(loads):.1f} to {max(loads):.1f} on "
                     f"{os.cpu_count()} cores (a load above the core count means other processes shared the "
                     "CPU and wall times are inflated).")
    if args.jobs > 1:
        notes.append(f"Engine runs went {args.jobs} at a time with {args.threads} torch thread(s) each "
                     "(SEMISEG_THREADS); rf used every core.")
    failed = [r for r in records if not r.get("ok")]
    if failed:
        notes.append(f"{len(failed)} run(s) failed; see the JSON for the command and error.")
    meta = {"date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(),
            "preset": args.preset, "seeds": args.seeds, "k": args.k,
            "command": "python bench/indian_pines.py " + " ".join(
                shlex.quote(repo_relative(a)) for a in (argv if argv is not None else sys.argv[1:])),
            "notes": notes, "python": platform.python_version()}
    md = markdown(summary, meta)
    with open(out_md, "w") as f:
        f.write(md)
    with open(out_json, "w") as f:
        json.dump({"meta": meta, "summary": summary, "runs": records}, f, indent=1)
    return md, failed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--methods", default="rf,supervised",
                    help="comma-separated: rf and/or engine methods (supervised, icnet, inpaint, ...)")
    ap.add_argument("--variant", action="append",
                    help='extra row "LABEL=METHOD [ENGINE FLAGS]", '
                         'e.g. "icnet-ref=icnet --icnet-mode reference"')
    ap.add_argument("--k", type=int, nargs="+", default=[5, 10])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--extra-args", default="", help="more flags for every engine run (one string)")
    ap.add_argument("--row-label", default="", help="tag appended to the row names of --methods engine runs")
    ap.add_argument("--out", default=os.path.join("bench", "results", "indian_pines.md"))
    ap.add_argument("--python", default=sys.executable, help="interpreter that runs the engine")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per engine run")
    ap.add_argument("--jobs", type=int, default=1, help="engine runs at a time")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads per engine run (default: cores / jobs)")
    ap.add_argument("--resume", action="store_true", help="reuse successful runs from the JSON at --out")
    ap.add_argument("--merge", action="append", default=[],
                    help="with --resume: also reuse successful runs from this JSON (repeatable)")
    ap.add_argument("--no-crosscheck", action="store_true", help="skip `engine evaluate` cross-check")
    args = ap.parse_args(argv)
    if args.threads <= 0 and args.jobs > 1:  # share the cores between the runs side by side
        args.threads = max(1, (os.cpu_count() or 1) // args.jobs)

    variants = parse_variants(args)
    out_md = args.out
    out_json = os.path.splitext(out_md)[0] + ".json"
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)

    image, gt = load_data()
    os.makedirs(WORK, exist_ok=True)
    image_tif = os.path.join(WORK, "image.tif")
    write_image(image, image_tif)
    write_class_raster(os.path.join(WORK, "truth.tif"), gt)
    n_classes = int(gt.max())
    print(f"Indian Pines: {image.shape[0]}x{image.shape[1]} px, {image.shape[2]} bands, {n_classes} classes, "
          f"{int((gt > 0).sum())} ground-truth pixels", flush=True)

    has_engine_methods = any(v["method"] != "rf" for v in variants)
    engine_ok = engine_available(args.python)
    if has_engine_methods and not engine_ok:
        print("warning: `python -m engine --help` fails; engine rows will be recorded as failed",
              file=sys.stderr)

    previous: dict[tuple, dict] = {}
    if args.resume:
        for src in [*args.merge, out_json]:
            if not os.path.exists(src):
                continue
            with open(src) as f:
                for r in json.load(f).get("runs", []):
                    if r.get("ok"):
                        previous[(r["label"], r["k"], r["seed"], r.get("preset"),
                                  tuple(r.get("extra", [])))] = r

    records: list[dict] = []
    tasks = []  # (rec, cmd, out_dir) of engine runs still to do
    for k in args.k:
        for seed in args.seeds:
            labels = draw_labels(gt, k, seed)
            tag = f"k{k}_s{seed}"
            labels_tif = os.path.join(WORK, f"labels_{tag}.tif")
            eval_tif = os.path.join(WORK, f"truth_eval_{tag}.tif")
            write_class_raster(labels_tif, labels)
            truth_eval = np.where(labels > 0, 0, gt).astype(np.uint8)
            write_class_raster(eval_tif, truth_eval)
            for v in variants:
                key = (v["label"], k, seed, args.preset if v["method"] != "rf" else None, tuple(v["extra"]))
                if key in previous:
                    add_tta_scores(previous[key], truth_eval, n_classes)  # columns added since
                    records.append(previous[key])
                    print(f"[{v['label']} k={k} seed={seed}] reused from an earlier run (--resume)")
                    continue
                safe = v["label"].replace(" ", "_").replace("/", "_").replace("[", "").replace("]", "")
                out_dir = os.path.join(WORK, "runs", f"{safe}_{args.preset}_{tag}")
                os.makedirs(out_dir, exist_ok=True)
                rec = {"label": v["label"], "method": v["method"], "k": k, "seed": seed,
                       "n_train": int((labels > 0).sum()), "extra": v["extra"],
                       "preset": args.preset if v["method"] != "rf" else None,
                       "eval_tif": eval_tif, "truth_eval": truth_eval}
                if v["method"] == "rf":
                    rec["loadavg_before"] = os.getloadavg()[0]
                    rec.update(run_rf(image, labels, seed, out_dir))
                    rec["command"] = "in-process RandomForestClassifier(n_estimators=500, n_jobs=-1)"
                    records.append(finish_record(rec, gt, n_classes, engine_ok, args))
                    write_report(records, args, argv, out_md, out_json)
                    continue
                cmd = engine_cmd(args.python, v["method"], args.preset, seed, image_tif, labels_tif,
                                 out_dir, v["extra"])
                rec["command"] = " ".join(shlex.quote(repo_relative(c)) for c in cmd)
                tasks.append((rec, cmd, out_dir))

    # the supervised baseline first (cheapest, and every other row is compared with it); the other
    # rows stay paired by k and seed, so an interrupted benchmark still compares like with like
    tasks.sort(key=lambda t: t[0]["method"] != "supervised")

    def one(rec, cmd, out_dir):
        rec["loadavg_before"] = os.getloadavg()[0]
        rec.update(run_engine(cmd, out_dir, args.timeout, args.threads))
        return finish_record(rec, gt, n_classes, engine_ok, args)

    # engine runs, --jobs at a time (each child gets --threads torch threads); every finished run is
    # written to the report at once, so an interrupted benchmark keeps its rows
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for done in concurrent.futures.as_completed([pool.submit(one, *t) for t in tasks]):
            records.append(done.result())
            write_report(records, args, argv, out_md, out_json)

    md, failed = write_report(records, args, argv, out_md, out_json)
    print()
    print(md)
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
