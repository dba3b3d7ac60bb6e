"""Accuracy assessment (``engine sample`` / ``engine assess``): a stratified random sample of points per
map class, and the accuracies and class areas it supports with 95 % intervals (Olofsson et al. 2014)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from engine_helpers import jsonl_events, leftovers, run_cli, write_raster
from osgeo import ogr, osr
from rasterio.transform import from_origin

import engine.accuracy as accuracy
from engine.accuracy import allocate, assess, draw_sample, stratified_estimates
from engine.categories import ClassTable, write_class_table
from engine.errors import Cancelled, InputError
from engine.runtime import CancelToken

NAMES = ["water", "forest", "crops", "town"]
TRANSFORM = from_origin(500_000, 5_000_000, 10, 10)  # 10 m pixels: 0.01 ha each


def test_the_published_worked_example_is_reproduced():
    """Olofsson et al. (2014), section 5: four strata of a change map, 625 sample units. Their figures:
    deforestation 235,086 ± 68,418 ha, user's 0.88 ± 0.07, producer's 0.75 ± 0.21, overall 0.95 ± 0.02."""
    counts = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
    mapped = np.array([200_000, 150_000, 3_200_000, 6_450_000], float)  # hectares
    e = stratified_estimates(counts, mapped)
    deforestation = e["classes"][0]
    assert deforestation["estimated"]["estimate"] == pytest.approx(235_086, abs=1)
    assert deforestation["estimated"]["ci95"] == pytest.approx(68_418, abs=1)
    assert deforestation["users_accuracy"]["estimate"] == pytest.approx(0.88)
    assert deforestation["users_accuracy"]["ci95"] == pytest.approx(0.07, abs=0.005)
    assert deforestation["producers_accuracy"]["estimate"] == pytest.approx(0.75, abs=0.005)
    assert deforestation["producers_accuracy"]["ci95"] == pytest.approx(0.21, abs=0.005)
    assert e["overall_accuracy"]["estimate"] == pytest.approx(0.95, abs=0.005)
    assert e["overall_accuracy"]["ci95"] == pytest.approx(0.02, abs=0.005)
    # the estimated areas share the mapped total out among the reference classes
    assert sum(c["estimated"]["estimate"] for c in e["classes"]) == pytest.approx(mapped.sum())
    assert e["coverage"] == 1.0


def test_users_accuracy_has_a_wilson_interval_that_never_collapses():
    from engine.accuracy import wilson

    # 66 of 75 (the paper's deforestation stratum): about 0.79-0.94 around 0.88
    assert wilson(66, 75) == pytest.approx((0.787, 0.936), abs=0.001)
    # every point agrees: the symmetric interval has no width, Wilson's still says "at least 0.87"
    low, high = wilson(25, 25)
    assert low == pytest.approx(0.867, abs=0.001) and high == 1.0
    assert wilson(0, 25)[0] == 0.0 and wilson(0, 25)[1] == pytest.approx(0.133, abs=0.001)
    e = stratified_estimates(np.array([[25, 0], [3, 47]]), np.array([40.0, 60.0]))
    assert e["classes"][0]["users_accuracy"] == {"estimate": 1.0, "ci95": 0.0, "low": low, "high": 1.0}
    assert e["classes"][1]["users_accuracy"]["low"] < 0.94 < e["classes"][1]["users_accuracy"]["high"]


def test_a_perfect_sample_gives_the_mapped_areas_with_no_spread():
    counts = np.diag([30, 40, 50])
    e = stratified_estimates(counts, np.array([10.0, 20.0, 70.0]))
    assert e["overall_accuracy"] == {"estimate": 1.0, "ci95": 0.0}
    assert [c["estimated"]["estimate"] for c in e["classes"]] == pytest.approx([10, 20, 70])
    assert all(c["producers_accuracy"]["estimate"] == 1.0 for c in e["classes"])


def test_an_unsampled_stratum_is_left_out_and_a_single_unit_has_no_interval():
    e = stratified_estimates(np.array([[5, 0, 0], [0, 0, 0], [0, 0, 1]]), np.array([50.0, 30.0, 20.0]))
    assert e["coverage"] == pytest.approx(0.7)
    assert e["classes"][1]["users_accuracy"] is None
    assert e["overall_accuracy"]["ci95"] is None  # stratum 3 has one unit: its variance is unknown
    single = e["classes"][2]["users_accuracy"]  # one point: no standard error, a wide Wilson interval
    assert single["ci95"] is None and single["low"] == pytest.approx(0.207, abs=0.001) and single["high"] == 1


def _scene(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(truth, map) 120×100: four classes in bands; the map calls a third of the crops town and a strip
    of forest water, so town is overmapped and crops undermapped; a no-data border in the map."""
    truth = np.ones((120, 100), np.uint8)
    truth[:, 25:50] = 2
    truth[:, 50:90] = 3
    truth[:, 90:] = 4
    rng = np.random.default_rng(seed)
    pred = truth.copy()
    crops = truth == 3
    pred[crops & (rng.random(truth.shape) < 1 / 3)] = 4
    pred[:, 25:28] = 1
    pred[:2, :] = 0
    return truth, pred


