"""Sparse class labels on the image grid: from a class raster or from vector features.

0 = unlabeled, 1..K = classes. Labels on another grid or CRS are warped with nearest neighbour;
labels that do not overlap the image are an error, not an empty result.
"""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass, field

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.features import rasterize
from rasterio.warp import reproject, transform, transform_bounds
from rasterio.windows import Window
from scipy import ndimage

from engine.categories import ClassTable, default_colour, read_category_names, read_class_table, value_lut
from engine.errors import InputError
from engine.raster import (
    corner_bounds,
    grid_window,
    map_bounds,
    map_crs,
    map_transform,
    map_window_transform,
    row_blocks,
    unreadable,
)
from engine.vector import (
    field_value,
    geometry_in,
    is_vector_source,
    open_layer,
    osgeo_modules,
    raster_srs,
    source_file,
    source_srs,
    unplaced_hint,
)


@dataclass
class LabelCrop:
    """Labels on an image grid kept as the crop of their labeled pixels' bounding box, whose top-left pixel
    is at ``row``, ``col`` of the grid: one piece of a LabelPatches."""

    array: np.ndarray  # (h, w) uint8, 0 = unlabeled
    row: int
    col: int

    @classmethod
    def from_array(cls, labels: np.ndarray, row: int = 0, col: int = 0) -> LabelCrop | None:
        """From ``labels`` whose top-left pixel is at ``row``, ``col`` of the grid, cropped to its labeled
        pixels; None when no pixel is labeled."""
        rows, cols = np.flatnonzero(labels.any(1)), np.flatnonzero(labels.any(0))
        if not len(rows):
            return None
        crop = labels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        return cls(np.ascontiguousarray(crop, np.uint8), row + int(rows[0]), col + int(cols[0]))

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.array))

    @property
    def max_class(self) -> int:
        return int(self.array.max())

    def nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        """Grid rows and columns of the labeled pixels."""
        rr, cc = np.nonzero(self.array)
        return rr + self.row, cc + self.col

    def window(self, r: int, c: int, h: int, w: int) -> np.ndarray:
        """(h, w) labels of the window at row ``r``, column ``c`` (which may reach beyond the raster)."""
        out = np.zeros((h, w), np.uint8)
        r0, c0 = max(r, self.row), max(c, self.col)
        r1, c1 = min(r + h, self.row + self.array.shape[0]), min(c + w, self.col + self.array.shape[1])
        if r1 > r0 and c1 > c0:
            part = self.array[r0 - self.row:r1 - self.row, c0 - self.col:c1 - self.col]
            out[r0 - r:r1 - r, c0 - c:c1 - c] = part
        return out


CELL = 256  # px: labeled pixels in grid cells that do not touch are held in separate crops


