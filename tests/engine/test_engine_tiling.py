"""Block-wise prediction of a raster larger than one block shows no seams."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from engine_helpers import LEARN_CLASSES, write_raster

from engine import modelfile
from engine.predict import predict_file

SIZE = 300  # not a multiple of the block size nor of the network stride: partial edge blocks


@pytest.fixture(scope="module")
def big_image(learned, tmp_path_factory):
    """The learned scene grown to 300×300 by mirroring its right and bottom edges (content the model
    knows, so predictions are meaningful everywhere)."""
    with rasterio.open(learned["image"]) as ds:
        img, profile = ds.read(), ds.profile
    pad = SIZE - img.shape[1]
    big = np.pad(img, ((0, 0), (0, pad), (0, pad)), mode="reflect")
    path = tmp_path_factory.mktemp("tiling") / "big.tif"
    return write_raster(path, big, crs=profile["crs"], transform=profile["transform"],
                        nodata=profile["nodata"])


def _predict(model, image, out, core):
    conf = out.with_name(out.stem + "_conf.tif")
    predict_file(model, str(image), str(out), str(conf), torch.device("cpu"), core=core)
    with rasterio.open(out) as ds, rasterio.open(conf) as cds:
        return ds.read(1), cds.read(1)


@pytest.mark.parametrize("core", [64, 96])
def test_blockwise_prediction_matches_whole_image(learned, big_image, tmp_path, core):
    model = modelfile.load(str(learned["model"]))
    whole, whole_conf = _predict(model, big_image, tmp_path / "whole.tif", core=4096)
    tiled, tiled_conf = _predict(model, big_image, tmp_path / "tiled.tif", core=core)
    assert whole.shape == tiled.shape == (SIZE, SIZE)
    with rasterio.open(big_image) as ds:
        valid = np.all(ds.read_masks() > 0, axis=0)
    # a real segmentation (not one class everywhere), so agreement is not trivial
    assert len(np.unique(whole[valid])) == LEARN_CLASSES
    assert np.all((whole[valid] >= 1) & (whole[valid] <= LEARN_CLASSES))
    assert np.all(whole[~valid] == 0) and np.all(tiled[~valid] == 0)

    differ = whole != tiled
    assert differ.mean() <= 0.005, f"{differ.mean():.4%} of labels change with {core}-px blocks"

    # No seam: disagreement is not concentrated on the block borders.
    idx = np.arange(SIZE)
    near = np.zeros(SIZE, bool)
    for b in range(core, SIZE, core):
        near |= np.abs(idx - b) <= 2
    border = near[:, None] | near[None, :]
    at_border = differ[border].mean()
    elsewhere = differ[~border].mean()
    assert at_border <= max(3 * elsewhere, 0.002), (
        f"seams: {at_border:.4%} of border pixels differ vs {elsewhere:.4%} elsewhere")

    # the confidence (max softmax) agrees too, not only its argmax
    assert np.abs(whole_conf[valid] - tiled_conf[valid]).mean() < 1e-3


def test_windows_beyond_the_raster_edge_are_filled_by_mirroring_and_stay_invalid():
    from engine.predict import mirrored

    h, w = 5, 7
    x = np.arange(3 * h * w, dtype=np.float32).reshape(3, h, w)
    valid = np.ones((h, w), bool)
    valid[2, 3] = False  # a nodata pixel inside stays as it is

    def inside(r, c, hh, ww):
        assert r >= 0 and c >= 0 and r + hh <= h and c + ww <= w  # never asked beyond the raster
        return x[:, r:r + hh, c:c + ww].copy(), valid[r:r + hh, c:c + ww].copy()

    read = mirrored(inside, h, w)
    got, v = read(-2, -3, 9, 12)  # sticks out 2 rows above, 2 below, 3 columns left, 2 right
    assert np.array_equal(got, np.pad(x, ((0, 0), (2, 2), (3, 2)), mode="symmetric"))
    assert got[0, 1, 2] == x[0, 0, 0]  # the pixel beyond the corner mirrors the corner
    expected = np.zeros((9, 12), bool)
    expected[2:7, 3:10] = valid
    assert np.array_equal(v, expected)
    # a window wholly inside is read as it is; one wholly outside is zero and invalid
    assert np.array_equal(read(1, 1, 3, 3)[0], x[:, 1:4, 1:4])
    out, v_out = mirrored(lambda r, c, hh, ww: (np.zeros((3, hh, ww), np.float32), np.zeros((hh, ww), bool)),
                          h, w)(10, 10, 4, 4)
    assert not out.any() and not v_out.any()
