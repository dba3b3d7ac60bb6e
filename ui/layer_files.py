"""The file behind a layer: the engine reads files, not QGIS layers."""

from __future__ import annotations

import math
import re
from pathlib import Path

from qgis.core import Qgis, QgsMapLayer, QgsProject, QgsProviderRegistry, QgsRasterLayer, QgsVectorLayer


def _parts(layer: QgsMapLayer) -> dict:
    return QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source())


def layer_file(layer: QgsMapLayer | None) -> str | None:
    """The local file a GDAL raster or OGR vector layer reads, or None (web service, memory layer, a file
    inside a zip, one raster table of a GeoPackage: nothing the engine opens by a path alone)."""
    if layer is None or layer.providerType() not in ("gdal", "ogr"):
        return None
    parts = _parts(layer)
    if parts.get("vsiPrefix") or (isinstance(layer, QgsRasterLayer) and parts.get("layerName")):
        return None
    path = parts.get("path")
    return path if path and Path(path).is_file() else None


def missing_file(layer: QgsMapLayer | None) -> str | None:
    """The path of a file layer whose file is gone (moved, renamed, deleted), else None."""
    if layer is None or layer.providerType() not in ("gdal", "ogr"):
        return None
    path = _parts(layer).get("path")
    return path if path and not Path(path).exists() else None


def engine_source(layer: QgsMapLayer | None) -> str | None:
    """What the engine reads for ``layer``: its file, and for one layer of a multi-layer vector file (a
    GeoPackage's) ``FILE|layername=NAME``, and a layer's filter ``|subset=EXPRESSION``, as QGIS writes
    the source; ``|crs=`` the CRS given in QGIS to a vector layer whose file has none (engine.vector:
    source_srs), so that the engine places it where QGIS draws it; None as for layer_file."""
    path = layer_file(layer)
    if path is None or not isinstance(layer, QgsVectorLayer):
        return path
    name = _parts(layer).get("layerName")
    source = f"{path}|layername={name}" if name else path
    if no_crs(layer.dataProvider().crs()) and not no_crs(layer.crs()):
        source += f"|crs={layer.crs().authid() or layer.crs().toWkt()}"
    subset = layer.subsetString().strip()  # the layer's filter: the engine reads the features QGIS shows
    return f"{source}|subset={subset}" if subset else source


def no_crs(crs) -> bool:
    """Whether a CRS says nothing of where things are: none, GDAL's "Undefined geographic/Cartesian SRS"
    of a GeoPackage layer written without one, or a local engineering CRS."""
    wkt = crs.toWkt() if crs.isValid() else ""
    return (not wkt or wkt.startswith(("LOCAL_CS", "ENGCRS"))
            or re.match(r'^\w+\["Undefined \w+ SRS"', wkt) is not None)


def layer_nodata(layer: QgsMapLayer | None) -> tuple[list[float], list[str]]:
    """The "no data values" set on a raster layer in QGIS (Properties → Transparency), which the file
    does not hold and the engine would not see: the single values, for ``--nodata`` (no data in every
    band, as QGIS's Transparency tab sets them), and a sentence for each thing the engine cannot take as
    QGIS does: a range, values set on some bands only."""
    if not isinstance(layer, QgsRasterLayer) or not layer.isValid():
        return [], []
    provider = layer.dataProvider()
    per_band: list[set[float]] = []
    ranges: set[str] = set()
    for band in range(1, provider.bandCount() + 1):
        values = set()
        for r in provider.userNoDataValues(band):
            low, high = r.min(), r.max()
            if not (math.isfinite(low) and math.isfinite(high)):
                continue  # NaN is no data to the engine anyway; open ranges are not values
            if low == high:
                values.add(float(low))
            else:
                ranges.add(f"{low:g}–{high:g}")
        per_band.append(values)
    union = sorted(set().union(*per_band)) if per_band else []
    problems = [f"the no-data range {r} is not passed on (SemiSeg takes single values), so its pixels are "
                "mapped" for r in sorted(ranges)]
    if any(band != set(union) for band in per_band) and union:
        problems.append(f"the no-data values {', '.join(f'{v:g}' for v in union)}, set on some bands only, "
                        "count in every band (a pixel holding one in any band is not mapped)")
    return union, problems


def is_label_raster(layer: QgsMapLayer | None) -> bool:
    """A single-band byte raster in a file: something the brush can paint into."""
    return (isinstance(layer, QgsRasterLayer) and layer_file(layer) is not None
            and layer.bandCount() == 1 and layer.dataProvider().dataType(1) == Qgis.Byte)


def is_vector_labels(layer: QgsMapLayer | None) -> bool:
    return isinstance(layer, QgsVectorLayer) and layer_file(layer) is not None


def output_base(label_file: str | None) -> Path | None:
    """Where SemiSeg puts its files: beside the saved project, else beside the label file."""
    home = QgsProject.instance().absolutePath()
    if home:
        return Path(home)
    return Path(label_file).parent if label_file else None


def same_file(a: str | None, b: str | None) -> bool:
    """Whether the paths ``a`` and ``b`` name one file (either empty: no)."""
    return bool(a) and bool(b) and Path(a).resolve() == Path(b).resolve()


def overwrite_problem(asked: Path, path: Path, project: QgsProject, *more: str) -> str | None:
    """Why writing a new file at ``path`` must not go ahead, or None. ``asked`` is the path the save
    dialog gave, which confirmed replacing it if it existed; ``path`` is it with the suffix added, which
    nobody confirmed. A file that a layer of the ``project`` reads (the image, the labels), or one of
    ``more``, is never replaced: that would destroy what the new file is made from or painted into."""
    in_use = [layer_file(layer) for layer in project.mapLayers().values()] + list(more)
    if any(same_file(str(path), used) for used in in_use if used):
        return f"{path} is a file the project uses (a layer, or the model itself); choose another name."
    if path != asked and path.exists():
        return f"{path} already exists; choose another name, or pick the file itself to replace it."
    return None
