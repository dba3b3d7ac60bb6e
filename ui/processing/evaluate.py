"""Evaluate: score a prediction against a truth raster (``python -m engine evaluate``)."""

from __future__ import annotations

import json
from pathlib import Path

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterLayer,
)

from .base import SemiSegAlgorithm, raster_file


class EvaluateAlgorithm(SemiSegAlgorithm):
    NAME = "evaluate"
    DISPLAY_NAME = "Evaluate a prediction"
    HELP = ("Compares a class raster with a truth raster (0 in the truth = not scored) and reports the "
            "mean IoU, overall accuracy, Cohen's kappa, the IoU of each class and the confusion matrix "
            "(rows: truth, columns: prediction). The truth may be on another grid: it is warped onto the "
            "prediction's with nearest neighbour.")

    PREDICTION = "PREDICTION"
    TRUTH = "TRUTH"
    OUTPUT = "OUTPUT"
    MIOU = "MIOU"
    OA = "OA"
    KAPPA = "KAPPA"
    SCORES = "SCORES"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.PREDICTION, "Prediction (class raster)"))
        self.addParameter(QgsProcessingParameterRasterLayer(self.TRUTH, "Truth (class raster, 0 = unknown)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Scores (JSON)", fileFilter="JSON (*.json)", optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.MIOU, "Mean IoU"))
        self.addOutput(QgsProcessingOutputNumber(self.OA, "Overall accuracy"))
        self.addOutput(QgsProcessingOutputNumber(self.KAPPA, "Cohen's kappa"))
        self.addOutput(QgsProcessingOutputString(self.SCORES, "All scores (JSON)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        prediction = raster_file(self.parameterAsRasterLayer(parameters, self.PREDICTION, context),
                                 "prediction")
        truth = raster_file(self.parameterAsRasterLayer(parameters, self.TRUTH, context), "truth")
        done = self.run_engine(["evaluate", "--prediction", prediction, "--truth", truth], feedback).done
        scores = {k: v for k, v in done.items() if k not in ("event", "seconds")}
        for name, iou in scores.get("per_class_iou", {}).items():
            feedback.pushInfo(f"IoU {name}: {'–' if iou is None else f'{iou:.3f}'}")
        feedback.pushInfo(f"mIoU {scores.get('miou')}, overall accuracy {scores.get('oa')}, "
                          f"kappa {scores.get('kappa')}")
        text = json.dumps(scores, indent=2)
        results = {self.MIOU: scores.get("miou"), self.OA: scores.get("oa"), self.KAPPA: scores.get("kappa"),
                   self.SCORES: text}
        path = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        if path:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                Path(path).write_text(text + "\n", encoding="utf-8")
            except OSError as e:
                raise QgsProcessingException(f"The scores cannot be written to {path} ({e.strerror or e}); "
                                             "choose a file in a folder you can write to.") from e
            results[self.OUTPUT] = path
        return results
