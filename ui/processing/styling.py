"""Styles for the rasters the algorithms write: class colours and names, and a confidence ramp.

The engine already stores colours (a colour table) and class names (GDAL category names) inside the
prediction GeoTIFF. Here they become a paletted renderer whose legend shows the names, written as a
``.qml`` beside the raster (QGIS loads it with the file, from Processing, ``qgis_process`` or a drag and
drop) and applied again when Processing loads the output into the project.
"""

from __future__ import annotations

from pathlib import Path

from osgeo import gdal
from qgis.core import (
    QgsColorRampShader,
    QgsPalettedRasterRenderer,
    QgsProcessingContext,
    QgsProcessingLayerPostProcessorInterface,
    QgsRasterLayer,
    QgsRasterShader,
    QgsSingleBandPseudoColorRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from ..label_raster import LabelClass
from ..styles import style_class_polygons, style_sample_points

PREDICTION = "prediction"
CONFIDENCE = "confidence"
POLYGONS = "polygons"  # a GeoPackage of a class raster's polygons, styled with that raster's classes
SAMPLE = "sample"  # an accuracy sample's points: coloured by their reference class, class names to pick
VECTOR_KINDS = (POLYGONS, SAMPLE)

# Confidence (max softmax, 0..1): red where the model is unsure, which is where to paint next.
CONFIDENCE_RAMP = ((0.0, QColor(215, 25, 28), "unsure"), (0.5, QColor(253, 174, 97), ""),
                   (0.75, QColor(255, 255, 191), ""), (1.0, QColor(26, 150, 65), "sure"))


def class_entries(path: str) -> list[tuple[int, QColor, str]]:
    """(value, colour, name) of classes 1..K in a SemiSeg class raster; value 0 is nodata. A raster of
    coded classes (values with gaps, such as 10, 20, 30) names its classes only: the gaps are no class."""
    ds = gdal.Open(path)
    if ds is None:
        return []
    ds.GetMetadata()  # GDAL 3.6 reads the .aux.xml (category names) lazily; this makes it read it
    band = ds.GetRasterBand(1)
    names = list(band.GetCategoryNames() or [])
    table = band.GetColorTable()
    count = len(names) if names else _last_coloured_entry(table) + 1
    entries = []
    for value in range(1, count):
        if names and value < len(names) and not names[value].strip():
            continue  # a value between coded classes
        rgba = table.GetColorEntry(value) if table is not None and value < table.GetCount() else (128,) * 4
        name = names[value] if value < len(names) and names[value] else f"class {value}"
        entries.append((value, QColor(*rgba[:3]), name))
    return entries


def _last_coloured_entry(table) -> int:
    """GeoTIFF colour tables have 256 entries; unused ones are opaque black."""
    if table is None:
        return 0
    used = [i for i in range(table.GetCount()) if table.GetColorEntry(i)[:3] != (0, 0, 0)]
    return max(used, default=0)


def style_prediction(layer: QgsRasterLayer) -> bool:
    """A paletted renderer with the classes' colours and names; False when the file has no classes."""
    entries = class_entries(layer.source())
    if not entries:
        return False
    classes = [QgsPalettedRasterRenderer.Class(value, colour, name) for value, colour, name in entries]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, classes))
    return True


def style_confidence(layer: QgsRasterLayer) -> bool:
    """A red (unsure) to green (sure) ramp over 0..1."""
    ramp = QgsColorRampShader(0.0, 1.0)
    ramp.setColorRampType(QgsColorRampShader.Interpolated)
    ramp.setColorRampItemList([QgsColorRampShader.ColorRampItem(value, colour, label)
                               for value, colour, label in CONFIDENCE_RAMP])
    shader = QgsRasterShader()
    shader.setRasterShaderFunction(ramp)
    renderer = QgsSingleBandPseudoColorRenderer(layer.dataProvider(), 1, shader)
    renderer.setClassificationMin(0.0)
    renderer.setClassificationMax(1.0)
    layer.setRenderer(renderer)
    return True


