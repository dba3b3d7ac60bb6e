"""Every SemiSeg algorithm is registered and runs through ``processing.run`` on a tiny scene, with the real
engine as a child process: progress, outputs, styling, the engine's error sentence, and cancel."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from processing_helpers import TINY_TRAINING, RecordingFeedback, processing
from qgis.core import (
    QgsApplication,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProcessingParameterRasterLayer,
    QgsProject,
    QgsRasterLayer,
    QgsRasterRange,
    QgsVectorLayer,
)

from engine.cli import build_parser
from engine.synthetic import write_scene

ALGORITHMS = {"semiseg:train", "semiseg:predict", "semiseg:train_and_segment", "semiseg:evaluate",
              "semiseg:pretrain", "semiseg:polygons", "semiseg:accuracy_sample", "semiseg:assess_accuracy"}


@pytest.fixture(scope="module")
def trained(semiseg_plugin, scene, tmp_path_factory) -> dict:  # noqa: ARG001
    """semiseg:train once for the module: its results and feedback."""
    feedback = RecordingFeedback()
    model = str(tmp_path_factory.mktemp("train") / "tiny.semiseg")
    results = processing().run("semiseg:train", {"INPUT": scene["image"], "LABELS": scene["labels"],
                                               **TINY_TRAINING, "OUTPUT": model}, feedback=feedback)
    return {"results": results, "feedback": feedback, "model": model}


@pytest.fixture()
def clean_project():
    QgsProject.instance().clear()
    yield QgsProject.instance()
    QgsProject.instance().clear()


def test_provider_registers_every_algorithm(semiseg_plugin):
    provider = QgsApplication.processingRegistry().providerById("semiseg")
    assert provider is semiseg_plugin.provider
    assert {alg.id() for alg in provider.algorithms()} == ALGORITHMS
    for alg in provider.algorithms():
        assert alg.shortHelpString() and alg.displayName()
        assert QgsApplication.processingRegistry().algorithmById(alg.id()) is not None


@pytest.mark.slow
def test_train_writes_a_model_and_reports_progress(trained):
    results, feedback = trained["results"], trained["feedback"]
    assert results["OUTPUT"] == trained["model"] and Path(trained["model"]).stat().st_size > 0
    assert 0.0 <= results["VAL_MIOU"] <= 1.0
    assert feedback.progress[-1] == 100 and feedback.progress == sorted(feedback.progress)
    assert len(set(feedback.progress)) > 3  # the bar moved with the training steps
    assert any(line.startswith("step 10:") and "val_miou" in line for line in feedback.log)


@pytest.mark.slow
def test_predict_writes_a_styled_class_raster_and_confidence(trained, scene, tmp_path):
    out, conf = tmp_path / "pred.tif", tmp_path / "conf.tif"
    feedback = RecordingFeedback()
    results = processing().run("semiseg:predict", {
        "MODEL": trained["model"], "INPUT": scene["image"], "DEVICE": "cpu", "OUTPUT": str(out),
        "CONFIDENCE": str(conf)}, feedback=feedback)
    assert results == {"OUTPUT": str(out), "CONFIDENCE": str(conf)}
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height, ds.dtypes[0]) == (64, 64, "uint8")
        assert set(ds.read(1).ravel()) <= {1, 2, 3}
        assert ds.colormap(1)[1][:3] != (0, 0, 0)
    areas = [line for line in feedback.log if line.startswith("class ") and " ha (" in line]
    assert len(areas) == 3 and all(line.endswith(" %)") for line in areas)  # one line per class
    qml = (tmp_path / "pred.qml").read_text(encoding="utf-8")  # QGIS loads it with the raster
    assert 'type="paletted"' in qml and 'label="class 2"' in qml and 'value="4"' not in qml
    assert (tmp_path / "conf.qml").exists()


@pytest.mark.slow
def test_predict_holds_labels_given_to_it(trained, scene, tmp_path):
    """Optional labels on the training image reach the engine, which holds them: each labeled pixel comes
    out as its class."""
    feedback = RecordingFeedback()
    out = tmp_path / "held.tif"
    processing().run("semiseg:predict", {"MODEL": trained["model"], "INPUT": scene["image"],
                                         "LABELS": scene["labels"], "DEVICE": "cpu", "OUTPUT": str(out)},
                     feedback=feedback)
    with rasterio.open(scene["labels"]) as ds:
        count = int((ds.read(1) > 0).sum())
    assert any(f"held to {count} labeled pixel(s)" in text for text in feedback.stages), feedback.stages
    with rasterio.open(scene["labels"]) as ds:
        labels = ds.read(1)
    with rasterio.open(out) as ds:
        held = ds.read(1)
    assert (held[labels > 0] == labels[labels > 0]).all()


@pytest.mark.slow
def test_polygons_of_a_map_are_written_styled_and_loaded(trained, scene, tmp_path, clean_project):
    pred = processing().run("semiseg:predict", {"MODEL": trained["model"], "INPUT": scene["image"],
                                              "OUTPUT": str(tmp_path / "pred.tif")})["OUTPUT"]
    out = tmp_path / "pred.gpkg"  # the map's name: its style must not replace the map's pred.qml
    results = processing().runAndLoadResults("semiseg:polygons", {"PREDICTION": pred, "MIN_PIXELS": 4,
                                                                 "OUTPUT": str(out)})
    assert results["OUTPUT"] == str(out) and results["FEATURES"] > 0
    opened = QgsVectorLayer(str(out), "again", "ogr")  # QGIS loads the GeoPackage's own default style
    assert opened.renderer().type() == "categorizedSymbol"
    assert [c.label() for c in opened.renderer().categories()] == ["class 1", "class 2", "class 3"]
    assert 'type="paletted"' in (tmp_path / "pred.qml").read_text(encoding="utf-8")
    del opened  # a layer outside the project left to the interpreter's exit crashes it (after exitQgis)
    loaded = [layer for layer in clean_project.mapLayers().values() if layer.source().startswith(str(out))]
    assert len(loaded) == 1 and loaded[0].featureCount() == results["FEATURES"]
    assert [c.label() for c in loaded[0].renderer().categories()] == ["class 1", "class 2", "class 3"]
    names = {f["name"] for f in loaded[0].getFeatures()}
    assert names <= {"class 1", "class 2", "class 3"} and all(
        f["area_m2"] > 0 for f in loaded[0].getFeatures())
    with pytest.raises(QgsProcessingException, match="extension .gpkg"):  # the engine's own sentence
        processing().run("semiseg:polygons", {"PREDICTION": pred, "OUTPUT": str(tmp_path / "p.shp")})


@pytest.mark.slow
def test_an_accuracy_sample_is_drawn_checked_and_assessed(trained, scene, tmp_path, clean_project):
    """Draw the sample, check its points (here against the scene's truth, through the layer's edit buffer
    as an analyst's form would), assess: the accuracies and areas with their intervals reach the log."""

    pred = processing().run("semiseg:predict", {"MODEL": trained["model"], "INPUT": scene["image"],
                                              "OUTPUT": str(tmp_path / "pred.tif")})["OUTPUT"]
    out = tmp_path / "sample.gpkg"
    results = processing().runAndLoadResults("semiseg:accuracy_sample", {"PREDICTION": pred, "PER_CLASS": 12,
                                                                        "OUTPUT": str(out)})
    assert results["OUTPUT"] == str(out) and 3 <= results["POINTS"] <= 36
    feedback = RecordingFeedback()  # a total shared by area, at least 5 per class
    by_area = processing().run("semiseg:accuracy_sample", {"PREDICTION": pred, "PER_CLASS": 5, "TOTAL": 40,
                                                          "OUTPUT": str(tmp_path / "by_area.gpkg")},
                               feedback=feedback)
    counts = sorted(int(line.split(": ")[1].split()[0]) for line in feedback.log if line.endswith(" points"))
    assert by_area["POINTS"] == sum(counts) == 40 and min(counts) >= 5  # one line per class of the map
    opened = QgsVectorLayer(str(out), "again", "ogr")  # its style is the GeoPackage's default
    assert opened.renderer().type() == "categorizedSymbol"
    assert "not checked yet" in [c.label() for c in opened.renderer().categories()]
    del opened  # (as above)
    loaded = [layer for layer in clean_project.mapLayers().values() if layer.source().startswith(str(out))]
    assert len(loaded) == 1
    layer = loaded[0]
    widget = layer.editorWidgetSetup(layer.fields().indexOf("reference"))
    assert widget.type() == "ValueMap" and {"class 2": 2} in widget.config()["map"]
    assert layer.editorWidgetSetup(layer.fields().indexOf("map_class")).type() == "Hidden"
    with rasterio.open(scene["truth"]) as ds:
        truth, inverse = ds.read(1), ~ds.transform
    layer.startEditing()
    index = layer.fields().indexOf("reference")
    for f in layer.getFeatures():
        col, row = inverse * (f.geometry().asPoint().x(), f.geometry().asPoint().y())
        layer.changeAttributeValue(f.id(), index, int(truth[int(row), int(col)]))
    assert layer.commitChanges()
    feedback = RecordingFeedback()
    report_file = tmp_path / "accuracy.json"
    results = processing().run("semiseg:assess_accuracy", {"PREDICTION": pred, "REFERENCE": layer,
                                                          "REFERENCE_FIELD": "reference",
                                                          "LABELS": scene["labels"],
                                                          "OUTPUT": str(report_file),
                                                          "TABLES": str(tmp_path / "accuracy.csv")},
                               feedback=feedback)
    assert results["TABLES"] == str(tmp_path / "accuracy.csv")
    assert (tmp_path / "accuracy.csv").read_text(encoding="utf-8").startswith("class,points,mapped (ha)")
    report = json.loads(report_file.read_text(encoding="utf-8"))
    assert results["OA"] == report["overall_accuracy"]["estimate"] and 0 < results["OA"] <= 1
    assert report["units"] == layer.featureCount() and report["points"]
    assert isinstance(report["on_training_labels"], int)  # the labels reached the engine
    assert any(line.startswith("Overall accuracy ") and "checked points" in line for line in feedback.log)
    assert sum(line.startswith("class ") and "user's" in line and " ha (mapped " in line
               for line in feedback.log) == 3
    feedback = RecordingFeedback()  # the truth raster as a reference: every pixel, with a warning
    results = processing().run("semiseg:assess_accuracy", {"PREDICTION": pred, "REFERENCE": scene["truth"]},
                               feedback=feedback)
    assert json.loads(results["REPORT"])["units"] > layer.featureCount()
    assert any("too narrow" in w for w in feedback.warnings)


@pytest.mark.slow
def test_evaluate_scores_a_prediction(trained, scene, tmp_path):
    pred = processing().run("semiseg:predict", {"MODEL": trained["model"], "INPUT": scene["image"],
                                              "OUTPUT": str(tmp_path / "pred.tif")})["OUTPUT"]
    scores_file = tmp_path / "not yet" / "scores.json"  # a folder that is not there yet is made
    results = processing().run("semiseg:evaluate", {"PREDICTION": pred, "TRUTH": scene["truth"],
                                                  "OUTPUT": str(scores_file)})
    assert 0.0 <= results["MIOU"] <= 1.0 and 0.0 <= results["OA"] <= 1.0
    scores = json.loads(scores_file.read_text(encoding="utf-8"))
    assert scores == json.loads(results["SCORES"])
    assert set(scores["per_class_iou"]) == {"class 1", "class 2", "class 3"}
    assert sum(map(sum, scores["confusion"])) == scores["pixels"] == 64 * 64


@pytest.mark.slow
def test_train_and_segment_loads_styled_layers(semiseg_plugin, scene, tmp_path, clean_project):  # noqa: ARG001
    results = processing().runAndLoadResults("semiseg:train_and_segment", {
        "INPUT": scene["image"], "LABELS": scene["labels"], **TINY_TRAINING,
        "OUTPUT_FOLDER": str(tmp_path / "run")})
    for key, name in (("MODEL", "model.semiseg"), ("PREDICTION", "prediction.tif"),
                      ("CONFIDENCE", "confidence.tif"), ("METRICS", "metrics.json")):
        assert results[key] == str(tmp_path / "run" / name) and Path(results[key]).exists()
    # its validation figure is the delivered map's on the held-out labels
    assert results["VAL_MIOU"] == json.loads(Path(results["METRICS"]).read_text())["map_val_miou"]
    (prediction,) = clean_project.mapLayersByName("SemiSeg prediction")
    assert prediction.renderer().type() == "paletted"
    assert [c.label for c in prediction.renderer().classes()] == ["class 1", "class 2", "class 3"]
    (confidence,) = clean_project.mapLayersByName("SemiSeg confidence")
    assert confidence.renderer().type() == "singlebandpseudocolor"


@pytest.mark.slow
def test_train_and_segment_runs_twice_in_one_session(semiseg_plugin, scene, tmp_path, clean_project):  # noqa: ARG001
    """Each run's layers are styled by post-processors its own context deletes: a second run in the same
    QGIS session (the toolbox again, batch mode) must not reach for the first run's deleted ones."""
    for run in ("first", "second"):
        results = processing().runAndLoadResults("semiseg:train_and_segment", {
            "INPUT": scene["image"], "LABELS": scene["labels"], **TINY_TRAINING,
            "OUTPUT_FOLDER": str(tmp_path / run)})
        assert Path(results["PREDICTION"]).exists(), run
    layers = clean_project.mapLayersByName("SemiSeg prediction")
    assert len(layers) == 2 and all(layer.renderer().type() == "paletted" for layer in layers)


@pytest.mark.slow
def test_engine_error_becomes_a_processing_exception_with_its_sentence(trained, tmp_path):
    other = write_scene(str(tmp_path), height=32, width=32, bands=4, classes=2)  # 4 bands, model has 3
    with pytest.raises(QgsProcessingException, match=r"has 4 band\(s\) but the model was trained on 3"):
        processing().run("semiseg:predict", {"MODEL": trained["model"], "INPUT": other["image"],
                                           "OUTPUT": str(tmp_path / "pred.tif")})
    assert not (tmp_path / "pred.tif").exists()


@pytest.mark.slow
def test_cancel_terminates_the_engine(semiseg_plugin, scene, tmp_path):  # noqa: ARG001
    feedback = RecordingFeedback(cancel_at_stage="supervised")  # cancel once training starts
    model = tmp_path / "never.semiseg"
    started = time.monotonic()
    with pytest.raises(QgsProcessingException, match="Cancelled"):
        processing().run("semiseg:train", {"INPUT": scene["image"], "LABELS": scene["labels"],
                                         **TINY_TRAINING, "STEPS": 100_000, "OUTPUT": str(model)},
                       feedback=feedback)
    assert time.monotonic() - started < 120  # 100 000 steps would take hours
    assert not model.exists()
    assert feedback.stages[-1].startswith("supervised")


@pytest.mark.slow
def test_pretrain_writes_an_encoder(semiseg_plugin, scene, tmp_path):  # noqa: ARG001
    encoder = tmp_path / "scene.semienc"
    results = processing().run("semiseg:pretrain", {"INPUT": scene["image"], "PRESET": 0,
                                                    "PRETRAIN_STEPS": 4, "DEVICE": "cpu",
                                                    "OUTPUT": str(encoder)})
    assert results["OUTPUT"] == str(encoder) and encoder.stat().st_size > 0


def test_every_training_parameter_maps_to_a_flag_the_engine_accepts(semiseg_plugin, scene, tmp_path):
    alg = QgsApplication.processingRegistry().createAlgorithmById("semiseg:train_and_segment")
    parameters = {"INPUT": scene["image"], "LABELS": scene["labels"], "METHOD": 2, "PRESET": 2,
                  "DEVICE": "cuda:1", "UNLABELED": [scene["image"]], "STEPS": 7, "TILE_SIZE": 96,
                  "BATCH_SIZE": 3, "LEARNING_RATE": 0.02, "VAL_FRACTION": 0.3, "SEED": 5, "ARCH": 1,
                  "INIT": str(tmp_path / "enc.semienc"), "PRETRAIN_STEPS": 9}
    args = alg.training_args(parameters, QgsProcessingContext(), QgsProcessingFeedback())
    parsed = build_parser().parse_args(["run", *args, "--out-dir", str(tmp_path)])
    assert (parsed.method, parsed.preset, parsed.device) == ("inpaint", "best", "cuda:1")
    assert (parsed.steps, parsed.tile_size, parsed.batch_size, parsed.seed) == (7, 96, 3, 5)
    assert (parsed.lr, parsed.val_fraction, parsed.arch, parsed.pretrain_steps) == (0.02, 0.3, "resnet18", 9)
    assert parsed.unlabeled == [scene["image"]] and parsed.init == str(tmp_path / "enc.semienc")
    assert parsed.image == scene["image"] and parsed.labels == scene["labels"]
    warm = {**parameters, "WARM_START": str(tmp_path / "last.semiseg")}
    parsed = build_parser().parse_args(["run", *alg.training_args(warm, QgsProcessingContext(),
                                                                  QgsProcessingFeedback()), "--out-dir", "o"])
    assert parsed.warm_start == str(tmp_path / "last.semiseg") and parsed.encoder_cache is None


def test_map_smoothing_is_the_engines_default_and_can_be_turned_off(semiseg_plugin, scene, tmp_path):  # noqa: ARG001
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    run = QgsApplication.processingRegistry().createAlgorithmById("semiseg:train_and_segment")
    predict = QgsApplication.processingRegistry().createAlgorithmById("semiseg:predict")
    base = {"INPUT": scene["image"], "LABELS": scene["labels"]}
    for smooth, expected in ((None, "on"), (True, "on"), (False, "off")):
        parameters = base if smooth is None else {**base, "SMOOTH": smooth}
        args = run.run_args(parameters, context, feedback, str(tmp_path))
        assert build_parser().parse_args(args).smooth == expected, smooth
        assert predict.smooth_args(parameters, context) == ([] if expected == "on" else ["--smooth", "off"])


def test_an_area_reaches_the_engine_in_the_images_crs(semiseg_plugin, scene, tmp_path):  # noqa: ARG001
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    run = QgsApplication.processingRegistry().createAlgorithmById("semiseg:train_and_segment")
    predict = QgsApplication.processingRegistry().createAlgorithmById("semiseg:predict")
    base = {"INPUT": scene["image"], "LABELS": scene["labels"]}
    assert build_parser().parse_args(run.run_args(base, context, feedback, str(tmp_path))).area is None
    assert predict.area_args(base, context) == []
    # the image's grid: 1 m pixels from (500000, 5000000) in EPSG:32633 (engine.synthetic)
    same_crs = {**base, "AREA": "500020,500050.5,4999970,4999990 [EPSG:32633]"}
    parsed = build_parser().parse_args(run.run_args(same_crs, context, feedback, str(tmp_path)))
    assert parsed.area == [500020.0, 4999970.0, 500050.5, 4999990.0]
    # an extent in another CRS is transformed into the image's
    lon_lat = {**base, "AREA": "14.99,15.01,45.10,45.12 [EPSG:4326]"}
    xmin, ymin, xmax, ymax = (float(v) for v in predict.area_args(lon_lat, context)[1:])
    assert 499000 < xmin < 500000 < xmax < 501600 and 4_994_000 < ymin < ymax < 4_997_000


def test_a_layers_no_data_value_reaches_the_engine(semiseg_plugin, scene, tmp_path, clean_project):  # noqa: ARG001
    """The image layer's "no data value" set in QGIS, which its file does not hold, goes to the engine as
    --nodata (none for a project layer without one, as the dock passes it); a file that is no layer of the
    project leaves the engine's default."""
    context, feedback = QgsProcessingContext(), RecordingFeedback()
    context.setProject(clean_project)
    layer = QgsRasterLayer(scene["image"], "image", "gdal")
    clean_project.addMapLayer(layer)
    for band in range(1, layer.bandCount() + 1):
        layer.dataProvider().setUserNoDataValue(band, [QgsRasterRange(-1, -1), QgsRasterRange(1, 5)])
    run = QgsApplication.processingRegistry().createAlgorithmById("semiseg:train_and_segment")
    from_layer = {"INPUT": layer.id(), "LABELS": scene["labels"]}
    parsed = build_parser().parse_args(run.run_args(from_layer, context, feedback, str(tmp_path)))
    assert parsed.nodata == [-1.0]
    assert any("no-data range 1–5" in w for w in feedback.warnings)
    plain = QgsRasterLayer(scene["image"], "without", "gdal")  # a project layer without such values:
    clean_project.addMapLayer(plain)  # told so, as the dock tells it, so no model's values come back
    parsed = build_parser().parse_args(run.run_args({"INPUT": plain.id(), "LABELS": scene["labels"]}, context,
                                                    feedback, str(tmp_path)))
    assert parsed.nodata == [None]  # --nodata none
    from_file = {"INPUT": scene["image"], "LABELS": scene["labels"]}  # with no project to find it in
    args = run.run_args(from_file, QgsProcessingContext(), feedback, str(tmp_path))
    assert build_parser().parse_args(args).nodata is None


@pytest.mark.slow
def test_predict_an_area_writes_only_its_pixels(trained, scene, tmp_path):
    out = tmp_path / "area.tif"
    processing().run("semiseg:predict", {
        "MODEL": trained["model"], "INPUT": scene["image"], "DEVICE": "cpu", "OUTPUT": str(out),
        "AREA": "500020,500050,4999970,4999990 [EPSG:32633]"})
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (30, 20) and ds.bounds == (500020, 4999970, 500050, 4999990)


def test_the_encoder_cache_reaches_the_engine_for_the_methods_that_pretrain(semiseg_plugin, scene, tmp_path):  # noqa: ARG001
    alg = QgsApplication.processingRegistry().createAlgorithmById("semiseg:train_and_segment")
    cache = str(tmp_path / "scene.semienc")
    for method, name in enumerate(("supervised", "icnet", "inpaint", "inpaint+icnet")):
        feedback = RecordingFeedback()
        parameters = {"INPUT": scene["image"], "LABELS": scene["labels"], "METHOD": method,
                      "ENCODER_CACHE": cache}
        args = alg.training_args(parameters, QgsProcessingContext(), feedback)
        parsed = build_parser().parse_args(["run", *args, "--out-dir", str(tmp_path)])
        pretrains = name.startswith("inpaint")
        assert parsed.encoder_cache == (cache if pretrains else None), name
        assert any("left alone" in line for line in feedback.log) != pretrains, name
    unset = alg.training_args({"INPUT": scene["image"], "LABELS": scene["labels"], "METHOD": 2},
                              QgsProcessingContext(), QgsProcessingFeedback())
    assert "--encoder-cache" not in unset  # nothing is cached unless asked


@pytest.mark.slow
def test_train_and_segment_pretrains_once_into_the_encoder_cache(semiseg_plugin, scene, tmp_path):  # noqa: ARG001
    cache = tmp_path / "scene.semienc"
    parameters = {"INPUT": scene["image"], "LABELS": scene["labels"], **TINY_TRAINING, "METHOD": 2,
                  "PRETRAIN_STEPS": 4, "ENCODER_CACHE": str(cache)}
    first = RecordingFeedback()
    results = processing().run("semiseg:train_and_segment",
                               {**parameters, "OUTPUT_FOLDER": str(tmp_path / "a")}, feedback=first)
    assert results["ENCODER_CACHE"] == str(cache) and cache.stat().st_size > 0
    assert any(line.startswith("wrote encoder") for line in first.log)
    written = cache.stat().st_mtime_ns
    second = RecordingFeedback()
    processing().run("semiseg:train_and_segment", {**parameters, "OUTPUT_FOLDER": str(tmp_path / "b")},
                     feedback=second)
    assert cache.stat().st_mtime_ns == written  # reused, not pretrained again
    assert not any(line.startswith("wrote encoder") for line in second.log)
    assert not any(stage.startswith("pretrain") for stage in second.stages)
    assert any(stage.startswith("pretrain") for stage in first.stages)


def test_every_output_of_a_kind_is_styled_and_no_database_outputs_are_offered(semiseg_plugin, tmp_path,
                                                                               clean_project):
    """Each loaded output keeps its own styler alive until it has styled its layer (one per kind let a
    model's or a batch's earlier outputs load unstyled); the engine writes files only."""
    import gc

    from semiseg.ui.processing.styling import PREDICTION, StyleOnLoad, style_output

    from engine.categories import ClassTable, write_class_table

    context, feedback = QgsProcessingContext(), RecordingFeedback()
    context.setProject(clean_project)
    maps = []
    for name in ("first", "second"):  # two maps of one kind, as two Predict steps of a model make
        path = tmp_path / f"{name}.tif"
        with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="uint8") as ds:
            ds.write(np.array([[[1, 2], [3, 1]]], np.uint8))
        write_class_table(str(path), ClassTable.numbered(3))
        details = QgsProcessingContext.LayerDetails(name, clean_project, "OUT")
        context.addLayerToLoadOnCompletion(str(path), details)
        style_output(context, str(path), PREDICTION, feedback)
        maps.append(str(path))
    mine = StyleOnLoad._alive[-2:]
    gc.collect()
    for path in maps:
        layer = QgsRasterLayer(path, "map", "gdal")
        styler = context.layerToLoadOnCompletionDetails(path).postProcessor()
        styler.postProcessLayer(layer, context, feedback)
        assert layer.renderer().type() == "paletted", path
        del layer
    assert not any(styler in StyleOnLoad._alive for styler in mine)  # each let go once it had styled
    provider = QgsApplication.processingRegistry().providerById("semiseg")
    assert not provider.supportsNonFileBasedOutput()


