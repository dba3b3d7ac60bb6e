"""Reading images through rasterio windows: validation, nodata masks and band normalisation.

Nothing here reads a whole raster at once unless asked to: prediction and statistics work window by
window, so memory stays bounded however large the raster is.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from dataclasses import dataclass

import numpy as np
import rasterio
from affine import Affine
from rasterio.enums import ColorInterp, MaskFlags
from rasterio.errors import RasterioIOError
from rasterio.transform import from_gcps
from rasterio.windows import Window

from engine.errors import InputError

# GDAL's block cache, MiB. Every raster is read or written once, window by window, so a cache of a few
# windows is all that helps; GDAL's default (5 % of the RAM) only adds decoded tiles to the footprint.
GDAL_CACHE_MB = 64


def gdal_cache() -> dict:
    """``rasterio.Env`` options for that cache. rasterio hands an integer GDAL_CACHEMAX straight to
    GDALSetCacheMax, which counts bytes (the environment variable counts megabytes below 100,000): a plain
    ``GDAL_CACHEMAX=64`` would leave GDAL a 64-byte cache, and every tile of a compressed raster would be
    decoded again for each window that touches it."""
    return {"GDAL_CACHEMAX": GDAL_CACHE_MB * 2 ** 20}


def row_blocks(height: int, width: int, itemsize: int, block_bytes: int, align: int = 1):
    """(first row, rows) blocks of a raster read whole rows at a time, about ``block_bytes`` each and a
    multiple of ``align`` rows (e.g. the file's tile height, so that no tile is decoded twice)."""
    step = max(align, block_bytes // max(1, width * itemsize) // align * align)
    for r in range(0, height, step):
        yield r, min(step, height - r)


SUPPORTED_DTYPES = {"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64"}


@dataclass
class BandStats:
    """Per-band robust range: ``(x - low) / (high - low)`` maps most pixels into [0, 1]."""

    low: np.ndarray  # (C,) float32, 2nd percentile
    high: np.ndarray  # (C,) float32, 98th percentile

    def to_dict(self) -> dict:
        return {"low": [float(v) for v in self.low], "high": [float(v) for v in self.high]}

    @classmethod
    def from_dict(cls, d: dict) -> BandStats:
        return cls(np.asarray(d["low"], np.float32), np.asarray(d["high"], np.float32))

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Normalise a (C, H, W) block in place-friendly float32; outliers are softly clipped."""
        scale = np.maximum(self.high - self.low, 1e-6)
        y = (x.astype(np.float32) - self.low[:, None, None]) / scale[:, None, None]
        return np.clip(y, -1.0, 2.0, out=y)


def open_image(path: str, nodata=(), what: str = "Image") -> rasterio.io.DatasetReader:
    """Open ``path`` as a raster, or raise one clear sentence saying why it cannot be used. ``nodata``:
    values that are no data in every band besides the file's own (``--nodata``; read_block). ``what``:
    what the sentences call the raster ("Unlabeled image")."""
    if not os.path.exists(path):
        file, bar, _ = path.partition("|")
        driver = re.match(r"^[A-Z][A-Z0-9_]+:(.+):[^:/\\]+$", path)  # GPKG:FILE:TABLE (a table's source)
        if (bar and os.path.exists(file)) or (driver and os.path.exists(driver.group(1))):
            raise InputError(f"{what} {path} names a part of a file, which SemiSeg does not take for an "
                             "image; export that raster to a GeoTIFF (in QGIS: Export → Save As) and give "
                             "that.", "image_not_found")
        raise InputError(f"{what} {path} does not exist; check the path.", "image_not_found")
    try:
        ds = rasterio.open(path)
    except (RasterioIOError, OSError) as e:
        raise InputError(
            f"{what} {path} is not a raster GDAL can read; give a GeoTIFF or another GDAL raster format.",
            "image_unreadable",
        ) from e
    if ds.count < 1 or ds.width < 1 or ds.height < 1:
        parts = [p.rsplit(":", 1)[-1] for p in ds.subdatasets]
        ds.close()
        if parts:
            raise InputError(f"{what} {path} holds several rasters ({', '.join(parts[:5])}); export the one "
                             "to segment to a GeoTIFF (in QGIS: Export → Save As) and give that.",
                             "image_unreadable")
        raise InputError(f"{what} {path} has no pixel bands; give a raster with at least one band.",
                         "image_unreadable")
    if ds.dtypes[0] not in SUPPORTED_DTYPES:
        ds.close()
        raise InputError(f"{what} {path} has pixel type {ds.dtypes[0]}, which SemiSeg cannot use; "
                         "convert it to uint8, uint16, int16 or float32.", "image_dtype")
    ds.extra_nodata = tuple(np.float32(v) for v in nodata or ())  # read_block
    return ds


class ImageWarning(UserWarning):
    """What an image holds that may not be what its author meant (an alpha-tagged band of image values):
    ``warnings.warn`` of one, and the CLI reports it as a warning event with ``code`` (engine.cli)."""

    def __init__(self, message: str, code: str = "image_note"):
        super().__init__(message)
        self.code = code


@contextlib.contextmanager
def image_warnings_to(warn):
    """Within it, each ImageWarning is handed to ``warn(message, code)`` (a Reporter's warning: an event),
    once per message however often the image is opened; other warnings are shown as Python shows them."""
    said = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always", ImageWarning)
        shown = warnings.showwarning

        def show(message, category, *args, **kwargs):
            if not issubclass(category, ImageWarning):
                shown(message, category, *args, **kwargs)
            elif str(message) not in said:
                said.add(str(message))
                warn(str(message), getattr(message, "code", "image_note"))

        warnings.showwarning = show
        yield


def data_bands(ds) -> tuple[int, ...]:
    """1-based indexes of the bands that hold pixel values: all of them but an alpha band that is a mask.
    An alpha band (an RGBA orthophoto's fourth) is the image's transparency: GDAL already gives it as every
    other band's mask, which marks the transparent pixels nodata (read_block), so it is never a feature of
    its own, and a model trained on an RGBA image applies to the same imagery without alpha. A band tagged
    alpha that holds image values (GDAL tags the fourth band of any 4-band 8-bit GeoTIFF alpha, a NAIP
    image's near-infrared too) is a band like the others, and masks nothing (alpha_bands)."""
    masks = alpha_bands(ds)[0]
    bands = tuple(i for i in range(1, ds.count + 1) if i not in masks)
    return bands or tuple(range(1, ds.count + 1))


# An alpha-tagged band is a mask when at least ALPHA_MASK_SHARE of the pixels sampled from it that are not
# 0 (transparent) hold an opaque value (255, or its type's maximum: 65535 for uint16): a mask's values,
# where a feathered edge leaves a few between. Image values (a near-infrared band) take every value.
ALPHA_MASK_SHARE = 0.995
# With fewer non-zero pixels sampled than this (a mostly transparent image) the share is of all of them.
ALPHA_MIN_OPAQUE = 1000
# The sample: a fixed ALPHA_GRID × ALPHA_GRID grid of ALPHA_WINDOW (rows, cols) windows at full
# resolution (overviews may average a mask's edges into other values), so a 50,000² raster costs a few
# dozen tiles, and the same file is always judged the same (training and prediction); a raster of at
# most that many pixels is read whole.
ALPHA_GRID = 6
ALPHA_WINDOW = (32, 128)


def alpha_bands(ds) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(the alpha-tagged bands that are masks, those that hold image values), 1-based, judged once per
    open raster from a sample of their values (alpha_sample). Each one of image values is said once, as an
    ImageWarning."""
    known = getattr(ds, "semiseg_alpha", None)
    if known is not None:
        return known
    tagged = [i for i, ci in enumerate(ds.colorinterp, start=1) if ci == ColorInterp.alpha]
    masks, values = [], []
    for b in tagged:
        (masks if _looks_like_mask(alpha_sample(ds, b), ds.dtypes[b - 1]) else values).append(b)
    known = (tuple(masks), tuple(values))
    try:
        ds.semiseg_alpha = known
    except AttributeError:  # not a rasterio dataset that takes attributes: judged again next time
        pass
    for b in values:
        warnings.warn(ImageWarning(f"Image {ds.name}'s band {b} is tagged alpha but holds image values, so "
                                   "it is used as a band, not as the mask.", "alpha_is_a_band"),
                      stacklevel=2)
    return known


def alpha_sample(ds, band: int) -> np.ndarray:
    """Band ``band``'s values at full resolution in the windows of a fixed grid over the raster (ALPHA_GRID,
    ALPHA_WINDOW); the whole band when it is no larger than them. A read that fails is one sentence."""
    wh, ww = ALPHA_WINDOW
    try:
        if ds.height * ds.width <= ALPHA_GRID ** 2 * wh * ww:
            return ds.read(band).ravel()
        rows = np.linspace(0, max(ds.height - wh, 0), ALPHA_GRID).round().astype(int).tolist()
        cols = np.linspace(0, max(ds.width - ww, 0), ALPHA_GRID).round().astype(int).tolist()
        size = (min(ww, ds.width), min(wh, ds.height))
        return np.concatenate([ds.read(band, window=Window(c, r, *size)).ravel() for r in rows for c in cols])
    except RasterioIOError as e:
        raise InputError(unreadable("Image", ds.name, 0, ds.height - 1, e), "image_unreadable") from e


def _looks_like_mask(values: np.ndarray, dtype: str) -> bool:
    """Whether sampled ``values`` of an alpha-tagged band of ``dtype`` are a mask's (ALPHA_MASK_SHARE)."""
    opaque = [255] + ([np.iinfo(dtype).max] if np.issubdtype(np.dtype(dtype), np.integer) else [1])
    clear = values == 0
    between = int((~clear & ~np.isin(values, opaque)).sum())
    seen = int((~clear).sum())
    return between <= (1 - ALPHA_MASK_SHARE) * (seen if seen >= ALPHA_MIN_OPAQUE else values.size)


def _alpha_masks_nothing(ds) -> bool:
    """Whether GDAL's alpha mask (the last band's, in a 2- or 4-band raster) is a band of image values,
    so that bands whose mask it is have none (_read_masks)."""
    return ds.count in alpha_bands(ds)[1]


def palette_lut(ds) -> np.ndarray | None:
    """The (N, 4) RGBA lookup of a one-band paletted raster (a scanned map, an image saved with a colour
    table), else None. Its values are colour numbers, not intensities: the network sees their colours
    (read_block gives three bands), and colours the table makes transparent are nodata, as QGIS shows them."""
    if ds.count != 1 or ds.colorinterp[0] != ColorInterp.palette or ds.dtypes[0] not in ("uint8", "uint16"):
        return None
    try:
        table = ds.colormap(1)
    except ValueError:  # no table after all
        return None
    lut = np.zeros((256 if ds.dtypes[0] == "uint8" else 65536, 4), np.uint8)  # missing entries: transparent
    for value, rgba in table.items():
        if 0 <= value < len(lut):
            lut[value] = rgba
    return lut


def band_count(ds) -> int:
    """How many bands of ``ds`` a network sees (data_bands; 3 for a paletted raster's colours)."""
    return 3 if palette_lut(ds) is not None else len(data_bands(ds))


def band_summary(ds) -> str:
    """"3 band(s)", with "+ alpha" where an alpha band gives the mask, which alpha-tagged bands hold image
    values and count, and why a one-band paletted raster counts 3: for progress messages and band-mismatch
    sentences."""
    n = band_count(ds)
    if palette_lut(ds) is not None:
        return "3 band(s) (the red, green and blue of its colour table)"
    masks, values = alpha_bands(ds)
    text = f"{n} band(s)" + (" + alpha (used as the mask)" if masks and n < ds.count else "")
    if values:
        which = " and ".join(str(b) for b in values)
        text += f" (band {which} {'is' if len(values) == 1 else 'are'} tagged alpha but holds image values)"
    return text


# How QGIS places a raster that has no geotransform: x = column, y = -row (pixel size 1 × -1 from 0, 0).
QGIS_PIXEL_GRID = Affine(1.0, 0.0, 0.0, 0.0, -1.0, 0.0)


def has_geotransform(ds) -> bool:
    """Whether ``ds`` carries a geotransform (rasterio reports the identity for one without)."""
    return not ds.transform.is_identity


def map_transform(ds) -> Affine:
    """The affine that puts ``ds``'s pixels where QGIS draws them: its geotransform; for a raster placed
    by ground control points only, the affine fitted to them; for a raster with neither, QGIS's pixel
    grid (QGIS_PIXEL_GRID). Areas, spots and vector labels on such a raster then line up in QGIS."""
    if has_geotransform(ds):
        return ds.transform
    gcps, _ = ds.gcps
    return from_gcps(gcps) if len(gcps) >= 3 else QGIS_PIXEL_GRID


def map_crs(ds):
    """The CRS of ``ds``'s map coordinates: its own, else its ground control points' (None: neither)."""
    return ds.crs or (ds.gcps[1] if len(ds.gcps[0]) >= 3 else None)


def corner_bounds(transform: Affine, width: int, height: int) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) of a ``width`` × ``height`` px grid on ``transform``, whatever its
    orientation (south-up, rotated)."""
    xs, ys = zip(*(transform * (c, r) for c in (0, width) for r in (0, height)), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def map_bounds(ds) -> tuple[float, float, float, float]:
    """corner_bounds of ``ds`` on the map (map_transform)."""
    return corner_bounds(map_transform(ds), ds.width, ds.height)


def map_window_transform(ds, row: int, col: int) -> Affine:
    """map_transform of the window whose top-left pixel is (row, col)."""
    return map_transform(ds) * Affine.translation(col, row)


# a bound within this many pixels of a pixel edge is taken to lie on it (coordinates written as decimals)
EDGE_TOLERANCE = 1e-6


def grid_window(bounds, image, pad: int = 1) -> tuple[int, int, int, int] | None:
    """(row, col, height, width) of the image-grid window that covers ``bounds`` (left, bottom, right, top
    in the image's CRS) plus ``pad`` pixels, clipped to the image; None when they do not meet. Works for
    any grid orientation (north-up, south-up, mirrored, rotated): the window spans the pixel positions of
    the bounds' four corners."""
    left, bottom, right, top = bounds
    inverse = ~map_transform(image)
    cols, rows = zip(*(inverse * (x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    r0 = max(0, math.floor(min(rows) + EDGE_TOLERANCE) - pad)
    c0 = max(0, math.floor(min(cols) + EDGE_TOLERANCE) - pad)
    r1 = min(image.height, math.ceil(max(rows) - EDGE_TOLERANCE) + pad)
    c1 = min(image.width, math.ceil(max(cols) - EDGE_TOLERANCE) + pad)
    if r1 <= r0 or c1 <= c0:
        return None
    return r0, c0, r1 - r0, c1 - c0


def coord_text(value: float) -> str:
    """A coordinate as it can be typed back into ``--area``: never an exponent, integers without a decimal
    point, at most 6 decimals (a micrometre in a projected CRS, about 0.1 m in degrees): 4999872.5,
    500000, 12.345679."""
    text = f"{value:.6f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def coords_text(values) -> str:
    """Coordinates (an area's or a raster's bounds) as coord_text gives them, separated by spaces."""
    return " ".join(coord_text(float(v)) for v in values)


def area_window(bounds, image, path: str) -> tuple[int, int, int, int]:
    """The window of the open ``image`` (at ``path``) to segment for ``--area`` ``bounds`` (xmin, ymin,
    xmax, ymax in the image's CRS): every pixel the area touches, clipped to the image; one clear
    sentence when the bounds are not an area or miss the image."""
    xmin, ymin, xmax, ymax = (float(v) for v in bounds)
    area = coords_text((xmin, ymin, xmax, ymax))
    if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)) or xmin >= xmax or ymin >= ymax:
        raise InputError(f"Area {area} is not an area; give XMIN YMIN XMAX YMAX with XMIN < XMAX and "
                         "YMIN < YMAX, in the image's coordinates.", "bad_area")
    win = grid_window((xmin, ymin, xmax, ymax), image, pad=0)
    if win is None:
        crs = map_crs(image).to_string() if map_crs(image) else "pixel coordinates"
        raise InputError(f"Area {area} does not overlap image {path} (which spans "
                         f"{coords_text(map_bounds(image))} in {crs}); give the area in the image's "
                         "coordinates.", "area_outside")
    return win


def read_block(ds, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Read a (C, height, width) block whose top-left is (row, col); parts outside the raster are 0.

    Returns the raw values of the data bands (data_bands) as float32 and a validity mask (False for
    nodata, transparent, NaN and outside). A pixel that holds one of the values given to open_image as
    ``nodata`` in any band is nodata too, as QGIS draws a layer with that "no data value": a mosaic's
    collar that the file does not declare. (A paletted raster's values are its colour numbers.)
    """
    x, band_ok = _read_bands(ds, row, col, height, width)
    valid = band_ok.all(axis=0)
    x[:, ~valid] = 0.0
    return x, valid


def _read_bands(ds, row: int, col: int, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """read_block's block before its invalid pixels are zeroed (0 outside the raster), and the validity
    of each data band apart: (B, height, width) for the B data bands (one for a paletted raster)."""
    r0, c0 = max(row, 0), max(col, 0)
    r1, c1 = min(row + height, ds.height), min(col + width, ds.width)
    bands, lut = data_bands(ds), palette_lut(ds)
    x = np.zeros((3 if lut is not None else len(bands), height, width), np.float32)
    band_ok = np.zeros((len(bands), height, width), bool)
    if r1 <= r0 or c1 <= c0:
        return x, band_ok
    data, ok = _read_valid(ds, Window(c0, r0, c1 - c0, r1 - r0), bands, lut)
    x[:, r0 - row:r1 - row, c0 - col:c1 - col] = data
    band_ok[:, r0 - row:r1 - row, c0 - col:c1 - col] = ok
    return x, band_ok


def _read_valid(ds, win: Window, bands: tuple[int, ...], lut: np.ndarray | None,
                out_shape: tuple[int, int] | None = None, look: bool = False):
    """The float32 data bands of ``win`` and each one's validity, (B, h, w) (_read_bands). ``out_shape``:
    (h, w) to read it decimated to (nearest pixel; GDAL takes an overview where the file has one).
    ``look`` (valid_places, where the validity is what counts): a mask that is only a nodata value is
    judged from the values read rather than read again, and 8- and 16-bit values stay in their type (float32
    holds them exactly). A read that fails is one sentence (unreadable)."""
    extra = getattr(ds, "extra_nodata", ())
    try:
        if lut is not None:  # colour numbers through the palette
            numbers = ds.read(1, window=win, out_shape=out_shape)
            rgba = lut[numbers]
            data = np.moveaxis(rgba[..., :3], -1, 0).astype(np.float32)
            ok = (ds.read_masks(1, window=win, out_shape=out_shape) > 0) & (rgba[..., 3] > 0)
            if extra:
                ok &= ~np.isin(numbers.astype(np.float32), extra)
            return data, ok[None]
        shape = None if out_shape is None else (len(bands), *out_shape)
        raw = ds.read(list(bands), window=win, out_shape=shape)
        exact = look and raw.dtype.kind in "iu" and raw.dtype.itemsize <= 2
        data = raw if exact else raw.astype(np.float32, copy=False)
        nodata = _plain_nodata(ds, bands) if look else None
        if nodata is not None:
            ok = np.ones(raw.shape, bool)
            for i, value in enumerate(nodata):
                if value is not None:
                    ok[i] = raw[i] != raw.dtype.type(value)
        else:
            ok = _read_masks(ds, bands, win, shape)
    except RasterioIOError as e:  # a truncated download, a damaged block, a VRT whose source is gone
        r0 = int(win.row_off)
        raise InputError(unreadable("Image", ds.name, r0, r0 + int(win.height) - 1, e),
                         "image_unreadable") from e
    if data.dtype.kind == "f":
        ok &= np.isfinite(data)
    if extra:
        ok &= ~np.isin(data, extra)
    return data, ok


def _read_masks(ds, bands: tuple[int, ...], win: Window, shape) -> np.ndarray:
    """Each band's validity from GDAL's masks, (B, h, w) bool; a band whose mask is an alpha band of image
    values (_alpha_masks_nothing) is valid everywhere."""
    void = [i for i, b in enumerate(bands) if MaskFlags.alpha in ds.mask_flag_enums[b - 1]]
    if not void or not _alpha_masks_nothing(ds):
        return ds.read_masks(list(bands), window=win, out_shape=shape) > 0
    h, w = (int(win.height), int(win.width)) if shape is None else shape[1:]
    ok = np.ones((len(bands), h, w), bool)
    rest = [i for i in range(len(bands)) if i not in void]
    if rest:
        ok[rest] = ds.read_masks([bands[i] for i in rest], window=win,
                                 out_shape=None if shape is None else (len(rest), h, w)) > 0
    return ok


def _plain_nodata(ds, bands: tuple[int, ...]) -> list | None:
    """Each band's nodata value (None: every pixel valid) when its mask is no more than that value, so
    that the values read show it; None when a band has another mask (alpha, a mask band) or a value its
    type holds only rounded (GDAL's rounding is not repeated here)."""
    values = []
    for b in bands:
        flags, value = ds.mask_flag_enums[b - 1], ds.nodatavals[b - 1]
        if flags == [MaskFlags.all_valid] or (MaskFlags.alpha in flags and _alpha_masks_nothing(ds)):
            values.append(None)
        elif flags == [MaskFlags.nodata] and value is not None and _holds_exactly(ds.dtypes[b - 1], value):
            values.append(value)
        else:
            return None
    return values


def _holds_exactly(dtype: str, value: float) -> bool:
    """Whether a band of ``dtype`` holds ``value`` as GDAL compares it: any value in a float type's range
    (GDAL rounds it to the type, as numpy does), an integer in an integer type's."""
    if not np.issubdtype(np.dtype(dtype), np.integer):
        return not np.isfinite(value) or abs(value) <= np.finfo(dtype).max
    info = np.iinfo(dtype)
    return float(value).is_integer() and info.min <= value <= info.max


def unreadable(what: str, path: str, first: int, last: int, error: Exception) -> str:
    """The sentence for raster ``path`` (``what``: "Image") failing to read at rows ``first``–``last``.

    GDAL's message often starts with the file it could not read and ': ' ("B.tif: No such file or
    directory"): when that is another file than ``path`` (a VRT's source tile), the sentence names it, and
    says whether it is gone or damaged; the raster's own name is not repeated."""
    message = re.sub(r"^Read or write failed\.\s*", "", str(error)).strip()  # rasterio's prefix
    head, colon, detail = message.partition(": ")
    file = re.sub(r", band \d+$", "", head) if colon else ""
    if not file or os.path.abspath(file) == os.path.abspath(path) or not _names_a_file(file):
        detail = (detail or message)[:200]
        return (f"{what} {path} cannot be read at rows {first}–{last} ({detail}); the file may be damaged or "
                "incomplete (an interrupted copy or download): copy or export it again.")
    other = file if file.startswith("/vsi") else os.path.abspath(file)  # GDAL names it from the cwd
    if not file.startswith("/vsi") and not os.path.exists(other):
        return (f"{what} {path} cannot be read at rows {first}–{last}: it reads {other}, which is missing; "
                "put that file back, or build the raster again from files that exist.")
    return (f"{what} {path} cannot be read at rows {first}–{last}: it reads {other}, which cannot be read "
            f"({detail[:200]}); that file may be damaged or incomplete: copy or export it again.")


def _names_a_file(text: str) -> bool:
    """Whether the start of a GDAL message (before ': ') is a file's name rather than a routine's
    ("TIFFFillTile"): a path, or a name with an extension."""
    return "/" in text or "\\" in text or (" " not in text.strip() and bool(os.path.splitext(text)[1]))


def sample_windows(height: int, width: int, size: int, count: int, rng: np.random.Generator):
    """Up to ``count`` random (row, col) origins of size×size windows covering the raster."""
    if height <= size and width <= size:
        return [(0, 0)]
    rows = rng.integers(0, max(height - size, 0) + 1, count)
    cols = rng.integers(0, max(width - size, 0) + 1, count)
    return list(zip(rows.tolist(), cols.tolist(), strict=False))


# The whole-image look at where the valid pixels are (valid_places): validity read decimated to at most
# LOOK_SIDE px per side, LOOK_BYTES of band values at a time. GDAL reads it from the overviews where the
# file has some; without, it still skips the rows between those it keeps (on 50,000² uint8 GeoTIFFs with a
# thin valid strip, 0.01 s with overviews, 0.06 s striped, 0.2–0.8 s tiled: bench/valid_look.py).
LOOK_SIDE = 1024
LOOK_BYTES = 32 * 2**20
LOOK_SOURCE_BYTES = 16 * 2**20  # a decimated read spans about this much of the file's pixels


@dataclass
class ValidPlaces:
    """Where a raster's valid pixels lie (valid_places): ``weight`` (gh, gw) the valid pixels found in
    each cell of a grid over the raster, whose cells span rows ``rows[i]`` to ``rows[i + 1]`` and columns
    ``cols[j]`` to ``cols[j + 1]``; ``band_valid`` / ``band_finite``: whether each data band showed a valid
    pixel / a finite value; ``exact``: every pixel was looked at (else a decimated sample of them)."""

    rows: np.ndarray  # (gh + 1,) int
    cols: np.ndarray  # (gw + 1,) int
    weight: np.ndarray  # (gh, gw) int64
    band_valid: np.ndarray
    band_finite: np.ndarray
    exact: bool

    def windows(self, size: int, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
        """Up to ``count`` (row, col) origins of size×size windows, each centred on a different cell drawn
        at random as likely as the valid pixels found in it, in raster order; [] when none was found."""
        cells = np.flatnonzero(self.weight)
        if not len(cells):
            return []
        w = self.weight.ravel()[cells].astype(np.float64)
        pick = np.sort(rng.choice(cells, min(count, len(cells)), replace=False, p=w / w.sum()))
        i, j = np.divmod(pick, self.weight.shape[1])
        height, width = int(self.rows[-1]), int(self.cols[-1])
        r = np.clip((self.rows[i] + self.rows[i + 1]) // 2 - size // 2, 0, max(height - size, 0))
        c = np.clip((self.cols[j] + self.cols[j + 1]) // 2 - size // 2, 0, max(width - size, 0))
        return list(zip(r.tolist(), c.tolist(), strict=True))


def valid_places(ds, side: int | None = LOOK_SIDE, cell: int = 256) -> ValidPlaces:
    """A look at the whole raster for its valid pixels (as read_block judges them): its validity read
    decimated to at most ``side`` px per side, each read pixel a cell of the grid; ``side`` None (or a
    raster no larger) reads every pixel and counts them per ``cell``×``cell`` px. Memory stays bounded:
    blocks of about LOOK_BYTES."""
    height, width = ds.height, ds.width
    bands, lut = data_bands(ds), palette_lut(ds)
    step = 1 if side is None else max(1, -(-max(height, width) // side))  # source px per read pixel
    unit = cell if step == 1 else 1  # read pixels per cell
    gh, gw = -(-height // step), -(-width // step)  # the read grid
    per_px = (3 if lut is not None else len(bands)) * 4 + len(bands) * 2
    if unit * gw * per_px <= LOOK_BYTES:  # blocks of whole rows, a multiple of ``unit`` rows
        bh, bw = max(unit, LOOK_BYTES // (gw * per_px) // unit * unit), gw
    else:
        bh, bw = unit, max(unit, LOOK_BYTES // (unit * per_px) // unit * unit)
    if step > 1:  # few enough source rows that their tiles stay in GDAL's cache while it reads band by band
        row_bytes = width * ds.count * np.dtype(ds.dtypes[0]).itemsize
        bh = max(1, min(bh, LOOK_SOURCE_BYTES // (row_bytes * step)))
    weight = np.zeros((-(-gh // unit), -(-gw // unit)), np.int64)
    band_valid, band_finite = np.zeros(len(bands), bool), np.zeros(len(bands), bool)
    for i0 in range(0, gh, bh):
        for j0 in range(0, gw, bw):
            i1, j1 = min(i0 + bh, gh), min(j0 + bw, gw)
            r0, c0 = i0 * step, j0 * step
            win = Window(c0, r0, min(j1 * step, width) - c0, min(i1 * step, height) - r0)
            data, ok = _read_valid(ds, win, bands, lut, None if step == 1 else (i1 - i0, j1 - j0), look=True)
            band_valid |= ok.any(axis=(1, 2))
            if lut is None:
                band_finite |= np.isfinite(data).any(axis=(1, 2)) if data.dtype.kind == "f" else True
            valid = ok[0] if len(ok) == 1 else ok.all(axis=0)
            if not valid.any():
                continue
            if unit > 1:  # counted per cell
                ph, pw = -(-(i1 - i0) // unit) * unit, -(-(j1 - j0) // unit) * unit
                padded = np.zeros((ph, pw), bool)
                padded[:i1 - i0, :j1 - j0] = valid
                counts = padded.reshape(ph // unit, unit, pw // unit, unit).sum(axis=(1, 3))
                weight[i0 // unit:i0 // unit + len(counts), j0 // unit:j0 // unit + counts.shape[1]] = counts
            else:
                weight[i0:i1, j0:j1] = valid
    edges = step * unit
    rows = np.minimum(np.arange(weight.shape[0] + 1) * edges, height)
    cols = np.minimum(np.arange(weight.shape[1] + 1) * edges, width)
    return ValidPlaces(rows, cols, weight, band_valid, band_finite, exact=step == 1)


def valid_windows(ds, size: int, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``count`` origins of size×size windows among the valid pixels of the whole raster, for when
    windows drawn at random or on a grid missed them (a thin strip or a small patch of a large mosaic):
    from the decimated look (valid_places); when that finds none, from a look at every pixel, so that []
    means the raster has no valid pixel."""
    for side in (LOOK_SIDE, None):
        places = valid_places(ds, side, size)
        if places.weight.any() or places.exact:
            return places.windows(size, count, rng)
    return []


# Fewer valid pixels than this in the sampled windows (less than one window's worth), and fewer than half
# the pixels they read, and the raster is looked at whole for where its valid pixels are (valid_windows),
# so that sparse imagery is sampled fairly.
MIN_SAMPLED = 256 * 256


def compute_band_stats(ds, path: str = "", max_pixels: int = 2_000_000, seed: int = 0) -> BandStats:
    """Robust per-band percentiles (2, 98) from a random sample of windows (bounded memory). When the
    windows hold few valid pixels or none (a mosaic whose valid pixels are a thin strip), more windows are
    drawn among the valid pixels the whole raster shows (valid_windows); only a raster with none at all
    is refused."""
    rng = np.random.default_rng(seed)
    size = 256
    n_windows = max(1, min(256, max_pixels // (size * size)))
    samples = []
    bands = data_bands(ds)
    # until a valid pixel turns up, which bands have a valid pixel or a finite value of their own: when none
    # does, a band that never had one is what leaves the image without a valid pixel (_no_valid_pixels)
    band_valid, band_finite = np.zeros(len(bands), bool), np.zeros(len(bands), bool)
    found = read = 0  # valid pixels in the windows, pixels read

    def take(r: int, c: int) -> None:
        nonlocal found, read
        x, band_ok = _read_bands(ds, r, c, min(size, ds.height), min(size, ds.width))
        valid = band_ok.all(axis=0)
        read += valid.size
        if valid.any():
            samples.append(x[:, valid])
            found += int(valid.sum())
        elif not samples:
            band_valid[:] |= band_ok.any(axis=(1, 2))
            if len(x) == len(bands):  # not a palette's colours
                band_finite[:] |= np.isfinite(x).any(axis=(1, 2))

    for r, c in sample_windows(ds.height, ds.width, size, n_windows, rng):
        take(r, c)
    if found < min(MIN_SAMPLED, read // 2) and (ds.height > size or ds.width > size):  # not all in one window
        # the decimated look (valid_windows) first; a look at every pixel when it leaves nothing valid
        for side in (LOOK_SIDE, None):
            places = valid_places(ds, side, size)
            for r, c in places.windows(size, n_windows, rng):
                take(r, c)
            if samples or places.exact:
                break
        band_valid |= places.band_valid
        band_finite |= places.band_finite
    if not samples:
        raise InputError(_no_valid_pixels(path or ds.name, bands, band_valid, band_finite),
                         "image_all_nodata")
    s = np.concatenate(samples, axis=1)
    if s.shape[1] > max_pixels:
        s = s[:, rng.choice(s.shape[1], max_pixels, replace=False)]
    low = np.percentile(s, 2, axis=1).astype(np.float32)
    high = np.percentile(s, 98, axis=1).astype(np.float32)
    flat = high - low < 1e-6  # constant band: fall back to its full range so it does not blow up
    if flat.any():
        low[flat] = s[flat].min(axis=1)
        high[flat] = np.maximum(s[flat].max(axis=1), low[flat] + 1.0)
    return BandStats(low, high)


def _no_valid_pixels(path: str, bands: tuple[int, ...], band_valid: np.ndarray,
                     band_finite: np.ndarray) -> str:
    """Why image ``path`` has no valid pixel: the bands (numbered as in the file) that have none, when some
    of its bands do; else that everything is nodata."""
    dead = [b for b, ok in zip(bands, band_valid, strict=True) if not ok]
    if not dead or len(dead) == len(bands):
        return f"Image {path} has no valid pixels (everything is nodata); check its nodata value."
    nan = [b for b, fin in zip(bands, band_finite, strict=True) if b in dead and not fin]
    nodata = [b for b in dead if b not in nan]

    def which(numbers: list[int], what: str) -> str:
        if len(numbers) == 1:
            return f"band {numbers[0]} is {what}"
        return f"bands {', '.join(str(n) for n in numbers[:-1])} and {numbers[-1]} are {what}"

    parts = [which(nums, what) for nums, what in ((nan, "NaN"), (nodata, "nodata")) if nums]
    fix = "that band" if len(dead) == 1 else "those bands"
    if nodata:
        fix += " or check the image's nodata value"
    return f"Image {path}'s {' and '.join(parts)} at every pixel, so no pixel is valid; drop or fix {fix}."


def read_normalised(ds, stats: BandStats, row: int, col: int, height: int, width: int):
    """A normalised (C, h, w) float32 block and its validity mask; invalid pixels are 0."""
    x, valid = read_block(ds, row, col, height, width)
    y = stats.apply(x)
    y[:, ~valid] = 0.0
    return y, valid
