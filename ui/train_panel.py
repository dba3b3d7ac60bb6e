"""Train and segment: method, preset, device, Advanced options, the button, progress and Cancel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qgis.gui import QgsCollapsibleGroupBox, QgsFileWidget
from qgis.PyQt.QtCore import QTimer, pyqtSignal
from qgis.PyQt.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .engine_process import FALLBACK_METHODS, EngineSetup

PRESETS = {
    "fast": "Small network, few steps: a map in minutes on a laptop CPU.",
    "balanced": "Better maps, several times longer than fast (the engine's own default).",
    "best": "Largest network and longest training: for a GPU, or patience.",
}
# Times and accuracies from the README's Benchmarks (Indian Pines, 5 labeled pixels per class, fast preset)
METHOD_HINTS = {
    "supervised": "Learns from the painted pixels only: the fastest.",
    "icnet": "Iterative contrastive network: two networks teach each other on the unlabeled pixels. About "
             "4 times supervised's training time; the most accurate on Indian Pines with 5 labeled pixels "
             "per class (overall accuracy 0.85 against supervised's 0.80).",
    "inpaint": "Self-supervised inpainting pretraining on the whole image, then fine-tuning. The first run "
               "on an image pretrains it (kept for later runs); then about as fast as supervised.",
    "inpaint+icnet": "Inpainting pretraining, then the iterative contrastive network: ICNet's time, plus "
                     "pretraining the image once.",
}

SEGMENT_CHOICES = {
    "whole": ("Whole raster", "The map covers the whole image."),
    "view": ("Visible map area", "The map covers only the part of the image shown in the map view: a "
             "quick look on a large raster (the same map there as the whole raster's), minutes instead "
             "of hours on a CPU. Pan, then Apply model to segment another part."),
}


@dataclass
class TrainOptions:
    """What the panel's controls say; None means "the preset's value"."""

    method: str
    preset: str
    device: str
    steps: int | None
    tile_size: int | None
    val_fraction: float | None
    seed: int | None
    smooth: bool = True  # edge-aware smoothing of the map (the engine's --smooth)
    segment: str = "whole"  # "whole": the whole raster; "view": the part shown in the map view (--area)
    continue_last: bool = True  # start from the last model of the same image, method and preset


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{round(seconds / 60)} min"


def short_path(path: str, parts: int = 3) -> str:
    """The last few parts of a path, enough to recognise it (the full path goes in a tooltip)."""
    pieces = Path(path).parts
    return path if len(pieces) <= parts + 1 else "…/" + "/".join(pieces[-parts:])


def progress_text(event: dict) -> str | None:
    """One line for the dock about an engine event, or None when the event says nothing new."""
    kind = event.get("event")
    if kind == "start":
        return f"Started on {event.get('device', '?')}…"
    if kind == "stage":
        return f"{event.get('stage', '')}: {event.get('message', '')}".strip(": ")
    if kind == "progress":
        text = f"{event.get('stage', '')}: step {event.get('step')}/{event.get('total_steps')}"
        if isinstance(event.get("loss"), int | float):
            text += f", loss {event['loss']:.3f}"
        if isinstance(event.get("eta_s"), int | float) and event["eta_s"] > 0:
            text += f", about {format_seconds(event['eta_s'])} left"
        return text
    if kind == "metric" and isinstance(event.get("val_miou"), int | float):
        return f"validation mIoU {event['val_miou']:.2f} at step {event.get('step')}"
    if kind == "warning":
        return f"Warning: {event.get('message', '')}"
    return None


