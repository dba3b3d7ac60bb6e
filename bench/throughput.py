"""Prediction throughput and memory of the engine on large synthetic rasters (fast preset).

1. Generates, once, synthetic 4-band uint16 GeoTIFFs of N x N px (default 4096, 8192, 16384) in
   ``bench/data/throughput/``: tiled, deflate-compressed, written window by window (the 16k raster,
   2 GiB of pixels, is never held in memory). The scene is a smooth random class field (argmax of
   per-class noise upsampled bilinearly from coarse grids at two scales) with class-dependent band
   means, a smooth brightness drift, class-dependent texture and per-pixel noise. For the training
   size it also writes a scribble label raster (short random-walk strokes clipped to their class) and
   the full truth raster.
2. Trains once on the smallest raster: ``python -m engine train --preset fast --progress jsonl``; train
   steps/s is measured from the timestamps at which the ``progress`` events arrive.
3. Predicts that model on every raster size in its own child process (``python -m engine predict``),
   measuring wall seconds (interpreter start-up and model load included), megapixels/s and the peak
   resident memory of that child (``ru_maxrss`` from ``os.wait4`` on exactly that process).

Usage (from the repository root)::

    .venv/bin/python bench/throughput.py --sizes 4096 8192 16384 --out bench/results/throughput.md
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, "bench", "data", "throughput")

N_CLASSES = 5
N_BANDS = 4
TILE = 256  # GeoTIFF block size
WINDOW = 1024  # generation window (a multiple of TILE)
CELLS = (256, 64)  # coarse-grid cell sizes (px) of the two noise octaves of the class field
WEIGHTS = (1.0, 0.45)
DRIFT_CELL = 512  # brightness drift grid cell (px)
PIXEL_SIZE_M = 0.5
CRS = "EPSG:32633"
ORIGIN = (400000.0, 5800000.0)
CLASS_NAMES = ["water", "forest", "grassland", "cropland", "built-up"]


# ------------------------------------------------------------------------------ procedural scene
class Scene:
    """A deterministic synthetic scene of ``size`` x ``size`` px evaluated window by window."""

    def __init__(self, size: int, seed: int = 0):
        self.size = size
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.grids = [rng.standard_normal((N_CLASSES, size // cell + 2, size // cell + 2)).astype(np.float32)
                      for cell in CELLS]
        self.drift = rng.standard_normal((N_BANDS, size // DRIFT_CELL + 2, size // DRIFT_CELL + 2)
                                         ).astype(np.float32)
        # class x band means (digital numbers): well separated but not trivially (overlap via noise)
        self.means = np.array([
            [400, 600, 500, 300],      # water: dark, lowest NIR
            [500, 800, 550, 3200],     # forest: high NIR
            [700, 1100, 900, 2600],    # grassland
            [900, 1200, 1300, 2200],   # cropland
            [1500, 1550, 1600, 1800],  # built-up: bright, flat
        ], np.float32)
        self.texture = np.array([40, 260, 120, 200, 330], np.float32)  # class texture amplitude
        self.noise = 90.0  # per-pixel sensor noise sigma
        self.drift_amp = 120.0

    @staticmethod
    def _bilinear(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, cell: int) -> np.ndarray:
        """Upsample ``grid`` (C, gh, gw) at pixel rows x cols (outer product) -> (C, len(rows), len(cols))."""
        y = (rows.astype(np.float32) + 0.5) / cell
        x = (cols.astype(np.float32) + 0.5) / cell
        i0 = np.floor(y).astype(np.int64)
        j0 = np.floor(x).astype(np.int64)
        fy = (y - i0)[None, :, None]
        fx = (x - j0)[None, None, :]
        g00 = grid[:, i0][:, :, j0]
        g01 = grid[:, i0][:, :, j0 + 1]
        g10 = grid[:, i0 + 1][:, :, j0]
        g11 = grid[:, i0 + 1][:, :, j0 + 1]
        return (g00 * (1 - fy) * (1 - fx) + g01 * (1 - fy) * fx + g10 * fy * (1 - fx) + g11 * fy * fx)

    def classes(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Class ids 1..K of the window rows r0:r1, cols c0:c1 (uint8)."""
        rows, cols = np.arange(r0, r1), np.arange(c0, c1)
        field = sum(w * self._bilinear(g, rows, cols, cell)
                    for g, cell, w in zip(self.grids, CELLS, WEIGHTS, strict=True))
        return (np.argmax(field, axis=0) + 1).astype(np.uint8)

    def pixels(self, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, np.ndarray]:
        """(bands (B, h, w) uint16, classes (h, w) uint8) of a window; noise seeded by the window."""
        cls = self.classes(r0, r1, c0, c1)
        h, w = cls.shape
        rng = np.random.default_rng([self.seed, r0, c0, 1])
        rows, cols = np.arange(r0, r1), np.arange(c0, c1)
        img = np.transpose(self.means[cls - 1], (2, 0, 1)).copy()  # (B, h, w)
        img += self.drift_amp * self._bilinear(self.drift, rows, cols, DRIFT_CELL)
        tex = rng.standard_normal((h, w), dtype=np.float32)
        # spatially correlated texture: average of the field with its shifted self (cheap 2x2 blur)
        tex[1:, :] = 0.5 * (tex[1:, :] + tex[:-1, :])
        tex[:, 1:] = 0.5 * (tex[:, 1:] + tex[:, :-1])
        img += (self.texture[cls - 1] * tex)[None]
        img += self.noise * rng.standard_normal((N_BANDS, h, w), dtype=np.float32)
        np.clip(img, 1, 65535, out=img)
        return img.astype(np.uint16), cls


