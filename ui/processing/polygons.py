"""Polygons: a class map as a GeoPackage of named, measured polygons (``python -m engine polygons``)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingOutputNumber,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from .base import SemiSegAlgorithm, raster_file
from .styling import POLYGONS, style_output


class PolygonsAlgorithm(SemiSegAlgorithm):
    NAME = "polygons"
    DISPLAY_NAME = "Polygons from a map"
    HELP = ("Turns a SemiSeg class raster (from Train and segment or Segment with a model) into polygons: "
            "one per patch of touching pixels of a class (pixels touching only at a corner are separate "
            "patches), with the class number, its name and its area in m² (on the ellipsoid for a "
            "geographic CRS; none without a CRS). Smallest patch: patches of fewer pixels first join their "
            "largest neighbour, a minimum mapping unit (0 keeps every patch). Written as a GeoPackage, "
            "styled with the classes' colours.")

    PREDICTION = "PREDICTION"
    MIN_PIXELS = "MIN_PIXELS"
    OUTPUT = "OUTPUT"
    FEATURES = "FEATURES"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.PREDICTION, "Map (SemiSeg class raster)"))
        self.addParameter(QgsProcessingParameterNumber(
            self.MIN_PIXELS, "Smallest patch to keep (pixels; 0 = every patch)",
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Polygons", QgsProcessing.TypeVectorPolygon))
        self.addOutput(QgsProcessingOutputNumber(self.FEATURES, "Number of polygons"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        prediction = raster_file(self.parameterAsRasterLayer(parameters, self.PREDICTION, context), "map")
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        n = self.parameterAsInt(parameters, self.MIN_PIXELS, context)
        done = self.run_engine(["polygons", "--prediction", prediction, "--out", out, "--min-pixels", str(n)],
                               feedback).done
        feedback.pushInfo(f"{done.get('features', 0):,} polygons")
        style_output(context, out, POLYGONS, feedback, source=prediction)
        return {self.OUTPUT: out, self.FEATURES: done.get("features")}
