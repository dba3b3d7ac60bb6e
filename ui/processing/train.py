"""Train: learn a model from an image and a few labels (``python -m engine train``)."""

from __future__ import annotations

from qgis.core import QgsProcessingOutputNumber, QgsProcessingParameterFileDestination

from .training import TrainingAlgorithm


class TrainAlgorithm(TrainingAlgorithm):
    NAME = "train"
    DISPLAY_NAME = "Train a model"
    HELP = ("Learns a segmentation model from an image and a few labeled pixels: a label raster (0 = "
            "unlabeled, 1..K = classes) or points, lines or polygons with a class field. The engine also "
            "learns from every unlabeled pixel (semi-supervised methods). Writes a .semiseg model file for "
            "the Predict algorithm; the validation scores are outputs. Preset: 0 fast, 1 balanced, 2 best.")

    OUTPUT = "OUTPUT"
    VAL_MIOU = "VAL_MIOU"
    VAL_OA = "VAL_OA"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.add_training_parameters()
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Model file", fileFilter="SemiSeg model (*.semiseg)"))
        self.addOutput(QgsProcessingOutputNumber(self.VAL_MIOU, "Validation mIoU"))
        self.addOutput(QgsProcessingOutputNumber(self.VAL_OA, "Validation overall accuracy"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        model = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        args = ["train", *self.training_args(parameters, context, feedback), "--out", model]
        done = self.run_engine(args, feedback).done
        metrics = done.get("metrics") or {}
        return {self.OUTPUT: done.get("model", model), self.VAL_MIOU: metrics.get("val_miou"),
                self.VAL_OA: metrics.get("val_oa"), **self.cache_output(parameters, context)}
