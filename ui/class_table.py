"""The classes of the label raster: add, remove, rename, recolour, and pick the one to paint."""

from __future__ import annotations

from qgis.gui import QgsColorButton
from qgis.PyQt.QtCore import Qt, pyqtSignal
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .label_raster import LabelClass, default_colour

MAX_CLASSES = 255  # pixel values 1..255 of a uint8 label raster


class ClassTable(QWidget):
    """A row per class (value = row + 1): colour button and editable name; the selected row is painted."""

    classes_edited = pyqtSignal(list)  # list[LabelClass] after an add, rename or recolour
    remove_requested = pyqtSignal(int)  # the value of the class to remove (the dock confirms and does it)
    current_changed = pyqtSignal(int)  # the value now selected for painting

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Colour", "Class"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setMinimumHeight(110)
        self.add_button = QPushButton("Add class")
        self.remove_button = QPushButton("Remove")
        self.remove_button.setToolTip("Remove the selected class and erase its painted pixels.")

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

        self.add_button.clicked.connect(self.add_class)
        self.remove_button.clicked.connect(self._on_remove)
        self.table.itemChanged.connect(self._on_item_changed)
        self.table.itemSelectionChanged.connect(self._on_selection)

    def classes(self) -> list[LabelClass]:
        return [LabelClass(self._name(row), self._colour(row)) for row in range(self.table.rowCount())]

    def set_classes(self, classes: list[LabelClass]) -> None:
        """Show ``classes`` without emitting ``classes_edited``; the selection stays where it can."""
        current = self.current_value()
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for label_class in classes:
            self._append_row(label_class)
        self.table.blockSignals(False)
        self.select_value(min(max(current, 1), len(classes)) if classes else 0)

    def current_value(self) -> int:
        """The selected class's pixel value (1..K), or 0 when none is selected."""
        rows = self.table.selectionModel().selectedRows()
        return rows[0].row() + 1 if rows else 0

    def current_colour(self) -> QColor:
        value = self.current_value()
        return QColor(*self._colour(value - 1)) if value else QColor(255, 0, 0)

    def select_value(self, value: int) -> None:
        if 1 <= value <= self.table.rowCount():
            self.table.selectRow(value - 1)
        self._on_selection()

    def add_class(self) -> None:
        count = self.table.rowCount()
        if count >= MAX_CLASSES:
            return
        taken = {self._name(r).casefold() for r in range(count)}
        name = next(f"class {n}" for n in range(count + 1, count + MAX_CLASSES + 2)
                    if f"class {n}" not in taken)  # after a removal "class 3" may be row 2's name
        self.table.blockSignals(True)
        self._append_row(LabelClass(name, default_colour(count + 1)))
        self.table.blockSignals(False)
        self.select_value(count + 1)
        self.classes_edited.emit(self.classes())

    def _append_row(self, label_class: LabelClass) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        button = QgsColorButton()
        button.setColor(QColor(*label_class.colour))
        button.setAllowOpacity(False)
        button.setShowNoColor(False)
        button.setToolTip("Click to change the class colour.")
        button.colorChanged.connect(lambda _colour: self.classes_edited.emit(self.classes()))
        self.table.setCellWidget(row, 0, button)
        item = QTableWidgetItem(label_class.name)
        item.setToolTip(f"Pixel value {row + 1}; double-click to rename.")
        self.table.setItem(row, 1, item)
        colour_item = QTableWidgetItem()
        colour_item.setFlags(Qt.ItemIsSelectable | Qt.ItemIsEnabled)
        self.table.setItem(row, 0, colour_item)

    def _name(self, row: int) -> str:
        item = self.table.item(row, 1)
        name = item.text().strip() if item is not None else ""
        return name or f"class {row + 1}"

    def _colour(self, row: int) -> tuple[int, int, int]:
        colour = self.table.cellWidget(row, 0).color()
        return colour.red(), colour.green(), colour.blue()

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        if item.column() != 1:
            return
        others = [self._name(r).casefold() for r in range(self.table.rowCount()) if r != item.row()]
        name = self._name(item.row())  # a blank name: "class N", shown as stored
        stem, n = name, 1
        while name.casefold() in others:  # two classes of one name could not be told apart (vector
            n += 1  # labels and the map's legend name classes)
            name = f"{stem} {n}"
        if name != item.text():
            self.table.blockSignals(True)
            item.setText(name)
            self.table.blockSignals(False)
        self.classes_edited.emit(self.classes())

    def _on_remove(self) -> None:
        value = self.current_value()
        if value:
            self.remove_requested.emit(value)

    def _on_selection(self) -> None:
        self.remove_button.setEnabled(self.current_value() > 0)
        self.current_changed.emit(self.current_value())
