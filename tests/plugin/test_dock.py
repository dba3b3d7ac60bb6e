"""The dock end to end: label layer, classes, engine discovery, Train and segment, Cancel, errors.

Tests named ``..._real_engine`` start ``python -m engine`` (with torch) on a 96 x 96 px scene and keep
the training tiny (20 steps of 64 px tiles).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from osgeo import gdal
from plugin_helpers import plugin_module, wait_until
from qgis.core import (
    Qgis,
    QgsApplication,
    QgsPalettedRasterRenderer,
    QgsProject,
    QgsRasterLayer,
    QgsRasterRange,
    QgsRectangle,
    QgsSingleBandGrayRenderer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QMessageBox

dock_module = plugin_module("ui.dock")
label_raster = plugin_module("ui.label_raster")
result_layers = plugin_module("ui.result_layers")
settings = plugin_module("ui.settings")
engine_process = plugin_module("ui.engine_process")


@pytest.fixture()
def scene(tiny_scene, tmp_path) -> dict:
    """A private copy of the tiny scene (runs write beside the labels)."""
    copied = {}
    for key, path in tiny_scene.items():
        for suffix in ("", ".aux.xml"):
            if os.path.exists(path + suffix):
                shutil.copy(path + suffix, tmp_path / (Path(path).name + suffix))
        copied[key] = str(tmp_path / Path(path).name)
    return copied


@pytest.fixture()
def image_layer(scene, clean_project) -> QgsRasterLayer:
    layer = QgsRasterLayer(scene["image"], "image", "gdal")
    assert layer.isValid()
    clean_project.addMapLayer(layer)
    return layer


def make_dock(qgis_iface, engine_python: str):
    settings.set_engine_python(engine_python)
    dock = dock_module.SemiSegDock(qgis_iface)
    dock.detect_engine()
    wait_until(lambda: dock.engine is not None, timeout_s=120, what="the engine probe")
    return dock


@pytest.fixture()
def dock(qgis_iface, image_layer):
    dock = make_dock(qgis_iface, sys.executable)
    dock.layers.set_image_layer(image_layer)
    yield dock
    dock.close_down()
    dock.deleteLater()


def messages(qgis_iface, level) -> list[str]:
    return qgis_iface.messageBar().get_messages(level)


def ready_to_train(dock, scene, steps: int = 10) -> None:
    """The scene's label raster picked in the dock, and a tiny CPU training: ``steps`` steps of 64 px
    tiles."""
    labels = QgsRasterLayer(scene["labels"], "labels", "gdal")
    QgsProject.instance().addMapLayer(labels)
    dock.layers.set_label_layer(labels)
    dock.train.steps_spin.setValue(steps)
    dock.train.tile_spin.setValue(64)
    dock.train.device_combo.setCurrentIndex(dock.train.device_combo.findData("cpu"))


def wait_for_task(dock, timeout_s: float = 300.0):
    results = []
    dock.task.completed.connect(results.append)
    wait_until(lambda: results, timeout_s=timeout_s, what="the engine task")
    return results[0]


def test_new_label_layer_is_a_geotiff_on_the_image_grid(dock, scene, tmp_path):
    layer = dock.create_label_layer(tmp_path / "my_labels")
    path = tmp_path / "my_labels.tif"
    assert layer.isValid() and layer.source() == str(path)
    assert QgsProject.instance().mapLayer(layer.id()) is layer
    assert dock.layers.label_layer() is layer and dock.tool.layer is layer
    image, labels = gdal.Open(scene["image"]), gdal.Open(str(path))
    assert labels.GetDriver().ShortName == "GTiff"
    assert (labels.RasterXSize, labels.RasterYSize, labels.GetGeoTransform()) == (
        image.RasterXSize, image.RasterYSize, image.GetGeoTransform())
    assert labels.GetSpatialRef().IsSame(image.GetSpatialRef())
    assert isinstance(layer.renderer(), QgsPalettedRasterRenderer)
    assert [c.value for c in layer.renderer().classes()] == [1, 2]  # 0 stays transparent
    assert [c.name for c in dock.classes.classes()] == ["class 1", "class 2"]


def test_class_edits_are_stored_in_the_label_file(dock, tmp_path, monkeypatch):
    layer = dock.create_label_layer(tmp_path / "labels.tif")
    dock.classes.add_class()
    dock.classes.table.item(0, 1).setText("water")
    dock.classes.table.cellWidget(2, 0).setColor(QColor(10, 20, 30))
    stored = label_raster.read_classes(tmp_path / "labels.tif")
    assert [c.name for c in stored] == ["water", "class 2", "class 3"]
    assert stored[2].colour == (10, 20, 30)
    assert [c.label for c in layer.renderer().classes()] == ["water", "class 2", "class 3"]

    writer = label_raster.LabelRasterWriter(tmp_path / "labels.tif")
    writer.write(label_raster.Window(0, 0, 3, 1), bytes([1, 2, 3]))
    writer.close()
    monkeypatch.setattr(QMessageBox, "question", lambda *args: QMessageBox.Yes)
    dock.classes.select_value(2)
    dock.classes.remove_button.click()
    assert [c.name for c in label_raster.read_classes(tmp_path / "labels.tif")] == ["water", "class 3"]
    assert list(gdal.Open(str(tmp_path / "labels.tif")).ReadRaster(0, 0, 3, 1)) == [1, 0, 2]

    # names stay distinct and never blank: the legend, vector labels and the sample's picker name classes
    dock.classes.add_class()  # not a second "class 3"
    dock.classes.table.item(1, 1).setText("  ")  # blank: its number's name, shown as stored
    dock.classes.table.item(2, 1).setText("Water")
    assert [dock.classes.table.item(r, 1).text() for r in range(3)] == ["water", "class 2", "Water 2"]
    assert [c.name for c in label_raster.read_classes(tmp_path / "labels.tif")] == ["water", "class 2",
                                                                                   "Water 2"]


def test_missing_torch_is_explained_in_the_dock(qgis_iface, image_layer, fake_python):
    engine_process.forget_torch_checks()
    python = fake_python("no_torch")
    dock = make_dock(qgis_iface, python)
    try:
        assert "cannot import torch" in dock.train.engine_label.text()
        assert not dock.train.train_button.isEnabled()
        assert dock.start_training() is None
        assert any("cannot import torch" in m for m in messages(qgis_iface, Qgis.Warning))
    finally:
        dock.close_down()
        settings.set_engine_python("")


@pytest.mark.slow
def test_train_and_segment_real_engine_adds_styled_georeferenced_results(dock, scene, image_layer):
    ready_to_train(dock, scene)
    assert [c.name for c in dock.classes.classes()] == ["class 1", "class 2", "class 3"]
    task = dock.start_training()
    assert task is not None and dock.train.cancel_button.isEnabled()
    result = wait_for_task(dock)
    assert result.ok, result.user_message() + result.stderr_tail

    group = QgsProject.instance().layerTreeRoot().findGroup("SemiSeg")
    assert group is not None
    found = [node.layer() for node in group.findLayers()]
    assert [layer.customProperty("semiseg/role") for layer in found] == ["prediction", "confidence"]
    prediction, confidence = found
    assert isinstance(prediction.renderer(), QgsPalettedRasterRenderer)
    assert [(c.value, c.label) for c in prediction.renderer().classes()] == [
        (1, "class 1"), (2, "class 2"), (3, "class 3")]
    assert isinstance(confidence.renderer(), QgsSingleBandGrayRenderer)
    for layer in found:
        assert layer.crs() == image_layer.crs()
        assert layer.extent() == image_layer.extent()
        assert (layer.width(), layer.height()) == (image_layer.width(), image_layer.height())
    run_folder = Path(prediction.source()).parent
    assert run_folder.parent == Path(scene["labels"]).parent / "semiseg_runs"
    assert (run_folder / "model.semiseg").is_file()
    assert "mIoU" in dock.results.metrics_label.text()
    assert "the map on held-out strokes" in dock.results.metrics_label.text()  # the map as delivered
    assert dock.results.apply_button.isEnabled() and dock.results.model_path

    # Running again replaces the layers of that image; the files of the first run stay.
    first_files = [prediction.source(), confidence.source()]
    again = result_layers.add_results(QgsProject.instance(), *first_files, scene["image"], "image")
    assert len(result_layers.result_layers(QgsProject.instance())) == 2
    assert set(result_layers.result_layers(QgsProject.instance())) == set(again)
    assert all(Path(path).is_file() for path in first_files)

    dock.save_model(Path(scene["image"]).parent / "kept")
    kept = Path(scene["image"]).parent / "kept.semiseg"
    assert kept.is_file()

    # "Load model..." (e.g. after a QGIS restart): a missing file is refused, a saved one is used.
    dock.results.show_run({}, "")
    assert not dock.results.apply_button.isEnabled()
    assert not dock.load_model(kept.with_name("missing.semiseg"))
    assert not dock.results.apply_button.isEnabled()
    assert dock.load_model(kept)
    assert dock.results.model_path == str(kept) and dock.results.apply_button.isEnabled()
    assert "kept.semiseg" in dock.results.metrics_label.text()

    # Train again after the first run: it continues from that model (same image, method and preset)
    again = dock.start_training()
    assert again.job.warm_start == str(run_folder / "model.semiseg")
    continued = wait_for_task(dock)
    assert continued.ok, continued.user_message() + continued.stderr_tail
    assert (continued.done["metrics"]["warm_start"]["model"] == "model.semiseg"
            and continued.done["metrics"]["steps"] == 10)  # the Advanced steps, when set, still rule
    dock.train.continue_check.setChecked(False)  # off: from scratch
    assert dock.start_training().job.warm_start == ""
    assert wait_for_task(dock).ok
    dock.train.continue_check.setChecked(True)
    dock.train.preset_combo.setCurrentIndex(dock.train.preset_combo.findData("balanced"))
    assert dock._model_to_continue(scene["image"], dock.train.options()) == ""  # another preset
    dock.train.preset_combo.setCurrentIndex(dock.train.preset_combo.findData("fast"))
    dock.load_model(kept)

    # "Apply model to another raster": here the same image, so its layers are replaced once more.
    task = dock.apply_model(image_layer)
    assert task is not None
    applied = wait_for_task(dock, timeout_s=120)
    assert applied.ok, applied.user_message() + applied.stderr_tail
    now = result_layers.result_layers(QgsProject.instance())
    assert sorted(layer.customProperty("semiseg/role") for layer in now) == ["confidence", "prediction"]
    assert all("-applied-" in layer.source() for layer in now)


def show_part_of(dock, layer, qgis_parent, left: float, top: float, size: float):
    """Point the (shown) map view at the square of ``size`` map units whose top-left is ``left``, ``top``
    of ``layer``'s extent, as fractions of it."""
    qgis_parent.show()
    QgsApplication.processEvents()
    e = layer.extent()
    x0, y1 = e.xMinimum() + left * e.width(), e.yMaximum() - top * e.height()
    dock.canvas.setDestinationCrs(layer.crs())
    dock.canvas.setExtent(QgsRectangle(x0, y1 - size, x0 + size, y1))
    dock.canvas.refresh()
    QgsApplication.processEvents()


