"""Fixtures shared by the plugin tests (pytest-qgis, offscreen); helpers live in plugin_helpers.py.

Tests that need the real engine (a child ``python -m engine`` with torch) say so in their name and
keep trainings tiny; the others use the fake engine.
"""

from __future__ import annotations

import stat
import sys

import pytest
from plugin_helpers import FAKE_ENGINE
from qgis.core import QgsProject


@pytest.fixture()
def fake_python(tmp_path, monkeypatch):
    """``fake_python("ok")`` -> an executable that behaves like an engine Python for that scenario."""

    def make(scenario: str) -> str:
        script = tmp_path / "fake_engine.py"
        script.write_text(FAKE_ENGINE, encoding="utf-8")
        launcher = tmp_path / "fake-python"
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n', encoding="utf-8")
        launcher.chmod(launcher.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("FAKE_ENGINE_SCENARIO", scenario)
        return str(launcher)

    return make


@pytest.fixture(scope="session")
def tiny_scene(tmp_path_factory) -> dict:
    """A 96 x 96 px, 3-band scene with scribbled labels (engine.synthetic; tests may import engine)."""
    from engine.synthetic import write_scene

    folder = tmp_path_factory.mktemp("scene")
    return write_scene(str(folder), height=96, width=96, bands=3, classes=3)


@pytest.fixture()
def clean_project(qgis_iface):
    """An empty project before and after the test."""
    QgsProject.instance().clear()
    yield QgsProject.instance()
    QgsProject.instance().clear()

