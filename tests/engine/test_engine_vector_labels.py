"""Vector labels (GeoPackage polygons/lines/points with a class field) rasterized onto the image grid."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from engine_helpers import TINY_TRAIN, leftovers, run_cli
from osgeo import ogr, osr

from engine.categories import read_category_names
from engine.labels import load_labels
from engine.synthetic import write_scene

X0, Y0 = 500000.0, 5000000.0  # write_scene's projected origin (EPSG:32633, 1 m pixels)


def px_to_xy(row: float, col: float) -> tuple[float, float]:
    return X0 + col, Y0 - row


def write_gpkg(path: Path, features: list[tuple[str, dict, str | None]], epsg: int = 32633,
               field: str = "landcover", to_epsg: int | None = None) -> Path:
    """features: (wkt in image pixel units as 'row col' pairs → map coords, attrs, colour)."""
    drv = ogr.GetDriverByName("GPKG")
    ds = drv.CreateDataSource(str(path))
    src = osr.SpatialReference()
    src.ImportFromEPSG(epsg)
    src.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    layer_srs = src
    ct = None
    if to_epsg is not None:
        dst = osr.SpatialReference()
        dst.ImportFromEPSG(to_epsg)
        dst.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        ct = osr.CoordinateTransformation(src, dst)
        layer_srs = dst
    layer = ds.CreateLayer("labels", layer_srs, ogr.wkbUnknown)
    layer.CreateField(ogr.FieldDefn(field, ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("colour", ogr.OFTString))
    for wkt, value, colour in features:
        f = ogr.Feature(layer.GetLayerDefn())
        g = ogr.CreateGeometryFromWkt(wkt)
        if ct is not None:
            g.Transform(ct)
        f.SetGeometry(g)
        f.SetField(field, value)
        if colour:
            f.SetField("colour", colour)
        layer.CreateFeature(f)
    ds = None  # noqa: F841  (flush and close)
    return path


def box_wkt(r0, c0, r1, c1) -> str:
    pts = [px_to_xy(r0, c0), px_to_xy(r0, c1), px_to_xy(r1, c1), px_to_xy(r1, c0), px_to_xy(r0, c0)]
    return "POLYGON((" + ", ".join(f"{x} {y}" for x, y in pts) + "))"


def line_wkt(r0, c0, r1, c1) -> str:
    (x0, y0), (x1, y1) = px_to_xy(r0, c0), px_to_xy(r1, c1)
    return f"LINESTRING({x0} {y0}, {x1} {y1})"


def interior_box(truth: np.ndarray, k: int, size: int = 6) -> tuple[int, int, int, int]:
    """A size×size box of pixels all of class k (first found, scanning)."""
    h, w = truth.shape
    for r in range(2, h - size - 2, 2):
        for c in range(2, w - size - 2, 2):
            if np.all(truth[r - 1:r + size + 1, c - 1:c + size + 1] == k):
                return r, c, r + size, c + size
    raise AssertionError(f"class {k} has no {size}px interior box")


@pytest.fixture
def scene(tmp_path):
    paths = write_scene(str(tmp_path), 96, 96, bands=3, classes=3, seed=4)
    with rasterio.open(paths["truth"]) as ds:
        truth = ds.read(1)
    return {k: Path(v) for k, v in paths.items()} | {"truth_array": truth}


NAMES = {1: "water", 2: "forest", 3: "urban"}


def named_features(truth):
    feats = []
    for k, name in NAMES.items():
        r0, c0, r1, c1 = interior_box(truth, k)
        feats.append((box_wkt(r0, c0, r1, c1), name, None))
    # a line inside the forest box region's rows (a stroke), painted over nothing else
    r0, c0, r1, c1 = interior_box(truth, 2, size=8)
    feats.append((line_wkt(r0 + 4, c0 + 1, r0 + 4, c1 - 1), "forest", None))
    return feats


def test_vector_names_become_classes_and_train(scene, tmp_path, capsys):
    feats = named_features(scene["truth_array"])
    feats[0] = (feats[0][0], feats[0][1], "#123456")  # a colour field sets the class colour
    gpkg = write_gpkg(tmp_path / "labels.gpkg", feats)

    with rasterio.open(scene["image"]) as img:
        lab = load_labels(str(gpkg), img, "landcover")
    # names are sorted into class ids: forest=1, urban=2, water=3
    assert lab.classes.names == ["forest", "urban", "water"]
    assert lab.classes.colours[2] == (0x12, 0x34, 0x56)
    ids = {"forest": 1, "urban": 2, "water": 3}
    truth = scene["truth_array"]
    for k, name in NAMES.items():
        r0, c0, r1, c1 = interior_box(truth, k)
        assert np.all(lab.full()[r0 + 1:r1 - 1, c0 + 1:c1 - 1] == ids[name]), name
        # labels fall only on pixels of the right truth class (placement is on the image grid)
    for name, i in ids.items():
        k = {v: kk for kk, v in NAMES.items()}[name]
        assert np.all(truth[lab.full() == i] == k), name
    assert (lab.full() == 0).mean() > 0.8

    model = tmp_path / "out" / "model.semiseg"
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", gpkg,
                                  "--label-field", "landcover", "--out", model, "--progress", "none",
                                  *TINY_TRAIN])
    assert rc == 0, err
    rc, out, err = run_cli(capsys, ["info", "--model", model])
    assert rc == 0, err
    info = json.loads(out)
    assert info["classes"]["names"] == ["forest", "urban", "water"]
    assert info["classes"]["colours"][2] == [0x12, 0x34, 0x56]
    assert info["bands"] == 3 and info["method"] == "supervised"


def test_vector_in_another_crs_is_reprojected(scene, tmp_path):
    feats = named_features(scene["truth_array"])
    same = write_gpkg(tmp_path / "utm.gpkg", feats)
    degrees = write_gpkg(tmp_path / "wgs84.gpkg", feats, to_epsg=4326)
    with rasterio.open(scene["image"]) as img:
        assert img.crs.to_epsg() == 32633
        a = load_labels(str(same), img, "landcover").full()
        b = load_labels(str(degrees), img, "landcover").full()
    assert a.any()
    # same pixels (up to a pixel of edge rounding along the polygon borders)
    both = (a > 0) & (b > 0)
    assert np.all(a[both] == b[both])
    iou = both.sum() / ((a > 0) | (b > 0)).sum()
    assert iou >= 0.85, iou
    # a vector left in degrees and read as metres would land far outside: not what happened
    assert (b > 0).sum() >= 0.85 * (a > 0).sum()


def test_vector_missing_field(scene, tmp_path, capsys):
    gpkg = write_gpkg(tmp_path / "labels.gpkg", named_features(scene["truth_array"]), field="landcover")
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", gpkg, "--out-dir", out,
                                  "--label-field", "klass", "--progress", "none", *TINY_TRAIN])
    assert rc != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1
    assert str(gpkg) in lines[0] and "klass" in lines[0] and "landcover" in lines[0]
    assert leftovers(out) == []


def test_vector_default_field_is_class(scene, tmp_path, capsys):
    """Without --label-field the field is 'class'; a file without it says which fields it has."""
    gpkg = write_gpkg(tmp_path / "labels.gpkg", named_features(scene["truth_array"]), field="landcover")
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", gpkg,
                                  "--out", tmp_path / "m.semiseg", "--progress", "none", *TINY_TRAIN])
    assert rc != 0 and "'class'" in err and "landcover" in err
    assert not (tmp_path / "m.semiseg").exists()


def test_vector_integer_class_field(scene, tmp_path):
    """A numeric class field gives class numbers directly (names 'class 1'..'class K')."""
    truth = scene["truth_array"]
    path = tmp_path / "numbers.gpkg"
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = ds.CreateLayer("labels", srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    for k in (1, 3):  # class 2 is never drawn: it still exists, with no pixels
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromWkt(box_wkt(*interior_box(truth, k))))
        f.SetField("class", k)
        layer.CreateFeature(f)
    ds = layer = None  # noqa: F841  (flush and close)
    with rasterio.open(scene["image"]) as img:
        lab = load_labels(str(path), img)  # default field: class
    assert lab.classes.names == ["class 1", "class 2", "class 3"]
    assert set(np.unique(lab.full())) == {0, 1, 3}
    assert np.all(truth[lab.full() == 1] == 1) and np.all(truth[lab.full() == 3] == 3)


def _add_layer(path: Path, name: str, field: str, field_type, features, srs="EPSG:32633",
               driver: str = "GPKG") -> None:
    """Append a layer ``name`` with one ``field`` to the vector file ``path`` (made when missing); ``srs``
    an EPSG code, WKT, or None for a layer without one."""
    drv = ogr.GetDriverByName(driver)
    ds = drv.Open(str(path), 1) if path.exists() else drv.CreateDataSource(str(path))
    if srs is not None:
        text, srs = srs, osr.SpatialReference()
        srs.ImportFromEPSG(int(text.split(":")[1])) if text.startswith("EPSG:") else srs.ImportFromWkt(text)
    layer = ds.CreateLayer(name, srs, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn(field, field_type))
    for wkt, value in features:
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetGeometry(ogr.CreateGeometryFromWkt(wkt))
        f.SetField(field, value)
        layer.CreateFeature(f)
    ds = layer = None  # noqa: F841  (flush and close)


def test_multi_layer_geopackage_picks_the_labels_layer(scene, tmp_path, capsys):
    """A GeoPackage of several layers: the one with the class field, or the one named as QGIS names it
    (``FILE|layername=NAME``); two candidates or an unknown name are refused with one sentence."""
    truth = scene["truth_array"]
    boxes = {k: box_wkt(*interior_box(truth, k)) for k in NAMES}
    gpkg = tmp_path / "project.gpkg"
    _add_layer(gpkg, "aoi", "name", ogr.OFTString, [(box_wkt(0, 0, 90, 90), "study area")])
    _add_layer(gpkg, "labels", "class", ogr.OFTString, [(boxes[k], NAMES[k]) for k in NAMES])
    with rasterio.open(scene["image"]) as img:
        picked = load_labels(str(gpkg), img)  # the one layer with a field 'class'
        named = load_labels(f"{gpkg}|layername=labels", img)
        assert picked.classes.names == named.classes.names == ["forest", "urban", "water"]
        assert np.array_equal(picked.full(), named.full()) and picked.full().any()
    _add_layer(gpkg, "old_labels", "class", ogr.OFTString, [(boxes[1], "water")])
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", gpkg, "--out-dir", out,
                                  "--progress", "none", *TINY_TRAIN])
    assert rc != 0 and "Traceback" not in err
    assert "labels, old_labels" in err and "|layername=" in err and leftovers(out) == []
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", f"{gpkg}|layername=nope",
                                  "--out-dir", out, "--progress", "none", *TINY_TRAIN])
    assert rc != 0 and "no layer 'nope'" in err and "aoi, labels, old_labels" in err
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", f"{gpkg}|layername=labels",
                                  "--out-dir", out, "--progress", "none", *TINY_TRAIN])
    assert rc == 0, err


def test_real_class_field_keeps_the_numbers(scene, tmp_path):
    """Whole numbers in a Real field (2.0) are class numbers, not names sorted as text; 1, 2 and 10 leave
    more gaps than classes, so they are codes: three classes that keep their values."""
    truth = scene["truth_array"]
    path = tmp_path / "real.gpkg"
    _add_layer(path, "labels", "class", ogr.OFTReal,
               [(box_wkt(*interior_box(truth, 1)), 1.0), (box_wkt(*interior_box(truth, 2)), 2.0),
                (box_wkt(*interior_box(truth, 3)), 10.0)])
    with rasterio.open(scene["image"]) as img:
        lab = load_labels(str(path), img)
    assert lab.num_classes == 3 and lab.classes.codes == [1, 2, 10]
    assert lab.classes.names == ["class 1", "class 2", "class 10"]
    full = lab.full()
    for k in (1, 2, 3):
        assert np.all(full[truth == k][full[truth == k] > 0] == k)
    assert set(np.unique(full)) == {0, 1, 2, 3}


def test_labels_for_a_model_are_numbered_as_its_classes(scene, tmp_path):
    """Labels for a saved model (predict --labels) name some of its classes: each keeps the model's number,
    whatever the others; a name the model does not know is refused."""
    truth = scene["truth_array"]
    some = write_gpkg(tmp_path / "some.gpkg", [(box_wkt(*interior_box(truth, k)), NAMES[k], None)
                                               for k in (1, 3)])  # water and urban only
    model_names = ["forest", "urban", "water"]
    with rasterio.open(scene["image"]) as img:
        lab = load_labels(str(some), img, "landcover", min_classes=1, class_names=model_names)
        alone = load_labels(str(some), img, "landcover", min_classes=1)
        full = lab.full()
        assert np.all(full[truth == 1][full[truth == 1] > 0] == 3)  # water is the model's class 3
        assert np.all(full[truth == 3][full[truth == 3] > 0] == 2)  # urban its class 2
        assert alone.classes.names == ["urban", "water"]  # numbered on their own, urban would be 1
        with pytest.raises(Exception, match="does not know"):
            load_labels(str(some), img, "landcover", min_classes=1, class_names=["forest", "urban"])


def test_class_codes_are_classes_and_the_map_keeps_the_codes(scene, tmp_path, capsys):
    """Class codes of a land-cover scheme (1, 3 and 7: more gaps than classes): three classes, no class for
    each value in between, and the map holds the codes, named."""
    truth = scene["truth_array"]
    path = tmp_path / "codes.gpkg"
    boxes = [(box_wkt(*interior_box(truth, k)), code) for k, code in ((1, 1), (2, 3), (3, 7))]
    _add_layer(path, "labels", "class", ogr.OFTInteger, boxes)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", path, "--out-dir", out,
                                       "--progress", "jsonl", *TINY_TRAIN])
    assert rc == 0, err
    warned = [e["message"] for e in map(json.loads, stdout.splitlines())
              if e["event"] == "warning" and e.get("code") == "class_without_labels"]
    assert warned == []
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["labeled_pixels"]) == ["class 1", "class 3", "class 7"]
    with rasterio.open(out / "prediction.tif") as ds:
        assert set(np.unique(ds.read(1))) <= {0, 1, 3, 7}
    assert read_category_names(str(out / "prediction.tif"))[7] == "class 7"


def test_a_layer_filter_keeps_only_the_features_qgis_shows(scene, tmp_path):
    """``FILE|layername=NAME|subset=EXPRESSION`` (a filtered layer's source in QGIS): only the features
    the filter keeps become labels; a filter GDAL cannot apply is one sentence."""
    from engine.errors import InputError

    gpkg = write_gpkg(tmp_path / "labels.gpkg", named_features(scene["truth_array"]))
    with rasterio.open(scene["image"]) as img:
        everything = load_labels(str(gpkg), img, "landcover")
        forest = load_labels(f"{gpkg}|layername=labels|subset=\"landcover\" = 'forest'", img, "landcover",
                             min_classes=1)
        assert everything.classes.names == ["forest", "urban", "water"]
        assert forest.classes.names == ["forest"]
        assert np.array_equal(forest.full() > 0, everything.full() == 1)
        with pytest.raises(InputError, match="filter"):
            load_labels(f"{gpkg}|subset=no_such_field = 3", img, "landcover")


def test_a_layer_without_a_crs_is_taken_as_it_is_and_a_wrong_one_is_a_sentence(scene, tmp_path, capsys):
    """A GeoPackage layer written without a CRS (GDAL reads it as "Undefined geographic SRS"), or with a
    local engineering CRS, holds coordinates of no known CRS: used as they are, as a Shapefile without
    .prj. A GeoJSON without a crs member is WGS 84 by definition, so metre coordinates in it cannot be
    transformed: one sentence, not a traceback."""
    truth = scene["truth_array"]
    boxes = [(box_wkt(*interior_box(truth, k)), k) for k in (1, 2, 3)]
    local = 'LOCAL_CS["Undefined Cartesian SRS",LOCAL_DATUM["unknown",32767],UNIT["metre",1],' \
            'AXIS["Easting",EAST],AXIS["Northing",NORTH]]'
    for name, srs in (("none", None), ("local", local)):
        path = tmp_path / f"{name}.gpkg"
        _add_layer(path, "labels", "class", ogr.OFTInteger, boxes, srs=srs)
        rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", path, "--out",
                                      tmp_path / f"{name}.semiseg", *TINY_TRAIN, "--progress", "none"])
        assert rc == 0, (name, err)
    geojson = tmp_path / "metres.geojson"
    _add_layer(geojson, "labels", "class", ogr.OFTInteger, boxes, srs=None, driver="GeoJSON")
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", geojson, "--out",
                                  tmp_path / "g.semiseg", *TINY_TRAIN, "--progress", "none"])
    assert rc == 2 and "cannot be taken from their CRS (WGS 84)" in err and "Traceback" not in err, err


def test_an_empty_class_value_is_unlabeled_and_names_differing_in_case_are_named(scene, tmp_path, capsys):
    feats = named_features(scene["truth_array"])
    r0, c0, r1, c1 = interior_box(scene["truth_array"], 1, size=4)
    feats += [(box_wkt(r0, c0, r1, c1), "", None), (box_wkt(r0, c0, r1, c1), "  ", None)]  # not classes
    with rasterio.open(scene["image"]) as img:
        lab = load_labels(str(write_gpkg(tmp_path / "blank.gpkg", feats)), img, "landcover")
    assert lab.classes.names == ["forest", "urban", "water"] and lab.notes == ()
    feats[0] = (feats[0][0], "Water", None)  # the 'water' box, spelt with a capital
    path = write_gpkg(tmp_path / "cased.gpkg", feats + [(box_wkt(2, 2, 5, 5), "water", None)])
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", path, "--label-field",
                                  "landcover", "--out", tmp_path / "m.semiseg", *TINY_TRAIN,
                                  "--progress", "none"])
    assert rc == 0, err
    assert "name the classes 'Water' and 'water', which differ only in case" in err


def test_curved_and_multi_surface_geometries_are_read_as_their_straight_equivalent(scene, tmp_path):
    """MultiSurface, CurvePolygon and CompoundCurve features (QGIS's curve digitising, FileGDB and
    cadastre exports) label the pixels their plain Polygon / LineString twins label (they raised a
    traceback from the GeoJSON conversion before)."""
    feats = named_features(scene["truth_array"])
    curved = [(feats[0][0].replace("POLYGON((", "MULTISURFACE(((") + ")", *feats[0][1:]),
              (feats[1][0].replace("POLYGON((", "CURVEPOLYGON(("), *feats[1][1:]),
              feats[2],
              (feats[3][0].replace("LINESTRING(", "COMPOUNDCURVE((").rstrip(")") + "))", *feats[3][1:])]
    plain = write_gpkg(tmp_path / "plain.gpkg", feats)
    bent = write_gpkg(tmp_path / "curved.gpkg", curved, to_epsg=4326)
    src = ogr.Open(str(bent))
    kinds = {ogr.GeometryTypeToName(f.GetGeometryRef().GetGeometryType()) for f in src.GetLayer(0)}
    src = None
    assert {"Multi Surface", "Curve Polygon", "Compound Curve"} <= kinds, kinds
    with rasterio.open(scene["image"]) as img:
        a = load_labels(str(plain), img, "landcover").full()
        b = load_labels(str(bent), img, "landcover").full()
    assert a.any()
    both = (a > 0) & (b > 0)
    assert np.all(a[both] == b[both]) and both.sum() >= 0.85 * (a > 0).sum()


def test_a_vector_format_named_by_no_known_suffix_is_read_as_vectors(scene, tmp_path):
    """A FileGDB folder (and a GPX, KMZ, ...: any file GDAL reads as vectors and not as a raster) is
    labels, with or without QGIS's |layername=; it was taken for a raster and refused before."""
    from osgeo import gdal

    gpkg = write_gpkg(tmp_path / "labels.gpkg", named_features(scene["truth_array"])[:3])  # the polygons
    gdb = tmp_path / "labels.gdb"
    assert gdal.VectorTranslate(str(gdb), str(gpkg), format="OpenFileGDB", geometryType="POLYGON") is not None
    with rasterio.open(scene["image"]) as img:
        want = load_labels(str(gpkg), img, "landcover").full()
        for source in (str(gdb), f"{gdb}|layername=labels"):
            got = load_labels(source, img, "landcover").full()
            assert np.array_equal(got, want) and want.any(), source


def test_labels_with_a_crs_missing_an_image_without_one_say_why(scene, tmp_path, capsys):
    """An image without a CRS takes the labels' coordinates as its own (labels digitised over it in QGIS
    work so); labels in degrees then miss it, and the sentence says that the image lacks its CRS, not
    only that the labels lie outside it."""
    with rasterio.open(scene["image"]) as src:
        profile, data = src.profile, src.read()
    profile.pop("crs")
    bare = tmp_path / "no crs.tif"
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(data)
    degrees = write_gpkg(tmp_path / "wgs84.gpkg", named_features(scene["truth_array"]), to_epsg=4326)
    rc, _, err = run_cli(capsys, ["train", "--image", bare, "--labels", degrees, "--label-field", "landcover",
                                  "--out", tmp_path / "m.semiseg", *TINY_TRAIN, "--progress", "none"])
    assert rc == 2, err
    assert f"Labels {degrees} lie outside the image; {bare} has no CRS, so their EPSG:4326 coordinates" in err


def test_class_names_of_a_latin1_shapefile_without_its_cpg_are_decoded(scene, tmp_path):
    """A Shapefile written in Windows-1252 whose .cpg is missing: GDAL hands its names over undecoded
    ("Stra" + a lone surrogate + "e"), which made a map whose class names GDAL could not read back. They
    are decoded as Windows-1252."""
    truth = scene["truth_array"]
    path = tmp_path / "labels.shp"
    src = ogr.GetDriverByName("ESRI Shapefile").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32633)
    layer = src.CreateLayer("labels", srs, ogr.wkbPolygon, options=["ENCODING=CP1252"])
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTString))
    for k, name in ((1, "Straße"), (2, "Wäld €")):
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("class", name)
        f.SetGeometry(ogr.CreateGeometryFromWkt(box_wkt(*interior_box(truth, k))))
        layer.CreateFeature(f)
    src = None
    (tmp_path / "labels.cpg").unlink()
    with rasterio.open(scene["image"]) as img:
        lab = load_labels(str(path), img)
    assert lab.classes.names == ["Straße", "Wäld €"]


