"""SemiSeg QGIS plugin entry point.

QGIS imports this package and calls ``classFactory``; everything else is imported lazily so that
loading the plugin stays cheap and never pulls in the engine's heavy dependencies.
"""


def classFactory(iface):
    """Return the plugin instance QGIS asks for, given its ``QgisInterface``."""
    from .plugin import SemiSegPlugin

    return SemiSegPlugin(iface)
