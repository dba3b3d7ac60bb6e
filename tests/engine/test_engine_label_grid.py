"""Label rasters on another grid (coarser pixels, another CRS) are warped with nearest neighbour; finer ones
by the classes of the label pixels whose centres fall in each image pixel."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from engine_helpers import random_image, run_cli, write_raster
from rasterio.enums import Resampling
from rasterio.transform import from_origin
from rasterio.warp import calculate_default_transform, reproject

from engine.categories import ClassTable, read_category_names, write_class_table
from engine.labels import load_labels

H = W = 96
QUICK = ["--preset", "fast", "--tile-size", "32", "--batch-size", "2", "--steps", "2", "--device", "cpu",
         "--progress", "none"]
ORIGIN = (500000.0, 5000000.0)


@pytest.fixture
def image(tmp_path):
    return random_image(tmp_path / "image.tif", H, W, ORIGIN)


def blocky_classes() -> np.ndarray:
    """Classes on 2×2-px blocks: 1 and 3 meet directly (so blending would invent a 2 between them)."""
    coarse = np.zeros((H // 2, W // 2), np.uint8)
    coarse[:, :16] = 1
    coarse[:, 16:32] = 3
    coarse[10:30, 34:46] = 2
    coarse[35:45, 5:40] = 1
    return coarse


def test_coarser_label_raster_is_warped_nearest(tmp_path, image):
    coarse = blocky_classes()
    path = write_raster(tmp_path / "coarse.tif", coarse, transform=from_origin(*ORIGIN, 2.0, 2.0))
    write_class_table(str(path), ClassTable(["water", "forest", "urban"], [(0, 0, 255), (0, 128, 0),
                                                                             (200, 0, 0)]))
    expected = np.repeat(np.repeat(coarse, 2, 0), 2, 1)
    with rasterio.open(image) as img:
        lab = load_labels(str(path), img)
    assert lab.full().shape == (H, W)
    assert np.array_equal(lab.full(), expected)
    assert lab.classes.names == ["water", "forest", "urban"]
    assert lab.classes.colours[1] == (0, 128, 0)


def test_coarse_truth_in_evaluate(tmp_path, image, capsys):
    """``engine evaluate`` warps a truth on another grid too: a perfect prediction scores 1."""
    coarse = blocky_classes()
    truth = write_raster(tmp_path / "truth_2m.tif", coarse, transform=from_origin(*ORIGIN, 2.0, 2.0))
    fine = np.repeat(np.repeat(coarse, 2, 0), 2, 1)
    pred = fine.copy()
    pred[pred == 0] = 2  # the prediction covers everything; unlabeled truth is not scored
    pred_path = write_raster(tmp_path / "pred.tif", pred, transform=from_origin(*ORIGIN, 1.0, 1.0))
    rc, out, err = run_cli(capsys, ["evaluate", "--prediction", pred_path, "--truth", truth])
    assert rc == 0, err
    r = json.loads(out)
    assert r["oa"] == 1.0 and r["miou"] == 1.0
    assert r["pixels"] == int((fine > 0).sum())


def test_label_raster_in_another_crs_is_warped_nearest(tmp_path, image):
    fine = np.repeat(np.repeat(blocky_classes(), 2, 0), 2, 1)
    src_transform = from_origin(*ORIGIN, 1.0, 1.0)
    # the same labels, reprojected (nearest) to Web Mercator at ~1.4 m pixels
    dst_crs = "EPSG:3857"
    transform, w, h = calculate_default_transform("EPSG:32633", dst_crs, W, H,
                                                  *rasterio.transform.array_bounds(H, W, src_transform))
    merc = np.zeros((h, w), np.uint8)
    reproject(fine, merc, src_transform=src_transform, src_crs="EPSG:32633", dst_transform=transform,
              dst_crs=dst_crs, resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
    path = write_raster(tmp_path / "labels_3857.tif", merc, crs=dst_crs, transform=transform)
    write_class_table(str(path), ClassTable.numbered(3))
    assert read_category_names(str(path))[1:] == ["class 1", "class 2", "class 3"]

    with rasterio.open(image) as img:
        lab = load_labels(str(path), img)
    got = lab.full()
    labeled = fine > 0
    agree = (got[labeled] == fine[labeled]).mean()
    assert agree >= 0.95, agree
    assert (got > 0).sum() >= 0.95 * labeled.sum()
    # nearest neighbour only: no value is invented where classes 1 and 3 meet
    assert set(np.unique(got)) <= {0, 1, 2, 3}
    band = np.zeros_like(fine, bool)
    band[:, 28:36] = True  # the 1|3 border at column 32, away from the class-2 block
    band[60:, :] = False
    assert not np.any(got[band & (fine > 0)] == 2)


@pytest.mark.parametrize("crs", ["EPSG:32633", "EPSG:3857"])
def test_labels_on_a_finer_grid_keep_strokes_thinner_than_an_image_pixel(tmp_path, image, crs):
    """Labels painted on a 4× finer grid (a sharper image): a block lands on exactly the image pixels it
    covers, and a one-fine-pixel stroke, which misses every image pixel centre, marks the pixels it
    crosses (by nearest neighbour it vanished and its class with it). In another CRS too."""
    fine = np.zeros((H * 4, W * 4), np.uint8)
    fine[80:160, 40:120] = 1  # image rows 20..39, columns 10..29
    fine[301, 20:360] = 2  # a stroke one fine pixel high, off every image pixel centre
    fine[200:240, 200:240] = 3
    fine[209:211, 210] = 1  # two stray pixels in an image pixel of 3: outvoted, 14 to 2
    fine[241:244, 242:244] = 1  # strays alone in image pixel (60, 60): theirs
    src_transform = from_origin(*ORIGIN, 0.25, 0.25)
    if crs != "EPSG:32633":
        dst, w, h = calculate_default_transform("EPSG:32633", crs, W * 4, H * 4,
                                                *rasterio.transform.array_bounds(H * 4, W * 4, src_transform))
        merc = np.zeros((h, w), np.uint8)
        reproject(fine, merc, src_transform=src_transform, src_crs="EPSG:32633", dst_transform=dst,
                  dst_crs=crs, resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)
        fine, src_transform = merc, dst
    path = write_raster(tmp_path / "fine.tif", fine, crs=crs, transform=src_transform)
    with rasterio.open(image) as img:
        got = load_labels(str(path), img).full()
    if crs == "EPSG:32633":
        want = np.zeros((H, W), np.uint8)
        want[20:40, 10:30] = 1
        want[75, 5:90] = 2
        want[50:60, 50:60] = 3
        want[60, 60] = 1
        assert np.array_equal(got, want)
    else:
        assert np.count_nonzero(got[75] == 2) >= 80 and set(np.unique(got[75])) <= {0, 2}
        assert abs(int((got == 1).sum()) - 400) <= 45 and abs(int((got == 3).sum()) - 100) <= 25


def test_a_class_whose_labels_all_miss_the_image_is_named(tmp_path, image, capsys):
    """A label raster shifted half off the image: class 3 lies wholly off it, so training on the other two
    says so (a class does not vanish without a word), and the class table still numbers it."""
    labels = np.zeros((H, W), np.uint8)
    labels[10:20, 10:40] = 1
    labels[60:70, 10:40] = 2
    labels[30:50, 80:90] = 3  # the shift below puts these columns past the image's right edge
    shifted = write_raster(tmp_path / "shifted.tif", labels,
                           transform=from_origin(ORIGIN[0] + 50, ORIGIN[1], 1, 1))
    with rasterio.open(image) as img:
        lab = load_labels(str(shifted), img)
    assert lab.off_image == (3,) and lab.num_classes == 3
    assert set(np.unique(lab.full())) == {0, 1, 2}
    rc, _, err = run_cli(capsys, ["train", "--image", image, "--labels", shifted,
                                  "--out", tmp_path / "m.semiseg", *QUICK])
    assert rc == 0, err
    assert "class 'class 3' has its labeled pixels all outside the image" in err


def test_a_damaged_label_raster_is_one_sentence(tmp_path, image, capsys):
    labels = np.zeros((H, W), np.uint8)
    labels[::3, ::5] = 1
    labels[1::3, ::5] = 2
    whole = write_raster(tmp_path / "whole.tif", labels)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    out = tmp_path / "run"
    rc, _, err = run_cli(capsys, ["run", "--image", image, "--labels", cut, "--out-dir", out, *QUICK])
    assert rc == 2 and "Traceback" not in err, err
    assert f"Labels {cut} cannot be read at rows" in err and "damaged or incomplete" in err
    assert not out.exists()
    rc, _, err = run_cli(capsys, ["evaluate", "--prediction", whole, "--truth", cut])
    assert rc == 2 and f"Truth {cut} cannot be read" in err, err


def test_a_label_vrt_whose_tile_is_missing_names_the_tile(tmp_path, image, capsys):
    from osgeo import gdal

    labels = np.zeros((H, W), np.uint8)
    labels[10:20, 10:20], labels[60:70, 60:70] = 1, 2
    whole = write_raster(tmp_path / "whole.tif", labels)
    halves = [str(tmp_path / f"{n}.tif") for n in ("top", "bottom")]
    for n, (row, rows) in zip(halves, ((0, H // 2), (H // 2, H - H // 2)), strict=True):
        gdal.Translate(n, str(whole), srcWin=[0, row, W, rows])
    vrt = tmp_path / "labels.vrt"
    gdal.BuildVRT(str(vrt), halves).FlushCache()
    (tmp_path / "bottom.tif").unlink()
    rc, _, err = run_cli(capsys, ["run", "--image", image, "--labels", vrt, "--out-dir", tmp_path / "run",
                                  *QUICK])
    assert rc == 2 and "Traceback" not in err, err
    assert "bottom.tif, which is missing" in err


def test_a_missing_crs_names_the_file_that_lacks_it(tmp_path, image, capsys):
    with rasterio.open(image) as img:
        data = img.read()
    bare = tmp_path / "bare.tif"
    with rasterio.open(bare, "w", driver="GTiff", height=H, width=W, count=3, dtype="uint8") as ds:
        ds.write(data)  # no CRS, no geotransform
    labels = np.zeros((H, W), np.uint8)
    labels[10:20, 10:20], labels[40:50, 40:50] = 1, 2
    placed = write_raster(tmp_path / "labels.tif", labels, transform=from_origin(*ORIGIN, 1, 1))
    rc, _, err = run_cli(capsys, ["train", "--image", bare, "--labels", placed,
                                  "--out", tmp_path / "m.semiseg", *QUICK])
    assert rc == 2 and f"The image {bare} has no CRS while labels {placed} are in EPSG:32633" in err, err
    assert "give the image that CRS" in err


def test_evaluate_takes_a_truth_raster_and_says_so_of_a_vector_file(tmp_path, image, capsys):
    truth = tmp_path / "truth.gpkg"
    truth.write_bytes(b"")  # its name is enough: evaluate scores rasters only
    prediction = write_raster(tmp_path / "map.tif", np.ones((H, W), np.uint8))
    rc, _, err = run_cli(capsys, ["evaluate", "--prediction", prediction, "--truth", truth])
    assert rc == 2 and f"Truth {truth} is a vector file" in err and "assess --reference" in err, err
