"""How much of each class a map holds: pixel areas from the grid (projected, feet, geographic on the
WGS 84 ellipsoid) and the per-class tally written with every map (metrics.json, the done event)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
import torch
from engine_helpers import TINY_TRAIN, jsonl_events, run_cli, write_raster
from rasterio.crs import CRS
from rasterio.transform import Affine, from_origin

from engine import modelfile
from engine.areas import ClassTally, areas_text, row_pixel_areas
from engine.predict import predict_file

WGS84_SURFACE_M2 = 510_065_621.724e6  # the WGS 84 ellipsoid's surface area, as published


def _ellipsoid_band(lat0: float, lat1: float, lon_deg: float, n: int = 20_000) -> float:
    """m² of a lat/lon cell on WGS 84 by integrating M(φ)·N(φ)·cos φ numerically (independent of the
    closed form the engine uses)."""
    a, f = 6_378_137.0, 1 / 298.257223563
    e2 = f * (2 - f)
    phi = np.radians(np.linspace(lat0, lat1, n + 1))
    w = 1 - e2 * np.sin(phi) ** 2
    integrand = (a * (1 - e2) / w ** 1.5) * (a / np.sqrt(w)) * np.cos(phi)
    return float(np.trapz(integrand, phi)) * math.radians(lon_deg)


def test_projected_pixels_have_their_grid_area_in_metres():
    utm = row_pixel_areas(from_origin(500_000, 5_000_000, 10, 10), CRS.from_epsg(32633), 0, 3)
    assert utm.tolist() == [100.0] * 3
    rotated = Affine.rotation(30) * Affine.scale(2, -2)  # rotation keeps the cell area
    assert row_pixel_areas(rotated, CRS.from_epsg(32633), 0, 1)[0] == pytest.approx(4.0)
    feet = row_pixel_areas(from_origin(900_000, 200_000, 10, 10), CRS.from_epsg(2263), 0, 1)[0]  # US feet
    assert feet == pytest.approx((10 * 1200 / 3937) ** 2, rel=1e-9)


def test_geographic_rows_have_the_area_of_their_latitude_band():
    one_degree = from_origin(0.0, 1.0, 1.0, 1.0)  # row 0: latitudes 1°..0°
    got = row_pixel_areas(one_degree, CRS.from_epsg(4326), 0, 1)[0]
    assert got == pytest.approx(_ellipsoid_band(0.0, 1.0, 1.0), rel=1e-7)
    assert got == pytest.approx(12_308.8e6, rel=1e-4)  # ≈ 110.6 km × 111.3 km
    high = row_pixel_areas(from_origin(0.0, 61.0, 1.0, 1.0), CRS.from_epsg(4326), 0, 1)[0]
    assert high == pytest.approx(_ellipsoid_band(60.0, 61.0, 1.0), rel=1e-7)  # about half, at 60° N
    # a whole-globe grid of 1° cells adds up to the ellipsoid's surface
    globe = row_pixel_areas(from_origin(-180.0, 90.0, 1.0, 1.0), CRS.from_epsg(4326), 0, 180)
    assert globe.sum() * 360 == pytest.approx(WGS84_SURFACE_M2, rel=1e-9)


def test_grids_that_say_nothing_of_metres_give_no_area():
    assert row_pixel_areas(from_origin(0, 0, 1, 1), None, 0, 1) is None
    rotated = Affine.rotation(10) * Affine.scale(0.1, -0.1)
    assert row_pixel_areas(rotated, CRS.from_epsg(4326), 0, 1) is None
    tally = ClassTally(2, from_origin(0, 0, 1, 1), None)
    tally.add(np.array([[1, 1, 2, 0]], np.uint8), 0)
    summary = tally.summary(["a", "b"])
    assert summary["unit"] is None and "hectares" not in summary["classes"]["a"]
    assert summary["classes"]["a"] == {"pixels": 2, "share": pytest.approx(2 / 3)}
    assert summary["nodata_pixels"] == 1
    assert areas_text(summary) == "a 2 px (66.7 %), b 1 px (33.3 %)"


def test_geographic_tally_weighs_each_row_by_its_area():
    """Class 1 on the equator's row, class 2 at 60° N: equal pixels, unequal hectares and shares."""
    transform = from_origin(0.0, 61.0, 1.0, 1.0)
    tally = ClassTally(2, transform, CRS.from_epsg(4326))
    tally.add(np.full((1, 4), 2, np.uint8), 0)  # row 0: 61°..60° N
    tally.add(np.full((1, 4), 1, np.uint8), 60)  # row 60: 1°..0° N
    s = tally.summary(["equator", "north"])["classes"]
    assert s["equator"]["pixels"] == s["north"]["pixels"] == 4
    assert s["equator"]["hectares"] == pytest.approx(4 * _ellipsoid_band(0, 1, 1) / 1e4, rel=1e-7)
    assert s["north"]["hectares"] == pytest.approx(4 * _ellipsoid_band(60, 61, 1) / 1e4, rel=1e-7)
    assert s["equator"]["share"] > 0.6 and s["equator"]["share"] + s["north"]["share"] == pytest.approx(1)


