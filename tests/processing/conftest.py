"""Fixtures for the Processing tests: the framework, the SemiSeg provider (registered the way QGIS does it,
through the plugin's ``initProcessing``), a tiny scene, and one trained model shared by the module.

Every engine run is real (a child ``python -m engine``) and tiny: a 64 × 64 px scene, 10 steps.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TINY_TRAINING = {"PRESET": 0, "STEPS": 10, "TILE_SIZE": 64, "DEVICE": "cpu"}


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


@pytest.fixture(scope="module")
def semiseg_plugin(qgis_processing, qgis_iface):  # noqa: ARG001  (qgis_processing: Processing.initialize())
    """The plugin with its provider registered by ``initProcessing``; unloaded after the module."""
    plugin = import_plugin_package().classFactory(qgis_iface)
    plugin.initProcessing()
    yield plugin
    plugin.unload()


@pytest.fixture(scope="session")
def scene(tmp_path_factory) -> dict:
    """image.tif (3 bands, uint16), labels.tif (scribbles), truth.tif: 64 × 64 px, 3 classes."""
    from engine.synthetic import write_scene

    return write_scene(str(tmp_path_factory.mktemp("scene")), height=64, width=64, bands=3, classes=3)
