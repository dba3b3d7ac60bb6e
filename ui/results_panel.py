"""The last run: validation metrics, its folder, "Apply model to another raster...", "Save model as..." and
"Load model..." (a model saved earlier, e.g. before QGIS was restarted)."""

from __future__ import annotations

import html
from pathlib import Path

from qgis.core import QgsProject, QgsRasterLayer
from qgis.PyQt.QtCore import QUrl, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from . import settings
from .label_raster import read_classes
from .layer_files import layer_file, output_base
from .map_facts import accuracy_items, accuracy_summary, class_area_items
from .result_layers import ROLE_PROPERTY
from .sample_dialog import SampleDialog

DEFAULT_MIN_PATCH = 16  # pixels: the polygons' first minimum mapping unit, until the user picks one
DEFAULT_PER_CLASS = 50  # points per class of the first accuracy sample (Olofsson et al. 2014: 50-100)


def metrics_html(metrics: dict) -> str:
    """Validation scores as a few lines of rich text: the delivered map's on the held-out strokes when the
    run scored it (map_val_*), else the network's from training (val_*, e.g. a model loaded from file)."""
    prefix = "map_val_" if isinstance(metrics.get("map_val_miou"), int | float) else "val_"
    if not isinstance(metrics.get(f"{prefix}miou"), int | float):
        return "No validation score: paint more strokes per class to hold some out."
    what = "the map on held-out strokes" if prefix == "map_val_" else "held-out strokes"
    if prefix == "map_val_" and metrics.get("predict_area"):
        what += " in the segmented area"
    lines = [f"<b>Validation</b> ({what}) mIoU {metrics[f'{prefix}miou']:.2f}"]
    if isinstance(metrics.get(f"{prefix}oa"), int | float):
        lines[0] += f" · overall accuracy {metrics[f'{prefix}oa']:.2f}"
    if isinstance(metrics.get(f"{prefix}kappa"), int | float):
        lines[0] += f" · kappa {metrics[f'{prefix}kappa']:.2f}"
    per_class = metrics.get(f"{prefix}per_class_iou") or {}
    if per_class:
        lines.append("IoU: " + ", ".join(f"{name} {iou:.2f}" for name, iou in per_class.items()
                                         if isinstance(iou, int | float)))
    if prefix == "map_val_" and isinstance(metrics.get("val_miou"), int | float):
        lines.append(f"Network alone while training: mIoU {metrics['val_miou']:.2f}")
    return "<br>".join(lines)


def areas_html(summary: dict | None, area: bool = False) -> str:
    """How much of each class the map holds (map_facts.class_area_items), as one line; "" when the engine
    did not say."""
    items = class_area_items(summary)
    if not items:
        return ""
    where = "the segmented area" if area else "the map"
    return f"<b>In {where}:</b> " + ", ".join(f"{html.escape(name)} {text}" for name, text in items)


def accuracy_html(report: dict, warnings: list[str]) -> str:
    """An ``assess`` report as rich text: the overall accuracy, then one line per class."""
    lines = [f"<b>{html.escape(accuracy_summary(report), quote=False)}</b>"]
    lines += [f"{html.escape(name, quote=False)}: {html.escape(text, quote=False)}"
              for name, text in accuracy_items(report)]
    lines += [f"<b>Warning:</b> {html.escape(w, quote=False)}" for w in warnings]
    return "<br>".join(lines)


def _button(text: str, tip: str) -> QPushButton:
    """A button that waits (disabled) for a map or a sample to act on."""
    button = QPushButton(text)
    button.setToolTip(tip)
    button.setEnabled(False)
    return button