def test_segmenting_the_visible_area_needs_the_view_on_the_image(dock, image_layer, scene, qgis_iface,
                                                                qgis_parent):
    labels = QgsRasterLayer(scene["labels"], "labels", "gdal")  # refused before the engine
    QgsProject.instance().addMapLayer(labels)
    dock.layers.set_label_layer(labels)
    dock.train.set_segment("view")
    e = image_layer.extent()
    show_part_of(dock, image_layer, qgis_parent, 3.0, 0.0, e.width() / 4)  # three widths to the east
    assert dock.start_training() is None and dock.task is None
    assert any("shows none of image" in m and "Whole raster" in m for m in messages(qgis_iface, Qgis.Warning))


def test_scores_of_an_area_map_say_so():
    html = plugin_module("ui.results_panel").metrics_html
    scored = {"map_val_miou": 0.8, "map_val_oa": 0.9, "val_miou": 0.7}
    assert "the map on held-out strokes" in html(scored) and "segmented area" not in html(scored)
    area = {**scored, "predict_area": {"row": 0, "col": 0, "height": 8, "width": 8}}
    assert "the map on held-out strokes in the segmented area" in html(area)
    # no held-out stroke in the area: the network's own score on all of them, said as such
    assert "(held-out strokes)" in html({"val_miou": 0.7, "predict_area": area["predict_area"]})


def test_class_areas_read_largest_first():
    areas_html = plugin_module("ui.results_panel").areas_html
    summary = {"unit": "hectare", "classes": {"water": {"pixels": 10, "share": 0.1, "hectares": 0.09},
                                              "field <1>": {"pixels": 90, "share": 0.9, "hectares": 812.4}}}
    assert areas_html(summary) == "<b>In the map:</b> field &lt;1&gt; 812 ha (90.0 %), water 0.09 ha (10.0 %)"
    no_crs = {"unit": None, "classes": {"a": {"pixels": 1234, "share": 1.0}}}
    assert areas_html(no_crs, area=True) == "<b>In the segmented area:</b> a 1,234 px (100.0 %)"
    assert areas_html(None) == "" and areas_html({"classes": {}}) == ""


def test_the_sample_dialog_offers_the_same_points_per_class_or_a_total_by_area(qgis_parent):
    dialog = plugin_module("ui.sample_dialog").SampleDialog(4, 50, 0, False, qgis_parent)
    assert dialog.values() == (50, 0) and not dialog.total_spin.isEnabled()
    assert "200 points: 50 in each of the 4 classes" in dialog.summary.text()
    dialog.area_button.setChecked(True)
    assert dialog.total_spin.isEnabled() and dialog.values() == (50, 400)  # twice the floor to start
    assert dialog.per_class_label.text() == "At least, per class"
    dialog.per_class_spin.setValue(150)  # the total follows the floor: each class keeps its 150
    assert dialog.values() == (150, 600) and "at least 150 in each of the 4 classes" in dialog.summary.text()
    dialog.total_spin.setValue(1000)
    assert dialog.values() == (150, 1000)
    jobs = plugin_module("ui.jobs")
    args = jobs.SampleJob("map.tif", "s.gpkg", 150, total=1000).engine_args()
    assert args[args.index("--total") + 1] == "1000" and args[args.index("--min-per-class") + 1] == "150"
    assert "--per-class" in jobs.SampleJob("map.tif", "s.gpkg", 50).engine_args()


def test_an_accuracy_report_reads_as_estimates_with_intervals():
    accuracy_html = plugin_module("ui.results_panel").accuracy_html
    report = {"units": 1200, "points": True, "unit": "hectare",
              "overall_accuracy": {"estimate": 0.9465, "ci95": 0.0185},
              "classes": {"road & rail": {"users_accuracy": {"estimate": 0.88, "ci95": 0.074},
                                          "producers_accuracy": {"estimate": 0.7487, "ci95": None},
                                          "estimated": {"estimate": 235086.2, "ci95": 68416.9},
                                          "mapped": 200000.0},
                          "lake": {"users_accuracy": None, "producers_accuracy": None,
                                   "estimated": {"estimate": 0.0, "ci95": None}, "mapped": 12.0}}}
    assert accuracy_html(report, ["mind the <gap>"]).split("<br>") == [
        "<b>Overall accuracy 0.95 ± 0.02 from 1,200 checked points (95 % intervals)</b>",
        "road &amp; rail: user's 0.88 ± 0.07, producer's 0.75, 235,086 ± 68,417 ha (mapped 200,000)",
        "lake: user's –, producer's –, 0 ha (mapped 12)",
        "<b>Warning:</b> mind the &lt;gap&gt;"]
    wilson = {"estimate": 1.0, "ci95": 0.0, "low": 0.867, "high": 1.0}
    with_bounds = {**report, "classes": {"lake": {"users_accuracy": wilson}}}
    assert "lake: user's 1.00 (0.87–1.00), producer's –" in accuracy_html(with_bounds, [])
    pixels = {**report, "unit": "pixel", "points": False}
    text = accuracy_html(pixels, [])
    assert "from 1,200 reference pixels" in text and " px (mapped" in text


