"""Bad input: a non-zero exit, one plain sentence naming the file on stderr, and nothing left behind.

Each case is a real file a user could hand the engine. Most run the CLI in-process (fast); the ones
where the real process matters (stray GDAL/torch messages on stderr, code running at load) also run
``python -m engine`` as a child process.
"""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from engine_helpers import TINY_TRAIN, leftovers, run_cli, run_engine, write_raster
from rasterio.transform import from_origin

from engine.categories import ClassTable, write_class_table
from engine.synthetic import write_scene


def assert_one_sentence(rc: int, err: str, offending) -> str:
    """Exit non-zero; stderr is exactly one sentence, naming ``offending``, with no traceback."""
    assert rc != 0
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    line = lines[0]
    assert str(offending) in line, line
    assert line.rstrip().endswith("."), line
    return line


@pytest.fixture
def scene(tmp_path):
    """A small 4-band scene in tmp_path/in; outputs go to tmp_path/out (must stay empty on error)."""
    folder = tmp_path / "in"
    folder.mkdir()
    paths = write_scene(str(folder), 64, 64, bands=4, classes=3, seed=11)
    return {k: Path(v) for k, v in paths.items()} | {"out": tmp_path / "out"}


def run_fails(capsys, scene, image=None, labels=None, extra=()):
    """``engine run`` with --progress none; returns (exit code, stderr)."""
    rc, _, err = run_cli(capsys, ["run", "--image", image or scene["image"],
                                  "--labels", labels or scene["labels"], "--out-dir", scene["out"],
                                  "--progress", "none", *TINY_TRAIN, *extra])
    return rc, err


def test_image_that_is_not_a_raster(capsys, scene):
    fake = scene["image"].parent / "notes.tif"
    fake.write_text("this is a text file, not a GeoTIFF\n")
    rc, err = run_fails(capsys, scene, image=fake)
    assert_one_sentence(rc, err, fake)
    assert leftovers(scene["out"]) == []


def test_image_that_is_not_a_raster_real_process(scene):
    """Same, as a child process: GDAL must not add its own lines to stderr."""
    fake = scene["image"].parent / "notes.tif"
    fake.write_text("this is a text file, not a GeoTIFF\n")
    proc = run_engine(["run", "--image", fake, "--labels", scene["labels"], "--out-dir", scene["out"],
                       *TINY_TRAIN, "--progress", "none"])
    assert proc.returncode == 2
    assert_one_sentence(proc.returncode, proc.stderr, fake)
    assert proc.stdout == ""
    assert leftovers(scene["out"]) == []


def test_labels_file_missing(capsys, scene):
    missing = scene["image"].parent / "labels_not_painted_yet.tif"
    rc, err = run_fails(capsys, scene, labels=missing)
    assert_one_sentence(rc, err, missing)
    assert leftovers(scene["out"]) == []


def test_labels_outside_the_image(capsys, scene):
    with rasterio.open(scene["labels"]) as ds:
        labels, crs = ds.read(1), ds.crs
    far = write_raster(scene["image"].parent / "far_labels.tif", labels, crs=crs,
                       transform=from_origin(800000.0, 1000000.0, 1.0, 1.0))
    rc, err = run_fails(capsys, scene, labels=far)
    line = assert_one_sentence(rc, err, far)
    assert "outside" in line
    assert leftovers(scene["out"]) == []


def test_labels_with_no_labeled_pixel(capsys, scene):
    empty = write_raster(scene["image"].parent / "empty.tif", np.zeros((64, 64), np.uint8))
    rc, err = run_fails(capsys, scene, labels=empty)
    assert_one_sentence(rc, err, empty)
    assert leftovers(scene["out"]) == []


def test_labels_with_a_single_class(capsys, scene):
    arr = np.zeros((64, 64), np.uint8)
    arr[10:20, 10:40] = 2
    single = write_raster(scene["image"].parent / "single.tif", arr)
    rc, err = run_fails(capsys, scene, labels=single)
    line = assert_one_sentence(rc, err, single)
    assert "one class" in line
    assert leftovers(scene["out"]) == []


