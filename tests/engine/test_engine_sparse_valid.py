"""Images whose valid pixels the sampled windows miss, and images that cannot be read because a file they
read from is gone.

The band statistics are drawn from ~30 random 256-px windows. On a large mosaic whose valid pixels are a
thin strip those windows can all fall on nodata: the image is then looked at whole for its valid pixels
before it is called all nodata. A VRT whose source tile is missing names that tile.
"""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from engine_helpers import TINY_TRAIN, leftovers, run_cli, write_raster
from osgeo import gdal
from rasterio.transform import from_origin
from rasterio.windows import Window

from engine.errors import InputError
from engine.raster import compute_band_stats, open_image, read_block, sample_windows
from engine.smooth import sample_windows as smoothing_windows

SIDE = 8192  # large enough for 30 windows to miss a strip, written sparse: a few tiles on disk
STRIP = (3540, 3840)  # rows of the valid strip: between every window the default seed (0) draws
RUN_SIDE, RUN_STRIP = 4096, (1792, 1920)  # the same for ``engine run``, which reads the whole image
TILE = 512
ORIGIN = (500000.0, 5000000.0)


def strip_values(r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    """The strip's values on rows r0..r1, columns c0..c1: 50..149, every value as often."""
    rr, cc = np.mgrid[r0:r1, c0:c1]
    return (50 + (rr + cc) % 100).astype(np.uint8)


def sparse_raster(path, cells: dict[tuple[int, int], np.ndarray] | None = None, nodata=0, side=SIDE):
    """A ``side``² uint8 tiled GeoTIFF, nodata ``nodata``, holding only the ``TILE``-px tiles given in
    ``cells`` ((tile row, tile col) -> values); the other tiles are not written (SPARSE_OK), so they read as
    nodata and cost nothing on disk."""
    with rasterio.open(path, "w", driver="GTiff", height=side, width=side, count=1, dtype="uint8",
                       nodata=nodata, crs="EPSG:32633", transform=from_origin(*ORIGIN, 1.0, 1.0),
                       tiled=True, blockxsize=TILE, blockysize=TILE, SPARSE_OK="TRUE") as ds:
        for (ti, tj), values in (cells or {}).items():
            ds.write(values[None], window=Window(tj * TILE, ti * TILE, TILE, TILE))
    return path


def strip_image(path, side=SIDE, rows=STRIP):
    """A mosaic whose valid pixels are a full-width strip on ``rows`` (3.7 % of the pixels)."""
    cells = {}
    for ti in range(rows[0] // TILE, (rows[1] - 1) // TILE + 1):
        for tj in range(side // TILE):
            block = strip_values(ti * TILE, (ti + 1) * TILE, tj * TILE, (tj + 1) * TILE)
            rr = np.arange(ti * TILE, (ti + 1) * TILE)[:, None]
            cells[ti, tj] = np.where((rr >= rows[0]) & (rr < rows[1]), block, 0).astype(np.uint8)
    return sparse_raster(path, cells, side=side)


def expected_range() -> tuple[float, float]:
    values = strip_values(STRIP[0], STRIP[1], 0, SIDE).astype(np.float64)
    return float(np.percentile(values, 2)), float(np.percentile(values, 98))


@pytest.mark.parametrize(("side", "strip"), [(SIDE, STRIP), (RUN_SIDE, RUN_STRIP)])
def test_the_default_windows_miss_the_strip(side, strip):
    """The premise of the tests below: no window the statistics draw with the default seed touches it."""
    windows = sample_windows(side, side, 256, 30, np.random.default_rng(0))
    assert len(windows) == 30
    assert not any(r < strip[1] and strip[0] < r + 256 for r, _ in windows)


def test_band_stats_of_a_thin_valid_strip_come_from_the_strip(tmp_path):
    path = strip_image(tmp_path / "strip.tif")
    assert path.stat().st_size < 20 * 2**20  # sparse: only the strip's tiles are written
    low, high = expected_range()
    with open_image(str(path)) as ds:
        stats = compute_band_stats(ds, str(path))
        again = compute_band_stats(ds, str(path))
        other = compute_band_stats(ds, str(path), seed=7)
    assert stats.low[0] == pytest.approx(low, abs=2) and stats.high[0] == pytest.approx(high, abs=2)
    assert np.array_equal(stats.low, again.low) and np.array_equal(stats.high, again.high)  # per seed
    assert other.low[0] == pytest.approx(low, abs=2) and other.high[0] == pytest.approx(high, abs=2)


def test_a_valid_patch_smaller_than_the_decimated_look_is_found(tmp_path):
    """The whole-image look first reads validity decimated (8 px to one here); a 3×3 patch between the
    pixels it reads is found by the look at every pixel, which runs before the image is called empty."""
    block = np.zeros((TILE, TILE), np.uint8)
    block[201:204, 305:308] = [[60, 61, 62], [63, 64, 65], [66, 67, 68]]  # rows/cols 8k+1..8k+3
    path = sparse_raster(tmp_path / "patch.tif", {(9, 11): block})
    with open_image(str(path)) as ds:
        stats = compute_band_stats(ds, str(path))
    assert 60 <= stats.low[0] < 61 and 67 < stats.high[0] <= 68


def _one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_image_that_is_all_nodata_is_still_one_sentence(tmp_path, capsys):
    path = sparse_raster(tmp_path / "empty.tif", side=4096)
    with open_image(str(path)) as ds, pytest.raises(InputError) as e:
        compute_band_stats(ds, str(path))
    sentence = f"Image {path} has no valid pixels (everything is nodata); check its nodata value."
    assert e.value.message == sentence
    labels = sparse_raster(tmp_path / "labels.tif", {(0, 0): np.ones((TILE, TILE), np.uint8)}, nodata=None,
                           side=4096)
    rc, _, err = run_cli(capsys, ["run", "--image", path, "--labels", labels, "--out-dir", tmp_path / "out",
                                  "--progress", "none", *TINY_TRAIN])
    assert rc == 2 and _one_line(err) == f"Error: {sentence}"
    assert leftovers(tmp_path / "out") == []


def test_run_learns_and_maps_a_thin_valid_strip(tmp_path, capsys, monkeypatch):
    """``engine run`` on a strip mosaic, labels on the strip, the map made for an area of it; the map's
    smoothing fits its range scale on the strip's pixels (its evenly spread windows all miss it)."""
    import engine.predict

    seen = []

    def windows(*args, **kwargs):
        blocks = smoothing_windows(*args, **kwargs)
        seen.append(sum(int(v.sum()) for _, v in blocks))
        return blocks

    monkeypatch.setattr(engine.predict, "sample_windows", windows)
    image = strip_image(tmp_path / "strip.tif", RUN_SIDE, RUN_STRIP)
    ti = RUN_STRIP[0] // TILE  # the tile row holding the strip (rows 1536..2047)
    labels = np.zeros((TILE, TILE), np.uint8)
    labels[270:290, 100:300] = 1  # rows 1806..1825
    labels[350:370, 100:300] = 2  # rows 1886..1905
    label_path = sparse_raster(tmp_path / "labels.tif", {(ti, 2): labels}, nodata=None, side=RUN_SIDE)
    x0, y0 = ORIGIN
    area = [x0 + 2 * TILE, y0 - RUN_STRIP[1], x0 + 3 * TILE, y0 - RUN_STRIP[0]]  # the labeled part
    rc, _, err = run_cli(capsys, ["run", "--image", image, "--labels", label_path, "--out-dir",
                                  tmp_path / "out", "--progress", "none", "--area", *area, *TINY_TRAIN])
    assert rc == 0, err
    with rasterio.open(tmp_path / "out" / "prediction.tif") as ds:
        classes = ds.read(1)
    assert classes.shape == (RUN_STRIP[1] - RUN_STRIP[0], TILE) and set(np.unique(classes)) <= {1, 2}
    assert len(seen) == 1 and seen[0] > 0


# --- a file the image reads from is gone --------------------------------------------------------------------

def _split_vrt(folder):
    """img.tif split into its left (A.tif) and right (B.tif) halves, mosaicked again as m.vrt."""
    rng = np.random.default_rng(0)
    img = write_raster(folder / "img.tif", rng.integers(1, 255, (3, 128, 128), dtype=np.uint8))
    halves = [str(folder / "A.tif"), str(folder / "B.tif")]
    for half, col in zip(halves, (0, 64), strict=True):  # gdal_translate -srcwin COL 0 64 128
        gdal.Translate(half, str(img), srcWin=[col, 0, 64, 128])
    gdal.BuildVRT(str(folder / "m.vrt"), halves).FlushCache()  # gdalbuildvrt m.vrt A.tif B.tif
    return folder / "m.vrt"


def test_a_vrt_whose_source_is_missing_names_that_file(tmp_path, capsys):
    vrt = _split_vrt(tmp_path)
    (tmp_path / "B.tif").unlink()
    sentence = (f"Image {vrt} cannot be read at rows 0–127: it reads {tmp_path / 'B.tif'}, which is missing; "
                "put that file back, or build the raster again from files that exist.")
    with open_image(str(vrt)) as ds, pytest.raises(InputError) as e:
        read_block(ds, 0, 0, 128, 128)
    assert e.value.message == sentence
    labels = write_raster(tmp_path / "labels.tif", np.ones((128, 128), np.uint8))
    rc, _, err = run_cli(capsys, ["run", "--image", vrt, "--labels", labels, "--out-dir", tmp_path / "out",
                                  "--progress", "none", *TINY_TRAIN])
    assert rc == 2 and _one_line(err) == f"Error: {sentence}"


def test_a_vrt_whose_source_is_damaged_names_that_file(tmp_path):
    vrt = _split_vrt(tmp_path)
    source = tmp_path / "B.tif"
    source.write_bytes(source.read_bytes()[: source.stat().st_size // 2])
    with open_image(str(vrt)) as ds, pytest.raises(InputError) as e:
        read_block(ds, 0, 0, 128, 128)
    message = e.value.message
    assert message.startswith(f"Image {vrt} cannot be read at rows 0–127: it reads {source}, which cannot be "
                              "read (")
    assert message.endswith("); that file may be damaged or incomplete: copy or export it again.")


def test_a_damaged_image_of_its_own_is_not_named_twice(tmp_path):
    whole = write_raster(tmp_path / "whole.tif", np.ones((3, 128, 128), np.uint8))
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with open_image(str(cut)) as ds, pytest.raises(InputError) as e:
        read_block(ds, 0, 0, 128, 128)
    assert e.value.message.startswith(f"Image {cut} cannot be read at rows 0–127 (IReadBlock failed")
    assert e.value.message.count(str(cut)) == 1 and "damaged or incomplete" in e.value.message


# --- the smoothing's windows --------------------------------------------------------------------------------

def test_smoothing_windows_look_for_valid_pixels_only_when_the_grid_misses_them(tmp_path):
    """The smoothing's 16 windows on an even grid miss the strip too; given ``more``, they are joined by
    windows on it (valid_windows), which are looked for only when the grid finds too few valid pixels."""
    from engine.raster import valid_windows

    path = strip_image(tmp_path / "strip.tif")
    calls = []
    with open_image(str(path)) as ds:
        def more():
            calls.append(1)
            return valid_windows(ds, 256, 16, np.random.default_rng(0))

        def read(r, c, h, w):
            return read_block(ds, r, c, h, w)

        assert sum(int(v.sum()) for _, v in smoothing_windows(read, SIDE, SIDE)) == 0
        blocks = smoothing_windows(read, SIDE, SIDE, more=more)
    assert len(blocks) == 32 and calls == [1]
    assert all(v.any() for _, v in blocks[16:])
    assert all(x[0, v].min() >= 50 and x[0, v].max() <= 149 for x, v in blocks[16:])

    def dense(r, c, h, w):
        return np.zeros((1, h, w), np.float32), np.ones((h, w), bool)

    assert len(smoothing_windows(dense, SIDE, SIDE, more=more)) == 16 and calls == [1]


def test_unlabeled_chips_of_a_mosaic_larger_than_the_budget_are_drawn_where_the_pixels_are(tmp_path):
    """An image over the memory budget trains on 512-px chips drawn at random; on a mosaic of much nodata
    most draws are empty, so the rest are drawn among the chips that hold valid pixels (here all eight
    along the strip, where random draws found about one)."""
    from engine.data import build_chips

    image = strip_image(tmp_path / "strip.tif", RUN_SIDE, RUN_STRIP)
    with open_image(str(image)) as ds:
        stats = compute_band_stats(ds, str(image))
        chips = build_chips(ds, stats, None, None, budget_mb=16, seed=0)
    assert len(chips) == RUN_SIDE // 512
    assert all(c.row == RUN_STRIP[0] // 512 * 512 and c.valid.any() for c in chips)
