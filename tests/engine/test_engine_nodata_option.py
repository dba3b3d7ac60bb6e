"""``--nodata``: values that are no data in every band though the file does not say so (a mosaic's
collar, or the "no data value" a QGIS layer was given), left out of training and of the map."""

from __future__ import annotations

import json

import numpy as np
import rasterio
from engine_helpers import TINY_TRAIN, run_cli, write_raster


def _collar_scene(tmp_path):
    """A synthetic scene whose top-left corner is 0 in every band, written without a nodata value."""
    from engine.synthetic import write_scene

    scene = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=4, nodata_corner=True)
    with rasterio.open(scene["image"]) as ds:
        data = ds.read()
        prof = {"crs": ds.crs, "transform": ds.transform}
    scene["image"] = str(write_raster(tmp_path / "undeclared.tif", data, nodata=None, **prof))
    corner = np.zeros(data.shape[1:], bool)
    corner[: 64 // 5, : 64 // 5] = True
    return scene, corner


def test_read_block_leaves_out_the_given_values_in_any_band(tmp_path):
    from engine.raster import open_image, read_block

    data = np.full((3, 4, 5), 7, np.uint16)
    data[0, 0, 0] = 0  # one band at the value: no data, as QGIS draws it
    data[:, 1, 1] = 0  # every band
    data[2, 2, 2] = 9  # a second value
    data[1, 3, 4] = 65535  # the file's own nodata stays no data
    path = write_raster(tmp_path / "img.tif", data, nodata=65535)
    with open_image(str(path)) as ds:
        _, plain = read_block(ds, 0, 0, 4, 5)
    with open_image(str(path), [0, 9]) as ds:
        x, valid = read_block(ds, 0, 0, 4, 5)
    assert plain.sum() == 20 - 1
    expected = np.ones((4, 5), bool)
    expected[0, 0] = expected[1, 1] = expected[2, 2] = expected[3, 4] = False
    assert np.array_equal(valid, expected)
    assert np.all(x[:, ~valid] == 0)


def test_run_with_nodata_leaves_the_collar_unmapped_and_the_model_remembers_it(tmp_path, capsys):
    scene, corner = _collar_scene(tmp_path)
    out = tmp_path / "run"
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out-dir", out, "--nodata", "0", *TINY_TRAIN, "--progress", "none"])
    assert rc == 0, err
    with rasterio.open(out / "prediction.tif") as ds:
        pred = ds.read(1)
    with rasterio.open(out / "confidence.tif") as ds:
        conf = ds.read(1)
    assert np.all(pred[corner] == 0) and np.all(pred[~corner] > 0)
    assert np.all(conf[corner] == -1.0)
    areas = json.loads((out / "metrics.json").read_text())["class_areas"]
    assert areas["nodata_pixels"] == int(corner.sum())

    # predict with the model: the values it was trained with, unless told otherwise
    again, mapped = tmp_path / "again.tif", tmp_path / "mapped.tif"
    model = out / "model.semiseg"
    assert run_cli(capsys, ["predict", "--model", model, "--image", scene["image"], "--out", again,
                            "--device", "cpu", "--progress", "none"])[0] == 0
    assert run_cli(capsys, ["predict", "--model", model, "--image", scene["image"], "--out", mapped,
                            "--nodata", "none", "--device", "cpu", "--progress", "none"])[0] == 0
    with rasterio.open(again) as ds:
        assert np.array_equal(ds.read(1) == 0, corner)
    with rasterio.open(mapped) as ds:
        assert np.all(ds.read(1) > 0), "--nodata none maps the collar"

    # a warm start keeps the model's values unless given
    warm = tmp_path / "warm.semiseg"
    assert run_cli(capsys, ["train", "--image", scene["image"], "--labels", scene["labels"], "--out", warm,
                            "--warm-start", model, *TINY_TRAIN, "--progress", "none"])[0] == 0
    rc, info, _ = run_cli(capsys, ["info", "--model", warm])
    assert json.loads(info)["config"]["nodata"] == [0.0]


def test_without_nodata_the_undeclared_collar_is_mapped(tmp_path, capsys):
    scene, _ = _collar_scene(tmp_path)
    out = tmp_path / "run"
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out-dir", out, *TINY_TRAIN, "--smooth", "off", "--progress", "none"])
    assert rc == 0, err
    with rasterio.open(out / "prediction.tif") as ds:
        assert np.all(ds.read(1) > 0)


def test_nodata_none_with_values_is_refused_with_a_sentence(tmp_path, capsys):
    scene, _ = _collar_scene(tmp_path)
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out", tmp_path / "m.semiseg", "--nodata", "none", "0", *TINY_TRAIN,
                                  "--progress", "none"])
    assert rc == 2 and "--nodata none cannot be given with values" in err
    assert not (tmp_path / "m.semiseg").exists()


def test_negative_values_in_exponent_form_are_values_not_options():
    """gdalinfo prints the usual float32 no-data value as -3.4028234663852886e+38; argparse alone takes
    such a token for an unknown option."""
    from engine.cli import _nodata_list, _plain_negative_numbers, build_parser

    argv = ["predict", "--model", "m.semiseg", "--image", "i.tif", "--out", "o.tif", "--nodata",
            "-3.4028234663852886e+38", "-1e-5", "--area", "-1e3", "-2E3", "1e3", "2e3"]
    a = build_parser().parse_args(_plain_negative_numbers(argv))
    assert _nodata_list(a) == [-3.4028234663852886e+38, -1e-5]
    assert a.area == [-1000.0, -2000.0, 1000.0, 2000.0]
