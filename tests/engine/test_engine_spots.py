"""Where to paint next: the least confident cells of a map, spread apart, found while it is written."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin

from engine import modelfile
from engine.predict import predict_file
from engine.spots import MIN_VALID, SPACING, SpotFinder, spot_cell


def test_cell_size_follows_the_map_size():
    assert spot_cell(145, 145) == 8  # Indian Pines
    assert spot_cell(640, 640) == 32  # the bundled sample
    assert spot_cell(50_000, 50_000) == 64
    assert spot_cell(3, 3) == 8


def _cell_means(conf: np.ndarray, valid: np.ndarray, c: int) -> np.ndarray:
    h, w = conf.shape
    out = np.full((-(-h // c), -(-w // c)), np.inf)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            v = valid[i * c:(i + 1) * c, j * c:(j + 1) * c]
            if v.sum() >= MIN_VALID * c * c:
                out[i, j] = conf[i * c:(i + 1) * c, j * c:(j + 1) * c][v].mean()
    return out


def test_blocks_add_up_to_the_cells_and_spots_are_least_sure_first_and_apart():
    rng = np.random.default_rng(0)
    h, w, c = 100, 90, 8
    conf = rng.uniform(0.6, 1.0, (h, w))
    valid = np.ones((h, w), bool)
    valid[:, 85:] = False  # a no-data strip: its cells are (partly) unmapped
    conf[40:48, 16:24] = 0.2  # the least sure cell
    conf[40:48, 24:32] = 0.25  # its neighbour: too close to be listed too
    conf[80:88, 64:72] = 0.3
    conf[96:, 80:88] = 0.0  # a cell cut by the map's edge and the strip: under half mapped, never listed
    finder = SpotFinder(h, w, from_origin(1000, 2000, 2, 2), cell=c)
    for r0, c0, bh, bw in ((0, 0, 37, 50), (0, 50, 37, 40), (37, 0, 63, 90)):  # blocks not on cell edges
        finder.add(conf[r0:r0 + bh, c0:c0 + bw], valid[r0:r0 + bh, c0:c0 + bw], r0, c0)
    spots = finder.spots(limit=5, origin=(10, 20))
    assert [(s["row"], s["col"]) for s in spots[:2]] == [(50, 36), (90, 84)]  # origin added
    assert spots[0]["confidence"] == pytest.approx(0.2) and spots[1]["confidence"] == pytest.approx(0.3)
    assert spots[0]["bounds"] == [1000 + 16 * 2, 2000 - 48 * 2, 1000 + 24 * 2, 2000 - 40 * 2]
    cells = [((s["row"] - 10) // c, (s["col"] - 20) // c) for s in spots]
    for i, a in enumerate(cells):
        for b in cells[:i]:
            assert max(abs(a[0] - b[0]), abs(a[1] - b[1])) >= SPACING
    # the rest in order of their mean confidence, as computed from the whole arrays
    means = _cell_means(conf, valid, c)
    assert [s["confidence"] for s in spots] == sorted(s["confidence"] for s in spots)
    for s, (i, j) in zip(spots, cells, strict=True):
        assert s["confidence"] == pytest.approx(means[i, j], abs=1e-4)
    assert (96 // c, 80 // c) not in cells


def test_a_predicted_map_lists_its_least_confident_cells(learned, tmp_path):
    model = modelfile.load(str(learned["model"]))
    how = predict_file(model, str(learned["image"]), str(tmp_path / "p.tif"), str(tmp_path / "c.tif"),
                       torch.device("cpu"), tta="off")
    with rasterio.open(tmp_path / "c.tif") as ds:
        conf = ds.read(1)
        transform = ds.transform
    valid = conf >= 0
    c = spot_cell(*conf.shape)
    means = _cell_means(np.where(valid, conf, 0), valid, c)
    spots = how["spots"]
    assert len(spots) == 10 and all(s["size"] == c for s in spots)
    first = spots[0]
    assert first["confidence"] == pytest.approx(means.min(), abs=1e-4)
    assert first["confidence"] == pytest.approx(means[first["row"] // c, first["col"] // c], abs=1e-4)
    x0, y1 = transform * (first["col"], first["row"])
    assert first["bounds"][0] == pytest.approx(x0) and first["bounds"][3] == pytest.approx(y1)
    assert first["confidence"] < float(np.median(means[np.isfinite(means)]))
