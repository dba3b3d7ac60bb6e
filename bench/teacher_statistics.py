"""An EMA teacher's batch-norm statistics: averaged from its students, or estimated for its own weights.

Trains ICNet as released (``--icnet-mode reference``: EMA teachers that average every weight since the
start, capped at 0.999) on Indian Pines, and every ``--every`` steps scores each teacher's one-view map
(OA over the evaluation pixels, the training pixels left out) three ways, all with the same weights:

* ``averaged``: running statistics averaged from the students' like the weights (what the teachers
  used before engine.ema kept statistics of their own), tracked here beside the run;
* ``own``: running statistics estimated afresh for the teacher's weights from 8 batches of unlabeled
  tiles (``engine.ema.refresh_statistics``, what fit() now does before validating and saving);
* the students themselves, for scale.

Usage (from the repository root; prepare the data with bench/indian_pines.py first)::

    .venv/bin/python bench/teacher_statistics.py --k 5 --seed 0 --steps 400 --every 50 \
        --out bench/results/teacher_statistics_indian_pines.md

Writes a markdown table and a JSON beside it; the run's own outputs go to a temporary folder.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

import indian_pines as ip  # noqa: E402

import engine.methods.icnet as icnet_module  # noqa: E402
from engine.cli import main as engine_main  # noqa: E402
from engine.ema import refresh_statistics  # noqa: E402
from engine.predict import predict_array  # noqa: E402
from engine.training import statistics_batches  # noqa: E402


def one_view_oa(net, chip, truth, device) -> float:
    cls, _ = predict_array([net], chip.x, chip.valid, device)
    m = truth > 0
    return float((cls[m] == truth[m]).mean())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--out", default=os.path.join("bench", "results", "teacher_statistics_indian_pines.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("SEMISEG_THREADS", "0")) or torch.get_num_threads())

    image = os.path.join(ip.WORK, "image.tif")
    labels = ip.labels_path(args.k, args.seed)
    truth = ip.read_prediction(os.path.join(ip.WORK, f"truth_eval_k{args.k}_s{args.seed}.tif"))
    rows: list[dict] = []
    averaged: dict[int, dict[str, torch.Tensor]] = {}  # per teacher: buffers averaged like the weights
    train_step = icnet_module.ICNet.train_step

    def probed_step(self, step, total):
        for m, teacher in enumerate(self.teachers):  # at the first step: the teachers' starting statistics
            averaged.setdefault(m, {k: v.clone() for k, v in teacher.model.net.state_dict().items()
                                    if "running" in k})
        decays = [t.decay() for t in self.teachers]  # what this step's EMA updates use
        out = train_step(self, step, total)
        for m, student in enumerate(self.students):
            for name, value in student.net.state_dict().items():
                if "running" in name:
                    averaged[m][name].lerp_(value, 1.0 - decays[m])
        if step % args.every and step != total:
            return out
        chip = self.data.chips[0]
        batches = statistics_batches(self.data.chips, self.cfg, self.device)  # as fit() refreshes with
        row = {"step": step}
        for m, (name, teacher) in enumerate(zip("AB", self.teachers, strict=True)):
            net = copy.deepcopy(teacher.model.net).eval()
            net.load_state_dict(averaged[m], strict=False)
            row[f"teacher {name}, averaged statistics"] = one_view_oa(net, chip, truth, self.device)
            refresh_statistics(net, batches)
            row[f"teacher {name}, own statistics"] = one_view_oa(net, chip, truth, self.device)
        for name, student in zip("AB", self.students, strict=True):
            net = copy.deepcopy(student.net).eval()
            row[f"student {name}"] = one_view_oa(net, chip, truth, self.device)
        print(json.dumps(row), flush=True)
        rows.append(row)
        return out

    icnet_module.ICNet.train_step = probed_step
    with tempfile.TemporaryDirectory() as tmp:
        rc = engine_main(["train", "--image", image, "--labels", labels, "--method", "icnet",
                          "--icnet-mode", "reference", "--preset", "fast", "--steps", str(args.steps),
                          "--seed", str(args.seed), "--val-fraction", "0", "--progress", "none",
                          "--out", os.path.join(tmp, "model.semiseg")])
    if rc != 0 or not rows:
        return rc or 1
    cols = list(rows[0])[1:]
    lines = [f"# ICNet as released: teacher statistics averaged or its own (Indian Pines, k = {args.k}, "
             f"seed {args.seed})", "",
             "One-view OA of each network on the evaluation pixels (training pixels left out), same "
             "weights, statistics as named.", "",
             "| step | " + " | ".join(cols) + " |", "|---:|" + "---:|" * len(cols)]
    lines += [f"| {r['step']} | " + " | ".join(f"{r[c]:.3f}" for c in cols) + " |" for r in rows]
    lines += ["", "Command: `python bench/teacher_statistics.py " + " ".join(argv or sys.argv[1:]) + "`"]
    text = "\n".join(lines) + "\n"
    with open(args.out, "w") as f:
        f.write(text)
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"args": vars(args), "rows": rows}, f, indent=1)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