class ResultsPanel(QGroupBox):
    """Filled after each successful run; its buttons act on that run's model."""

    apply_requested = pyqtSignal(object)  # the QgsRasterLayer to segment with the model
    save_requested = pyqtSignal(str)  # where to copy the model file
    load_requested = pyqtSignal(str)  # a model file to use instead of the last run's
    polygons_requested = pyqtSignal(int)  # polygons of the last map, with this minimum patch (pixels)
    next_spot_requested = pyqtSignal()  # show the next place where the last map is least sure
    # an accuracy sample of the last map: points per class, and points in all shared by area (0: none)
    sample_requested = pyqtSignal(int, int)
    assess_requested = pyqtSignal()  # the accuracy of the last map from its checked sample
    next_check_requested = pyqtSignal()  # show the sample's next point not checked yet
    check_answered = pyqtSignal(int)  # the class (1..K) really in the point shown; then the next point

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Results", parent)
        self.metrics_label = QLabel("Train a model to see its validation scores here.")
        self.metrics_label.setWordWrap(True)
        self.warnings_label = QLabel("")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setVisible(False)
        self.areas_label = QLabel("")
        self.areas_label.setWordWrap(True)
        self.areas_label.setVisible(False)
        self.folder_label = QLabel("")
        self.folder_label.setOpenExternalLinks(True)
        self.folder_label.setWordWrap(True)
        self.apply_button = QPushButton("Apply model to another raster…")
        self.save_button = QPushButton("Save model as…")
        self.load_button = QPushButton("Load model…")
        self.load_button.setToolTip("Use a .semiseg model saved earlier to segment rasters")
        self.polygons_button = _button(
            "Make polygons…", "The last map as a GeoPackage of polygons, one per patch of a class, with the "
            "class name and area (m²)")
        self.spot_button = _button(
            "Where to paint next", "Zoom to the places where the last map is least sure, one per press: "
            "labels painted there help the next training most")
        self.sample_button = _button(
            "Accuracy sample…", "Random points in each class of the last map, to check against what is "
            "really on the ground; then Assess accuracy")
        self.check_button = _button(
            "Next point to check", "Zoom to the sample's next point not checked yet, its pixel boxed: say "
            "below which class is really there")
        self.check_combo = QComboBox()
        self.check_combo.setToolTip("The class really in the red box (look at the image, or better imagery)")
        self.check_set_button = QPushButton("Set, next")
        self.check_set_button.setToolTip("Store this class as the point's reference and show the next point")
        self.check_row = QWidget()
        row = QHBoxLayout(self.check_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("In the box:"))
        row.addWidget(self.check_combo, 1)
        row.addWidget(self.check_set_button)
        self.check_row.setEnabled(False)
        self.assess_button = _button(
            "Assess accuracy", "Accuracy and the area of each class, with 95 % intervals, from the sample's "
            "checked points")
        self.accuracy_label = QLabel("")
        self.accuracy_label.setWordWrap(True)
        self.accuracy_label.setVisible(False)
        for button in (self.apply_button, self.save_button):
            button.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.addWidget(self.metrics_label)
        layout.addWidget(self.warnings_label)
        layout.addWidget(self.areas_label)
        layout.addWidget(self.folder_label)
        layout.addWidget(self.spot_button)
        layout.addWidget(self.polygons_button)
        layout.addWidget(self.sample_button)
        layout.addWidget(self.check_button)
        layout.addWidget(self.check_row)
        layout.addWidget(self.assess_button)
        layout.addWidget(self.accuracy_label)
        layout.addWidget(self.apply_button)
        layout.addWidget(self.save_button)
        layout.addWidget(self.load_button)
        self.model_path = ""
        self.prediction = ""  # the last map (prediction.tif) the polygons button acts on
        self.polygons_button.clicked.connect(self._ask_min_patch)
        self.sample_button.clicked.connect(self._ask_per_class)
        self.assess_button.clicked.connect(self.assess_requested)
        self.check_button.clicked.connect(self.next_check_requested)
        self.check_set_button.clicked.connect(
            lambda: self.check_answered.emit(int(self.check_combo.currentData() or 0)))
        self.check_combo.currentIndexChanged.connect(lambda _index: self._sync_check_set())
        self.spot_button.clicked.connect(self.next_spot_requested)
        self.apply_button.clicked.connect(self._ask_raster)
        self.save_button.clicked.connect(self._ask_model_path)
        self.load_button.clicked.connect(self._ask_model_file)

    def clear(self) -> None:
        """No map and no model (the project was closed)."""
        self.metrics_label.setText("Train a model to see its validation scores here.")
        self.folder_label.setText("")
        self.show_warnings([])
        self.show_map("", None)
        self.show_check_point(False)
        self._use_model("")

    def show_run(self, metrics: dict, model_path: str) -> None:
        self.metrics_label.setText(metrics_html(metrics))
        self._use_model(model_path)

    def show_warnings(self, warnings: list[str]) -> None:
        """The last run's warnings (none: hidden), kept in view after the message bar has moved on."""
        self.warnings_label.setText("<br>".join(f"<b>Warning:</b> {html.escape(w)}" for w in warnings))
        self.warnings_label.setVisible(bool(warnings))

    def show_map(self, prediction: str, class_areas: dict | None, area: bool = False,
                 spots: int = 0) -> None:
        """The map just made: how much of each class it holds; the polygons button acts on it, and the spot
        button shows its ``spots`` least sure places."""
        text = areas_html(class_areas, area)
        self.areas_label.setText(text)
        self.areas_label.setVisible(bool(text))
        self.prediction = prediction or ""
        self.polygons_button.setEnabled(bool(self.prediction))
        self.sample_button.setEnabled(bool(self.prediction))
        self.show_sample(False)  # a sample belongs to the map it was drawn from
        self.show_spot(0, spots)

    def show_sample(self, ready: bool, class_names: list[str] | None = None) -> None:
        """Whether the last map has a sample to check and assess (whose points take ``class_names``); the
        last assessment is cleared either way."""
        self.assess_button.setEnabled(ready)
        self.check_button.setEnabled(ready)
        self.check_row.setEnabled(False)
        if class_names is not None:
            self.check_combo.clear()
            self.check_combo.addItem("pick a class…", 0)
            for value, name in enumerate(class_names, start=1):
                self.check_combo.addItem(name, value)
        self.accuracy_label.setText("")
        self.accuracy_label.setVisible(False)

    def show_check_point(self, shown: bool) -> None:
        """A sample point is shown, or none is. The picker starts blank each time, never at the map's own
        class for the point: the check must not lean on the map it checks."""
        self.check_row.setEnabled(shown)
        self.check_combo.setCurrentIndex(0)
        self._sync_check_set()

    def _sync_check_set(self) -> None:
        self.check_set_button.setEnabled(bool(self.check_combo.currentData()))

    def show_accuracy(self, report: dict, warnings: list[str]) -> None:
        self.accuracy_label.setText(accuracy_html(report, warnings))
        self.accuracy_label.setVisible(True)

    def show_spot(self, shown: int, count: int) -> None:
        """``shown`` of the map's ``count`` spots seen so far (0: none yet)."""
        self.spot_button.setEnabled(count > 0)
        self.spot_button.setText("Where to paint next" if not shown else
                                 f"Where to paint next ({shown % count + 1} of {count})")

    def show_loaded(self, model_path: str) -> None:
        """A model file picked by the user: its buttons act on that file from now on."""
        self.metrics_label.setText(f"Loaded model <b>{Path(model_path).name}</b>; apply it to a raster "
                                   "with the same bands.")
        self._use_model(model_path)

    def _use_model(self, model_path: str) -> None:
        self.model_path = model_path
        folder = Path(model_path).parent
        self.folder_label.setText(f'Files: <a href="{QUrl.fromLocalFile(str(folder)).toString()}">'
                                  f"{folder.name}</a>" if model_path else "")
        for button in (self.apply_button, self.save_button):
            button.setEnabled(bool(model_path))

    def _ask_raster(self) -> None:
        rasters = [layer for layer in QgsProject.instance().mapLayers().values()
                   if isinstance(layer, QgsRasterLayer) and layer_file(layer)
                   and not layer.customProperty(ROLE_PROPERTY)]
        names = raster_choices(rasters)
        name, ok = QInputDialog.getItem(self, "Apply model", "Raster to segment (same bands):", names, 0,
                                        False)
        if ok and name in names:
            self.apply_requested.emit(rasters[names.index(name)])

    def _ask_min_patch(self) -> None:
        remembered = settings.last_choice("min_patch", str(DEFAULT_MIN_PATCH))
        last = int(remembered) if remembered.isdigit() else DEFAULT_MIN_PATCH
        n, ok = QInputDialog.getInt(self, "Make polygons", "Smallest patch to keep, in pixels (smaller "
                                    "patches join their largest neighbour; 0 keeps every patch):", last, 0,
                                    1_000_000)
        if ok:
            settings.remember_choice("min_patch", str(n))
            self.polygons_requested.emit(n)

    def _ask_per_class(self) -> None:
        dialog = self.sample_dialog()
        if dialog.exec_():
            per_class, total = dialog.values()
            settings.remember_choice("sample_per_class", str(per_class))
            settings.remember_choice("sample_by_area", "1" if total else "")
            if total:
                settings.remember_choice("sample_total", str(total))
            self.sample_requested.emit(per_class, total)

    def sample_dialog(self) -> SampleDialog:
        """The Accuracy sample dialog for the last map, at the choices made last time."""

        def remembered(name: str, default: int) -> int:
            value = settings.last_choice(name, str(default))
            return int(value) if value.isdigit() and int(value) > 0 else default

        return SampleDialog(len(read_classes(self.prediction)),
                            remembered("sample_per_class", DEFAULT_PER_CLASS), remembered("sample_total", 0),
                            settings.last_choice("sample_by_area", "") == "1", self)

    def _ask_model_file(self) -> None:
        start = str(Path(self.model_path).parent) if self.model_path else ""
        path, _ = QFileDialog.getOpenFileName(self, "Load model", start, "SemiSeg model (*.semiseg)")
        if path:
            self.load_requested.emit(path)

    def _ask_model_path(self) -> None:
        default = str(Path(output_base(self.model_path) or Path(self.model_path).parent) / "model.semiseg")
        path, _ = QFileDialog.getSaveFileName(self, "Save model as", default, "SemiSeg model (*.semiseg)")
        if path:
            self.save_requested.emit(path)


def raster_choices(rasters: list[QgsRasterLayer]) -> list[str]:
    """One entry per raster layer: its name, and where two layers share one (QGIS names a layer after its
    file, so 2019/scene.tif and 2020/scene.tif are both "scene"), its file too, so that each is found."""
    names = [layer.name() for layer in rasters]
    return [name if names.count(name) == 1 else f"{name} ({layer_file(layer)})"
            for name, layer in zip(names, rasters, strict=True)]
