"""A class map as polygons: one GeoPackage feature per patch of touching pixels of one class, with the
class number, its name and its area, after an optional minimum mapping unit.

Land-cover work usually ends in vectors: areas per parcel, overlays with cadastre, editing by hand. A
pixel map polygonized as it is gives a polygon for every stray pixel, so ``min_pixels`` first merges
every patch smaller than that into its largest neighbour (GDAL's sieve, with the same 4-connected patches
as the polygons), as a minimum mapping unit does. Both steps are GDAL's scan-line algorithms, run on the
files: memory grows with the number of patches on a row, not with the raster. Area is in m² for a
projected CRS (its unit converted to metres), and on the ellipsoid for a geographic one (each polygon
measured in a Lambert azimuthal equal-area projection centred on the map); a raster without a CRS gets
none. No-data pixels (0) become no polygon.

Needs GDAL's Python bindings (``osgeo``), which a QGIS installation brings; an engine Python without them
is told so in one sentence.
"""

from __future__ import annotations

import os
import time

from engine.categories import read_category_names
from engine.errors import InputError
from engine.io_out import check_writable, partial_path, publish
from engine.progress import Reporter
from engine.runtime import NEVER_CANCELLED, CancelToken
from engine.vector import missing_bindings, osgeo_modules, require_gpkg

CONNECTEDNESS = 4  # pixels touching by an edge form a patch (diagonal neighbours do not: valid rings)


def _gdal():
    return osgeo_modules(missing_bindings("Polygons"))


def polygonize(prediction: str, out: str, min_pixels: int = 0, reporter: Reporter | None = None,
               cancel: CancelToken = NEVER_CANCELLED) -> dict:
    """Write the class raster ``prediction`` (uint8, 0 = no data, class names as GDAL categories) as
    polygons to the GeoPackage ``out``; patches of fewer than ``min_pixels`` pixels first join their
    largest neighbour. Written under a partial name and renamed when complete. Returns counts and timing."""
    reporter = reporter or Reporter("none")
    gdal, ogr, osr = _gdal()
    require_gpkg(out, "Polygons are")
    if min_pixels < 0:
        raise InputError(f"The smallest patch to keep must be 0 pixels or more, not {min_pixels}.",
                         "bad_usage")
    try:
        src = gdal.Open(os.fspath(prediction))
    except RuntimeError as e:
        raise InputError(f"Prediction {prediction} cannot be read ({e}); give a class raster written by "
                         "SemiSeg (prediction.tif).", "bad_prediction") from e
    band = src.GetRasterBand(1)
    if src.RasterCount != 1 or band.DataType != gdal.GDT_Byte:
        raise InputError(f"Prediction {prediction} is not a single-band 8-bit class raster; give a "
                         "prediction.tif written by SemiSeg.", "bad_prediction")
    if band.GetNoDataValue() is None:  # a class map from elsewhere: 0 is still no data (SemiSeg's rule)
        src = gdal.Translate("", src, format="VRT", noData=0)
        band = src.GetRasterBand(1)
    check_writable(out)
    t0 = time.monotonic()
    names = read_category_names(prediction)
    part = partial_path(out)
    sieved_path = partial_path(os.path.splitext(out)[0] + "-sieved.tif")
    try:
        sieved = None  # the sieved copy; its band lives only as long as it
        if min_pixels > 1:
            sieved = _sieve(gdal, src, band, sieved_path, min_pixels, reporter, cancel)
            band = sieved.GetRasterBand(1)
        reporter.stage("polygonize", 100, message=f"{src.RasterXSize}×{src.RasterYSize} px into polygons")
        vec = ogr.GetDriverByName("GPKG").CreateDataSource(part)
        srs = None
        if src.GetProjection():
            srs = osr.SpatialReference(wkt=src.GetProjection())
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        layer_name = os.path.splitext(os.path.basename(out))[0]
        layer = vec.CreateLayer(layer_name, srs, ogr.wkbPolygon)
        for name, kind in (("class", ogr.OFTInteger), ("name", ogr.OFTString), ("area_m2", ogr.OFTReal)):
            layer.CreateField(ogr.FieldDefn(name, kind))
        vec.StartTransaction()
        options = ["8CONNECTED=8"] if CONNECTEDNESS == 8 else []
        gdal.Polygonize(band, band.GetMaskBand(), layer, 0, options,
                        callback=_progress(reporter, "polygonize", cancel))
        vec.CommitTransaction()
        cancel.check()
        per_class = _attributes(ogr, osr, vec, layer, srs, names, reporter, cancel)
        layer = None
        vec = None  # closes the GeoPackage (builds its spatial index, which can take a while)
        cancel.check()  # a cancel that came during the close still leaves nothing
        publish(part, out)
    except RuntimeError as e:
        cancel.check()  # a cancelled GDAL call raises too: report the cancel, not an error
        if _names(str(e), prediction) and not any(_names(str(e), f) for f in (part, sieved_path)):
            # reading the map failed, not writing (the partial files' names may start with the map's)
            detail = str(e).split(": ", 1)[-1].rstrip(".")[:200]
            raise InputError(f"Prediction {prediction} cannot be read ({detail}); it may be damaged or "
                             "incomplete: make the map again.", "prediction_unreadable") from e
        raise InputError(f"Polygonizing {prediction} failed ({e}); check the free space where {out} is "
                         "written.", "polygonize_failed") from e
    finally:
        # every handle goes before the files do: a GeoPackage left open would be closed later, by the
        # garbage collector, writing into a removed file (a stray "readonly database" traceback)
        layer = vec = None
        src = band = sieved = None
        for f in (part, sieved_path, sieved_path + ".aux.xml"):
            if os.path.exists(f):
                os.remove(f)
    reporter.emit("artifact", kind="polygons", path=os.path.abspath(out))
    return {"polygons": os.path.abspath(out), "features": sum(c["polygons"] for c in per_class.values()),
            "per_class": per_class, "min_pixels": min_pixels,
            "polygonize_seconds": round(time.monotonic() - t0, 2)}


