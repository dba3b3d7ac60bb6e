"""The seam between engine and plugin, checked statically with ``ast``.

``engine/`` runs in a child process with torch and must never import Qt or QGIS; the plugin side
(``__init__.py``, ``plugin.py``, ``ui/``) runs inside QGIS and must never import the deep-learning stack.
Imports are found at any depth (inside functions, ``if TYPE_CHECKING:`` blocks, ``try:``), including
``importlib.import_module("x")`` / ``__import__("x")`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

QT_AND_QGIS = frozenset({"qgis", "PyQt5", "PyQt6", "PySide2", "PySide6", "Qt", "sip"})
DEEP_LEARNING_STACK = frozenset({"torch", "torchvision", "rasterio"})


def imported_top_level_names(source: str, filename: str = "<source>") -> list[tuple[int, str]]:
    """Return ``(line, top-level module name)`` for every absolute import in ``source``, by line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value.split(".")[0]))
    return sorted(found)


def _is_dynamic_import(func: ast.expr) -> bool:
    """True for ``__import__``, ``import_module`` and ``importlib.import_module``."""
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def forbidden_imports(source: str, forbidden: frozenset[str], filename: str = "<source>") -> list[str]:
    """Describe each import of a ``forbidden`` top-level module as ``"file:line imports name"``."""
    return [
        f"{filename}:{line} imports {name}"
        for line, name in imported_top_level_names(source, filename)
        if name in forbidden
    ]


def engine_files() -> list[Path]:
    return sorted((REPO_ROOT / "engine").rglob("*.py"))


def plugin_side_files() -> list[Path]:
    files = [REPO_ROOT / "__init__.py", REPO_ROOT / "plugin.py"]
    return files + sorted((REPO_ROOT / "ui").rglob("*.py"))


def violations(files: list[Path], forbidden: frozenset[str]) -> list[str]:
    found: list[str] = []
    for path in files:
        rel = str(path.relative_to(REPO_ROOT))
        found += forbidden_imports(path.read_text(encoding="utf-8"), forbidden, rel)
    return found


# --- the checker itself: it must be able to fail ---------------------------------------------------

SYNTHETIC_PLUGIN_SOURCE = """
import os
import torchgeo_lookalike
from . import torch_free_sibling
from .engine_bridge import run

def train():
    import torch.nn as nn
    from rasterio.windows import Window
    return nn, Window

try:
    import importlib
    tv = importlib.import_module("torchvision.models")
except ImportError:
    tv = __import__("torch")
"""


def test_checker_finds_imports_at_any_depth():
    assert forbidden_imports(SYNTHETIC_PLUGIN_SOURCE, DEEP_LEARNING_STACK) == [
        "<source>:8 imports torch",
        "<source>:9 imports rasterio",
        "<source>:14 imports torchvision",
        "<source>:16 imports torch",
    ]


def test_checker_finds_qt_and_qgis_in_any_spelling():
    source = (
        "from qgis.PyQt.QtCore import QObject\n"
        "import PyQt5.QtWidgets as widgets\n"
        "def f():\n"
        "    from PyQt6 import QtGui\n"
        "import qgis.core\n"
        "from Qt import QtCore\n"
        "import qgisx\n"
    )
    found = forbidden_imports(source, QT_AND_QGIS)
    assert [v.split(" imports ")[1] for v in found] == ["qgis", "PyQt5", "PyQt6", "qgis", "Qt"]


def test_checker_passes_clean_source():
    assert forbidden_imports("import json\nfrom .raster import read_window\n", DEEP_LEARNING_STACK) == []


# --- the real tree ----------------------------------------------------------------------------------


def test_engine_never_imports_qt_or_qgis():
    files = engine_files()
    assert files, "no engine modules found: the check would pass vacuously"
    assert violations(files, QT_AND_QGIS) == []


def test_plugin_side_never_imports_the_deep_learning_stack():
    files = plugin_side_files()
    assert all(path.exists() for path in files[:2]), "plugin entry modules missing"
    assert violations(files, DEEP_LEARNING_STACK) == []
