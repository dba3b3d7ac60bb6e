"""Renderers for SemiSeg's layers: classes (labels, prediction) and confidence."""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsContrastEnhancement,
    QgsFillSymbol,
    QgsPalettedRasterRenderer,
    QgsRasterLayer,
    QgsRendererCategory,
    QgsSingleBandGrayRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor

from .label_raster import LabelClass


def style_class_layer(layer: QgsRasterLayer, classes: list[LabelClass]) -> None:
    """Paletted: value k gets class k's colour and name; 0 (unlabeled / no data) stays transparent."""
    entries = [QgsPalettedRasterRenderer.Class(value, QColor(*c.colour), c.name)
               for value, c in enumerate(classes, start=1)]
    layer.setRenderer(QgsPalettedRasterRenderer(layer.dataProvider(), 1, entries))
    layer.triggerRepaint()


def style_confidence_layer(layer: QgsRasterLayer, num_classes: int) -> None:
    """Grey from chance level (black: the model is unsure, paint here next) to certain (white)."""
    provider = layer.dataProvider()
    renderer = QgsSingleBandGrayRenderer(provider, 1)
    stretch = QgsContrastEnhancement(provider.dataType(1))
    stretch.setContrastEnhancementAlgorithm(QgsContrastEnhancement.StretchToMinimumMaximum)
    stretch.setMinimumValue(1.0 / max(num_classes, 2))  # max softmax never falls below 1/K
    stretch.setMaximumValue(1.0)
    renderer.setContrastEnhancement(stretch)
    layer.setRenderer(renderer)
    layer.triggerRepaint()


def style_class_polygons(layer: QgsVectorLayer, classes: list[LabelClass]) -> None:
    """Categorized on the ``class`` field: class k's colour and name, as the prediction layer has them,
    with a darker outline so neighbouring polygons of one class still show apart."""
    categories = []
    for value, c in enumerate(classes, start=1):
        fill = QColor(*c.colour)
        symbol = QgsFillSymbol.createSimple({"color": fill.name(), "outline_color": fill.darker(160).name(),
                                             "outline_width": "0.2"})
        categories.append(QgsRendererCategory(value, symbol, c.name))
    layer.setRenderer(QgsCategorizedSymbolRenderer("class", categories))
    layer.triggerRepaint()
