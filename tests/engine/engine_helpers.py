"""Helpers shared by the engine tests (imported as ``engine_helpers``; fixtures live in conftest.py).

The engine is exercised the way its users drive it: ``engine.cli.main([...])`` in-process (fast, stderr
captured by pytest) or ``python -m engine ...`` as a child process where the real stdout/stderr/exit code
matter.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio

REPO_ROOT = Path(__file__).resolve().parents[2]

# Small, fixed training settings shared by the tests (speed matters more than quality except in the
# learning test, which sets its own step count).
TINY_STEPS = 3
TINY_TRAIN = ["--preset", "fast", "--tile-size", "32", "--batch-size", "2", "--steps", str(TINY_STEPS),
              "--device", "cpu"]

# The scene the learning test trains on and the other tests reuse (one training for many checks).
LEARN_SIZE = 256
LEARN_SEED = 0
LEARN_STROKES = 6
LEARN_CLASSES = 3
# fast preset overrides: a short schedule (see the learning test for how it was chosen)
LEARN_CONFIG = {"steps": 100, "tile_size": 64}


def run_cli(capsys, args: list[str]) -> tuple[int, str, str]:
    """Run the CLI in this process; return (exit code, stdout, stderr)."""
    from engine.cli import main

    capsys.readouterr()  # drop anything printed before
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def run_engine(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m engine ...`` as a child process from the repository root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run([sys.executable, "-m", "engine", *[str(a) for a in args]], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def jsonl_events(stdout: str) -> list[dict]:
    """Parse every stdout line as one JSON event (fails the test on any non-JSON line)."""
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]


def leftovers(folder: Path) -> list[str]:
    """Everything in ``folder`` (recursively), as relative paths; [] when it does not exist."""
    folder = Path(folder)
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def write_raster(path: Path, data: np.ndarray, crs="EPSG:32633", transform=None, nodata=None, **extra):
    """Write a (C, H, W) or (H, W) array as a GeoTIFF."""
    from rasterio.transform import from_origin

    data = data if data.ndim == 3 else data[None]
    transform = transform or from_origin(500000.0, 5000000.0, 1.0, 1.0)
    with rasterio.open(path, "w", driver="GTiff", height=data.shape[1], width=data.shape[2],
                       count=data.shape[0], dtype=data.dtype, crs=crs, transform=transform,
                       nodata=nodata, **extra) as ds:
        ds.write(data)
    return path


def predict_modes(capsys, learned: dict, folder: Path, option: str, modes, extra=()) -> dict:
    """`engine predict` of the learned model with ``option`` set to each of ``modes``: per mode the
    predict stage's message, the class map and its accuracy on the truth's labeled pixels."""
    with rasterio.open(learned["truth"]) as ds:
        truth = ds.read(1)
    known = truth > 0
    out = {}
    for mode in modes:
        path = folder / f"pred_{option.strip('-')}_{mode}.tif"
        rc, stdout, _ = run_cli(capsys, ["predict", "--model", learned["model"], "--image", learned["image"],
                                         "--out", path, option, mode, *extra, "--device", "cpu",
                                         "--progress", "jsonl"])
        assert rc == 0
        stage = next(e for e in jsonl_events(stdout)
                     if e.get("event") == "stage" and e.get("stage") == "predict")
        with rasterio.open(path) as ds:
            pred = ds.read(1)
        out[mode] = {"message": stage.get("message", ""), "map": pred,
                     "accuracy": float((pred[known] == truth[known]).mean())}
    return out


def split_label_array(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """engine.data.split_labels on a whole label array: (train, val) arrays shaped like it."""
    from engine.data import split_labels
    from engine.labels import LabelPatches

    train, val = split_labels(LabelPatches.from_array(labels), fraction, seed)

    def whole(patches):
        return np.zeros_like(labels) if patches is None else patches.window(0, 0, *labels.shape)

    return whole(train), whole(val)


def random_image(path: Path, height: int, width: int, origin=(500000.0, 5000000.0), seed: int = 0) -> Path:
    """A 3-band uint8 GeoTIFF of noise on a 1 m grid whose top-left corner is ``origin`` (EPSG:32633)."""
    from rasterio.transform import from_origin

    rng = np.random.default_rng(seed)
    return write_raster(path, rng.integers(0, 255, (3, height, width), dtype=np.uint8),
                        transform=from_origin(*origin, 1.0, 1.0))