@pytest.mark.slow
def test_spots_and_polygons_of_the_map_real_engine(dock, scene, image_layer, qgis_iface, tmp_path):
    ready_to_train(dock, scene, steps=5)
    assert not dock.results.polygons_button.isEnabled()  # no map yet
    assert dock.start_training() is not None
    trained = wait_for_task(dock)
    assert trained.ok, trained.user_message() + trained.stderr_tail
    areas = trained.done["metrics"]["class_areas"]
    assert dock.results.areas_label.text().startswith("<b>In the map:</b> ")
    assert all(name in dock.results.areas_label.text() for name in areas["classes"])
    assert dock.results.polygons_button.isEnabled()
    # where to paint next: each press zooms to the next least sure place and boxes it
    spots = trained.done["metrics"]["spots"]
    assert len(spots) == 10 and dock.results.spot_button.isEnabled()
    for i in range(11):  # all ten, then the first again
        shown = dock.show_next_spot()
        assert shown == spots[i % 10]
        box = QgsRectangle(*shown["bounds"])  # the canvas has the image's CRS here
        view = dock.canvas.extent()  # the box and its surroundings, six times its size (the canvas's
        assert view.contains(box)    # aspect ratio widens the other side)
        assert min(view.width() / box.width(), view.height() / box.height()) == pytest.approx(6)
        assert dock.marker.band is not None and dock.marker.band.asGeometry().boundingBox() == box
        assert f"Place {i % 10 + 1} of 10" in dock.train.status_label.text()
    assert dock.results.spot_button.text() == "Where to paint next (2 of 10)"
    prediction = Path(dock.results.prediction)
    assert prediction.name == "prediction.tif" and prediction.is_file()

    for attempt in (1, 2):  # again: a second file beside the first, and the layer replaced
        task = dock.make_polygons(4)
        assert task is not None and task.job.min_pixels == 4
        made = wait_for_task(dock, timeout_s=120)
        assert made.ok, made.user_message() + made.stderr_tail
        polygons = [layer for layer in result_layers.result_layers(QgsProject.instance())
                    if layer.customProperty("semiseg/role") == "polygons"]
        assert len(polygons) == 1
        layer = polygons[0]
        expected = prediction.parent / ("polygons.gpkg" if attempt == 1 else "polygons-2.gpkg")
        assert Path(layer.source().split("|")[0]) == expected
        assert layer.featureCount() == made.done["features"] > 0
        assert layer.crs() == image_layer.crs()
        assert [(c.value(), c.label()) for c in layer.renderer().categories()] == [
            (1, "class 1"), (2, "class 2"), (3, "class 3")]
        group = QgsProject.instance().layerTreeRoot().findGroup("SemiSeg")
        assert group.findLayers()[0].layer() is layer  # on top of the map
        # the polygons cover the map's area (small patches change class, not the total)
        total = sum(e["area_m2"] for e in made.done["per_class"].values()) / 1e4
        assert total == pytest.approx(sum(e["hectares"] for e in areas["classes"].values()), rel=1e-9)
    assert "polygons" in dock.train.status_label.text()

    # an accuracy sample: points to check, then the accuracy from the checked ones
    assert dock.results.sample_button.isEnabled() and not dock.results.assess_button.isEnabled()
    assert dock.make_sample(8) is not None
    drawn = wait_for_task(dock, timeout_s=120)
    assert drawn.ok, drawn.user_message() + drawn.stderr_tail
    sample = next(layer for layer in result_layers.result_layers(QgsProject.instance())
                  if layer.customProperty("semiseg/role") == "sample")
    assert Path(sample.source().split("|")[0]) == prediction.parent / "accuracy-sample.gpkg"
    assert sample.featureCount() == drawn.done["points"] == 24 and sample.isEditable()
    assert dock.results.assess_button.isEnabled() and "points to check" in dock.train.status_label.text()
    reference = sample.fields().indexOf("reference")
    assert sample.editorWidgetSetup(reference).type() == "ValueMap"
    with rasterio.open(scene["truth"]) as ds:
        truth, inverse = ds.read(1), ~ds.transform
    points = sorted(sample.getFeatures(), key=lambda f: f["id"])

    def truth_at(f) -> int:
        col, row = inverse * (f.geometry().asPoint().x(), f.geometry().asPoint().y())
        return int(truth[int(row), int(col)])

    for f in points[2:]:  # checked in the form: the edits are not saved yet
        sample.changeAttributeValue(f.id(), reference, truth_at(f))
    assert sample.isModified()
    # Next point to check: the first one left, its pixel boxed in view, the picker blank
    assert dock.results.check_button.isEnabled() and not dock.results.check_row.isEnabled()
    assert dock.show_next_check() == points[0]["id"]
    box = dock.marker.band.asGeometry().boundingBox()
    assert box.contains(points[0].geometry().asPoint())
    assert box.width() == pytest.approx(image_layer.rasterUnitsPerPixelX())  # one pixel: the sample unit
    assert dock.canvas.extent().contains(box)
    assert min(dock.canvas.extent().width() / box.width(), dock.canvas.extent().height() / box.height()) \
        == pytest.approx(41)
    assert "(2 of 24 still to check)" in dock.train.status_label.text()
    assert dock.results.check_row.isEnabled() and dock.results.check_combo.currentData() == 0
    assert not dock.results.check_set_button.isEnabled()  # a class must be picked, not the map's taken
    for point in points[:2]:  # answered in the dock: Set, next
        combo = dock.results.check_combo
        combo.setCurrentIndex(combo.findData(truth_at(point)))
        dock.results.check_set_button.click()
        assert sample.getFeature(point.id())["reference"] == truth_at(point)
    assert dock.sample.shown == points[1]["id"] and dock.marker.band is None
    assert "All 24 points are checked" in dock.train.status_label.text()
    assert not dock.results.check_row.isEnabled()
    task = dock.assess_accuracy()
    assert task is not None and task.job.labels == scene["labels"]  # the run's labels: points on them warned
    assessed = wait_for_task(dock, timeout_s=120)
    assert assessed.ok, assessed.user_message() + assessed.stderr_tail
    assert not sample.isModified()  # saved for the engine to read
    assert assessed.done["units"] == 24
    assert isinstance(assessed.done["on_training_labels"], int)
    assert (prediction.parent / "accuracy.json").is_file() and (prediction.parent / "accuracy.csv").is_file()
    text = dock.results.accuracy_label.text()
    assert dock.results.accuracy_label.isVisibleTo(dock.results) and "Overall accuracy" in text
    assert all(f"{name}: user's" in text for name in ("class 1", "class 2", "class 3"))
    assert "Overall accuracy" in dock.train.status_label.text()
    # the labels moved away since: they only serve that warning, so the assessment goes on without them
    aside = Path(scene["labels"]).rename(tmp_path / "labels-aside.tif")
    try:
        task = dock.assess_accuracy()
        assert task is not None and task.job.labels == ""
        assert any("no longer there" in m for m in messages(qgis_iface, Qgis.Info))
        again = wait_for_task(dock, timeout_s=120)
        assert again.ok and again.done["units"] == 24, again.user_message()
    finally:
        aside.rename(scene["labels"])

    # the project saved, closed and opened again (days later): the dock picks up where it was left
    reopen_and_check(dock, qgis_iface, tmp_path, prediction, areas, spots, scene, assessed.done)

    # a new run replaces the image's polygons with its other layers; the checked sample stays
    assert dock.start_training() is not None
    assert wait_for_task(dock).ok
    roles = sorted(layer.customProperty("semiseg/role") for layer in result_layers.result_layers(
        QgsProject.instance()))
    assert roles == ["confidence", "prediction", "sample"]
    assert not dock.results.assess_button.isEnabled()  # that sample was drawn from the old map
    assert not dock.results.accuracy_label.isVisibleTo(dock.results)


