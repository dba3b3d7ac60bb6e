"""Pick the image, and the labels: a label raster to paint into, or a vector layer and its class field."""

from __future__ import annotations

from pathlib import Path

from qgis.core import QgsMapLayer, QgsMapLayerProxyModel, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.gui import QgsFieldComboBox, QgsMapLayerComboBox
from qgis.PyQt.QtCore import QVariant, pyqtSignal
from qgis.PyQt.QtWidgets import QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QPushButton, QWidget

from .layer_files import layer_file, output_base


class LayerPanel(QGroupBox):
    """Image and label pickers plus "New label layer..."."""

    image_changed = pyqtSignal(object)  # QgsRasterLayer or None
    labels_changed = pyqtSignal(object)  # QgsRasterLayer, QgsVectorLayer or None
    new_label_layer_requested = pyqtSignal(str)  # the path the user chose for a new label raster

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Layers", parent)
        self.image_combo = QgsMapLayerComboBox()
        self.image_combo.setFilters(QgsMapLayerProxyModel.RasterLayer)
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
        self.image_combo.layerChanged.connect(self._on_image_changed)
        self.labels_combo.layerChanged.connect(self._on_labels_changed)
        self.new_button.clicked.connect(self._ask_new_label_path)
        QgsProject.instance().layersWillBeRemoved.connect(self._on_layers_removed)

    def disconnect_project(self) -> None:
        """Stop following the project's layers (the dock is closing)."""
        QgsProject.instance().layersWillBeRemoved.disconnect(self._on_layers_removed)

    def _on_layers_removed(self, ids) -> None:
        """The picked image or labels left the project: a picker then shows another layer, without
        always saying so. The labels become none (never another layer, such as a map, to be trained on
        as labels), the image whatever the picker now shows, and either way the dock is told."""
        gone = set(ids)
        if self._announced["labels"] in gone:
            self._pick(self.labels_combo, None, self._on_labels_changed)
        if self._announced["image"] in gone:
            now = self.image_combo.currentLayer()
            now = None if now is None or now.id() in gone else now
            self._pick(self.image_combo, now, self._on_image_changed)

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
