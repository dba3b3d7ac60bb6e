"""Fixtures for the Processing tests: the SemiSeg provider, registered the way QGIS does it (through the
plugin's ``initProcessing``), and a tiny scene. Engine runs are real child processes, and tiny."""

from __future__ import annotations

import pytest
from processing_helpers import import_plugin_package


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
