"""``--warm-start MODEL``: training continues from a model of the image (the analyst's last run) with its
weights, normalisation and network, for half the preset's steps by default."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
import torch
from engine_helpers import TINY_TRAIN, jsonl_events, leftovers, run_cli, write_raster

from engine import modelfile
from engine.cli import _config, build_parser


def _params(model_path) -> list[dict]:
    """Each member's parameters (batch-norm running statistics left out: they move in any forward)."""
    model = modelfile.load(str(model_path))
    out = []
    for sd in model.members:
        out.append({k: v for k, v in sd.items() if "running_" not in k and "num_batches" not in k})
    return out


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
                                   for x, y in zip(a, b, strict=True))


def _run(capsys, learned, out, *extra):
    return run_cli(capsys, ["run", "--image", learned["image"], "--labels", learned["labels"],
                            "--out-dir", out, "--progress", "jsonl", *TINY_TRAIN, *extra])


def test_training_starts_from_the_models_weights(capsys, learned, tmp_path):
    """With a learning rate of 0 nothing moves: a warm start keeps the source model's weights exactly,
    while a fresh start keeps random ones."""
    rc, stdout, err = _run(capsys, learned, tmp_path / "warm", "--lr", "0", "--warm-start", learned["model"])
    assert rc == 0, err
    assert _same(_params(tmp_path / "warm" / "model.semiseg"), _params(learned["model"]))
    stages = [e for e in jsonl_events(stdout) if e["event"] == "stage" and e["stage"] == "warm-start"]
    assert len(stages) == 1 and "model.semiseg" in stages[0]["message"]
    metrics = json.loads((tmp_path / "warm" / "metrics.json").read_text())
    assert metrics["warm_start"]["model"] == "model.semiseg" and metrics["steps"] == 3
    # its normalisation too: the source model's band statistics, not the image's recomputed ones
    warm = modelfile.load(str(tmp_path / "warm" / "model.semiseg"))
    source = modelfile.load(str(learned["model"]))
    assert np.array_equal(warm.band_stats.low, source.band_stats.low)
    rc, _, err = _run(capsys, learned, tmp_path / "fresh", "--lr", "0")
    assert rc == 0, err
    assert not _same(_params(tmp_path / "fresh" / "model.semiseg"), _params(learned["model"]))


def test_icnet_students_start_from_both_teachers(capsys, learned, tmp_path):
    rc, _, err = _run(capsys, learned, tmp_path / "first", "--method", "icnet")
    assert rc == 0, err
    first = tmp_path / "first" / "model.semiseg"
    assert len(_params(first)) == 2 and not _same(_params(first)[:1], _params(first)[1:])
    rc, _, err = _run(capsys, learned, tmp_path / "again", "--method", "icnet", "--lr", "0",
                      "--warm-start", first)
    assert rc == 0, err
    assert _same(_params(tmp_path / "again" / "model.semiseg"), _params(first))


def test_a_new_class_restarts_only_the_classifier(capsys, learned, tmp_path):
    with rasterio.open(learned["labels"]) as ds:
        labels, profile = ds.read(1), ds.profile
    labels[:6, :6] = labels.max() + 1  # the analyst added a class
    more = write_raster(tmp_path / "more.tif", labels, crs=profile["crs"], transform=profile["transform"])
    rc, stdout, err = run_cli(capsys, ["run", "--image", learned["image"], "--labels", more,
                                       "--out-dir", tmp_path / "out", "--warm-start", learned["model"],
                                       "--progress", "jsonl", *TINY_TRAIN])
    assert rc == 0, err
    codes = [e["code"] for e in jsonl_events(stdout) if e["event"] == "warning"]
    assert "warm_start_classes" in codes
    warm, source = _params(tmp_path / "out" / "model.semiseg")[0], _params(learned["model"])[0]
    fresh = [k for k in warm if warm[k].shape != source[k].shape]
    assert fresh and all(k.startswith("head") for k in fresh)


@pytest.mark.parametrize("extra, code, words", [
    (["--method", "icnet"], "warm_start_method", "--method supervised"),
    (["--init", "enc.semienc"], "bad_usage", "not both"),
    # the learned model is a U-Net without a band mixer: another network is refused, not ignored
    (["--arch", "resnet18"], "warm_start_network", "--arch unet"),
    (["--spectral-stem", "8"], "warm_start_network", "drop --spectral-stem 8"),
])
def test_a_warm_start_that_cannot_work_is_refused(capsys, learned, tmp_path, extra, code, words):
    out = tmp_path / "out"
    rc, stdout, _ = _run(capsys, learned, out, "--warm-start", learned["model"], *extra)
    assert rc == 2
    errors = [e for e in jsonl_events(stdout) if e["event"] == "error"]
    assert [e["code"] for e in errors] == [code] and words in errors[0]["message"]
    assert leftovers(out) == []  # nothing written


def test_a_warm_start_may_name_the_models_own_network(capsys, learned, tmp_path):
    rc, _, err = _run(capsys, learned, tmp_path / "out", "--warm-start", learned["model"], "--arch", "unet",
                      "--spectral-stem", "0")
    assert rc == 0, err
    assert modelfile.load(str(tmp_path / "out" / "model.semiseg")).config.model.arch == "unet"


def test_a_model_of_other_bands_is_refused(capsys, learned, tmp_path):
    from engine.synthetic import write_scene

    three = write_scene(str(tmp_path), 48, 48, bands=3, classes=3, seed=4)
    rc, stdout, _ = run_cli(capsys, ["run", "--image", three["image"], "--labels", three["labels"],
                                     "--out-dir", tmp_path / "out", "--warm-start", learned["model"],
                                     "--progress", "jsonl", *TINY_TRAIN])
    assert rc == 2
    error = next(e for e in jsonl_events(stdout) if e["event"] == "error")
    assert error["code"] == "band_mismatch" and "4 band(s)" in error["message"]
    assert leftovers(tmp_path / "out") == []


