"""Vector files through GDAL's Python bindings (``osgeo``): the bindings, or one sentence saying they are
missing; a file's layer (``FILE|layername=NAME`` picks one) and its fields, or one sentence saying why
not; geometries brought onto a raster's CRS. Vector labels, polygons and accuracy references all go
through here."""

from __future__ import annotations

import os

from engine.errors import InputError


def osgeo_modules(problem: str, code: str = "gdal_missing"):
    """``(gdal, ogr, osr)`` with exceptions on, or InputError(``problem``, ``code``) when this Python
    has no GDAL bindings."""
    try:
        from osgeo import gdal, ogr, osr  # noqa: PLC0415
    except ImportError as e:
        raise InputError(problem, code) from e
    gdal.UseExceptions()
    ogr.UseExceptions()
    osr.UseExceptions()
    return gdal, ogr, osr


def missing_bindings(what: str) -> str:
    """The sentence for an engine Python without the bindings, ``what`` being what needs them."""
    return (f"{what} need GDAL's Python bindings (osgeo), which this engine Python does not have; install "
            "them (python3-gdal, or the GDAL package of your Python) and try again.")


def require_gpkg(out: str, what: str) -> None:
    """Refuse an output that is not a GeoPackage, or an existing GeoPackage that holds anything but the
    one layer SemiSeg writes there (named after the file): replacing the file would lose the rest (a
    project GeoPackage's labels and roads). ``what`` ("Polygons are", "The sample is") names it."""
    if os.path.splitext(out)[1].lower() != ".gpkg":
        raise InputError(f"{what} written as a GeoPackage; give {out} the extension .gpkg.", "bad_output")
    if not os.path.isfile(out):
        return
    from osgeo import gdal  # noqa: PLC0415

    try:
        src = gdal.OpenEx(out, gdal.OF_VECTOR)
        layers = [src.GetLayer(i).GetName() for i in range(src.GetLayerCount())] if src else None
    except RuntimeError:
        layers = None
    src = None
    ours = os.path.splitext(os.path.basename(out))[0]
    if layers is None or any(name != ours for name in layers):
        held = f"the layers {', '.join(layers)}" if layers else "data SemiSeg did not write"
        raise InputError(f"{out} already holds {held}, which writing it would replace; give a new file "
                         "name.", "output_would_replace")


def source_options(source: str) -> tuple[str, dict[str, str]]:
    """``(file, options)`` of a vector source written as QGIS writes one: ``FILE|layername=NAME`` (the
    layer of a multi-layer GeoPackage) and ``|subset=EXPRESSION`` (the layer's filter, last, as it may
    hold any character); a plain path has none."""
    file, _, rest = source.partition("|")
    options: dict[str, str] = {}
    while rest:
        key, _, value = rest.partition("=")
        key = key.strip().lower()
        if key == "subset":
            options[key] = value
            break
        value, _, rest = value.partition("|")
        options[key] = value
    return file, options


def source_srs(source: str):
    """The CRS a vector source's ``|crs=`` option gives (an EPSG code, WKT or PROJ string): the CRS the
    analyst gave in QGIS a layer whose file has none (the plugin passes it on), used for features whose
    file says no CRS; None without the option. An option GDAL cannot read is refused in one sentence."""
    value = source_options(source)[1].get("crs", "").strip()
    if not value:
        return None
    from osgeo import osr  # noqa: PLC0415

    srs = osr.SpatialReference()
    try:
        failed = srs.SetFromUserInput(value)
    except RuntimeError:
        failed = True
    if failed:
        raise InputError(f"{source_file(source)}: the CRS '{value[:80]}' given after |crs= is not one GDAL "
                         "knows; give an EPSG code (EPSG:4326) or WKT.", "vector_crs")
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def _unknown(sref) -> bool:
    """Whether a layer's spatial reference says nothing: none, GDAL's "undefined" ones, a local CRS."""
    return sref is None or sref.IsLocal() or sref.GetName() in UNDEFINED_SRS


def source_file(source: str) -> str:
    """The file of a vector source (source_options): what exists on disk, or not."""
    return source.partition("|")[0]


