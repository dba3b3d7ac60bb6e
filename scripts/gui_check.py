"""The real-window check (``make gui-check``): SemiSeg in a real QGIS, driven like an analyst would.

Run with the venv's Python, this script is the *launcher*: it installs the plugin into a throwaway QGIS
profile under ``out/gui-check/``, starts QGIS under ``xvfb-run`` with ``--code`` pointing back at this
file, waits, and prints the checks. Inside QGIS the same file is the *driver*: it opens the SemiSeg
dock, loads the bundled sample, creates a label layer, paints the sample's strokes (read from
``resources/sample/make_labels.py`` without importing it) through real mouse events on the canvas,
runs Train and segment, makes polygons of the map, applies the model to the visible map area, trains
again (continuing from the first model), draws an accuracy sample, shows the first point to check,
checks the points and assesses the map, and saves screenshots: the dock ready, training in progress,
results, the dock's Advanced settings opened, the polygons, the place to paint next, the visible-area
map, the point to check with the class picker, the assessed sample.

Everything lands in ``out/gui-check/``: ``1-ready.png``, ``2-training.png``, ``3-results.png``,
``4-advanced.png``, ``5-polygons.png``, ``6-paint-next.png``, ``7-visible-area.png``,
``8-check-point.png``, ``9-accuracy.png``, ``result.json`` (the checks) and ``qgis.log``. Environment:
``GUI_CHECK_STEPS`` (training steps, default 60) and ``GUI_CHECK_TIMEOUT_S`` (default 1200).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# QGIS runs ``--code`` files with exec(), without ``__file__``: the driver gets its paths from the
# environment the launcher sets, and only the launcher looks at where this file is.
REPO_ROOT = Path(__file__).resolve().parents[1] if "__file__" in globals() else None
OUT = REPO_ROOT / "out" / "gui-check" if REPO_ROOT else None
SAMPLE = REPO_ROOT / "resources" / "sample" if REPO_ROOT else None
# What the installed plugin folder holds (as in the Makefile's zip target).
PLUGIN_FILES = ["metadata.txt", "__init__.py", "plugin.py", "ui", "engine", "resources", "README.md",
                "LICENSE"]
SCREEN = (1600, 1000)


# --- launcher (outside QGIS) --------------------------------------------------------------------------

def install_profile(profiles: Path, engine_python: str) -> Path:
    """A fresh QGIS profile with only SemiSeg installed and enabled; returns the plugin folder."""
    profile = profiles / "profiles" / "default"
    plugin = profile / "python" / "plugins" / "semiseg"
    plugin.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in PLUGIN_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, plugin / name, ignore=ignore)
        else:
            shutil.copy2(source, plugin / name)
    ini = profile / "QGIS" / "QGIS3.ini"
    ini.parent.mkdir(parents=True)
    ini.write_text("[PythonPlugins]\nsemiseg=true\n\n"
                   f"[SemiSeg]\nengine_python={engine_python}\n\n"
                   "[qgis]\ncheckVersion=false\n", encoding="utf-8")
    return plugin


def launch() -> int:
    if shutil.which("xvfb-run") is None or shutil.which("qgis") is None:
        print("gui-check needs qgis and xvfb-run (Debian packages qgis and xvfb).", file=sys.stderr)
        return 2
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "work").mkdir(parents=True)
    install_profile(OUT / "profiles", sys.executable)  # the venv's Python has torch: it runs the engine
    env = dict(os.environ, GUI_CHECK_OUT=str(OUT), GUI_CHECK_SAMPLE=str(SAMPLE), PYTHONFAULTHANDLER="1")
    env.pop("QT_QPA_PLATFORM", None)  # a real (virtual) display this time
    timeout_s = int(os.environ.get("GUI_CHECK_TIMEOUT_S", "1200"))
    command = ["xvfb-run", "-a", "-s", f"-screen 0 {SCREEN[0]}x{SCREEN[1]}x24",
               "qgis", "--nologo", "--noversioncheck", "--profiles-path", str(OUT / "profiles"),
               "--code", str(Path(__file__).resolve())]
    print("starting QGIS under xvfb-run (a few minutes: it trains a model on the sample)…", flush=True)
    t0 = time.monotonic()
    with open(OUT / "qgis.log", "w", encoding="utf-8") as log:
        try:
            subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=timeout_s + 120,
                           cwd=OUT / "work")
        except subprocess.TimeoutExpired:
            print(f"QGIS did not quit within {timeout_s + 120} s", file=sys.stderr)
    result_file = OUT / "result.json"
    if not result_file.exists():
        print(f"no result: see {OUT / 'qgis.log'}", file=sys.stderr)
        return 1
    result = json.loads(result_file.read_text(encoding="utf-8"))
    for name, (ok, detail) in result["checks"].items():
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    shots = ", ".join(sorted(p.name for p in OUT.glob("*.png")))
    print(f"{time.monotonic() - t0:.0f} s; screenshots in {OUT.relative_to(REPO_ROOT)}: {shots}")
    return 0 if all(ok for ok, _ in result["checks"].values()) else 1


# --- driver (inside QGIS) -----------------------------------------------------------------------------

def sample_strokes(path: Path) -> tuple[list, dict, dict]:
    """CLASSES, STROKES and BLOBS of make_labels.py, read as literals (importing it needs numpy)."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        if isinstance(target, ast.Name) and target.id in ("CLASSES", "STROKES", "BLOBS"):
            found[target.id] = ast.literal_eval(node.value)
    return found["CLASSES"], found["STROKES"], found.get("BLOBS", {})