def _write_map(folder: Path, a: np.ndarray, name: str = "prediction.tif", crs="EPSG:32633") -> str:
    path = write_raster(folder / name, a, crs=crs, nodata=0, transform=TRANSFORM,
                        tiled=True, blockxsize=16, blockysize=16)
    write_class_table(str(path), ClassTable(NAMES, [(0, 0, 255), (0, 120, 0), (200, 200, 0), (90, 90, 90)]),
                      "no data")
    return str(path)


def _points(path: str) -> list[dict]:
    ds = ogr.Open(path)
    layer = ds.GetLayer(0)
    return [{"id": f["id"], "map_class": f["map_class"], "map_name": f["map_name"],
             "reference": f["reference"], "xy": f.GetGeometryRef().GetPoint_2D()} for f in layer]


def _pixel(xy) -> tuple[int, int]:
    col, row = ~TRANSFORM * xy
    return int(np.floor(row)), int(np.floor(col))


def _fill_in(path: str, truth: np.ndarray, every: int = 1) -> None:
    """Fill in the reference field from ``truth`` (every ``every``-th point; the rest stay empty)."""
    ds = ogr.Open(path, 1)
    layer = ds.GetLayer(0)
    for f in layer:
        if (f["id"] - 1) % every == 0:
            v = int(truth[_pixel(f.GetGeometryRef().GetPoint_2D())])
            f.SetField("reference", v)
            layer.SetFeature(f)
    ds = None


def test_the_sample_draws_the_asked_points_of_each_class_at_random(tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy, "BLOCK_BYTES", 16 * 100)  # 16-row blocks: the ranks cross blocks
    monkeypatch.setattr(accuracy, "CHUNK", 333)  # and chunks within them
    _, pred = _scene()
    res = draw_sample(_write_map(tmp_path, pred), str(tmp_path / "s.gpkg"), per_class=60, seed=3)
    pts = _points(str(tmp_path / "s.gpkg"))
    assert res["points"] == len(pts) == 240 and res["per_class"] == dict.fromkeys(NAMES, 60)
    cells = [_pixel(p["xy"]) for p in pts]
    assert len(set(cells)) == len(cells)  # no pixel twice
    assert all(pred[rc] == p["map_class"] for rc, p in zip(cells, pts, strict=True))
    assert all(p["map_name"] == NAMES[p["map_class"] - 1] and p["reference"] is None for p in pts)
    assert sorted(p["id"] for p in pts) == list(range(1, 241))
    # random order, not class by class; spread over the whole class, not its first rows
    assert [p["map_class"] for p in pts] != sorted(p["map_class"] for p in pts)
    rows = np.array([r for r, _ in cells])
    assert 40 < rows.mean() < 80 and rows.max() > 100 and rows.min() < 20
    again = draw_sample(_write_map(tmp_path, pred), str(tmp_path / "t.gpkg"), per_class=60, seed=3)
    assert [p["xy"] for p in _points(str(tmp_path / "t.gpkg"))] == [p["xy"] for p in pts]
    assert again["points"] == 240


