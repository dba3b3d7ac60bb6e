"""Accuracy assessment: a stratified random sample of points to check (``python -m engine sample``) and
the accuracies and class areas with 95 % intervals from the checked sample (``python -m engine assess``)."""

from __future__ import annotations

import json

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterField,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterVectorDestination,
)

from ..jobs import sample_share_args
from ..map_facts import accuracy_items, accuracy_summary
from .base import SemiSegAlgorithm, raster_file
from .styling import SAMPLE, style_output


class SampleAlgorithm(SemiSegAlgorithm):
    NAME = "accuracy_sample"
    DISPLAY_NAME = "Accuracy sample of a map"
    HELP = ("Draws random points among the pixels of each class of a SemiSeg map (a stratified random "
            "sample, the map's classes as strata), in random order, as a GeoPackage with the fields id, "
            "map_class, map_name and an empty reference. Check each point against reference data (field "
            "visits, sharper imagery) and enter its true class under reference (QGIS shows the class names "
            "to choose from; map_class and map_name are hidden in the form so that the map does not sway "
            "you). Then run Assess the accuracy of a map. 50 points per class is the usual start "
            "(Olofsson et al. 2014); a class with fewer pixels gives them all. With Points in all, that many "
            "points are shared by the classes' areas, each class getting at least Points per class: the "
            "overall accuracy and the class areas come out more precise, a rare class's user's accuracy "
            "less.")

    PREDICTION = "PREDICTION"
    PER_CLASS = "PER_CLASS"
    TOTAL = "TOTAL"
    SEED = "SEED"
    OUTPUT = "OUTPUT"
    POINTS = "POINTS"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.PREDICTION, "Map (SemiSeg class raster)"))
        self.addParameter(QgsProcessingParameterNumber(
            self.PER_CLASS, "Points per class (with Points in all: at least this many)",
            QgsProcessingParameterNumber.Integer, defaultValue=50, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            self.TOTAL, "Points in all, shared by the classes' areas (0: Points per class in every class)",
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.add_advanced(QgsProcessingParameterNumber(
            self.SEED, "Random seed", QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0))
        self.addParameter(QgsProcessingParameterVectorDestination(
            self.OUTPUT, "Sample points", QgsProcessing.TypeVectorPoint))
        self.addOutput(QgsProcessingOutputNumber(self.POINTS, "Number of points"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        prediction = raster_file(self.parameterAsRasterLayer(parameters, self.PREDICTION, context), "map")
        out = self.parameterAsOutputLayer(parameters, self.OUTPUT, context)
        share = sample_share_args(self.parameterAsInt(parameters, self.PER_CLASS, context),
                                  self.parameterAsInt(parameters, self.TOTAL, context))
        done = self.run_engine(["sample", "--prediction", prediction, "--out", out, *share, "--seed",
                                str(self.parameterAsInt(parameters, self.SEED, context))], feedback).done
        for name, n in (done.get("per_class") or {}).items():
            feedback.pushInfo(f"{name}: {n} points")
        style_output(context, out, SAMPLE, feedback, source=prediction)
        return {self.OUTPUT: out, self.POINTS: done.get("points")}


class AssessAlgorithm(SemiSegAlgorithm):
    NAME = "assess_accuracy"
    DISPLAY_NAME = "Assess the accuracy of a map"
    HELP = ("Estimates a SemiSeg map's overall accuracy, each class's user's accuracy (how often a pixel "
            "mapped as the class is that class) and producer's accuracy (how much of the class the map "
            "finds), and each class's area corrected for the map's errors, all with 95 % confidence "
            "intervals, from reference data: the sample from Accuracy sample of a map with its reference "
            "field filled in, or any points, polygons or class raster of the map's classes (numbers or "
            "names; empty or 0 = not checked). The estimators weigh each map class by its area "
            "(Olofsson et al. 2014), which assumes a random sample within each map class; pixels of "
            "polygons or rasters are not independent, so their intervals come out too narrow (a warning "
            "says so).")

    PREDICTION = "PREDICTION"
    REFERENCE = "REFERENCE"
    REFERENCE_FIELD = "REFERENCE_FIELD"
    OUTPUT = "OUTPUT"
    TABLES = "TABLES"
    OA = "OA"
    REPORT = "REPORT"

    def initAlgorithm(self, config=None):  # noqa: ARG002, N802 (QGIS API)
        self.addParameter(QgsProcessingParameterRasterLayer(self.PREDICTION, "Map (SemiSeg class raster)"))
        self.addParameter(QgsProcessingParameterMapLayer(
            self.REFERENCE, "Reference (the checked sample, or points, polygons or a class raster)",
            types=[QgsProcessing.TypeVectorAnyGeometry, QgsProcessing.TypeRaster]))
        self.addParameter(QgsProcessingParameterField(
            self.REFERENCE_FIELD, "Reference class field (vector reference)", defaultValue="reference",
            parentLayerParameterName=self.REFERENCE, optional=True))
        self.add_labels_parameters("Labels the map was trained on (optional: reference points on them are "
                                   "counted and warned about)", optional=True)
        self.addParameter(QgsProcessingParameterFileDestination(
            self.OUTPUT, "Report (JSON)", fileFilter="JSON (*.json)", optional=True, createByDefault=False))
        self.addParameter(QgsProcessingParameterFileDestination(
            self.TABLES, "Tables (CSV: estimates per class, error matrices)", fileFilter="CSV (*.csv)",
            optional=True, createByDefault=False))
        self.addOutput(QgsProcessingOutputNumber(self.OA, "Overall accuracy"))
        self.addOutput(QgsProcessingOutputString(self.REPORT, "Report (JSON)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS API)
        outputs = {name: self.parameterAsFileOutput(parameters, name, context)
                   for name in (self.OUTPUT, self.TABLES)}
        outputs = {name: path for name, path in outputs.items() if path}
        for name, suffix in ((self.OUTPUT, ".json"), (self.TABLES, ".csv")):
            if name in outputs and not outputs[name].lower().endswith(suffix):
                raise QgsProcessingException(f"{name} ({outputs[name]}) must end in {suffix}: it is written "
                                             f"as {suffix[1:].upper()}.")
        prediction = raster_file(self.parameterAsRasterLayer(parameters, self.PREDICTION, context), "map")
        reference = (self.REFERENCE, "--reference", "reference data")
        field = (self.REFERENCE_FIELD, "--reference-field")
        args = self.layer_args(parameters, context, feedback, reference, field)
        if self.is_set(parameters, self.LABELS):
            args += self.labels_args(parameters, context, feedback)
        if outputs:
            args += ["--out", *outputs.values()]
        done = self.run_engine(["assess", "--prediction", prediction, *args], feedback).done
        report = {k: v for k, v in done.items() if k not in ("event", "seconds")}
        feedback.pushInfo(accuracy_summary(report))
        for name, text in accuracy_items(report):
            feedback.pushInfo(f"{name}: {text}")
        results = {self.OA: (report.get("overall_accuracy") or {}).get("estimate"),
                   self.REPORT: json.dumps(report, indent=2)}
        return {**results, **outputs}
