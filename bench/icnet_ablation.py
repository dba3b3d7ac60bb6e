"""ICNet on Indian Pines: the main comparison and the ablation (issue 3), through bench/indian_pines.py.

1. Main table, k = 5 and 10: rf, supervised, icnet reference, icnet improved
   -> ``bench/results/icnet_indian_pines.md`` (+ ``.json``).
2. Ablation, k = 5: improved minus each addition (``--no-conf-mask``, ``--no-class-adaptive``,
   ``--no-cutmix``, ``--no-contrastive``, ``--no-ensemble``), plus the iterative rounds that are off by
   default (``--rounds 2``; with it ``--pool-fraction 0`` and ``--reseed``)
   -> ``bench/results/icnet_ablation.md``. The full ``icnet`` rows (and rf / supervised) of step 1 are
   reused, not re-run: the ablation JSON starts as a copy of the main one and runs with ``--resume``.

Usage (from the repository root)::

    .venv/bin/python bench/icnet_ablation.py [--seeds 0 1 2] [--preset fast] [--extra-args "..."]
    .venv/bin/python bench/icnet_ablation.py --only ablation   # step 2 alone
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "bench", "results")
SWITCHES = ("conf-mask", "class-adaptive", "cutmix", "contrastive", "ensemble")
ABLATIONS = {f"-{name}": f"--no-{name}" for name in SWITCHES}
ABLATIONS["+rounds"] = "--rounds 2"  # iterative rounds (off by default): the pool refreshed at round 2
ABLATIONS["+rounds -rank-pool"] = "--rounds 2 --pool-fraction 0"  # pool: confidence thresholds only
ABLATIONS["+rounds +reseed"] = "--rounds 2 --reseed"  # the weaker student re-initialised at round 2


def bench(args: list[str]) -> int:
    cmd = [sys.executable, os.path.join(REPO, "bench", "indian_pines.py"), *args]
    print("$", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=REPO).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--extra-args", default="", help="flags for every engine run (all rows alike)")
    ap.add_argument("--only", choices=["main", "ablation"], default=None)
    ap.add_argument("--timeout", type=float, default=None, help="seconds per engine run")
    ap.add_argument("--jobs", type=int, default=1, help="engine runs at a time (one torch thread share each)")
    ap.add_argument("--threads", type=int, default=0,
                    help="torch CPU threads per engine run (default: cores / jobs)")
    a = ap.parse_args(argv)
    common = ["--preset", a.preset, "--seeds", *map(str, a.seeds), "--resume"]
    if a.extra_args:
        common += ["--extra-args", a.extra_args]
    if a.jobs > 1:
        common += ["--jobs", str(a.jobs)]
    if a.timeout:
        common += ["--timeout", str(a.timeout)]
    if a.threads:
        common += ["--threads", str(a.threads)]
    main_md = os.path.join(RESULTS, "icnet_indian_pines.md")
    abl_md = os.path.join(RESULTS, "icnet_ablation.md")
    rc = 0
    if a.only in (None, "main"):
        rc |= bench(["--methods", "rf,supervised,icnet",
                     "--variant", "icnet reference=icnet --icnet-mode reference",
                     "--k", "5", "10", "--out", main_md, *common])
    if a.only in (None, "ablation"):
        main_json, abl_json = (os.path.splitext(p)[0] + ".json" for p in (main_md, abl_md))
        if os.path.exists(main_json):  # reuse the full-icnet k=5 runs (and anything else already done)
            if os.path.exists(abl_json):
                with open(main_json) as f:
                    runs = json.load(f)["runs"]
                with open(abl_json) as f:
                    merged = json.load(f)
                merged["runs"] = runs + merged["runs"]
                with open(abl_json, "w") as f:
                    json.dump(merged, f)
            else:
                shutil.copyfile(main_json, abl_json)
        variants = [arg for name, flags in ABLATIONS.items()
                    for arg in ("--variant", f"icnet {name}=icnet {flags}")]
        rc |= bench(["--methods", "icnet", *variants, "--k", "5", "--out", abl_md, *common])
    return rc


if __name__ == "__main__":
    sys.exit(main())