def test_label_values_without_a_class(capsys, scene):
    arr = np.zeros((64, 64), np.uint8)
    arr[5:10, 5:30] = 1
    arr[20:25, 5:30] = 2
    arr[40:45, 5:30] = 5  # the class table below names classes 1..2 only
    path = write_raster(scene["image"].parent / "unknown_class.tif", arr)
    write_class_table(str(path), ClassTable(["water", "forest"], [(0, 0, 255), (0, 128, 0)]))
    rc, err = run_fails(capsys, scene, labels=path)
    line = assert_one_sentence(rc, err, path)
    assert "5" in line
    assert leftovers(scene["out"]) == []


def test_output_folder_not_writable(capsys, scene, tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("a regular file where a folder is expected\n")
    out = blocker / "out"
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out-dir", out, "--progress", "none", *TINY_TRAIN])
    assert_one_sentence(rc, err, out)
    rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out-dir", blocker, "--progress", "none", *TINY_TRAIN])
    assert "is a file" in assert_one_sentence(rc, err, blocker)
    assert blocker.read_text() == "a regular file where a folder is expected\n"
    assert not any(p.suffix in (".semiseg", ".tif", ".json") for p in tmp_path.iterdir())


def test_train_output_not_writable(capsys, scene, tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("x")
    out = blocker / "model.semiseg"
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", scene["labels"],
                                  "--out", out, "--progress", "none", *TINY_TRAIN])
    assert_one_sentence(rc, err, blocker)


# --- predict: model/image problems -------------------------------------------------------------


def predict_fails(capsys, model, image, out_dir):
    rc, _, err = run_cli(capsys, ["predict", "--model", model, "--image", image,
                                  "--out", out_dir / "pred.tif", "--confidence", out_dir / "conf.tif",
                                  "--device", "cpu", "--progress", "none"])
    return rc, err


def test_predict_band_count_mismatch(capsys, learned, tmp_path):
    three = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=1)["image"]
    out = tmp_path / "out"
    rc, err = predict_fails(capsys, learned["model"], three, out)
    line = assert_one_sentence(rc, err, three)
    assert "3 band" in line and "4" in line
    assert leftovers(out) == []


def test_predict_output_folder_not_writable(capsys, learned, tmp_path):
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("x")
    rc, err = predict_fails(capsys, learned["model"], learned["image"], blocker / "out")
    assert_one_sentence(rc, err, blocker)


@pytest.mark.parametrize("damage", ["random", "empty", "truncated", "text", "stack_underflow"])
def test_corrupt_model_file(capsys, request, scene, damage):
    bad = scene["image"].parent / "model.semiseg"
    if damage == "random":
        bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    elif damage == "empty":
        bad.write_bytes(b"")
    elif damage == "truncated":
        data = request.getfixturevalue("learned")["model"].read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif damage == "stack_underflow":
        bad.write_bytes(b"R")  # one byte: a pickle REDUCE with nothing on the stack
    else:
        bad.write_text("model = 'definitely a model'\n")
    rc, err = predict_fails(capsys, bad, scene["image"], scene["out"])
    assert_one_sentence(rc, err, bad)
    assert leftovers(scene["out"]) == []


class _MakesMarker:
    """Unpickling this calls ``open(marker, 'w')``: a stand-in for arbitrary code in a model file."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _foreign_model(path: Path, marker: Path) -> Path:
    torch.save({"format": "semiseg-model", "format_version": 1, "weights": torch.zeros(3),
                "payload": _MakesMarker(marker)}, path)
    return path


def test_foreign_model_with_code_is_refused_without_running_it(capsys, scene, tmp_path):
    marker = tmp_path / "code_ran.txt"
    evil = _foreign_model(scene["image"].parent / "colleague.semiseg", marker)

    # Control: the payload is live — an unsafe load really would run it.
    control_marker = tmp_path / "control_ran.txt"
    control = _foreign_model(tmp_path / "control.pt", control_marker)
    torch.load(control, weights_only=False)
    assert control_marker.exists()

    rc, err = predict_fails(capsys, evil, scene["image"], scene["out"])
    assert_one_sentence(rc, err, evil)
    assert not marker.exists(), "loading the model file ran code from it"
    assert leftovers(scene["out"]) == []

    rc, out, err = run_cli(capsys, ["info", "--model", evil])
    assert_one_sentence(rc, err, evil)
    assert not marker.exists()


def test_foreign_model_refused_in_a_real_process(scene, tmp_path):
    marker = tmp_path / "code_ran.txt"
    evil = _foreign_model(scene["image"].parent / "colleague.semiseg", marker)
    proc = run_engine(["predict", "--model", evil, "--image", scene["image"], "--out",
                       scene["out"] / "pred.tif", "--device", "cpu", "--progress", "none"])
    assert_one_sentence(proc.returncode, proc.stderr, evil)
    assert not marker.exists()
    assert leftovers(scene["out"]) == []


def test_plain_pickle_as_model_real_process(scene):
    """A Python pickle (say a scikit-learn model) handed over as a model: refused in one sentence,
    without torch's own warnings about the pickle protocol on stderr."""
    other = scene["image"].parent / "classifier.pkl"
    with open(other, "wb") as f:
        pickle.dump({"coef": [0.5, -1.0], "classes": ["water", "land"]}, f)  # default protocol
    proc = run_engine(["predict", "--model", other, "--image", scene["image"],
                       "--out", scene["out"] / "p.tif",
                       "--device", "cpu", "--progress", "none"])
    assert_one_sentence(proc.returncode, proc.stderr, other)
    assert leftovers(scene["out"]) == []


