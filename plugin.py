"""The QGIS entry of SemiSeg: one menu + toolbar action, and the Processing hook.

This module only wires the plugin into the QGIS interface. The dock, the tasks that run the engine and
the Processing algorithms live under ``ui/``; the dock is imported and built when the action is first
used, so loading the plugin costs nothing. The plugin side never imports torch, rasterio or numpy: the
engine runs as a child process (``python -m engine ...``).
"""

from __future__ import annotations

from pathlib import Path

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon
from qgis.PyQt.QtWidgets import QAction

PLUGIN_NAME = "SemiSeg"
MENU_NAME = "&SemiSeg"
ICON_PATH = Path(__file__).resolve().parent / "resources" / "icons" / "semiseg.svg"


class SemiSegPlugin:
    """Adds the SemiSeg action to QGIS and removes it again on unload."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.action: QAction | None = None
        self.dock = None  # ui.dock.SemiSegDock, built on first use
        self.provider = None  # ui.processing.provider.SemiSegProvider, once registered

    def initProcessing(self) -> None:
        """Register the Processing provider (QGIS calls this alone for ``qgis_process``, then initGui)."""
        if self.provider is not None:
            return
        from qgis.core import QgsApplication  # noqa: PLC0415

        from .ui.processing.provider import SemiSegProvider  # noqa: PLC0415

        registry = QgsApplication.processingRegistry()
        if registry.providerById(SemiSegProvider.ID) is not None:
            return  # another copy of the plugin registered it; a duplicate would be deleted by QGIS
        self.provider = SemiSegProvider()
        registry.addProvider(self.provider)

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
        """Remove everything ``initGui`` and the dock added (stopping a running engine)."""
        if self.provider is not None:
            from qgis.core import QgsApplication  # noqa: PLC0415

            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
        if self.dock is not None:
            self.dock.close_down()
            self.iface.removeDockWidget(self.dock)
            self.dock.deleteLater()
            self.dock = None
        if self.action is None:
            return
        self.iface.removePluginMenu(MENU_NAME, self.action)
        self.iface.removeToolBarIcon(self.action)
        self.action.triggered.disconnect(self.open_dock)
        self.action.deleteLater()
        self.action = None

    def open_dock(self) -> None:
        """Show the SemiSeg dock (created on first use)."""
        if self.dock is None:
            from .ui.dock import SemiSegDock  # noqa: PLC0415  (lazy: loading the plugin stays cheap)

            self.dock = SemiSegDock(self.iface, self.iface.mainWindow())
            self.iface.addDockWidget(Qt.RightDockWidgetArea, self.dock)
        self.dock.show()
        self.dock.raise_()