def reopen_and_check(dock, qgis_iface, tmp_path, prediction, areas, spots, scene, assessed) -> None:
    """Save the project, close it (the dock forgets the map), open it again in this dock and in a new one
    (QGIS restarted): the last map's scores, class areas, places, model, layers picked, its sample and
    last assessment come back; a check changed since that assessment hides it."""
    project = QgsProject.instance()
    model = dock.results.model_path
    last_model = dock.last_model
    accuracy_text = dock.results.accuracy_label.text()
    assert project.write(str(tmp_path / "reopened.qgz"))
    project.clear()
    assert not dock.results.polygons_button.isEnabled() and not dock.results.assess_button.isEnabled()
    assert not dock.results.apply_button.isEnabled() and dock.last_model is None
    assert not dock.results.spot_button.isEnabled() and dock.sample.layer() is None
    for fresh in (False, True):
        assert project.read(str(tmp_path / "reopened.qgz"))
        here = make_dock(qgis_iface, sys.executable) if fresh else dock
        try:
            assert here.results.prediction == str(prediction)
            assert all(name in here.results.areas_label.text() for name in areas["classes"])
            assert here.spots == spots and here.results.spot_button.isEnabled()
            assert here.show_next_spot() == spots[0]
            assert here.results.model_path == model and here.last_model == last_model
            assert "mIoU" in here.results.metrics_label.text()
            assert layer_path(here.layers.image_layer()) == scene["image"]
            assert layer_path(here.layers.label_layer()) == scene["labels"]
            assert here.map_labels == (scene["labels"], "")
            assert here.results.polygons_button.isEnabled() and here.results.assess_button.isEnabled()
            assert here.results.accuracy_label.text() == accuracy_text  # the last assessment, still true
            assert here.show_next_check() is None  # every point checked
            assert "All 24 points are checked" in here.train.status_label.text()
        finally:
            if fresh:
                here.close_down()
                here.deleteLater()
    # a project saved before maps were recorded: the run folder's metrics.json and model stand in
    map_layer = next(layer for layer in result_layers.result_layers(project)
                     if layer.customProperty("semiseg/role") == "prediction")
    record = map_layer.customProperty("semiseg/record")
    map_layer.removeCustomProperty("semiseg/record")
    assert project.write()
    assert project.read(str(tmp_path / "reopened.qgz"))
    assert dock.results.prediction == str(prediction) and dock.spots == spots
    assert dock.results.model_path == model and "mIoU" in dock.results.metrics_label.text()
    assert dock.last_model is None and dock.map_labels == ("", "")  # method and labels unknown
    assert dock.results.assess_button.isEnabled()
    next(layer for layer in result_layers.result_layers(project)
         if layer.customProperty("semiseg/role") == "prediction").setCustomProperty("semiseg/record", record)
    sample = dock.sample.layer()
    first = min(sample.getFeatures(), key=lambda f: f["id"])
    reference = sample.fields().indexOf("reference")
    sample.startEditing()
    sample.changeAttributeValue(first.id(), reference, first["reference"] % 3 + 1)  # a check changed
    assert sample.commitChanges()
    assert project.write()
    assert project.read(str(tmp_path / "reopened.qgz"))
    assert dock.results.assess_button.isEnabled()
    assert not dock.results.accuracy_label.isVisibleTo(dock.results)
    assert assessed["units"] == 24


def layer_path(layer) -> str:
    return layer.source().split("|")[0] if layer is not None else ""


@pytest.mark.slow
def test_train_and_segment_the_visible_area_real_engine(dock, scene, image_layer, qgis_parent):
    ready_to_train(dock, scene)
    dock.train.set_segment("view")
    e = image_layer.extent()
    show_part_of(dock, image_layer, qgis_parent, 0.5, 0.25, e.width() / 3)
    try:
        task = dock.start_training()
        assert task is not None and "--area" in task.job.engine_args()
        assert settings.last_choice("segment", "whole") == "view"  # remembered for the next session
    finally:
        settings.remember_choice("segment", "whole")
    result = wait_for_task(dock)
    assert result.ok, result.user_message() + result.stderr_tail
    prediction, confidence = sorted(result_layers.result_layers(QgsProject.instance()),
                                    key=lambda layer: layer.customProperty("semiseg/role"), reverse=True)
    shown = dock.canvas.mapSettings().visibleExtent().intersect(e)
    for layer in (prediction, confidence):
        part = layer.extent()
        assert "visible area" in layer.name()
        assert layer.width() < image_layer.width() and layer.height() < image_layer.height()
        # the pixels the view touches, on the image's grid: within one pixel of the view's part of it
        px = image_layer.rasterUnitsPerPixelX()
        assert part.contains(shown) and part.width() - shown.width() <= 2 * px
        assert ((part.xMinimum() - e.xMinimum()) / px) == pytest.approx(
            round((part.xMinimum() - e.xMinimum()) / px), abs=1e-6)


@pytest.mark.slow
def test_a_model_applied_to_unlike_imagery_warns_in_the_dock_real_engine(dock, scene, image_layer,
                                                                         qgis_iface):
    ready_to_train(dock, scene, steps=5)
    assert dock.start_training() is not None
    trained = wait_for_task(dock)
    # (the scene's classes with one or two strokes are validated on pieces of them: said, and nothing else)
    assert trained.ok and [w for w in trained.warnings if "separate strokes" not in w] == []
    # the same scene as reflectance (0..1) instead of 0..10000: the model has never seen such values
    rescaled = Path(scene["image"]).with_name("reflectance.tif")
    gdal.Translate(str(rescaled), scene["image"], outputType=gdal.GDT_Float32, scaleParams=[[0, 10000, 0, 1]])
    other = QgsRasterLayer(str(rescaled), "reflectance", "gdal")
    QgsProject.instance().addMapLayer(other)
    assert dock.apply_model(other) is not None
    applied = wait_for_task(dock, timeout_s=120)
    assert applied.ok and len(applied.warnings) == 1 and "band values unlike" in applied.warnings[0]
    assert "band values unlike" in dock.results.warnings_label.text()
    assert not dock.results.warnings_label.isHidden()
    assert "1 warning(s)" in dock.train.status_label.text()
    assert any("band values unlike" in m for m in messages(qgis_iface, Qgis.Warning))
    assert dock.apply_model(image_layer) is not None  # a new run: the last one's warnings go
    assert dock.results.warnings_label.isHidden()
    assert wait_for_task(dock, timeout_s=120).ok


def test_a_damaged_map_record_in_the_project_leaves_a_clean_dock(qgis_iface, scene, clean_project):
    """A project whose map record was hand-edited (here: a method without its preset, a text for the
    time) still opens the dock: nothing picked up, one warning, no exception."""
    layer = QgsRasterLayer(scene["labels"], "old prediction", "gdal")
    layer.setCustomProperty("semiseg/role", "prediction")
    layer.setCustomProperty("semiseg/record", '{"method": "supervised", "image": "elsewhere.tif"}')
    clean_project.addMapLayer(layer)
    dock = make_dock(qgis_iface, sys.executable)
    try:
        assert dock.results.prediction == "" and dock.last_model is None
        assert any("could not pick up" in m for m in messages(qgis_iface, Qgis.Warning))
        layer.setCustomProperty("semiseg/record", '{"made": "yesterday"}')
        dock._on_project_read(None)  # as when a project is opened: the same guard
        assert dock.results.prediction == ""
        layer.setCustomProperty("semiseg/record", '{"image": "elsewhere.tif", "made": 1}')
        dock._on_project_read(None)  # a record that is only short of facts: its map is picked up
        assert dock.results.prediction == scene["labels"] and dock.spots == []
    finally:
        dock.close_down()
        dock.deleteLater()


def test_picking_another_image_takes_up_its_own_map(qgis_iface, scene, clean_project, tmp_path):
    """A project with maps of several images: the dock opens on the newest map; picking another image
    takes up that image's newest map (scores, model, places, labels, sample), picking an image without
    a map leaves the dock as it is, and a map applied with a model trained here shows that training."""
    maps = {}
    for i, name in enumerate(("a", "b", "c")):
        image = tmp_path / f"image_{name}.tif"
        shutil.copy(scene["image"], image)
        labels = tmp_path / f"labels_{name}.tif"
        shutil.copy(scene["labels"], labels)
        run = tmp_path / f"run_{name}"
        run.mkdir()
        prediction = run / "prediction.tif"
        shutil.copy(scene["labels"], prediction)
        (run / "model.semiseg").write_bytes(b"model")
        image_layer = QgsRasterLayer(str(image), f"image {name}", "gdal")
        labels_layer = QgsRasterLayer(str(labels), f"labels {name}", "gdal")
        layer = QgsRasterLayer(str(prediction), f"image_{name} prediction", "gdal")
        layer.setCustomProperty("semiseg/role", "prediction")
        record = {"image": str(image), "title": f"image_{name}", "labels": str(labels), "label_field": "",
                  "method": "supervised", "preset": "fast", "model": str(run / "model.semiseg"),
                  "metrics": {"val_miou": 0.5 + i / 10}, "spots": [{"rank": i}], "made": 100.0 + i}
        if name == "c":  # applied with a's model: no training of its own
            record = {"image": str(image), "title": "image_c", "model": maps["a"]["model"],
                      "spots": [], "made": 99.0}
        layer.setCustomProperty("semiseg/record", json.dumps(record))
        clean_project.addMapLayers([image_layer, labels_layer, layer])
        maps[name] = {**record, "prediction": str(prediction), "image_layer": image_layer,
                      "labels_layer": labels_layer}
    no_map = QgsRasterLayer(scene["image"], "image without a map", "gdal")
    clean_project.addMapLayer(no_map)
    dock = make_dock(qgis_iface, sys.executable)
    try:
        b = maps["b"]
        assert dock.results.prediction == b["prediction"]  # the newest map
        assert dock.layers.image_layer() is b["image_layer"]
        assert dock.layers.label_layer() is b["labels_layer"]
        for name in ("a", "b", "a"):
            m = maps[name]
            dock.layers.set_image_layer(m["image_layer"])
            assert dock.results.prediction == m["prediction"] and dock.spots == m["spots"]
            assert dock.layers.label_layer() is m["labels_layer"]
            assert dock.results.model_path == m["model"] and dock.last_model[1] == m["model"]
            assert f"mIoU {m['metrics']['val_miou']:.2f}" in dock.results.metrics_label.text()
        assert "The map of image a (run_a) is under Results" in dock.train.status_label.text()
        dock.layers.set_image_layer(no_map)  # no map of its own: the dock keeps the last one
        assert dock.results.prediction == maps["a"]["prediction"]
        dock.layers.set_image_layer(maps["c"]["image_layer"])  # applied with a's model: a's training
        assert dock.results.prediction == maps["c"]["prediction"] and dock.spots == []
        assert dock.results.model_path == maps["a"]["model"]
        assert "mIoU 0.50" in dock.results.metrics_label.text()
        assert dock.layers.label_layer() is maps["a"]["labels_layer"]  # c's map has no labels of its own
    finally:
        dock.close_down()
        dock.deleteLater()