def _cell_span(row: int, col: int, height: int, width: int) -> tuple[slice, slice]:
    """The CELL-grid rows and columns the (height, width) box at ``row``, ``col`` reaches into."""
    return (slice(row // CELL, (row + height - 1) // CELL + 1),
            slice(col // CELL, (col + width - 1) // CELL + 1))


def cell_rectangles(has: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(row0, col0, row1, col1) cell rectangles covering the True cells of the (gh, gw) grid ``has``:
    touching cells (side or corner) share a rectangle, and no two rectangles overlap or touch."""
    grid = has.astype(bool)
    eight = np.ones((3, 3), bool)
    while True:  # fill each group's bounding box until the boxes no longer meet: a few passes at most
        groups, n = ndimage.label(grid, structure=eight)
        boxes = ndimage.find_objects(groups)
        filled = np.zeros_like(grid)
        for b in boxes:
            filled[b] = True
        if np.array_equal(filled, grid):
            return [(b[0].start, b[1].start, b[0].stop, b[1].stop) for b in boxes]
        grid = filled


@dataclass
class LabelPatches:
    """Labels on an image grid as crops (LabelCrop) of groups of labeled pixels: pixels in ``CELL``-px grid
    cells that touch share a crop, and crops are at least a cell apart. Strokes far apart are held apart, so
    labels spread over a huge raster stay as small as the strokes, and a connected stroke never straddles
    two crops (engine.data.split_labels relies on that). Training labels, validation labels and the labels
    a prediction holds (engine.smooth) are all LabelPatches."""

    crops: list[LabelCrop]
    # CELL-grid cell -> indices of the crops reaching into it: a window finds its crops without looking at
    # every one (thousands of points clicked over a large raster)
    _index: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index = {}
        for i, crop in enumerate(self.crops):
            rows, cols = _cell_span(crop.row, crop.col, *crop.array.shape)
            for cell in itertools.product(range(rows.start, rows.stop), range(cols.start, cols.stop)):
                self._index.setdefault(cell, []).append(i)

    @classmethod
    def from_array(cls, labels: np.ndarray, row: int = 0, col: int = 0) -> LabelPatches | None:
        """From ``labels`` whose top-left pixel is at ``row``, ``col`` of the grid; None when none is
        labeled."""
        crops = []
        for r0, c0, r1, c1 in cell_rectangles(_cells(labels != 0)):
            crop = LabelCrop.from_array(labels[r0 * CELL:r1 * CELL, c0 * CELL:c1 * CELL],
                                        row + r0 * CELL, col + c0 * CELL)
            if crop is not None:
                crops.append(crop)
        return cls(crops) if crops else None

    @property
    def count(self) -> int:
        return sum(c.count for c in self.crops)

    @property
    def max_class(self) -> int:
        return max(c.max_class for c in self.crops)

    @property
    def origin(self) -> tuple[int, int]:
        """Grid row and column of the top-left corner of all the labels' bounding box."""
        return min(c.row for c in self.crops), min(c.col for c in self.crops)

    def histogram(self) -> np.ndarray:
        """(256,) pixels per value over the crops (index 0: unlabeled pixels inside them)."""
        return sum(np.bincount(c.array.ravel(), minlength=256) for c in self.crops)

    def nonzero(self) -> tuple[np.ndarray, np.ndarray]:
        """Grid rows and columns of the labeled pixels."""
        parts = [c.nonzero() for c in self.crops]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def window(self, r: int, c: int, h: int, w: int) -> np.ndarray:
        """(h, w) labels of the window at row ``r``, column ``c`` (which may reach beyond the raster)."""
        rows, cols = _cell_span(r, c, h, w)
        near = set()
        for cell in itertools.product(range(rows.start, rows.stop), range(cols.start, cols.stop)):
            near.update(self._index.get(cell, ()))
        out = np.zeros((h, w), np.uint8)
        for i in sorted(near):
            out |= self.crops[i].window(r, c, h, w)  # crops do not overlap
        return out

    def recoded(self, lut: np.ndarray) -> LabelPatches | None:
        """The same labels with each value v replaced by ``lut[v]`` ((256,) uint8; lut[0] = 0)."""
        return self.replace([lut[c.array] for c in self.crops])

    def replace(self, arrays: list[np.ndarray]) -> LabelPatches | None:
        """Patches with new arrays in the same places (each shaped like its crop), cropped again to what
        they label; None when nothing is."""
        crops = [LabelCrop.from_array(a, c.row, c.col) for a, c in zip(arrays, self.crops, strict=True)]
        crops = [c for c in crops if c is not None]
        return LabelPatches(crops) if crops else None


@dataclass
class LabelMap:
    """Labels rasterized onto the image grid of ``shape`` (height, width), held as the patches of the
    labeled pixels (``patches``; None when none is labeled)."""

    patches: LabelPatches | None
    shape: tuple[int, int]
    classes: ClassTable  # classes 1..K
    off_image: tuple[int, ...] = ()  # classes labeled in the file whose labeled pixels all miss the image
    notes: tuple[str, ...] = ()  # what the file holds that may not be what its author meant (warnings)

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    @property
    def max_class(self) -> int:
        return self.patches.max_class if self.patches is not None else 0

    def histogram(self) -> np.ndarray:
        """(256,) labeled pixels per value (index 0 is not the grid's unlabeled pixels)."""
        return self.patches.histogram() if self.patches is not None else np.zeros(256, np.int64)

    def counts(self) -> np.ndarray:
        """Labeled pixels per class, index 0 = class 1."""
        return self.histogram()[1:self.num_classes + 1]

    def full(self) -> np.ndarray:
        """The (height, width) label array of the whole grid (for small rasters: evaluation, tests)."""
        if self.patches is None:
            return np.zeros(self.shape, np.uint8)
        return self.patches.window(0, 0, *self.shape)


def load_labels(path: str, image, label_field: str | None = None, min_classes: int = 2,
                class_names: list[str] | None = None, model_classes: ClassTable | None = None,
                keep_values: bool = False) -> LabelMap:
    """Labels from ``path`` (raster or vector) on the grid of the open ``image`` dataset, validated: some
    pixel labeled, at least ``min_classes`` classes (training needs two, holding labels in a map one).
    ``class_names``: a model's classes, which number a vector file's class names (labels for a saved
    model, which may hold only some of its classes); without them the names are numbered in sorted order.
    ``model_classes``: a model's class table, whose values (codes) number a file's class values.

    Class values that leave more gaps than they have classes, in a file that does not name its classes
    (codes such as 10, 20, 30, or 1, 5, 200: ``coded``), become classes 1..K with ``classes.values`` the
    codes: the network learns K classes, not one per value up to the largest, and the maps carry the codes
    again. Fewer gaps (1, 2, 4) are classes not painted yet: they stay classes, and are warned about.
    ``keep_values``: the file's values as they are, whatever they are (a reference compared with a map,
    which holds the codes themselves)."""
    file = source_file(path)  # FILE|layername=NAME|subset=...: a layer of a vector file
    if not os.path.exists(file):
        raise InputError(f"Labels {file} do not exist; check the path.", "labels_not_found")
    if is_vector_source(path):
        labels = _from_vector(path, image, label_field or "class", class_names, model_classes, keep_values)
    else:
        labels = _from_raster(path, image)
        if model_classes is not None and model_classes.values is not None:
            labels = as_model_codes(labels, model_classes, path)
        elif model_classes is None and not keep_values and len(read_category_names(path)) <= 1:  # unnamed
            labels = compact_codes(labels)
    _validate(labels, path, min_classes)
    return labels


def coded(values: list[int]) -> bool:
    """Whether sorted class ``values`` are codes rather than class numbers: more gaps than values."""
    return bool(values) and values[-1] - len(values) > len(values)


def compact_codes(labels: LabelMap) -> LabelMap:
    """``labels`` whose class values are ``coded`` (unnamed: ``class 10``, ``class 20``) as classes 1..K
    with those values as ``classes.values``; unchanged otherwise. Classes labeled in the file but wholly
    off the image keep their place (they are warned about)."""
    hist = labels.histogram() if labels.patches is not None else np.zeros(256, np.int64)
    present = sorted({int(v) for v in np.flatnonzero(hist[1:]) + 1} | set(labels.off_image))
    if not coded(present):
        return labels
    lut = value_lut(present)
    t = labels.classes
    table = ClassTable([t.names[v - 1] if v <= t.num_classes else f"class {v}" for v in present],
                       [t.colours[v - 1] if v <= t.num_classes else default_colour(v) for v in present],
                       present)
    patches = labels.patches.recoded(lut) if labels.patches is not None else None
    return LabelMap(patches, labels.shape, table, tuple(int(lut[v]) for v in labels.off_image), labels.notes)


def as_model_codes(labels: LabelMap, model: ClassTable, path: str) -> LabelMap:
    """``labels`` whose values are a coded model's file values (``model.values``), numbered as its classes;
    a value the model has no class for is refused."""
    hist = labels.histogram() if labels.patches is not None else np.zeros(256, np.int64)
    unknown = sorted(set(int(v) for v in np.flatnonzero(hist[1:]) + 1) - set(model.codes))
    if unknown:
        raise InputError(f"Labels {path} hold the class value(s) {unknown[:5]}, which the model has no class "
                         f"for (its values: {', '.join(map(str, model.codes))}); give labels with the "
                         "model's values.", "labels_unknown_class")
    patches = labels.patches.recoded(model.from_values()) if labels.patches is not None else None
    return LabelMap(patches, labels.shape, model, (), labels.notes)


def _bounds_overlap(a, b) -> bool:
    """Whether two (left, bottom, right, top) boxes meet; either may come from a south-up or mirrored grid,
    whose "bottom" lies above its "top" (rasterio's bounds follow the transform)."""
    (ax0, ax1), (ay0, ay1) = sorted((a[0], a[2])), sorted((a[1], a[3]))
    (bx0, bx1), (by0, by1) = sorted((b[0], b[2])), sorted((b[1], b[3]))
    return ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1


BLOCK_BYTES = 32 * 2**20  # label rows read at a time: a label raster is never held whole


def _cells(nz: np.ndarray) -> np.ndarray:
    """(ceil(h / CELL), ceil(w / CELL)) bool: the CELL-px cells of ``nz`` with a True pixel."""
    h, w = nz.shape
    gh, gw = -(-h // CELL), -(-w // CELL)
    padded = np.zeros((gh * CELL, gw * CELL), bool)
    padded[:h, :w] = nz
    return padded.reshape(gh, CELL, gw, CELL).any(axis=(1, 3))


def _class_values(data: np.ndarray, nodata, path: str) -> np.ndarray:
    """A block of a label raster as uint8 class values (nodata and NaN -> 0), or the one-sentence refusal
    of values that are no class numbers."""
    if np.issubdtype(data.dtype, np.floating):
        finite = np.isfinite(data)
        if np.any(data[finite] != np.round(data[finite])):
            raise InputError(f"Labels {path} hold fractional values; label pixels must be whole "
                             "class numbers 0..255 (0 = unlabeled).", "labels_values")
        data = np.where(finite, data, 0)
    if nodata is not None and not (isinstance(nodata, float) and np.isnan(nodata)):
        data = np.where(data == nodata, 0, data)
    if data.size and (data.min() < 0 or data.max() > 255):
        raise InputError(f"Labels {path} hold values outside 0..255; use 0 for unlabeled and "
                         "1..K for classes.", "labels_values")
    return data.astype(np.uint8)


def _read_block(src, window: Window, path: str, what: str) -> np.ndarray:
    """Band 1 of ``src`` in ``window``; a block GDAL cannot read (a truncated copy, a damaged file) is
    refused in one sentence."""
    try:
        return src.read(1, window=window)
    except RasterioIOError as e:
        r0, r1 = int(window.row_off), int(window.row_off + window.height) - 1
        raise InputError(unreadable(what, path, r0, r1, e), "labels_unreadable") from e


def _read_patches(src, path: str, what: str = "Labels") -> LabelPatches | None:
    """The labeled pixels of band 1 of the open ``src`` on its own grid, read in row blocks: a first pass
    checks the values and marks the CELL-px cells with labels, a second reads only the cell rectangles
    (cell_rectangles) those make."""
    h, w = src.height, src.width
    itemsize = np.dtype(src.dtypes[0]).itemsize
    has = np.zeros((-(-h // CELL), -(-w // CELL)), bool)
    for r, n in row_blocks(h, w, itemsize, BLOCK_BYTES, align=CELL):
        block = _class_values(_read_block(src, Window(0, r, w, n), path, what), src.nodata, path)
        has[r // CELL:r // CELL + -(-n // CELL)] |= _cells(block != 0)
    crops = []
    for r0, c0, r1, c1 in cell_rectangles(has):
        top, left = r0 * CELL, c0 * CELL
        rh, rw = min(h, r1 * CELL) - top, min(w, c1 * CELL) - left
        arr = np.zeros((rh, rw), np.uint8)
        for r, n in row_blocks(rh, rw, itemsize, BLOCK_BYTES):
            arr[r:r + n] = _class_values(_read_block(src, Window(left, top + r, rw, n), path, what),
                                         src.nodata, path)
        crop = LabelCrop.from_array(arr, top, left)
        if crop is not None:
            crops.append(crop)
    return LabelPatches(crops) if crops else None


def _rectangles_and_owner(has: np.ndarray) -> tuple[list[tuple[int, int, int, int]], np.ndarray]:
    """cell_rectangles(has), and per cell the index of the rectangle it lies in (-1: none)."""
    rects = cell_rectangles(has)
    owner = np.full(has.shape, -1, np.int64)
    for k, (r0, c0, r1, c1) in enumerate(rects):
        owner[r0:r1, c0:c1] = k
    return rects, owner


def patches_from_pieces(pieces: list[LabelCrop | None], shape: tuple[int, int]) -> LabelPatches | None:
    """LabelPatches from crops on a grid of ``shape`` that may overlap or touch (a later piece's labels
    win where they overlap); None when none labels anything."""
    pieces = [p for p in pieces if p is not None]
    if not pieces:
        return None
    has = np.zeros((-(-shape[0] // CELL), -(-shape[1] // CELL)), bool)
    for p in pieces:
        has[_cell_span(p.row, p.col, *p.array.shape)] = True
    rects, owner = _rectangles_and_owner(has)
    arrays = [np.zeros((min(shape[0], r1 * CELL) - r0 * CELL, min(shape[1], c1 * CELL) - c0 * CELL), np.uint8)
              for r0, c0, r1, c1 in rects]
    for p in pieces:
        k = owner[p.row // CELL, p.col // CELL]
        top, left = rects[k][0] * CELL, rects[k][1] * CELL
        ph, pw = p.array.shape
        target = arrays[k][p.row - top:p.row - top + ph, p.col - left:p.col - left + pw]
        np.copyto(target, p.array, where=p.array > 0)
    crops = [LabelCrop.from_array(a, r[0] * CELL, r[1] * CELL) for a, r in zip(arrays, rects, strict=True)]
    crops = [c for c in crops if c is not None]
    return LabelPatches(crops) if crops else None


def _from_raster(path: str, image, what: str = "Labels", on: str = "the image") -> LabelMap:
    """A label raster on the grid of the open ``image``. ``what`` names the file in refusals (Labels,
    Truth) and ``on`` the raster it must meet."""
    try:
        src = rasterio.open(path)
    except (RasterioIOError, OSError) as e:
        if what != "Labels":
            raise InputError(f"{what} {path} is not a raster GDAL can read; give a class GeoTIFF (0 = not "
                             "evaluated).", "labels_unreadable") from e
        raise InputError(f"Labels {path} are neither a raster GDAL can read nor a vector file; give a "
                         "uint8 label GeoTIFF or a GeoPackage/Shapefile.", "labels_unreadable") from e
    outside = (f"{what} {path} lie outside {on}; paint or pick labels that overlap it." if what == "Labels"
               else f"{what} {path} lies outside {on}; give one that overlaps it.")
    with src:
        if src.count != 1:
            raise InputError(f"{what} {path} have {src.count} bands; a label raster has one band "
                             "(0 = unlabeled, 1..K = classes).", "labels_bands")
        # grids as QGIS places them (engine.raster.map_transform: a raster without a geotransform too)
        src_crs, image_crs = map_crs(src), map_crs(image)
        same_grid = (src.shape == (image.height, image.width) and map_transform(src) == map_transform(image)
                     and src_crs == image_crs)
        if not same_grid:
            if (src_crs is None) != (image_crs is None):
                crs = src_crs or image_crs
                named_crs = f"EPSG:{crs.to_epsg()}" if crs.to_epsg() else crs.to_string()[:80]
                are, have = ("are", "have") if what == "Labels" else ("is", "has")
                if image_crs is None:
                    why, fix = f"{on} {image.name} has no CRS while {what.lower()} {path} {are} in", on
                else:
                    why, fix = f"{what.lower()} {path} {have} no CRS while {on} {image.name} is in", "them"
                raise InputError(f"{why[0].upper()}{why[1:]} {named_crs}, so the two cannot be aligned; give "
                                 f"{fix} that CRS (in QGIS: set the layer's CRS, then export it) or use "
                                 "files on the same grid.", "labels_crs")
            lb = map_bounds(src)
            if src_crs is not None and image_crs is not None and src_crs != image_crs:
                lb = transform_bounds(src_crs, image_crs, *lb, densify_pts=21)
            if not _bounds_overlap(lb, map_bounds(image)):
                raise InputError(outside, "labels_outside_image")
        own = _read_patches(src, path, what)
        if same_grid or own is None:
            patches = own
        else:
            patches = patches_from_pieces([_warp_crop(c, src, image) for c in own.crops],
                                          (image.height, image.width))
            if patches is None:
                raise InputError(outside, "labels_outside_image")
    max_value = patches.max_class if patches is not None else 0
    names = read_category_names(path)
    named = len(names) - 1  # entry 0 describes the unlabeled value
    if named >= 1 and max_value > named:
        present = np.flatnonzero(patches.histogram())
        bad = [int(v) for v in present if v > named]
        raise InputError(f"{what} {path} contain value(s) {bad[:5]} but their class table names only "
                         f"classes 1..{named}; add those classes or erase those pixels.",
                         "labels_unknown_class")
    off_image: tuple[int, ...] = ()
    if own is not None and patches is not own:  # another grid: which classes did not land on the image
        on_file = np.flatnonzero(own.histogram()[1:]) + 1
        landed = patches.histogram() if patches is not None else np.zeros(1, np.int64)
        off_image = tuple(int(v) for v in on_file if v >= len(landed) or landed[v] == 0)
        if off_image and named < 1:  # the class table goes up to the file's classes, not the landed ones
            max_value = max(max_value, int(on_file.max()))
    table = read_class_table(path, max(max_value, named))
    return LabelMap(patches, (image.height, image.width), table, off_image)


def _warp_crop(own: LabelCrop, src, image) -> LabelCrop | None:
    """A crop of labels on another grid or CRS onto the image grid, into the image window it covers only;
    None when nothing of it lands on the image. Nearest neighbour, but labels on a finer grid than the
    image's (strokes painted on a sharper image) go by _centres_onto: by nearest neighbour a stroke
    thinner than an image pixel would miss the pixel centres and vanish."""
    h, w = own.array.shape
    src_transform = map_window_transform(src, own.row, own.col)
    src_crs, image_crs = map_crs(src), map_crs(image)
    b = corner_bounds(src_transform, w, h)
    if src_crs is not None and image_crs is not None and src_crs != image_crs:
        b = transform_bounds(src_crs, image_crs, *b, densify_pts=21)
    win = grid_window(b, image)
    if win is None:
        return None
    r0, c0, wh, ww = win
    label_pixel = abs((b[2] - b[0]) * (b[3] - b[1])) / (h * w)  # its area, in the image's CRS
    dst_transform = map_window_transform(image, r0, c0)
    if label_pixel < 0.5 * abs(dst_transform.determinant):
        return _centres_onto(own.array, src_transform, src_crs, image_crs, dst_transform, r0, c0, (wh, ww))
    arr = np.zeros((wh, ww), np.uint8)
    reproject(own.array, arr, src_transform=src_transform, src_crs=src_crs or image_crs,
              dst_transform=dst_transform, dst_crs=image_crs or src_crs,
              src_nodata=0, dst_nodata=0, resampling=Resampling.nearest)
    return LabelCrop.from_array(arr, r0, c0)


def _centres_onto(array: np.ndarray, src_transform, src_crs, image_crs, dst_transform, r0: int, c0: int,
                  shape: tuple[int, int]) -> LabelCrop | None:
    """Labels ``array`` of a grid finer than the image's onto the image window at (r0, c0) of ``shape``:
    each image pixel takes the most common class among the labeled pixels whose centres fall in it."""
    rows, cols = np.nonzero(array)
    classes = array[rows, cols].astype(np.int64)
    xs, ys = src_transform * (cols + 0.5, rows + 0.5)
    if src_crs is not None and image_crs is not None and src_crs != image_crs:
        xs, ys = (np.asarray(v) for v in transform(src_crs, image_crs, xs, ys))
    c, r = ~dst_transform * (np.asarray(xs), np.asarray(ys))
    r, c = np.floor(r).astype(np.int64), np.floor(c).astype(np.int64)
    inside = (r >= 0) & (r < shape[0]) & (c >= 0) & (c < shape[1])
    pixel, votes = np.unique((r * shape[1] + c)[inside] * 256 + classes[inside], return_counts=True)
    arr = np.zeros(shape, np.uint8)
    if len(pixel):
        at, cls = pixel // 256, pixel % 256
        order = np.lexsort((-votes, at))  # per pixel, its most voted class first
        first = np.r_[True, at[order][1:] != at[order][:-1]]
        winner = order[first]
        arr.flat[at[winner]] = cls[winner]
    return LabelCrop.from_array(arr, r0, c0)


def _class_number(value) -> int | None:
    """A class field's value as a class number, when it is one: an integer, a whole number stored as a
    real (Shapefile and GeoPackage Real fields give 2.0) or a string of digits; None for a name."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _from_vector(path: str, image, field: str, class_names: list[str] | None = None,
                 model_classes: ClassTable | None = None, keep_values: bool = False) -> LabelMap:
    osgeo_modules(f"Vector labels {path} need GDAL's Python bindings (osgeo); install them or rasterize the "
                  "labels to a GeoTIFF first.", "labels_vector_support")
    fix = "pass the class field with --label-field."
    src, layer, fields = open_layer(path, "Labels", field, fix, "labels")
    colour_field = next((f for f in fields if f.lower() in ("colour", "color")), None)
    target, assumed = raster_srs(map_crs(image)), source_srs(path)
    notes: tuple[str, ...] = ()
    feats = []  # (value, geojson geometry, dimension, colour)
    envelopes = []
    for f in layer:
        v = field_value(f, field)
        if isinstance(v, str) and not v.strip():  # an empty class field, like a NULL one: not a label
            v = None
        g = geometry_in(f, layer, target, f"Labels {path}", assumed) if v is not None else None
        if g is None:
            continue
        colour = field_value(f, colour_field) if colour_field else None
        feats.append((v, g.ExportToJson(), g.GetDimension(), colour))
        envelopes.append(g.GetEnvelope())  # (min x, max x, min y, max y) in the image's CRS
    if not feats:
        raise InputError(f"Labels {path} have no features with a value in field '{field}'; draw some "
                         "labels first.", "labels_empty")
    values = [v for v, *_ in feats]
    numbers = [_class_number(v) for v in values]
    if all(n is not None for n in numbers):
        ids = numbers
        if min(ids) < 1 or max(ids) > 255:
            raise InputError(f"Labels {path} field '{field}' holds class numbers outside 1..255; number "
                             "classes from 1.", "labels_values")
        distinct = sorted(set(ids))
        if model_classes is not None and model_classes.values is not None:  # a coded model's values
            unknown = [v for v in distinct if v not in model_classes.codes]
            if unknown:
                raise InputError(f"Labels {path} field '{field}' holds the class value(s) {unknown[:5]}, "
                                 "which the model has no class for (its values: "
                                 f"{', '.join(map(str, model_classes.codes))}); give labels with the model's "
                                 "values.", "labels_unknown_class")
            lut = model_classes.from_values()
            ids = [int(lut[v]) for v in ids]
            table = ClassTable.from_dict(model_classes.to_dict())  # a copy: colours below are the file's
        elif model_classes is None and not keep_values and coded(distinct):
            index = {v: i for i, v in enumerate(distinct, 1)}
            ids = [index[v] for v in ids]
            table = ClassTable([f"class {v}" for v in distinct], [default_colour(v) for v in distinct],
                               distinct)
        else:
            table = ClassTable.numbered(max(ids))
    elif class_names is not None:  # numbered as the model's classes
        unknown = sorted({str(v).strip() for v in values} - set(class_names))
        if unknown:
            raise InputError(f"Labels {path} hold the class '{unknown[0]}', which the model does not know "
                             f"(its classes: {', '.join(class_names)}); name the classes as in training.",
                             "labels_unknown_class")
        ids = [class_names.index(str(v).strip()) + 1 for v in values]
        table = ClassTable(list(class_names), [default_colour(i) for i in range(1, len(class_names) + 1)])
    else:
        names = sorted({str(v).strip() for v in values})
        by_case: dict[str, list[str]] = {}
        for n in names:
            by_case.setdefault(n.casefold(), []).append(n)
        notes = tuple(f"Labels {path} name the classes {' and '.join(repr(n) for n in alike)}, which differ "
                      "only in case, as different classes; give them one spelling if they are one class"
                      for alike in by_case.values() if len(alike) > 1)
        index = {n: i + 1 for i, n in enumerate(names)}
        ids = [index[str(v).strip()] for v in values]
        table = ClassTable(names, [default_colour(i) for i in range(1, len(names) + 1)])
    for (_, _, _, colour), i in zip(feats, ids, strict=False):
        if isinstance(colour, str) and colour.startswith("#") and len(colour) == 7:
            table.colours[i - 1] = tuple(int(colour[j:j + 2], 16) for j in (1, 3, 5))
    # Areas first, then lines, then points, so thin strokes painted over an area win.
    order = sorted(range(len(feats)), key=lambda j: -feats[j][2])
    # Each feature's image window (its envelope + 1 px); features whose windows share or touch CELL-px
    # cells are rasterized together into their cells' rectangle (cell_rectangles), in that order: a few
    # strokes on a huge raster never make an image-sized array.
    windows = [grid_window((e[0], e[2], e[1], e[3]), image) for e in envelopes]
    has = np.zeros((-(-image.height // CELL), -(-image.width // CELL)), bool)
    for win in windows:
        if win is not None:
            has[_cell_span(*win)] = True
    rects, owner = _rectangles_and_owner(has)
    members: list[list] = [[] for _ in rects]
    for j in order:
        if windows[j] is not None:
            k = owner[windows[j][0] // CELL, windows[j][1] // CELL]
            members[k].append((json.loads(feats[j][1]), ids[j]))
    crops = []
    for (r0, c0, r1, c1), shapes in zip(rects, members, strict=True):
        if not shapes:
            continue
        top, left = r0 * CELL, c0 * CELL
        h, w = min(image.height, r1 * CELL) - top, min(image.width, c1 * CELL) - left
        arr = rasterize(shapes, out_shape=(h, w), transform=map_window_transform(image, top, left),
                        fill=0, all_touched=True, dtype="uint8")
        crop = LabelCrop.from_array(arr, top, left)
        if crop is not None:
            crops.append(crop)
    if not crops:
        fix = unplaced_hint(layer, target, image.name, assumed) or "paint or pick labels that overlap it"
        raise InputError(f"Labels {path} lie outside the image; {fix}.", "labels_outside_image")
    return LabelMap(LabelPatches(crops), (image.height, image.width), table, notes=notes)


def _validate(labels: LabelMap, path: str, min_classes: int) -> None:
    present = [int(v) for v in np.flatnonzero(labels.histogram()) if v > 0]
    if not present:
        raise InputError(f"Labels {path} contain no labeled pixel (all are 0); paint at least two "
                         "classes.", "labels_empty")
    if len(present) < min_classes:
        name = labels.classes.names[present[0] - 1]
        raise InputError(f"Labels {path} contain only one class ('{name}'); paint at least one more "
                         "class so there is something to tell apart.", "labels_single_class")