def test_allocation_is_proportional_above_the_floor():
    # a large class, two middling ones and a rare one: the rare one is held at the floor, the rest share
    # what is left in proportion to their pixels, and the total is exact
    n = allocate(np.array([800_000, 150_000, 49_000, 1_000]), total=2000, minimum=50)
    assert n.sum() == 2000 and n[3] == 50
    assert n[0] / n[1] == pytest.approx(800 / 150, rel=0.01)
    assert n[0] / n[2] == pytest.approx(800 / 49, rel=0.02)
    # the floor can hold several classes, one after another (holding one shrinks the others' shares)
    # (the 10-pixel class gives all it has; then the middle class's share, 28.4, falls under 30)
    assert allocate(np.array([1000, 310, 10]), total=130, minimum=30).tolist() == [90, 30, 10]
    assert allocate(np.array([10_000, 120, 100, 90]), total=400, minimum=60).tolist() == [220, 60, 60, 60]
    # never more than a class has; classes without pixels get none; total = classes x floor is equal
    assert allocate(np.array([5, 0, 10_000]), total=100, minimum=50).tolist() == [5, 0, 95]
    assert allocate(np.array([7_000, 2_000, 1_000]), total=150, minimum=50).tolist() == [50, 50, 50]
    assert allocate(np.array([30, 40]), total=500, minimum=10).tolist() == [30, 40]  # all of it
    assert allocate(np.array([1, 1, 1]), total=2, minimum=1).tolist() == [1, 1, 1]  # floors first


def test_a_total_sample_follows_the_allocation(tmp_path, capsys):
    _, pred = _scene()
    path = _write_map(tmp_path, pred)
    counts = np.bincount(pred.ravel(), minlength=5)[1:]
    res = draw_sample(path, str(tmp_path / "s.gpkg"), total=200, minimum=30, seed=2)
    expected = allocate(counts, 200, 30)
    assert res["points"] == 200 and list(res["per_class"].values()) == expected.tolist()
    assert len(set(expected.tolist())) > 1  # by area, not the same for every class
    pts = _points(str(tmp_path / "s.gpkg"))
    assert np.bincount([p["map_class"] for p in pts], minlength=5)[1:].tolist() == expected.tolist()
    # too few points for the floor: one sentence, nothing written
    rc, _, err = run_cli(capsys, ["sample", "--prediction", path, "--out", tmp_path / "t.gpkg",
                                  "--total", "100", "--min-per-class", "30"])
    assert rc != 0 and "give at least 120 points in all" in err and not (tmp_path / "t.gpkg").exists()
    rc, _, _ = run_cli(capsys, ["sample", "--prediction", path, "--out", tmp_path / "u.gpkg",
                                "--total", "300", "--min-per-class", "40", "--progress", "none"])
    assert rc == 0 and len(_points(str(tmp_path / "u.gpkg"))) == 300


def test_every_pixel_is_equally_likely(tmp_path, monkeypatch):
    """Over many draws each pixel of a class is chosen about equally often (block edges included)."""
    monkeypatch.setattr(accuracy, "BLOCK_BYTES", 3 * 10)
    monkeypatch.setattr(accuracy, "CHUNK", 7)  # chunks that end inside rows and blocks
    a = np.ones((10, 10), np.uint8)
    a[:, 5:] = 2
    path = _write_map(tmp_path, a)
    hits = np.zeros((10, 10))
    for seed in range(200):
        draw_sample(path, str(tmp_path / f"{seed}.gpkg"), per_class=10, seed=seed)
        for p in _points(str(tmp_path / f"{seed}.gpkg")):
            hits[_pixel(p["xy"])] += 1
    # each pixel: 200 draws x 10/50 = 40 expected hits
    assert hits.sum() == 4000 and hits.min() > 20 and hits.max() < 62


def test_a_small_class_gives_all_its_pixels_with_a_warning(tmp_path, capsys):
    a = np.ones((20, 20), np.uint8)
    a[3, 4] = a[10, 11] = 3
    path = _write_map(tmp_path, a)
    rc, out, _ = run_cli(capsys, ["sample", "--prediction", path, "--out", tmp_path / "s.gpkg",
                                  "--per-class", "5", "--progress", "jsonl"])
    assert rc == 0
    events = jsonl_events(out)
    assert any(e["event"] == "warning" and e["code"] == "sample_small_class" and "crops (2)" in e["message"]
               for e in events)
    assert events[-1]["per_class"] == {"water": 5, "crops": 2}


