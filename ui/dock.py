"""The SemiSeg dock: wires the small panels, the brush and the engine tasks together.

Each panel is its own widget (layers, classes, brush, train, results); this class only connects
their signals to the label file, the map tool and the engine tasks, and reports to the message bar.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qgis.core import (
    Qgis,
    QgsApplication,
    QgsCoordinateTransform,
    QgsCsException,
    QgsMessageLog,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsDockWidget
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtWidgets import (
    QGroupBox,
    QMessageBox,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from . import settings
from .brush_panel import BrushPanel
from .class_table import ClassTable
from .engine_process import EngineResult, EngineSetup, forget_torch_checks
from .jobs import (
    MAP_PRODUCT_JOBS,
    AssessJob,
    PolygonsJob,
    PredictJob,
    SampleJob,
    TrainJob,
    encoder_cache_path,
    free_path,
    new_run_folder,
)
from .label_raster import (
    LabelClass,
    create_label_raster,
    default_classes,
    read_classes,
    remove_class,
    write_classes,
)
from .layer_files import (
    engine_source,
    is_label_raster,
    layer_file,
    layer_nodata,
    missing_file,
    output_base,
    overwrite_problem,
    same_file,
)
from .layer_panel import LayerPanel
from .map_facts import accuracy_summary, map_fact
from .map_record import REPORT_PROPERTY, keep_record, last_report, map_records, samples_of
from .paint_tool import LabelPaintTool
from .place_marker import PlaceMarker
from .result_layers import ROLE_PROPERTY, add_polygons, add_results, add_sample, map_title
from .results_panel import ResultsPanel
from .sample_check import SampleCheck
from .styles import style_class_layer
from .task import LOG_TAG, EngineProbe, EngineTask
from .train_panel import TrainPanel

TITLE = "SemiSeg"
SPOT_CONTEXT = 6.0  # a place to paint, shown six times its size: with its surroundings
CHECK_CONTEXT = 41.0  # a sample point's view: its pixel and 20 pixels around it on every side


class SemiSegDock(QgsDockWidget):
    """Paint labels, train and segment, see the results; one engine task at a time."""

    def __init__(self, iface, parent: QWidget | None = None) -> None:
        super().__init__(TITLE, parent)
        self.setObjectName("SemiSegDock")
        self.iface = iface
        self.canvas = iface.mapCanvas()
        self.layers = LayerPanel()
        self.classes = ClassTable()
        self.brush = BrushPanel()
        self.train = TrainPanel()
        self.results = ResultsPanel()
        self.tool = LabelPaintTool(self.canvas)
        self.task: EngineTask | None = None  # the engine run in progress
        self.probe: EngineProbe | None = None  # the engine search in progress
        self.engine: EngineSetup | None = None
        # the last successful Train and segment: (image file, method, preset) -> its model file
        self.last_model: tuple[tuple[str, str, str], str] | None = None
        self.last_map: tuple[str, str] = ("", "")  # the last map's image file and layer title
        self.map_labels: tuple[str, str] = ("", "")  # the labels it was trained on and their field, if any
        # the last map's least sure places (engine spots: bounds in the image's CRS), how many were shown
        # and that CRS
        self.spots: list[dict] = []
        self.spots_shown = 0
        self.spot_crs = None
        self.marker = PlaceMarker(self.canvas)  # the place shown: a spot, or a sample point's pixel
        self.sample = SampleCheck()  # the accuracy sample of the last map and the point being checked
        self._closed = False  # set by close_down(): no new background work after that
        self._orphan: EngineTask | None = None  # the run going on when its project was closed
        self._picking = False  # the dock itself sets the pickers (a map picked up): no image to follow
        self._build()
        self._connect()
        self.train.set_preset(settings.last_choice("preset", "fast"))
        self.train.set_segment(settings.last_choice("segment", "whole"))
        self.train.set_engine_python(settings.engine_python())
        self._on_labels_changed(self.layers.label_layer())
        project = QgsProject.instance()
        project.readProject.connect(self._on_project_read)
        project.cleared.connect(self.forget_project)
        self._pick_up_project()  # opened on a project that has SemiSeg maps already
        QTimer.singleShot(0, self.detect_engine)  # only once an event loop runs

    def _build(self) -> None:
        paint_box = QGroupBox("Classes and brush")
        paint_layout = QVBoxLayout(paint_box)
        paint_layout.addWidget(self.classes)
        paint_layout.addWidget(self.brush)
        content = QWidget()
        layout = QVBoxLayout(content)
        for widget in (self.layers, paint_box, self.train, self.results):
            layout.addWidget(widget)
        layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setWidget(content)
        # Never narrower than the panels: scroll down, never sideways.
        scrollbar = scroll.verticalScrollBar().sizeHint().width()
        scroll.setMinimumWidth(content.minimumSizeHint().width() + scrollbar)
        self.setWidget(scroll)

    def _connect(self) -> None:
        self.layers.labels_changed.connect(self._on_labels_changed)
        self.layers.image_changed.connect(self._on_image_changed)
        self.layers.new_label_layer_requested.connect(self.create_label_layer)
        self.classes.classes_edited.connect(self._on_classes_edited)
        self.classes.remove_requested.connect(self._on_remove_requested)
        self.classes.current_changed.connect(lambda _value: self._sync_tool())
        self.brush.paint_toggled.connect(self.set_painting)
        self.brush.size_changed.connect(lambda _size: self._sync_tool())
        self.brush.eraser_toggled.connect(lambda _on: self._sync_tool())
        self.brush.undo_requested.connect(self.tool.undo)
        self.brush.redo_requested.connect(self.tool.redo)
        self.tool.painted.connect(lambda: self.brush.set_undo_enabled(self.tool.can_undo, self.tool.can_redo))
        self.tool.class_key.connect(self._on_class_key)
        self.tool.eraser_key.connect(self.brush.eraser_check.toggle)
        self.tool.size_key.connect(self.brush.step_size)
        self.tool.problem.connect(lambda text: self._message(text, Qgis.Warning))
        self.canvas.mapToolSet.connect(self._on_map_tool_set)
        self.train.train_requested.connect(self.start_training)
        self.train.cancel_requested.connect(self.cancel)
        self.train.engine_python_changed.connect(self._on_engine_python_changed)
        self.results.apply_requested.connect(self.apply_model)
        self.results.save_requested.connect(self.save_model)
        self.results.load_requested.connect(self.load_model)
        self.results.polygons_requested.connect(self.make_polygons)
        self.results.next_spot_requested.connect(self.show_next_spot)
        self.results.sample_requested.connect(self.make_sample)
        self.results.assess_requested.connect(self.assess_accuracy)
        self.results.next_check_requested.connect(self.show_next_check)
        self.results.check_answered.connect(self.answer_check)

    # --- engine discovery ---------------------------------------------------------------------------

    def detect_engine(self) -> None:
        """Look for the engine interpreter in the background; training is offered once it is found."""
        configured = settings.engine_python()
        if self._closed or (self.probe is not None and self.probe.configured == configured):
            return  # closed, or the same question is already being asked
        self.engine = None
        self.train.set_engine_setup(None)
        self.probe = EngineProbe(configured, self)
        self.probe.probed.connect(self._on_engine_probed)
        self.probe.start()

    def _on_engine_probed(self, setup: EngineSetup) -> None:
        if setup.configured != settings.engine_python():
            return  # the answer to an older question: the setting changed meanwhile
        self.probe = None
        self.engine = setup
        self.train.set_engine_setup(setup, settings.last_choice("method", "supervised"),
                                    settings.last_choice("device", "auto"))

    def _on_engine_python_changed(self, path: str) -> None:
        settings.set_engine_python(path)
        forget_torch_checks()
        self.detect_engine()

    # --- labels and classes -------------------------------------------------------------------------

    def label_raster_layer(self) -> QgsRasterLayer | None:
        layer = self.layers.label_layer()
        return layer if is_label_raster(layer) else None

    def _on_labels_changed(self, layer) -> None:
        paintable = is_label_raster(layer)
        self.tool.set_layer(layer if paintable else None)
        self.classes.setEnabled(paintable)
        self.brush.setEnabled(paintable)
        self.brush.set_undo_enabled(False)
        if paintable:
            classes = read_classes(layer_file(layer))
            if not classes:  # a blank label raster: start with two classes, stored in the file
                classes = default_classes(2)
                self._change_label_file(write_classes, layer, classes)
            self.classes.set_classes(classes)
            style_class_layer(layer, classes)
        else:
            self.classes.set_classes([])
            self.set_painting(False)
        self._sync_tool()

    def create_label_layer(self, path: str | Path) -> QgsRasterLayer | None:
        """Write an empty label GeoTIFF on the image's grid at ``path``, add it and select it."""
        image_file = layer_file(self.layers.image_layer())
        if image_file is None:
            self._message("Pick an image stored in a file (e.g. a GeoTIFF) first.", Qgis.Warning)
            return None
        asked = Path(path)
        path = asked if asked.suffix.lower() in (".tif", ".tiff") else Path(f"{asked}.tif")
        problem = overwrite_problem(asked, path, QgsProject.instance())
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        classes = self.classes.classes() or default_classes(2)
        try:
            create_label_raster(image_file, path, classes)
        except (OSError, RuntimeError) as e:
            self._message(f"Cannot create {path}: {e}", Qgis.Critical)
            return None
        layer = QgsRasterLayer(str(path), path.stem, "gdal")
        style_class_layer(layer, classes)
        QgsProject.instance().addMapLayer(layer)
        self.layers.set_label_layer(layer)
        return layer

    def _on_classes_edited(self, classes: list[LabelClass]) -> None:
        layer = self.label_raster_layer()
        if layer is None:
            gone = missing_file(self.layers.label_layer())
            if gone:  # the table shows the change; say that the file cannot keep it
                self._message(f"The label file {gone} is no longer there, so the classes cannot be saved "
                              "in it; add it again from where it is now.", Qgis.Warning)
            return
        self._change_label_file(write_classes, layer, classes)
        style_class_layer(layer, classes)
        self._sync_tool()

    def _change_label_file(self, change, layer: QgsRasterLayer, *args) -> bool:
        """Run ``change(path, *args)`` on the label file, then let QGIS see the new file; False on failure."""
        try:
            change(layer_file(layer), *args)
        except (OSError, RuntimeError) as e:  # RuntimeError: GDAL with exceptions on (a global switch)
            self._message(f"Cannot write the label file {layer_file(layer)}: {e}", Qgis.Critical)
            return False
        layer.dataProvider().reloadData()
        return True

    def _on_remove_requested(self, value: int) -> None:
        layer = self.label_raster_layer()
        if layer is None:
            return
        classes = self.classes.classes()
        question = (f"Remove class '{classes[value - 1].name}' and erase its painted pixels? The classes "
                    "after it move up by one. This cannot be undone.")
        if QMessageBox.question(self, TITLE, question) != QMessageBox.Yes:
            return
        del classes[value - 1]
        if not (self._change_label_file(remove_class, layer, value)
                and self._change_label_file(write_classes, layer, classes)):
            return
        self.tool.clear_undo()
        self.brush.set_undo_enabled(False)
        self.classes.set_classes(classes)
        style_class_layer(layer, classes)
        self._sync_tool()

    # --- brush --------------------------------------------------------------------------------------

    def set_painting(self, on: bool) -> None:
        """Make the brush the canvas's map tool (or put it away)."""
        if on and (self.tool.layer is None or not self.classes.current_value()):
            self._message("Create or pick a label raster and select a class to paint.", Qgis.Info)
            on = False
        if on:
            self._sync_tool()
            self.canvas.setMapTool(self.tool)
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)
        self.brush.set_painting(on)

    def _on_map_tool_set(self, new_tool, _old_tool=None) -> None:
        self.brush.set_painting(new_tool is self.tool)

    def _sync_tool(self) -> None:
        self.tool.value = self.classes.current_value() or 1
        self.tool.colour = self.classes.current_colour()
        self.tool.diameter = self.brush.size_spin.value()
        self.tool.eraser = self.brush.eraser_check.isChecked()
        self.tool.refresh_circle()

    def _on_class_key(self, value: int) -> None:
        """A digit key while painting: paint that class (and not the eraser), or say there is none."""
        count = len(self.classes.classes())
        if value > count:
            self._message(f"There is no class {value}: the label raster has {count} "
                          f"class{'' if count == 1 else 'es'} (Add class makes more).", Qgis.Info)
            return
        self.classes.select_value(value)
        self.brush.eraser_check.setChecked(False)

    # --- train and segment --------------------------------------------------------------------------

    def start_training(self) -> EngineTask | None:
        """Check the inputs, make a run folder and start "Train and segment" in the background."""
        image_file = layer_file(self.layers.image_layer())
        labels = self.layers.label_layer()
        labels_file = layer_file(labels)
        problem = self._input_problem(image_file, labels, labels_file)
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        options = self.train.options()
        area, problem = self._segment_area(self.layers.image_layer(), options.segment)
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        for name in ("method", "preset", "device", "segment"):
            settings.remember_choice(name, getattr(options, name))
        base = output_base(labels_file)
        folder = self._run_folder(base, Path(image_file).stem)
        if folder is None:
            return None
        job = TrainJob(image=image_file, labels=engine_source(labels), out_dir=str(folder),
                       label_field=self.layers.label_field(), method=options.method, preset=options.preset,
                       device=options.device, steps=options.steps, tile_size=options.tile_size,
                       val_fraction=options.val_fraction, seed=options.seed, smooth=options.smooth,
                       area=area, encoder_cache=str(encoder_cache_path(base, image_file, options.preset)),
                       warm_start=self._model_to_continue(image_file, options),
                       nodata=self._nodata(self.layers.image_layer()))
        return self._start_task(job, folder)

    def _nodata(self, layer) -> tuple[float, ...]:
        """The no-data values set on ``layer`` in QGIS, for the engine; what it cannot take as QGIS does (a
        range) is named in a message."""
        values, problems = layer_nodata(layer)
        for problem in problems:
            self._message(f"{layer.name()}: {problem}.", Qgis.Info)
        return tuple(values)

    def _model_to_continue(self, image_file: str, options) -> str:
        """The last run's model when training may continue from it (same image, method and preset, the
        file still there, the option on), else "" (from scratch)."""
        if not options.continue_last or self.last_model is None:
            return ""
        key, model = self.last_model
        same = key == (str(Path(image_file).resolve()), options.method, options.preset)
        return model if same and Path(model).is_file() else ""

    def _segment_area(self, layer: QgsRasterLayer, segment: str) -> tuple[tuple | None, str]:
        """(area, problem): the bounds (xmin, ymin, xmax, ymax, in ``layer``'s CRS) of the part of ``layer``
        the map view shows when ``segment`` is "view" (None: the whole raster), or a sentence saying why
        there is none."""
        if segment != "view":
            return None, ""
        view = self.canvas.mapSettings()
        try:
            to_image = QgsCoordinateTransform(view.destinationCrs(), layer.crs(), QgsProject.instance())
            extent = to_image.transformBoundingBox(view.visibleExtent())
        except QgsCsException:
            extent = None
        if extent is None or not extent.intersects(layer.extent()):
            return None, (f"The map view shows none of {layer.name()}; pan to it, or set Segment to "
                          "Whole raster.")
        part = extent.intersect(layer.extent())
        if part.width() <= 0 or part.height() <= 0:
            return None, (f"The map view shows none of {layer.name()}; pan to it, or set Segment to "
                          "Whole raster.")
        return (part.xMinimum(), part.yMinimum(), part.xMaximum(), part.yMaximum()), ""

    def _run_folder(self, base: Path, name: str) -> Path | None:
        """A new run folder under ``base``, or None (and the reason in the message bar) when it cannot be
        made there (a read-only project folder, a file in the way)."""
        try:
            return new_run_folder(base, name)
        except OSError as e:
            self._message(f"SemiSeg cannot make its run folder in {base} ({e.strerror or e}); save the "
                          "project in a folder you can write to.", Qgis.Warning)
            return None

    def _input_problem(self, image_file, labels, labels_file, image=None) -> str:
        if self.task is not None:
            return "SemiSeg is already running; wait for it or cancel it."
        if self.engine is None or not self.engine.python:
            return self.engine.problem if self.engine else "Still looking for a Python with torch; try again."
        image = image or self.layers.image_layer()
        if image is not None and image.customProperty(ROLE_PROPERTY) in ("prediction", "confidence"):
            return (f"{image.name()} is a map SemiSeg made; pick the image it was made from (or another "
                    "image) to segment.")
        if image_file is None:
            gone = missing_file(image)
            if gone:
                return f"The image file {gone} is no longer there; add the image again from where it is now."
            return "Pick an image stored in its own file (e.g. a GeoTIFF)."
        if labels_file is None:
            gone = missing_file(labels)
            if gone:
                return f"The label file {gone} is no longer there; add it again from where it is now."
            return "Create or pick a label layer (stored in a file) and paint a few strokes per class."
        if labels is not None and same_file(image_file, labels_file):
            return "The labels are the image itself; pick or create a label layer (New…)."
        if isinstance(labels, QgsVectorLayer) and not self.layers.label_field():
            return "Pick the class field of the vector labels."
        if isinstance(labels, QgsVectorLayer) and labels.isEditable() and labels.isModified():
            return (f"The label layer {labels.name()} has unsaved edits, which the engine cannot see; save "
                    "them (Save Layer Edits) first.")
        return ""

    def apply_model(self, layer: QgsRasterLayer) -> EngineTask | None:
        """Segment ``layer`` with the last trained model, in the background."""
        image_file = layer_file(layer)
        problem = self._input_problem(image_file, None, self.results.model_path or None, layer)
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        options = self.train.options()
        area, problem = self._segment_area(layer, options.segment)
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        folder = self._run_folder(output_base(image_file), f"{Path(image_file).stem}-applied")
        if folder is None:
            return None
        job = PredictJob(self.results.model_path, image_file, str(folder), options.device, options.smooth,
                         area, self._nodata(layer))
        return self._start_task(job, folder)

    def make_polygons(self, min_pixels: int) -> EngineTask | None:
        """The last map as polygons (a GeoPackage beside it), in the background."""
        problem = self._map_problem()
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        prediction = self.results.prediction
        out = free_path(Path(prediction).parent, "polygons", ".gpkg")
        job = PolygonsJob(prediction, str(out), min_pixels, self.last_map[0], self.last_map[1])
        return self._start_task(job, None)

    def _map_problem(self) -> str | None:
        """Why the last map cannot be worked on (None: it can)."""
        prediction = self.results.prediction
        problem = self._input_problem(prediction or None, None, prediction or None)
        if not problem and not Path(prediction).is_file():
            problem = f"The map {prediction} is gone; train or apply a model again."
        return problem

    def make_sample(self, per_class: int, total: int = 0) -> EngineTask | None:
        """Random points in each class of the last map (a GeoPackage beside it), in the background:
        ``per_class`` of each, or ``total`` shared by the classes' areas with at least ``per_class`` each."""
        problem = self._map_problem()
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        prediction = self.results.prediction
        out = free_path(Path(prediction).parent, "accuracy-sample", ".gpkg")
        job = SampleJob(prediction, str(out), per_class, self.last_map[0], self.last_map[1], total)
        return self._start_task(job, None)

    def show_next_check(self) -> int | None:
        """Zoom to the sample's next point without a reference class and box the pixel it stands for, for
        the class picker under Results; returns its id (None when every point is checked)."""
        layer = self.sample.layer()
        if layer is None:
            self._message("The accuracy sample of this map is no longer in the project; make a new one.",
                          Qgis.Warning)
            return None
        feature, left, total = self.sample.next_point()
        if feature is None:
            self.marker.clear()
            self.results.show_check_point(False)
            self.train.show_status(f"All {total} points are checked: Assess accuracy.")
            return None
        pixel = self.sample.pixel(feature.geometry().asPoint())
        if self.marker.show(pixel, layer.crs(), CHECK_CONTEXT, fill=False) is None:
            self._message("This point cannot be shown in the map's CRS.", Qgis.Warning)
            return None
        self.train.show_status(f"Point {feature['id']} ({left} of {total} still to check): pick the class "
                               "that is really in the red box, under Results (In the box), then Set, next.")
        self.results.show_check_point(True)
        return feature["id"]

    def answer_check(self, value: int) -> int | None:
        """Store ``value`` as the reference class of the point shown (in the layer's edit buffer; Assess
        accuracy saves it) and show the next point; returns its id."""
        return self.show_next_check() if self.sample.answer(value) else None

    def assess_accuracy(self) -> EngineTask | None:
        """The last map's accuracy from its sample, once the analyst has checked some of its points: the
        sample's unsaved edits are saved first (the engine reads the file)."""
        problem = self._map_problem()
        sample = ""
        if not problem:
            sample, problem = self.sample.save()
        if problem:
            self._message(problem, Qgis.Warning)
            return None
        report = free_path(Path(sample).parent, "accuracy", ".json", companions=(".csv",))
        labels, field = self.map_labels
        if labels and not Path(labels.split("|")[0]).is_file():  # they only serve a warning: go without
            self._message(f"The labels the map was trained on ({labels.split('|')[0]}) are no longer there, "
                          "so reference points on them are not looked for.", Qgis.Info)
            labels, field = "", ""
        return self._start_task(AssessJob(self.results.prediction, sample, str(report),
                                          labels=labels, label_field=field), None)

    def _start_task(self, job, folder: Path | None) -> EngineTask:
        # a run's own new folder goes when it fails; polygons write into an existing one (the engine
        # itself leaves no partial file)
        task = EngineTask(job, self.engine.python, cleanup_dir=str(folder) if folder else None)
        task.event_received.connect(self.train.show_event)
        task.progressChanged.connect(self.train.show_progress)
        task.completed.connect(self._on_task_completed)
        self.task = task
        self.train.set_running(True)
        if not isinstance(job, MAP_PRODUCT_JOBS):
            self.results.show_warnings([])  # the last run's warnings are not this one's
        QgsApplication.taskManager().addTask(task)
        return task

    def cancel(self) -> None:
        if self.task is not None:
            self.train.show_status("Cancelling…")
            self.task.cancel()

    def _on_task_completed(self, result: EngineResult) -> None:
        task, self.task = self.task, None
        self.train.set_running(False)
        orphan, self._orphan = task is self._orphan, None
        if orphan:  # its project was closed: nothing goes into whichever project is open now
            job = task.job
            where = getattr(job, "out_dir", "") or getattr(job, "out", "") or getattr(job, "report", "")
            if result.ok:
                self._message(f"The run finished after its project was closed, so nothing was added to "
                              f"this project; its files are in {where}.", Qgis.Info)
            elif not result.cancelled:
                self._message(result.user_message(), Qgis.Critical)
            self.train.show_status("")
            self._pick_up_project()  # the project opened meanwhile, not picked up while the run went on
            return
        if result.ok:
            self._show_results(task.job, result)
        elif result.cancelled:
            self.train.show_status("Cancelled.")
            self._message("Cancelled; nothing was added to the project.", Qgis.Info)
        else:
            self.train.show_status(result.user_message())
            self._message(result.user_message(), Qgis.Critical)

    def _show_results(self, job, result: EngineResult) -> None:
        done, found = result.done, result.artifacts()
        if isinstance(job, PolygonsJob):
            self._show_polygons(job, done)
            return
        if isinstance(job, SampleJob):
            self._show_sample(job, done, result.warnings)
            return
        if isinstance(job, AssessJob):
            self._show_accuracy(job, done, result.warnings)
            return
        prediction = done.get("prediction") or found.get("prediction")
        confidence = done.get("confidence") or found.get("confidence")
        if isinstance(job, PredictJob):
            confidence = confidence or job.confidence
        if not prediction:  # an engine of another version, or a broken one
            self.train.show_status("The engine named no map.")
            self._message("The engine finished without naming its map; check the engine Python under "
                          "Advanced (it may be another SemiSeg version).", Qgis.Critical)
            return
        try:
            title = map_title(job.image, QgsProject.instance()) + (" visible area" if job.area else "")
            added = add_results(QgsProject.instance(), prediction, confidence, job.image, title)
        except OSError as e:
            self._message(f"The engine finished but its output cannot be shown: {e}", Qgis.Critical)
            return
        record = {"image": job.image, "title": title, "area": bool(job.area),
                  "folder": str(Path(prediction).parent),  # where it was made: map_record follows a move
                  "class_areas": map_fact(done, "class_areas"), "spots": map_fact(done, "spots") or [],
                  "warnings": result.warnings}
        if isinstance(job, TrainJob):
            record.update(labels=job.labels, label_field=job.label_field, method=job.method,
                          preset=job.preset, model=done.get("model") or found.get("model", ""),
                          metrics=done.get("metrics") or {})
        else:
            record["model"] = job.model
        keep_record(added[0], record)  # saved with the project: the dock picks it up when it is opened
        self._use_map({**record, "prediction": prediction}, added[0])
        self.train.show_progress(100)
        warned = f", with {len(result.warnings)} warning(s) (see Results)" if result.warnings else ""
        self.train.show_status(f"Done in {done.get('seconds', 0):.0f} s{warned}.")
        self._message("Prediction and confidence layers are in the SemiSeg group.", Qgis.Success)
        for warning in result.warnings:
            self._message(warning, Qgis.Warning)

    def _use_map(self, record: dict, layer: QgsRasterLayer) -> None:
        """Make the map of ``record`` (map_record) the one the Results buttons act on: its scores, class
        areas, least sure places and model; a trained map's model is also the one to continue from."""
        if record.get("metrics") is not None or record.get("method"):
            self._use_trained(record)
        self.map_labels = (record.get("labels") or "", record.get("label_field") or "")
        self.spots = record.get("spots") or []
        self.spots_shown, self.spot_crs = 0, layer.crs()
        self.marker.clear()
        self.results.show_map(record["prediction"], record.get("class_areas"), bool(record.get("area")),
                              len(self.spots))
        self.sample.forget()  # a sample belongs to the map it was drawn from
        self.last_map = (record.get("image") or "", record.get("title") or "")
        self.results.show_warnings(record.get("warnings") or [])

    def _use_trained(self, record: dict) -> None:
        """A trained map's scores and model under Results; a model trained here (its record names the
        method) is also the one the next training may continue from."""
        self.results.show_run(record.get("metrics") or {}, record.get("model", ""))
        if record.get("method"):
            key = (str(Path(record["image"]).resolve()), record["method"], record["preset"])
            self.last_model = (key, record["model"])

    # --- the project: closed, opened ----------------------------------------------------------------

    def forget_project(self) -> None:
        """The project was closed: its maps, sample and model are no longer the dock's to act on, and a
        run still going ends without adding anything to the next project (its files stay on disk)."""
        if self.task is not None:
            self._orphan = self.task
        self.last_model, self.last_map, self.map_labels = None, ("", ""), ("", "")
        self.spots, self.spots_shown, self.spot_crs = [], 0, None
        self.marker.clear()
        self.sample.forget()
        self.results.clear()

    def _on_project_read(self, _document) -> None:
        if self.task is None:  # a run still going shows its own map when it ends
            self._pick_up_project()

    def _pick_up_project(self) -> None:
        """restore_from_project(), which a damaged or foreign record in the project must not stop: the
        dock then starts clean and says so."""
        try:
            self.restore_from_project()
        except Exception as e:  # noqa: BLE001 (anything a hand-edited project holds)
            QgsMessageLog.logMessage(f"Picking up the project's last map failed: {e!r}", LOG_TAG,
                                     Qgis.Warning)
            self.forget_project()
            self._message("SemiSeg could not pick up this project's last map (details in the SemiSeg log); "
                          "train or apply a model again.", Qgis.Warning)

    def restore_from_project(self) -> dict | None:
        """Pick up where the opened project was left: its last map (scores, class areas, least sure
        places, model to continue from), that map's image and labels in the pickers, and the map's
        accuracy sample with its last assessment. Returns the last map's record (None: no map)."""
        records = map_records(QgsProject.instance())
        if not records:
            return None
        record = self._resume(records[0], records, pick_image=True)
        self.train.show_status(f"Picked up {Path(record['prediction']).parent.name} from the project: its "
                               "map's results are under Results.")
        return record

    def _on_image_changed(self, layer) -> None:
        if self._picking or self.task is not None or layer is None:  # a run shows its own map when it ends
            return
        try:
            self.follow_image(layer)
        except Exception as e:  # noqa: BLE001 (anything a hand-edited project holds)
            QgsMessageLog.logMessage(f"Picking up the map of {layer.name()} failed: {e!r}", LOG_TAG,
                                     Qgis.Warning)

    def follow_image(self, layer: QgsRasterLayer) -> dict | None:
        """The image picked is another one: its newest map in the project (its results, model, labels and
        accuracy sample) becomes the one the dock acts on, as when the project was opened. An image
        without a map leaves the dock as it is. Returns the record taken up (None: none)."""
        path = layer_file(layer)
        if not path:
            return None
        records = map_records(QgsProject.instance())
        mine = [pair for pair in records if same_file(pair[1].get("image"), path)]
        if not mine or mine[0][1]["prediction"] == self.results.prediction:
            return None
        record = self._resume(mine[0], records, pick_image=False)
        self.train.show_status(f"The map of {layer.name()} ({Path(record['prediction']).parent.name}) is "
                               "under Results.")
        return record

    def _resume(self, chosen: tuple, records: list[tuple], pick_image: bool) -> dict:
        """Make the map ``chosen`` (layer, record), one of the project's ``records``, the dock's: its
        results, the model it came from, its labels (and image, ``pick_image``) in the pickers, and its
        accuracy sample with the last assessment that still holds."""
        project = QgsProject.instance()
        layer, record = chosen
        self._use_map(record, layer)
        if not record.get("method"):  # a map applied with a model: that model's training, if done here
            trained = next((r for _, r in records if r.get("method") and record.get("model")
                            and r.get("model") == record["model"]), None)
            if trained is not None:
                self._use_trained(trained)
            elif record.get("model") and record.get("metrics") is None:
                self.results.show_loaded(record["model"])  # a map of a model loaded from file

        def layer_of(path: str | None):  # the project's layer of that file (not a SemiSeg result)
            return next((other for other in project.mapLayers().values()
                         if path and layer_file(other) == path and not other.customProperty(ROLE_PROPERTY)),
                        None)

        self._picking = True
        try:
            if pick_image and (image := layer_of(record.get("image"))) is not None:
                self.layers.set_image_layer(image)
            if (labels := layer_of(record.get("labels"))) is not None:
                self.layers.set_label_layer(labels, record.get("label_field") or "")
        finally:
            self._picking = False
        samples = samples_of(project, record["prediction"])
        if samples:
            self.sample.start(samples[0], record["prediction"])
            self.results.show_sample(True, [c.name for c in read_classes(record["prediction"])])
            report = last_report(samples[0])
            if report is not None:
                self.results.show_accuracy(report, report.get("warning_messages") or [])
        return record

    def show_next_spot(self) -> dict | None:
        """Zoom the map to the next of the last map's least sure places, boxed; returns that spot."""
        if not self.spots or self.spot_crs is None:
            return None
        spot = self.spots[self.spots_shown % len(self.spots)]
        self.spots_shown += 1
        if self.marker.show(QgsRectangle(*spot["bounds"]), self.spot_crs, SPOT_CONTEXT) is None:
            self._message("This place cannot be shown in the map's CRS.", Qgis.Warning)
            return None
        n = len(self.spots)
        self.results.show_spot(self.spots_shown, n)
        self.train.show_status(f"Place {(self.spots_shown - 1) % n + 1} of {n} where the map is least sure "
                               f"(confidence {spot['confidence']:.2f}): paint the classes you see in the "
                               "box, then Train and segment.")
        return spot

    def _show_polygons(self, job: PolygonsJob, done: dict) -> None:
        try:
            add_polygons(QgsProject.instance(), done.get("polygons") or job.out, job.prediction, job.image,
                         job.title)
        except OSError as e:
            self._message(f"The engine wrote the polygons but they cannot be shown: {e}", Qgis.Critical)
            return
        self.train.show_progress(100)
        merged = f", patches under {job.min_pixels} px merged" if job.min_pixels > 1 else ""
        seconds = float(done.get("seconds", 0))
        took = f"{seconds:.1f}" if seconds < 10 else f"{seconds:.0f}"
        self.train.show_status(f"{done.get('features', 0):,} polygons in {took} s{merged}.")
        self._message(f"Polygons are in the SemiSeg group ({Path(job.out).name}, beside the map).",
                      Qgis.Success)

    def _show_sample(self, job: SampleJob, done: dict, warnings: list[str]) -> None:
        try:
            layer = add_sample(QgsProject.instance(), done.get("sample") or job.out, job.prediction,
                               job.image, job.title)
        except OSError as e:
            self._message(f"The engine wrote the sample but it cannot be shown: {e}", Qgis.Critical)
            return
        self.sample.start(layer, job.prediction)
        self.results.show_sample(True, [c.name for c in read_classes(job.prediction)])
        self.iface.setActiveLayer(layer)
        layer.startEditing()  # ready for the analyst's checks
        self.train.show_progress(100)
        per_class = done.get("per_class") or {}
        shared = f" ({', '.join(f'{name} {n}' for name, n in per_class.items())})" if job.total else ""
        self.train.show_status(f"{done.get('points', 0):,} points to check{shared}. For each one, see what "
                               "is really there (a site visit, sharper imagery): Next point to check shows "
                               "them one by one (or use each point's form); then Assess accuracy.")
        self._message(f"The accuracy sample is in the SemiSeg group ({Path(job.out).name}, beside the map); "
                      "its points are red rings until checked.", Qgis.Success)
        for warning in warnings:
            self._message(warning, Qgis.Info)

    def _show_accuracy(self, job: AssessJob, done: dict, warnings: list[str]) -> None:
        report = {k: v for k, v in done.items() if k not in ("event", "seconds")}
        self.results.show_accuracy(report, warnings)
        sample = self.sample.layer()
        if sample is not None and layer_file(sample) == job.reference:
            sample.setCustomProperty(REPORT_PROPERTY, job.report)  # shown again when the project reopens
        self.train.show_progress(100)
        summary = accuracy_summary(report)
        self.train.show_status(f"{summary}; per class under Results.")
        self._message(f"{summary}; the tables are in {Path(job.tables).name} beside the sample.",
                      Qgis.Success)

    # --- model --------------------------------------------------------------------------------------

    def save_model(self, path: str | Path) -> None:
        asked = Path(path)
        path = asked if str(asked).endswith(".semiseg") else Path(f"{asked}.semiseg")
        problem = overwrite_problem(asked, path, QgsProject.instance(), self.results.model_path)
        if problem:
            self._message(problem, Qgis.Warning)
            return
        try:
            shutil.copy2(self.results.model_path, path)
        except OSError as e:
            self._message(f"Cannot save the model to {path}: {e.strerror or e}", Qgis.Critical)
            return
        self._message(f"Model saved to {path}.", Qgis.Success)

    def load_model(self, path: str | Path) -> bool:
        """Use a saved model file (the engine checks it, and explains a bad one, when it is applied)."""
        path = Path(path)
        if not path.is_file():
            self._message(f"Model file {path} does not exist; pick a .semiseg file saved by SemiSeg.",
                          Qgis.Critical)
            return False
        self.results.show_loaded(str(path))
        self._message(f"Model {path.name} loaded: use \"Apply model to another raster…\".", Qgis.Info)
        return True

    # --- lifetime -----------------------------------------------------------------------------------

    def _message(self, text: str, level) -> None:
        self.iface.messageBar().pushMessage(TITLE, text, level, 10)

    def close_down(self) -> None:
        """Stop the running engine and put the brush away (the plugin is being unloaded)."""
        self._closed = True
        if self.task is not None:
            for signal in (self.task.completed, self.task.event_received, self.task.progressChanged):
                signal.disconnect()
            self.task.cancel()  # the task's run() terminates the child
        if self.probe is not None:
            self.probe.probed.disconnect()
        self.task = self.probe = None
        self.marker.clear()
        QgsProject.instance().readProject.disconnect(self._on_project_read)
        QgsProject.instance().cleared.disconnect(self.forget_project)
        self.layers.disconnect_project()
        self.canvas.mapToolSet.disconnect(self._on_map_tool_set)
        if self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)
        self.tool.remove_from_canvas()

