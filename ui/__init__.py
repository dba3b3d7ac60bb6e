"""Everything of the plugin that touches Qt or QGIS; never imports torch or rasterio."""
