"""Pick the image, and the labels: a label raster to paint into, or a vector layer and its class field."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsMapLayer, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QTimer, QVariant, pyqtSignal
from qgis.PyQt.QtWidgets import QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QPushButton, QWidget

from .label_raster import same_grid
from .layer_files import is_label_raster, layer_file, output_base
from .result_layers import ROLE_PROPERTY


class LayerPanel(QGroupBox):
    """Image and label pickers plus "New label layer..."."""

    image_changed = pyqtSignal(object)  # QgsRasterLayer or None
    labels_changed = pyqtSignal(object)  # QgsRasterLayer, QgsVectorLayer or None
    new_label_layer_requested = pyqtSignal(str)  # the path the user chose for a new label raster

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Layers", parent)
        self.image_combo = QgsMapLayerComboBox()
        self.image_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
        self.image_combo.setAllowEmptyLayer(True)
        self.image_combo.setToolTip("The raster to segment (any band count).")
        self.labels_combo = QgsMapLayerComboBox()
        self.labels_combo.setFilters(QgsMapLayerProxyModel.RasterLayer | QgsMapLayerProxyModel.VectorLayer)
        self.labels_combo.setAllowEmptyLayer(True)
        self.labels_combo.setToolTip("A label raster to paint into (0 = unlabeled), or a vector layer "
                                     "whose features carry a class field.")
        self.new_button = QPushButton("New…")
        self.new_button.setToolTip("Create an empty label raster on the image's grid, saved as a "
                                   "GeoTIFF beside the project.")
        self.field_combo = QgsFieldComboBox()
        self.field_combo.setToolTip("The field of the vector labels that holds the class.")

        labels_row = QHBoxLayout()
        labels_row.addWidget(self.labels_combo, 1)
        labels_row.addWidget(self.new_button)
        form = QFormLayout(self)
        form.addRow("Image", self.image_combo)
        form.addRow("Labels", labels_row)
        form.addRow("Class field", self.field_combo)
        self._form = form
        self._show_field_row(False)

        self._announced = {"image": None, "labels": None}  # ids of the layers last announced by signal
        # The combos picked the first layer of each kind as they were made, the same raster in both when
        # the project holds an image already: start from a likely image and its labels instead.
        image = likely_image(QgsProject.instance())
        self.image_combo.setLayer(image)
        self.labels_combo.setLayer(likely_labels(QgsProject.instance(), image))
        self._on_image_changed(image)
        self._on_labels_changed(self.labels_combo.currentLayer())
        self.image_combo.layerChanged.connect(self._on_image_changed)
        self.labels_combo.layerChanged.connect(self._on_labels_changed)
        self.new_button.clicked.connect(self._ask_new_label_path)
        QgsProject.instance().layersWillBeRemoved.connect(self._on_layers_removed)
        QgsProject.instance().layersAdded.connect(self._on_layers_added)

    def disconnect_project(self) -> None:
        """Stop following the project's layers (the dock is closing)."""
        QgsProject.instance().layersWillBeRemoved.disconnect(self._on_layers_removed)
        QgsProject.instance().layersAdded.disconnect(self._on_layers_added)

    def _on_layers_added(self, _layers) -> None:
        """Layers came while no image is picked (the dock opened on an empty project): offer the likely
        image and its labels once the layer tree holds them (it gets them after this signal)."""
        if self.image_combo.currentLayer() is None:
            QTimer.singleShot(0, self._offer_image)

    def _offer_image(self) -> None:
        if self.image_combo.currentLayer() is not None:
            return
        image = likely_image(QgsProject.instance())
        if image is None:
            return
        self.image_combo.setLayer(image)  # announced through layerChanged
        if self.labels_combo.currentLayer() is None:
            labels = likely_labels(QgsProject.instance(), image)
            if labels is not None:
                self.labels_combo.setLayer(labels)

    def _on_layers_removed(self, ids) -> None:
        """The picked image or labels left the project: a picker then shows another layer, without
        always saying so. Either becomes none -- never another layer, such as a map or the label raster,
        to be trained on as the image or as labels -- and the dock is told."""
        gone = set(ids)
        if self._announced["labels"] in gone:
            self._pick(self.labels_combo, None, self._on_labels_changed)
        if self._announced["image"] in gone:
            self._pick(self.image_combo, None, self._on_image_changed)

    @staticmethod
    def _pick(combo, layer, handler) -> None:
        """Show ``layer`` in ``combo`` and run its change handler once, whether or not the combo signals."""
        combo.blockSignals(True)
        combo.setLayer(layer)
        combo.blockSignals(False)
        handler(layer)

    def image_layer(self) -> QgsRasterLayer | None:
        return self.image_combo.currentLayer()

    def label_layer(self) -> QgsMapLayer | None:
        return self.labels_combo.currentLayer()

    def label_field(self) -> str:
        """The class field for vector labels; empty for a label raster."""
        return self.field_combo.currentField() if isinstance(self.label_layer(), QgsVectorLayer) else ""

    def set_image_layer(self, layer: QgsRasterLayer) -> None:
        self.image_combo.setLayer(layer)

    def set_label_layer(self, layer: QgsMapLayer, field: str = "") -> None:
        """Pick ``layer`` as the labels (and ``field`` as its class field, for vector labels that have it)."""
        self.labels_combo.setLayer(layer)
        if field and isinstance(layer, QgsVectorLayer) and layer.fields().indexOf(field) >= 0:
            self.field_combo.setField(field)

    def _on_image_changed(self, layer) -> None:
        self._announced["image"] = layer.id() if layer is not None else None
        if layer is not None and self.labels_combo.currentLayer() is layer:
            self.labels_combo.setLayer(None)  # the labels became the image: none, not whichever layer is next
        self.labels_combo.setExceptedLayerList([layer] if layer is not None else [])
        self.new_button.setEnabled(layer_file(layer) is not None)  # the new raster copies its grid
        self.image_changed.emit(layer)

    def _ask_new_label_path(self) -> None:
        image = layer_file(self.image_layer())
        if image is None:
            return
        default = str(default_label_path(image))
        path, _ = QFileDialog.getSaveFileName(self, "New label layer", default, "GeoTIFF (*.tif *.tiff)")
        if path:
            self.new_label_layer_requested.emit(path)

    def _on_labels_changed(self, layer) -> None:
        self._announced["labels"] = layer.id() if layer is not None else None
        is_vector = isinstance(layer, QgsVectorLayer)
        self.field_combo.setLayer(layer if is_vector else None)
        if is_vector:
            self.field_combo.setField(guess_class_field(layer))
        self._show_field_row(is_vector)
        self.labels_changed.emit(layer)

    def _show_field_row(self, visible: bool) -> None:
        self.field_combo.setVisible(visible)
        self._form.labelForField(self.field_combo).setVisible(visible)


