"""Pretrain: learn the imagery without labels by inpainting (``python -m engine pretrain``)."""

from __future__ import annotations

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
)

from .base import ARCHITECTURES, PRESETS, SemiSegAlgorithm, layer_nodata_args, raster_file

ENCODER_FILTER = "SemiSeg encoder (*.semienc)"


class PretrainAlgorithm(SemiSegAlgorithm):
    NAME = "pretrain"
    DISPLAY_NAME = "Pretrain on unlabeled imagery"
    HELP = ("Learns the imagery without any label: an inpainting network restores the regions an "
            "adversarial instructor network erases (self-supervised). Writes an encoder file; give it to "
            "Train or Train and segment (method inpaint, Pretrained encoder) to start from it each time "
            "you add labels, instead of pretraining again. Preset: 0 fast, 1 balanced, 2 best.")

    UNLABELED = "UNLABELED"
    PRESET = "PRESET"
    SEED = "SEED"
    ARCH = "ARCH"
    PRETRAIN_STEPS = "PRETRAIN_STEPS"
    NO_INSTRUCTOR = "NO_INSTRUCTOR"
    OUTPUT = "OUTPUT"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.add_image_parameter("Image to learn from")
        self.add_enum(self.PRESET, "Preset", PRESETS, default=1)
        self.add_device_parameter()
        self.add_advanced(QgsProcessingParameterMultipleLayers(
            self.UNLABELED, "More images to learn from (same bands)", QgsProcessing.TypeRaster,
            optional=True))
        self.add_number(self.PRETRAIN_STEPS, "Inpainting steps (empty: the preset's)", minimum=1)
        self.add_number(self.SEED, "Random seed (empty: 0)", minimum=0)
        self.add_enum(self.ARCH, "Network (empty: the preset's)", ARCHITECTURES, default=None, advanced=True)
        self.add_advanced(QgsProcessingParameterBoolean(
            self.NO_INSTRUCTOR, "Erase random cells instead of the instructor's choice (ablation)",
            defaultValue=False))
        self.addParameter(QgsProcessingParameterFileDestination(self.OUTPUT, "Encoder file",
                                                                fileFilter=ENCODER_FILTER))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        layer = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        image = raster_file(layer, "image")
        encoder = self.parameterAsFileOutput(parameters, self.OUTPUT, context)
        args = ["pretrain", "--image", image, "--out", encoder,
                "--preset", self.enum_value(parameters, self.PRESET, context, PRESETS) or "balanced",
                *self.device_args(parameters, context),
                *self.number_args(parameters, context, {self.PRETRAIN_STEPS: ("--pretrain-steps", True),
                                                        self.SEED: ("--seed", True)}),
                *layer_nodata_args(layer, context, feedback)]
        unlabeled = self.parameterAsLayerList(parameters, self.UNLABELED, context)
        if unlabeled:
            args += ["--unlabeled", *[raster_file(layer, "unlabeled image") for layer in unlabeled]]
        arch = self.enum_value(parameters, self.ARCH, context, ARCHITECTURES)
        if arch:
            args += ["--arch", arch]
        if self.parameterAsBoolean(parameters, self.NO_INSTRUCTOR, context):
            args.append("--no-instructor")
        done = self.run_engine(args, feedback).done
        return {self.OUTPUT: done.get("encoder", encoder)}
