"""Painting through simulated mouse events on the canvas writes the class into the label GeoTIFF."""

from __future__ import annotations

import pytest
from osgeo import gdal
from plugin_helpers import plugin_module
from qgis.core import QgsApplication, QgsPointXY, QgsRasterLayer
from qgis.gui import QgsMapMouseEvent
from qgis.PyQt.QtCore import QEvent, QPoint, Qt
from qgis.PyQt.QtGui import QKeyEvent

label_raster = plugin_module("ui.label_raster")
brush = plugin_module("ui.brush")
paint_tool = plugin_module("ui.paint_tool")
brush_panel = plugin_module("ui.brush_panel")

# The tiny scene is 96 x 96 px of 1 m with its top-left corner at (500000, 5000000).
ORIGIN_X, ORIGIN_Y = 500000.0, 5000000.0


def pixel_centre(col: float, row: float) -> QgsPointXY:
    return QgsPointXY(ORIGIN_X + col + 0.5, ORIGIN_Y - row - 0.5)


def pixels(path) -> list[list[int]]:
    dataset = gdal.Open(str(path))
    data = dataset.GetRasterBand(1).ReadRaster()
    width = dataset.RasterXSize
    return [list(data[r * width:(r + 1) * width]) for r in range(dataset.RasterYSize)]


class Mouse:
    """Sends press / move / release events to a map tool at map coordinates."""

    def __init__(self, canvas, tool) -> None:
        self.canvas, self.tool = canvas, tool

    def _event(self, kind, point: QgsPointXY, buttons):
        screen = self.canvas.getCoordinateTransform().transform(point)
        button = Qt.LeftButton if kind != QEvent.MouseMove else Qt.NoButton
        return QgsMapMouseEvent(self.canvas, kind, QPoint(round(screen.x()), round(screen.y())), button,
                                buttons, Qt.NoModifier)

    def stroke(self, points: list[QgsPointXY]) -> None:
        self.tool.canvasPressEvent(self._event(QEvent.MouseButtonPress, points[0], Qt.LeftButton))
        for point in points[1:]:
            self.tool.canvasMoveEvent(self._event(QEvent.MouseMove, point, Qt.LeftButton))
        self.tool.canvasReleaseEvent(self._event(QEvent.MouseButtonRelease, points[-1], Qt.NoButton))


@pytest.fixture()
def shown_canvas(qgis_canvas, qgis_parent):
    """The canvas on screen (offscreen): only a shown canvas gets its real size for map <-> screen."""
    qgis_parent.show()
    QgsApplication.processEvents()
    return qgis_canvas


@pytest.fixture()
def label_layer(tiny_scene, tmp_path, clean_project, shown_canvas):
    path = tmp_path / "labels.tif"
    label_raster.create_label_raster(tiny_scene["image"], path, label_raster.default_classes(3))
    layer = QgsRasterLayer(str(path), "labels", "gdal")
    assert layer.isValid()
    clean_project.addMapLayer(layer)
    shown_canvas.setDestinationCrs(layer.crs())
    shown_canvas.setExtent(layer.extent())  # 600 px canvas over 96 px: ~6 screen px per image px
    return layer


@pytest.fixture()
def tool(qgis_canvas, label_layer):
    tool = paint_tool.LabelPaintTool(qgis_canvas)
    tool.set_layer(label_layer)
    qgis_canvas.setMapTool(tool)
    yield tool
    qgis_canvas.unsetMapTool(tool)
    tool.remove_from_canvas()


def test_new_label_raster_is_on_the_image_grid(tiny_scene, tmp_path):
    path = tmp_path / "new.tif"
    classes = [label_raster.LabelClass("water", (0, 0, 255)), label_raster.LabelClass("forest", (0, 128, 0))]
    label_raster.create_label_raster(tiny_scene["image"], path, classes)
    image, labels = gdal.Open(tiny_scene["image"]), gdal.Open(str(path))
    assert (labels.RasterXSize, labels.RasterYSize) == (image.RasterXSize, image.RasterYSize)
    assert labels.GetGeoTransform() == image.GetGeoTransform()
    assert labels.GetSpatialRef().IsSame(image.GetSpatialRef())
    assert labels.RasterCount == 1 and labels.GetRasterBand(1).DataType == gdal.GDT_Byte
    assert labels.GetDriver().ShortName == "GTiff"
    assert label_raster.read_classes(path) == classes
    assert set(sum(pixels(path), [])) == {0}


def test_classes_round_trip_through_the_file_in_the_engines_format(tiny_scene, tmp_path):
    from engine.categories import read_class_table  # the engine must read what the plugin writes

    path = tmp_path / "labels.tif"
    label_raster.create_label_raster(tiny_scene["image"], path, label_raster.default_classes(2))
    renamed = [label_raster.LabelClass("water", (10, 20, 30)), label_raster.LabelClass("built-up", (1, 2, 3)),
               label_raster.LabelClass("forest", (0, 99, 0))]
    label_raster.write_classes(path, renamed)
    assert label_raster.read_classes(path) == renamed
    table = read_class_table(str(path), 3)
    assert table.names == ["water", "built-up", "forest"]
    assert [tuple(c) for c in table.colours] == [(10, 20, 30), (1, 2, 3), (0, 99, 0)]


