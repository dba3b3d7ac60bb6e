"""How many points an accuracy sample draws: the same number for every class of the map, or a total shared
by the classes' areas with a floor per class (``engine sample --total N --min-per-class M``)."""

from __future__ import annotations

from qgis.PyQt.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)


def _spin(value: int, minimum: int, tip: str) -> QSpinBox:
    spin = QSpinBox()
    spin.setRange(minimum, 1_000_000)
    spin.setValue(max(minimum, value))
    spin.setToolTip(tip)
    return spin


class SampleDialog(QDialog):
    """Points per class, and whether a total is shared by area (``values()``: (per class, total or 0))."""

    def __init__(self, classes: int, per_class: int, total: int, by_area: bool,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Accuracy sample")
        self.classes = max(1, classes)
        self.per_class_spin = _spin(per_class, 1, "Points per class; by area, the fewest any class gets "
                                    "(50 to 100 is usual for a rare class)")
        self.equal_button = QRadioButton("The same for every class")
        self.area_button = QRadioButton("By area: more points for the larger classes")
        self.area_button.setToolTip("A total shared by the classes' areas, each with at least the points "
                                    "above: the overall accuracy and the class areas come out more precise, "
                                    "the rare classes' user's accuracy less (Olofsson et al. 2014)")
        self.total_spin = _spin(total or 2 * self.classes * per_class, self.classes,
                                "Points in all, shared by the classes' areas")
        self.total_label = QLabel("Points in all")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        form = QFormLayout()
        self.per_class_label = QLabel("Points per class")
        form.addRow(self.per_class_label, self.per_class_spin)
        form.addRow(self.equal_button)
        form.addRow(self.area_button)
        form.addRow(self.total_label, self.total_spin)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Random pixels of each class of the map, to check against what is really "
                                "there."))
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(buttons)
        (self.area_button if by_area else self.equal_button).setChecked(True)
        for signal in (self.per_class_spin.valueChanged, self.total_spin.valueChanged,
                       self.area_button.toggled):
            signal.connect(lambda *_: self._sync())
        self._sync()

    def _sync(self) -> None:
        by_area = self.area_button.isChecked()
        floor = self.classes * self.per_class_spin.value()
        self.total_spin.setMinimum(floor)  # every class its floor
        self.total_spin.setEnabled(by_area)
        self.total_label.setEnabled(by_area)
        self.per_class_label.setText("At least, per class" if by_area else "Points per class")
        if by_area:
            self.summary.setText(f"{self.total_spin.value():,} points shared by the classes' areas, at least "
                                 f"{self.per_class_spin.value()} in each of the {self.classes} classes.")
        else:
            self.summary.setText(f"{floor:,} points: {self.per_class_spin.value()} in each of the "
                                 f"{self.classes} classes.")

    def values(self) -> tuple[int, int]:
        """(points per class, points in all; 0 for the same number in every class)."""
        total = self.total_spin.value() if self.area_button.isChecked() else 0
        return self.per_class_spin.value(), total
