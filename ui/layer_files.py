"""The file behind a layer: the engine reads files, not QGIS layers."""

from __future__ import annotations

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
    the source; None as for layer_file."""
    path = layer_file(layer)
    if path is None or not isinstance(layer, QgsVectorLayer):
        return path
    name = _parts(layer).get("layerName")
    source = f"{path}|layername={name}" if name else path
    subset = layer.subsetString().strip()  # the layer's filter: the engine reads the features QGIS shows
    return f"{source}|subset={subset}" if subset else source


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
