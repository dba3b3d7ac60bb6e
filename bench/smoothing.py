"""Edge-aware smoothing (`predict --smooth on|off`) beyond Indian Pines: accuracy, time and memory.

For every saved model that the other benchmarks left behind (and whose truth raster exists), predicts
its image twice in a fresh engine process each -- ``--smooth off`` then ``--smooth on``, everything
else left at the defaults (``--tta auto``) -- and scores both with ``engine evaluate`` against the full
truth. Wall seconds and peak resident memory are those of each predict child (``os.wait4``).

Cases (skipped with a note when their files are missing; make them with the scripts named):

* synthetic scene 1024² px, 4 bands, 4 classes: supervised and icnet (bench/synthetic_scene.py
  [--method icnet]);
* synthetic throughput raster 4096² px (16.8 MP, so one view per window on a CPU), 4 bands, 5 classes
  (bench/throughput.py).

Usage (from the repository root)::

    .venv/bin/python bench/smoothing.py [--out bench/results/smoothing.md]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "bench", "data")
CASES = [  # label, model, image, truth (relative to bench/data)
    ("synthetic scene 1024², supervised", "synthetic_scene/run/model.semiseg", "synthetic_scene/image.tif",
     "synthetic_scene/truth.tif"),
    ("synthetic scene 1024², icnet", "synthetic_scene/run_icnet/model.semiseg", "synthetic_scene/image.tif",
     "synthetic_scene/truth.tif"),
    ("throughput raster 4096², supervised", "throughput/runs/throughput/model_fast_4096_s0_default.semiseg",
     "throughput/synth_4096.tif", "throughput/synth_4096_truth.tif"),
]


def engine(args: list[str]) -> dict:
    """Run ``python -m engine ARGS`` in a fresh process; its wall seconds, CPU seconds and peak memory."""
    env = dict(os.environ, PYTHONPATH=REPO)
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=REPO, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"engine {args[0]} failed (exit {proc.returncode}): {' '.join(args)}")
    return {"wall_s": time.perf_counter() - t0, "cpu_s": usage.ru_utime + usage.ru_stime,
            "peak_rss_mib": usage.ru_maxrss / 1024.0}


def predict(model: str, image: str, out: str, smooth: str) -> dict:
    return engine(["predict", "--model", model, "--image", image, "--out", out, "--smooth", smooth,
                   "--device", "cpu", "--progress", "none"])


def evaluate(pred: str, truth: str) -> dict:
    res = subprocess.run([sys.executable, "-m", "engine", "evaluate", "--prediction", pred, "--truth", truth],
                         cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), check=True, capture_output=True,
                         text=True)
    return json.loads(res.stdout)


def write_report(out: str, lines: list[str], record: dict) -> None:
    """The markdown ``lines`` to ``out`` (also printed) and ``record`` as JSON beside it."""
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(record, f, indent=1)
    print("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join("bench", "results", "smoothing.md"))
    args = ap.parse_args(argv)
    work = os.path.join(DATA, "smoothing")
    os.makedirs(work, exist_ok=True)
    rows, notes = [], []
    for i, (label, model, image, truth) in enumerate(CASES):
        model, image, truth = (os.path.join(DATA, p) for p in (model, image, truth))
        missing = [os.path.relpath(p, REPO) for p in (model, image, truth) if not os.path.exists(p)]
        if missing:
            notes.append(f"{label}: skipped, {', '.join(missing)} missing")
            print(notes[-1], flush=True)
            continue
        for smooth in ("off", "on"):
            out = os.path.join(work, f"case{i}_{smooth}.tif")
            rec = {"case": label, "smooth": smooth, **predict(model, image, out, smooth)}
            sc = evaluate(out, truth)
            rec.update(oa=sc["oa"], miou=sc["miou"])
            rows.append(rec)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rec.items()}),
                  flush=True)
    lines = ["# Edge-aware smoothing beyond Indian Pines", "",
             f"Run {datetime.datetime.now():%Y-%m-%d %H:%M} on {os.cpu_count()} CPU cores (no GPU), "
             f"SEMISEG_THREADS={os.environ.get('SEMISEG_THREADS', 'unset')}; each prediction a fresh "
             "`python -m engine predict` process (start-up and model load included), `--tta auto`; "
             "scored with `engine evaluate` against the full truth.", "",
             "| case | smoothing | OA | mIoU | predict wall s | CPU s | peak RSS MiB |",
             "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['case']} | {r['smooth']} | {r['oa']:.4f} | {r['miou']:.4f} | {r['wall_s']:.1f} | "
              f"{r['cpu_s']:.1f} | {r['peak_rss_mib']:.0f} |" for r in rows]
    lines += ["", "Command: `python bench/smoothing.py`", "", *("- " + n for n in notes)]
    write_report(args.out, lines, {"runs": rows, "notes": notes})
    return 0


if __name__ == "__main__":
    sys.exit(main())
