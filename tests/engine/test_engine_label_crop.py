"""Labels are held as patches: crops of groups of labeled pixels, read from a label raster in row blocks.
What the engine keeps follows the strokes, not the raster (a few strokes on a 50,000² px orthophoto stay
small, wherever they lie). The patches must give exactly the labels a whole-grid reading gives, and the
validation split must not depend on how the labels are cut into patches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from engine_helpers import random_image, write_raster
from osgeo import ogr
from rasterio.enums import Resampling
from rasterio.features import rasterize
from rasterio.transform import Affine, from_origin
from rasterio.warp import reproject
from test_engine_vector_labels import px_to_xy, write_gpkg

from engine import labels as labels_module
from engine.data import build_chips, split_labels
from engine.errors import InputError
from engine.labels import LabelPatches, cell_rectangles, load_labels
from engine.raster import compute_band_stats, open_image

H, W = 96, 160
ORIGIN = (500000.0, 5000000.0)


@pytest.fixture
def image(tmp_path):
    return random_image(tmp_path / "image.tif", H, W, ORIGIN)


def strokes() -> np.ndarray:
    lab = np.zeros((H, W), np.uint8)
    lab[30, 70:120] = 1
    lab[31:50, 118] = 2
    lab[45:48, 75:80] = 3
    return lab


@pytest.mark.parametrize("block_bytes", [W, 7 * W, 2**25])  # one row, seven rows, all rows per block
def test_raster_labels_are_their_crop_whatever_the_blocks(tmp_path, image, monkeypatch, block_bytes):
    monkeypatch.setattr(labels_module, "BLOCK_BYTES", block_bytes)
    lab = strokes()
    stored = lab.copy()
    stored[5, 5] = stored[90, 150] = 255  # nodata: unlabeled, and outside the crop
    path = write_raster(tmp_path / "labels.tif", stored, nodata=255, transform=from_origin(*ORIGIN, 1.0, 1.0))
    with rasterio.open(image) as img:
        got = load_labels(str(path), img)
    (crop,) = got.patches.crops  # the default cell is larger than this image: one patch
    assert (crop.row, crop.col) == (30, 70)
    assert crop.array.shape == (20, 50)  # rows 30..49, columns 70..119: the strokes' box only
    assert np.array_equal(got.full(), lab)
    assert got.counts().tolist() == [int((lab == c).sum()) for c in (1, 2, 3)]


def test_float_labels_with_nan_read_in_blocks(tmp_path, image, monkeypatch):
    monkeypatch.setattr(labels_module, "BLOCK_BYTES", 4 * W * 3)
    lab = strokes()
    f = lab.astype(np.float32)
    f[0, :] = np.nan
    path = write_raster(tmp_path / "labels_f.tif", f, transform=from_origin(*ORIGIN, 1.0, 1.0))
    with rasterio.open(image) as img:
        assert np.array_equal(load_labels(str(path), img).full(), lab)


def test_a_bad_value_in_the_last_block_is_still_refused(tmp_path, image, monkeypatch):
    """Reading in blocks checks every block, not just the labeled box."""
    monkeypatch.setattr(labels_module, "BLOCK_BYTES", W * 4 * 8)
    f = strokes().astype(np.float32)
    f[H - 1, W - 1] = 1.5
    path = write_raster(tmp_path / "labels_bad.tif", f, transform=from_origin(*ORIGIN, 1.0, 1.0))
    with rasterio.open(image) as img, pytest.raises(InputError) as e:
        load_labels(str(path), img)
    assert e.value.code == "labels_values" and "labels_bad.tif" in str(e.value)


def test_warped_labels_equal_a_whole_grid_warp(tmp_path, image):
    """Labels on a coarser grid with a larger extent: warping only their crop gives what warping the
    whole label raster onto the whole image grid gives."""
    coarse = np.zeros((80, 120), np.uint8)  # 2 m pixels reaching beyond the image on the right and below
    coarse[10:14, 30:60] = 1
    coarse[20:30, 40] = 2
    coarse[44:47, 75:79] = 3  # partly beyond the image (image columns 150..157; image rows 88..93)
    src_transform = from_origin(ORIGIN[0], ORIGIN[1], 2.0, 2.0)
    path = write_raster(tmp_path / "coarse.tif", coarse, transform=src_transform)
    expected = np.zeros((H, W), np.uint8)
    reproject(coarse, expected, src_transform=src_transform, src_crs="EPSG:32633",
              dst_transform=from_origin(*ORIGIN, 1.0, 1.0), dst_crs="EPSG:32633", src_nodata=0, dst_nodata=0,
              resampling=Resampling.nearest)
    with rasterio.open(image) as img:
        got = load_labels(str(path), img)
    assert np.array_equal(got.full(), expected)
    (crop,) = got.patches.crops
    assert crop.array.shape[0] < H and crop.array.shape[1] < W


def test_vector_labels_rasterize_in_their_window_only(tmp_path, image):
    """Lines, a point and a polygon reaching beyond the image: the window they are rasterized in gives
    the whole-grid rasterization, to the pixel (all-touched edges included)."""
    def line(pts):
        return "LINESTRING(" + ", ".join("{} {}".format(*px_to_xy(r, c)) for r, c in pts) + ")"

    x, y = px_to_xy(60.5, 20.5)
    poly = [px_to_xy(r, c) for r, c in ((80, 140), (80, 175), (101, 175), (101, 140), (80, 140))]
    feats = [(line([(10.3, 30.7), (25.2, 61.4)]), "1", None), (f"POINT({x} {y})", "2", None),
             ("POLYGON((" + ", ".join(f"{a} {b}" for a, b in poly) + "))", "3", None)]
    path = write_gpkg(tmp_path / "strokes.gpkg", feats, field="class")
    shapes = [(json.loads(ogr.CreateGeometryFromWkt(wkt).ExportToJson()), int(v)) for wkt, v, _ in feats]
    areas_lines_points = [shapes[2], shapes[0], shapes[1]]  # the engine's order: thin strokes win
    expected = rasterize(areas_lines_points, out_shape=(H, W), transform=from_origin(*ORIGIN, 1.0, 1.0),
                         fill=0, all_touched=True, dtype="uint8")
    with rasterio.open(image) as img:
        got = load_labels(str(path), img)
    assert np.array_equal(got.full(), expected)
    assert sum(c.array.size for c in got.patches.crops) < H * W


def test_chips_take_their_labels_from_the_crops(tmp_path):
    """Over the memory budget, chips are the labeled blocks plus random ones, with the crop's labels."""
    h, w = 256, 320  # 1.2 MB of normalised pixels: over a 1 MiB budget
    img = random_image(tmp_path / "big.tif", h, w, ORIGIN, seed=1)
    lab = np.zeros((h, w), np.uint8)
    lab[100:120, 200:260] = strokes()[30:50, 70:130]
    crop = LabelPatches.from_array(lab)
    assert [(c.row, c.col) for c in crop.crops] == [(100, 200)]
    with open_image(str(img)) as ds:
        stats = compute_band_stats(ds)
        chips = build_chips(ds, stats, crop, None, budget_mb=1, seed=0, chip=32)
        none = build_chips(ds, stats, None, None, budget_mb=1, seed=0, chip=32)
    assert len(chips) < (h // 32) * (w // 32)  # blocks, not the whole image
    got = np.zeros((h, w), np.uint8)
    for c in chips:
        got[c.row:c.row + c.train.shape[0], c.col:c.col + c.train.shape[1]] = c.train
        assert not c.val.any()
    assert np.array_equal(got, lab)  # every labeled block was loaded, each with its labels
    assert none and all(not c.train.any() for c in none)


def _apart(crops) -> bool:
    """No two crops overlap or touch (8-neighbours)."""
    for i, a in enumerate(crops):
        for b in crops[i + 1:]:
            if (a.row <= b.row + b.array.shape[0] and b.row <= a.row + a.array.shape[0]
                    and a.col <= b.col + b.array.shape[1] and b.col <= a.col + a.array.shape[1]):
                return False
    return True


def test_cell_rectangles_cover_touching_cells_and_keep_apart():
    has = np.zeros((8, 10), bool)
    has[0, 0] = has[1, 1] = True  # corner-touching: one rectangle
    has[0, 4] = has[1, 5] = has[2, 4] = True  # a chain; its box (rows 0-2, columns 4-5) then touches
    has[3, 6] = True  # ... this cell, which touched none of the chain's: one rectangle for all four
    has[6, 8] = True
    has[4, 0] = has[5, 1] = has[6, 0] = True
    rects = cell_rectangles(has)
    covered = np.zeros_like(has)
    for r0, c0, r1, c1 in rects:
        assert not covered[max(r0 - 1, 0):r1 + 1, max(c0 - 1, 0):c1 + 1].any()  # apart from the others
        covered[r0:r1, c0:c1] = True
    assert covered[has].all() and sorted(rects) == [(0, 0, 2, 2), (0, 4, 4, 7), (4, 0, 7, 2), (6, 8, 7, 9)]


def scattered(h: int = 160, w: int = 240, seed: int = 0) -> np.ndarray:
    """Short strokes and blobs of classes 1 and 2 over the whole grid, and one long class-3 stroke."""
    rng = np.random.default_rng(seed)
    lab = np.zeros((h, w), np.uint8)
    for _ in range(10):
        r, c = rng.integers(0, h - 4), rng.integers(0, w - 80)
        lab[r:r + rng.integers(1, 4), c:c + rng.integers(3, 12)] = rng.integers(1, 3)
    lab[5:100, 220] = 3  # one long class-3 stroke: cut into block pieces
    lab[100, 190:221] = 3
    return lab


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_patches_hold_scattered_labels_apart_and_the_split_ignores_the_cut(monkeypatch, seed):
    lab = scattered(seed=seed)
    whole = LabelPatches.from_array(lab)
    assert len(whole.crops) == 1  # cells larger than the grid
    monkeypatch.setattr(labels_module, "CELL", 8)
    cut = LabelPatches.from_array(lab)
    assert len(cut.crops) > 3 and _apart(cut.crops)
    assert np.array_equal(cut.window(0, 0, *lab.shape), lab)
    padded = np.pad(lab, 40)
    rng = np.random.default_rng(seed)
    for _ in range(50):  # windows found through the cell index, some reaching beyond the grid
        r, c = int(rng.integers(-40, lab.shape[0])), int(rng.integers(-40, lab.shape[1]))
        h, w = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        assert np.array_equal(cut.window(r, c, h, w), padded[r + 40:r + 40 + h, c + 40:c + 40 + w])
    assert cut.count == int((lab > 0).sum()) and cut.max_class == 3
    assert np.array_equal(cut.histogram()[1:4], whole.histogram()[1:4])
    for fraction in (0.2, 0.5):
        t1, v1 = split_labels(whole, fraction, seed)
        t2, v2 = split_labels(cut, fraction, seed)
        assert np.array_equal(t1.window(0, 0, *lab.shape), t2.window(0, 0, *lab.shape))
        assert np.array_equal(v1.window(0, 0, *lab.shape), v2.window(0, 0, *lab.shape))
        assert v2.count > 0 and _apart(t2.crops) and _apart(v2.crops)


def test_raster_and_vector_labels_far_apart_make_separate_small_patches(tmp_path, image, monkeypatch):
    monkeypatch.setattr(labels_module, "CELL", 16)
    monkeypatch.setattr(labels_module, "BLOCK_BYTES", 20 * W)
    lab = np.zeros((H, W), np.uint8)
    lab[2:5, 3:9] = 1
    lab[90:94, 150:158] = 2
    lab[50, 60:70] = 3
    path = write_raster(tmp_path / "far.tif", lab, transform=from_origin(*ORIGIN, 1.0, 1.0))
    feats = [(f"POINT({' '.join(map(str, px_to_xy(r + 0.5, c + 0.5)))})", str(v), None)
             for r, c, v in ((3, 5, 1), (92, 155, 2), (50, 65, 3))]
    gpkg = write_gpkg(tmp_path / "far.gpkg", feats, field="class")
    with rasterio.open(image) as img:
        for got in (load_labels(str(path), img), load_labels(str(gpkg), img)):
            crops = got.patches.crops
            assert len(crops) == 3 and _apart(crops)
            assert sum(c.array.size for c in crops) <= 3 * 10 * 10
    with rasterio.open(image) as img:
        assert np.array_equal(load_labels(str(path), img).full(), lab)


GRIDS = {  # image grids of every orientation, all covering about the same ground
    "north-up": Affine(1, 0, ORIGIN[0], 0, -1, ORIGIN[1]),
    "south-up": Affine(1, 0, ORIGIN[0], 0, 1, ORIGIN[1] - H),
    "mirrored": Affine(-1, 0, ORIGIN[0] + W, 0, -1, ORIGIN[1]),
    "rotated": Affine.translation(*ORIGIN) * Affine.rotation(20) * Affine.scale(1, -1),
}


@pytest.mark.parametrize("grid", list(GRIDS))
def test_labels_land_where_a_whole_grid_reading_puts_them_on_any_grid_orientation(tmp_path, grid):
    """Vector labels and labels on another raster grid, on images whose grid is north-up, south-up,
    mirrored or rotated: the windows they are read into give the whole-grid result."""
    transform = GRIDS[grid]
    image = write_raster(tmp_path / "image.tif", np.ones((1, H, W), np.uint8), transform=transform)
    x0, y0 = ORIGIN
    line = [[x0 + 10.3, y0 - 50.2], [x0 + 40.7, y0 - 70.1]]
    feats = [{"type": "Feature", "properties": {"class": 1},
              "geometry": {"type": "LineString", "coordinates": line}},
             {"type": "Feature", "properties": {"class": 2},
              "geometry": {"type": "Point", "coordinates": [x0 + 100.5, y0 - 9.5]}}]
    vector = tmp_path / "labels.geojson"
    vector.write_text(json.dumps({"type": "FeatureCollection", "features": feats,
                                  "crs": {"type": "name", "properties": {"name": "EPSG:32633"}}}))
    coarse = np.zeros((40, 60), np.uint8)  # 2 m north-up labels
    coarse[5:8, 10:20] = 3
    coarse[30, 50:55] = 1
    raster = write_raster(tmp_path / "coarse.tif", coarse, transform=from_origin(x0, y0, 2.0, 2.0))
    expected_vector = rasterize([(f["geometry"], f["properties"]["class"]) for f in feats], out_shape=(H, W),
                                transform=transform, fill=0, all_touched=True, dtype="uint8")
    expected_raster = np.zeros((H, W), np.uint8)
    reproject(coarse, expected_raster, src_transform=from_origin(x0, y0, 2.0, 2.0), src_crs="EPSG:32633",
              dst_transform=transform, dst_crs="EPSG:32633", src_nodata=0, dst_nodata=0,
              resampling=Resampling.nearest)
    assert expected_vector.any() and expected_raster.any()
    with rasterio.open(image) as img:
        assert np.array_equal(load_labels(str(vector), img, min_classes=1).full(), expected_vector)
        assert np.array_equal(load_labels(str(raster), img, min_classes=1).full(), expected_raster)