def test_assessment_corrects_the_mapped_areas_towards_the_truth(tmp_path, monkeypatch):
    monkeypatch.setattr(accuracy, "BLOCK_BYTES", 16 * 100)
    monkeypatch.setattr(accuracy, "CHUNK", 250)
    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    draw_sample(path, str(tmp_path / "s.gpkg"), per_class=80, seed=1)
    _fill_in(str(tmp_path / "s.gpkg"), truth)
    rep = assess(path, str(tmp_path / "s.gpkg"))
    mapped_part = pred > 0
    true_ha = {n: float(((truth == i + 1) & mapped_part).sum()) / 100 for i, n in enumerate(NAMES)}
    map_ha = {n: float((pred == i + 1).sum()) / 100 for i, n in enumerate(NAMES)}
    assert rep["unit"] == "hectare" and rep["units"] == 320 and rep["points"]
    # water and town are never found under another map class (the map omits none of them): the sample
    # cannot see omissions rarer than it samples, and says so; forest and crops show their omissions
    assert rep["warnings"] == ["no_omission_seen"]
    assert rep["warning_messages"][0].startswith("No checked point of another map class turned out to be "
                                                 "water, town: their producer's accuracy reads 1.00")
    assert all(rep["classes"][n]["producers_accuracy"]["estimate"] == 1 for n in ("water", "town"))
    assert all(rep["classes"][n]["producers_accuracy"]["estimate"] < 1 for n in ("forest", "crops"))
    for n in NAMES:
        c = rep["classes"][n]
        assert c["mapped"] == pytest.approx(map_ha[n])
        # the estimate is within reach of the truth (two intervals: a 1-in-10,000 miss)
        assert abs(c["estimated"]["estimate"] - true_ha[n]) < 2 * c["estimated"]["ci95"]
    for n in ("crops", "town"):  # the biased classes move towards the truth
        assert abs(rep["classes"][n]["estimated"]["estimate"] - true_ha[n]) < abs(map_ha[n] - true_ha[n]) / 2
    true_oa = float((truth == pred)[mapped_part].mean())
    assert abs(rep["overall_accuracy"]["estimate"] - true_oa) < 2 * rep["overall_accuracy"]["ci95"]
    assert rep["classes"]["town"]["users_accuracy"]["estimate"] < 0.8  # a third of its pixels are crops
    assert rep["classes"]["crops"]["producers_accuracy"]["estimate"] < 0.8
    counts = np.array(rep["confusion_map_by_reference"])
    assert counts.sum() == 320 and counts[3, 2] > 0 and counts[2, 3] == 0


def test_reference_by_name_with_points_not_yet_checked(tmp_path):
    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    draw_sample(path, str(tmp_path / "s.gpkg"), per_class=20)
    ds = ogr.Open(str(tmp_path / "s.gpkg"), 1)  # a text field, as another GIS might make it
    layer = ds.GetLayer(0)
    layer.CreateField(ogr.FieldDefn("checked", ogr.OFTString))
    for f in layer:
        if f["id"] % 2:
            name = NAMES[int(truth[_pixel(f.GetGeometryRef().GetPoint_2D())]) - 1]
            f.SetField("checked", f" {name.upper()}")
            layer.SetFeature(f)
    ds = None
    rep = assess(path, str(tmp_path / "s.gpkg"), "checked")
    assert rep["units"] == 40 and rep["not_filled_in"] == 40


def test_no_blind_spot_warning_where_every_class_shows_omissions(tmp_path):
    truth, _ = _scene()
    rng = np.random.default_rng(7)
    pred = truth.copy()  # a third of each class's pixels mapped as the next class: omissions everywhere
    moved = rng.random(truth.shape) < 1 / 3
    pred[moved] = truth[moved] % 4 + 1
    path = _write_map(tmp_path, pred)
    draw_sample(path, str(tmp_path / "s.gpkg"), per_class=80, seed=2)
    _fill_in(str(tmp_path / "s.gpkg"), truth)
    rep = assess(path, str(tmp_path / "s.gpkg"))
    assert "no_omission_seen" not in rep["warnings"]
    assert all(c["producers_accuracy"]["estimate"] < 1 for c in rep["classes"].values())


