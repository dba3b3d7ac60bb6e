"""Prediction rasters carry internal overviews, so GIS software draws a large map zoomed out without
reading every pixel: classes by mode (never a blend of two classes), confidence by average."""

from __future__ import annotations

import numpy as np
import rasterio
import torch
from engine_helpers import LEARN_CLASSES, write_raster

from engine import modelfile
from engine.predict import overview_factors, predict_file


def test_overview_factors():
    assert overview_factors(145, 145) == [] and overview_factors(256, 200) == []
    assert overview_factors(640, 480) == [2, 4]  # 320, then 160 px
    assert overview_factors(100, 16384) == [2, 4, 8, 16, 32, 64]  # down to 256 px


def test_prediction_overviews_hold_classes_and_mean_confidence(learned, tmp_path):
    with rasterio.open(learned["image"]) as ds:
        img, profile = ds.read(), ds.profile
    big = np.pad(img, ((0, 0), (0, 600 - img.shape[1]), (0, 520 - img.shape[2])), mode="reflect")
    image = write_raster(tmp_path / "big.tif", big, crs=profile["crs"], transform=profile["transform"],
                         nodata=profile["nodata"])
    out, conf = tmp_path / "pred.tif", tmp_path / "conf.tif"
    predict_file(modelfile.load(str(learned["model"])), str(image), str(out), str(conf), torch.device("cpu"),
                 tta="off", smooth=False)
    with rasterio.open(out) as ds, rasterio.open(conf) as cds:
        assert ds.overviews(1) == cds.overviews(1) == [2, 4]
        cls, c = ds.read(1), cds.read(1)
    with rasterio.open(out, overview_level=0) as ds, rasterio.open(conf, overview_level=0) as cds:
        ov, cov = ds.read(1), cds.read(1)
    assert ov.shape == (300, 260)
    blocks = cls.reshape(300, 2, 260, 2).transpose(0, 2, 1, 3).reshape(300, 260, 4)
    assert len(np.unique(cls)) >= LEARN_CLASSES  # a real map, so the check is not trivial
    # mode: each overview pixel is one of its block's classes, and a block of one class keeps it
    assert np.all((blocks == ov[..., None]).any(-1))
    uniform = (blocks == blocks[..., :1]).all(-1)
    assert np.array_equal(ov[uniform], blocks[..., 0][uniform]) and (~uniform).any()
    # average: the confidence of a valid block is its mean
    cb = c.reshape(300, 2, 260, 2).transpose(0, 2, 1, 3).reshape(300, 260, 4)
    valid = (cb >= 0).all(-1)
    assert valid.mean() > 0.9
    assert np.allclose(cov[valid], cb[valid].mean(-1), atol=1e-4)


def test_small_prediction_has_no_overviews(learned):
    with rasterio.open(learned["prediction"]) as ds:  # 256 px: drawn whole anyway
        assert ds.overviews(1) == []
