"""Fixtures for the engine tests: real GeoTIFFs in tmp folders and one real (small) training run.

Training is kept tiny (fast preset, few steps, 64-px tiles) so the folder runs in a few minutes on two
busy CPU cores; the one longer run (``learned``) is shared by every test that needs a trained model.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from engine_helpers import LEARN_CLASSES, LEARN_CONFIG, LEARN_SEED, LEARN_SIZE, LEARN_STROKES


@pytest.fixture(autouse=True)
def _process_state():
    """Undo what ``engine.cli.main`` changes in this process: it installs SIGINT/SIGTERM handlers
    (cancellation) and sets torch's thread count. Tests that call the engine's functions directly run
    torch on one thread (see ``learned``)."""
    import torch

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    for s, h in saved.items():
        signal.signal(s, h)


@pytest.fixture(scope="session")
def learned(tmp_path_factory):
    """One real training run on a 256×256 4-band synthetic scene with scribbles: ``pipeline.run``, the
    function behind ``engine run`` (the CLI's flag mapping is covered by the tests that call ``main``).

    One torch thread: on two cores shared with other jobs, two spinning threads make training several
    times slower, and one thread also keeps the result bit-for-bit reproducible.

    Returns the scene paths plus the run's model, prediction, confidence and metrics paths. The learning
    test asserts its quality; tiling, georeferencing, model-file and band-mismatch tests reuse it.
    """
    import torch

    from engine.config import make_config
    from engine.pipeline import run
    from engine.progress import Reporter
    from engine.synthetic import write_scene

    folder = tmp_path_factory.mktemp("learned")
    scene = write_scene(str(folder), LEARN_SIZE, LEARN_SIZE, bands=4, classes=LEARN_CLASSES, seed=LEARN_SEED,
                        strokes_per_class=LEARN_STROKES)
    out = folder / "run"
    cfg = make_config("fast", seed=0, **LEARN_CONFIG)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        res = run(scene["image"], scene["labels"], str(out), cfg, torch.device("cpu"), Reporter("none"))
    finally:
        torch.set_num_threads(threads)
    assert Path(res["paths"]["model"]) == (out / "model.semiseg").resolve()
    return {**{k: Path(v) for k, v in scene.items()}, "folder": folder, "out": out,
            "model": out / "model.semiseg", "prediction": out / "prediction.tif",
            "confidence": out / "confidence.tif", "metrics": out / "metrics.json"}
