"""A model applied to imagery unlike its training image says so (a warning, not a refusal): another
scaling of the band values, another pixel size."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from engine_helpers import jsonl_events, run_cli, write_raster
from rasterio.transform import Affine

from engine.fit_check import grid_facts, resolution_warning, values_warning
from engine.raster import BandStats


def _warnings(capsys, learned, image, tmp_path) -> dict:
    rc, stdout, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", image,
                                       "--out", tmp_path / "pred.tif", "--tta", "off", "--smooth", "off",
                                       "--device", "cpu", "--progress", "jsonl"])
    assert rc == 0, err  # a warning never stops the map
    assert (tmp_path / "pred.tif").exists()
    return {e["code"]: e["message"] for e in jsonl_events(stdout) if e["event"] == "warning"}


def _variant(learned, path, scale: float = 1.0, pixel: float | None = None):
    with rasterio.open(learned["image"]) as ds:
        img, profile = ds.read().astype(np.float32), ds.profile
    t = profile["transform"]
    transform = t if pixel is None else Affine(pixel, 0, t.c, 0, -pixel, t.f)
    return write_raster(path, img * scale, crs=profile["crs"], transform=transform, nodata=profile["nodata"])


def test_the_training_image_fits_its_model(capsys, learned, tmp_path):
    assert _warnings(capsys, learned, learned["image"], tmp_path) == {}


def test_rescaled_band_values_are_flagged(capsys, learned, tmp_path):
    image = _variant(learned, tmp_path / "reflectance.tif", scale=1 / 10000)  # 0..10000 -> 0..1
    found = _warnings(capsys, learned, image, tmp_path)
    assert list(found) == ["values_differ"]
    assert str(image) in found["values_differ"] and "same sensor and scaling" in found["values_differ"]


def test_another_pixel_size_is_flagged(capsys, learned, tmp_path):
    with rasterio.open(learned["image"]) as ds:
        pixel = ds.transform.a
    found = _warnings(capsys, learned, _variant(learned, tmp_path / "coarse.tif", pixel=4 * pixel), tmp_path)
    assert list(found) == ["resolution_differs"]
    assert f"{4 * pixel:.3g} m pixels" in found["resolution_differs"]
    near = _variant(learned, tmp_path / "near.tif", pixel=1.5 * pixel)
    assert _warnings(capsys, learned, near, tmp_path) == {}


def test_values_warning_thresholds():
    trained = BandStats(np.array([0.0, 100.0]), np.array([255.0, 200.0]))

    def stats(low, high):
        return BandStats(np.array(low, float), np.array(high, float))

    assert values_warning(trained, stats([10, 90], [240, 230]), "x.tif") is None  # another scene, same sensor
    assert values_warning(trained, stats([0, 100], [255, 200]), "x.tif") is None
    wide = values_warning(trained, stats([0, 0], [255, 1000]), "x.tif")  # band 2: 10x as wide
    assert wide and "band 2" in wide
    shifted = values_warning(trained, stats([300, 100], [560, 200]), "x.tif")  # band 1 moved by > a range
    assert shifted and "band 1" in shifted


@pytest.mark.parametrize("crs, pixel, expected", [
    ("EPSG:32633", 2.0, (2.0, "metre")),
    ("EPSG:2263", 10.0, (10.0 * 0.3048006096, "metre")),  # US survey feet, compared in metres
    ("EPSG:4326", 1e-4, (1e-4, "degree")),
])
def test_grid_facts_in_comparable_units(tmp_path, crs, pixel, expected):
    path = write_raster(tmp_path / "g.tif", np.zeros((1, 4, 4), np.uint8), crs=crs,
                        transform=Affine(pixel, 0, 1000, 0, -pixel, 2000))
    with rasterio.open(path) as ds:
        facts = grid_facts(ds)
        assert facts["pixel_size"] == pytest.approx([expected[0]] * 2) and facts["units"] == expected[1]
        coarse = resolution_warning({"pixel_size": [100.0, 100.0], "units": "metre"}, ds, str(path))
        # metres are compared with metres (feet converted), never with degrees
        assert (coarse is None) == (expected[1] == "degree")


def test_export_takes_the_training_resolution_from_the_model(learned):
    from engine import modelfile
    from engine.export import training_resolution_cm

    model = modelfile.load(str(learned["model"]))
    with rasterio.open(learned["image"]) as ds:
        assert training_resolution_cm(model) == pytest.approx(100 * ds.transform.a)  # metres -> cm
    assert model.provenance["grid"]["crs"] == "EPSG:32633"
    model.provenance.pop("grid")  # a model file from before it was recorded: nothing to guess
    assert training_resolution_cm(model) is None
