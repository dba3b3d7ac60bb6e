"""The plugin loads in real QGIS (pytest-qgis): one "SemiSeg" action in, a dock on demand, all out on unload.

The plugin folder is imported under the name it has once installed, ``semiseg``, exactly as QGIS does
(a package whose ``classFactory`` is called with the interface).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from unittest import mock

import pytest
from plugin_helpers import REPO_ROOT, import_plugin_package
from qgis.core import QgsApplication

HEAVY_MODULES = ("torch", "torchvision", "rasterio", "numpy")


class PluginsMenu:
    """Stands in for QGIS's Plugins menu and dock areas: pytest-qgis's interface stub tracks neither."""

    def __init__(self) -> None:
        self.entries: dict[str, list] = {}
        self.toolbar: list = []
        self.docks: list = []

    def add(self, menu: str, action) -> None:
        self.entries.setdefault(menu, []).append(action)

    def remove(self, menu: str, action) -> None:
        self.entries[menu].remove(action)
        if not self.entries[menu]:
            del self.entries[menu]


@pytest.fixture()
def plugins_menu(qgis_iface):
    menu = PluginsMenu()
    # The stub has no removePluginMenu / removeDockWidget at all (QGIS's real interface does).
    with (
        mock.patch.object(qgis_iface, "addPluginToMenu", menu.add),
        mock.patch.object(qgis_iface, "removePluginMenu", menu.remove, create=True),
        mock.patch.object(qgis_iface, "addToolBarIcon", menu.toolbar.append),
        mock.patch.object(qgis_iface, "removeToolBarIcon", menu.toolbar.remove),
        mock.patch.object(qgis_iface, "addDockWidget", lambda _area, dock: menu.docks.append(dock)),
        mock.patch.object(qgis_iface, "removeDockWidget", menu.docks.remove, create=True),
    ):
        yield menu


@pytest.fixture()
def plugin(qgis_iface, plugins_menu):
    plugin = import_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    yield plugin
    plugin.unload()


def test_init_gui_adds_one_semiseg_action(plugin, plugins_menu, qgis_iface):
    actions = plugins_menu.entries["&SemiSeg"]
    assert [action.text() for action in actions] == ["SemiSeg"]
    assert plugins_menu.toolbar == actions
    assert not actions[0].icon().isNull(), "icon file missing or unreadable"
    assert actions[0].parent() is qgis_iface.mainWindow()


def test_unload_removes_everything(qgis_iface, plugins_menu):
    plugin = import_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.unload()
    assert plugins_menu.entries == {}
    assert plugins_menu.toolbar == []
    plugin.unload()  # a second unload (QGIS reloading a half-loaded plugin) must not raise


def test_action_opens_one_dock(plugin, plugins_menu):
    action = plugins_menu.entries["&SemiSeg"][0]
    action.trigger()
    action.trigger()  # a second click shows the same dock
    assert len(plugins_menu.docks) == 1
    dock = plugins_menu.docks[0]
    assert dock.objectName() == "SemiSegDock" and not dock.isHidden()


def test_unload_after_painting_leaves_no_dock_or_map_tool(qgis_iface, plugins_menu):
    plugin = import_plugin_package().classFactory(qgis_iface)
    plugin.initGui()
    plugin.action.trigger()
    dock = plugins_menu.docks[0]
    canvas = qgis_iface.mapCanvas()
    canvas.setMapTool(dock.tool)
    items_with_tool = len(canvas.scene().items())
    plugin.unload()
    QgsApplication.processEvents()
    assert plugins_menu.docks == [] and plugins_menu.entries == {}
    assert canvas.mapTool() is None
    assert len(canvas.scene().items()) == items_with_tool - 1  # the brush circle is gone


# Run in a fresh interpreter: other tests in this session import torch and numpy, which would hide
# an import the plugin itself makes.
LOAD_SCRIPT = r"""
import importlib.util, json, sys
from unittest import mock
from qgis.core import QgsApplication
from qgis.gui import QgsMapCanvas
from qgis.PyQt.QtWidgets import QMainWindow

app = QgsApplication([], True)
app.initQgis()
before = {name: name in sys.modules for name in HEAVY_MODULES}

root = sys.argv[1]
spec = importlib.util.spec_from_file_location(
    "semiseg", root + "/__init__.py", submodule_search_locations=[root]
)
package = importlib.util.module_from_spec(spec)
sys.modules["semiseg"] = package
spec.loader.exec_module(package)

iface = mock.MagicMock()
window = QMainWindow()
iface.mainWindow.return_value = window
iface.mapCanvas.return_value = QgsMapCanvas(window)
plugin = package.classFactory(iface)
plugin.initGui()
plugin.action.trigger()  # builds the dock: every widget module, the paint tool, the task module
plugin.unload()
after = {name: name in sys.modules for name in HEAVY_MODULES}
print(json.dumps({"before": before, "after": after}))
"""


def test_loading_the_plugin_imports_no_heavy_module(tmp_path):
    script = tmp_path / "load_plugin.py"
    script.write_text(f"HEAVY_MODULES = {HEAVY_MODULES!r}\n" + LOAD_SCRIPT, encoding="utf-8")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_CUSTOM_CONFIG_PATH=str(tmp_path))
    result = subprocess.run(
        [sys.executable, str(script), str(REPO_ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    # QGIS 3.22 itself imports none of them at start-up, so any True here comes from the plugin.
    assert loaded["before"] == dict.fromkeys(HEAVY_MODULES, False)
    assert loaded["after"] == dict.fromkeys(HEAVY_MODULES, False)
