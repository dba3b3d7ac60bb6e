"""A band tagged alpha is the image's mask only when it holds a mask's values.

GDAL tags the fourth band of any 4-band 8-bit GeoTIFF alpha when it is written with its defaults, a NAIP
image's near-infrared too: that band used to be dropped from the inputs and used as the mask, so the
near-infrared was lost and its 0 pixels became nodata. A band of image values is now a band (and said, as
a warning), and a true 0/255 alpha stays the mask.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
from engine_helpers import TINY_TRAIN, jsonl_events, run_cli, write_raster
from rasterio.enums import ColorInterp

from engine.raster import ImageWarning, band_count, band_summary, data_bands, open_image, read_block

SIDE = 64


def _rgb(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(1, 255, (3, SIDE, SIDE), dtype=np.uint8)


def _nir() -> np.ndarray:
    """Continuous values 0..255, 0 at 16 pixels per 4096."""
    return (np.arange(SIDE * SIDE).reshape(SIDE, SIDE) % 256).astype(np.uint8)


def _four_bands(path, fourth: np.ndarray, **extra):
    """A 4-band uint8 GeoTIFF written with GDAL's defaults (band 4 then tagged alpha) or ``extra``."""
    write_raster(path, np.concatenate([_rgb(), fourth[None]]), **extra)
    with rasterio.open(path) as ds:
        assert ds.colorinterp[3] == ColorInterp.alpha  # what the defect needs
    return path


def test_an_alpha_tagged_band_of_image_values_is_a_band(tmp_path):
    path = _four_bands(tmp_path / "naip.tif", _nir())
    with pytest.warns(ImageWarning) as said, open_image(str(path)) as ds:
        assert data_bands(ds) == (1, 2, 3, 4)
        assert band_count(ds) == 4
        x, valid = read_block(ds, 0, 0, SIDE, SIDE)
        assert "tagged alpha but holds image values" in band_summary(ds)
    assert valid.all()  # its 0 pixels are not nodata
    np.testing.assert_array_equal(x[3], _nir())
    messages = [str(w.message) for w in said]
    assert len(messages) == 1  # judged once per open raster
    assert str(path) in messages[0] and "band 4 is tagged alpha but holds image values" in messages[0]
    assert said[0].message.code == "alpha_is_a_band"


def test_a_true_alpha_stays_the_mask(tmp_path):
    alpha = np.full((SIDE, SIDE), 255, np.uint8)
    alpha[:, :20] = 0  # transparent, as outside a mosaic's footprint
    path = _four_bands(tmp_path / "rgba.tif", alpha, photometric="RGB", alpha="YES")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ImageWarning)
        with open_image(str(path)) as ds:
            assert data_bands(ds) == (1, 2, 3)
            assert band_summary(ds) == "3 band(s) + alpha (used as the mask)"
            _, valid = read_block(ds, 0, 0, SIDE, SIDE)
    assert not valid[:, :20].any() and valid[:, 20:].all()


def test_run_on_an_image_whose_fourth_band_is_near_infrared(tmp_path, capsys):
    """``engine run`` and then ``engine predict`` on the same image: the model has 4 bands, no map pixel
    is nodata, and the warning is one event."""
    image = _four_bands(tmp_path / "naip.tif", _nir())
    labels = np.zeros((SIDE, SIDE), np.uint8)
    labels[4:12, 4:28] = 1
    labels[40:48, 20:52] = 2
    labels = write_raster(tmp_path / "labels.tif", labels)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, ["run", "--image", image, "--labels", labels, "--out-dir", out,
                                       *TINY_TRAIN, "--progress", "jsonl"])
    assert rc == 0, err
    alpha = [e for e in jsonl_events(stdout) if e["event"] == "warning" and e["code"] == "alpha_is_a_band"]
    assert len(alpha) == 1 and "band 4 is tagged alpha" in alpha[0]["message"]
    rc, info, err = run_cli(capsys, ["info", "--model", out / "model.semiseg"])
    assert rc == 0, err
    assert json.loads(info)["bands"] == 4
    with rasterio.open(out / "prediction.tif") as ds:
        assert (ds.read(1) != 0).all() and ds.read_masks(1).all()
    again = tmp_path / "again.tif"
    rc, _, err = run_cli(capsys, ["predict", "--model", out / "model.semiseg", "--image", image, "--out",
                                  again, "--device", "cpu", "--progress", "none"])
    assert rc == 0, err
    with rasterio.open(again) as ds:
        assert (ds.read(1) != 0).all()


def test_judged_on_the_pixels_that_are_not_transparent(tmp_path):
    """Near-infrared values on a thin strip of a mostly 0 collar are a band; an alpha whose footprint
    edge is feathered (values between 0 and 255 there, as gdalwarp -dstalpha leaves) is a mask."""
    side = 512
    strip = np.zeros((side, side), np.uint8)
    strip[180:220] = np.arange(side) % 200 + 1  # 8 % of the pixels
    feathered = np.full((side, side), 255, np.uint8)
    feathered[:, :100] = 0
    feathered[:, 100] = 128
    for name, fourth, bands in (("strip", strip, (1, 2, 3, 4)), ("feathered", feathered, (1, 2, 3))):
        rgb = np.random.default_rng(1).integers(1, 255, (3, side, side), dtype=np.uint8)
        path = write_raster(tmp_path / f"{name}.tif", np.concatenate([rgb, fourth[None]]))
        with warnings.catch_warnings(), open_image(str(path)) as ds:
            warnings.simplefilter("ignore", ImageWarning)
            assert ds.colorinterp[3] == ColorInterp.alpha
            assert data_bands(ds) == bands, name