def test_labels_without_georeferencing_real_process(scene):
    """Labels saved as a plain image (no CRS, no transform): one sentence, no library warnings."""
    arr = np.zeros((64, 64), np.uint8)
    arr[5:10, 5:30] = 1
    arr[30:35, 5:30] = 2
    plain = scene["image"].parent / "plain_labels.tif"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(plain, "w", driver="GTiff", height=64, width=64, count=1, dtype="uint8") as ds:
            ds.write(arr, 1)
    proc = run_engine(["run", "--image", scene["image"], "--labels", plain, "--out-dir", scene["out"],
                       "--progress", "none", *TINY_TRAIN])
    assert_one_sentence(proc.returncode, proc.stderr, plain)
    assert leftovers(scene["out"]) == []


def test_foreign_torch_file_without_code(capsys, scene):
    """A plain PyTorch checkpoint (safe to load, but not a SemiSeg model)."""
    other = scene["image"].parent / "resnet.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(4, 3, 3, 3)}, "epoch": 3}, other)
    rc, err = predict_fails(capsys, other, scene["image"], scene["out"])
    assert_one_sentence(rc, err, other)
    assert leftovers(scene["out"]) == []


def test_model_file_that_does_not_exist(capsys, scene):
    missing = scene["image"].parent / "nowhere.semiseg"
    rc, err = predict_fails(capsys, missing, scene["image"], scene["out"])
    assert_one_sentence(rc, err, missing)
    assert leftovers(scene["out"]) == []


def test_failed_predict_keeps_an_existing_output(capsys, learned, tmp_path):
    """An error must not destroy the previous good prediction at the same path."""
    out = tmp_path / "out"
    out.mkdir()
    pred = out / "pred.tif"
    shutil.copy(learned["prediction"], pred)
    before = pred.read_bytes()
    three = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=1)["image"]
    rc, _, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", three, "--out", pred,
                                  "--device", "cpu", "--progress", "none"])
    assert rc != 0
    assert pred.read_bytes() == before
    assert sorted(os.listdir(out)) == ["pred.tif"]


def test_an_output_that_is_an_input_is_refused(capsys, scene, tmp_path):
    """``--out`` naming the image (another spelling of it, or a link to it), the labels or the model is
    refused before any work, and the input is left as it was."""
    image, labels = scene["image"], scene["labels"]
    before = image.read_bytes(), labels.read_bytes()
    link = tmp_path / "link.tif"
    link.symlink_to(image)
    model = tmp_path / "m.semiseg"
    rc, _, err = run_cli(capsys, ["train", "--image", image, "--labels", labels, "--out", model,
                                  "--progress", "none", *TINY_TRAIN])
    assert rc == 0, err
    relative = os.path.relpath(image)
    for out, conf in ((image, None), (relative, None), (link, None), (tmp_path / "p.tif", labels),
                      (model, None), (tmp_path / "p.tif", tmp_path / "p.tif")):
        args = ["predict", "--model", model, "--image", image, "--labels", labels, "--out", out,
                "--device", "cpu", "--progress", "none"] + (["--confidence", conf] if conf else [])
        rc, _, err = run_cli(capsys, args)
        line = assert_one_sentence(rc, err, conf or out)
        assert "overwritten" in line or "twice" in line, line
    rc, _, err = run_cli(capsys, ["train", "--image", image, "--labels", labels, "--out", labels,
                                  "--progress", "none", *TINY_TRAIN])
    assert_one_sentence(rc, err, labels)
    rc, _, err = run_cli(capsys, ["train", "--image", image, "--labels", labels, "--out",
                                  tmp_path / "i.semiseg", "--method", "inpaint", "--encoder-cache", image,
                                  "--progress", "none",
                                  *TINY_TRAIN])  # a cache it could not read would be pretrained over it
    assert_one_sentence(rc, err, image)
    scene["out"].mkdir()
    inside = shutil.copy(image, scene["out"] / "prediction.tif")  # run would write its map there
    rc, err = run_fails(capsys, scene, image=inside)
    assert_one_sentence(rc, err, inside)
    assert Path(inside).read_bytes() == before[0] and leftovers(scene["out"]) == ["prediction.tif"]
    assert (image.read_bytes(), labels.read_bytes()) == before
    assert not (tmp_path / "p.tif").exists() and model.exists()