def test_processing_refuses_unsaved_edits_and_speaks_of_its_parameters(semiseg_plugin, scene, tmp_path,
                                                                       clean_project):
    import shutil

    path = tmp_path / "strokes.gpkg"  # the bundled sample's scribbles, which have a `class` field
    sample = Path(__file__).resolve().parents[2] / "resources" / "sample"
    shutil.copy(sample / "landsat_rgb_labels.gpkg", path)
    strokes = QgsVectorLayer(str(path), "strokes", "ogr")
    clean_project.addMapLayer(strokes)
    strokes.startEditing()
    strokes.changeAttributeValue(next(strokes.getFeatures()).id(), strokes.fields().indexOf("class"),
                                 "forest")
    context = QgsProcessingContext()
    context.setProject(clean_project)
    alg = QgsApplication.processingRegistry().createAlgorithmById("semiseg:train")
    with pytest.raises(QgsProcessingException, match="strokes has unsaved edits"):
        alg.training_args({"INPUT": scene["image"], "LABELS": strokes.id()}, context, QgsProcessingFeedback())
    strokes.rollBack()
    alg._names["/tmp/processing_x/LABELS.gpkg"] = "layer strokes"
    said = alg.in_our_words("Labels /tmp/processing_x/LABELS.gpkg have no field 'nope' (fields: class); "
                            "pass the class field with --label-field. Or use --device cpu.")
    assert said == ("The labels in layer strokes have no field 'nope' (fields: class); pass the class field "
                    "with LABEL_FIELD. Or use DEVICE cpu.")


