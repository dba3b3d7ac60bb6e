"""What every SemiSeg algorithm shares: parameters that mirror the engine's flags, and one way to run it.

``SemiSegAlgorithm.run_engine`` starts ``python -m engine <command> ... --progress jsonl`` through
``ui.engine_process`` (the module the dock uses too), turns its events into Processing feedback
(progress bar, stage text, metrics in the log), terminates the child when the user cancels, and raises
``QgsProcessingException`` carrying the engine's own one-sentence error. Nothing here touches the project
or any widget, so the algorithms run in Processing's background thread and in ``qgis_process``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterField,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtGui import QIcon

from .. import settings
from ..engine_process import EngineProcess, EngineResult, EngineSetup, find_engine_python
from ..jobs import nodata_args
from ..layer_files import engine_source, layer_nodata
from ..map_facts import class_area_items, map_fact

ICON_PATH = Path(__file__).resolve().parents[2] / "resources" / "icons" / "semiseg.svg"

# Enum options, in a fixed order: Processing stores the index (qgis_process takes --PRESET=0 for fast).
METHODS = ("supervised", "icnet", "inpaint", "inpaint+icnet")
PRESETS = ("fast", "balanced", "best")
ARCHITECTURES = ("unet", "resnet18", "resnet34", "resnet50")
VECTOR_FORMATS = ["gpkg", "shp", "geojson"]  # the engine reads any of these through OGR

# The engine interpreter: this environment variable (handy for qgis_process on a server), else the
# dock's setting, else the first Python that can import torch (see ui.engine_process).
ENGINE_PYTHON_ENV = "SEMISEG_ENGINE_PYTHON"

PREDICT_SHARE = 10.0  # percent of the bar left for the prediction stage after training


def engine_python() -> str:
    """The interpreter that runs the engine, or QgsProcessingException saying how to get one."""
    configured = os.environ.get(ENGINE_PYTHON_ENV, "") or settings.engine_python()
    python = find_engine_python(configured)
    if python is None:
        raise QgsProcessingException(EngineSetup(None, configured=configured).problem)
    return python


def event_progress(event: dict, trains_then_predicts: bool) -> float | None:
    """Percent done after a ``progress`` event (None for other events).

    A job that trains and then predicts gives training the first 90 % of the bar; a job with one stage
    kind fills the bar once per stage.
    """
    if event.get("event") != "progress" or not event.get("total_steps"):
        return None
    fraction = min(max(float(event.get("step", 0)) / float(event["total_steps"]), 0.0), 1.0)
    if not trains_then_predicts:
        return 100.0 * fraction
    if event.get("stage") == "predict":
        return 100.0 - PREDICT_SHARE + PREDICT_SHARE * fraction
    return (100.0 - PREDICT_SHARE) * fraction


def report_event(event: dict, feedback) -> None:
    """Put one engine event in the Processing log (progress itself goes to the bar)."""
    kind = event.get("event")
    if kind == "start":
        feedback.pushInfo(f"SemiSeg engine {event.get('engine_version', '')} on {event.get('device', '?')}")
    elif kind == "stage":
        feedback.setProgressText(f"{event.get('stage')}: {event.get('message', '')}".rstrip(": "))
    elif kind == "metric":
        scores = ", ".join(f"{k} {v:.3f}" for k, v in event.items() if isinstance(v, float))
        feedback.pushInfo(f"step {event.get('step', '?')}: {scores}")
    elif kind == "warning":
        feedback.pushWarning(str(event.get("message", "")))
    elif kind == "artifact":
        feedback.pushInfo(f"wrote {event.get('kind')}: {event.get('path')}")


def report_class_areas(done: dict, feedback) -> None:
    """One log line per class of a map the engine wrote: hectares (or pixels) and share, largest first."""
    for name, text in class_area_items(map_fact(done, "class_areas")):
        feedback.pushInfo(f"{name}: {text}")


def raster_file(layer: QgsRasterLayer | None, what: str) -> str:
    """The file behind a raster layer; the engine reads files, not QGIS layers."""
    if layer is None:
        raise QgsProcessingException(f"No {what} raster was given; choose a raster layer or file.")
    path = QgsProviderRegistry.instance().decodeUri(layer.providerType(), layer.source()).get("path", "")
    if layer.providerType() != "gdal" or not path or not os.path.isfile(path):
        raise QgsProcessingException(f"The {what} layer '{layer.name()}' is not a raster file; save it as a "
                                     "GeoTIFF (Export → Save As…) and use that.")
    return path


def layer_nodata_args(layer: QgsRasterLayer | None, context, feedback) -> list[str]:
    """``--nodata`` as the dock passes it for a layer of the project: its no-data values set in QGIS
    (which its file does not hold), or ``none``. A raster given as a file path has no such settings and
    gets nothing: the engine's default (a warm start's or the model's values)."""
    project = context.project()
    if layer is None or project is None or project.mapLayer(layer.id()) is None:
        return []
    values, problems = layer_nodata(layer)
    for problem in problems:
        feedback.pushWarning(f"{layer.name()}: {problem}")
    return nodata_args(values)


