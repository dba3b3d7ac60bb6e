"""What the engine tells a person: coordinates that can be typed back, the band that leaves an image
without a valid pixel, evaluate's confusion matrix as a table, and a damaged map named as the input at
fault when it is polygonized."""

from __future__ import annotations

import json

import numpy as np
import pytest
from engine_helpers import TINY_TRAIN, leftovers, run_cli, run_engine, write_raster
from rasterio.transform import from_origin

from engine.errors import InputError
from engine.raster import area_window, compute_band_stats, coord_text, open_image


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# --- coordinates -------------------------------------------------------------------------------------------

def test_a_coordinate_is_written_in_full():
    """Integers stay integral, no exponent, up to 6 decimals (degrees to about 0.1 m)."""
    for value, text in [(4999872.5, "4999872.5"), (500000.0, "500000"), (5000000.0, "5000000"),
                        (12.3456789, "12.345679"), (-45.25, "-45.25"), (0.1 + 0.2, "0.3"), (-1e-9, "0")]:
        assert coord_text(value) == text


def test_area_messages_give_coordinates_that_can_be_typed_back(tmp_path):
    """Not 4.99987e+06: the image's extent and the user's own area as --area takes them."""
    image = write_raster(tmp_path / "img.tif", np.ones((1, 255, 256), np.uint8),
                         transform=from_origin(500000.0, 5000000.0, 0.5, 0.5))
    with open_image(str(image)) as ds:
        with pytest.raises(InputError) as outside:
            area_window((0, 0, 10, 10), ds, str(image))
        with pytest.raises(InputError) as reversed_area:
            area_window((500100, 4999990, 500000, 5000000.25), ds, str(image))
    assert "spans 500000 4999872.5 500128 5000000 in EPSG:32633" in outside.value.message
    assert "Area 500100 4999990 500000 5000000.25 is not an area" in reversed_area.value.message
    assert "e+" not in outside.value.message + reversed_area.value.message


# --- a band without a valid pixel ------------------------------------------------------------------------

def _image(folder, bands: np.ndarray, **extra):
    folder.mkdir(exist_ok=True)
    return write_raster(folder / "img.tif", bands.astype(np.float32), **extra)


def _stats_error(path, nodata=()) -> str:
    with open_image(str(path), nodata) as ds, pytest.raises(InputError) as e:
        compute_band_stats(ds, str(path))
    return e.value.message


def _bands(height=64, width=64):
    return np.random.default_rng(0).uniform(1, 200, (3, height, width)).astype(np.float32)


def test_a_band_that_is_nan_everywhere_is_named(tmp_path, capsys):
    x = _bands()
    x[1] = np.nan
    image = _image(tmp_path, x)
    labels = write_raster(tmp_path / "labels.tif", np.ones((64, 64), np.uint8))
    rc, _, err = run_cli(capsys, ["run", "--image", image, "--labels", labels, "--out-dir", tmp_path / "out",
                                  "--progress", "none", *TINY_TRAIN])
    line = _one_line(err)
    assert rc == 2
    assert line == (f"Error: Image {image}'s band 2 is NaN at every pixel, so no pixel is valid; drop or fix "
                    "that band.")
    assert leftovers(tmp_path / "out") == []


def test_only_the_bands_that_leave_no_valid_pixel_are_named(tmp_path):
    """Sampled as the statistics are (a raster larger than a window): bands 1 and 3 are NaN, band 2 holds
    only the --nodata value. Where no band alone is at fault, the general sentence stays."""
    x = _bands(600, 700)
    x[0] = x[2] = np.nan
    x[1] = -9999
    msg = _stats_error(_image(tmp_path / "a", np.concatenate([x, _bands(600, 700)[:1]])), nodata=[-9999])
    assert "'s bands 1 and 3 are NaN and band 2 is nodata at every pixel, so no pixel is valid; drop or " \
           "fix those bands or check the image's nodata value." in msg
    everywhere = _bands()
    everywhere[:] = np.nan
    apart = _bands()  # every band has valid pixels, but never all at the same pixel
    apart[0, :32] = np.nan
    apart[1, 32:] = np.nan
    for name, bands in (("everywhere", everywhere), ("apart", apart)):
        path = _image(tmp_path / name, bands)
        assert _stats_error(path) == (f"Image {path} has no valid pixels (everything is nodata); check its "
                                      "nodata value.")


