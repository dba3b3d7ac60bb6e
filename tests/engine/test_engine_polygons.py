"""A class map as polygons (``engine polygons``): one feature per 4-connected patch, named and measured,
small patches merged by the minimum mapping unit, nothing half-written on failure or cancel."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import rasterio
from engine_helpers import jsonl_events, leftovers, run_cli, write_raster
from osgeo import ogr
from rasterio.transform import from_origin

from engine.areas import ClassTally
from engine.categories import ClassTable, write_class_table
from engine.errors import Cancelled, InputError
from engine.polygons import polygonize
from engine.runtime import CancelToken

NAMES = ["field", "forest", "road"]


def _scene() -> np.ndarray:
    """20×20: field everywhere, a 5×5 forest, a 2-px piece of road, a diagonal pair of road pixels (two
    patches: diagonal pixels do not touch), and a no-data strip along the top."""
    a = np.ones((20, 20), np.uint8)
    a[5:10, 5:10] = 2
    a[15, 3:5] = 3
    a[12, 14] = a[13, 15] = 3
    a[0, :] = 0
    return a


def _write(folder, a, crs="EPSG:32633", transform=None):
    path = write_raster(folder / "prediction.tif", a, crs=crs, nodata=0,
                        transform=transform or from_origin(500_000, 5_000_000, 10, 10))
    write_class_table(str(path), ClassTable(NAMES, [(200, 200, 0), (0, 120, 0), (90, 90, 90)]), "no data")
    return path


def _features(path) -> list[dict]:
    ds = ogr.Open(str(path))
    layer = ds.GetLayer(0)
    out = [{"class": f["class"], "name": f["name"], "area": f["area_m2"],
            "valid": f.GetGeometryRef().IsValid(), "geom_area": f.GetGeometryRef().GetArea()} for f in layer]
    return out


def test_every_patch_is_a_named_measured_polygon(tmp_path):
    a = _scene()
    res = polygonize(str(_write(tmp_path, a)), str(tmp_path / "map.gpkg"))
    feats = _features(tmp_path / "map.gpkg")
    # field (one patch around the forest), forest, the 2-px road, and each diagonal road pixel
    assert sorted((f["name"], round(f["area"])) for f in feats) == sorted(
        [("field", int((a == 1).sum()) * 100), ("forest", 2500), ("road", 200), ("road", 100), ("road", 100)])
    assert all(f["valid"] for f in feats)
    assert {f["name"]: f["class"] for f in feats} == {"field": 1, "forest": 2, "road": 3}
    assert res["features"] == 5 and res["per_class"]["road"]["polygons"] == 3
    assert res["per_class"]["road"]["area_m2"] == pytest.approx(400)
    assert leftovers(tmp_path) == ["map.gpkg", "prediction.tif", "prediction.tif.aux.xml"]


def test_minimum_mapping_unit_merges_small_patches_into_their_neighbour(tmp_path):
    a = _scene()
    res = polygonize(str(_write(tmp_path, a)), str(tmp_path / "map.gpkg"), min_pixels=3)
    feats = _features(tmp_path / "map.gpkg")
    # the road pieces (2 px and two 1 px) joined the field around them; the 25-px forest stays
    assert sorted((f["name"], round(f["area"])) for f in feats) == [("field", int((a > 0).sum() - 25) * 100),
                                                                   ("forest", 2500)]
    assert res["features"] == 2 and "road" not in res["per_class"]
    assert leftovers(tmp_path) == ["map.gpkg", "prediction.tif", "prediction.tif.aux.xml"]


def test_geographic_polygons_are_measured_on_the_ellipsoid(tmp_path):
    a = _scene()
    transform = from_origin(10.0, 60.0, 0.001, 0.001)  # ~56 m × 111 m pixels at 60° N
    path = _write(tmp_path, a, crs="EPSG:4326", transform=transform)
    res = polygonize(str(path), str(tmp_path / "map.gpkg"))
    tally = ClassTally(3, transform, rasterio.crs.CRS.from_epsg(4326))
    tally.add(a, 0)
    expected = tally.summary(NAMES)["classes"]
    for name in NAMES:  # the equal-area projection agrees with the rows' ellipsoidal areas
        assert res["per_class"][name]["area_m2"] == pytest.approx(expected[name]["hectares"] * 1e4, rel=1e-6)


def test_a_map_without_a_crs_gets_polygons_without_areas(tmp_path):
    res = polygonize(str(_write(tmp_path, _scene(), crs=None)), str(tmp_path / "map.gpkg"))
    assert res["features"] == 5 and all(f["area"] is None for f in _features(tmp_path / "map.gpkg"))


def test_cli_writes_polygons_and_reports_them(capsys, tmp_path):
    path = _write(tmp_path, _scene())
    rc, stdout, err = run_cli(capsys, ["polygons", "--prediction", path, "--out", tmp_path / "out" / "m.gpkg",
                                       "--min-pixels", "2", "--progress", "jsonl"])
    assert rc == 0, err
    events = jsonl_events(stdout)
    assert events[-1]["event"] == "done" and events[-1]["features"] == 3  # the 2-px road piece stays
    assert {e["stage"] for e in events if e["event"] == "stage"} == {"sieve", "polygonize", "attributes"}
    assert any(e["event"] == "artifact" and e["kind"] == "polygons" for e in events)


@pytest.mark.parametrize("case, code", [("shapefile", "bad_output"), ("bands", "bad_prediction"),
                                        ("missing", "bad_prediction"), ("negative", "bad_usage")])
def test_bad_input_is_refused_with_a_sentence_and_writes_nothing(capsys, tmp_path, case, code):
    path = _write(tmp_path, _scene())
    out = tmp_path / "out" / ("m.shp" if case == "shapefile" else "m.gpkg")
    if case == "bands":
        path = write_raster(tmp_path / "rgb.tif", np.ones((3, 8, 8), np.uint8))
    if case == "missing":
        path = tmp_path / "nothing.tif"
    extra = ["--min-pixels", "-1"] if case == "negative" else []
    rc, stdout, err = run_cli(capsys, ["polygons", "--prediction", path, "--out", out, "--progress", "jsonl",
                                       *extra])
    assert rc == 2
    error = next(e for e in jsonl_events(stdout) if e["event"] == "error")
    assert error["code"] == code and error["message"].count(". ") == 0  # one sentence
    assert leftovers(tmp_path / "out") == []


def test_cancel_leaves_nothing(tmp_path):
    cancel = CancelToken()
    cancel.cancelled = True  # as if SIGTERM arrived: GDAL's callback stops the work
    with pytest.raises(Cancelled):
        polygonize(str(_write(tmp_path, _scene())), str(tmp_path / "out" / "m.gpkg"), 3, cancel=cancel)
    assert leftovers(tmp_path / "out") == []


def test_a_cancel_after_the_last_check_of_the_work_still_leaves_nothing(tmp_path):
    """A cancel that arrives once every feature is written (while the GeoPackage closes and builds its
    spatial index) is not ignored: nothing is published."""
    from engine.progress import Reporter

    cancel = CancelToken()

    class CancelAtTheEnd(Reporter):
        def progress(self, stage, step, total=None, **fields):
            super().progress(stage, step, total, **fields)
            if stage == "attributes" and step == total:
                cancel.cancelled = True  # after the last check inside the work

    with pytest.raises(Cancelled):
        polygonize(str(_write(tmp_path, _scene())), str(tmp_path / "out" / "m.gpkg"), 3,
                   reporter=CancelAtTheEnd("none"), cancel=cancel)
    assert leftovers(tmp_path / "out") == []


def test_an_engine_python_without_gdal_bindings_is_told_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "osgeo", None)  # import osgeo now fails
    with pytest.raises(InputError, match="GDAL's Python bindings"):
        polygonize(str(_write(tmp_path, _scene())), str(tmp_path / "m.gpkg"))


def test_a_geopackage_holding_other_layers_is_not_replaced(capsys, tmp_path):
    """--out naming a project GeoPackage that holds other layers is refused (replacing the file would lose
    them); SemiSeg's own earlier output there (its one layer, named after the file) is replaced."""
    path = _write(tmp_path, _scene())
    project = tmp_path / "project.gpkg"
    vec = ogr.GetDriverByName("GPKG").CreateDataSource(str(project))
    vec.CreateLayer("roads", None, ogr.wkbLineString)
    vec = None
    before = project.read_bytes()
    rc, _, err = run_cli(capsys, ["polygons", "--prediction", path, "--out", project, "--progress", "none"])
    assert rc == 2 and "roads" in err and "new file name" in err
    assert project.read_bytes() == before
    own = tmp_path / "mine.gpkg"
    for _ in range(2):  # the second run replaces the first one's file
        rc, _, err = run_cli(capsys, ["polygons", "--prediction", path, "--out", own, "--progress", "none"])
        assert rc == 0, err
    assert len(_features(own)) == 5