class TrainPanel(QGroupBox):
    """Emits ``train_requested`` / ``cancel_requested``; shows progress events it is given."""

    train_requested = pyqtSignal()
    cancel_requested = pyqtSignal()
    engine_python_changed = pyqtSignal(str)  # the Advanced setting was edited ("" = auto-detect)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Train and segment", parent)
        self.method_combo = QComboBox()
        self.preset_combo = QComboBox()
        for name, hint in PRESETS.items():
            self.preset_combo.addItem(name, name)
            self.preset_combo.setItemData(self.preset_combo.count() - 1, hint, 3)  # Qt.ToolTipRole
        self.device_combo = QComboBox()
        self.segment_combo = QComboBox()
        for value, (label, tip) in SEGMENT_CHOICES.items():
            self.segment_combo.addItem(label, value)
            self.segment_combo.setItemData(self.segment_combo.count() - 1, tip, 3)  # Qt.ToolTipRole
        self.segment_combo.setToolTip("Which part of the image the map covers. Training always learns "
                                      "from the whole image.")
        self.set_methods(list(FALLBACK_METHODS))
        self.set_devices([])

        self.advanced = QgsCollapsibleGroupBox("Advanced")
        self.advanced.setCollapsed(True)
        self.steps_spin = self._spin(0, 100000, 0, "preset's", "Training steps.")
        self.tile_spin = self._spin(0, 1024, 0, "preset's", "Training tile side in pixels (multiple of 16).")
        self.tile_spin.setSingleStep(16)
        self.val_spin = QDoubleSpinBox()
        self.val_spin.setRange(0.0, 0.5)
        self.val_spin.setSingleStep(0.05)
        self.val_spin.setValue(0.2)
        self.val_spin.setToolTip("Share of the painted strokes held out to measure the model.")
        self.seed_spin = self._spin(0, 2**31 - 1, 0, "", "Random seed: the same seed gives the same model.")
        self.smooth_check = self._check(
            "Smooth the map", "Edge-aware smoothing of the map, which holds your strokes and spreads them to "
            "alike pixels (recommended). Off: the network's own map, predicted about 2.9 times faster on a "
            "CPU: for very large rasters without a GPU.")
        self.continue_check = self._check(
            "Continue from the last model", "After you paint more strokes, start from the model of your last "
            "run on this image (same method and preset) and train half the steps, in about half the "
            "training time. Off, or after changing the image, method or preset: train from scratch.")
        self.python_widget = QgsFileWidget()
        self.python_widget.setToolTip("A Python interpreter with torch installed. Empty: the first one "
                                      "found (the plugin folder's .venv, then python3 on PATH).")
        self.python_widget.lineEdit().setPlaceholderText("auto-detect")
        advanced_form = QFormLayout(self.advanced)
        advanced_form.addRow("Steps", self.steps_spin)
        advanced_form.addRow("Tile size", self.tile_spin)
        advanced_form.addRow("Validation share", self.val_spin)
        advanced_form.addRow("Seed", self.seed_spin)
        advanced_form.addRow("Map", self.smooth_check)
        advanced_form.addRow("Training", self.continue_check)
        advanced_form.addRow("Engine Python", self.python_widget)

        self.engine_label = QLabel("Looking for a Python with torch…")
        self.engine_label.setWordWrap(True)
        self.train_button = QPushButton("Train and segment")
        self.train_button.setEnabled(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 100)
        self.progress_bar.setValue(0)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Method", self.method_combo)
        form.addRow("Preset", self.preset_combo)
        form.addRow("Device", self.device_combo)
        form.addRow("Segment", self.segment_combo)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.advanced)
        layout.addWidget(self.engine_label)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)

        self.train_button.clicked.connect(self.train_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        # Typing a path changes it at every key: ask for a new probe once the typing stops.
        self._python_timer = QTimer(self)
        self._python_timer.setSingleShot(True)
        self._python_timer.setInterval(800)
        self._python_timer.timeout.connect(
            lambda: self.engine_python_changed.emit(self.python_widget.filePath().strip()))
        self.python_widget.fileChanged.connect(lambda _path: self._python_timer.start())
        self._ready = False

    @staticmethod
    def _check(text: str, tip: str) -> QCheckBox:
        """A checkbox, on by default."""
        check = QCheckBox(text)
        check.setChecked(True)
        check.setToolTip(tip)
        return check

    @staticmethod
    def _spin(low: int, high: int, value: int, special: str, tip: str) -> QSpinBox:
        spin = QSpinBox()
        spin.setRange(low, high)
        spin.setValue(value)
        if special:
            spin.setSpecialValueText(special)
        spin.setToolTip(tip)
        return spin

    def options(self) -> TrainOptions:
        return TrainOptions(
            method=self.method_combo.currentData() or "supervised",
            preset=self.preset_combo.currentData() or "fast",
            device=self.device_combo.currentData() or "auto",
            steps=self.steps_spin.value() or None,
            tile_size=self.tile_spin.value() or None,
            val_fraction=round(self.val_spin.value(), 3),
            seed=self.seed_spin.value(),
            smooth=self.smooth_check.isChecked(),
            segment=self.segment_combo.currentData() or "whole",
            continue_last=self.continue_check.isChecked(),
        )

    def set_methods(self, methods: list[str], current: str = "") -> None:
        self.method_combo.clear()
        for method in methods:
            self.method_combo.addItem(method, method)
            self.method_combo.setItemData(self.method_combo.count() - 1, METHOD_HINTS.get(method, ""), 3)
        self._select(self.method_combo, current)

    def set_devices(self, devices: list[dict], current: str = "") -> None:
        self.device_combo.clear()
        self.device_combo.addItem("Auto (GPU if there is one)", "auto")
        for device in devices:
            name = device.get("name", device["id"])
            label = "CPU" if device["id"] == "cpu" else f"{device['id']}: {name}"
            self.device_combo.addItem(label, device["id"])
        self._select(self.device_combo, current)

    def set_engine_python(self, path: str) -> None:
        """Show the configured interpreter without asking for a new probe."""
        self.python_widget.blockSignals(True)
        self.python_widget.setFilePath(path)
        self.python_widget.blockSignals(False)

    def set_preset(self, preset: str) -> None:
        self._select(self.preset_combo, preset)

    def set_segment(self, segment: str) -> None:
        self._select(self.segment_combo, segment)

    @staticmethod
    def _select(combo: QComboBox, value: str) -> None:
        index = combo.findData(value) if value else -1
        combo.setCurrentIndex(index if index >= 0 else 0)

    def set_engine_setup(self, setup: EngineSetup | None, method: str = "", device: str = "") -> None:
        """Show whether the engine can run (``None``: still looking) and offer what it offers.

        ``method`` and ``device`` are selected when the engine offers them.
        """
        if setup is None:
            self.engine_label.setText("Looking for a Python with torch…")
            self._ready = False
        elif setup.problem:
            self.engine_label.setText(f"<b>Cannot train yet.</b> {setup.problem}")
            self._ready = False
        else:
            self.set_methods(setup.methods, method or self.method_combo.currentData() or "")
            self.set_devices(setup.devices, device or self.device_combo.currentData() or "")
            self.engine_label.setText(f"Engine ready: torch found in {short_path(setup.python)}")
            self.engine_label.setToolTip(setup.python)
            self._ready = True
        self.train_button.setEnabled(self._ready and not self.cancel_button.isEnabled())

    def set_running(self, running: bool) -> None:
        self.train_button.setEnabled(self._ready and not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress_bar.setValue(0)
            self.status_label.setText("Starting the engine…")

    def show_event(self, event: dict) -> None:
        text = progress_text(event)
        if text:
            self.status_label.setText(text)

    def show_progress(self, percent: float) -> None:
        self.progress_bar.setValue(int(round(percent)))

    def show_status(self, text: str) -> None:
        self.status_label.setText(text)
