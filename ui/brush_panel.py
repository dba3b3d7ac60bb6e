"""Brush controls: paint on/off, size, eraser, undo."""

from __future__ import annotations

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

MAX_BRUSH_PX = 200


class BrushPanel(QWidget):
    """One row: [Paint] size [5 px] [Eraser] [Undo]."""

    paint_toggled = pyqtSignal(bool)
    size_changed = pyqtSignal(int)
    eraser_toggled = pyqtSignal(bool)
    undo_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paint_button = QPushButton("Paint")
        self.paint_button.setCheckable(True)
        self.paint_button.setToolTip("Paint the selected class on the map (drag with the left button).")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, MAX_BRUSH_PX)
        self.size_spin.setValue(5)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Brush diameter in image pixels.")
        self.eraser_check = QCheckBox("Eraser")
        self.eraser_check.setToolTip("Paint 'unlabeled' (0) instead of the class.")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last stroke (Ctrl+Z while painting).")
        self.undo_button.setEnabled(False)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.paint_button)
        layout.addWidget(QLabel("Size"))
        layout.addWidget(self.size_spin)
        layout.addWidget(self.eraser_check)
        layout.addWidget(self.undo_button)
        layout.addStretch(1)

        self.paint_button.toggled.connect(self.paint_toggled)
        self.size_spin.valueChanged.connect(self.size_changed)
        self.eraser_check.toggled.connect(self.eraser_toggled)
        self.undo_button.clicked.connect(self.undo_requested)

    def set_painting(self, on: bool) -> None:
        """Reflect the tool's state (another map tool may have taken over) without re-emitting."""
        self.paint_button.blockSignals(True)
        self.paint_button.setChecked(on)
        self.paint_button.blockSignals(False)

    def set_undo_enabled(self, enabled: bool) -> None:
        self.undo_button.setEnabled(enabled)
