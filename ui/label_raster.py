"""The label raster file: create it on an image's grid, read and write its classes and pixel windows.

A label raster is a single-band uint8 GeoTIFF: 0 = unlabeled, 1..K = classes. Colours are the
GeoTIFF's colour table; names are GDAL category names, which GDAL keeps in the ``<file>.aux.xml``
side-car (the format the engine reads and writes). Everything here goes through GDAL's Python
bindings with plain bytes (``ReadRaster`` / ``WriteRaster``), so QGIS's process needs no numpy.
No Qt, no layers: the paint tool and the dock call these functions.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from osgeo import gdal

Colour = tuple[int, int, int]
UNLABELED_NAME = "unlabeled"

# Creation options: tiled so a stroke rewrites a few small blocks; deflate keeps mostly empty label
# files tiny; SPARSE_OK leaves never-painted blocks unwritten.
CREATION_OPTIONS = ["TILED=YES", "BLOCKXSIZE=256", "BLOCKYSIZE=256", "COMPRESS=DEFLATE", "SPARSE_OK=TRUE"]

# Distinct colours that read well over imagery; more classes get colours spread around the hue wheel.
_PALETTE: list[Colour] = [
    (31, 120, 180), (51, 160, 44), (227, 26, 28), (255, 127, 0), (106, 61, 154), (177, 89, 40),
    (166, 206, 227), (178, 223, 138), (251, 154, 153), (253, 191, 111), (202, 178, 214), (255, 255, 153),
]


@dataclass
class LabelClass:
    """One class of a label raster; its pixel value is its position in the class list + 1."""

    name: str
    colour: Colour


class Window(NamedTuple):
    """A pixel window of a raster: first column and row, width and height."""

    col: int
    row: int
    width: int
    height: int


def default_colour(value: int) -> Colour:
    """A distinct colour for class ``value`` (1-based)."""
    if 1 <= value <= len(_PALETTE):
        return _PALETTE[value - 1]
    hue = (value * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.7, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


def default_classes(count: int = 2) -> list[LabelClass]:
    return [LabelClass(f"class {value}", default_colour(value)) for value in range(1, count + 1)]


def _open(path: str | Path, update: bool = False) -> gdal.Dataset:
    dataset = gdal.OpenEx(str(path), gdal.OF_RASTER | (gdal.OF_UPDATE if update else 0))
    if dataset is None:
        raise OSError(f"GDAL cannot open {path}")
    # GDAL 3.6's GeoTIFF driver loads the .aux.xml side-car lazily, on the first metadata request;
    # without this, category names read back empty and names set in update mode are not saved.
    dataset.GetMetadata()
    return dataset


# How QGIS draws a raster without a geotransform: x = column, y = -row (the engine uses the same grid).
QGIS_PIXEL_GRID = (0.0, 1.0, 0.0, 0.0, 0.0, -1.0)


def _map_geotransform(dataset: gdal.Dataset) -> tuple[float, ...]:
    """``dataset``'s geotransform, or QGIS_PIXEL_GRID where it has none (GDAL would report the identity,
    which QGIS does not draw it on)."""
    return dataset.GetGeoTransform(can_return_null=True) or QGIS_PIXEL_GRID


def create_label_raster(image: str | Path, out: str | Path, classes: list[LabelClass]) -> None:
    """Write an empty label raster with ``image``'s exact grid (size, transform, CRS) to ``out``."""
    source = _open(image)
    driver = gdal.GetDriverByName("GTiff")
    target = driver.Create(str(out), source.RasterXSize, source.RasterYSize, 1, gdal.GDT_Byte,
                           CREATION_OPTIONS)
    if target is None:
        raise OSError(f"GDAL cannot create {out}")
    target.SetGeoTransform(_map_geotransform(source))  # drawn, and so painted, where the image is
    target.SetProjection(source.GetProjection())
    _set_classes(target.GetRasterBand(1), classes)
    target.FlushCache()
    target = None  # closing writes the file and its .aux.xml


def _set_classes(band: gdal.Band, classes: list[LabelClass]) -> None:
    table = gdal.ColorTable()
    table.SetColorEntry(0, (0, 0, 0, 0))
    for value, label_class in enumerate(classes, start=1):
        table.SetColorEntry(value, (*label_class.colour, 255))
    band.SetColorTable(table)
    band.SetCategoryNames([UNLABELED_NAME] + [c.name for c in classes])


