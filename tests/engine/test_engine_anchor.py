"""Label-anchored smoothing end to end: the delivered map holds the analyst's labels at their class.

``run`` anchors the labels it trained on (not the held-out ones, so the map's validation score stays
honest); ``predict --labels`` does the same for a saved model on the image it was trained on.
"""

from __future__ import annotations

import json

import numpy as np
import rasterio
from engine_helpers import (
    LEARN_CONFIG,
    TINY_TRAIN,
    jsonl_events,
    leftovers,
    run_cli,
    split_label_array,
    write_raster,
)
from test_engine_bad_input import assert_one_sentence

from engine.config import make_config
from engine.synthetic import write_scene


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_run_holds_the_training_labels_and_not_the_held_out_ones(learned):
    labels, pred = _read(learned["labels"]), _read(learned["prediction"])
    train, val = split_label_array(labels, make_config("fast", seed=0, **LEARN_CONFIG).val_fraction, 0)
    metrics = json.loads(learned["metrics"].read_text())
    shown = (train > 0) & (pred > 0)  # labeled pixels on nodata stay nodata, and are not counted as held
    assert metrics["predict_anchored_pixels"] == int(shown.sum()) > 0
    assert shown.sum() >= 0.99 * (train > 0).sum()
    assert np.array_equal(pred[shown], train[shown])
    assert val.any() and not (train[val > 0] > 0).any()


def test_predict_with_labels_holds_them_even_against_the_network(capsys, learned, tmp_path):
    """Labels that contradict the network -- a class-1 patch painted as class 2 -- come out as painted
    and pull their alike neighbours towards their class (the neighbour turns to class 2 or is less sure
    of class 1); without --labels the same model says class 1 there."""
    plain, plain_conf = tmp_path / "plain.tif", tmp_path / "plain_conf.tif"
    rc, _, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", learned["image"],
                                  "--out", plain, "--confidence", plain_conf, "--device", "cpu",
                                  "--progress", "none"])
    assert rc == 0, err
    base, base_conf = _read(plain), _read(plain_conf)
    rows, cols = np.nonzero(base == 1)
    r, c = rows[len(rows) // 2], cols[len(cols) // 2]
    painted = np.zeros_like(base)
    painted[max(r - 1, 0):r + 2, max(c - 1, 0):c + 2] = 2
    with rasterio.open(learned["labels"]) as ds:
        labels = write_raster(tmp_path / "painted.tif", painted, crs=ds.crs, transform=ds.transform)
    out, out_conf = tmp_path / "anchored.tif", tmp_path / "anchored_conf.tif"
    rc, stdout, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", learned["image"],
                                       "--out", out, "--confidence", out_conf, "--labels", labels,
                                       "--device", "cpu", "--progress", "jsonl"])
    assert rc == 0, err
    done = next(e for e in jsonl_events(stdout) if e.get("event") == "done")
    assert done["anchored_pixels"] == int((painted > 0).sum())
    stage = next(e for e in jsonl_events(stdout) if e.get("event") == "stage" and e.get("stage") == "predict")
    assert f"held to {int((painted > 0).sum())} labeled pixel(s)" in stage["message"]
    held, held_conf = _read(out), _read(out_conf)
    valid = painted > 0
    assert (base[valid] != 2).any() and (held[valid] == 2).all()
    changed = (held != base) & ~valid
    assert (held[changed] == 2).all()  # where the map changed, it took the labels' class and no other
    # the ring of pixels around the patch: each is pulled towards class 2 -- taken, or less sure of its own
    ring = np.zeros_like(valid)
    ring[max(r - 2, 0):r + 3, max(c - 2, 0):c + 3] = True
    ring &= ~valid & (base > 0)
    pulled = (held[ring] == 2) | (held_conf[ring] < base_conf[ring])
    assert ring.sum() >= 8 and pulled.mean() >= 0.5, (held[ring], held_conf[ring], base_conf[ring])
    # --smooth off: the labels have nothing to act through, and the run says so
    off = tmp_path / "off.tif"
    rc, stdout, _ = run_cli(capsys, ["predict", "--model", learned["model"], "--image", learned["image"],
                                     "--out", off, "--labels", labels, "--smooth", "off", "--device", "cpu",
                                     "--progress", "jsonl"])
    assert rc == 0
    events = jsonl_events(stdout)
    assert any(e.get("event") == "warning" and e.get("code") == "labels_unused" for e in events)
    assert next(e for e in events if e.get("event") == "done")["anchored_pixels"] == 0


def test_predict_refuses_labels_with_a_class_the_model_lacks(capsys, learned, tmp_path):
    labels = _read(learned["labels"]).copy()
    labels[labels == 3] = 7
    with rasterio.open(learned["labels"]) as ds:
        bad = write_raster(tmp_path / "seven.tif", labels, crs=ds.crs, transform=ds.transform)
    out = tmp_path / "out"
    rc, _, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", learned["image"],
                                  "--out", out / "pred.tif", "--labels", bad, "--device", "cpu",
                                  "--progress", "none"])
    line = assert_one_sentence(rc, err, bad)
    assert "class 7" in line and "1..3" in line
    assert leftovers(out) == []


def test_run_anchor_labels_off_leaves_the_map_to_the_network(capsys, tmp_path):
    scene = write_scene(str(tmp_path), 48, 48, bands=3, classes=3, seed=5)
    counts = {}
    for mode in ("on", "off"):
        out = tmp_path / mode
        rc, _, err = run_cli(capsys, ["run", "--image", scene["image"], "--labels", scene["labels"],
                                      "--out-dir", out, "--val-fraction", "0", "--anchor-labels", mode,
                                      "--progress", "none", *TINY_TRAIN])
        assert rc == 0, err
        counts[mode] = json.loads((out / "metrics.json").read_text())["predict_anchored_pixels"]
    assert counts == {"on": int((_read(scene["labels"]) > 0).sum()), "off": 0}


def test_labels_on_nodata_are_neither_held_nor_counted(learned, tmp_path):
    """A labeled patch half on nodata: the map stays nodata there, and only its valid half is counted."""
    import torch

    from engine import modelfile
    from engine.labels import LabelPatches
    from engine.predict import predict_file

    with rasterio.open(learned["image"]) as ds:
        img, crs, transform = ds.read(), ds.crs, ds.transform
    img[:, 40:60, 40:60] = 0
    image = write_raster(tmp_path / "holes.tif", img, crs=crs, transform=transform, nodata=0)
    labels = np.zeros(img.shape[1:], np.uint8)
    labels[50:70, 50:54] = 2  # rows 50..59 on nodata, 60..69 on valid pixels
    out = tmp_path / "pred.tif"
    how = predict_file(modelfile.load(str(learned["model"])), str(image), str(out), None, torch.device("cpu"),
                       tta="off", anchors=LabelPatches.from_array(labels))
    pred = _read(out)
    assert how["anchors"] == 10 * 4
    assert (pred[50:60, 50:54] == 0).all() and (pred[60:70, 50:54] == 2).all()