def test_a_changed_map_and_a_polygon_reference_are_warned_about(tmp_path, capsys):
    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    draw_sample(path, str(tmp_path / "s.gpkg"), per_class=20)
    _fill_in(str(tmp_path / "s.gpkg"), truth)
    other = pred.copy()
    other[other == 4] = 3  # the map was made again since the sample was drawn: town moved where no
    other[50:60, :5] = 4  # point of the sample lies
    other_path = _write_map(tmp_path, other, "prediction-2.tif")
    rc, out, _ = run_cli(capsys, ["assess", "--prediction", other_path, "--reference", tmp_path / "s.gpkg",
                                  "--progress", "jsonl"])
    assert rc == 0
    codes = {e.get("code") for e in jsonl_events(out) if e["event"] == "warning"}
    assert codes == {"sample_map_changed", "class_not_sampled", "no_omission_seen"}

    gpkg = _polygon_reference(tmp_path / "ref.gpkg")
    rc, out, _ = run_cli(capsys, ["assess", "--prediction", path, "--reference", gpkg, "--progress", "jsonl"])
    assert rc == 0
    events = jsonl_events(out)
    assert "reference_clustered" in {e.get("code") for e in events if e["event"] == "warning"}
    done = events[-1]
    assert not done["points"] and 18 * 20 + 30 * 20 - 40 <= done["units"] <= 18 * 20 + 30 * 20 + 40
    assert done["classes"]["water"]["reference_units"] > 300


def _utm():
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs

def _polygon_reference(gpkg: Path, multi_surface: bool = False) -> Path:
    """Two reference polygons (water, forest) in another CRS than the map; as MultiSurfaces (a FileGDB
    or cadastre export's kind) when asked."""
    vec = ogr.GetDriverByName("GPKG").CreateDataSource(str(gpkg))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(4326)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_wgs = osr.CoordinateTransformation(_utm(), srs)
    layer = vec.CreateLayer("ref", srs, ogr.wkbMultiSurface if multi_surface else ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("reference", ogr.OFTInteger))
    for value, (c0, c1) in ((1, (2, 20)), (3, (55, 85))):
        ring = ogr.Geometry(ogr.wkbLinearRing)
        for c, r in ((c0, 10), (c1, 10), (c1, 30), (c0, 30), (c0, 10)):
            ring.AddPoint_2D(*TRANSFORM * (c, r))
        poly = ogr.Geometry(ogr.wkbPolygon)
        poly.AddGeometry(ring)
        poly.Transform(to_wgs)
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("reference", value)
        f.SetGeometry(ogr.ForceTo(poly, ogr.wkbMultiSurface) if multi_surface else poly)
        layer.CreateFeature(f)
    vec = None
    return gpkg


def test_a_multi_surface_reference_counts_the_pixels_its_polygons_do(tmp_path, capsys):
    _, pred = _scene()
    path = _write_map(tmp_path, pred)
    done = {}
    for multi in (False, True):
        ref = _polygon_reference(tmp_path / f"ref-{multi}.gpkg", multi_surface=multi)
        rc, out, err = run_cli(capsys, ["assess", "--prediction", path, "--reference", ref, "--progress",
                                        "jsonl"])
        assert rc == 0, err
        done[multi] = jsonl_events(out)[-1]
    assert done[True]["units"] == done[False]["units"] > 0
    assert done[True]["classes"] == done[False]["classes"]



def test_a_truth_raster_is_a_reference_too(tmp_path):
    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    ref = write_raster(tmp_path / "truth.tif", truth, nodata=0, transform=TRANSFORM)
    rep = assess(path, str(ref))
    assert rep["units"] == int((pred > 0).sum()) and not rep["points"]
    # a census: the estimates are the truth itself
    assert rep["overall_accuracy"]["estimate"] == pytest.approx(float((truth == pred)[pred > 0].mean()))
    crops_ha = ((truth == 3) & (pred > 0)).sum() / 100
    assert rep["classes"]["crops"]["estimated"]["estimate"] == pytest.approx(crops_ha)


