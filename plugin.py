"""The QGIS entry of SemiSeg: one menu + toolbar action, and the Processing hook.

This module only wires the plugin into the QGIS interface. The dock, the tasks that run the engine and
the Processing algorithms live under ``ui/`` and are imported lazily, when first used, so that loading
the plugin costs nothing. The plugin side never imports torch, rasterio or numpy: the engine runs as a
child process (``python -m engine ...``).
"""

from __future__ import annotations

from pathlib import Path

from qgis.core import Qgis
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

PLUGIN_NAME = "SemiSeg"
MENU_NAME = "&SemiSeg"
ICON_PATH = Path(__file__).resolve().parent / "resources" / "icons" / "semiseg.svg"

# Shown until the dock exists; the engine CLI already does the whole job.
DOCK_PENDING_MESSAGE = "the dock arrives in the next release; use `python -m engine run` meanwhile."


class SemiSegPlugin:
    """Adds the SemiSeg action to QGIS and removes it again on unload."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.action: QAction | None = None

    def initProcessing(self) -> None:
        """Register the Processing provider.

        A no-op for now: the provider (``ui/processing/provider.py``) arrives with the Processing issue,
        and this method will add it to ``QgsApplication.processingRegistry()``.
        """

    def initGui(self) -> None:
        """Create the action and put it in the Plugins menu and on the plugins toolbar."""
        self.action = QAction(QIcon(str(ICON_PATH)), PLUGIN_NAME, self.iface.mainWindow())
        self.action.setObjectName("semisegAction")
        self.action.setToolTip("SemiSeg: segment a raster from a few painted labels")
        self.action.triggered.connect(self.open_dock)
        self.iface.addPluginToMenu(MENU_NAME, self.action)
        self.iface.addToolBarIcon(self.action)
        self.initProcessing()

    def unload(self) -> None:
        """Remove everything ``initGui`` added."""
        if self.action is None:
            return
        self.iface.removePluginMenu(MENU_NAME, self.action)
        self.iface.removeToolBarIcon(self.action)
        self.action.triggered.disconnect(self.open_dock)
        self.action.deleteLater()
        self.action = None

    def open_dock(self) -> None:
        """Show the SemiSeg dock (created on first use)."""
        self.iface.messageBar().pushMessage(PLUGIN_NAME, DOCK_PENDING_MESSAGE, Qgis.Info, 10)