def _profile(size: int, count: int, dtype: str) -> dict:
    from rasterio.transform import from_origin

    return {"driver": "GTiff", "width": size, "height": size, "count": count, "dtype": dtype,
            "crs": CRS, "transform": from_origin(ORIGIN[0], ORIGIN[1], PIXEL_SIZE_M, PIXEL_SIZE_M),
            "tiled": True, "blockxsize": TILE, "blockysize": TILE, "compress": "deflate",
            "predictor": 2, "interleave": "pixel" if count > 1 else "band", "BIGTIFF": "IF_SAFER",
            "NUM_THREADS": "ALL_CPUS"}


def image_path(size: int) -> str:
    return os.path.join(WORK, f"synth_{size}.tif")


def labels_path(size: int) -> str:
    return os.path.join(WORK, f"synth_{size}_labels.tif")


def truth_path(size: int) -> str:
    return os.path.join(WORK, f"synth_{size}_truth.tif")


def _class_table(path: str) -> None:
    try:
        sys.path.insert(0, REPO)
        from engine.categories import ClassTable, default_colour, write_class_table

        write_class_table(path, ClassTable(list(CLASS_NAMES),
                                           [default_colour(i) for i in range(1, N_CLASSES + 1)]))
    except Exception as e:  # cosmetic
        print(f"note: no class names in {os.path.basename(path)} ({e})", file=sys.stderr)