def test_the_cli_prints_a_table_and_writes_the_report(tmp_path, capsys):
    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    assert run_cli(capsys, ["sample", "--prediction", path, "--out", tmp_path / "s.gpkg"])[0] == 0
    _fill_in(str(tmp_path / "s.gpkg"), truth, every=2)
    rc, _, err = run_cli(capsys, ["assess", "--prediction", path, "--reference", tmp_path / "s.gpkg",
                                  "--out", tmp_path / "out" / "report.json", tmp_path / "out" / "report.csv"])
    assert rc == 0
    assert "Overall accuracy" in err and "95 % interval, 100 reference points" in err
    assert any(line.startswith("town ") and "±" in line for line in err.splitlines())
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["units"] == 100 and report["not_filled_in"] == 100
    assert leftovers(tmp_path / "out") == ["report.csv", "report.json"]
    rows = list(csv.reader((tmp_path / "out" / "report.csv").open(encoding="utf-8")))
    assert rows[0][:4] == ["class", "points", "mapped (ha)", "estimated (ha)"]
    town = next(r for r in rows if r[0] == "town")
    assert float(town[3]) == pytest.approx(report["classes"]["town"]["estimated"]["estimate"])
    assert float(town[5]) == pytest.approx(report["classes"]["town"]["users_accuracy"]["estimate"])
    assert float(town[6]) == pytest.approx(report["classes"]["town"]["users_accuracy"]["low"])
    assert float(town[8]) == pytest.approx(report["classes"]["town"]["producers_accuracy"]["estimate"])
    overall = next(r for r in rows if r[0] == "overall accuracy")
    oa = report["overall_accuracy"]
    assert [float(v) for v in overall[5:8]] == pytest.approx([oa["estimate"], oa["estimate"] - oa["ci95"],
                                                               oa["estimate"] + oa["ci95"]])
    counts = rows.index(next(r for r in rows if r and r[0].endswith("sample units")))
    assert rows[counts][1:] == [*NAMES, "total"] and rows[counts + 5] == ["total", *rows[counts + 5][1:]]
    assert int(rows[counts + 5][-1]) == 100
    shares = rows.index(next(r for r in rows if r and r[0].endswith("estimated share of the map")))
    assert float(rows[shares + 5][-1]) == pytest.approx(1.0)  # the shares cover the whole map
    # the estimated areas are the columns' shares of the mapped total
    mapped = sum(c["mapped"] for c in report["classes"].values())
    assert float(rows[shares + 5][4]) * mapped == pytest.approx(float(town[3]))


@pytest.mark.parametrize("case", ["bad_value", "bad_name", "no_field", "none_filled", "not_gpkg", "rgb_map",
                                  "fraction", "report_kind"])