def test_removing_a_class_erases_it_and_renumbers_the_rest(tmp_path, tiny_scene):
    path = tmp_path / "labels.tif"
    label_raster.create_label_raster(tiny_scene["image"], path, label_raster.default_classes(3))
    writer = label_raster.LabelRasterWriter(path)
    writer.write(label_raster.Window(0, 0, 3, 1), bytes([1, 2, 3]))
    writer.close()
    label_raster.remove_class(path, 2)
    assert pixels(path)[0][:4] == [1, 0, 2, 0]


def test_brush_covers_a_disc_and_the_segment_between_points():
    window = brush.segment_window((10.5, 10.5), (20.5, 10.5), 3, 96, 96)
    data = bytearray(window.width * window.height)
    changed = brush.paint_segment(data, window, (10.5, 10.5), (20.5, 10.5), 3, 7)
    painted = {(window.col + i % window.width, window.row + i // window.width)
               for i, v in enumerate(data) if v == 7}
    assert changed == len(painted)
    assert {(c, 10) for c in range(9, 22)} <= painted  # the whole line, one radius past both ends
    assert (22, 10) not in painted
    assert (10, 9) in painted and (10, 11) in painted and (10, 12) not in painted
    assert brush.segment_window((-50, -50), (-40, -40), 3, 96, 96) is None


def test_painting_writes_the_class_into_the_expected_pixels_and_undo_reverts(tool, label_layer, qgis_canvas):
    path = label_layer.source()
    tool.value, tool.diameter = 2, 3
    Mouse(qgis_canvas, tool).stroke([pixel_centre(10, 20), pixel_centre(15, 20), pixel_centre(20, 20)])
    grid = pixels(path)
    assert all(grid[20][c] == 2 for c in range(9, 22)), grid[20][5:25]
    assert grid[19][15] == 2 and grid[21][15] == 2  # a 3-px brush: one pixel either side
    assert grid[18][15] == 0 and grid[22][15] == 0 and grid[20][23] == 0
    assert sum(v == 2 for row in grid for v in row) == 3 * 13  # 13 columns x 3 rows, nothing else
    # QGIS sees the new pixels at once (the provider was reloaded)
    value, ok = label_layer.dataProvider().sample(pixel_centre(15, 20), 1)
    assert ok and value == 2

    tool.value, tool.diameter = 3, 1
    Mouse(qgis_canvas, tool).stroke([pixel_centre(15, 10), pixel_centre(15, 30)])
    assert pixels(path)[10][15] == 3 and pixels(path)[20][15] == 3  # over the first stroke

    assert tool.undo()
    grid = pixels(path)
    assert grid[10][15] == 0 and grid[20][15] == 2, "undo restores what the second stroke covered"
    assert tool.undo()
    assert set(sum(pixels(path), [])) == {0}
    assert not tool.undo() and not tool.can_undo


def test_eraser_clears_pixels(tool, label_layer, qgis_canvas):
    tool.value, tool.diameter = 1, 5
    mouse = Mouse(qgis_canvas, tool)
    mouse.stroke([pixel_centre(40, 40)])
    assert pixels(label_layer.source())[40][40] == 1
    tool.eraser, tool.diameter = True, 1
    mouse.stroke([pixel_centre(40, 40)])
    grid = pixels(label_layer.source())
    assert grid[40][40] == 0 and grid[40][41] == 1


def test_strokes_outside_the_raster_are_ignored(tool, label_layer, qgis_canvas):
    qgis_canvas.setExtent(label_layer.extent().buffered(50))
    Mouse(qgis_canvas, tool).stroke([pixel_centre(-20, -20), pixel_centre(-10, -10)])
    assert set(sum(pixels(label_layer.source()), [])) == {0}
    assert not tool.can_undo


def test_label_raster_of_a_plain_image_lies_where_qgis_draws_it(tiny_scene, tmp_path, clean_project,
                                                                shown_canvas):
    """An image without georeferencing (a plain TIFF): QGIS draws it at x = column, y = -row; the new label
    raster lies on exactly that extent (not mirrored above it), and a stroke lands on the pixels painted."""
    image_data = gdal.Open(tiny_scene["image"])
    plain = tmp_path / "plain.tif"
    copy = gdal.GetDriverByName("GTiff").Create(str(plain), 96, 96, image_data.RasterCount, gdal.GDT_UInt16)
    for b in range(1, image_data.RasterCount + 1):
        copy.GetRasterBand(b).WriteArray(image_data.GetRasterBand(b).ReadAsArray())
    copy = image_data = None
    assert gdal.Open(str(plain)).GetGeoTransform(can_return_null=True) is None
    path = tmp_path / "labels.tif"
    label_raster.create_label_raster(plain, path, label_raster.default_classes(2))
    assert label_raster.same_grid(plain, path)
    image = QgsRasterLayer(str(plain), "plain", "gdal")
    labels = QgsRasterLayer(str(path), "labels", "gdal")
    assert image.isValid() and labels.isValid()
    assert labels.extent() == image.extent() and image.extent().yMaximum() == 0
    clean_project.addMapLayers([image, labels])
    shown_canvas.setExtent(labels.extent())
    tool = paint_tool.LabelPaintTool(shown_canvas)
    tool.set_layer(labels)
    shown_canvas.setMapTool(tool)
    try:
        tool.value, tool.diameter = 2, 1
        Mouse(shown_canvas, tool).stroke([QgsPointXY(10.5, -20.5), QgsPointXY(20.5, -20.5)])
        grid = pixels(path)
        assert all(grid[20][c] == 2 for c in range(10, 21)) and sum(map(sum, grid)) == 2 * 11
    finally:
        shown_canvas.unsetMapTool(tool)
        tool.remove_from_canvas()


def test_a_blank_label_raster_made_elsewhere_has_no_classes_yet(tmp_path):
    """A byte raster of nothing but nodata (no category names): no classes, not an exception in the
    dock's slot (GDAL cannot compute a maximum of no pixels)."""
    path = tmp_path / "blank.tif"
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 16, 16, 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).SetNoDataValue(0)
    ds = None
    assert label_raster.read_classes(path) == []  # (with GDAL's exceptions off, NaN: the same answer)