# Files taken as vector sources by their name alone; any other file GDAL opens as a vector and not as a
# raster (a FileGDB folder, a KMZ, a GPX, ...) is one too (is_vector_source).
VECTOR_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json", ".kml", ".gml", ".sqlite", ".fgb", ".tab", ".csv"}


def is_vector_source(source: str) -> bool:
    """Whether ``source`` (a path, or QGIS's ``FILE|layername=...``) is a vector file: named as one (its
    suffix, or a layer of it), or one GDAL reads as vectors and not as a raster."""
    file, options = source_options(source)
    if "layername" in options or os.path.splitext(file)[1].lower() in VECTOR_SUFFIXES:
        return True
    try:
        from osgeo import gdal  # noqa: PLC0415
    except ImportError:
        return False
    for flags, vector in ((gdal.OF_RASTER, False), (gdal.OF_VECTOR, True)):
        gdal.PushErrorHandler("CPLQuietErrorHandler")
        try:
            ds = gdal.OpenEx(file, flags)
        except RuntimeError:
            ds = None
        finally:
            gdal.PopErrorHandler()
        if ds is not None and (not vector or ds.GetLayerCount() > 0):
            return vector
    return False


def field_value(feature, field: str):
    """``feature``'s value of ``field``. Text in a file whose encoding GDAL does not know (a Shapefile
    without its .cpg, written in Latin-1 or Windows-1252, as older desktop GIS did) comes from the
    bindings with undecodable bytes as lone surrogates ("Stra\\udcdfe"), which no file can store: it is
    decoded as Windows-1252 (Latin-1 where that has no character), the usual encoding of such files."""
    v = feature.GetField(field)
    if isinstance(v, str) and any("\udc80" <= ch <= "\udcff" for ch in v):
        raw = v.encode("utf-8", "surrogateescape")
        try:
            v = raw.decode("cp1252")
        except UnicodeDecodeError:
            v = raw.decode("latin-1")
    return v


def _field_names(layer) -> list[str]:
    defn = layer.GetLayerDefn()
    return [defn.GetFieldDefn(i).GetName() for i in range(defn.GetFieldCount())]


def open_layer(path: str, role: str, field: str, field_fix: str, code: str):
    """The layer of the vector source ``path`` that holds ``field``, and its field names: ``(dataset,
    layer, fields)``. ``FILE|layername=NAME`` names the layer; otherwise a file's only layer, or in a
    file of several layers (a GeoPackage) the one layer that has ``field``.

    ``role`` names the file in the sentences ("Labels", "Reference"); a file GDAL cannot read, one without
    ``field``, or one where the layer is ambiguous, is refused (codes ``<code>_unreadable``,
    ``<code>_field``, ``<code>_layer``; ``field_fix`` ends the field sentence). Keep the dataset while the
    layer is used."""
    from osgeo import gdal  # noqa: PLC0415

    file, options = source_options(path)
    name = options.get("layername") or None
    try:
        src = gdal.OpenEx(file, gdal.OF_VECTOR)
    except RuntimeError:
        src = None
    plural = role.endswith("s")
    if src is None or src.GetLayerCount() == 0:
        raise InputError(f"{role} {path} {'are' if plural else 'is'} not a vector file GDAL can read; give a "
                         "GeoPackage, Shapefile or GeoJSON.", f"{code}_unreadable")
    layers = [src.GetLayer(i) for i in range(src.GetLayerCount())]
    names = [lyr.GetName() for lyr in layers]
    if name is not None:
        if name not in names:
            raise InputError(f"{role} {file} {'have' if plural else 'has'} no layer '{name}' (layers: "
                             f"{', '.join(names)}); name one of them after |layername=.", f"{code}_layer")
        layer = layers[names.index(name)]
    elif len(layers) == 1:
        layer = layers[0]
    else:
        having = [lyr for lyr in layers if field in _field_names(lyr)]
        if len(having) > 1:
            raise InputError(f"{role} {path} {'hold' if plural else 'holds'} several layers with a field "
                             f"'{field}' ({', '.join(lyr.GetName() for lyr in having)}); name one as "
                             f"{file}|layername=NAME.", f"{code}_layer")
        layer = having[0] if having else layers[0]
    if options.get("subset"):  # the features QGIS shows under the layer's filter
        try:
            layer.SetAttributeFilter(options["subset"])
            layer.GetNextFeature()  # a GeoPackage checks the filter only when it is first read
            layer.ResetReading()
        except RuntimeError as e:
            raise InputError(f"{role} {file}: the layer filter '{options['subset']}' is not one GDAL can "
                             "apply; clear the filter or save the filtered features as a file.",
                             f"{code}_filter") from e
    fields = _field_names(layer)
    if field not in fields:
        verb = "have" if plural else "has"
        raise InputError(f"{role} {path} {verb} no field '{field}' (fields: {', '.join(fields) or 'none'}); "
                         f"{field_fix}", f"{code}_field")
    return src, layer, fields


