"""Put a run's prediction and confidence layers into the project's "SemiSeg" group.

Results are tagged with the image they segment, so a new run replaces the previous layers for that
image (the files stay on disk, in their run folder) instead of piling up. Accuracy samples stay: they
hold the analyst's own checking, which a new map must not take out of the project.
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsLayerTreeGroup, QgsProject, QgsRasterLayer, QgsVectorLayer

from .label_raster import read_classes
from .layer_files import layer_file, same_file
from .styles import style_class_layer, style_class_polygons, style_confidence_layer, style_sample_points

GROUP_NAME = "SemiSeg"
ROLE_PROPERTY = "semiseg/role"  # "prediction", "confidence", "polygons" or "sample"
SOURCE_PROPERTY = "semiseg/source"  # the image the result segments (its file path)


def semiseg_group(project: QgsProject) -> QgsLayerTreeGroup:
    """The "SemiSeg" group at the top of the layer tree (made on first use)."""
    root = project.layerTreeRoot()
    group = root.findGroup(GROUP_NAME)
    return group if group is not None else root.insertGroup(0, GROUP_NAME)


def result_layers(project: QgsProject, source: str | None = None) -> list[QgsRasterLayer]:
    """SemiSeg result layers in the project, optionally only those of the image ``source``."""
    return [layer for layer in project.mapLayers().values()
            if layer.customProperty(ROLE_PROPERTY) and (
                source is None or layer.customProperty(SOURCE_PROPERTY) == source)]


def _adopt_crs(layer, source: str, project: QgsProject) -> None:
    """A result of an image whose file has no CRS has none either; where the analyst gave the image's
    layer one in QGIS (Layer CRS), the result takes it, so that it lies where the image does."""
    if layer.dataProvider().crs().isValid():
        return
    for image in project.mapLayers().values():
        if (isinstance(image, QgsRasterLayer) and image.crs().isValid()
                and same_file(layer_file(image), source)):
            layer.setCrs(image.crs())
            return


def map_title(image: str, project: QgsProject) -> str:
    """The stem of the result layers' names for ``image``: its file name, or where the project holds
    results of another image of that name (2019/scene.tif and 2020/scene.tif), its folder's name too."""
    stem = Path(image).stem
    for layer in result_layers(project):
        other = layer.customProperty(SOURCE_PROPERTY) or ""
        if other and Path(other).stem == stem and not same_file(other, image):
            return f"{Path(image).parent.name}/{stem}"
    return stem


def add_results(project: QgsProject, prediction: str, confidence: str | None, source: str,
                title: str) -> list[QgsRasterLayer]:
    """Add the styled result layers (prediction on top), replacing earlier ones of ``source``."""
    classes = read_classes(prediction)
    layers = []
    pred = QgsRasterLayer(prediction, f"{title} prediction", "gdal")
    style_class_layer(pred, classes)
    layers.append((pred, "prediction"))
    if confidence:
        conf = QgsRasterLayer(confidence, f"{title} confidence", "gdal")
        style_confidence_layer(conf, len(classes))
        layers.append((conf, "confidence"))
    for layer, _ in layers:
        if not layer.isValid():
            raise OSError(f"QGIS cannot open {layer.source()}")
        _adopt_crs(layer, source, project)
    project.removeMapLayers([layer.id() for layer in result_layers(project, source)
                             if layer.customProperty(ROLE_PROPERTY) != "sample"])
    group = semiseg_group(project)
    for position, (layer, role) in enumerate(layers):
        layer.setCustomProperty(ROLE_PROPERTY, role)
        layer.setCustomProperty(SOURCE_PROPERTY, source)
        project.addMapLayer(layer, False)
        group.insertLayer(position, layer)
    return [layer for layer, _ in layers]


def add_polygons(project: QgsProject, polygons: str, prediction: str, source: str,
                 title: str) -> QgsVectorLayer:
    """Add the styled polygons of ``prediction`` on top of the group, replacing earlier polygons of
    ``source`` (a new run replaces them with the rest of that image's layers)."""
    layer = QgsVectorLayer(polygons, f"{title} polygons", "ogr")
    if not layer.isValid():
        raise OSError(f"QGIS cannot open {polygons}")
    style_class_polygons(layer, read_classes(prediction))
    _adopt_crs(layer, source, project)
    project.removeMapLayers([old.id() for old in result_layers(project, source)
                             if old.customProperty(ROLE_PROPERTY) == "polygons"])
    layer.setCustomProperty(ROLE_PROPERTY, "polygons")
    layer.setCustomProperty(SOURCE_PROPERTY, source)
    project.addMapLayer(layer, False)
    semiseg_group(project).insertLayer(0, layer)
    return layer


def add_sample(project: QgsProject, sample: str, prediction: str, source: str, title: str) -> QgsVectorLayer:
    """Add an accuracy sample's points on top of the group, styled (styles.style_sample_points) with the
    classes of ``prediction``, the map they were drawn from."""
    layer = QgsVectorLayer(sample, f"{title} accuracy sample", "ogr")
    if not layer.isValid():
        raise OSError(f"QGIS cannot open {sample}")
    style_sample_points(layer, read_classes(prediction))
    _adopt_crs(layer, source, project)
    layer.setCustomProperty(ROLE_PROPERTY, "sample")
    layer.setCustomProperty(SOURCE_PROPERTY, source)
    project.addMapLayer(layer, False)
    semiseg_group(project).insertLayer(0, layer)
    return layer