def test_an_output_open_elsewhere_is_one_sentence_and_leaves_no_partial_file(capsys, tmp_path, monkeypatch):
    """On Windows a file open in another program cannot be replaced: the rename fails. The old file stays,
    the partial one goes, and one sentence says to close it (simulated: the rename raises as Windows'
    does)."""
    import os

    path = _write(tmp_path, _scene())
    out = tmp_path / "out" / "m.gpkg"
    rc, _, err = run_cli(capsys, ["polygons", "--prediction", path, "--out", out, "--progress", "none"])
    assert rc == 0, err
    before = out.read_bytes()

    def locked(src, dst):
        raise PermissionError(13, "The process cannot access the file because it is being used")

    monkeypatch.setattr(os, "replace", locked)
    rc, _, err = run_cli(capsys, ["polygons", "--prediction", path, "--out", out, "--progress", "none"])
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2 and len(lines) == 1 and str(out) in lines[0] and "close it" in lines[0]
    assert out.read_bytes() == before and leftovers(tmp_path / "out") == ["m.gpkg"]


def test_a_map_without_a_nodata_value_still_leaves_0_out(tmp_path):
    """A class map from another tool with no nodata tag: 0 is still no data (no polygon, never merged into
    a class), as in SemiSeg's own maps."""
    a = _scene()
    tagged = _write(tmp_path, a)
    plain = write_raster(tmp_path / "plain.tif", a, nodata=None,
                         transform=from_origin(500_000, 5_000_000, 10, 10))
    write_class_table(str(plain), ClassTable(NAMES, [(200, 200, 0), (0, 120, 0), (90, 90, 90)]), "no data")
    for min_pixels in (0, 3):
        want = polygonize(str(tagged), str(tmp_path / f"t{min_pixels}.gpkg"), min_pixels)
        got = polygonize(str(plain), str(tmp_path / f"p{min_pixels}.gpkg"), min_pixels)
        assert got["per_class"] == want["per_class"] and got["features"] == want["features"]
        assert all(f["class"] != 0 for f in _features(tmp_path / f"p{min_pixels}.gpkg"))
