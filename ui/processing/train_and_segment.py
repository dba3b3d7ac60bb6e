"""Train and segment: the one-click path, train then predict (``python -m engine run``)."""

from __future__ import annotations

import re
from pathlib import Path

from qgis.core import (
    QgsProcessingOutputFile,
    QgsProcessingOutputNumber,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterFolderDestination,
    QgsProcessingUtils,
)

from .styling import CONFIDENCE, PREDICTION, style_output
from .training import TrainingAlgorithm


class TrainAndSegmentAlgorithm(TrainingAlgorithm):
    NAME = "train_and_segment"
    DISPLAY_NAME = "Train and segment"
    HELP = ("The one-click path: learns from a few labels on an image, then segments the whole image. "
            "Writes model.semiseg, prediction.tif (classes, with their colours and names), confidence.tif "
            "and metrics.json (with the map's validation scores on held-out labels) into the output folder, "
            "and adds the prediction and confidence to the project (as an intermediate step of a model, it "
            "passes them on instead; make the output folder a model output to have them added). An area "
            "(optional) limits the map to the image pixels it touches; training still learns from the "
            "whole image. Preset: 0 fast, 1 balanced, 2 best.")

    OUTPUT_FOLDER = "OUTPUT_FOLDER"
    MODEL = "MODEL"
    PREDICTION = "PREDICTION"
    CONFIDENCE = "CONFIDENCE"
    METRICS = "METRICS"
    VAL_MIOU = "VAL_MIOU"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.add_training_parameters()
        self.add_smooth_parameter()
        self.add_area_parameter(trains=True)
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT_FOLDER, "Output folder"))
        self.addOutput(QgsProcessingOutputFile(self.MODEL, "Model file"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.PREDICTION, "Prediction"))
        self.addOutput(QgsProcessingOutputRasterLayer(self.CONFIDENCE, "Confidence"))
        self.addOutput(QgsProcessingOutputFile(self.METRICS, "Metrics (JSON)"))
        self.addOutput(QgsProcessingOutputNumber(self.VAL_MIOU, "Validation mIoU (the map, held-out labels)"))

    def run_args(self, parameters: dict, context, feedback, folder: str) -> list[str]:
        """The ``engine run`` arguments: training's, then the map's smoothing and area, then the output
        folder."""
        return ["run", *self.training_args(parameters, context, feedback),
                *self.smooth_args(parameters, context), *self.area_args(parameters, context),
                "--out-dir", folder]

    def model_step_folder(self, parameters: dict) -> bool:
        """Whether the output folder is one a model made up for an intermediate step: a folder nobody
        chose, under Processing's temporary folder, named after the parameter. Its layers are the next
        step's input, not the analyst's result (a model's own outputs, and a standalone run's folder, even
        a temporary one, come as the path or ``TEMPORARY_OUTPUT`` the analyst gave)."""
        value = parameters.get(self.OUTPUT_FOLDER)
        if not isinstance(value, str) or not value:
            return False
        path = Path(value)
        return (path.name == self.OUTPUT_FOLDER and bool(re.fullmatch(r"[0-9a-f]{32}", path.parent.name))
                and path.parent.parent == Path(QgsProcessingUtils.tempFolder()))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        folder = self.parameterAsString(parameters, self.OUTPUT_FOLDER, context)
        load = not self.model_step_folder(parameters)
        result = self.run_engine(self.run_args(parameters, context, feedback, folder), feedback,
                                 trains_then_predicts=True)
        done, files = result.done, result.artifacts()
        style_output(context, done["prediction"], PREDICTION, feedback,
                     load_as=("SemiSeg prediction", self.PREDICTION) if load else None)
        if done.get("confidence"):
            style_output(context, done["confidence"], CONFIDENCE, feedback,
                         load_as=("SemiSeg confidence", self.CONFIDENCE) if load else None)
        if not load:
            feedback.pushInfo("An intermediate step of a model: the prediction and confidence go to the next "
                              "step and are not added to the project (make the output folder a model output "
                              "to keep them).")
        return {self.OUTPUT_FOLDER: folder, self.MODEL: done["model"], self.PREDICTION: done["prediction"],
                self.CONFIDENCE: done.get("confidence"), self.METRICS: files.get("metrics"),
                self.VAL_MIOU: (done.get("metrics") or {}).get("map_val_miou"),
                **self.cache_output(parameters, context)}
