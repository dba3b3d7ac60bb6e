"""Class names and colours carried inside a uint8 class raster (labels or prediction).

Value 0 means "unlabeled" in a label raster and "no data" in a prediction; classes are 1..K, or, for
label files whose class values have gaps (codes such as 10, 20, 30), the network's classes 1..K stand
for those values (``ClassTable.values``) and the maps carry the values again.
Colours live in the GeoTIFF's own colour table. Names are GDAL category names, which GDAL keeps
for a GeoTIFF in the PAM side-car ``<file>.aux.xml`` (``gdalinfo`` lists them as "Categories").
Writing that side-car ourselves gives exactly what ``GDALSetRasterCategoryNames`` would, without
needing the GDAL Python bindings (the engine may run in a Python that only has rasterio).
"""

from __future__ import annotations

import colorsys
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import numpy as np
import rasterio

Colour = tuple[int, int, int]

# A qualitative palette that stays readable on imagery; beyond it colours are spread on the hue wheel.
_PALETTE: list[Colour] = [
    (31, 120, 180), (51, 160, 44), (227, 26, 28), (255, 127, 0), (106, 61, 154),
    (177, 89, 40), (166, 206, 227), (178, 223, 138), (251, 154, 153), (253, 191, 111),
    (202, 178, 214), (255, 255, 153), (0, 128, 128), (128, 128, 0), (240, 50, 230), (70, 240, 240),
]


def default_colour(class_id: int) -> Colour:
    """A distinct default colour for class ``class_id`` (1-based)."""
    if 1 <= class_id <= len(_PALETTE):
        return _PALETTE[class_id - 1]
    h = (class_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.9)
    return int(r * 255), int(g * 255), int(b * 255)


def value_lut(values) -> np.ndarray:
    """(256,) uint8 look-up table: each of ``values`` (class values in a file) -> its 1-based position in
    them, any other value -> 0. Numbers class codes (10, 20, 30) as classes 1..K."""
    lut = np.zeros(256, np.uint8)
    lut[np.asarray(values, np.int64)] = np.arange(1, len(values) + 1)
    return lut


@dataclass
class ClassTable:
    """Names and colours of classes 1..K (index i of the lists describes class i + 1); ``values``: the
    value each class has in the files (label and map rasters), when those are not 1..K."""

    names: list[str] = field(default_factory=list)
    colours: list[Colour] = field(default_factory=list)
    values: list[int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @property
    def codes(self) -> list[int]:
        """The value of each class 1..K in the files."""
        return list(self.values) if self.values is not None else list(range(1, self.num_classes + 1))

    def to_values(self) -> np.ndarray | None:
        """(256,) uint8 look-up table class -> file value (0 stays 0); None when they are the same."""
        if self.values is None:
            return None
        lut = np.zeros(256, np.uint8)
        lut[1:self.num_classes + 1] = self.values
        return lut

    def from_values(self) -> np.ndarray | None:
        """(256,) uint8 look-up table file value -> class (values of no class -> 0); None when the same."""
        return None if self.values is None else value_lut(self.values)

    @classmethod
    def numbered(cls, num_classes: int) -> ClassTable:
        """Placeholder names ``class 1`` .. ``class K`` with default colours."""
        ids = range(1, num_classes + 1)
        return cls([f"class {i}" for i in ids], [default_colour(i) for i in ids])

    def to_dict(self) -> dict:
        d = {"names": list(self.names), "colours": [list(c) for c in self.colours]}
        if self.values is not None:
            d["values"] = [int(v) for v in self.values]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ClassTable:
        values = d.get("values")
        return cls([str(n) for n in d["names"]], [tuple(int(v) for v in c) for c in d["colours"]],
                   None if values is None else [int(v) for v in values])


def _aux_path(path: str) -> str:
    return os.fspath(path) + ".aux.xml"


def write_class_table(path: str, table: ClassTable, zero_name: str = "unlabeled") -> None:
    """Store colours (colour table) and names (category names) in the class raster at ``path``.

    The raster must be closed (or at least not open for writing) when this is called.
    """
    codes = table.codes
    cmap = {v: (0, 0, 0, 0) for v in range(max(codes, default=0) + 1)}  # values of no class: transparent
    names = [""] * (max(codes, default=0) + 1)
    names[0] = zero_name
    for v, c, n in zip(codes, table.colours, table.names, strict=True):
        cmap[v] = (int(c[0]), int(c[1]), int(c[2]), 255)
        names[v] = n
    with rasterio.open(path, "r+") as ds:
        ds.write_colormap(1, cmap)
    _write_category_names(path, names)


def _write_category_names(path: str, names: list[str]) -> None:
    aux = _aux_path(path)
    root = None
    if os.path.exists(aux):  # keep whatever else GDAL stored there (statistics, metadata)
        try:
            root = ET.parse(aux).getroot()
        except ET.ParseError:
            root = None
    if root is None or root.tag != "PAMDataset":
        root = ET.Element("PAMDataset")
    band = next((b for b in root.findall("PAMRasterBand") if b.get("band") == "1"), None)
    if band is None:
        band = ET.SubElement(root, "PAMRasterBand", band="1")
    for old in band.findall("CategoryNames"):
        band.remove(old)
    cats = ET.SubElement(band, "CategoryNames")
    for n in names:
        ET.SubElement(cats, "Category").text = n
    tmp = aux + ".tmp"
    try:
        ET.ElementTree(root).write(tmp, encoding="UTF-8", xml_declaration=False)
        os.replace(tmp, aux)
    finally:  # a full disk leaves no half-written sidecar behind
        if os.path.exists(tmp):
            os.remove(tmp)


def read_category_names(path: str) -> list[str]:
    """GDAL category names of band 1 (index = pixel value), or [] when the file has none."""
    aux = _aux_path(path)
    if os.path.exists(aux):
        try:
            root = ET.parse(aux).getroot()
            for band in root.findall("PAMRasterBand"):
                if band.get("band", "1") == "1":
                    cats = band.find("CategoryNames")
                    if cats is not None:
                        return [(c.text or "") for c in cats.findall("Category")]
        except ET.ParseError:
            pass
    try:  # other formats (e.g. a raster attribute table in .img) through GDAL itself, if present
        from osgeo import gdal  # noqa: PLC0415

        ds = gdal.Open(os.fspath(path))
        if ds is not None:
            names = ds.GetRasterBand(1).GetCategoryNames()
            return list(names or [])
    except ImportError:
        pass
    return []


def read_class_table(path: str, max_value: int) -> ClassTable:
    """Names and colours for classes 1..``max_value`` from a class raster; gaps get defaults."""
    names = read_category_names(path)
    try:
        with rasterio.open(path) as ds:
            cmap = ds.colormap(1)
    except ValueError:  # no colour table
        cmap = {}
    table = ClassTable()
    for i in range(1, max_value + 1):
        name = names[i].strip() if i < len(names) and names[i] and names[i].strip() else f"class {i}"
        table.names.append(name)
        table.colours.append(tuple(cmap[i][:3]) if i in cmap else default_colour(i))
    return table
