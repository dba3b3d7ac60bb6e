"""Does this engine split labels into training and validation strokes exactly as another commit's does?

For each label raster given, the other checkout's ``engine.data.split_labels`` runs in a child process
(fraction 0.2, seed 0, on whatever label form that commit's function takes: a whole array before labels
were held as patches) and this checkout's runs here; the script prints, per file, the number of patches
this engine holds the labels in and whether both the training and the validation pixels are identical.
Exit status 1 when any differ.

Usage (from the repository root)::

    .venv/bin/python bench/split_compare.py --repo CHECKOUT_OF_4d716f9 LABELS.tif [LABELS.tif ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import rasterio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

OLD = """import sys, numpy as np, rasterio
sys.path.insert(0, sys.argv[1])
from engine.data import split_labels
out = {}
for i, path in enumerate(sys.argv[3:]):
    with rasterio.open(path) as ds:
        out[f"t{i}"], out[f"v{i}"] = split_labels(ds.read(1), 0.2, 0)
np.savez_compressed(sys.argv[2], **out)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", required=True, help="checkout of the commit to compare with")
    ap.add_argument("labels", nargs="+", help="label rasters (each on its own grid)")
    args = ap.parse_args()
    from engine.data import split_labels
    from engine.labels import load_labels

    with tempfile.TemporaryDirectory() as tmp:
        saved = os.path.join(tmp, "old.npz")
        subprocess.run([sys.executable, "-c", OLD, os.path.abspath(args.repo), saved, *args.labels],
                       check=True)
        old = np.load(saved)
        same_everywhere = True
        for i, path in enumerate(args.labels):
            with rasterio.open(path) as ds:
                lab = load_labels(path, ds, min_classes=1)
            train, val = split_labels(lab.patches, 0.2, 0)
            t = train.window(0, 0, *lab.shape)
            v = val.window(0, 0, *lab.shape) if val is not None else np.zeros(lab.shape, np.uint8)
            same = np.array_equal(t, old[f"t{i}"]) and np.array_equal(v, old[f"v{i}"])
            same_everywhere &= same
            print(f"{os.path.relpath(path)}: {len(lab.patches.crops)} patch(es), {int((v > 0).sum())} "
                  f"validation px, {'identical' if same else 'DIFFERENT'}")
    return 0 if same_everywhere else 1


if __name__ == "__main__":
    raise SystemExit(main())