def generate_image(size: int, seed: int = 0, with_truth: bool = False) -> float:
    """Write synth_<size>.tif (and optionally its truth raster) window by window; returns seconds."""
    import rasterio
    from rasterio.windows import Window

    path = image_path(size)
    need_truth = with_truth and not os.path.exists(truth_path(size))
    if os.path.exists(path) and not need_truth:
        return 0.0
    os.makedirs(WORK, exist_ok=True)
    scene = Scene(size, seed)
    t0 = time.perf_counter()
    write_img = not os.path.exists(path)
    tmp, ttmp = path + ".part.tif", truth_path(size) + ".part.tif"
    img_ds = rasterio.open(tmp, "w", **_profile(size, N_BANDS, "uint16")) if write_img else None
    tru_ds = rasterio.open(ttmp, "w", **_profile(size, 1, "uint8")) if need_truth else None
    n_win = ((size + WINDOW - 1) // WINDOW) ** 2
    done = 0
    try:
        for r0 in range(0, size, WINDOW):
            for c0 in range(0, size, WINDOW):
                r1, c1 = min(r0 + WINDOW, size), min(c0 + WINDOW, size)
                win = Window(c0, r0, c1 - c0, r1 - r0)
                if img_ds is not None:
                    img, cls = scene.pixels(r0, r1, c0, c1)
                    img_ds.write(img, window=win)
                else:
                    cls = scene.classes(r0, r1, c0, c1)
                if tru_ds is not None:
                    tru_ds.write(cls, 1, window=win)
                done += 1
                if done % 16 == 0 or done == n_win:
                    print(f"  synth_{size}: {done}/{n_win} windows, {time.perf_counter() - t0:.0f}s",
                          flush=True)
    finally:
        for ds in (img_ds, tru_ds):
            if ds is not None:
                ds.close()
    if write_img:
        os.replace(tmp, path)
    if need_truth:
        os.replace(ttmp, truth_path(size))
        _class_table(truth_path(size))
    return time.perf_counter() - t0


def generate_labels(size: int, seed: int = 0, strokes_per_class: int = 25) -> dict:
    """Scribbles: per class, random-walk strokes (brush radius 2) clipped to pixels of that class."""
    import rasterio

    path = labels_path(size)
    if os.path.exists(path):
        with rasterio.open(path) as ds:
            lab = ds.read(1)
        return {"labeled_px": int((lab > 0).sum())}
    scene = Scene(size, seed)
    rng = np.random.default_rng([seed, 7])
    labels = np.zeros((size, size), np.uint8)  # 16 MiB at 4096 px: the label raster is small
    margin, steps, step_len, radius = min(32, size // 8), 60, 3.0, 2
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = (yy ** 2 + xx ** 2) <= radius ** 2
    for c in range(1, N_CLASSES + 1):
        made, tries = 0, 0
        while made < strokes_per_class and tries < 200 * strokes_per_class:
            tries += 1
            border = min(margin + 100, size // 4)  # strokes start away from the edges
            r, col = rng.integers(border, size - border, 2)
            if scene.classes(r, r + 1, col, col + 1)[0, 0] != c:
                continue
            ang = rng.uniform(0, 2 * np.pi)
            pts = []
            y, x = float(r), float(col)
            for _ in range(steps):
                pts.append((int(round(y)), int(round(x))))
                ang += rng.normal(0, 0.25)
                y += step_len * np.sin(ang)
                x += step_len * np.cos(ang)
            pts = np.array(pts)
            pts = np.clip(pts, margin, size - margin - 1)
            ra, rb = pts[:, 0].min() - radius, pts[:, 0].max() + radius + 1
            ca, cb = pts[:, 1].min() - radius, pts[:, 1].max() + radius + 1
            stroke = np.zeros((rb - ra, cb - ca), bool)
            for py, px in pts:
                stroke[py - ra - radius:py - ra + radius + 1, px - ca - radius:px - ca + radius + 1] |= disk
            truth = scene.classes(ra, rb, ca, cb)
            keep = stroke & (truth == c)
            sub = labels[ra:rb, ca:cb]
            sub[keep] = c
            made += 1
    tmp = path + ".part.tif"
    with rasterio.open(tmp, "w", **_profile(size, 1, "uint8")) as ds:
        ds.write(labels, 1)
    os.replace(tmp, path)
    _class_table(path)
    return {"labeled_px": int((labels > 0).sum()),
            "per_class": [int((labels == c).sum()) for c in range(1, N_CLASSES + 1)]}


# ------------------------------------------------------------------------------ child processes
def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_measured(cmd: list[str], log_path: str, timeout: float | None = None,
                 on_line=None) -> dict:
    """Run ``cmd``; wall seconds and the peak RSS (MiB) of exactly that child, via os.wait4.

    If ``on_line`` is given, stdout is read line by line and each line is passed with its arrival
    time (time.perf_counter()); stderr (and stdout otherwise) goes to ``log_path``.
    """
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=_env(), stdout=subprocess.PIPE if on_line else log,
                                stderr=log, text=True, bufsize=1)
        if on_line:
            for line in proc.stdout:
                on_line(line, time.perf_counter())
                log.write(line)
                log.flush()
            proc.stdout.close()
        status, rusage = None, None
        while True:
            pid, st, ru = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                status, rusage = st, ru
                break
            if timeout is not None and time.perf_counter() - t0 > timeout:
                proc.kill()
                _, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from waiting again
    wall = time.perf_counter() - t0
    rec = {"rc": proc.returncode, "wall_s": wall,
           "peak_rss_mib": rusage.ru_maxrss / 1024.0,  # Linux: KiB
           "user_s": rusage.ru_utime, "sys_s": rusage.ru_stime,
           "loadavg_before": load_before, "loadavg_after": os.getloadavg()[0]}
    if proc.returncode != 0:
        with open(log_path, errors="replace") as f:
            rec["error_tail"] = f.read()[-2000:]
    return rec


def train(python: str, size: int, model: str, seed: int, extra: list[str], timeout: float | None) -> dict:
    events: list[tuple[float, dict]] = []

    def on_line(line: str, t: float):
        line = line.strip()
        if line.startswith("{"):
            try:
                events.append((t, json.loads(line)))
            except ValueError:
                pass

    cmd = [python, "-m", "engine", "train", "--image", image_path(size), "--labels", labels_path(size),
           "--preset", "fast", "--seed", str(seed), "--out", model, "--progress", "jsonl", *extra]
    rec = run_measured(cmd, os.path.join(os.path.dirname(model), "train.log"), timeout, on_line)
    rec["command"] = _show(cmd, python)
    prog = [(t, e) for t, e in events
            if e.get("event") == "progress" and isinstance(e.get("step"), int | float)]
    done = [e for _, e in events if e.get("event") == "done"]
    rec["n_progress_events"] = len(prog)
    if len(prog) >= 2:
        (t_a, e_a), (t_b, e_b) = prog[0], prog[-1]
        if t_b - t_a > 0.5:
            rec["steps_per_s"] = (e_b["step"] - e_a["step"]) / (t_b - t_a)
            rec["steps_measured"] = [e_a["step"], e_b["step"]]
        else:
            rec["note"] = "progress events arrived in a burst (stdout buffered?); steps/s not measurable"
        rec["total_steps"] = e_b.get("total_steps", e_b["step"])
        stages = sorted({str(e.get("stage")) for _, e in prog if e.get("stage") is not None})
        if stages:
            rec["stages"] = stages
    if done:
        d = done[-1]
        rec["done_event"] = {k: v for k, v in d.items() if k not in ("model",)}
        for src in (d, d.get("metrics") or {}):
            for key in ("steps_per_s", "train_steps_per_s"):
                if isinstance(src, dict) and key in src:
                    rec["steps_per_s_reported"] = src[key]
        if isinstance(d.get("metrics"), dict) and "train_seconds" in d["metrics"]:
            rec["train_seconds_reported"] = d["metrics"]["train_seconds"]
    rec["events"] = len(events)
    return rec


def predict(python: str, size: int, model: str, out_dir: str, confidence: bool, extra: list[str],
            timeout: float | None) -> dict:
    pred = os.path.join(out_dir, f"pred_{size}.tif")
    cmd = [python, "-m", "engine", "predict", "--model", model, "--image", image_path(size), "--out", pred]
    if confidence:
        cmd += ["--confidence", os.path.join(out_dir, f"conf_{size}.tif")]
    cmd += ["--progress", "none", *extra]
    rec = run_measured(cmd, os.path.join(out_dir, f"predict_{size}.log"), timeout)
    rec["command"] = _show(cmd, python)
    rec["size"] = size
    rec["mpx"] = size * size / 1e6
    rec["mpx_per_s"] = rec["mpx"] / rec["wall_s"]
    rec["pred"] = pred
    return rec


def baseline_rss(python: str, model: str) -> dict:
    cmd = [python, "-m", "engine", "info", "--model", model]
    rec = run_measured(cmd, os.path.join(os.path.dirname(model), "info.log"))
    rec["command"] = _show(cmd, python)
    return rec


def evaluate(python: str, pred: str, truth: str) -> dict | None:
    p = subprocess.run([python, "-m", "engine", "evaluate", "--prediction", pred, "--truth", truth],
                       cwd=REPO, env=_env(), capture_output=True, text=True)
    if p.returncode != 0:
        return {"error": (p.stderr or p.stdout)[-800:]}
    text = p.stdout
    start = text.find("{")
    while start >= 0:
        try:
            obj = json.loads(text[start:])
            if isinstance(obj, dict):
                return obj
        except ValueError:
            pass
        start = text.find("{", start + 1)
    return {"error": "no JSON from evaluate"}


def _show(cmd: list[str], python: str) -> str:
    out = []
    for c in cmd:
        if c == python:
            out.append("python")
        elif os.path.isabs(c):
            out.append(os.path.relpath(c, REPO))
        else:
            out.append(c)
    return " ".join(shlex.quote(c) for c in out)


def machine() -> str:
    model = platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


# ------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[4096, 8192, 16384])
    ap.add_argument("--train-size", type=int, default=None,
                    help="raster size to train on (default: smallest)")
    ap.add_argument("--out", default=os.path.join("bench", "results", "throughput.md"))
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-confidence", action="store_true", help="predict without the confidence raster")
    ap.add_argument("--generate-only", action="store_true", help="write the rasters and stop")
    ap.add_argument("--retrain", action="store_true", help="train even if the model file exists")
    ap.add_argument("--train-args", default="", help="more flags for engine train (one string)")
    ap.add_argument("--predict-args", default="", help="more flags for engine predict (one string)")
    ap.add_argument("--keep", action="store_true",
                    help="keep prediction rasters larger than the training size")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per engine child")
    args = ap.parse_args(argv)

    sizes = sorted(set(args.sizes))
    train_size = args.train_size or sizes[0]
    os.makedirs(WORK, exist_ok=True)
    gen = {}
    for s in sorted(set(sizes + [train_size])):
        print(f"raster {s}x{s} ...", flush=True)
        gen[s] = {"seconds": generate_image(s, args.seed, with_truth=(s == train_size)),
                  "file_mib": os.path.getsize(image_path(s)) / 2 ** 20}
    lab = generate_labels(train_size, args.seed)
    print(f"labels on {train_size}x{train_size}: {lab['labeled_px']} labeled px", flush=True)
    if args.generate_only:
        print(json.dumps({"generated": gen, "labels": lab}, indent=1))
        return 0

    out_md = args.out
    out_json = os.path.splitext(out_md)[0] + ".json"
    os.makedirs(os.path.dirname(os.path.abspath(out_md)), exist_ok=True)
    # run outputs (model, logs, predictions) live in a folder named after --out, so two runs with
    # different --out never share files; the model name records the training flags, so a model
    # trained with e.g. --steps 10 is never reused by a run without them.
    run_dir = os.path.join(WORK, "runs", os.path.splitext(os.path.basename(out_md))[0])
    os.makedirs(run_dir, exist_ok=True)
    targs = shlex.split(args.train_args)
    tag = hashlib.sha1(" ".join(targs).encode()).hexdigest()[:8] if targs else "default"
    model = os.path.join(run_dir, f"model_fast_{train_size}_s{args.seed}_{tag}.semiseg")
    train_rec = None
    if args.retrain or not os.path.exists(model):
        print("training (fast preset) ...", flush=True)
        train_rec = train(args.python, train_size, model, args.seed, targs, args.timeout)
        print(f"  train: rc={train_rec['rc']} wall {train_rec['wall_s']:.1f}s "
              f"steps/s {train_rec.get('steps_per_s', float('nan')):.3f} "
              f"peak RSS {train_rec['peak_rss_mib']:.0f} MiB", flush=True)
        if train_rec["rc"] != 0:
            print(train_rec.get("error_tail", ""), file=sys.stderr)
            with open(out_json, "w") as f:
                json.dump({"train": train_rec}, f, indent=1)
            return 1
    else:
        print(f"reusing {os.path.relpath(model, REPO)} (--retrain to train again)", flush=True)
        if os.path.exists(out_json):
            with open(out_json) as f:
                train_rec = json.load(f).get("train")

    base = baseline_rss(args.python, model)
    print(f"  baseline (engine info): peak RSS {base['peak_rss_mib']:.0f} MiB, {base['wall_s']:.1f}s",
          flush=True)
    preds: list[dict] = []

    def report() -> str:
        ok = {r["size"]: r for r in preds if r["rc"] == 0}
        ratio = None
        if 16384 in ok and 4096 in ok:
            ratio = ok[16384]["peak_rss_mib"] / ok[4096]["peak_rss_mib"]
        lo, hi = (min(ok), max(ok)) if ok else (None, None)
        ratio_any = ok[hi]["peak_rss_mib"] / ok[lo]["peak_rss_mib"] if ok and hi != lo else None

        lines = [
            "# Prediction throughput, fast preset",
            "",
            f"Run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} on {machine()}, CPU only. "
            f"Synthetic {N_BANDS}-band uint16 rasters ({N_CLASSES} classes), tiled {TILE} px, deflate. "
            "One model trained "
            f"once on the {train_size}² raster (`engine train --preset fast"
            f"{' ' + args.train_args if args.train_args else ''}`), then `engine predict"
            f"{'' if args.no_confidence else ' --confidence'}` in a fresh child process per size. "
            "Predict s = wall "
            "time of that child (interpreter start-up, torch import and model load included); peak RSS = "
            "`ru_maxrss` of that child from `os.wait4`; predict CPU s = its user + system CPU seconds "
            "(not inflated by other load on the machine).",
            "",
            "| size (px) | megapixels | predict s | MP/s | predict CPU s | peak RSS MiB |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in preds:
            if r["rc"] == 0:
                lines.append(f"| {r['size']}² | {r['mpx']:.1f} | {r['wall_s']:.1f} | {r['mpx_per_s']:.3g} | "
                             f"{r['user_s'] + r['sys_s']:.0f} | {r['peak_rss_mib']:.0f} |")
            else:
                lines.append(f"| {r['size']}² | {r['mpx']:.1f} | failed (rc {r['rc']}) | - | - | - |")
        todo = [sz for sz in sizes if sz not in {r["size"] for r in preds}]
        if todo:
            lines.append(f"| (still to run: {', '.join(f'{sz}²' for sz in todo)}) | | | | | |")
        lines.append("")
        if ratio is not None:
            lines.append(f"Peak RSS ratio 16384² / 4096²: **{ratio:.2f}** (bar: ≤ 1.5) — "
                         f"{'meets' if ratio <= 1.5 else 'misses'} the bar.")
        elif ratio_any is not None:
            lines.append(f"Peak RSS ratio {hi}² / {lo}²: {ratio_any:.2f}.")
        lines.append(f"Baseline: `engine info` (imports + model load, no raster) peaks at "
                     f"{base['peak_rss_mib']:.0f} MiB in {base['wall_s']:.1f} s.")
        if train_rec:
            sps = train_rec.get("steps_per_s")
            lines += ["", f"Training ({train_size}², fast preset, seed {args.seed}): "
                      f"{train_rec['wall_s']:.0f} s wall, "
                      + (f"{sps:.3f} train steps/s (from progress-event arrival times, steps "
                         f"{train_rec['steps_measured'][0]}→{train_rec['steps_measured'][1]}), "
                         if sps else
                         f"steps/s not measured ({train_rec.get('note', 'no progress events')}), ")
                      + (f"engine-reported {train_rec['steps_per_s_reported']} steps/s; "
                         if train_rec.get("steps_per_s_reported") is not None else "")
                      + f"peak RSS {train_rec['peak_rss_mib']:.0f} MiB; "
                      f"{lab['labeled_px']} scribbled px."]
        ev = next((r.get("evaluate_vs_truth") for r in preds if r.get("evaluate_vs_truth")), None)
        if ev and "error" not in ev:
            lines.append(f"Sanity: the {train_size}² prediction scores OA {ev.get('oa', float('nan')):.3f} / "
                         f"mIoU {ev.get('miou', float('nan')):.3f} against the synthetic truth.")
        loads = [r[k] for r in preds + [base] + ([train_rec] if train_rec else [])
                 for k in ("loadavg_before", "loadavg_after") if k in r]
        if loads:
            lines.append(f"1-min load average around the runs: {min(loads):.1f} to {max(loads):.1f} on "
                         f"{os.cpu_count()} "
                         "cores (above the core count, other processes shared the CPU and times are "
                         "inflated).")
        threads = os.environ.get("SEMISEG_THREADS")
        cores = len(os.sched_getaffinity(0))
        if threads or cores != os.cpu_count():
            lines.append(f"Engine children ran with SEMISEG_THREADS={threads or 'unset'} on {cores} of "
                         f"{os.cpu_count()} cores (CPU affinity), while other work used the rest.")
        lines += ["", "Raster generation (once, window by window): " + ", ".join(
            f"{s}² {g['file_mib']:.0f} MiB on disk" + (f" in {g['seconds']:.0f} s" if g["seconds"] else "")
            for s, g in gen.items()) + ".", "",
            "Command: `python bench/throughput.py " + " ".join(
                shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])) + "`"]
        md = "\n".join(lines) + "\n"
        with open(out_md, "w") as f:
            f.write(md)
        with open(out_json, "w") as f:
            json.dump({"machine": machine(), "train": train_rec, "baseline_info": base, "predict": preds,
                       "rss_ratio_16k_4k": ratio, "generation": {str(k): v for k, v in gen.items()},
                       "labels": lab}, f, indent=1)
        return md

    for s in sizes:
        print(f"predict {s}x{s} ...", flush=True)
        rec = predict(args.python, s, model, run_dir, not args.no_confidence, shlex.split(args.predict_args),
                      args.timeout)
        msg = (f"{rec['wall_s']:.1f}s, {rec['mpx_per_s']:.2f} MP/s, peak RSS {rec['peak_rss_mib']:.0f} MiB"
               if rec["rc"] == 0 else f"FAILED rc={rec['rc']}: {rec.get('error_tail', '')[-400:]}")
        print(f"  {msg}", flush=True)
        if rec["rc"] == 0 and s == train_size and os.path.exists(truth_path(s)):
            ev = evaluate(args.python, rec["pred"], truth_path(s))
            rec["evaluate_vs_truth"] = ev
            if ev and "error" not in ev:
                print(f"  sanity: OA {ev.get('oa', float('nan')):.3f} "
                      f"mIoU {ev.get('miou', float('nan')):.3f} "
                      "against the synthetic truth", flush=True)
        if rec["rc"] == 0 and s > train_size and not args.keep:
            for p in (rec["pred"], os.path.join(run_dir, f"conf_{s}.tif")):
                for q in (p, p + ".aux.xml"):
                    if os.path.exists(q):
                        os.remove(q)
        rec["pred"] = os.path.relpath(rec["pred"], REPO)
        preds.append(rec)
        report()  # write what is measured so far (a long run that is stopped keeps its rows)

    print()
    print(report())
    return 0 if all(r["rc"] == 0 for r in preds) else 1


if __name__ == "__main__":
    sys.exit(main())