def style_polygons(layer: QgsVectorLayer, source: str) -> bool:
    """Categorized by class with the colours and names of the class raster ``source``."""
    entries = class_entries(source)
    if not entries:
        return False
    style_class_polygons(layer, [LabelClass(name, colour.getRgb()[:3]) for _, colour, name in entries])
    return True


def style_sample(layer: QgsVectorLayer, source: str) -> bool:
    """Points coloured by the reference class entered (hollow until checked), and the class names of the
    class raster ``source`` to choose from in the form."""
    entries = class_entries(source)
    if not entries:
        return False
    style_sample_points(layer, [LabelClass(name, colour.getRgb()[:3]) for _, colour, name in entries])
    return True


def style(layer, kind: str, source: str = "") -> bool:
    """Style ``layer`` as ``kind``; ``source``: the class raster polygons or a sample were made from."""
    if kind in VECTOR_KINDS:
        return isinstance(layer, QgsVectorLayer) and {POLYGONS: style_polygons,
                                                      SAMPLE: style_sample}[kind](layer, source)
    return isinstance(layer, QgsRasterLayer) and {PREDICTION: style_prediction,
                                                  CONFIDENCE: style_confidence}[kind](layer)


def write_style_file(path: str, kind: str, source: str = "") -> str | None:
    """Write the layer at ``path``'s default style, where QGIS finds it when it loads the file: a raster's
    ``<file>.qml``, a GeoPackage's own style table. Returns where (None: not written)."""
    layer = (QgsVectorLayer(path, Path(path).stem, "ogr") if kind in VECTOR_KINDS
             else QgsRasterLayer(path, Path(path).stem, "gdal"))
    if not layer.isValid() or not style(layer, kind, source):
        return None
    if kind in VECTOR_KINDS and path.lower().endswith(".gpkg"):
        # into the GeoPackage as its default style: a map.qml beside map.gpkg would be map.tif's style too
        failed = layer.saveStyleToDatabase("semiseg", f"SemiSeg {kind}", True, "")
        return None if failed else path
    qml = str(Path(path).with_suffix(".qml"))
    _message, ok = layer.saveNamedStyle(qml)
    return qml if ok else None


class StyleOnLoad(QgsProcessingLayerPostProcessorInterface):
    """Styles an output when Processing adds it to the project (on the main thread)."""

    # Python references until each has styled its layer: the wrapper (and the postProcessLayer below) must
    # outlive the call that made it; with one per kind, a model's or a batch's earlier outputs of that kind
    # lost theirs and loaded unstyled
    _alive: list[StyleOnLoad] = []

    def __init__(self, kind: str, source: str = "") -> None:
        super().__init__()
        self.kind, self.source = kind, source

    @classmethod
    def of(cls, kind: str, source: str = "") -> StyleOnLoad:
        """A new one for each output: the context it is given to takes it over and deletes it with itself,
        so one post-processor cannot serve a second run (that run would fail while loading its layers)."""
        made = cls(kind, source)
        cls._alive.append(made)
        return made

    def postProcessLayer(self, layer, context, feedback) -> None:  # noqa: ARG002, N802 (QGIS API)
        if style(layer, self.kind, self.source):
            layer.triggerRepaint()
        if self in self._alive:
            self._alive.remove(self)


def style_output(context: QgsProcessingContext, path: str, kind: str, feedback,
                 load_as: tuple[str, str] | None = None, source: str = "") -> None:
    """Write ``path``'s style file and style it when loaded.

    ``load_as`` = (layer name, output name) asks Processing to load a file that is not the value of a
    destination parameter (destination parameters are loaded by Processing itself when asked to).
    """
    if write_style_file(path, kind, source) is None:
        feedback.pushWarning(f"Could not write a style for {path}; it keeps GDAL's default look.")
    if load_as is not None:
        details = QgsProcessingContext.LayerDetails(load_as[0], context.project(), load_as[1])
        context.addLayerToLoadOnCompletion(path, details)
    if context.willLoadLayerOnCompletion(path):
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(StyleOnLoad.of(kind, source))
