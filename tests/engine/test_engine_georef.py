"""Outputs sit exactly on the input grid and carry classes, colours and nodata as promised."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from engine_helpers import TINY_TRAIN, run_cli
from osgeo import gdal

from engine.synthetic import write_scene


def _grid(path):
    with rasterio.open(path) as ds:
        return ds.crs, ds.transform, ds.width, ds.height


def check_outputs(image: Path, prediction: Path, confidence: Path, model_classes: dict) -> None:
    """Every promise of the prediction/confidence contract, against the input ``image``."""
    crs, transform, width, height = _grid(image)
    assert crs is not None
    for out in (prediction, confidence):
        ocrs, otransform, owidth, oheight = _grid(out)
        assert ocrs == crs, out
        assert otransform == transform, out  # exact, not approximately
        assert (owidth, oheight) == (width, height), out

    with rasterio.open(image) as ds:
        img_valid = np.all(ds.read_masks() > 0, axis=0)
    k = len(model_classes["names"])
    with rasterio.open(prediction) as ds:
        assert ds.count == 1
        assert ds.dtypes[0] == "uint8"
        assert ds.nodata == 0
        assert ds.profile.get("tiled") is True
        assert ds.block_shapes[0][0] < ds.height or ds.height <= 256  # real internal tiles
        assert ds.compression is not None
        pred = ds.read(1)
        cmap = ds.colormap(1)
    for i, colour in enumerate(model_classes["colours"], start=1):
        assert tuple(cmap[i][:3]) == tuple(colour)
        assert cmap[i][3] == 255
    gds = gdal.Open(str(prediction))  # keep the dataset referenced while its band is used
    band = gds.GetRasterBand(1)
    # GDAL 3.6's GeoTIFF driver reads the .aux.xml side-car lazily, and GetCategoryNames alone does not
    # trigger it: read the colour table through GDAL first (as QGIS does when it opens the layer).
    gdal_colours = band.GetColorTable()
    assert gdal_colours is not None
    assert gdal_colours.GetColorEntry(1)[:3] == tuple(model_classes["colours"][0])
    names = band.GetCategoryNames()
    band = gds = None
    assert names is not None and list(names[1:k + 1]) == model_classes["names"]
    # nodata exactly where the input had nodata; a valid class everywhere else
    assert np.all(pred[~img_valid] == 0)
    assert np.all((pred[img_valid] >= 1) & (pred[img_valid] <= k))

    with rasterio.open(confidence) as ds:
        assert ds.dtypes[0] == "float32"
        conf = ds.read(1)
        cnodata = ds.nodata
    assert np.all(conf[~img_valid] == cnodata)
    valid_conf = conf[img_valid]
    assert np.all((valid_conf >= 1.0 / k - 1e-5) & (valid_conf <= 1.0 + 1e-5))


def test_projected_outputs_on_input_grid(learned, capsys):
    rc, out, err = run_cli(capsys, ["info", "--model", learned["model"]])
    assert rc == 0, err
    classes = json.loads(out)["classes"]
    with rasterio.open(learned["image"]) as ds:
        assert ds.crs.to_epsg() == 32633
    check_outputs(learned["image"], learned["prediction"], learned["confidence"], classes)


def test_degrees_crs_and_nodata_simply_work(tmp_path, capsys):
    """Train and predict (``engine run``) an EPSG:4326 image with a nodata corner: exit 0, right grid."""
    scene = write_scene(str(tmp_path), 128, 160, bands=3, classes=3, seed=5, dtype="uint16",
                        nodata_corner=True, crs="EPSG:4326")
    with rasterio.open(scene["image"]) as ds:
        assert ds.crs.to_epsg() == 4326 and ds.nodata == 0
        assert not np.all(ds.read_masks(1) > 0)  # the corner really is nodata
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out-dir", out, "--progress", "none", *TINY_TRAIN])
    assert rc == 0, err
    assert sorted(p.name for p in out.iterdir() if not p.name.endswith(".aux.xml")) == [
        "confidence.tif", "metrics.json", "model.semiseg", "prediction.tif"]
    rc, info, err = run_cli(capsys, ["info", "--model", out / "model.semiseg"])
    assert rc == 0, err
    info = json.loads(info)
    assert info["bands"] == 3
    check_outputs(Path(scene["image"]), out / "prediction.tif", out / "confidence.tif", info["classes"])


def test_float_image_with_nodata_value_in_degrees(learned, tmp_path, capsys):
    """``engine predict`` on a float32 EPSG:4326 raster whose nodata value is -9999."""
    scene = write_scene(str(tmp_path), 100, 140, bands=4, classes=4, seed=6, dtype="float32",
                        nodata_corner=True, crs="EPSG:4326")
    with rasterio.open(scene["image"]) as ds:
        assert ds.nodata == -9999.0 and (ds.read(1) == -9999.0).any()
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", scene["image"],
                                  "--out", out / "pred.tif", "--confidence", out / "conf.tif",
                                  "--device", "cpu", "--progress", "none"])
    assert rc == 0, err
    rc, info, err = run_cli(capsys, ["info", "--model", learned["model"]])
    check_outputs(Path(scene["image"]), out / "pred.tif", out / "conf.tif", json.loads(info)["classes"])


def test_rgba_orthophoto_alpha_is_the_mask_not_a_band(tmp_path, capsys):
    """An RGBA orthophoto (a drone mosaic's usual form): ``engine run`` trains on the three colour bands,
    leaves the transparent pixels nodata in both outputs, and the model then predicts the same imagery
    without its alpha band."""
    scene = write_scene(str(tmp_path), 96, 128, bands=3, classes=3, seed=7, dtype="uint8")
    with rasterio.open(scene["image"]) as ds:
        rgb, profile = ds.read(), ds.profile
    alpha = np.full(rgb.shape[1:], 255, np.uint8)
    alpha[:, :20] = 0  # a transparent strip, as outside a mosaic's footprint
    rgba = tmp_path / "rgba.tif"
    profile.update(count=4, nodata=None, photometric="RGB", alpha="YES")
    with rasterio.open(rgba, "w", **profile) as ds:
        ds.write(np.concatenate([np.where(alpha > 0, rgb, 0), alpha[None]]).astype(np.uint8))
    with rasterio.open(rgba) as ds:
        assert ds.count == 4 and ds.colorinterp[3] == rasterio.enums.ColorInterp.alpha

    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", rgba, "--labels", scene["labels"], "--out-dir", out,
                                  "--progress", "none", *TINY_TRAIN])
    assert rc == 0, err
    rc, info, err = run_cli(capsys, ["info", "--model", out / "model.semiseg"])
    assert rc == 0, err
    info = json.loads(info)
    assert info["bands"] == 3
    check_outputs(rgba, out / "prediction.tif", out / "confidence.tif", info["classes"])
    with rasterio.open(out / "prediction.tif") as ds:
        pred = ds.read(1)
    with rasterio.open(out / "confidence.tif") as ds:
        conf = ds.read(1)
    assert (pred[:, :20] == 0).all() and (conf[:, :20] == -1).all()  # transparent: nodata
    assert (pred[:, 20:] > 0).all() and (conf[:, 20:] > 0).all()

    rc, _, err = run_cli(capsys, ["predict", "--model", out / "model.semiseg", "--image", scene["image"],
                                  "--out", out / "rgb.tif", "--device", "cpu", "--progress", "none"])
    assert rc == 0, err
    with rasterio.open(scene["image"]) as ds:
        rgb_valid = np.all(ds.read_masks() > 0, axis=0)  # its nodata value 0 marks a few pixels
    with rasterio.open(out / "rgb.tif") as ds:
        assert (ds.read(1)[rgb_valid] > 0).all() and rgb_valid.mean() > 0.9


def _plain_copy(src_path: Path, dst_path: Path, gcps=None) -> Path:
    """``src_path``'s pixels with no CRS and no geotransform (a plain TIFF), or placed by ``gcps`` only."""
    import warnings

    with rasterio.open(src_path) as src:
        data, profile = src.read(), src.profile
    for key in ("crs", "transform"):
        profile.pop(key, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(dst_path, "w", **profile) as dst:
            dst.write(data)
            if gcps is not None:
                dst.gcps = gcps
    return dst_path


def test_image_without_georeferencing_maps_where_qgis_draws_it(tmp_path, capsys):
    """No CRS, no geotransform (a plain TIFF): QGIS draws it at x = column, y = -row. The maps are written
    on that grid, so they line up with the image in QGIS; spots and --area use the same coordinates, and
    vector labels digitised over the image in QGIS land on their pixels."""
    from rasterio.transform import Affine

    scene = write_scene(str(tmp_path), 96, 128, bands=3, classes=3, seed=9, dtype="uint8")
    image = _plain_copy(Path(scene["image"]), tmp_path / "plain.tif")
    labels = _plain_copy(Path(scene["labels"]), tmp_path / "plain_labels.tif")
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", image, "--labels", labels, "--out-dir", out,
                                  "--progress", "none", *TINY_TRAIN])
    assert rc == 0, err
    qgis_grid = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
    for name in ("prediction.tif", "confidence.tif"):
        with rasterio.open(out / name) as ds:
            assert ds.crs is None and ds.transform == qgis_grid and (ds.width, ds.height) == (128, 96)
    metrics = json.loads((out / "metrics.json").read_text())
    for spot in metrics["spots"]:
        left, bottom, right, top = spot["bounds"]
        assert (left, top) == (spot["col"], -spot["row"]) and bottom < top <= 0
    for name, area in (("whole.tif", []), ("area.tif", ["--area", "32", "-64", "96", "-16"])):
        rc, _, err = run_cli(capsys, ["predict", "--model", out / "model.semiseg", "--image", image,
                                      "--out", out / name, *area, "--device", "cpu", "--progress", "none"])
        assert rc == 0, err
    with rasterio.open(out / "whole.tif") as ds:
        whole = ds.read(1)
    with rasterio.open(out / "area.tif") as ds:
        assert ds.transform == Affine(1.0, 0.0, 32.0, 0.0, -1.0, -16.0)
        assert np.array_equal(ds.read(1), whole[16:64, 32:96])

    from osgeo import ogr

    from engine.labels import load_labels

    gpkg = tmp_path / "drawn.gpkg"
    vec = ogr.GetDriverByName("GPKG").CreateDataSource(str(gpkg))
    layer = vec.CreateLayer("labels", None, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTInteger))
    f = ogr.Feature(layer.GetLayerDefn())
    f.SetGeometry(ogr.CreateGeometryFromWkt("POLYGON((10 -20, 30 -20, 30 -30, 10 -30, 10 -20))"))
    f.SetField("class", 2)
    layer.CreateFeature(f)
    vec = layer = f = None
    with rasterio.open(image) as ds:
        drawn = load_labels(str(gpkg), ds, min_classes=1).full()
    rows, cols = np.nonzero(drawn)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (20, 29, 10, 29)