class Driver:
    """Drives QGIS step by step on timers, so QGIS's event loop keeps running throughout."""

    def __init__(self, iface) -> None:
        from qgis.core import QgsApplication

        self.iface = iface
        self.app = QgsApplication.instance()
        self.out = Path(os.environ["GUI_CHECK_OUT"])
        self.sample = Path(os.environ["GUI_CHECK_SAMPLE"])
        self.steps = int(os.environ.get("GUI_CHECK_STEPS", "60"))
        self.checks: dict[str, tuple[bool, str]] = {}
        self.dock = None
        self.training_shot = False
        self.t0 = time.monotonic()

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.checks[name] = (bool(ok), detail)
        self.log(f"{'ok' if ok else 'FAIL'} {name}: {detail}")
        return bool(ok)

    def log(self, text: str) -> None:
        with open(self.out / "driver.log", "a", encoding="utf-8") as log:
            log.write(f"{time.monotonic() - self.t0:7.1f} s  {text}\n")

    def later(self, seconds: float, step) -> None:
        from qgis.PyQt.QtCore import QTimer

        QTimer.singleShot(int(seconds * 1000), lambda: self.guarded(step))

    def guarded(self, step) -> None:
        self.log(step.__name__)
        try:
            step()
        except Exception as e:  # noqa: BLE001  (record it and quit: never leave QGIS hanging)
            import traceback

            self.check(f"no exception in {step.__name__}", False, f"{type(e).__name__}: {e}")
            traceback.print_exc()
            self.finish()

    def start(self) -> None:
        from qgis.utils import plugins

        window = self.iface.mainWindow()
        window.resize(*SCREEN)
        window.showMaximized()
        plugin = plugins.get("semiseg")
        if not self.check("plugin loaded", plugin is not None, ", ".join(sorted(plugins))):
            return self.finish()
        plugin.action.trigger()
        self.dock = plugin.dock
        self.check("dock opened", self.dock is not None and self.dock.isVisible())
        self.later(1, self.load_sample)
        timeout_s = int(os.environ.get("GUI_CHECK_TIMEOUT_S", "1200"))
        self.later(timeout_s, self.time_out)

    def load_sample(self) -> None:
        from qgis.core import QgsProject, QgsRasterLayer

        work = self.out / "work"
        image = work / "landsat_rgb.tif"
        shutil.copy(self.sample / "landsat_rgb.tif", image)
        self.image = QgsRasterLayer(str(image), "landsat_rgb", "gdal")
        self.check("sample opened", self.image.isValid(), str(image.name))
        QgsProject.instance().addMapLayer(self.image)
        self.app.processEvents()  # the dock offers the image added to its empty project after the signal
        layers = self.dock.layers
        self.check("the image added to the empty project is picked, no labels yet",
                   layers.image_layer() is self.image and layers.label_layer() is None,
                   f"image {layers.image_layer() and layers.image_layer().name()}, labels "
                   f"{layers.label_layer() and layers.label_layer().name()}")
        self.dock.layers.set_image_layer(self.image)
        canvas = self.iface.mapCanvas()
        canvas.setDestinationCrs(self.image.crs())
        canvas.setExtent(self.image.extent())
        canvas.refresh()

        labels = self.dock.create_label_layer(work / "landsat_rgb_labels.tif")
        self.check("label layer created", labels is not None and labels.isValid(),
                   labels.source() if labels else "")
        classes, self.strokes, self.blobs = sample_strokes(self.sample / "make_labels.py")
        from semiseg.ui.label_raster import LabelClass

        self.class_names = [name for name, _ in classes]
        self.dock.classes.set_classes([LabelClass(name, tuple(colour)) for name, colour in classes])
        self.dock.classes.classes_edited.emit(self.dock.classes.classes())  # store them in the file
        self.wait_for_engine()

    def wait_for_engine(self) -> None:
        if self.dock.engine is None and time.monotonic() - self.t0 < 300:
            return self.later(1, self.wait_for_engine)
        engine = self.dock.engine
        self.check("engine found", engine is not None and bool(engine.python),
                   engine.problem if engine and engine.problem else (engine.python if engine else "timeout"))
        self.paint()

    def paint(self) -> None:
        from osgeo import gdal

        self.dock.brush.paint_button.click()
        canvas = self.iface.mapCanvas()
        self.check("brush is the map tool", canvas.mapTool() is self.dock.tool)
        geo = gdal.Open(self.image.source()).GetGeoTransform()
        for value, name in enumerate(self.class_names, start=1):
            self.dock.classes.select_value(value)
            for width, points in self.strokes.get(name, []):
                self.dock.brush.size_spin.setValue(width)
                self.drag(canvas, geo, points)
            for col, row, radius in self.blobs.get(name, []):
                self.dock.brush.size_spin.setValue(2 * radius)
                self.drag(canvas, geo, [(col, row)])
        counts = painted_counts(self.dock.tool.layer.source(), len(self.class_names))
        self.check("every class painted", all(counts[1:]), f"pixels per class {counts[1:]}")
        self.check("undo available", self.dock.brush.undo_button.isEnabled())
        self.keys(canvas, counts)
        self.dock.brush.paint_button.click()  # put the brush away for the screenshots
        self.later(3, self.shoot_ready)

    def keys(self, canvas, counts: list[int]) -> None:
        """The painting keys, typed into the map canvas through QGIS's own shortcut handling: undo and
        redo the last stroke, pick a class, switch the eraser, grow the brush; then the state before."""
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtTest import QTest

        path, k = self.dock.tool.layer.source(), len(self.class_names)
        canvas.setFocus()
        QTest.keyClick(canvas, Qt.Key_Z, Qt.ControlModifier)
        undone = painted_counts(path, k)
        QTest.keyClick(canvas, Qt.Key_Z, Qt.ControlModifier | Qt.ShiftModifier)
        redone = painted_counts(path, k)
        self.check("Ctrl+Z undoes and Ctrl+Shift+Z redoes a stroke in QGIS",
                   undone != counts and redone == counts,
                   f"painted {counts[1:]}, undone {undone[1:]}, redone {redone[1:]}")
        size = self.dock.brush.size_spin.value()
        QTest.keyClick(canvas, Qt.Key_2)
        picked = self.dock.classes.current_value()
        QTest.keyClick(canvas, Qt.Key_E)
        erasing = self.dock.brush.eraser_check.isChecked()
        QTest.keyClick(canvas, Qt.Key_E)
        QTest.keyClick(canvas, Qt.Key_BracketRight)
        grown = self.dock.tool.diameter
        self.check("keys 2, E and ] reach the brush in QGIS",
                   picked == 2 and erasing and not self.dock.tool.eraser and grown > size,
                   f"class {picked}, eraser {erasing}, size {size} -> {grown}")
        self.dock.brush.size_spin.setValue(size)

    def drag(self, canvas, geo, points) -> None:
        """Press, move along the points (a screen event every few pixels), release: real Qt events."""
        from qgis.core import QgsPointXY
        from qgis.PyQt.QtCore import QEvent, QPoint, Qt
        from qgis.PyQt.QtGui import QMouseEvent
        from qgis.PyQt.QtWidgets import QApplication

        transform = canvas.getCoordinateTransform()

        def screen(col: float, row: float) -> QPoint:
            x = geo[0] + (col + 0.5) * geo[1] + (row + 0.5) * geo[2]
            y = geo[3] + (col + 0.5) * geo[4] + (row + 0.5) * geo[5]
            p = transform.transform(QgsPointXY(x, y))
            return QPoint(round(p.x()), round(p.y()))

        path = [screen(*points[0])]
        for (c0, r0), (c1, r1) in zip(points, points[1:], strict=False):
            n = max(int(max(abs(c1 - c0), abs(r1 - r0)) / 3), 1)
            path += [screen(c0 + (c1 - c0) * k / n, r0 + (r1 - r0) * k / n) for k in range(1, n + 1)]
        viewport = canvas.viewport()

        def send(kind, pos, button, buttons) -> None:
            QApplication.sendEvent(viewport, QMouseEvent(kind, pos, button, buttons, Qt.NoModifier))

        send(QEvent.MouseButtonPress, path[0], Qt.LeftButton, Qt.LeftButton)
        for pos in path[1:]:
            send(QEvent.MouseMove, pos, Qt.NoButton, Qt.LeftButton)
        send(QEvent.MouseButtonRelease, path[-1], Qt.LeftButton, Qt.NoButton)

    def shoot(self, name: str) -> None:
        canvas = self.iface.mapCanvas()
        canvas.waitWhileRendering()
        self.app.processEvents()
        self.iface.mainWindow().grab().save(str(self.out / name))

    def shoot_ready(self) -> None:
        self.shoot("1-ready.png")
        train = self.dock.train
        train.set_preset("fast")
        train.steps_spin.setValue(self.steps)
        task = self.dock.start_training()
        if self.follow(task, "training", self.on_done):
            task.event_received.connect(self.on_event)

    def follow(self, task, what: str, step) -> bool:
        """Check that ``what`` started (else finish) and call ``step(result)`` a second after it ends."""
        if not self.check(f"{what} started", task is not None):
            self.finish()
            return False
        task.completed.connect(lambda result: self.later(1, lambda: step(result)))
        return True

    def on_event(self, event: dict) -> None:
        if event.get("event") == "progress" and not self.training_shot:
            self.training_shot = True
            self.later(2, lambda: self.shoot("2-training.png"))

    def on_done(self, result) -> None:
        from qgis.core import QgsPalettedRasterRenderer, QgsProject

        self.check("training finished", result.ok, result.user_message())
        group = QgsProject.instance().layerTreeRoot().findGroup("SemiSeg")
        layers = [node.layer() for node in group.findLayers()] if group else []
        roles = [layer.customProperty("semiseg/role") for layer in layers]
        self.check("prediction and confidence in the SemiSeg group", roles == ["prediction", "confidence"],
                   str(roles))
        if layers:
            prediction = layers[0]
            names = [c.label for c in prediction.renderer().classes()] if isinstance(
                prediction.renderer(), QgsPalettedRasterRenderer) else []
            self.check("prediction styled with the class names", names == self.class_names, str(names))
            on_grid = [layer.extent() == self.image.extent() and layer.crs() == self.image.crs()
                       for layer in layers]
            self.check("results on the image grid", all(on_grid))
            self.arrange_results_view(layers)
        self.check("metrics shown in the dock", "mIoU" in self.dock.results.metrics_label.text(),
                   self.dock.results.metrics_label.text())
        areas = self.dock.results.areas_label.text()
        self.check("class areas shown in hectares",
                   areas.startswith("<b>In the map:</b>") and " ha (" in areas
                   and all(name in areas for name in self.class_names), areas)
        scroll = self.dock.widget()  # the dock's scroll area: show the results panel's buttons
        scroll.ensureWidgetVisible(self.dock.results.load_button)
        buttons = (self.dock.results.apply_button, self.dock.results.save_button,
                   self.dock.results.load_button)
        self.check("results buttons enabled", all(b.isEnabled() for b in buttons),
                   ", ".join(b.text() for b in buttons))
        self.later(3, self.shoot_results)

    def arrange_results_view(self, layers) -> None:
        """Show the prediction half-transparent over the image, the confidence layer switched off."""
        from qgis.core import QgsProject

        root = QgsProject.instance().layerTreeRoot()
        layers[0].setOpacity(0.85)
        root.findLayer(layers[1].id()).setItemVisibilityChecked(False)
        label_node = root.findLayer(self.dock.tool.layer.id())
        if label_node is not None:
            label_node.setItemVisibilityChecked(False)
        self.iface.mapCanvas().refreshAllLayers()

    def shoot_results(self) -> None:
        self.shoot("3-results.png")
        train = self.dock.train
        self.check("map smoothing offered under Advanced, on by default", train.smooth_check.isChecked())
        train.advanced.setCollapsed(False)
        self.later(1, self.shoot_advanced)

    def shoot_advanced(self) -> None:
        self.shoot("4-advanced.png")
        self.dock.train.advanced.setCollapsed(True)
        self.make_polygons()

    def make_polygons(self) -> None:
        """Make polygons… of the map (16 px, the first default), as the dialog would send it."""
        button = self.dock.results.polygons_button
        self.check("Make polygons offered for the map", button.isEnabled(), button.text())
        self.follow(self.dock.make_polygons(16), "polygons", self.on_polygons_done)

    def on_polygons_done(self, result) -> None:
        from qgis.core import QgsCategorizedSymbolRenderer, QgsProject

        self.check("polygons finished", result.ok, result.user_message())
        group = QgsProject.instance().layerTreeRoot().findGroup("SemiSeg")
        layers = [node.layer() for node in group.findLayers()] if group else []
        top = layers[0] if layers else None
        ok = (top is not None and top.customProperty("semiseg/role") == "polygons"
              and isinstance(top.renderer(), QgsCategorizedSymbolRenderer)
              and [c.label() for c in top.renderer().categories()] == self.class_names
              and top.featureCount() == (result.done or {}).get("features", -1) > 0)
        self.check("polygons on top of the SemiSeg group, styled with the class names", ok,
                   f"{top.name() if top else None}: {top.featureCount() if top else 0} features")
        if ok:
            top.setOpacity(0.85)
            root = QgsProject.instance().layerTreeRoot()
            root.findLayer(layers[1].id()).setItemVisibilityChecked(False)  # the raster map under them
            self.iface.mapCanvas().refreshAllLayers()
        self.later(3, lambda: (self.shoot("5-polygons.png"), self.paint_next()))

    def paint_next(self) -> None:
        """Press Where to paint next: the map zooms to the least sure place, boxed."""
        from qgis.core import QgsRectangle

        button = self.dock.results.spot_button
        spots = self.dock.spots
        button.click()
        view = self.iface.mapCanvas().extent()
        ok = (bool(spots) and view.contains(QgsRectangle(*spots[0]["bounds"]))
              and self.dock.marker.band is not None)
        self.check("Where to paint next zooms to the least sure place, boxed", ok,
                   f"{len(spots)} spots; first {spots[0] if spots else None}; view {view.toString(0)}")
        self.later(3, lambda: (self.shoot("6-paint-next.png"), self.segment_visible_area()))

    def segment_visible_area(self) -> None:
        """Zoom in on part of the image, set Segment to the visible map area and apply the model there."""
        from qgis.core import QgsRectangle

        e = self.image.extent()
        canvas = self.iface.mapCanvas()
        canvas.setExtent(QgsRectangle(e.xMinimum() + 0.2 * e.width(), e.yMinimum() + 0.35 * e.height(),
                                      e.xMinimum() + 0.6 * e.width(), e.yMinimum() + 0.75 * e.height()))
        canvas.refresh()
        self.dock.train.set_segment("view")
        self.check("segment choice offers the visible map area",
                   self.dock.train.segment_combo.currentText() == "Visible map area",
                   self.dock.train.segment_combo.currentText())
        self.follow(self.dock.apply_model(self.image), "visible-area prediction", self.on_area_done)

    def on_area_done(self, result) -> None:
        from qgis.core import QgsProject

        self.check("visible-area prediction finished", result.ok, result.user_message())
        group = QgsProject.instance().layerTreeRoot().findGroup("SemiSeg")
        layers = [node.layer() for node in group.findLayers()] if group else []
        shown = self.iface.mapCanvas().mapSettings().visibleExtent().intersect(self.image.extent())
        ok = len(layers) == 2 and all(
            "visible area" in layer.name() and layer.extent().contains(shown)
            and layer.width() < self.image.width() and layer.height() < self.image.height()
            for layer in layers)
        self.check("visible-area layers cover the view and not the whole image", ok,
                   "; ".join(f"{layer.name()} {layer.width()}x{layer.height()}" for layer in layers))
        if layers:
            self.arrange_results_view(layers)
            self.iface.mapCanvas().setExtent(self.image.extent())  # zoomed out: the part within the whole
        self.later(3, lambda: (self.shoot("7-visible-area.png"), self.train_again()))

    def train_again(self) -> None:
        """Press Train and segment again: it continues from the first run's model (same image, method and
        preset), for half the preset's steps (Steps back at "preset's")."""
        self.dock.train.steps_spin.setValue(0)
        task = self.dock.start_training()
        started = task is not None and bool(task.job.warm_start)
        if not self.check("second run continues from the last model", started,
                          task.job.warm_start if task is not None else "not started"):
            return self.finish()
        task.completed.connect(lambda result: self.later(1, lambda: self.on_again_done(result)))

    def on_again_done(self, result) -> None:
        metrics = (result.done or {}).get("metrics") or {}
        self.check("second run finished from the last model",
                   result.ok and bool(metrics.get("warm_start")) and metrics.get("steps") == 200,  # 400 / 2
                   f"{result.user_message()} steps {metrics.get('steps')}")
        self.accuracy_sample()

    def accuracy_sample(self) -> None:
        """Accuracy sample…: its dialog, set to share 120 points by area with at least 10 per class (shot
        and closed), then the sample of the new map with 10 points per class, as the dialog sends it."""
        button = self.dock.results.sample_button
        self.check("Accuracy sample offered for the map", button.isEnabled(), button.text())
        dialog = self.dock.results.sample_dialog()
        dialog.per_class_spin.setValue(10)
        dialog.area_button.setChecked(True)
        dialog.total_spin.setValue(120)
        dialog.show()

        def shoot_dialog() -> None:
            dialog.grab().save(str(self.out / "11-sample-dialog.png"))
            self.check("the sample dialog shares a total by area", dialog.values() == (10, 120)
                       and "120 points shared by the classes' areas" in dialog.summary.text(),
                       dialog.summary.text())
            dialog.reject()
            self.follow(self.dock.make_sample(10), "accuracy sample", self.on_sample_done)

        self.later(1, shoot_dialog)

    def on_sample_done(self, result) -> None:
        """Check the points as an analyst would in the form, then press Assess accuracy. The stand-in
        analyst agrees with the map except at every fourth point, where it picks the next class: a check
        of the window, not a claim about the map."""
        from qgis.core import QgsProject

        self.check("accuracy sample finished", result.ok, result.user_message())
        layer = QgsProject.instance().mapLayer(self.dock.sample.layer_id)
        if layer is None:
            return self.finish()
        reference = layer.fields().indexOf("reference")
        widget = layer.editorWidgetSetup(reference)
        choices = [name for entry in widget.config().get("map", []) for name in entry]
        self.check("sample points editable, the class names to pick from",
                   layer.isEditable() and widget.type() == "ValueMap" and choices[1:] == self.class_names,
                   f"{layer.featureCount()} points; choices {choices}")
        self.show_maps(False)  # the analyst checks against the image, not the map
        self.dock.results.check_button.click()  # Next point to check: zoom to its pixel, boxed
        band = self.dock.marker.band
        first = min(f["id"] for f in layer.getFeatures())
        self.dock.widget().ensureWidgetVisible(self.dock.results.check_row)
        self.check("Next point to check zooms to the first point's pixel, boxed",
                   self.dock.sample.shown == first and band is not None
                   and self.iface.mapCanvas().extent().contains(band.asGeometry().boundingBox()),
                   self.dock.train.status_label.text())
        self.later(3, lambda: self.check_points(layer))

    def show_maps(self, visible: bool) -> None:
        """Show or hide the SemiSeg map layers (not the sample)."""
        from qgis.core import QgsProject

        group = QgsProject.instance().layerTreeRoot().findGroup("SemiSeg")
        for node in group.findLayers() if group else []:
            if node.layer().customProperty("semiseg/role") in ("prediction", "confidence"):
                node.setItemVisibilityChecked(visible)

    def check_points(self, layer) -> None:
        """The first point answered in the dock (Set, next), the rest in the layer's edit buffer."""
        self.shoot("8-check-point.png")
        results = self.dock.results
        shown = next(f for f in layer.getFeatures() if f["id"] == self.dock.sample.shown)
        results.check_combo.setCurrentIndex(results.check_combo.findData(shown["map_class"]))
        results.check_set_button.click()
        self.check("Set, next stores the class and shows the next point",
                   layer.getFeature(shown.id())["reference"] == shown["map_class"]
                   and self.dock.sample.shown == shown["id"] + 1, self.dock.train.status_label.text())
        reference = layer.fields().indexOf("reference")
        k = len(self.class_names)
        for i, f in enumerate(layer.getFeatures()):
            if f["id"] != shown["id"]:
                value = f["map_class"] if i % 4 else f["map_class"] % k + 1
                layer.changeAttributeValue(f.id(), reference, value)
        self.follow(self.dock.assess_accuracy(), "accuracy assessment", self.on_assess_done)

    def on_assess_done(self, result) -> None:
        from qgis.core import QgsProject

        self.check("accuracy assessment finished", result.ok, result.user_message())
        text = self.dock.results.accuracy_label.text()
        self.check("accuracy with 95 % intervals under Results",
                   "Overall accuracy" in text and " ± " in text
                   and all(f"{name}: user's" in text for name in self.class_names), text[:300])
        group = QgsProject.instance().layerTreeRoot().findGroup("SemiSeg")
        layers = [node.layer() for node in group.findLayers()] if group else []
        roles = [layer.customProperty("semiseg/role") for layer in layers]
        self.show_maps(True)
        if "prediction" in roles:
            self.arrange_results_view(layers[roles.index("prediction"):])
            extent = layers[roles.index("prediction")].extent()
            extent.scale(1.05)
            self.iface.mapCanvas().setExtent(extent)  # the whole map with the sample's points
        self.dock.widget().ensureWidgetVisible(self.dock.results.accuracy_label)
        self.later(3, lambda: (self.shoot("9-accuracy.png"), self.reopen()))

    def reopen(self) -> None:
        """Save the project, close it (File > New) and open it again (File > Open): the dock forgets the
        map, then picks it up again with its sample and last assessment."""
        from qgis.core import QgsProject

        project_file = self.out / "work" / "gui-check.qgz"
        accuracy = self.dock.results.accuracy_label.text()
        prediction = self.dock.results.prediction
        self.check("project saved", QgsProject.instance().write(str(project_file)), str(project_file.name))
        self.iface.newProject(False)
        self.check("a new project clears the dock's map",
                   not self.dock.results.polygons_button.isEnabled() and not self.dock.results.prediction,
                   self.dock.results.prediction)
        self.iface.addProject(str(project_file))
        results = self.dock.results
        self.check("the reopened project's map is picked up: scores, areas, sample, assessment",
                   results.prediction == prediction and results.assess_button.isEnabled()
                   and results.spot_button.isEnabled() and results.accuracy_label.text() == accuracy
                   and "mIoU" in results.metrics_label.text() and bool(self.dock.last_model),
                   self.dock.train.status_label.text())
        self.dock.widget().ensureWidgetVisible(results.metrics_label)
        self.later(3, lambda: (self.shoot("10-reopened.png"), self.other_image()))

    def other_image(self) -> None:
        """A second image in the project (a copy of the sample), segmented with the model (Apply model to
        another raster, the whole raster); then picking the second image keeps its map, and picking the
        first again must take up the first's own map, sample and assessment."""
        from qgis.core import QgsProject, QgsRasterLayer

        self.first = self.dock.layers.image_layer()
        self.first_map = (self.dock.results.prediction, self.dock.results.accuracy_label.text())
        copy = self.out / "work" / "landsat_rgb_copy.tif"
        shutil.copy(self.sample / "landsat_rgb.tif", copy)
        self.second = QgsRasterLayer(str(copy), "landsat_rgb copy", "gdal")
        QgsProject.instance().addMapLayer(self.second)
        self.dock.train.set_segment("whole")
        self.follow(self.dock.apply_model(self.second), "the model applied to a second image",
                    self.on_other_image_done)

    def on_other_image_done(self, result) -> None:
        results = self.dock.results
        second_map = results.prediction
        self.check("a second image segmented: its map under Results",
                   result.ok and second_map != self.first_map[0] and "landsat_rgb_copy" in second_map,
                   result.user_message())
        # the picker still shows the first image (applying a model to a raster does not change it)
        self.dock.layers.set_image_layer(self.second)
        self.check("picking the second image keeps its map (no sample of its own)",
                   results.prediction == second_map and not results.assess_button.isEnabled(),
                   self.dock.train.status_label.text())
        self.dock.layers.set_image_layer(self.first)
        self.check("picking the first image again takes up its map, sample and assessment",
                   results.prediction == self.first_map[0] and results.assess_button.isEnabled()
                   and results.accuracy_label.text() == self.first_map[1],
                   self.dock.train.status_label.text())
        self.dock.widget().ensureWidgetVisible(self.dock.layers)
        self.later(3, lambda: (self.shoot("12-image-picked.png"), self.finish()))

    def time_out(self) -> None:
        self.check("finished in time", False, "timed out")
        self.shoot("timeout.png")
        self.finish()

    def finish(self) -> None:
        from qgis.core import QgsProject
        from qgis.PyQt.QtCore import QTimer

        heavy = sorted(name for name in ("torch", "torchvision", "rasterio") if name in sys.modules)
        self.check("no torch or rasterio in QGIS's process", not heavy, ", ".join(heavy) or "none")
        (self.out / "result.json").write_text(json.dumps({"checks": self.checks}, indent=2), encoding="utf-8")
        QgsProject.instance().setDirty(False)  # no "save the project?" question on quit
        QTimer.singleShot(0, self.app.quit)  # app.exit() alone leaves QGIS hanging


def painted_counts(path: str, num_classes: int) -> list[int]:
    from osgeo import gdal

    dataset = gdal.Open(path)  # keep the dataset referenced while its band is read
    data = dataset.GetRasterBand(1).ReadRaster()
    return [data.count(bytes([value])) for value in range(num_classes + 1)]


def drive() -> None:
    from qgis.utils import iface

    driver = Driver(iface)
    globals()["_gui_check_driver"] = driver  # keep it alive after this script returns
    driver.later(2, driver.start)


def inside_qgis() -> bool:
    try:
        from qgis.utils import iface
    except ImportError:
        return False
    return iface is not None


if inside_qgis():
    drive()
elif __name__ == "__main__":
    sys.exit(launch())
