"""Predict: segment a raster with a trained model (``python -m engine predict``)."""

from __future__ import annotations

from qgis.core import QgsProcessingParameterFile, QgsProcessingParameterRasterDestination

from .base import SemiSegAlgorithm, layer_nodata_args, raster_file
from .styling import CONFIDENCE, PREDICTION, style_output


class PredictAlgorithm(SemiSegAlgorithm):
    NAME = "predict"
    DISPLAY_NAME = "Segment with a model"
    HELP = ("Segments a raster (or the area given) with a .semiseg model (from Train, or Train and segment). "
            "The image needs the bands the model was trained on. Writes a class GeoTIFF with the classes' "
            "colours and names and, optionally, the model's confidence (0..1): low confidence shows where "
            "more labels would help most. Labels on the image the model was trained on (optional, numbered "
            "like the training labels) come out as labeled and spread their class to alike neighbouring "
            "pixels, as Train and segment does with its training labels. An area (optional) limits the map to"
            " the image pixels it touches: the same map there as the whole image's, far sooner on a large "
            "raster.")

    MODEL = "MODEL"
    OUTPUT = "OUTPUT"
    CONFIDENCE = "CONFIDENCE"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.addParameter(QgsProcessingParameterFile(self.MODEL, "Model file", extension="semiseg"))
        self.add_image_parameter("Image to segment")
        self.add_labels_parameters("Labels to hold (optional; label raster or points/lines/polygons)",
                                   optional=True)
        self.add_device_parameter()
        self.add_smooth_parameter()
        self.add_area_parameter()
        self.addParameter(QgsProcessingParameterRasterDestination(self.OUTPUT, "Prediction"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            self.CONFIDENCE, "Confidence", optional=True, createByDefault=True))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        image = raster_file(layer, "image")
        prediction = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        confidence = self.parameterAsOutputLayer(parameters, self.CONFIDENCE, context)
        args = ["predict", "--model", self.parameterAsFile(parameters, self.MODEL, context), "--image", image,
                "--out", prediction, *self.device_args(parameters, context),
                *self.smooth_args(parameters, context), *self.area_args(parameters, context),
                *layer_nodata_args(layer, context, feedback)]
        if confidence:
            args += ["--confidence", confidence]
        if self.is_set(parameters, self.LABELS):
            args += self.labels_args(parameters, context, feedback)
        self.run_engine(args, feedback)
        style_output(context, prediction, PREDICTION, feedback)
        results = {self.OUTPUT: prediction}
        if confidence:
            style_output(context, confidence, CONFIDENCE, feedback)
            results[self.CONFIDENCE] = confidence
        return results