# --- evaluate's confusion matrix ----------------------------------------------------------------------------

def _maps(tmp_path, classes: int):
    truth = np.repeat(np.arange(1, classes + 1, dtype=np.uint8), 4)[None, :].repeat(8, 0)
    pred = truth.copy()
    pred[:, ::4] = np.where(truth[:, ::4] == classes, 1, truth[:, ::4] + 1)  # a quarter off by one class
    return (write_raster(tmp_path / "pred.tif", pred, nodata=0),
            write_raster(tmp_path / "truth.tif", truth, nodata=0))


def test_evaluate_prints_its_confusion_matrix_as_a_table(tmp_path, capsys):
    pred, truth = _maps(tmp_path, 3)
    rc, out, err = run_cli(capsys, ["evaluate", "--prediction", pred, "--truth", truth])
    assert rc == 0, err
    result = json.loads(out)  # still the JSON scripts read
    assert result["confusion"] == [[24, 8, 0], [0, 24, 8], [8, 0, 24]]
    assert "    [24, 8, 0],\n    [0, 24, 8],\n    [8, 0, 24]\n" in out  # a row per line
    assert len(out.splitlines()) < 20
    assert err.splitlines()[1:] == ["Confusion matrix in pixels (rows: truth, columns: map):",
                                    "truth \\ map  class 1  class 2  class 3",
                                    "class 1           24        8        0",
                                    "class 2            0       24        8",
                                    "class 3            8        0       24"]
    assert err.startswith("96 pixels scored: overall accuracy 0.750, mIoU")


def test_evaluate_keeps_a_wide_matrix_to_the_json(tmp_path, capsys):
    pred, truth = _maps(tmp_path, 30)
    rc, out, err = run_cli(capsys, ["evaluate", "--prediction", pred, "--truth", truth])
    assert rc == 0, err
    assert len(json.loads(out)["confusion"]) == 30
    assert len(out.splitlines()) < 30 + 45  # a row per line, not a number per line
    lines = err.splitlines()
    assert len(lines) == 2 and "30 classes is too wide to print; it is in the JSON" in lines[1], err


# --- polygons of a damaged map ----------------------------------------------------------------------------

def test_polygons_of_a_damaged_map_blame_the_map(tmp_path):
    """Not the free space, and no stray traceback from a GeoPackage closed after its file was removed."""
    classes = np.random.default_rng(1).integers(1, 4, (128, 128)).astype(np.uint8)
    whole = write_raster(tmp_path / "whole.tif", classes, nodata=0)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "out" / "polygons.gpkg"
    out.parent.mkdir()
    for extra in ([], ["--min-pixels", "4"]):
        proc = run_engine(["polygons", "--prediction", cut, "--out", out, "--progress", "none", *extra])
        line = _one_line(proc.stderr)
        assert proc.returncode == 2
        assert line.startswith(f"Error: Prediction {cut} cannot be read (") and "free space" not in line
        assert line.endswith("it may be damaged or incomplete: make the map again.")
        assert leftovers(out.parent) == []


def test_an_image_named_with_a_layer_or_a_table_says_to_export_it(tmp_path, capsys):
    """QGIS names a layer of a file `FILE|layername=…` and a GeoPackage's raster table `GPKG:FILE:TABLE`:
    the engine reads whole raster files, so it says to export that raster, not that the file is missing."""
    from engine_helpers import random_image, run_cli

    image = random_image(tmp_path / "image.tif", 32, 32)
    for given in (f"{image}|layername=image", f"GPKG:{image}:table"):
        rc, _, err = run_cli(capsys, ["train", "--image", given, "--labels", image, "--out",
                                      tmp_path / "m.semiseg", "--progress", "none"])
        assert rc == 2 and "names a part of a file" in err and "does not exist" not in err, err
    rc, _, err = run_cli(capsys, ["train", "--image", tmp_path / "nowhere.tif|layername=x", "--labels", image,
                                  "--out", tmp_path / "m.semiseg", "--progress", "none"])
    assert rc == 2 and "does not exist" in err, err