def test_image_placed_by_control_points_gets_georeferenced_maps(tmp_path, capsys):
    """A raster georeferenced by ground control points only: its maps are ordinary georeferenced rasters
    on the affine fitted to the points, in their CRS (so polygons, samples and any GIS place them), and
    labels in that CRS line up."""
    from rasterio.control import GroundControlPoint
    from rasterio.crs import CRS

    scene = write_scene(str(tmp_path), 96, 128, bands=3, classes=3, seed=10, dtype="uint8")
    with rasterio.open(scene["image"]) as ds:
        t, crs = ds.transform, ds.crs
    points = [GroundControlPoint(row=r, col=c, x=(t * (c, r))[0], y=(t * (c, r))[1])
              for r, c in ((0, 0), (0, 128), (96, 0), (96, 128))]
    image = _plain_copy(Path(scene["image"]), tmp_path / "gcp.tif", gcps=(points, CRS.from_epsg(32633)))
    with rasterio.open(image) as ds:
        assert ds.transform.is_identity and ds.crs is None and len(ds.gcps[0]) == 4
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", image, "--labels", scene["labels"], "--out-dir", out,
                                  "--progress", "none", *TINY_TRAIN])
    assert rc == 0, err
    with rasterio.open(out / "prediction.tif") as ds:
        assert ds.crs == crs and ds.transform.almost_equals(t)  # 4 exact points: the image's own affine
        assert (ds.read(1) > 0).mean() > 0.9
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["class_areas"]["unit"] == "hectare"  # 1 m pixels from the points' affine
    assert sum(c["hectares"] for c in metrics["class_areas"]["classes"].values()) == pytest.approx(
        (96 * 128 - metrics["class_areas"]["nodata_pixels"]) / 1e4, rel=1e-3)
    rc, _, err = run_cli(capsys, ["predict", "--model", out / "model.semiseg", "--image", image,
                                  "--out", out / "area.tif", "--area", "500032", "4999936", "500096",
                                  "4999984", "--device", "cpu", "--progress", "none"])
    assert rc == 0, err
    with rasterio.open(out / "area.tif") as ds:
        assert (ds.width, ds.height) == (64, 48) and ds.crs == crs
        assert ds.transform.almost_equals(t * rasterio.Affine.translation(32, 16))
    rc, _, err = run_cli(capsys, ["polygons", "--prediction", out / "prediction.tif", "--out",
                                  out / "polygons.gpkg", "--progress", "none"])
    assert rc == 0, err
    from osgeo import ogr

    vec = ogr.Open(str(out / "polygons.gpkg"))  # kept while its layer is used
    xmin, xmax, ymin, ymax = vec.GetLayer(0).GetExtent()
    vec = None
    assert (xmin, xmax, ymin, ymax) == pytest.approx((500000, 500128, 4999904, 5000000), abs=1e-6)


