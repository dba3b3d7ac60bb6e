"""A place on the map the dock wants the analyst to look at: the canvas zoomed to it, boxed in red.

Used for the places where the map is least sure (paint there next) and for the pixels of an accuracy
sample's points (check what is there).
"""

from __future__ import annotations

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsCsException,
    QgsGeometry,
    QgsProject,
    QgsRectangle,
    QgsWkbTypes,
)
from qgis.gui import QgsMapCanvas, QgsRubberBand
from qgis.PyQt.QtGui import QColor

RED = QColor(255, 40, 40)


class PlaceMarker:
    """Zooms ``canvas`` to one place at a time and outlines it; ``band`` is the outline shown (or None)."""

    def __init__(self, canvas: QgsMapCanvas) -> None:
        self.canvas = canvas
        self.band: QgsRubberBand | None = None

    def show(self, place: QgsRectangle, crs: QgsCoordinateReferenceSystem, context: float,
             fill: bool = True) -> QgsRectangle | None:
        """Zoom to ``place`` (in ``crs``) with ``context`` times its size around it and outline it, tinted
        (``fill``: a place to paint) or clear (a pixel whose content is the question). Returns the box in
        the canvas's CRS, or None when it cannot be drawn there."""
        to_canvas = QgsCoordinateTransform(crs, self.canvas.mapSettings().destinationCrs(),
                                           QgsProject.instance())
        try:
            box = to_canvas.transformBoundingBox(place)
        except QgsCsException:
            return None
        view = QgsRectangle(box)
        view.scale(context)
        self.canvas.setExtent(view)
        self.canvas.refresh()
        self.clear()
        self.band = QgsRubberBand(self.canvas, QgsWkbTypes.PolygonGeometry)
        self.band.setStrokeColor(RED)
        self.band.setFillColor(QColor(RED.red(), RED.green(), RED.blue(), 40 if fill else 0))
        self.band.setWidth(3)
        self.band.setToGeometry(QgsGeometry.fromRect(box), None)
        return box

    def clear(self) -> None:
        if self.band is not None:
            self.canvas.scene().removeItem(self.band)
            self.band = None
