"""The brush: a map tool that paints a class (or erases) into the label raster as the mouse drags.

Each mouse move paints one segment: the tool reads the segment's pixel window from the label
GeoTIFF, paints it, writes it back and flushes, so the file on disk is always up to date (a crash
loses nothing) and only a few blocks are rewritten. The old bytes of every window are kept per
stroke, which is what undo writes back. A circle under the mouse shows the brush size.
"""

from __future__ import annotations

from collections import deque

from qgis.core import QgsGeometry, QgsPointXY, QgsRasterLayer, QgsWkbTypes
from qgis.gui import QgsMapCanvas, QgsMapMouseEvent, QgsMapTool, QgsRubberBand
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor, QKeySequence

from .brush import paint_segment, segment_window
from .label_raster import LabelRasterWriter, Window
from .layer_files import layer_file, missing_file

UNDO_DEPTH = 50  # strokes kept for undo
Stroke = list[tuple[Window, bytes]]  # each painted window and its bytes before the paint


class LabelPaintTool(QgsMapTool):
    """Paints ``value`` (or 0 with ``eraser``) with a round brush of ``diameter`` image pixels."""

    painted = pyqtSignal()  # a stroke ended or was undone (the undo state may have changed)
    problem = pyqtSignal(str)  # a sentence for the message bar (e.g. the file is read-only)

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.layer: QgsRasterLayer | None = None
        self.value = 1  # the class painted (1..K)
        self.colour = QColor(255, 0, 0)  # the class's colour, for the brush circle
        self.diameter = 5  # brush size in image pixels
        self.eraser = False
        self._writer: LabelRasterWriter | None = None
        self._last: tuple[float, float] | None = None
        self._stroke: Stroke = []
        self._undo: deque[Stroke] = deque(maxlen=UNDO_DEPTH)
        self._circle = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self._circle.setFillColor(QColor(0, 0, 0, 0))
        self._circle.setWidth(2)
        self.setCursor(Qt.CrossCursor)

    # --- configuration ------------------------------------------------------------------------------

    def set_layer(self, layer: QgsRasterLayer | None) -> None:
        """Paint into ``layer`` from now on; undo history of another layer is dropped."""
        if layer is not self.layer:
            self._end_stroke()
            self._undo.clear()
        self.layer = layer

    def clear_undo(self) -> None:
        """Forget the undo history (after the file was rewritten, e.g. a class was removed)."""
        self._undo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    # --- mouse --------------------------------------------------------------------------------------

    def canvasPressEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802  (Qt's name)
        if event.button() != Qt.LeftButton or self.layer is None:
            return
        path = layer_file(self.layer)
        try:
            self._writer = LabelRasterWriter(path) if path else None
        except (OSError, RuntimeError) as e:
            self._writer = None
            self.problem.emit(f"Cannot paint into {path}: {e}")
            return
        if self._writer is None:
            gone = missing_file(self.layer)
            self.problem.emit(f"The label file {gone} is no longer there; add it again from where it is now, "
                              "or create a new one (New…)." if gone else
                              "The label layer is not a raster file SemiSeg can paint into.")
            return
        self._stroke = []
        self._last = self._pixel(event)
        self._paint(self._last, self._last)

    def canvasMoveEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        self._show_circle(event)
        if self._writer is None or self._last is None:
            return
        point = self._pixel(event)
        self._paint(self._last, point)
        self._last = point

    def canvasReleaseEvent(self, event: QgsMapMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.LeftButton:
            self._end_stroke()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.matches(QKeySequence.Undo):
            self.undo()
            event.accept()
        else:
            event.ignore()

    def deactivate(self) -> None:
        self._end_stroke()
        self._circle.reset(QgsWkbTypes.PolygonGeometry)
        super().deactivate()

    def remove_from_canvas(self) -> None:
        """Take the brush circle off the canvas (before the tool is deleted)."""
        self._circle.reset(QgsWkbTypes.PolygonGeometry)
        self.canvas().scene().removeItem(self._circle)

    # --- painting -----------------------------------------------------------------------------------

    def undo(self) -> bool:
        """Revert the most recent stroke; False when there is nothing to undo."""
        if not self._undo or self.layer is None:
            return False
        stroke = self._undo.pop()
        try:
            writer = LabelRasterWriter(layer_file(self.layer))
        except (OSError, RuntimeError) as e:
            self.problem.emit(f"Cannot undo: {e}")
            return False
        for window, old in reversed(stroke):
            writer.write(window, old)
        writer.close()
        self._refresh()
        self.painted.emit()
        return True

    def _pixel(self, event: QgsMapMouseEvent) -> tuple[float, float]:
        point = self.toLayerCoordinates(self.layer, event.mapPoint())
        return self._writer.to_pixel(point.x(), point.y())

    def _paint(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        writer = self._writer
        window = segment_window(start, end, self.diameter, writer.width, writer.height)
        if window is None:
            return
        data = writer.read(window)
        old = bytes(data)
        if paint_segment(data, window, start, end, self.diameter, 0 if self.eraser else self.value):
            writer.write(window, data)
            self._stroke.append((window, old))
            self._refresh()

    def _end_stroke(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._last = None
        if self._stroke:
            self._undo.append(self._stroke)
            self._stroke = []
            self.painted.emit()

    def _refresh(self) -> None:
        # QGIS's provider keeps its own GDAL handle and block cache: reopen it to see the new pixels.
        self.layer.dataProvider().reloadData()
        self.layer.triggerRepaint()

    def _show_circle(self, event: QgsMapMouseEvent) -> None:
        if self.layer is None:
            return
        centre = self.toLayerCoordinates(self.layer, event.mapPoint())
        radius = max(self.diameter, 1) / 2.0 * self.layer.rasterUnitsPerPixelX()
        circle = QgsGeometry.fromPointXY(QgsPointXY(centre)).buffer(radius, 12)
        self._circle.setStrokeColor(QColor(255, 255, 255) if self.eraser else self.colour)
        self._circle.setToGeometry(circle, self.layer.crs())
