"""Label values that are codes (10, 20, 30; 1, 5, 200), not class numbers: the network learns one class
per code, not one per value up to the largest, and every map carries the codes again."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from engine_helpers import TINY_TRAIN, jsonl_events, run_cli, write_raster

from engine import modelfile
from engine.categories import read_category_names
from engine.labels import load_labels
from engine.synthetic import write_scene

CODES = {1: 1, 2: 5, 3: 200}  # the scene's class -> its code in the label file


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """The synthetic scene's scribbles, with their classes written as codes 1, 5 and 200."""
    folder = tmp_path_factory.mktemp("coded")
    scene = write_scene(str(folder), 96, 96, bands=3, classes=3, seed=2)
    with rasterio.open(scene["labels"]) as ds:
        labels, profile = ds.read(1), {"crs": ds.crs, "transform": ds.transform}
    codes = np.zeros(256, np.uint8)
    codes[list(CODES)] = list(CODES.values())
    return {**scene, "coded": write_raster(folder / "coded.tif", codes[labels], **profile),
            "plain": labels, "profile": profile, "folder": folder}


def test_codes_are_classes_and_the_map_keeps_them(coded, tmp_path, capsys):
    out = tmp_path / "run"
    rc, stdout, err = run_cli(capsys, ["run", "--image", coded["image"], "--labels", coded["coded"],
                                       "--out-dir", out, "--progress", "jsonl", *TINY_TRAIN])
    assert rc == 0, err
    assert not [e for e in jsonl_events(stdout) if e.get("code") == "class_without_labels"]
    model = modelfile.load(str(out / "model.semiseg"))
    assert model.config.model.num_classes == 3 and model.classes.codes == [1, 5, 200]
    assert model.classes.names == ["class 1", "class 5", "class 200"]
    with rasterio.open(out / "prediction.tif") as ds:
        values = set(np.unique(ds.read(1)).tolist())
        colours = ds.colormap(1)
    assert values <= {1, 5, 200} and len(values) >= 2
    names = read_category_names(str(out / "prediction.tif"))
    assert (names[1], names[5], names[200]) == ("class 1", "class 5", "class 200") and names[2] == ""
    assert colours[200][:3] == tuple(model.classes.colours[2])
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["labeled_pixels"]) == ["class 1", "class 5", "class 200"]
    assert set(metrics["class_areas"]["classes"]) <= {"class 1", "class 5", "class 200"}
    # the written map (codes) is scored against the held-out strokes (classes) through the codes
    with rasterio.open(out / "prediction.tif") as ds:
        right = total = 0
        for crop in model.validation.crops:
            h, w = crop.array.shape
            mapped = ds.read(1, window=((crop.row, crop.row + h), (crop.col, crop.col + w)))
            held = crop.array > 0
            right += int(np.sum(model.classes.from_values()[mapped][held] == crop.array[held]))
            total += int(held.sum())
    assert metrics["map_val_pixels"] == total > 0
    assert metrics["map_val_oa"] == pytest.approx(right / total) and right > 0
    # evaluate scores the codes as three classes, not a matrix of every value up to 200
    rc, stdout, err = run_cli(capsys, ["evaluate", "--prediction", out / "prediction.tif", "--truth",
                                       coded["coded"]])
    assert rc == 0, err
    scored = json.loads(stdout)
    assert scored["class_values"] == [1, 5, 200] and len(scored["confusion"]) == 3
    assert list(scored["per_class_iou"]) == ["class 1", "class 5", "class 200"]


def test_a_map_held_to_coded_labels_and_a_code_the_model_lacks(coded, tmp_path, capsys):
    model = tmp_path / "m.semiseg"
    rc, _, err = run_cli(capsys, ["train", "--image", coded["image"], "--labels", coded["coded"],
                                  "--out", model, *TINY_TRAIN, "--progress", "none"])
    assert rc == 0, err
    out = tmp_path / "held.tif"
    rc, _, err = run_cli(capsys, ["predict", "--model", model, "--image", coded["image"], "--out", out,
                                  "--labels", coded["coded"], "--device", "cpu", "--progress", "none"])
    assert rc == 0, err
    with rasterio.open(out) as ds, rasterio.open(coded["coded"]) as lab:
        held, labels = ds.read(1), lab.read(1)
    assert np.array_equal(held[labels > 0], labels[labels > 0])  # each labeled pixel keeps its code
    other = labels.copy()
    other[other == 200] = 7  # a code the model has no class for
    stray = write_raster(tmp_path / "stray.tif", other, **coded["profile"])
    rc, _, err = run_cli(capsys, ["predict", "--model", model, "--image", coded["image"], "--out",
                                  tmp_path / "no.tif", "--labels", stray, "--device", "cpu",
                                  "--progress", "none"])
    assert rc == 2 and "[7]" in err and "1, 5, 200" in err and "Traceback" not in err, err
    assert not (tmp_path / "no.tif").exists()


