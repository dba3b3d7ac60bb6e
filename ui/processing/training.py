"""The training parameters Train and Train-and-segment share, mirroring ``python -m engine train``."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
)

from ..jobs import PRETRAINED_METHODS
from .base import ARCHITECTURES, METHODS, PRESETS, SemiSegAlgorithm, layer_nodata_args, raster_file


class TrainingAlgorithm(SemiSegAlgorithm):
    """An algorithm that trains: image, labels (raster or vector + class field), method, preset..."""

    UNLABELED = "UNLABELED"
    METHOD = "METHOD"
    PRESET = "PRESET"
    STEPS = "STEPS"
    TILE_SIZE = "TILE_SIZE"
    BATCH_SIZE = "BATCH_SIZE"
    LEARNING_RATE = "LEARNING_RATE"
    VAL_FRACTION = "VAL_FRACTION"
    SEED = "SEED"
    ARCH = "ARCH"
    INIT = "INIT"
    PRETRAIN_STEPS = "PRETRAIN_STEPS"
    ENCODER_CACHE = "ENCODER_CACHE"
    WARM_START = "WARM_START"

    # optional numbers: parameter -> (engine flag, integer?)
    NUMBER_FLAGS = {STEPS: ("--steps", True), TILE_SIZE: ("--tile-size", True),
                    BATCH_SIZE: ("--batch-size", True), LEARNING_RATE: ("--lr", False),
                    VAL_FRACTION: ("--val-fraction", False), SEED: ("--seed", True),
                    PRETRAIN_STEPS: ("--pretrain-steps", True)}

    def add_training_parameters(self) -> None:
        self.add_image_parameter("Image to learn from")
        self.add_labels_parameters(
            "Labels (label raster: 0 = unlabeled, 1..K = classes; or points/lines/polygons)")
        self.add_enum(self.METHOD, "Method", METHODS, default=0)
        self.add_enum(self.PRESET, "Preset", PRESETS, default=1)
        self.add_device_parameter()
        self.add_advanced(QgsProcessingParameterMultipleLayers(
            self.UNLABELED, "More unlabeled images to learn from (same bands)", QgsProcessing.TypeRaster,
            optional=True))
        self.add_number(self.STEPS, "Training steps (empty: the preset's)", minimum=1)
        self.add_number(self.TILE_SIZE, "Training tile side, px (empty: the preset's)", minimum=16)
        self.add_number(self.BATCH_SIZE, "Batch size (empty: the preset's)", minimum=1)
        self.add_number(self.LEARNING_RATE, "Learning rate (empty: the preset's)", integer=False, minimum=0)
        self.add_number(self.VAL_FRACTION, "Share of labeled pixels held out for validation (empty: 0.2)",
                        integer=False, minimum=0, maximum=0.9)
        self.add_number(self.SEED, "Random seed (empty: 0)", minimum=0)
        self.add_enum(self.ARCH, "Network (empty: the preset's)", ARCHITECTURES, default=None, advanced=True)
        self.add_advanced(QgsProcessingParameterFile(
            self.INIT, "Pretrained encoder (method inpaint; from Pretrain)", extension="semienc",
            optional=True))
        self.add_number(self.PRETRAIN_STEPS, "Inpainting steps when pretraining in this run (method inpaint)",
                        minimum=1)
        self.add_advanced(QgsProcessingParameterFile(
            self.WARM_START, "Continue from a model of this image (same method; half the preset's steps "
            "unless Training steps is set)", extension="semiseg", optional=True))
        # Read and written: a run fine-tunes from it when it was pretrained on the same, unchanged image
        # with the same settings, else pretrains and writes it, so the next run with new labels is quick.
        self.add_advanced(QgsProcessingParameterFileDestination(
            self.ENCODER_CACHE, "Encoder cache (methods inpaint, inpaint+icnet): pretrain the image once, "
            "reuse it in later runs", fileFilter="SemiSeg encoder (*.semienc)", optional=True,
            createByDefault=False))

    def training_args(self, parameters: dict, context, feedback) -> list[str]:
        """``--image ... --labels ... --method ...`` for ``train`` and ``run``."""
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        image = raster_file(layer, "image")
        args = ["--image", image, *self.labels_args(parameters, context, feedback),
                *layer_nodata_args(layer, context, feedback)]
        unlabeled = self.parameterAsLayerList(parameters, self.UNLABELED, context)
        if unlabeled:
            args += ["--unlabeled", *[raster_file(layer, "unlabeled image") for layer in unlabeled]]
        args += ["--method", self.enum_value(parameters, self.METHOD, context, METHODS) or METHODS[0],
                 "--preset", self.enum_value(parameters, self.PRESET, context, PRESETS) or "balanced",
                 *self.device_args(parameters, context),
                 *self.number_args(parameters, context, self.NUMBER_FLAGS)]
        arch = self.enum_value(parameters, self.ARCH, context, ARCHITECTURES)
        init = self.parameterAsFile(parameters, self.INIT, context)
        warm = self.parameterAsFile(parameters, self.WARM_START, context)
        if warm:  # the model carries the trained encoder: no pretraining, no encoder cache
            if self.is_set(parameters, self.ENCODER_CACHE):
                feedback.pushInfo("Continuing from a model, which carries its encoder: the encoder cache is "
                                  "left alone.")
            return args + (["--arch", arch] if arch else []) + ["--warm-start", warm]
        return (args + (["--arch", arch] if arch else []) + (["--init", init] if init else [])
                + self.cache_args(parameters, context, feedback))

    def encoder_cache(self, parameters: dict, context) -> str:
        """The encoder cache the engine gets: the file asked for when the method pretrains, else ""."""
        method = self.enum_value(parameters, self.METHOD, context, METHODS) or METHODS[0]
        if not self.is_set(parameters, self.ENCODER_CACHE) or method not in PRETRAINED_METHODS:
            return ""
        if self.parameterAsFile(parameters, self.WARM_START, context):  # the model carries the encoder
            return ""
        return self.parameterAsFileOutput(parameters, self.ENCODER_CACHE, context)

    def cache_args(self, parameters: dict, context, feedback) -> list[str]:
        """``--encoder-cache FILE`` for the methods that pretrain; for the others a line says it is unused."""
        cache = self.encoder_cache(parameters, context)
        if not cache and self.is_set(parameters, self.ENCODER_CACHE):
            feedback.pushInfo("This method does not pretrain an encoder; the encoder cache is left alone.")
        return ["--encoder-cache", cache] if cache else []

    def cache_output(self, parameters: dict, context) -> dict:
        """The encoder cache as an algorithm output (for the modeler), when one was used."""
        return {self.ENCODER_CACHE: self.encoder_cache(parameters, context) or None}