def test_vector_labels_need_a_class_field_and_cannot_be_painted(dock, clean_project):
    sample = Path(__file__).resolve().parents[2] / "resources" / "sample" / "landsat_rgb_labels.gpkg"
    vector = QgsVectorLayer(str(sample), "scribbles", "ogr")
    assert vector.isValid()
    clean_project.addMapLayer(vector)
    dock.layers.set_label_layer(vector)
    assert dock.layers.label_field() == "class"
    dock.layers.set_label_layer(vector, "colour")  # a map's record names its field: picked again
    assert dock.layers.label_field() == "colour"
    dock.layers.set_label_layer(vector, "no such field")
    assert dock.layers.label_field() == "colour"
    dock.layers.set_label_layer(vector, "class")
    assert dock.tool.layer is None and not dock.brush.isEnabled() and not dock.classes.isEnabled()
    dock.set_painting(True)
    assert dock.canvas.mapTool() is not dock.tool


def _engine_labels(dock) -> str:
    """Start training (a fake engine) and give the --labels the dock passed it."""
    task = dock.start_training()
    assert task is not None
    args = task.job.engine_args()
    return args[args.index("--labels") + 1]


def _fake_dock(qgis_iface, fake_python, image_layer, labels):
    """A dock on a slow fake engine with ``image_layer`` and ``labels`` picked."""
    engine_process.forget_torch_checks()
    dock = make_dock(qgis_iface, fake_python("slow"))
    dock.layers.set_image_layer(image_layer)
    dock.layers.set_label_layer(labels)
    return dock


def _gpkg_over(image_layer, path: Path, layers: dict[str, tuple[str, list[str]]], source: str):
    """A GeoPackage at ``path`` with, per layer name, a text ``field`` and one triangle over the image's
    extent for each of its ``values``; its layer ``source`` added to the project, and returned."""
    from osgeo import ogr, osr

    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    srs = osr.SpatialReference()
    srs.ImportFromWkt(image_layer.crs().toWkt())
    e = image_layer.extent()
    triangle = (f"POLYGON(({e.xMinimum()} {e.yMinimum()}, {e.xMaximum()} {e.yMinimum()}, "
                f"{e.xMaximum()} {e.yMaximum()}, {e.xMinimum()} {e.yMinimum()}))")
    for name, (field, values) in layers.items():
        layer = ds.CreateLayer(name, srs, ogr.wkbPolygon)
        layer.CreateField(ogr.FieldDefn(field, ogr.OFTString))
        for value in values:
            f = ogr.Feature(layer.GetLayerDefn())
            f.SetGeometry(ogr.CreateGeometryFromWkt(triangle))
            f.SetField(field, value)
            layer.CreateFeature(f)
    ds = layer = f = None
    vector = QgsVectorLayer(source, "scribbles", "ogr")
    assert vector.isValid()
    QgsProject.instance().addMapLayer(vector)
    return vector


def test_a_layer_of_a_multi_layer_geopackage_reaches_the_engine_by_name(qgis_iface, image_layer, fake_python,
                                                                        tmp_path):
    """Vector labels that are one layer of a GeoPackage holding several: the engine is told which layer
    (``FILE|layername=NAME``, as QGIS writes the source), not left to read the file's first one."""
    path = tmp_path / "project.gpkg"
    vector = _gpkg_over(image_layer, path, {"aoi": ("name", ["forest"]), "scribbles": ("class", ["forest"])},
                        f"{path}|layername=scribbles")
    dock = _fake_dock(qgis_iface, fake_python, image_layer, vector)
    try:
        assert _engine_labels(dock) == f"{path}|layername=scribbles"
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_the_dock_refuses_what_the_engine_would_read_wrongly(qgis_iface, image_layer, fake_python, tmp_path):
    """Vector labels with unsaved edits (the engine reads the file), the image picked as its own labels
    (another layer of its file), a run folder that cannot be made: each a sentence in the message bar and
    no run; a layer filter reaches the engine as QGIS writes it."""
    path = tmp_path / "labels.gpkg"
    vector = _gpkg_over(image_layer, path, {"scribbles": ("class", ["forest", "water"])}, str(path))
    dock = _fake_dock(qgis_iface, fake_python, image_layer, vector)
    try:
        vector.startEditing()
        first = next(vector.getFeatures()).id()
        vector.changeAttributeValue(first, vector.fields().indexOf("class"), "urban")
        assert dock.start_training() is None
        assert any("unsaved edits" in m for m in messages(qgis_iface, Qgis.Warning))
        vector.rollBack()
        vector.setSubsetString("\"class\" = 'forest'")
        twin = QgsRasterLayer(image_layer.source(), "same file", "gdal")
        QgsProject.instance().addMapLayer(twin)
        dock.layers.set_label_layer(twin)
        assert dock.layers.label_layer() is twin  # another layer of the image's own file
        assert dock.start_training() is None
        assert any("the image itself" in m for m in messages(qgis_iface, Qgis.Warning))
        dock.layers.set_label_layer(vector)
        blocker = tmp_path / "project"
        blocker.mkdir()
        (blocker / "semiseg_runs").write_text("a file where the runs folder goes")
        original = dock_module.output_base
        dock_module.output_base = lambda _labels: blocker
        try:
            assert dock.start_training() is None
        finally:
            dock_module.output_base = original
        assert any("cannot make its run folder" in m for m in messages(qgis_iface, Qgis.Warning))
        assert _engine_labels(dock) == f"{path}|subset=\"class\" = 'forest'"
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_a_moved_image_is_named_as_missing(qgis_iface, scene, fake_python, tmp_path, clean_project):
    moved = tmp_path / "moved.tif"
    shutil.copy(scene["image"], moved)
    layer = QgsRasterLayer(str(moved), "moved", "gdal")
    assert layer.isValid()
    clean_project.addMapLayer(layer)
    engine_process.forget_torch_checks()
    dock = make_dock(qgis_iface, fake_python("slow"))
    try:
        dock.layers.set_image_layer(layer)
        dock.create_label_layer(tmp_path / "labels.tif")
        moved.unlink()
        assert dock.start_training() is None
        assert any(f"The image file {moved} is no longer there" in m
                   for m in messages(qgis_iface, Qgis.Warning))
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_closing_the_dock_while_training_stops_the_engine(qgis_iface, image_layer, fake_python, tmp_path):
    engine_process.forget_torch_checks()
    dock = make_dock(qgis_iface, fake_python("slow"))
    dock.layers.set_image_layer(image_layer)
    dock.create_label_layer(tmp_path / "labels.tif")
    task = dock.start_training()
    pid = []
    task.event_received.connect(lambda e: pid.append(e["pid"]) if e.get("event") == "start" else None)
    wait_until(lambda: pid, what="the fake engine to start")
    dock.close_down()  # what unloading the plugin does
    settings.set_engine_python("")

    def gone() -> bool:
        try:
            os.kill(pid[0], 0)
        except ProcessLookupError:
            return True
        return False

    wait_until(gone, timeout_s=10, what="the engine child to end")
    assert result_layers.result_layers(QgsProject.instance()) == []