def test_a_crs_given_with_the_source_places_labels_whose_file_has_none(scene, tmp_path, capsys):
    """Labels in degrees in a file without a CRS: ``|crs=EPSG:4326`` (what the plugin passes when the
    analyst gave the layer its CRS in QGIS) places them as their twin with the CRS in the file; without
    it they miss the image and the sentence says their file has no CRS; a CRS GDAL cannot read is one
    sentence."""
    degrees = write_gpkg(tmp_path / "wgs84.gpkg", named_features(scene["truth_array"]), to_epsg=4326)
    bare = tmp_path / "bare.gpkg"
    src = ogr.Open(str(degrees))
    _add_layer(bare, "labels", "landcover", ogr.OFTString,
               [(f.GetGeometryRef().ExportToWkt(), f.GetField("landcover")) for f in src.GetLayer(0)
                if f.GetGeometryRef().GetDimension() == 2], srs=None)
    src = None
    with rasterio.open(scene["image"]) as img:
        want = load_labels(str(degrees), img, "landcover").full()
        got = load_labels(f"{bare}|crs=EPSG:4326", img, "landcover").full()
        both = (want > 0) & (got > 0)
        assert got.any() and np.array_equal(got[both], want[both]) and both.sum() >= 0.8 * (want > 0).sum()
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", bare, "--label-field",
                                  "landcover", "--out", tmp_path / "m.semiseg", *TINY_TRAIN,
                                  "--progress", "none"])
    assert rc == 2 and f"Labels {bare} lie outside the image; their file has no CRS" in err, err
    assert "(EPSG:32633)" in err
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", f"{bare}|crs=EPSG:99999999",
                                  "--label-field", "landcover", "--out", tmp_path / "m.semiseg", *TINY_TRAIN,
                                  "--progress", "none"])
    assert rc == 2 and "given after |crs= is not one GDAL knows" in err and "Traceback" not in err, err