def test_bad_input_is_refused_with_one_sentence(tmp_path, capsys, case):
    _, pred = _scene()
    path = _write_map(tmp_path, pred)
    draw_sample(path, str(tmp_path / "s.gpkg"), per_class=5)
    ds = ogr.Open(str(tmp_path / "s.gpkg"), 1)
    layer = ds.GetLayer(0)
    layer.CreateField(ogr.FieldDefn("txt", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("real", ogr.OFTReal))
    for f in layer:
        f.SetField("reference", 7 if case == "bad_value" else 1)
        f.SetField("txt", "meadow")
        f.SetField("real", 1.5)
        layer.SetFeature(f)
    ds = None
    args = ["assess", "--prediction", path, "--reference", tmp_path / "s.gpkg", "--progress", "jsonl"]
    expect = {"bad_value": ("reference_values", "holds 7, but the map's classes are 1..4"),
              "bad_name": ("reference_values", "'meadow', which is no class of the map"),
              "no_field": ("reference_field", "has no field 'class'"),
              "none_filled": ("reference_empty", "have no class in field 'reference' yet"),
              "not_gpkg": ("bad_output", "give"),
              "rgb_map": ("bad_prediction", "not a single-band 8-bit class raster"),
              "fraction": ("reference_values", "holds 1.5"),
              "report_kind": ("bad_output", "must end in .json or .csv")}[case]
    if case == "bad_name":
        args += ["--reference-field", "txt"]
    elif case == "fraction":
        args += ["--reference-field", "real"]
    elif case == "report_kind":
        args += ["--out", tmp_path / "out" / "r.json", tmp_path / "out" / "r.txt"]
    elif case == "no_field":
        args += ["--reference-field", "class"]
    elif case == "none_filled":
        draw_sample(path, str(tmp_path / "empty.gpkg"), per_class=5)
        args[4] = tmp_path / "empty.gpkg"
    elif case == "not_gpkg":
        args = ["sample", "--prediction", path, "--out", tmp_path / "out" / "s.shp", "--progress", "jsonl"]
    elif case == "rgb_map":
        rgb = write_raster(tmp_path / "rgb.tif", np.zeros((3, 8, 8), np.uint8))
        args[2] = rgb
    rc, out, err = run_cli(capsys, args)
    assert rc == 2
    error = jsonl_events(out)[-1]
    assert error["event"] == "error" and error["code"] == expect[0] and expect[1] in error["message"]
    assert err.count("Error:") == 1
    assert leftovers(tmp_path / "out") == []


def test_cancel_leaves_no_sample(tmp_path):
    _, pred = _scene()
    cancel = CancelToken()
    cancel.cancelled = True
    with pytest.raises(Cancelled):
        draw_sample(_write_map(tmp_path, pred), str(tmp_path / "out" / "s.gpkg"), cancel=cancel)
    assert leftovers(tmp_path / "out") == []


def test_a_map_without_a_crs_counts_pixels(tmp_path):
    truth, pred = _scene()
    path = write_raster(tmp_path / "p.tif", pred, crs=None, nodata=0)
    ref = write_raster(tmp_path / "t.tif", truth, crs=None, nodata=0)
    rep = assess(str(path), str(ref))
    assert rep["unit"] == "pixel" and list(rep["classes"]) == ["class 1", "class 2", "class 3", "class 4"]
    assert rep["classes"]["class 4"]["mapped"] == float((pred == 4).sum())


def test_sample_and_assess_do_not_load_torch(tmp_path):
    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    ref = write_raster(tmp_path / "t.tif", truth, nodata=0, transform=TRANSFORM)
    code = ("import sys; from engine.cli import main; "
            "assert main(['sample', '--prediction', sys.argv[1], '--out', sys.argv[2], '--progress', "
            "'none']) == 0; "
            "assert main(['assess', '--prediction', sys.argv[1], '--reference', sys.argv[3], '--progress', "
            "'none']) == 0; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, path, str(tmp_path / "s.gpkg"), str(ref)], text=True,
                          capture_output=True, cwd=str(Path(__file__).resolve().parents[2]), check=True)
    assert done.stdout.strip() == "False"


def test_a_missing_map_is_refused_with_a_sentence(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        assess(str(tmp_path / "nothing.tif"), str(tmp_path / "s.gpkg"))


def test_a_geographic_map_is_sampled_in_degrees_and_measured_on_the_ellipsoid(tmp_path):
    truth, pred = _scene()
    degrees = from_origin(10.0, 60.0, 0.001, 0.001)  # about 56 m × 111 m pixels at 60° N
    path = write_raster(tmp_path / "geo.tif", pred, crs="EPSG:4326", nodata=0, transform=degrees)
    write_class_table(str(path), ClassTable(NAMES, [(0, 0, 255), (0, 120, 0), (200, 200, 0), (90, 90, 90)]),
                      "no data")
    draw_sample(str(path), str(tmp_path / "s.gpkg"), per_class=30)
    ds = ogr.Open(str(tmp_path / "s.gpkg"), 1)
    layer = ds.GetLayer(0)
    assert layer.GetSpatialRef().GetAuthorityCode(None) == "4326"
    for f in layer:
        x, y = f.GetGeometryRef().GetPoint_2D()
        col, row = ~degrees * (x, y)
        assert 10.0 < x < 10.1 and 59.88 < y < 60.0
        assert pred[int(row), int(col)] == f["map_class"]
        f.SetField("reference", int(truth[int(row), int(col)]))
        layer.SetFeature(f)
    ds = None
    rep = assess(str(path), str(tmp_path / "s.gpkg"))
    assert rep["unit"] == "hectare" and rep["units"] == 120
    mapped = sum(c["mapped"] for c in rep["classes"].values())
    # 11,800 mapped pixels of about 0.62 ha each (0.001° × 0.001° at 60° N on the ellipsoid)
    assert mapped == pytest.approx(11_800 * 0.62, rel=0.01)
    assert sum(c["estimated"]["estimate"] for c in rep["classes"].values()) == pytest.approx(mapped)


def test_points_on_the_training_labels_are_counted_and_warned_about(tmp_path, capsys):
    """A run holds its painted pixels at their class, so reference points there flatter the map."""
    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    draw_sample(path, str(tmp_path / "s.gpkg"), per_class=20)
    _fill_in(str(tmp_path / "s.gpkg"), truth)
    points = _points(str(tmp_path / "s.gpkg"))
    labels = np.zeros_like(pred)
    for p in points[:3]:  # three points on painted pixels, and a stroke elsewhere
        labels[_pixel(p["xy"])] = truth[_pixel(p["xy"])]
    taken = {_pixel(p["xy"]) for p in points}
    labels[60, [c for c in range(5, 20) if (60, c) not in taken]] = 1
    label_path = write_raster(tmp_path / "labels.tif", labels, nodata=0, transform=TRANSFORM)
    rc, out, _ = run_cli(capsys, ["assess", "--prediction", path, "--reference", tmp_path / "s.gpkg",
                                  "--labels", label_path, "--progress", "jsonl"])
    assert rc == 0
    events = jsonl_events(out)
    warning = next(e for e in events if e.get("code") == "reference_on_labels")
    assert warning["message"].startswith("3 of the reference units lie on pixels painted for training")
    assert events[-1]["on_training_labels"] == 3
    assert warning["message"] in events[-1]["warning_messages"]  # the report keeps the sentence too
    assert assess(path, str(tmp_path / "s.gpkg"))["on_training_labels"] is None  # not asked


def test_cancel_while_writing_the_sample_stops_there_and_leaves_nothing(tmp_path, monkeypatch, capfd):
    """The points are written in chunks with a cancel check between them; a cancel there closes the
    half-written GeoPackage before removing it (no GDAL complaint on stderr)."""
    from engine import accuracy
    from engine.progress import Reporter

    _, pred = _scene()
    cancel = CancelToken()

    class CancelAtWrite(Reporter):
        def stage(self, name, total_steps=None, **fields):
            if name == "write":
                cancel.cancelled = True
            super().stage(name, total_steps, **fields)

    monkeypatch.setattr(accuracy, "WRITE_CHUNK", 5)
    with pytest.raises(Cancelled):
        draw_sample(_write_map(tmp_path, pred), str(tmp_path / "out" / "s.gpkg"),
                    reporter=CancelAtWrite("none"), cancel=cancel)
    assert leftovers(tmp_path / "out") == []
    assert "Exception ignored" not in capfd.readouterr().err


def test_a_reference_raster_that_misses_the_map_or_is_empty_is_named_as_the_reference(tmp_path, capsys):
    """The sentences of a reference raster speak of the reference, not of labels to paint."""
    from rasterio.transform import from_origin

    truth, pred = _scene()
    path = _write_map(tmp_path, pred)
    far = write_raster(tmp_path / "far.tif", truth, crs="EPSG:32633", nodata=0,
                       transform=from_origin(900_000, 1_000_000, 10, 10))
    empty = write_raster(tmp_path / "empty.tif", np.zeros_like(truth), crs="EPSG:32633", nodata=None,
                         transform=TRANSFORM)
    for ref, words in ((far, "lies outside the map"), (empty, "holds no reference class")):
        rc, _, err = run_cli(capsys, ["assess", "--prediction", path, "--reference", ref,
                                      "--progress", "none"])
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert rc == 2 and len(lines) == 1 and f"Reference {ref}" in lines[0] and words in lines[0], err


def test_a_map_without_class_names_knows_its_classes_from_its_values(tmp_path, capsys):
    """A class map made elsewhere (no category names) holding classes 1-4: a reference class 9 is refused
    as on a named map, and the refusal lists the four classes, not 255 placeholders."""
    truth, pred = _scene()
    path = write_raster(tmp_path / "p.tif", pred, crs="EPSG:32633", nodata=0, transform=TRANSFORM)
    bad = truth.copy()
    bad[0, 0] = 9
    ref = write_raster(tmp_path / "t.tif", bad, crs="EPSG:32633", nodata=0, transform=TRANSFORM)
    rc, _, err = run_cli(capsys, ["assess", "--prediction", path, "--reference", ref, "--progress", "none"])
    assert rc == 2 and "holds class 9" in err and "1..4" in err, err


def test_a_reference_in_degrees_missing_a_map_without_a_crs_says_why(tmp_path, capsys):
    _, pred = _scene()
    path = _write_map(tmp_path, pred, crs=None)
    ref = _polygon_reference(tmp_path / "ref.gpkg")
    rc, _, err = run_cli(capsys, ["assess", "--prediction", path, "--reference", ref, "--progress", "none"])
    assert rc == 2
    assert f"its features lie outside the map; {path} has no CRS, so their EPSG:4326 coordinates" in err