@pytest.mark.slow
def test_cancel_real_engine_stops_the_child_and_adds_no_layer(dock, scene):
    labels = QgsRasterLayer(scene["labels"], "labels", "gdal")
    QgsProject.instance().addMapLayer(labels)
    dock.layers.set_label_layer(labels)
    dock.train.steps_spin.setValue(2000)
    dock.train.tile_spin.setValue(64)
    dock.train.smooth_check.setChecked(False)  # the Advanced choice reaches the engine's arguments
    task = dock.start_training()
    args = task.job.engine_args()
    assert args[args.index("--smooth") + 1] == "off"
    training, pid = [], []
    task.event_received.connect(
        lambda e: training.append(e) if e.get("event") == "stage" and e.get("stage") != "prepare" else None)
    task.event_received.connect(lambda e: pid.append(e["pid"]) if e.get("event") == "start" else None)
    wait_until(lambda: training, timeout_s=120, what="training to start")
    t0 = time.monotonic()
    dock.train.cancel_button.click()
    result = wait_for_task(dock, timeout_s=15)
    assert time.monotonic() - t0 < 10
    assert result.cancelled
    with pytest.raises(ProcessLookupError):
        os.kill(pid[0], 0)
    assert result_layers.result_layers(QgsProject.instance()) == []
    assert not list((Path(scene["labels"]).parent / "semiseg_runs").iterdir())
    assert dock.train.train_button.isEnabled() and not dock.train.cancel_button.isEnabled()


@pytest.mark.slow
def test_engine_error_real_engine_becomes_a_message(dock, qgis_iface, tmp_path):
    dock.create_label_layer(tmp_path / "empty_labels.tif")  # nothing painted: the engine refuses
    dock.start_training()
    result = wait_for_task(dock, timeout_s=120)
    assert not result.ok and result.returncode == 2
    sentence = result.error["message"]
    assert sentence in messages(qgis_iface, Qgis.Critical)[-1]
    assert dock.train.status_label.text() == sentence
    assert result_layers.result_layers(QgsProject.instance()) == []


def test_new_label_files_never_overwrite(scene, clean_project):
    default_label_path = plugin_module("ui.layer_panel").default_label_path
    first = default_label_path(scene["image"])
    assert first == Path(scene["image"]).parent / "image_labels.tif"
    first.write_bytes(b"")
    assert default_label_path(scene["image"]).name == "image_labels_2.tif"


def test_free_paths_never_overwrite_files_written_together(tmp_path):
    free_path = plugin_module("ui.jobs").free_path
    assert free_path(tmp_path, "accuracy", ".json", (".csv",)) == tmp_path / "accuracy.json"
    (tmp_path / "accuracy.csv").write_text("")  # only the companion is taken: both move on
    assert free_path(tmp_path, "accuracy", ".json", (".csv",)) == tmp_path / "accuracy-2.json"
    (tmp_path / "accuracy-2.json").write_text("")
    assert free_path(tmp_path, "accuracy", ".json", (".csv",)) == tmp_path / "accuracy-3.json"
    assert free_path(tmp_path, "accuracy", ".json") == tmp_path / "accuracy.json"


def test_vector_labels_without_a_class_field_get_their_first_text_field(dock, clean_project, tmp_path):
    """No field called class: the picker offers the first text field, not the feature id."""
    from osgeo import ogr

    path = tmp_path / "landcover.gpkg"
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("landcover", None, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("area", ogr.OFTReal))
    layer.CreateField(ogr.FieldDefn("landuse", ogr.OFTString))
    ds = layer = None
    vector = QgsVectorLayer(str(path), "landcover", "ogr")
    assert vector.isValid() and vector.fields().names()[0] == "fid"
    clean_project.addMapLayer(vector)
    dock.layers.set_label_layer(vector)
    assert dock.layers.label_field() == "landuse"


def test_picking_the_label_raster_as_image_leaves_no_labels_rather_than_another_layer(dock, image_layer,
                                                                                     scene, qgis_iface):
    """Choosing the current label raster in the Image picker: the Labels picker goes empty (and training
    says to pick labels), instead of silently taking the next layer, e.g. the old image."""
    labels = QgsRasterLayer(scene["labels"], "labels", "gdal")
    QgsProject.instance().addMapLayer(labels)
    dock.layers.set_label_layer(labels)
    assert dock.layers.label_layer() is labels
    dock.layers.set_image_layer(labels)
    assert dock.layers.label_layer() is None
    assert dock.start_training() is None
    assert any("pick a label layer" in m for m in messages(qgis_iface, Qgis.Warning))


