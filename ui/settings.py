"""SemiSeg's user settings (QGIS profile settings, section ``SemiSeg``)."""

from __future__ import annotations

from qgis.core import QgsSettings

_PREFIX = "SemiSeg/"


def engine_python() -> str:
    """The interpreter the user chose for the engine; empty means auto-detect."""
    return str(QgsSettings().value(_PREFIX + "engine_python", "", type=str) or "")


def set_engine_python(path: str) -> None:
    QgsSettings().setValue(_PREFIX + "engine_python", path or "")


def last_choice(name: str, default: str) -> str:
    """The method, preset or device picked last time."""
    return str(QgsSettings().value(_PREFIX + name, default, type=str) or default)


def remember_choice(name: str, value: str) -> None:
    QgsSettings().setValue(_PREFIX + name, value)