def test_a_warm_start_trains_half_the_presets_steps():
    def steps(*extra):
        a = build_parser().parse_args(["train", "--image", "i.tif", "--labels", "l.tif", "--preset", "fast",
                                       *extra])
        return _config(a).steps

    assert steps() == 400 and steps("--warm-start", "m.semiseg") == 200
    assert steps("--warm-start", "m.semiseg", "--steps", "7") == 7


def test_a_warm_start_validates_on_what_the_model_held_out(capsys, learned, tmp_path):
    """The model file keeps its held-out pixels; continuing from it validates on them again (it never
    learnt from them), and every stroke painted since trains."""
    source = modelfile.load(str(learned["model"]))
    assert source.validation is not None and source.validation.count > 0
    with rasterio.open(learned["labels"]) as ds:
        labels, profile = ds.read(1), ds.profile
    held = source.validation.window(0, 0, *labels.shape)
    assert np.array_equal(labels[held > 0], held[held > 0])  # held-out pixels are painted pixels
    labels[-5:, -20:] = 1  # a new stroke
    more = write_raster(tmp_path / "more.tif", labels, crs=profile["crs"], transform=profile["transform"])
    rc, _, err = run_cli(capsys, ["run", "--image", learned["image"], "--labels", more, "--out-dir",
                                  tmp_path / "out", "--warm-start", learned["model"], "--progress", "none",
                                  *TINY_TRAIN])
    assert rc == 0, err
    warm = modelfile.load(str(tmp_path / "out" / "model.semiseg"))
    assert np.array_equal(warm.validation.window(0, 0, *labels.shape), held)
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["map_val_pixels"] == int((held > 0).sum())  # scored on exactly those (all valid)


def test_keep_validation_drops_repainted_pixels_and_trains_the_rest():
    from engine.data import keep_validation
    from engine.labels import LabelPatches

    labels = np.zeros((40, 40), np.uint8)
    labels[2:6, 2:30] = 1
    labels[20:24, 5:35] = 2
    held = np.zeros_like(labels)
    held[20:24, 5:15] = 2  # held out before
    labels[20:22, 5:15] = 1  # since repainted as class 1 in part: no longer a validation pixel
    train, val = keep_validation(LabelPatches.from_array(labels), LabelPatches.from_array(held))
    val, train = val.window(0, 0, 40, 40), train.window(0, 0, 40, 40)
    assert (val[22:24, 5:15] == 2).all() and val.sum() == 2 * 2 * 10
    assert not (train & val).any() and np.array_equal(np.where(val > 0, val, train), labels)
    assert keep_validation(LabelPatches.from_array(labels), None)[1] is None


def test_renamed_classes_restart_the_classifier(capsys, learned, tmp_path):
    """Same number of classes, other meaning (a class removed and another added): the classifier of the
    model to continue from would name the wrong classes, so it starts afresh; the rest is kept."""
    from engine.categories import ClassTable, write_class_table

    with rasterio.open(learned["labels"]) as ds:
        labels, profile = ds.read(1), ds.profile
    renamed = write_raster(tmp_path / "renamed.tif", labels, crs=profile["crs"],
                           transform=profile["transform"])
    table = ClassTable.numbered(int(labels.max()))
    table.names[-1] = "orchard"
    write_class_table(str(renamed), table)
    rc, stdout, err = _run(capsys, learned, tmp_path / "out", "--lr", "0", "--warm-start", learned["model"])
    assert rc == 0, err
    codes = [e["code"] for e in jsonl_events(stdout) if e["event"] == "warning"]
    assert "warm_start_classes" not in codes  # the same classes: the classifier is kept
    rc, stdout, err = run_cli(capsys, ["run", "--image", learned["image"], "--labels", renamed, "--out-dir",
                                       tmp_path / "out2", "--warm-start", learned["model"], "--lr", "0",
                                       "--progress", "jsonl", *TINY_TRAIN])
    assert rc == 0, err
    assert any(e["event"] == "warning" and e["code"] == "warm_start_classes" for e in jsonl_events(stdout))
    warm, source = _params(tmp_path / "out2" / "model.semiseg")[0], _params(learned["model"])[0]
    assert not torch.equal(warm["head.weight"], source["head.weight"])
    assert all(torch.equal(warm[k], source[k]) for k in source if not k.startswith("head."))


def test_a_warm_start_from_imagery_unlike_this_image_is_warned_about(capsys, learned, tmp_path):
    """The model to continue from normalises with its own image's band ranges: on an image scaled
    otherwise (reflectance 0-1 instead of 0-10000) training still runs, with a values_differ warning."""
    with rasterio.open(learned["image"]) as ds:
        data, profile = ds.read().astype(np.float32) / 10000, ds.profile
    profile.update(dtype="float32", nodata=None)
    scaled = tmp_path / "scaled.tif"
    with rasterio.open(scaled, "w", **profile) as ds:
        ds.write(data)
    for image, warned in ((learned["image"], False), (scaled, True)):
        rc, stdout, err = run_cli(capsys, ["run", "--image", image, "--labels", learned["labels"],
                                           "--out-dir", tmp_path / f"out_{warned}", "--progress", "jsonl",
                                           "--warm-start", learned["model"], *TINY_TRAIN])
        assert rc == 0, err
        codes = [e.get("code") for e in jsonl_events(stdout) if e["event"] == "warning"]
        assert ("values_differ" in codes) == warned, codes