def test_help_and_outputs_say_what_each_algorithm_does(semiseg_plugin, tmp_path):
    registry = QgsApplication.processingRegistry()
    predict = registry.createAlgorithmById("semiseg:predict")
    run = registry.createAlgorithmById("semiseg:train_and_segment")
    assert "training" not in predict.parameterDefinition("AREA").description()
    assert "training still learns" in run.parameterDefinition("AREA").description()
    context, feedback = QgsProcessingContext(), RecordingFeedback()
    warm = {"INPUT": "i.tif", "LABELS": "l.tif", "METHOD": 2, "ENCODER_CACHE": str(tmp_path / "e.semienc"),
            "WARM_START": str(tmp_path / "last.semiseg")}
    assert run.cache_output(warm, context) == {"ENCODER_CACHE": None}  # not written: not named
    assess = registry.createAlgorithmById("semiseg:assess_accuracy")
    with pytest.raises(QgsProcessingException, match="TABLES .* must end in .csv"):
        assess.processAlgorithm({"PREDICTION": None, "REFERENCE": None, "OUTPUT": str(tmp_path / "r.json"),
                                 "TABLES": str(tmp_path / "t.json")}, context, feedback)


@pytest.mark.slow
def test_a_model_with_two_predict_steps_loads_every_output_styled(trained, scene, clean_project):
    """Two Predict steps in one model: each map and each confidence raster loads styled (with one styler
    kept per kind, the first step's outputs loaded with QGIS's default look)."""
    from qgis.core import QgsProcessingModelAlgorithm, QgsProcessingModelOutput, QgsProcessingModelParameter
    from qgis.core import QgsProcessingModelChildAlgorithm as Child
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    model = QgsProcessingModelAlgorithm("two maps", "tests")
    model.addModelParameter(QgsProcessingParameterRasterLayer("image", "Image"),
                            QgsProcessingModelParameter("image"))
    for step in ("first", "second"):
        child = Child("semiseg:predict")
        child.setChildId(step)
        child.addParameterSources("MODEL", [Source.fromStaticValue(str(trained["model"]))])
        child.addParameterSources("INPUT", [Source.fromModelParameter("image")])
        child.addParameterSources("SMOOTH", [Source.fromStaticValue(False)])
        outputs = {}
        for name, output in ((f"{step}_map", "OUTPUT"), (f"{step}_confidence", "CONFIDENCE")):
            outputs[name] = QgsProcessingModelOutput(name, name)
            outputs[name].setChildId(step)
            outputs[name].setChildOutputName(output)
        child.setModelOutputs(outputs)
        model.addChildAlgorithm(child)
    steps, kinds = ("first", "second"), ("map", "confidence")
    parameters = {"image": scene["image"],
                  **{f"{step}:{step}_{kind}": "TEMPORARY_OUTPUT" for step in steps for kind in kinds}}
    processing().runAndLoadResults(model, parameters)
    looks = sorted((layer.name(), layer.renderer().type()) for layer in clean_project.mapLayers().values())
    assert looks == [("first_confidence", "singlebandpseudocolor"), ("first_map", "paletted"),
                     ("second_confidence", "singlebandpseudocolor"), ("second_map", "paletted")]