def _counts(path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return np.bincount(ds.read(1).ravel(), minlength=256)


def test_predicted_maps_report_what_they_hold(learned, tmp_path):
    """The tally equals the written raster's own counts, for the whole image and for an area of it."""
    model = modelfile.load(str(learned["model"]))
    names = model.classes.names
    for area in (None, (20, 30, 100, 90)):
        out = tmp_path / f"pred-{area is None}.tif"
        how = predict_file(model, str(learned["image"]), str(out), None, torch.device("cpu"), tta="off",
                           area=area)
        counts = _counts(out)
        with rasterio.open(out) as ds:
            cell_m2 = abs(ds.transform.a * ds.transform.e)
        summary = how["class_areas"]
        assert summary["unit"] == "hectare" and summary["nodata_pixels"] == counts[0]
        assert [summary["classes"][n]["pixels"] for n in names] == counts[1:len(names) + 1].tolist()
        for e in summary["classes"].values():
            assert e["hectares"] == pytest.approx(e["pixels"] * cell_m2 / 1e4)
        assert sum(e["share"] for e in summary["classes"].values()) == pytest.approx(1.0)
        assert sum(e["pixels"] for e in summary["classes"].values()) + counts[0] == out_pixels(out)


def out_pixels(path) -> int:
    with rasterio.open(path) as ds:
        return ds.width * ds.height


def test_run_and_predict_report_class_areas(capsys, tmp_path):
    from engine.synthetic import write_scene

    scene = write_scene(str(tmp_path), 48, 48, bands=3, classes=3, seed=4)
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out-dir", tmp_path / "run", "--progress", "bar", *TINY_TRAIN])
    assert rc == 0, err
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    counts = _counts(tmp_path / "run" / "prediction.tif")
    assert [e["pixels"] for e in metrics["class_areas"]["classes"].values()] == counts[1:4].tolist()
    assert "Classes: " in err and " ha (" in err  # the bar mode prints them
    rc, stdout, err = run_cli(capsys, ["predict", "--model", tmp_path / "run" / "model.semiseg", "--image",
                                       scene["image"], "--out", tmp_path / "p.tif", "--progress", "jsonl"])
    assert rc == 0, err
    done = jsonl_events(stdout)[-1]
    assert done["event"] == "done"  # without the run's labels to hold, a map of its own: its own counts
    pixels = [e["pixels"] for e in done["class_areas"]["classes"].values()]
    assert pixels == _counts(tmp_path / "p.tif")[1:4].tolist()


def test_a_raster_without_a_crs_is_tallied_in_pixels(tmp_path):
    path = write_raster(tmp_path / "p.tif", np.array([[1, 2], [2, 0]], np.uint8), crs=None, nodata=0)
    with rasterio.open(path) as ds:
        tally = ClassTally(2, ds.transform, ds.crs)
        tally.add(ds.read(1), 0)
    assert tally.summary(["a", "b"])["unit"] is None