def key(code, modifiers=Qt.NoModifier, text: str = ""):
    return QKeyEvent(QEvent.KeyPress, code, modifiers, text)


def test_redo_paints_an_undone_stroke_again_and_a_new_stroke_ends_redo(tool, label_layer, qgis_canvas):
    path = label_layer.source()
    mouse = Mouse(qgis_canvas, tool)
    tool.value, tool.diameter = 2, 1
    mouse.stroke([pixel_centre(10, 20), pixel_centre(20, 20)])
    tool.value = 3
    mouse.stroke([pixel_centre(15, 10), pixel_centre(15, 30)])
    painted = pixels(path)
    assert not tool.can_redo and not tool.redo()

    tool.keyPressEvent(key(Qt.Key_Z, Qt.ControlModifier, "z"))
    tool.keyPressEvent(key(Qt.Key_Z, Qt.ControlModifier, "z"))
    assert set(sum(pixels(path), [])) == {0} and tool.can_redo and not tool.can_undo
    tool.keyPressEvent(key(Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier, "Z"))  # redo: the first stroke
    grid = pixels(path)
    assert grid[20][10] == 2 and grid[20][15] == 2 and grid[10][15] == 0
    tool.keyPressEvent(key(Qt.Key_Y, Qt.ControlModifier, "y"))  # and the second, over it
    assert pixels(path) == painted and tool.can_undo and not tool.can_redo
    value, ok = label_layer.dataProvider().sample(pixel_centre(15, 20), 1)
    assert ok and value == 3  # QGIS sees the redone pixels at once

    assert tool.undo() and tool.can_redo
    mouse.stroke([pixel_centre(40, 40)])  # a new stroke: what was undone can no longer come back
    assert not tool.can_redo and not tool.redo()
    assert pixels(path)[10][15] == 0 and pixels(path)[40][40] == 3


def test_keys_ask_for_a_class_the_eraser_and_a_brush_size(tool):
    asked = []
    tool.class_key.connect(lambda v: asked.append(("class", v)))
    tool.eraser_key.connect(lambda: asked.append(("eraser",)))
    tool.size_key.connect(lambda d: asked.append(("size", d)))
    events = [key(Qt.Key_3, text="3"), key(Qt.Key_7, Qt.KeypadModifier, "7"), key(Qt.Key_E, text="e"),
              key(Qt.Key_BracketRight, text="]"), key(Qt.Key_BracketLeft, text="[")]
    for event in events:
        tool.keyPressEvent(event)
        assert event.isAccepted()
    assert asked == [("class", 3), ("class", 7), ("eraser",), ("size", 1), ("size", -1)]
    others = (key(Qt.Key_3, Qt.ControlModifier, "3"), key(Qt.Key_Space, text=" "), key(Qt.Key_0, text="0"))
    for other in others:
        tool.keyPressEvent(other)  # left to QGIS (its shortcuts, panning with the space bar)
        assert not other.isAccepted()
    assert len(asked) == 5


def test_brush_size_steps_are_a_quarter_and_stay_in_range():
    assert [brush_panel.next_size(s, 1) for s in (1, 4, 5, 20, 199, 200)] == [2, 5, 6, 25, 200, 200]
    assert [brush_panel.next_size(s, -1) for s in (1, 2, 5, 25)] == [1, 1, 4, 19]
    size, sizes = 1, []
    while size < 100:  # a few presses from a fine line to a broad fill
        size = brush_panel.next_size(size, 1)
        sizes.append(size)
    assert len(sizes) < 20
