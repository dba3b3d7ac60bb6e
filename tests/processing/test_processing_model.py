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
)


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
    output = QgsProcessingModelOutput("prediction", "Prediction")
    output.setChildId("predict")
    output.setChildOutputName("OUTPUT")
    predict.setModelOutputs({"prediction": output})
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
