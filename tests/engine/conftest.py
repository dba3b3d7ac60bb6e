"""Fixtures for the engine tests: real GeoTIFFs in tmp folders and one real (small) training run.

Training is kept tiny (fast preset, few steps, 64-px tiles) so the folder runs in a few minutes on two
busy CPU cores; the one longer run (``learned``) is shared by every test that needs a trained model.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from engine_helpers import LEARN_SEED, LEARN_SIZE, LEARN_STEPS, LEARN_STROKES


@pytest.fixture(autouse=True)
def _restore_signal_handlers():
    """``engine.cli.main`` installs SIGINT/SIGTERM handlers (cancellation); give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.fixture(scope="session")
def learned(tmp_path_factory):
    """One real training run (``engine run``) on a 256×256 4-band synthetic scene with scribbles.

    Returns the scene paths plus the run's model, prediction, confidence and metrics paths. The learning
    test asserts its quality; tiling, georeferencing, model-file and band-mismatch tests reuse it.
    """
    from engine.cli import main
    from engine.synthetic import write_scene

    folder = tmp_path_factory.mktemp("learned")
    scene = write_scene(str(folder), LEARN_SIZE, LEARN_SIZE, bands=4, classes=4, seed=LEARN_SEED,
                        strokes_per_class=LEARN_STROKES)
    out = folder / "run"
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        rc = main(["run", "--image", scene["image"], "--labels", scene["labels"], "--out-dir", str(out),
                   "--preset", "fast", "--steps", str(LEARN_STEPS), "--tile-size", "64", "--device", "cpu",
                   "--seed", "0", "--progress", "none"])
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
    assert rc == 0
    return {**{k: Path(v) for k, v in scene.items()}, "folder": folder, "out": out,
            "model": out / "model.semiseg", "prediction": out / "prediction.tif",
            "confidence": out / "confidence.tif", "metrics": out / "metrics.json"}