def is_semiseg_result(layer: QgsMapLayer | None) -> bool:
    """Whether ``layer`` is one SemiSeg added (a prediction, confidence, polygons or sample layer)."""
    return layer is not None and bool(layer.customProperty(ROLE_PROPERTY))


def _rasters(project: QgsProject) -> list[QgsRasterLayer]:
    """The project's raster layers, top of the layer tree first."""
    return [node.layer() for node in project.layerTreeRoot().findLayers()
            if isinstance(node.layer(), QgsRasterLayer)]


def likely_image(project: QgsProject) -> QgsRasterLayer | None:
    """The raster the dock offers as the image: the topmost one that is neither a map SemiSeg made nor
    a label raster (one byte band with a colour table; a paletted scan to segment is picked by hand);
    None when there is none."""
    return next((layer for layer in _rasters(project) if not is_semiseg_result(layer)
                 and not (is_label_raster(layer) and layer.dataProvider().colorTable(1))), None)


def likely_labels(project: QgsProject, image: QgsRasterLayer | None) -> QgsRasterLayer | None:
    """The label raster the dock offers for ``image`` when it opens: the topmost paintable raster on the
    image's exact grid that is neither the image nor a SemiSeg map; None when there is none (the analyst
    makes one with New…)."""
    image_file = layer_file(image)
    if image_file is None:
        return None
    for layer in _rasters(project):
        path = layer_file(layer)
        if (layer is not image and is_label_raster(layer) and not is_semiseg_result(layer)
                and path != image_file and _same_grid(image_file, path)):
            return layer
    return None


def _same_grid(image: str, labels: str) -> bool:
    try:
        return same_grid(image, labels)
    except Exception:  # noqa: BLE001 (a file GDAL cannot open is no label raster to offer)
        return False


def guess_class_field(layer: QgsVectorLayer) -> str:
    """The field that most likely holds the class: one named class (any case), else the first text field,
    else the first field that is not the feature id; "" for a layer without fields."""
    fields = layer.fields()
    names = [f.name() for f in fields]
    for name in names:
        if name.lower() == "class":
            return name
    text = [f.name() for f in fields if f.type() == QVariant.String]
    others = [n for n in names if n.lower() not in ("fid", "id", "ogc_fid")]
    return (text or others or names or [""])[0]


def default_label_path(image: str) -> Path:
    """``<image>_labels.tif`` beside the project (or the image), not overwriting an existing file."""
    folder = output_base(image) or Path(image).parent
    stem = Path(image).stem
    path, n = folder / f"{stem}_labels.tif", 1
    while path.exists():
        n += 1
        path = folder / f"{stem}_labels_{n}.tif"
    return path
