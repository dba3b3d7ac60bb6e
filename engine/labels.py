"""Sparse class labels on the image grid: from a class raster or from vector features.

0 = unlabeled, 1..K = classes. Labels on another grid or CRS are warped with nearest neighbour;
labels that do not overlap the image are an error, not an empty result.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.features import rasterize
from rasterio.warp import reproject, transform_bounds

from engine.categories import ClassTable, default_colour, read_category_names, read_class_table
from engine.errors import InputError

VECTOR_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json", ".kml", ".gml", ".sqlite", ".fgb", ".tab"}


@dataclass
class LabelMap:
    """Labels rasterized onto the image grid."""

    array: np.ndarray  # (H, W) uint8, 0 = unlabeled
    classes: ClassTable  # classes 1..K

    @property
    def num_classes(self) -> int:
        return self.classes.num_classes

    def counts(self) -> np.ndarray:
        """Labeled pixels per class, index 0 = class 1."""
        return np.bincount(self.array.ravel(), minlength=self.num_classes + 1)[1:self.num_classes + 1]


@dataclass
class Anchors:
    """Labeled pixels a prediction holds at their class (engine.smooth): the label array cropped to the
    bounding box of its labeled pixels (sparse labels on a huge raster stay small), at ``row``, ``col``."""

    array: np.ndarray  # (h, w) uint8, 0 = unlabeled
    row: int
    col: int

    @classmethod
    def from_array(cls, labels: np.ndarray) -> Anchors | None:
        """From labels on the image grid; None when no pixel is labeled."""
        rows, cols = np.flatnonzero(labels.any(1)), np.flatnonzero(labels.any(0))
        if not len(rows):
            return None
        crop = labels[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        return cls(np.ascontiguousarray(crop, np.uint8), int(rows[0]), int(cols[0]))

    @property
    def count(self) -> int:
        return int(np.count_nonzero(self.array))

    @property
    def max_class(self) -> int:
        return int(self.array.max())

    def window(self, r: int, c: int, h: int, w: int) -> np.ndarray:
        """(h, w) labels of the window at row ``r``, column ``c`` (which may reach beyond the raster)."""
        out = np.zeros((h, w), np.uint8)
        r0, c0 = max(r, self.row), max(c, self.col)
        r1, c1 = min(r + h, self.row + self.array.shape[0]), min(c + w, self.col + self.array.shape[1])
        if r1 > r0 and c1 > c0:
            part = self.array[r0 - self.row:r1 - self.row, c0 - self.col:c1 - self.col]
            out[r0 - r:r1 - r, c0 - c:c1 - c] = part
        return out


def load_labels(path: str, image, label_field: str | None = None, min_classes: int = 2) -> LabelMap:
    """Labels from ``path`` (raster or vector) on the grid of the open ``image`` dataset, validated: some
    pixel labeled, at least ``min_classes`` classes (training needs two, holding labels in a map one)."""
    if not os.path.exists(path):
        raise InputError(f"Labels {path} do not exist; check the path.", "labels_not_found")
    if os.path.splitext(path)[1].lower() in VECTOR_SUFFIXES:
        labels = _from_vector(path, image, label_field or "class")
    else:
        labels = _from_raster(path, image)
    _validate(labels, path, min_classes)
    return labels


def _bounds_overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _from_raster(path: str, image) -> LabelMap:
    try:
        src = rasterio.open(path)
    except (RasterioIOError, OSError) as e:
        raise InputError(f"Labels {path} are neither a raster GDAL can read nor a vector file; give a "
                         "uint8 label GeoTIFF or a GeoPackage/Shapefile.", "labels_unreadable") from e
    with src:
        if src.count != 1:
            raise InputError(f"Labels {path} have {src.count} bands; a label raster has one band "
                             "(0 = unlabeled, 1..K = classes).", "labels_bands")
        data = src.read(1)
        if np.issubdtype(data.dtype, np.floating):
            finite = data[np.isfinite(data)]
            if finite.size and np.any(finite != np.round(finite)):
                raise InputError(f"Labels {path} hold fractional values; label pixels must be whole "
                                 "class numbers 0..255 (0 = unlabeled).", "labels_values")
        if src.nodata is not None:
            data = np.where(data == src.nodata, 0, data)
        data = np.nan_to_num(data.astype(np.float64), nan=0.0)
        if data.min() < 0 or data.max() > 255:
            raise InputError(f"Labels {path} hold values outside 0..255; use 0 for unlabeled and "
                             "1..K for classes.", "labels_values")
        data = data.astype(np.uint8)
        same_grid = (src.shape == (image.height, image.width) and src.transform == image.transform
                     and src.crs == image.crs)
        if same_grid:
            arr = data
        else:
            if (src.crs is None) != (image.crs is None):
                raise InputError(f"Labels {path} and the image do not both have a CRS, so they cannot be "
                                 "aligned; give the labels the image's CRS.", "labels_crs")
            lb = src.bounds
            if src.crs is not None and image.crs is not None and src.crs != image.crs:
                lb = transform_bounds(src.crs, image.crs, *lb, densify_pts=21)
            if not _bounds_overlap(lb, image.bounds):
                raise InputError(f"Labels {path} lie outside the image; paint or pick labels that "
                                 "overlap it.", "labels_outside_image")
            arr = np.zeros((image.height, image.width), np.uint8)
            reproject(data, arr, src_transform=src.transform, src_crs=src.crs or image.crs,
                      dst_transform=image.transform, dst_crs=image.crs or src.crs,
                      src_nodata=0, dst_nodata=0, resampling=Resampling.nearest)
            if data.any() and not arr.any():
                raise InputError(f"Labels {path} lie outside the image; paint or pick labels that "
                                 "overlap it.", "labels_outside_image")
    max_value = int(arr.max()) if arr.size else 0
    names = read_category_names(path)
    named = len(names) - 1  # entry 0 describes the unlabeled value
    if named >= 1 and max_value > named:
        bad = sorted(int(v) for v in np.unique(arr) if v > named)
        raise InputError(f"Labels {path} contain value(s) {bad[:5]} but their class table names only "
                         f"classes 1..{named}; add those classes or erase those pixels.",
                         "labels_unknown_class")
    table = read_class_table(path, max(max_value, named))
    return LabelMap(arr, table)


def _from_vector(path: str, image, field: str) -> LabelMap:
    try:
        from osgeo import gdal, osr  # noqa: PLC0415  (vector support needs GDAL's bindings)
    except ImportError as e:
        raise InputError(f"Vector labels {path} need GDAL's Python bindings (osgeo); install them or "
                         "rasterize the labels to a GeoTIFF first.", "labels_vector_support") from e
    gdal.UseExceptions()
    try:
        src = gdal.OpenEx(path, gdal.OF_VECTOR)
    except RuntimeError:
        src = None
    if src is None or src.GetLayerCount() == 0:
        raise InputError(f"Labels {path} are not a vector file GDAL can read; give a GeoPackage, "
                         "Shapefile or GeoJSON.", "labels_unreadable")
    layer = src.GetLayer(0)
    defn = layer.GetLayerDefn()
    fields = [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]
    if field not in fields:
        raise InputError(f"Labels {path} have no field '{field}' (fields: {', '.join(fields) or 'none'}); "
                         "pass the class field with --label-field.", "labels_field")
    colour_field = next((f for f in fields if f.lower() in ("colour", "color")), None)
    target = None
    if image.crs is not None:
        target = osr.SpatialReference()
        target.ImportFromWkt(image.crs.to_wkt())
        target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    feats = []  # (value, geojson geometry, dimension, colour)
    for f in layer:
        g = f.GetGeometryRef()
        v = f.GetField(field)
        if g is None or v is None:
            continue
        g = g.Clone()
        sref = g.GetSpatialReference() or layer.GetSpatialRef()
        if target is not None and sref is not None:
            sref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
            if not sref.IsSame(target):
                g.TransformTo(target)
        colour = f.GetField(colour_field) if colour_field else None
        feats.append((v, g.ExportToJson(), g.GetDimension(), colour))
    if not feats:
        raise InputError(f"Labels {path} have no features with a value in field '{field}'; draw some "
                         "labels first.", "labels_empty")
    values = [v for v, *_ in feats]
    if all(isinstance(v, int) or (isinstance(v, str) and v.strip().isdigit()) for v in values):
        ids = [int(v) for v in values]
        if min(ids) < 1 or max(ids) > 255:
            raise InputError(f"Labels {path} field '{field}' holds class numbers outside 1..255; number "
                             "classes from 1.", "labels_values")
        k = max(ids)
        table = ClassTable.numbered(k)
    else:
        names = sorted({str(v).strip() for v in values})
        index = {n: i + 1 for i, n in enumerate(names)}
        ids = [index[str(v).strip()] for v in values]
        table = ClassTable(names, [default_colour(i) for i in range(1, len(names) + 1)])
    for (_, _, _, colour), i in zip(feats, ids, strict=False):
        if isinstance(colour, str) and colour.startswith("#") and len(colour) == 7:
            table.colours[i - 1] = tuple(int(colour[j:j + 2], 16) for j in (1, 3, 5))
    import json  # noqa: PLC0415

    # Areas first, then lines, then points, so thin strokes painted over an area win.
    order = sorted(range(len(feats)), key=lambda j: -feats[j][2])
    shapes = [(json.loads(feats[j][1]), ids[j]) for j in order]
    arr = rasterize(shapes, out_shape=(image.height, image.width), transform=image.transform,
                    fill=0, all_touched=True, dtype="uint8")
    if not arr.any():
        raise InputError(f"Labels {path} lie outside the image; paint or pick labels that overlap it.",
                         "labels_outside_image")
    return LabelMap(arr, table)


def _validate(labels: LabelMap, path: str, min_classes: int) -> None:
    present = [int(v) for v in np.unique(labels.array) if v > 0]
    if not present:
        raise InputError(f"Labels {path} contain no labeled pixel (all are 0); paint at least two "
                         "classes.", "labels_empty")
    if len(present) < min_classes:
        name = labels.classes.names[present[0] - 1]
        raise InputError(f"Labels {path} contain only one class ('{name}'); paint at least one more "
                         "class so there is something to tell apart.", "labels_single_class")
