"""The brush: a map tool that paints a class (or erases) into the label raster as the mouse drags.

Each mouse move paints one segment: the tool reads the segment's pixel window from the label
GeoTIFF, paints it, writes it back and flushes, so the file on disk is always up to date (a crash
loses nothing) and only a few blocks are rewritten. The old bytes of every window are kept per
stroke, which is what undo writes back (and what the undone windows held, redo). A circle under the
mouse shows the brush size.

While the brush is the map tool, keys do what the dock's buttons do, without leaving the map: 1-9 pick
that class, E switches the eraser, [ and ] make the brush smaller and larger, Ctrl+Z undoes a stroke and
Ctrl+Shift+Z (or Ctrl+Y) redoes it.
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
Stroke = list[tuple[Window, bytes]]  # each painted window and its bytes before the paint (for redo: after)
DIGIT_KEYS = {getattr(Qt, f"Key_{n}"): n for n in range(1, 10)}


class LabelPaintTool(QgsMapTool):
    """Paints ``value`` (or 0 with ``eraser``) with a round brush of ``diameter`` image pixels."""

    painted = pyqtSignal()  # a stroke ended or was undone (the undo state may have changed)
    problem = pyqtSignal(str)  # a sentence for the message bar (e.g. the file is read-only)
    class_key = pyqtSignal(int)  # a digit key asked for that class (1..9)
    eraser_key = pyqtSignal()  # E: switch the eraser
    size_key = pyqtSignal(int)  # [ (-1) or ] (+1): a smaller or larger brush

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
        self._redo: deque[Stroke] = deque(maxlen=UNDO_DEPTH)  # undone strokes, the pixels they painted
        self._hover: QgsPointXY | None = None  # where the mouse last was on the map (the circle's centre)
        self._circle = QgsRubberBand(canvas, QgsWkbTypes.PolygonGeometry)
        self._circle.setFillColor(QColor(0, 0, 0, 0))
        self._circle.setWidth(2)
        self.setCursor(Qt.CrossCursor)

    # --- configuration ------------------------------------------------------------------------------

    def set_layer(self, layer: QgsRasterLayer | None) -> None:
        """Paint into ``layer`` from now on; undo history of another layer is dropped."""
        if layer is not self.layer:
            self._end_stroke()
            self.clear_undo()
            self._hover = None
        self.layer = layer

    def clear_undo(self) -> None:
        """Forget the undo and redo history (after the file was rewritten, e.g. a class was removed)."""
        self._undo.clear()
        self._redo.clear()

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

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
        key, plain = event.key(), not event.modifiers() & ~Qt.KeypadModifier
        ctrl_y = key == Qt.Key_Y and event.modifiers() == Qt.ControlModifier
        if event.matches(QKeySequence.Undo):
            self.undo()
        elif event.matches(QKeySequence.Redo) or ctrl_y:
            self.redo()
        elif plain and key in DIGIT_KEYS:
            self.class_key.emit(DIGIT_KEYS[key])
        elif plain and key == Qt.Key_E:
            self.eraser_key.emit()
        elif plain and key in (Qt.Key_BracketLeft, Qt.Key_BracketRight):
            self.size_key.emit(1 if key == Qt.Key_BracketRight else -1)
        else:
            event.ignore()
            return
        event.accept()

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
        return self._swap(self._undo, self._redo, "undo")

    def redo(self) -> bool:
        """Paint the most recently undone stroke again; False when there is nothing to redo."""
        return self._swap(self._redo, self._undo, "redo")

    def _swap(self, source: deque[Stroke], target: deque[Stroke], verb: str) -> bool:
        """Write back the newest stroke of ``source`` (the bytes it holds per window, last window
        first) and keep what those windows held before on ``target``: undo and redo are one move."""
        if not source or self.layer is None:
            return False
        self._end_stroke()
        try:
            writer = LabelRasterWriter(layer_file(self.layer))
        except (OSError, RuntimeError) as e:
            self.problem.emit(f"Cannot {verb}: {e}")
            return False
        stroke = source.pop()
        replaced: Stroke = []
        for window, data in reversed(stroke):
            replaced.append((window, bytes(writer.read(window))))
            writer.write(window, data)
        writer.close()
        target.append(replaced)
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
            self._redo.clear()  # a new stroke ends what could be redone
            self._stroke = []
            self.painted.emit()

    def _refresh(self) -> None:
        # QGIS's provider keeps its own GDAL handle and block cache: reopen it to see the new pixels.
        self.layer.dataProvider().reloadData()
        self.layer.triggerRepaint()

    def _show_circle(self, event: QgsMapMouseEvent) -> None:
        self._hover = event.mapPoint()
        self.refresh_circle()

    def refresh_circle(self) -> None:
        """Draw the brush circle where the mouse last was, at the current size and colour (after a key
        changed them, before the mouse moves again)."""
        if self.layer is None or self._hover is None:
            return
        centre = self.toLayerCoordinates(self.layer, self._hover)
        radius = max(self.diameter, 1) / 2.0 * self.layer.rasterUnitsPerPixelX()
        circle = QgsGeometry.fromPointXY(QgsPointXY(centre)).buffer(radius, 12)
        self._circle.setStrokeColor(QColor(255, 255, 255) if self.eraser else self.colour)
        self._circle.setToGeometry(circle, self.layer.crs())