def test_the_image_layers_no_data_value_reaches_the_engine(qgis_iface, image_layer, scene, fake_python):
    """A "no data value" given to the image layer in QGIS (Transparency), which its file does not hold:
    the engine is told it (--nodata), or told that there is none, so that a model trained with one does
    not bring it back; a range it cannot take is named in a message."""
    labels = QgsRasterLayer(scene["labels"], "labels", "gdal")
    QgsProject.instance().addMapLayer(labels)
    dock = _fake_dock(qgis_iface, fake_python, image_layer, labels)
    try:
        def passed() -> list[str]:
            task, ended = dock.start_training(), []
            task.completed.connect(ended.append)
            dock.cancel()
            wait_until(lambda: ended, timeout_s=60, what="the cancelled run to end")
            args = task.job.engine_args()
            at = args.index("--nodata")
            return args[at + 1:at + 1 + sum(1 for a in args[at + 1:] if not a.startswith("--"))]

        assert passed() == ["none"]
        provider = image_layer.dataProvider()
        for band in range(1, provider.bandCount() + 1):
            provider.setUserNoDataValue(band, [QgsRasterRange(0, 0), QgsRasterRange(65535, 65535),
                                               QgsRasterRange(10, 20)])
        assert passed() == ["0.0", "65535.0"]
        assert any("no-data range 10–20" in m for m in messages(qgis_iface, Qgis.Info))
        for band in range(2, provider.bandCount() + 1):  # on band 1 only: still passed, and said
            provider.setUserNoDataValue(band, [])
        assert passed() == ["0.0", "65535.0"]
        assert any("set on some bands only" in m for m in messages(qgis_iface, Qgis.Info))
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_a_picked_layer_removed_from_the_project_is_not_replaced_by_another(qgis_iface, image_layer, scene,
                                                                           fake_python, tmp_path):
    """Removing the picked labels leaves none picked (not the next layer, such as a map, to be trained on
    as labels) and the brush is put away; removing the image leaves no image picked either (not the
    label raster or a map, to be trained on as the image), and the dock is told."""
    dock = _fake_dock(qgis_iface, fake_python, image_layer, None)
    try:
        labels = dock.create_label_layer(tmp_path / "painted.tif")
        other = QgsRasterLayer(scene["truth"], "a map", "gdal")  # another raster the pickers may jump to
        QgsProject.instance().addMapLayer(other)
        dock.set_painting(True)
        assert dock.layers.label_layer() is labels and dock.canvas.mapTool() is dock.tool
        QgsProject.instance().removeMapLayer(labels.id())
        QgsApplication.processEvents()
        assert dock.layers.label_layer() is None and dock.tool.layer is None
        assert dock.canvas.mapTool() is not dock.tool and not dock.classes.isEnabled()
        assert dock.start_training() is None
        assert any("Create or pick a label layer" in m for m in messages(qgis_iface, Qgis.Warning))

        told = []
        dock.layers.image_changed.connect(told.append)
        QgsProject.instance().removeMapLayer(image_layer.id())
        QgsApplication.processEvents()
        assert dock.layers.image_layer() is None and told == [None]
        assert dock.start_training() is None
        assert any("Pick an image" in m for m in messages(qgis_iface, Qgis.Warning))
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_a_new_label_layer_or_saved_model_never_replaces_a_file_unasked(qgis_iface, image_layer, scene,
                                                                       fake_python, tmp_path):
    """The dialog asks before replacing the file it names; ".tif" / ".semiseg" added after it was not
    asked about, and a file the project uses (the image, painted labels) is never replaced."""
    dock = _fake_dock(qgis_iface, fake_python, image_layer, None)
    try:
        painted = dock.create_label_layer(tmp_path / "painted.tif")
        before = Path(tmp_path / "painted.tif").read_bytes()
        assert dock.create_label_layer(tmp_path / "painted") is None  # ".tif" added: the loaded labels
        assert dock.create_label_layer(tmp_path / "painted.tif") is None  # even when confirmed
        assert dock.create_label_layer(scene["image"]) is None  # the image itself
        assert any("a file the project uses" in m for m in messages(qgis_iface, Qgis.Warning))
        old = tmp_path / "old.tif"
        old.write_bytes(b"someone's file")
        assert dock.create_label_layer(tmp_path / "old") is None
        assert any("old.tif already exists" in m for m in messages(qgis_iface, Qgis.Warning))
        assert old.read_bytes() == b"someone's file"
        assert Path(tmp_path / "painted.tif").read_bytes() == before and dock.layers.label_layer() is painted
        assert dock.create_label_layer(tmp_path / "old.tif") is not None  # named and confirmed: replaced

        model = tmp_path / "m.semiseg"
        model.write_bytes(b"a model")
        dock.load_model(model)
        keep = tmp_path / "keep.semiseg"
        keep.write_bytes(b"kept")
        dock.save_model(tmp_path / "keep")
        dock.save_model(model)
        assert keep.read_bytes() == b"kept" and model.read_bytes() == b"a model"
        dock.save_model(tmp_path / "copy")
        assert (tmp_path / "copy.semiseg").read_bytes() == b"a model"
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_a_run_that_ends_after_its_project_closed_adds_nothing_to_the_next(qgis_iface, clean_project, scene,
                                                                          fake_python, tmp_path):
    """A run still going when its project is closed and another opened: its map stays out of the other
    project, and the dock then picks up that project's own last map."""
    other = tmp_path / "other"
    run = other / "semiseg_runs" / "image-1"
    run.mkdir(parents=True)
    shutil.copy(scene["labels"], run / "prediction.tif")
    project = QgsProject.instance()
    result_layers.add_results(project, str(run / "prediction.tif"), None, scene["image"], "theirs")
    assert project.write(str(other / "other.qgz"))
    project.clear()
    image_layer = QgsRasterLayer(scene["image"], "image", "gdal")
    labels = QgsRasterLayer(scene["labels"], "labels", "gdal")
    project.addMapLayers([image_layer, labels])
    dock = _fake_dock(qgis_iface, fake_python, image_layer, labels)
    os.environ["FAKE_ENGINE_SCENARIO"] = "ok"
    try:
        task, ended = dock.start_training(), []
        assert task is not None
        task.completed.connect(ended.append)  # (reading a project runs the event loop: it may end then)
        assert project.read(str(other / "other.qgz"))  # another project opened while the run goes on
        wait_until(lambda: ended, timeout_s=60, what="the run to end")
        assert ended[0].ok
        assert [layer.name() for layer in project.mapLayers().values()] == ["theirs prediction"]
        assert any("after its project was closed" in m for m in messages(qgis_iface, Qgis.Info))
        assert dock.results.prediction == str(run / "prediction.tif")  # picked up once the run ended
        project.clear()
        # the same run in an open project: the fake engine names no map, and says so
        clean = QgsRasterLayer(scene["image"], "image", "gdal")
        QgsProject.instance().addMapLayers([clean, QgsRasterLayer(scene["labels"], "labels", "gdal")])
        dock.layers.set_image_layer(clean)
        dock.layers.set_label_layer(QgsProject.instance().mapLayersByName("labels")[0])
        assert dock.start_training() is not None and wait_for_task(dock, timeout_s=60).ok
        assert any("without naming its map" in m for m in messages(qgis_iface, Qgis.Critical))
        assert "named no map" in dock.train.status_label.text()
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_apply_model_finds_the_raster_picked_among_layers_of_one_name(dock, scene, tmp_path, monkeypatch):
    """QGIS names a layer after its file: 2019/scene.tif and 2020/scene.tif are both "scene". The list
    to pick from tells them apart, and the one picked is the one segmented."""
    results_panel = plugin_module("ui.results_panel")
    layers = []
    for year in ("2019", "2020"):
        (tmp_path / year).mkdir()
        path = tmp_path / year / "scene.tif"
        shutil.copy(scene["image"], path)
        layers.append(QgsRasterLayer(str(path), "scene", "gdal"))
        QgsProject.instance().addMapLayer(layers[-1])
    offered, picked = [], []

    def pick_second(_parent, _title, _label, items, *_args):
        offered.extend(items)
        return next(i for i in items if "2020" in i), True

    monkeypatch.setattr(results_panel.QInputDialog, "getItem", pick_second)
    dock.results.apply_requested.disconnect()
    dock.results.apply_requested.connect(picked.append)
    dock.results._ask_raster()
    assert len(set(offered)) == len(offered) and f"scene ({tmp_path / '2019' / 'scene.tif'})" in offered
    assert picked == [layers[1]]


def test_a_moved_project_folder_brings_its_image_labels_and_model_along(qgis_iface, scene, clean_project,
                                                                        tmp_path, fake_python):
    """A project folder moved (another disk, a colleague's machine): QGIS finds the layers at their new
    place through relative paths, and the last map's record follows the move too, so the image and the
    labels are picked, and Continue from the last model and Assess find their files."""
    old = tmp_path / "A"
    run = old / "semiseg_runs" / "image-1"
    run.mkdir(parents=True)
    for key in ("image", "labels"):
        shutil.copy(scene[key], old / Path(scene[key]).name)
    if os.path.exists(scene["labels"] + ".aux.xml"):
        shutil.copy(scene["labels"] + ".aux.xml", old / (Path(scene["labels"]).name + ".aux.xml"))
    shutil.copy(scene["labels"], run / "prediction.tif")
    (run / "model.semiseg").write_bytes(b"a model")
    image, labels = str(old / "image.tif"), str(old / Path(scene["labels"]).name)
    layers = [QgsRasterLayer(image, "image", "gdal"), QgsRasterLayer(labels, "labels", "gdal")]
    result_layers.add_results(clean_project, str(run / "prediction.tif"), None, image, "image")
    prediction = result_layers.result_layers(clean_project)[0]
    record = {"image": image, "title": "image", "labels": labels, "label_field": "", "method": "supervised",
              "preset": "fast", "model": str(run / "model.semiseg"), "metrics": {"val_miou": 0.5},
              "spots": [], "made": 1.0}  # a record from before "folder": the model's folder stands in
    prediction.setCustomProperty("semiseg/record", json.dumps(record))
    clean_project.addMapLayers(layers)
    assert clean_project.write(str(old / "project.qgz"))
    clean_project.clear()
    new = tmp_path / "B"
    shutil.move(str(old), str(new))
    dock = make_dock(qgis_iface, fake_python("ok"))
    try:
        assert clean_project.read(str(new / "project.qgz"))
        moved_run = new / "semiseg_runs" / "image-1"
        assert layer_path(dock.layers.image_layer()) == str(new / "image.tif")
        assert layer_path(dock.layers.label_layer()) == str(new / Path(labels).name)
        assert dock.map_labels[0] == str(new / Path(labels).name)
        options = dock.train.options()
        options.method, options.preset, options.continue_last = "supervised", "fast", True
        assert dock._model_to_continue(str(new / "image.tif"), options) == str(moved_run / "model.semiseg")
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_a_deleted_label_file_is_named_when_painting_or_editing_classes(qgis_iface, image_layer, fake_python,
                                                                       tmp_path):
    from qgis.gui import QgsMapMouseEvent
    from qgis.PyQt.QtCore import QEvent, QPoint, Qt

    dock = _fake_dock(qgis_iface, fake_python, image_layer, None)
    try:
        dock.create_label_layer(tmp_path / "painted.tif")
        dock.set_painting(True)
        (tmp_path / "painted.tif").unlink()
        press = QgsMapMouseEvent(dock.canvas, QEvent.MouseButtonPress, QPoint(10, 10), Qt.LeftButton,
                                 Qt.LeftButton, Qt.NoModifier)
        dock.tool.canvasPressEvent(press)
        dock.classes.add_class()
        said = messages(qgis_iface, Qgis.Warning) + messages(qgis_iface, Qgis.Critical)
        assert sum(f"{tmp_path / 'painted.tif'} is no longer there" in m for m in said) == 2, said
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_results_of_an_image_given_a_crs_in_qgis_take_it(clean_project, tmp_path):
    """An image file without a CRS, to which the analyst gave one in QGIS (Layer CRS): its maps, written
    without a CRS too, take the image layer's, so that they lie where it does."""
    from qgis.core import QgsCoordinateReferenceSystem
    from rasterio.transform import from_origin

    profile = {"driver": "GTiff", "width": 8, "height": 8, "count": 1, "dtype": "uint8",
               "transform": from_origin(500000, 4000000, 1, 1)}
    paths = {}
    for name in ("image", "prediction", "confidence"):
        paths[name] = str(tmp_path / f"{name}.tif")
        with rasterio.open(paths[name], "w", **profile) as ds:
            ds.write(np.ones((1, 8, 8), np.uint8))
    image = QgsRasterLayer(paths["image"], "image", "gdal")
    assert not image.crs().isValid()
    image.setCrs(QgsCoordinateReferenceSystem("EPSG:32633"))
    clean_project.addMapLayer(image)
    added = result_layers.add_results(clean_project, paths["prediction"], paths["confidence"], paths["image"],
                                      "image")
    assert [layer.crs().authid() for layer in added] == ["EPSG:32633", "EPSG:32633"]