def test_paletted_image_is_read_as_its_colours(tmp_path, capsys):
    """A one-band image with a colour table (a scanned map): the network sees the colours of its palette
    (three bands, so renumbering the palette changes nothing); its nodata colour stays nodata. (A GeoTIFF
    palette holds no transparency; a transparent entry, as in a PNG or VRT palette, is nodata too.)"""
    from engine.raster import band_count, read_block

    scene = write_scene(str(tmp_path), 64, 80, bands=3, classes=3, seed=12, dtype="uint8")
    with rasterio.open(scene["truth"]) as ds:
        truth, profile = ds.read(1), ds.profile
    colours = {1: (20, 90, 200, 255), 2: (30, 140, 40, 255), 3: (200, 190, 120, 255), 0: (0, 0, 0, 0)}
    index = np.where(np.arange(64 * 80).reshape(64, 80) % 7 == 0, 0, truth).astype(np.uint8)
    paths = {}
    for name, order in (("a", [0, 1, 2, 3]), ("b", [0, 3, 1, 2])):  # the same colours, other numbers
        renumber = np.array(order, np.uint8)
        paths[name] = tmp_path / f"scan_{name}.tif"
        profile.update(nodata=int(renumber[0]), photometric="palette")
        with rasterio.open(paths[name], "w", **profile) as ds:
            ds.write(renumber[index], 1)
            ds.write_colormap(1, {int(renumber[k]): colours[k] for k in colours})
    blocks = {}
    for name, path in paths.items():
        with rasterio.open(path) as ds:
            assert band_count(ds) == 3
            blocks[name] = read_block(ds, 0, 0, 64, 80)
    x, valid = blocks["a"]
    assert x.shape == (3, 64, 80) and np.array_equal(valid, index > 0)
    assert tuple(x[:, 0, 1]) == colours[int(index[0, 1])][:3]
    assert np.array_equal(blocks["b"][0], x) and np.array_equal(blocks["b"][1], valid)
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", paths["a"], "--labels", scene["labels"], "--out-dir", out,
                                  "--progress", "none", *TINY_TRAIN])
    assert rc == 0, err
    rc, info, err = run_cli(capsys, ["info", "--model", out / "model.semiseg"])
    assert json.loads(info)["bands"] == 3
    with rasterio.open(out / "prediction.tif") as ds:
        pred = ds.read(1)
    assert np.all((pred == 0) == (index == 0))


def test_paletted_raster_of_other_bands_says_why_it_counts_three(tmp_path, capsys):
    """A paletted raster beside a 5-band image is refused with the reason it counts three bands (its
    colour table's red, green and blue), not just "has 3 band(s)" for a file that holds one."""
    scene = write_scene(str(tmp_path), 64, 80, bands=5, classes=3, seed=13, dtype="uint8")
    with rasterio.open(scene["truth"]) as ds:
        truth, profile = ds.read(1), ds.profile
    scan = tmp_path / "scan.tif"
    profile.update(photometric="palette")
    with rasterio.open(scan, "w", **profile) as ds:
        ds.write(truth.astype(np.uint8), 1)
        ds.write_colormap(1, {0: (0, 0, 0, 255), 1: (20, 90, 200, 255), 2: (30, 140, 40, 255),
                              3: (200, 190, 120, 255)})
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                  "--unlabeled", scan, "--out-dir", tmp_path / "out", "--progress", "none",
                                  *TINY_TRAIN])
    assert rc == 2
    assert f"Unlabeled image {scan} has 3 band(s) (the red, green and blue of its colour table)" in err
    assert "has 5" in err and not (tmp_path / "out" / "prediction.tif").exists()
