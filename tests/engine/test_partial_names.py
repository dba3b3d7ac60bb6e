"""Outputs are written under a per-process partial name: a second engine writing the same file at the
same time (two runs given one output folder) neither clobbers nor deletes this one's work."""

import os

import numpy as np
import rasterio

from engine.cli import main
from engine.io_out import partial_path
from engine.synthetic import write_scene


def test_another_runs_partial_files_are_left_alone(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=11)
    out_dir = tmp_path / "run"
    out_dir.mkdir()
    # what a concurrent run into the same folder would have on disk under the shared names of old
    others = [out_dir / "prediction.partial.tif", out_dir / "model.semiseg.part",
              out_dir / "metrics.json.partial"]
    for f in others:
        f.write_bytes(b"another run's half-written file")
    assert main(["run", "--image", paths["image"], "--labels", paths["labels"], "--out-dir", str(out_dir),
                 "--preset", "fast", "--steps", "2", "--tile-size", "32", "--device", "cpu",
                 "--progress", "none", "--tta", "off", "--smooth", "off"]) == 0
    assert all(f.read_bytes() == b"another run's half-written file" for f in others)
    with rasterio.open(out_dir / "prediction.tif") as ds:
        pred = ds.read(1)
    assert pred.shape == (64, 64) and set(np.unique(pred)) <= {0, 1, 2, 3} and pred.max() > 0
    mine = [partial_path(str(out_dir / n)) for n in ("prediction.tif", "model.semiseg", "metrics.json")]
    assert not any(os.path.exists(p) for p in mine)
    assert str(os.getpid()) in partial_path("x.tif")
