"""SemiSeg engine: semi-supervised segmentation of rasters from a few painted labels.

Pure Python on numpy, torch and rasterio. Never imports Qt or QGIS: the plugin runs this package
as a child process (``python -m engine ...``) and reads its JSON-lines events.
"""

__version__ = "0.1.0"
