"""The algorithms work in the graphical modeler: a model chaining Train → Predict, built in code, runs."""

from __future__ import annotations

import pytest
import rasterio
from processing_helpers import TINY_TRAINING, processing
from qgis.core import (
    QgsProcessing,
    QgsProcessingModelAlgorithm,
    QgsProcessingModelChildAlgorithm,
    QgsProcessingModelChildParameterSource,
    QgsProcessingModelOutput,
    QgsProcessingModelParameter,
    QgsProcessingParameterMapLayer,
    QgsProcessingParameterRasterLayer,
    QgsProject,
)


def expose(child: QgsProcessingModelChildAlgorithm, name: str, description: str, output: str) -> None:
    """Make ``child``'s ``output`` the model output ``name``."""
    model_output = QgsProcessingModelOutput(name, description)
    model_output.setChildId(child.childId())
    model_output.setChildOutputName(output)
    child.setModelOutputs({name: model_output})


def train_then_predict_model() -> QgsProcessingModelAlgorithm:
    """Inputs: image, labels. Train on them (tiny settings), then segment the image with that model."""
    model = QgsProcessingModelAlgorithm("Train then predict", "SemiSeg tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("image", "Image"),
                            QgsProcessingModelParameter("image"))
    model.addModelParameter(QgsProcessingParameterMapLayer(
        "labels", "Labels", types=[QgsProcessing.TypeRaster, QgsProcessing.TypeVectorAnyGeometry]),
        QgsProcessingModelParameter("labels"))

    train = QgsProcessingModelChildAlgorithm("semiseg:train")
    train.setChildId("train")
    train.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("image")])
    train.addParameterSources("LABELS", [QgsProcessingModelChildParameterSource.fromModelParameter("labels")])
    # the modeler's dialog fills every parameter with its default; in code, name them
    for name, value in {**TINY_TRAINING, "METHOD": 0}.items():
        train.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
    model.addChildAlgorithm(train)

    predict = QgsProcessingModelChildAlgorithm("semiseg:predict")
    predict.setChildId("predict")
    trained_model = QgsProcessingModelChildParameterSource.fromChildOutput("train", "OUTPUT")
    predict.addParameterSources("MODEL", [trained_model])
    predict.addParameterSources("INPUT", [QgsProcessingModelChildParameterSource.fromModelParameter("image")])
    predict.addParameterSources("DEVICE", [QgsProcessingModelChildParameterSource.fromStaticValue("cpu")])
    expose(predict, "prediction", "Prediction", "OUTPUT")
    model.addChildAlgorithm(predict)
    return model


@pytest.mark.slow
def test_model_chains_train_into_predict(semiseg_plugin, scene, tmp_path):  # noqa: ARG001
    model = train_then_predict_model()
    assert model.dependsOnChildAlgorithms("predict") == {"train"}
    ok, problems = model.validate()
    assert ok, problems
    out = tmp_path / "prediction.tif"
    results = processing().run(model, {"image": scene["image"], "labels": scene["labels"],
                                       "predict:prediction": str(out)})
    assert results["predict:prediction"] == str(out)
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (64, 64)
        assert set(ds.read(1).ravel()) <= {1, 2, 3}


def test_model_round_trips_through_its_file_format(semiseg_plugin, tmp_path):  # noqa: ARG001
    path = tmp_path / "train_then_predict.model3"
    assert train_then_predict_model().toFile(str(path))
    loaded = QgsProcessingModelAlgorithm()
    assert loaded.fromFile(str(path))
    assert set(loaded.childAlgorithms()) == {"train", "predict"}
    assert loaded.childAlgorithm("predict").algorithmId() == "semiseg:predict"


def segment_then_polygons_model(keep_folder: bool) -> QgsProcessingModelAlgorithm:
    """Train and segment an image, then make polygons of its map; ``keep_folder``: the run's folder is a
    model output too."""
    model = QgsProcessingModelAlgorithm("Segment then polygons", "SemiSeg tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("image", "Image"),
                            QgsProcessingModelParameter("image"))
    model.addModelParameter(
        QgsProcessingParameterMapLayer("labels", "Labels", types=[QgsProcessing.TypeRaster]),
        QgsProcessingModelParameter("labels"))
    segment = QgsProcessingModelChildAlgorithm("semiseg:train_and_segment")
    segment.setChildId("segment")
    for name in ("image", "labels"):
        segment.addParameterSources("INPUT" if name == "image" else "LABELS",
                                    [QgsProcessingModelChildParameterSource.fromModelParameter(name)])
    for name, value in {**TINY_TRAINING, "METHOD": 0}.items():
        segment.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
    if keep_folder:
        expose(segment, "run", "Run folder", "OUTPUT_FOLDER")
    model.addChildAlgorithm(segment)

    polygons = QgsProcessingModelChildAlgorithm("semiseg:polygons")
    polygons.setChildId("polygons")
    polygons.addParameterSources("PREDICTION", [
        QgsProcessingModelChildParameterSource.fromChildOutput("segment", "PREDICTION")])
    polygons.addParameterSources("MIN_PIXELS", [QgsProcessingModelChildParameterSource.fromStaticValue(4)])
    expose(polygons, "polygons", "Polygons", "OUTPUT")
    model.addChildAlgorithm(polygons)
    return model


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["intermediate", "TEMPORARY_OUTPUT", "chosen"])
def test_train_and_segment_inside_a_model_adds_its_layers_only_when_they_are_outputs(
        semiseg_plugin, scene, tmp_path, folder):  # noqa: ARG001
    """As an intermediate step its map goes to the next step only (its folder is Processing's temporary
    one); once the folder is a model output, temporary or chosen, the map and confidence are added too."""
    project = QgsProject.instance()
    project.clear()
    parameters = {"image": scene["image"], "labels": scene["labels"],
                  "polygons:polygons": str(tmp_path / "polygons.gpkg")}
    if folder != "intermediate":
        parameters["segment:run"] = folder if folder == "TEMPORARY_OUTPUT" else str(tmp_path / "run")
    model = segment_then_polygons_model(keep_folder=folder != "intermediate")
    results = processing().runAndLoadResults(model, parameters)
    assert results["polygons:polygons"] == str(tmp_path / "polygons.gpkg")
    names = sorted(layer.name() for layer in project.mapLayers().values())
    project.clear()
    maps = [] if folder == "intermediate" else ["SemiSeg confidence", "SemiSeg prediction"]
    assert names == [*maps, "polygons"]