def _names(message: str, path: str) -> bool:
    """Whether a GDAL error ``message`` is about the file at ``path`` (GDAL starts a read error with the
    file's name, as it was opened, or that of the file a VRT reads)."""
    return os.fspath(path) in message or os.path.abspath(path) in message


def _sieve(gdal, src, band, path: str, min_pixels: int, reporter: Reporter, cancel: CancelToken):
    """A temporary GeoTIFF at ``path``: ``band`` with every patch under ``min_pixels`` pixels merged into its
    largest neighbour (no data stays no data)."""
    reporter.stage("sieve", 100, message=f"merging patches under {min_pixels} px into their neighbours")
    dst = gdal.GetDriverByName("GTiff").Create(path, src.RasterXSize, src.RasterYSize, 1, gdal.GDT_Byte,
                                               ["TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"])
    dst.SetGeoTransform(src.GetGeoTransform())
    dst.SetProjection(src.GetProjection())
    out = dst.GetRasterBand(1)
    out.SetNoDataValue(0)
    gdal.SieveFilter(band, band.GetMaskBand(), out, min_pixels, CONNECTEDNESS,
                     callback=_progress(reporter, "sieve", cancel))
    cancel.check()
    out.FlushCache()
    return dst


def _progress(reporter: Reporter, stage: str, cancel: CancelToken):
    """A GDAL progress callback: percent as progress events; returning 0 stops GDAL when cancelled."""
    last = [-1]

    def report(complete, _message, _data):
        pct = int(complete * 100)
        if pct != last[0]:
            last[0] = pct
            reporter.progress(stage, pct, 100)
        return 0 if cancel.cancelled else 1

    return report


def _attributes(ogr, osr, vec, layer, srs, names: list[str], reporter: Reporter, cancel: CancelToken) -> dict:
    """Fill each polygon's class name and area (m²; None without a CRS in metres or degrees); returns
    polygons and m² per class name."""
    total = layer.GetFeatureCount()
    reporter.stage("attributes", total, message=f"{total:,} polygons: class names and areas")
    measure = _area_measure(osr, srs, layer)
    per_class: dict[str, dict] = {}
    vec.StartTransaction()
    layer.ResetReading()
    for i, feature in enumerate(layer, start=1):
        value = feature.GetFieldAsInteger("class")
        name = names[value].strip() if value < len(names) and names[value].strip() else f"class {value}"
        feature.SetField("name", name)
        area = measure(feature.GetGeometryRef()) if measure else None
        if area is not None:
            feature.SetField("area_m2", area)
        layer.SetFeature(feature)
        entry = per_class.setdefault(name, {"class": value, "polygons": 0,
                                            "area_m2": 0.0 if measure else None})
        entry["polygons"] += 1
        if area is not None:
            entry["area_m2"] += area
        if i % 10_000 == 0 or i == total:
            cancel.check()
            reporter.progress("attributes", i, total)
    vec.CommitTransaction()
    return dict(sorted(per_class.items(), key=lambda kv: kv[1]["class"]))


def _area_measure(osr, srs, layer):
    """A function giving a polygon's area in m², or None when the CRS gives no metres."""
    if srs is None:
        return None
    if srs.IsProjected():
        metres = srs.GetLinearUnits()  # metres per CRS unit
        return lambda g: g.GetArea() * metres * metres
    if not srs.IsGeographic():
        return None
    xmin, xmax, ymin, ymax = layer.GetExtent()
    equal_area = osr.SpatialReference()
    equal_area.CopyGeogCSFrom(srs)
    equal_area.SetLAEA((ymin + ymax) / 2, (xmin + xmax) / 2, 0, 0)
    equal_area.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    to_equal_area = osr.CoordinateTransformation(srs, equal_area)

    def area(g):
        g = g.Clone()
        g.Transform(to_equal_area)
        return g.GetArea()

    return area