# The engine's flags its sentences name, as the parameters of the algorithms
ENGINE_FLAGS = {"--label-field": "LABEL_FIELD", "--reference-field": "REFERENCE_FIELD",
                "--device cpu": "DEVICE cpu", "--warm-start": "WARM_START", "--init": "INIT",
                "--encoder-cache": "ENCODER_CACHE", "--steps": "STEPS", "--tile-size": "TILE_SIZE",
                "--batch-size": "BATCH_SIZE", "--area": "AREA", "--unlabeled": "UNLABELED",
                "--min-pixels": "MIN_PIXELS", "--per-class": "PER_CLASS", "--total": "TOTAL"}


class SemiSegAlgorithm(QgsProcessingAlgorithm):
    """Base of the SemiSeg algorithms: naming, parameter builders, running the engine."""

    NAME = ""  # algorithm id inside the provider: semiseg:<NAME>
    DISPLAY_NAME = ""
    HELP = ""

    # Parameter names shared by several algorithms (they mirror the engine's flags).
    INPUT = "INPUT"
    DEVICE = "DEVICE"
    LABELS = "LABELS"
    LABEL_FIELD = "LABEL_FIELD"
    SMOOTH = "SMOOTH"
    AREA = "AREA"

    def __init__(self) -> None:
        super().__init__()
        self._names: dict[str, str] = {}  # temporary copies of layers made for the engine -> how to name them

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:
        return self.DISPLAY_NAME

    def shortHelpString(self) -> str:
        return self.HELP

    def icon(self) -> QIcon:
        return QIcon(str(ICON_PATH))

    def createInstance(self):
        return type(self)()

    # --- parameter builders ---------------------------------------------------------------------------

    def add_advanced(self, parameter: QgsProcessingParameterDefinition) -> None:
        parameter.setFlags(parameter.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(parameter)

    def add_image_parameter(self, description: str = "Image") -> None:
        self.addParameter(QgsProcessingParameterRasterLayer(self.INPUT, description))

    def add_labels_parameters(self, description: str, optional: bool = False) -> None:
        """Labels (a label raster, or points/lines/polygons) and the class field of vector labels."""
        self.addParameter(QgsProcessingParameterMapLayer(
            self.LABELS, description, types=[QgsProcessing.TypeRaster, QgsProcessing.TypeVectorAnyGeometry],
            optional=optional))
        self.addParameter(QgsProcessingParameterField(
            self.LABEL_FIELD, "Class field of vector labels (default: class)",
            parentLayerParameterName=self.LABELS, optional=True))

    def add_device_parameter(self) -> None:
        self.add_advanced(QgsProcessingParameterString(
            self.DEVICE, "Device (auto, cpu, cuda, cuda:N or mps)", defaultValue="auto"))

    def add_smooth_parameter(self) -> None:
        # optional, default true: models saved in the modeler before it existed leave it out
        self.add_advanced(QgsProcessingParameterBoolean(
            self.SMOOTH, "Smooth the map (edge-aware, holding the labels; off: the network's own map, about "
            "2.9 times faster to predict on a CPU)", defaultValue=True, optional=True))

    def add_area_parameter(self, trains: bool = False) -> None:
        # optional: left empty, the whole image is segmented (and models saved before it still run)
        more = "; training still learns from all of it" if trains else ""
        self.addParameter(QgsProcessingParameterExtent(
            self.AREA, f"Area to segment (empty: the whole image{more})", optional=True))

    def add_enum(self, name: str, description: str, options: tuple[str, ...], default: int | None,
                 advanced: bool = False) -> None:
        parameter = QgsProcessingParameterEnum(name, description, options=list(options),
                                               defaultValue=default, optional=default is None)
        if advanced:
            self.add_advanced(parameter)
        else:
            self.addParameter(parameter)

    def add_number(self, name: str, description: str, integer: bool = True, minimum: float | None = None,
                   maximum: float | None = None) -> None:
        """An optional advanced number: left empty, the engine (its preset) decides."""
        kind = QgsProcessingParameterNumber.Integer if integer else QgsProcessingParameterNumber.Double
        parameter = QgsProcessingParameterNumber(name, description, type=kind, optional=True)
        if minimum is not None:
            parameter.setMinimum(minimum)
        if maximum is not None:
            parameter.setMaximum(maximum)
        self.add_advanced(parameter)

    # --- parameter values → engine flags ---------------------------------------------------------------

    @staticmethod
    def is_set(parameters: dict, name: str) -> bool:
        return parameters.get(name) not in (None, "")

    def device_args(self, parameters: dict, context) -> list[str]:
        return ["--device", self.parameterAsString(parameters, self.DEVICE, context).strip() or "auto"]

    def smooth_args(self, parameters: dict, context) -> list[str]:
        """``--smooth off`` when the map is not to be smoothed; nothing for the engine's default (on)."""
        return [] if self.parameterAsBool(parameters, self.SMOOTH, context) else ["--smooth", "off"]

    def area_args(self, parameters: dict, context) -> list[str]:
        """``--area XMIN YMIN XMAX YMAX`` in the image's CRS (an extent in another CRS is transformed), or
        nothing for the whole image."""
        if not self.is_set(parameters, self.AREA):
            return []
        image = self.parameterAsRasterLayer(parameters, self.INPUT, context)
        extent = self.parameterAsExtent(parameters, self.AREA, context, image.crs() if image else None)
        if extent.isNull() or extent.isEmpty():
            return []
        return ["--area", *(repr(v) for v in (extent.xMinimum(), extent.yMinimum(), extent.xMaximum(),
                                              extent.yMaximum()))]

    def enum_value(self, parameters: dict, name: str, context, options: tuple[str, ...]) -> str | None:
        if not self.is_set(parameters, name):
            return None
        return options[self.parameterAsEnum(parameters, name, context)]

    def number_args(self, parameters: dict, context, flags: dict[str, tuple[str, bool]]) -> list[str]:
        """``--flag value`` for each optional number the user set; ``flags``: name -> (flag, integer)."""
        args: list[str] = []
        for name, (flag, integer) in flags.items():
            if self.is_set(parameters, name):
                value = (self.parameterAsInt(parameters, name, context) if integer
                         else self.parameterAsDouble(parameters, name, context))
                args += [flag, str(value)]
        return args

    def labels_args(self, parameters: dict, context, feedback) -> list[str]:
        """``--labels`` (and ``--label-field``) for the LABELS parameter."""
        return self.layer_args(parameters, context, feedback, (self.LABELS, "--labels", "labels"),
                               (self.LABEL_FIELD, "--label-field"))

    def layer_args(self, parameters: dict, context, feedback, layer: tuple[str, str, str],
                   field: tuple[str, str]) -> list[str]:
        """``FLAG FILE [FIELD_FLAG FIELD]`` for a raster or vector layer parameter; ``layer`` is (parameter,
        flag, what it is), ``field`` (its field parameter, flag). A raster is passed as its file; a vector
        layer as a file the engine can read (a layer in a multi-layer GeoPackage, a memory layer or a
        filtered layer is written to a temporary file)."""
        (name, flag, what), (field_name, field_flag) = layer, field
        source = self.parameterAsLayer(parameters, name, context)
        if source is None:
            raise QgsProcessingException(f"No {what} were given; choose a raster or a vector layer.")
        if isinstance(source, QgsRasterLayer):
            return [flag, raster_file(source, what)]
        if isinstance(source, QgsVectorLayer) and source.isEditable() and source.isModified():
            raise QgsProcessingException(f"The {what} layer {source.name()} has unsaved edits, which the "
                                         "engine cannot see; save them (Save Layer Edits) first.")
        path = self.parameterAsCompatibleSourceLayerPath(parameters, name, context, VECTOR_FORMATS, "gpkg",
                                                         feedback)
        if path != engine_source(source):  # a copy the user never saw: messages name the layer
            self._names[path] = f"layer {source.name()}"
        fields = self.parameterAsFields(parameters, field_name, context)
        return [flag, path] + ([field_flag, fields[0]] if fields else [])

    # --- running the engine -----------------------------------------------------------------------------

    def in_our_words(self, message: str) -> str:
        """The engine's sentence as a Processing user reads it: its flags as this algorithm's parameters,
        a temporary copy of a layer as that layer."""
        for path, name in self._names.items():
            message = message.replace(f"Labels {path}", f"The labels in {name}")
            message = message.replace(f"Reference {path}", f"The reference in {name}")
            message = message.replace(path, name)
        for flag, parameter in ENGINE_FLAGS.items():
            message = re.sub(rf"{re.escape(flag)}(?![\w-])", parameter, message)
        return message

    def run_engine(self, args: list[str], feedback, trains_then_predicts: bool = False) -> EngineResult:
        """Run ``python -m engine <args> --progress jsonl``; the result, or QgsProcessingException."""
        python = engine_python()
        args = [*args, "--progress", "jsonl"]
        feedback.pushCommandInfo(shlex.join([python, "-m", "engine", *args]))

        def on_event(event: dict) -> None:
            report_event(event, feedback)
            progress = event_progress(event, trains_then_predicts)
            if progress is not None:
                feedback.setProgress(progress)

        result = EngineProcess(python, args, on_event=on_event).run(should_cancel=feedback.isCanceled)
        if result.cancelled:
            said = (result.error or {}).get("message") or ""  # e.g. the trained model is kept
            raise QgsProcessingException(self.in_our_words(said) if "kept" in said else
                                         "Cancelled; the engine was stopped and no output was written.")
        if not result.ok:
            if result.stderr_tail.strip():
                feedback.pushDebugInfo(result.stderr_tail)
            raise QgsProcessingException(self.in_our_words(result.user_message()))
        feedback.setProgress(100)
        report_class_areas(result.done or {}, feedback)
        return result