def test_a_warm_start_keeps_its_held_out_strokes_when_a_new_code_shifts_the_classes(coded, tmp_path, capsys):
    first = tmp_path / "first"
    rc, _, err = run_cli(capsys, ["run", "--image", coded["image"], "--labels", coded["coded"],
                                  "--out-dir", first, *TINY_TRAIN, "--progress", "none"])
    assert rc == 0, err
    earlier = modelfile.load(str(first / "model.semiseg"))
    more = coded["plain"].copy()
    codes = np.array([0, 1, 5, 200], np.uint8)[more]
    codes[2:6, 2:30] = 9  # a new class, coded 9, between 5 and 200: class 200 becomes the 4th class
    grown = write_raster(tmp_path / "grown.tif", codes, **coded["profile"])
    second = tmp_path / "second"
    rc, stdout, err = run_cli(capsys, ["run", "--image", coded["image"], "--labels", grown,
                                       "--out-dir", second, "--warm-start", first / "model.semiseg",
                                       *TINY_TRAIN, "--progress", "jsonl"])
    assert rc == 0, err
    assert [e for e in jsonl_events(stdout) if e.get("code") == "warm_start_classes"]
    model = modelfile.load(str(second / "model.semiseg"))
    assert model.classes.codes == [1, 5, 9, 200]
    # the strokes held out before are held out again, as the same classes (200: the 3rd class, now the 4th)
    before = {(c.row, c.col): c.array for c in earlier.validation.crops}
    after = {(c.row, c.col): c.array for c in model.validation.crops}
    assert before and set(before) <= set(after)
    for place, was in before.items():
        now = after[place]
        assert np.array_equal(np.array([0, 1, 2, 4], np.uint8)[was], now)


def test_a_few_gaps_are_classes_not_painted_yet(coded, tmp_path):
    """1, 2 and 4 leave one gap: class 3 exists (the map warns it has no labeled pixel), values unchanged."""
    few = np.array([0, 1, 2, 4], np.uint8)[coded["plain"]]
    path = write_raster(tmp_path / "few.tif", few, **coded["profile"])
    with rasterio.open(coded["image"]) as img:
        lab = load_labels(str(path), img)
    assert lab.num_classes == 4 and lab.classes.values is None
    assert set(np.unique(lab.full())) == {0, 1, 2, 4}


def test_sample_and_assess_of_a_coded_map_speak_in_its_codes(coded, tmp_path, capsys):
    """A sample of a map of codes 1, 5 and 200, checked against the truth's codes, and the truth raster of
    codes as a reference: three classes in the report (not 200), and each unit compared code to code."""
    from osgeo import ogr

    out = tmp_path / "run"
    assert run_cli(capsys, ["run", "--image", coded["image"], "--labels", coded["coded"], "--out-dir", out,
                            *TINY_TRAIN, "--progress", "none"])[0] == 0
    prediction = out / "prediction.tif"
    with rasterio.open(coded["truth"]) as ds, rasterio.open(prediction) as pred:
        truth = np.array([0, *CODES.values()], np.uint8)[ds.read(1)]
        mapped, transform = pred.read(1), pred.transform
    sample = tmp_path / "sample.gpkg"
    rc, _, err = run_cli(capsys, ["sample", "--prediction", prediction, "--out", sample, "--per-class", "10"])
    assert rc == 0, err
    vec = ogr.Open(str(sample), 1)
    layer = vec.GetLayer(0)
    agree = total = 0
    for f in layer:
        col, row = ~transform * f.GetGeometryRef().GetPoint_2D()
        value = int(truth[int(row), int(col)])
        assert f["map_class"] in CODES.values()
        f.SetField("reference", value)
        layer.SetFeature(f)
        agree, total = agree + (value == f["map_class"]), total + 1
    vec = layer = None
    report = tmp_path / "report.json"
    rc, _, err = run_cli(capsys, ["assess", "--prediction", prediction, "--reference", sample,
                                  "--out", report])
    assert rc == 0, err
    result = json.loads(report.read_text())
    assert list(result["classes"]) == ["class 1", "class 5", "class 200"]
    assert result["class_values"] == [1, 5, 200] and len(result["confusion_map_by_reference"]) == 3
    assert result["units"] == total and np.trace(np.array(result["confusion_map_by_reference"])) == agree
    coded_truth = write_raster(tmp_path / "truth_codes.tif", truth, **coded["profile"])
    rc, _, err = run_cli(capsys, ["assess", "--prediction", prediction, "--reference", coded_truth,
                                  "--out", report])
    assert rc == 0, err
    result = json.loads(report.read_text())
    scored = truth > 0
    raw = float(np.mean(mapped[scored] == truth[scored]))  # every pixel, each class's share as in the map
    confusion = np.array(result["confusion_map_by_reference"])
    assert confusion.shape == (3, 3) and result["units"] == int(scored.sum())
    assert np.trace(confusion) / confusion.sum() == pytest.approx(raw)


def test_many_empty_classes_point_at_a_background_value(coded, tmp_path, capsys):
    """Values 1-6 and 13 are class numbers (six gaps, seven values: not codes), so classes 7-12 are empty;
    their one warning names the value holding most labeled pixels as the file's likely background."""
    labels = coded["plain"].copy()
    labels[:4, :4] = 4
    labels[-4:, :4] = 5
    labels[:4, -4:] = 6
    labels[40:90, 40:90] = 13
    path = write_raster(tmp_path / "background.tif", labels, **coded["profile"])
    rc, stdout, err = run_cli(capsys, ["run", "--image", coded["image"], "--labels", path, "--out-dir",
                                       tmp_path / "run", "--progress", "jsonl", *TINY_TRAIN])
    assert rc == 0, err
    [warning] = [e["message"] for e in jsonl_events(stdout) if e.get("code") == "class_without_labels"]
    assert warning.startswith("6 classes have no usable labeled pixel ('class 7', ")
    held, total = int((labels == 13).sum()), int((labels > 0).sum())
    assert f"class 13 ('class 13') holds {held} of the {total}" in warning
    assert "make it 0 or the file's nodata" in warning
