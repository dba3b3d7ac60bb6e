"""Segmenting a part of the image (``--area``): the map of the area is the whole image's map there,
bounds in the image's CRS on any grid orientation, and bad areas are refused before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from engine_helpers import LEARN_CLASSES, TINY_TRAIN, jsonl_events, leftovers, run_cli, write_raster
from rasterio.transform import Affine

from engine import modelfile
from engine.labels import LabelPatches
from engine.pipeline import score_map
from engine.predict import predict_file
from engine.raster import area_window

SIZE = 300  # several 96-px core blocks, the last ones partial


@pytest.fixture(scope="module")
def big_image(learned, tmp_path_factory):
    """The learned scene grown to 300×300 by mirroring (content the model knows everywhere)."""
    with rasterio.open(learned["image"]) as ds:
        img, profile = ds.read(), ds.profile
    big = np.pad(img, ((0, 0), (0, SIZE - img.shape[1]), (0, SIZE - img.shape[2])), mode="reflect")
    path = tmp_path_factory.mktemp("area") / "big.tif"
    return write_raster(path, big, crs=profile["crs"], transform=profile["transform"],
                        nodata=profile["nodata"])


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1), ds.transform, ds.crs


def test_area_map_equals_the_whole_map_there(learned, big_image, tmp_path):
    model = modelfile.load(str(learned["model"]))
    with rasterio.open(learned["labels"]) as ds:
        labels = np.pad(ds.read(1), ((0, SIZE - ds.height), (0, SIZE - ds.width)))
    anchors = LabelPatches.from_array(labels)
    common = {"device": torch.device("cpu"), "core": 96, "tta": "off", "smooth": True, "anchors": anchors}
    predict_file(model, str(big_image), str(tmp_path / "whole.tif"), str(tmp_path / "whole_c.tif"), **common)
    area = (37, 150, 175, 150)  # rows 37..211, cols 150..299: on no block edge, to the raster's right edge
    how = predict_file(model, str(big_image), str(tmp_path / "area.tif"), str(tmp_path / "area_c.tif"),
                       area=area, **common)
    whole, transform, crs = _read(tmp_path / "whole.tif")
    part, part_transform, part_crs = _read(tmp_path / "area.tif")
    r, c, h, w = area
    assert part.shape == (h, w) and part_crs == crs
    assert part_transform == transform * Affine.translation(c, r)  # on the image's grid, cut to the area
    assert len(np.unique(part)) == LEARN_CLASSES  # a real map, so equality is not trivial
    # the same windows as the whole raster's prediction: the same map, to the bit
    assert np.array_equal(part, whole[r:r + h, c:c + w])
    confidence = _read(tmp_path / "whole_c.tif")[0]
    assert np.array_equal(_read(tmp_path / "area_c.tif")[0], confidence[r:r + h, c:c + w])
    with rasterio.open(big_image) as ds:
        valid = np.all(ds.read_masks() > 0, axis=0)
    assert how["area"] == list(area)
    assert how["anchors"] == int(np.count_nonzero(labels[r:r + h, c:c + w][valid[r:r + h, c:c + w]])) > 0


def test_automatic_views_are_chosen_for_the_whole_image(learned, big_image, tmp_path, monkeypatch):
    """``--tta auto`` picks what the whole image would get, so an area of it is not predicted otherwise."""
    from engine import predict

    monkeypatch.setitem(predict.TTA_AUTO_PIXELS, "cpu", 200 * 200)  # the 300² image: one view
    how = predict_file(modelfile.load(str(learned["model"])), str(big_image), str(tmp_path / "a.tif"), None,
                       torch.device("cpu"), smooth=False, area=(0, 0, 100, 100))  # an area small enough for 8
    assert how["views"] == 1


@pytest.mark.parametrize("south_up", [False, True])
def test_area_bounds_become_the_pixels_they_touch(tmp_path, south_up):
    y_scale = 2.0 if south_up else -2.0
    origin_y = 4_999_000.0 if south_up else 5_000_000.0
    transform = Affine(2.0, 0.0, 500_000.0, 0.0, y_scale, origin_y)
    image = write_raster(tmp_path / "img.tif", np.ones((1, 100, 80), np.uint8), transform=transform)
    with rasterio.open(image) as ds:
        def bounds(r0, c0, r1, c1):  # the box of pixel rows r0..r1, cols c0..c1 (corners) in the CRS
            xs, ys = zip(*(ds.transform * (c, r) for c in (c0, c1) for r in (r0, r1)), strict=True)
            return min(xs), min(ys), max(xs), max(ys)

        assert area_window(bounds(10, 20, 30, 50), ds, str(image)) == (10, 20, 20, 30)  # exactly on edges
        x0, y0, x1, y1 = bounds(10, 20, 30, 50)
        inside = (x0 + 0.5, y0 + 0.5, x1 - 0.5, y1 - 0.5)  # a quarter pixel in: the same pixels touched
        assert area_window(inside, ds, str(image)) == (10, 20, 20, 30)
        beyond = (x0 - 1000, y0 - 1000, x1, y1)  # reaches off the image (west and south): clipped
        r, c, h, w = area_window(beyond, ds, str(image))
        assert (c, c + w) == (0, 50)
        assert (r, r + h) == ((0, 30) if south_up else (10, 100))  # south is row 0 on a south-up grid


def test_score_map_counts_only_the_held_out_pixels_in_the_area(tmp_path):
    pred = np.array([[1, 2], [2, 2]], np.uint8)  # the map of image rows 10..11, cols 20..21
    path = write_raster(tmp_path / "pred.tif", pred, nodata=0)
    held = [(9, 19, np.array([[1, 1], [1, 1]], np.uint8)),  # one pixel of it (10, 20) inside: right
            (11, 21, np.array([[1, 2]], np.uint8)),  # (11, 21) inside, truth 1, map 2: wrong; (11, 22) out
            (50, 50, np.array([[2]], np.uint8))]  # wholly outside
    s = score_map(str(path), held, 2, ["a", "b"], origin=(10, 20))
    assert s["pixels"] == 2 and s["confusion"] == [[1, 1], [0, 0]]


def test_cli_run_with_an_area(capsys, tmp_path):
    from engine.synthetic import write_scene

    scene = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=2)
    with rasterio.open(scene["labels"]) as ds:
        labels, tr = ds.read(1), ds.transform
    # an unlabeled 8×8 corner: no held-out stroke lies in it
    r, c = next((r, c) for r in range(0, 56, 4) for c in range(0, 56, 4)
                if not labels[r:r + 8, c:c + 8].any())
    x0, y1 = tr * (c, r)
    x1, y0 = tr * (c + 8, r + 8)
    out = tmp_path / "run"
    rc, stdout, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                       "--out-dir", out, "--area", x0, y0, x1, y1, "--progress", "jsonl",
                                       *TINY_TRAIN])
    assert rc == 0, err
    pred, transform, _ = _read(out / "prediction.tif")
    assert pred.shape == (8, 8) and transform == tr * Affine.translation(c, r)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["predict_area"] == {"bounds": [x0, y0, x1, y1], "row": r, "col": c, "height": 8,
                                       "width": 8}
    assert "map_val_miou" not in metrics and metrics["val_miou"] is not None
    assert any(e.get("code") == "area_unscored" for e in jsonl_events(stdout))


@pytest.mark.parametrize("area, code, words", [
    (["0", "0", "10", "10"], "area_outside", "does not overlap image"),
    (["500010", "4999990", "500005", "5000000"], "bad_area", "XMIN < XMAX"),
])
def test_bad_area_is_refused_before_training(capsys, tmp_path, area, code, words):
    from engine.synthetic import write_scene

    scene = write_scene(str(tmp_path), 32, 32, bands=3, classes=2, seed=1)
    out = tmp_path / "run"
    rc, stdout, _ = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                     "--out-dir", out, "--area", *area, "--progress", "jsonl", *TINY_TRAIN])
    assert rc != 0
    errors = [e for e in jsonl_events(stdout) if e["event"] == "error"]
    assert [e["code"] for e in errors] == [code] and words in errors[0]["message"]
    assert scene["image"] in errors[0]["message"] or code == "bad_area"
    assert not any(e["event"] == "stage" for e in jsonl_events(stdout))  # refused before any work
    assert leftovers(out) == []
