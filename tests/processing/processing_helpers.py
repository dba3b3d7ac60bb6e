"""Helpers for the Processing tests (a unique module name: tests/plugin has its own helpers)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from qgis.core import QgsProcessingFeedback

REPO_ROOT = Path(__file__).resolve().parents[2]

# The smallest training that still exercises every stage: 10 steps on 64 px tiles, on the CPU.
TINY_TRAINING = {"PRESET": 0, "STEPS": 10, "TILE_SIZE": 64, "DEVICE": "cpu"}


def processing():
    """QGIS's ``processing`` module, imported only once ``Processing.initialize()`` put it on the path.

    Importing it at collection time would find this test folder, also named ``processing``, first.
    """
    import processing  # noqa: PLC0415

    return processing


def import_plugin_package(name: str = "semiseg"):
    """Import the repo root as the package ``name``, as QGIS does with the installed folder."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)])
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


class RecordingFeedback(QgsProcessingFeedback):
    """Keeps the progress values and log lines; ``cancel_at_stage``: cancel when that stage starts."""

    def __init__(self, cancel_at_stage: str = "") -> None:
        super().__init__()
        self.progress: list[float] = []
        self.log: list[str] = []
        self.stages: list[str] = []
        self.warnings: list[str] = []
        self.cancel_at_stage = cancel_at_stage
        self.progressChanged.connect(self.progress.append)

    def setProgressText(self, text: str) -> None:  # noqa: N802 (QGIS API)
        self.stages.append(text)
        if self.cancel_at_stage and text.startswith(self.cancel_at_stage):
            self.cancel()
        super().setProgressText(text)

    def pushInfo(self, info: str) -> None:  # noqa: N802 (QGIS API)
        self.log.append(info)
        super().pushInfo(info)

    def pushWarning(self, warning: str) -> None:  # noqa: N802 (QGIS API)
        self.warnings.append(warning)
        super().pushWarning(warning)