def test_cancel_while_predicting_keeps_the_model_and_says_so(scene):
    """SIGTERM once ``run`` is predicting: the trained model is complete and stays, no map is left, and
    the message says exactly that (not "no output was written")."""
    from engine.config import make_config
    from engine.errors import Cancelled
    from engine.pipeline import run
    from engine.progress import Reporter
    from engine.runtime import CancelToken

    cancel = CancelToken()

    class CancelAtPredict(Reporter):
        def stage(self, name, total_steps=None, **fields):
            if name == "predict":
                cancel.cancelled = True  # what the signal handler does
            super().stage(name, total_steps, **fields)

    cfg = make_config("fast", seed=0, steps=3, tile_size=32, batch_size=2)
    with pytest.raises(Cancelled) as e:
        run(str(scene["image"]), str(scene["labels"]), str(scene["out"]), cfg, torch.device("cpu"),
            CancelAtPredict("none"), cancel=cancel)
    assert "model is kept in" in e.value.message and "no map was written" in e.value.message
    assert leftovers(scene["out"]) == ["model.semiseg"]


def test_missing_unlabeled_raster_with_an_encoder_cache(capsys, scene, tmp_path):
    """--unlabeled naming no file, with an encoder cache (whose key reads every raster first): the same one
    sentence as without a cache, no traceback, nothing written."""
    missing = tmp_path / "nope.tif"
    rc, _, err = run_cli(capsys, ["train", "--image", scene["image"], "--labels", scene["labels"], "--out",
                                  scene["out"] / "m.semiseg", "--method", "inpaint", "--unlabeled", missing,
                                  "--encoder-cache", scene["out"] / "c.semienc", "--progress", "none",
                                  *TINY_TRAIN])
    sentence = assert_one_sentence(rc, err, missing)
    assert "does not exist" in sentence and f"Unlabeled image {missing}" in sentence, sentence
    assert leftovers(scene["out"]) == []


def test_the_training_image_or_a_repeat_given_as_unlabeled_is_used_once(capsys, scene, tmp_path):
    """--unlabeled naming the training image (by another spelling of its path) or one raster twice: a
    warning for each, and the run goes on with each raster once."""
    from engine_helpers import jsonl_events

    (tmp_path / "other").mkdir()
    other = write_scene(str(tmp_path / "other"), 64, 64, bands=4, classes=3, seed=7)["image"]
    image = Path(scene["image"])
    alias = image.parent / "." / image.name
    rc, stdout, err = run_cli(capsys, ["train", "--image", image, "--labels", scene["labels"], "--out",
                                       scene["out"] / "m.semiseg", "--unlabeled", alias, other, other,
                                       "--progress", "jsonl", *TINY_TRAIN])
    assert rc == 0, err
    warned = [e["message"] for e in jsonl_events(stdout)
              if e["event"] == "warning" and e["code"] == "unlabeled_repeated"]
    assert len(warned) == 2
    assert "is the training image" in warned[0] and str(alias) in warned[0]
    assert "named twice" in warned[1] and str(other) in warned[1]


def test_evaluate_names_a_missing_prediction_as_the_prediction(tmp_path, scene, capsys):
    missing = tmp_path / "no_map.tif"
    rc, _, err = run_cli(capsys, ["evaluate", "--prediction", missing, "--truth", scene["labels"]])
    sentence = assert_one_sentence(rc, err, missing)
    assert f"Prediction {missing} does not exist" in sentence, sentence
