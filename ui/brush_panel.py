"""Brush controls: paint on/off, size, eraser, undo, redo."""

from __future__ import annotations

from qgis.PyQt.QtCore import pyqtSignal
from qgis.PyQt.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

MAX_BRUSH_PX = 200
KEYS_HINT = ("While painting: 1-9 pick the class, E switches the eraser, [ and ] change the size, "
             "Ctrl+Z undoes, Ctrl+Shift+Z redoes.")


def next_size(size: int, direction: int) -> int:
    """The brush size one step up (+1) or down (-1): about a quarter larger or smaller, at least one
    pixel, so a few presses go from a fine line to a broad fill."""
    step = max(1, round(size * 0.25))
    return min(MAX_BRUSH_PX, max(1, size + direction * step))


class BrushPanel(QWidget):
    """One row: [Paint] size [5 px] [Eraser] [Undo] [Redo]."""

    paint_toggled = pyqtSignal(bool)
    size_changed = pyqtSignal(int)
    eraser_toggled = pyqtSignal(bool)
    undo_requested = pyqtSignal()
    redo_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.paint_button = QPushButton("Paint")
        self.paint_button.setCheckable(True)
        self.paint_button.setToolTip("Paint the selected class on the map (drag with the left button). "
                                     + KEYS_HINT)
        self.size_spin = QSpinBox()
        self.size_spin.setRange(1, MAX_BRUSH_PX)
        self.size_spin.setValue(5)
        self.size_spin.setSuffix(" px")
        self.size_spin.setToolTip("Brush diameter in image pixels ([ and ] while painting).")
        self.eraser_check = QCheckBox("Eraser")
        self.eraser_check.setToolTip("Paint 'unlabeled' (0) instead of the class (E while painting).")
        self.undo_button = QPushButton("Undo")
        self.undo_button.setToolTip("Undo the last stroke (Ctrl+Z while painting).")
        self.undo_button.setEnabled(False)
        self.redo_button = QPushButton("Redo")
        self.redo_button.setToolTip("Paint the last undone stroke again (Ctrl+Shift+Z or Ctrl+Y while "
                                    "painting).")
        self.redo_button.setEnabled(False)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.paint_button)
        layout.addWidget(QLabel("Size"))
        layout.addWidget(self.size_spin)
        layout.addWidget(self.eraser_check)
        layout.addWidget(self.undo_button)
        layout.addWidget(self.redo_button)
        layout.addStretch(1)

        self.paint_button.toggled.connect(self.paint_toggled)
        self.size_spin.valueChanged.connect(self.size_changed)
        self.eraser_check.toggled.connect(self.eraser_toggled)
        self.undo_button.clicked.connect(self.undo_requested)
        self.redo_button.clicked.connect(self.redo_requested)

    def set_painting(self, on: bool) -> None:
        """Reflect the tool's state (another map tool may have taken over) without re-emitting."""
        self.paint_button.blockSignals(True)
        self.paint_button.setChecked(on)
        self.paint_button.blockSignals(False)

    def set_undo_enabled(self, undo: bool, redo: bool = False) -> None:
        self.undo_button.setEnabled(undo)
        self.redo_button.setEnabled(redo)

    def step_size(self, direction: int) -> None:
        """One size step up (+1) or down (-1), as the [ and ] keys ask."""
        self.size_spin.setValue(next_size(self.size_spin.value(), direction))