def write_classes(path: str | Path, classes: list[LabelClass]) -> None:
    """Store names and colours of ``classes`` (values 1..K) in the label raster at ``path``."""
    dataset = _open(path, update=True)
    _set_classes(dataset.GetRasterBand(1), classes)
    dataset = None


def read_classes(path: str | Path) -> list[LabelClass]:
    """Names and colours of classes 1..K from a class raster (labels or a prediction).

    K is the number of category names after value 0; a file without names gets numbered classes up
    to its largest value.
    """
    dataset = _open(path)
    band = dataset.GetRasterBand(1)
    names = list(band.GetCategoryNames() or [])
    table = band.GetColorTable()
    if len(names) > 1:
        count = len(names) - 1
    else:
        try:  # a raster of nothing but nodata has no maximum: no classes yet
            largest = band.ComputeRasterMinMax(False)[1]
        except RuntimeError:
            largest = 0
        count = int(largest) if largest == largest else 0  # NaN (no valid pixel) without exceptions on
    classes = []
    for value in range(1, count + 1):
        name = names[value].strip() if value < len(names) and names[value].strip() else f"class {value}"
        if table is not None and value < table.GetCount():
            colour = tuple(table.GetColorEntry(value)[:3])
        else:
            colour = default_colour(value)
        classes.append(LabelClass(name, colour))
    return classes


def same_grid(image: str | Path, labels: str | Path) -> bool:
    """True when ``labels`` has ``image``'s size and geotransform (paintable without warping)."""
    a, b = _open(image), _open(labels)
    pairs = zip(_map_geotransform(a), _map_geotransform(b), strict=True)
    return (a.RasterXSize, a.RasterYSize) == (b.RasterXSize, b.RasterYSize) and all(
        abs(x - y) < 1e-9 * max(1.0, abs(x)) for x, y in pairs)


def remove_class(path: str | Path, value: int) -> None:
    """Erase class ``value`` from every pixel and shift the classes above it down by one.

    Keeps values 1..K contiguous (what the engine expects). Goes block row by block row.
    """
    mapping = bytes(0 if v == value else (v - 1 if v > value else v) for v in range(256))
    dataset = _open(path, update=True)
    band = dataset.GetRasterBand(1)
    rows = band.GetBlockSize()[1] or 256
    for row in range(0, dataset.RasterYSize, rows):
        window = Window(0, row, dataset.RasterXSize, min(rows, dataset.RasterYSize - row))
        data = band.ReadRaster(*window)
        changed = data.translate(mapping)
        if changed != data:
            band.WriteRaster(*window, changed)
    dataset = None


class LabelRasterWriter:
    """An open label raster for one brush stroke: read and write pixel windows, flush to disk.

    The file stays open between the windows of a stroke and is flushed after each one, so the
    newest paint is on disk even if QGIS dies mid-stroke.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._dataset = _open(path, update=True)
        self._band = self._dataset.GetRasterBand(1)
        self.width = self._dataset.RasterXSize
        self.height = self._dataset.RasterYSize
        self.geotransform = self._dataset.GetGeoTransform()
        self._to_pixel = gdal.InvGeoTransform(self.geotransform)

    def to_pixel(self, x: float, y: float) -> tuple[float, float]:
        """Map coordinates (the raster's CRS) to fractional (column, row); (0, 0) is the top-left corner."""
        return tuple(gdal.ApplyGeoTransform(self._to_pixel, x, y))

    @property
    def pixel_size(self) -> float:
        """The side of one pixel in map units (the larger one, for a non-square pixel)."""
        gt = self.geotransform
        return max((gt[1] ** 2 + gt[4] ** 2) ** 0.5, (gt[2] ** 2 + gt[5] ** 2) ** 0.5)

    def read(self, window: Window) -> bytearray:
        return bytearray(self._band.ReadRaster(*window))

    def write(self, window: Window, data: bytes) -> None:
        self._band.WriteRaster(*window, bytes(data))
        self._dataset.FlushCache()

    def close(self) -> None:
        self._band = None
        self._dataset = None