def raster_srs(crs):
    """The OGR spatial reference of a rasterio ``crs`` (None without one), in x/y axis order."""
    if crs is None:
        return None
    from osgeo import osr  # noqa: PLC0415

    srs = osr.SpatialReference()
    srs.ImportFromWkt(crs.to_wkt())
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


# What GDAL calls the CRS of a layer written without one (a GeoPackage's "no CRS" layers)
UNDEFINED_SRS = ("Undefined geographic SRS", "Undefined Cartesian SRS")


def unplaced_hint(layer, target, raster: str, assumed=None) -> str:
    """Why features may miss a raster when one of the two has no CRS: their coordinates are taken as the
    raster's own; the fix. ``assumed``: source_srs's CRS for a layer whose file has none. "" when both
    have a CRS, or neither."""
    sref = layer.GetSpatialRef()
    sref = assumed if _unknown(sref) and assumed is not None else sref
    if (target is None) == _unknown(sref):
        return ""
    if target is not None:
        return (f"their file has no CRS, so their coordinates were taken as {raster}'s "
                f"({_srs_name(target)}): give the file its CRS (in QGIS: set the layer's CRS, then export "
                "it)")
    return (f"{raster} has no CRS, so their {_srs_name(sref)} coordinates were taken as its own: give "
            f"{raster} its CRS (in QGIS: set the layer's CRS, then export it)")


def _srs_name(sref) -> str:
    code, authority = sref.GetAuthorityCode(None), (sref.GetAuthorityName(None) or "").upper()
    return f"EPSG:{code}" if code and authority == "EPSG" else sref.GetName()


def geometry_in(feature, layer, target, source: str = "", assumed=None):
    """A copy of ``feature``'s geometry in the spatial reference ``target`` (as it is when either CRS is
    unknown: none, GDAL's "undefined" ones, a local engineering CRS); None when the feature has no
    geometry. Curved and curve-capable geometries (arcs digitised in QGIS, CurvePolygon, MultiSurface from
    a FileGDB or cadastre export) come as their straight-segment equivalent, which rasterizing takes.
    ``assumed``: the CRS of features whose file has none (source_srs). Coordinates that cannot be
    transformed are refused with a sentence naming ``source``."""
    from osgeo import ogr, osr  # noqa: PLC0415

    g = feature.GetGeometryRef()
    if g is None:
        return None
    kind = g.GetGeometryType()
    g = g.GetLinearGeometry() if g.HasCurveGeometry() or ogr.GT_GetLinear(kind) != kind else g.Clone()
    sref = g.GetSpatialReference() or layer.GetSpatialRef()
    if _unknown(sref) and assumed is not None:
        sref = assumed.Clone()
        g.AssignSpatialReference(sref)
    if target is None or _unknown(sref):
        return g
    sref.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    if not sref.IsSame(target):
        try:
            failed = g.TransformTo(target)
        except RuntimeError as e:
            failed = str(e) or True
        if failed:
            raise InputError(f"{source or layer.GetName()}: the features' coordinates cannot be taken from "
                             f"their CRS ({sref.GetName()}) to the image's ({target.GetName()}); they "
                             "may be in another CRS than the file says (a GeoJSON without one is read as "
                             "WGS 84): give the layer its true CRS and save it again.", "vector_crs")
    return g
