"""Renderers for SemiSeg's layers: classes (labels, prediction) and confidence."""

from __future__ import annotations

from qgis.core import (
    QgsCategorizedSymbolRenderer,
    QgsContrastEnhancement,
    QgsEditorWidgetSetup,
    QgsFillSymbol,
    QgsMarkerSymbol,
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


NULL_VALUE = "{2839923C-8B7D-419E-B84B-CA2FE9B80EC7}"  # how QGIS's value map widget stores "no value"
SAMPLE_HIDDEN = ("map_class", "map_name")  # kept out of the form: checking a point blind to the map


def style_sample_points(layer: QgsVectorLayer, classes: list[LabelClass]) -> None:
    """An accuracy sample (engine ``sample``): each point in the colour of the reference class entered
    for it, hollow while not checked yet; the ``reference`` field offers the class names to pick from, and
    the map's own class stays out of the form so that it does not sway the check."""
    categories = []
    for value, c in enumerate(classes, start=1):
        symbol = QgsMarkerSymbol.createSimple({"name": "circle", "color": QColor(*c.colour).name(),
                                               "outline_color": "black", "size": "3"})
        categories.append(QgsRendererCategory(value, symbol, c.name))
    unchecked = QgsMarkerSymbol.createSimple({"name": "circle", "color": "255,255,255,0",
                                              "outline_color": "255,0,0", "outline_width": "0.6",
                                              "size": "3.4"})
    categories.append(QgsRendererCategory("", unchecked, "not checked yet"))
    layer.setRenderer(QgsCategorizedSymbolRenderer("reference", categories))
    fields = layer.fields()
    index = fields.indexOf("reference")
    if index >= 0:
        choices = [{"(not checked yet)": NULL_VALUE}] + [{c.name: value} for value, c in
                                                          enumerate(classes, start=1)]
        layer.setEditorWidgetSetup(index, QgsEditorWidgetSetup("ValueMap", {"map": choices}))
    for name in SAMPLE_HIDDEN:
        if fields.indexOf(name) >= 0:
            layer.setEditorWidgetSetup(fields.indexOf(name), QgsEditorWidgetSetup("Hidden", {}))
    if fields.indexOf("id") >= 0:
        form = layer.editFormConfig()
        form.setReadOnly(fields.indexOf("id"), True)
        layer.setEditFormConfig(form)
    layer.triggerRepaint()