def test_a_map_of_coded_classes_is_styled_with_its_codes_only(semiseg_plugin, tmp_path):  # noqa: ARG001
    """A map of classes coded 1, 5 and 200 (labels with codes) gets three legend entries, not 200."""
    from semiseg.ui.processing.styling import PREDICTION, class_entries, style

    from engine.categories import ClassTable, write_class_table

    path = tmp_path / "coded.tif"
    with rasterio.open(path, "w", driver="GTiff", width=3, height=1, count=1, dtype="uint8") as ds:
        ds.write(np.array([[[1, 5, 200]]], np.uint8))
    table = ClassTable(["water", "forest", "urban"], [(0, 0, 255), (0, 128, 0), (200, 0, 0)], [1, 5, 200])
    write_class_table(str(path), table)
    entries = class_entries(str(path))
    assert [(v, c.getRgb()[:3], n) for v, c, n in entries] == [
        (1, (0, 0, 255), "water"), (5, (0, 128, 0), "forest"), (200, (200, 0, 0), "urban")]
    layer = QgsRasterLayer(str(path), "coded", "gdal")
    assert style(layer, PREDICTION)
    assert [(c.value, c.label) for c in layer.renderer().classes()] == [(1, "water"), (5, "forest"),
                                                                       (200, "urban")]
