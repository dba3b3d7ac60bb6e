"""Checking an accuracy sample in the project: which point comes next, storing the analyst's answer,
saving the checks before the engine reads them.

The sample is the GeoPackage of points ``engine sample`` writes (fields ``id``, ``map_class``,
``map_name``, ``reference``); its layer stays in the project, and its edits stay in QGIS's edit buffer
until they are saved.
"""

from __future__ import annotations

from qgis.core import NULL, QgsFeature, QgsProject, QgsRasterLayer, QgsRectangle, QgsVectorLayer

from .layer_files import layer_file


def not_checked(value) -> bool:
    """Whether a sample point's reference value means "not checked yet" (NULL, empty or 0)."""
    return value is None or value == NULL or str(value).strip() in ("", "0")


class SampleCheck:
    """The sample of the last map and the point being checked."""

    def __init__(self) -> None:
        self.layer_id = ""  # the sample's layer in the project ("" = none)
        self.shown = 0  # ``id`` field of the point shown last
        self.feature: int | None = None  # that point's feature id, while it waits for an answer
        self.grid: tuple[float, float, float, float] | None = None  # the map's left, top, pixel width, height

    def start(self, layer: QgsVectorLayer, prediction: str) -> None:
        """Check ``layer``, a sample of the map ``prediction`` (whose grid its points stand for)."""
        grid = QgsRasterLayer(prediction, "grid", "gdal")
        e = grid.extent()
        self.grid = (e.xMinimum(), e.yMaximum(), grid.rasterUnitsPerPixelX(), grid.rasterUnitsPerPixelY())
        self.layer_id, self.shown, self.feature = layer.id(), 0, None

    def pixel(self, point) -> QgsRectangle:
        """The map's cell under ``point`` (the map's CRS): a sample point stands for it."""
        left, top, dx, dy = self.grid
        col, row = (point.x() - left) // dx, (top - point.y()) // dy
        return QgsRectangle(left + col * dx, top - (row + 1) * dy, left + (col + 1) * dx, top - row * dy)

    def forget(self) -> None:
        """A new map: the sample was drawn from another one."""
        self.layer_id, self.feature = "", None

    def layer(self) -> QgsVectorLayer | None:
        return QgsProject.instance().mapLayer(self.layer_id) if self.layer_id else None

    def next_point(self) -> tuple[QgsFeature | None, int, int]:
        """The next point without a reference (after the one shown last, by ``id``, then from the first),
        how many are unchecked and how many there are; (None, 0, n) when all are checked."""
        features = sorted(self.layer().getFeatures(), key=lambda f: f["id"])
        unchecked = [f for f in features if not_checked(f["reference"])]
        if not unchecked:
            self.feature = None
            return None, 0, len(features)
        feature = ([f for f in unchecked if f["id"] > self.shown] or unchecked)[0]
        self.shown, self.feature = feature["id"], feature.id()
        return feature, len(unchecked), len(features)

    def answer(self, value: int) -> bool:
        """Store ``value`` as the reference class of the point shown (in the edit buffer)."""
        layer = self.layer()
        if layer is None or self.feature is None or value < 1:
            return False
        if not layer.isEditable():
            layer.startEditing()
        layer.changeAttributeValue(self.feature, layer.fields().indexOf("reference"), value)
        layer.triggerRepaint()
        return True

    def save(self) -> tuple[str, str]:
        """Save the checks so that the engine reads them: (the sample's file, "") or ("", the problem)."""
        layer = self.layer()
        if layer is None:
            return "", "The accuracy sample of this map is no longer in the project; make a new one."
        if layer.isEditable() and layer.isModified() and not layer.commitChanges():
            errors = "; ".join(layer.commitErrors())
            return "", f"The checked points cannot be saved ({errors}); save the sample's edits, then assess."
        return layer_file(layer) or layer.source().split("|")[0], ""