def test_maps_of_two_images_of_one_name_are_told_apart(clean_project, scene, tmp_path):
    paths = {}
    for year in ("2019", "2020"):
        (tmp_path / year).mkdir()
        paths[year] = str(tmp_path / year / "scene.tif")
        shutil.copy(scene["image"], paths[year])
    assert result_layers.map_title(paths["2019"], clean_project) == "scene"
    result_layers.add_results(clean_project, scene["labels"], None, paths["2019"], "scene")
    assert result_layers.map_title(paths["2019"], clean_project) == "scene"  # its own maps: no clash
    assert result_layers.map_title(paths["2020"], clean_project) == "2020/scene"


def test_keys_while_painting_pick_the_class_eraser_and_size_and_redo_is_a_button(dock, qgis_iface, tmp_path):
    from qgis.PyQt.QtCore import QEvent, Qt
    from qgis.PyQt.QtGui import QKeyEvent

    def press(code, text="", modifiers=Qt.NoModifier):
        dock.tool.keyPressEvent(QKeyEvent(QEvent.KeyPress, code, modifiers, text))

    dock.create_label_layer(tmp_path / "keys.tif")
    dock.classes.add_class()  # three classes
    dock.set_painting(True)
    assert dock.canvas.mapTool() is dock.tool
    press(Qt.Key_3, "3")
    assert dock.classes.current_value() == 3 and dock.tool.value == 3
    press(Qt.Key_E, "e")
    assert dock.brush.eraser_check.isChecked() and dock.tool.eraser
    press(Qt.Key_1, "1")  # a class key paints that class again, not the eraser
    assert dock.tool.value == 1 and not dock.tool.eraser and not dock.brush.eraser_check.isChecked()
    press(Qt.Key_9, "9")
    assert dock.tool.value == 1
    assert any("There is no class 9: the label raster has 3 classes" in m
               for m in messages(qgis_iface, Qgis.Info))
    size = dock.brush.size_spin.value()
    press(Qt.Key_BracketRight, "]")
    press(Qt.Key_BracketRight, "]")
    assert dock.tool.diameter == dock.brush.size_spin.value() > size + 1
    press(Qt.Key_BracketLeft, "[")
    assert size < dock.tool.diameter < dock.brush.size_spin.value() + 1

    # one stroke written straight into the file, as the tool records it, undone and redone by the buttons
    writer = label_raster.LabelRasterWriter(tmp_path / "keys.tif")
    window = label_raster.Window(0, 0, 2, 1)
    writer.write(window, bytes([1, 1]))
    writer.close()
    dock.tool._undo.append([(window, bytes([0, 0]))])
    dock.tool.painted.emit()
    assert dock.brush.undo_button.isEnabled() and not dock.brush.redo_button.isEnabled()
    dock.brush.undo_button.click()
    assert list(gdal.Open(str(tmp_path / "keys.tif")).ReadRaster(0, 0, 2, 1)) == [0, 0]
    assert not dock.brush.undo_button.isEnabled() and dock.brush.redo_button.isEnabled()
    dock.brush.redo_button.click()
    assert list(gdal.Open(str(tmp_path / "keys.tif")).ReadRaster(0, 0, 2, 1)) == [1, 1]
    assert dock.brush.undo_button.isEnabled() and not dock.brush.redo_button.isEnabled()
    dock.set_painting(False)


@contextlib.contextmanager
def _dock_opened_now(qgis_iface, fake_python):
    """A dock opened on the project as it is (on a slow fake engine), closed afterwards."""
    engine_process.forget_torch_checks()
    dock = make_dock(qgis_iface, fake_python("slow"))
    try:
        yield dock
    finally:
        dock.close_down()
        dock.deleteLater()
        settings.set_engine_python("")


def test_a_dock_opened_on_a_project_picks_its_image_and_the_labels_on_its_grid(qgis_iface, scene, fake_python,
                                                                                 clean_project):
    """The dock opened on a project that holds the image (the usual start): the image is picked and the
    Labels picker is empty, not the image again; a label raster on the image's grid already in the
    project is offered as the labels, below or above the image, never a map SemiSeg made."""
    project = QgsProject.instance()
    image = QgsRasterLayer(scene["image"], "image", "gdal")
    project.addMapLayer(image)
    with _dock_opened_now(qgis_iface, fake_python) as dock:
        assert dock.layers.image_layer() is image and dock.layers.label_layer() is None
        assert not dock.classes.isEnabled()
    labels_path = Path(scene["image"]).with_name("painted.tif")
    label_raster.create_label_raster(scene["image"], labels_path, label_raster.default_classes(2))
    labels = QgsRasterLayer(str(labels_path), "painted", "gdal")
    project.addMapLayer(labels)  # on top of the image
    result = QgsRasterLayer(scene["truth"], "image prediction", "gdal")  # a map SemiSeg added, on top
    result.setCustomProperty(result_layers.ROLE_PROPERTY, "prediction")
    project.addMapLayer(result)
    with _dock_opened_now(qgis_iface, fake_python) as dock:
        assert dock.layers.image_layer() is image and dock.layers.label_layer() is labels
        assert dock.classes.isEnabled() and len(dock.classes.classes()) == 2
        dock.layers.set_image_layer(result)
        assert dock.start_training() is None
        assert any("is a map SemiSeg made" in m for m in messages(qgis_iface, Qgis.Warning))


def test_a_dock_opened_on_an_empty_project_picks_the_image_added_next(qgis_iface, scene, fake_python,
                                                                     clean_project):
    with _dock_opened_now(qgis_iface, fake_python) as dock:
        assert dock.layers.image_layer() is None
        image = QgsRasterLayer(scene["image"], "image", "gdal")
        QgsProject.instance().addMapLayer(image)
        wait_until(lambda: dock.layers.image_layer() is image, timeout_s=5, what="the image to be picked")
        assert dock.layers.label_layer() is None and dock.layers.new_button.isEnabled()


def test_vector_labels_whose_file_has_no_crs_reach_the_engine_with_the_crs_given_in_qgis(clean_project,
                                                                                         tmp_path):
    """A vector file without a CRS, given one in QGIS (Layer CRS): the engine is told it (``|crs=``), so it
    places the features where QGIS draws them; a file with its own CRS gets no such option."""
    from osgeo import ogr

    layer_files = plugin_module("ui.layer_files")
    path = tmp_path / "no_crs.gpkg"
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = ds.CreateLayer("labels", None, ogr.wkbPolygon)
    layer.CreateField(ogr.FieldDefn("class", ogr.OFTString))
    f = ogr.Feature(layer.GetLayerDefn())
    f.SetGeometry(ogr.CreateGeometryFromWkt("POLYGON((15 50, 15.001 50, 15.001 49.999, 15 50))"))
    f.SetField("class", "forest")
    layer.CreateFeature(f)
    ds = layer = f = None
    vector = QgsVectorLayer(str(path), "labels", "ogr")
    assert vector.isValid() and layer_files.no_crs(vector.dataProvider().crs())
    from qgis.core import QgsCoordinateReferenceSystem

    assert layer_files.engine_source(vector) == str(path)  # no CRS given: none passed

    vector.setCrs(QgsCoordinateReferenceSystem("EPSG:4326"))
    QgsProject.instance().addMapLayer(vector)
    assert layer_files.engine_source(vector) == f"{path}|crs=EPSG:4326"
    vector.setSubsetString("\"class\" = 'forest'")
    assert layer_files.engine_source(vector) == f"{path}|crs=EPSG:4326|subset=\"class\" = 'forest'"
    image = QgsRasterLayer(str(tmp_path / "missing.tif"), "image", "gdal")  # a raster is passed as its file
    assert layer_files.engine_source(image) is None
