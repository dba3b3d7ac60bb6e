"""Unit tests: metrics, the validation split, the model file, band statistics."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import rasterio
import torch
from engine_helpers import LEARN_CLASSES, run_cli, split_label_array, write_raster
from scipy import ndimage

from engine import modelfile
from engine.metrics import confusion, scores
from engine.raster import compute_band_stats

# --- metrics ---------------------------------------------------------------------------------------


def arrays_from_confusion(cm: np.ndarray, unlabeled: int = 0):
    """truth/pred pixel arrays realising confusion ``cm`` (+ ``unlabeled`` truth-0 pixels)."""
    t, p = [], []
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            t += [i + 1] * int(cm[i, j])
            p += [j + 1] * int(cm[i, j])
    t += [0] * unlabeled
    p += [1] * unlabeled  # predicted, but no truth there: must not count
    return np.array(t, np.uint8), np.array(p, np.uint8)


def test_metrics_on_a_hand_made_confusion():
    cm = np.array([[50, 10], [5, 35]])
    truth, pred = arrays_from_confusion(cm, unlabeled=17)
    got = confusion(truth.reshape(1, -1), pred.reshape(1, -1), 2)
    assert got.tolist() == cm.tolist()
    s = scores(got, ["water", "land"])
    # by hand: OA = 85/100; IoU = 50/65, 35/50; pe = (60*55 + 40*45)/100^2 = 0.51
    assert s["oa"] == pytest.approx(0.85)
    assert s["per_class_iou"]["water"] == pytest.approx(50 / 65)
    assert s["per_class_iou"]["land"] == pytest.approx(0.7)
    assert s["miou"] == pytest.approx((50 / 65 + 0.7) / 2)
    assert s["kappa"] == pytest.approx((0.85 - 0.51) / (1 - 0.51))
    assert s["pixels"] == 100
    assert s["confusion"] == cm.tolist()


def test_metrics_three_classes_and_edge_cases():
    cm = np.array([[20, 0, 5], [0, 30, 0], [10, 0, 35]])
    s = scores(confusion(*arrays_from_confusion(cm), 3))
    iou = [20 / (25 + 30 - 20), 1.0, 35 / (45 + 40 - 35)]  # tp / (row + col - tp)
    assert s["miou"] == pytest.approx(sum(iou) / 3)
    rows, cols = cm.sum(1), cm.sum(0)
    pe = (rows * cols).sum() / 100**2
    assert s["kappa"] == pytest.approx((85 / 100 - pe) / (1 - pe))

    perfect = scores(np.diag([10, 20, 30]))
    assert perfect["oa"] == 1.0 and perfect["miou"] == 1.0 and perfect["kappa"] == pytest.approx(1.0)

    # chance agreement: kappa 0
    chance = scores(np.array([[25, 25], [25, 25]]))
    assert chance["oa"] == 0.5 and chance["kappa"] == pytest.approx(0.0)

    # a class absent from the truth is not averaged into mIoU
    absent = scores(np.array([[40, 0, 10], [0, 50, 0], [0, 0, 0]]), ["a", "b", "c"])
    assert absent["per_class_iou"]["c"] is None
    assert absent["miou"] == pytest.approx((40 / 50 + 1.0) / 2)

    empty = scores(np.zeros((2, 2), int))
    assert empty["oa"] is None and empty["miou"] is None and empty["pixels"] == 0


# --- validation split --------------------------------------------------------------------------------


def stroke_labels() -> np.ndarray:
    """Class 1: eight separate blobs; class 2: five strokes; class 3: one long scribble (< 3 units)."""
    lab = np.zeros((200, 240), np.uint8)
    for i in range(8):
        lab[10 + 20 * i:16 + 20 * i, 10:30 + 3 * i] = 1
    for i in range(5):
        lab[20 + 30 * i:23 + 30 * i, 60:130] = 2
    lab[40:43, 140:235] = 3  # one stroke, ~95 px long
    lab[40:150, 232:235] = 3  # ... with a long arm (same connected unit)
    return lab


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_labels_whole_units_disjoint_and_balanced(seed):
    lab = stroke_labels()
    train, val = split_label_array(lab, 0.2, seed)
    assert train.dtype == lab.dtype and val.dtype == lab.dtype
    # disjoint, and together exactly the labels
    assert not np.any((train > 0) & (val > 0))
    assert np.array_equal(np.where(train > 0, train, val), lab)
    # every class keeps training pixels; some validation is held out
    for k in (1, 2, 3):
        assert (train == k).any(), k
        assert (val == k).any(), k
    # fraction roughly honoured (overall and per class)
    frac = (val > 0).sum() / (lab > 0).sum()
    assert 0.1 <= frac <= 0.3, frac
    for k in (1, 2, 3):
        fk = (val == k).sum() / (lab == k).sum()
        assert 0.05 <= fk <= 0.45, (k, fk)
    # whole units: classes with many strokes hold out whole strokes
    for k in (1, 2):
        comp, n = ndimage.label(lab == k, structure=np.ones((3, 3)))
        for i in range(1, n + 1):
            part = val[comp == i] > 0
            assert part.all() or not part.any(), f"class {k} stroke {i} split between train and val"
    # a single long scribble is cut into 32-px grid pieces (a grid anchored at the labels' bounding
    # box), each wholly on one side
    r0, c0 = np.nonzero(lab)[0].min(), np.nonzero(lab)[1].min()
    rr, cc = np.nonzero(lab == 3)
    pieces = {}
    for r, c in zip(rr, cc, strict=True):
        pieces.setdefault(((r - r0) // 32, (c - c0) // 32), set()).add(bool(val[r, c]))
    assert len(pieces) >= 5
    assert all(len(sides) == 1 for sides in pieces.values())
    # deterministic for a seed
    t2, v2 = split_label_array(lab, 0.2, seed)
    assert np.array_equal(val, v2) and np.array_equal(train, t2)


def test_split_labels_zero_fraction_and_single_unit():
    lab = stroke_labels()
    train, val = split_label_array(lab, 0.0, 0)
    assert not val.any() and np.array_equal(train, lab)
    tiny = np.zeros((20, 20), np.uint8)
    tiny[2:4, 2:4] = 1
    tiny[10:12, 10:12] = 2
    train, val = split_label_array(tiny, 0.2, 0)
    assert np.array_equal(train, tiny) and not val.any()  # nothing to spare: all stays in training


def test_held_out_pixels_score_the_written_map_where_they_lie(tmp_path):
    from engine.data import Chip
    from engine.pipeline import held_out, score_map

    rng = np.random.default_rng(0)
    pred = rng.integers(1, 4, (40, 50)).astype(np.uint8)  # a random map: any misplaced read shows
    write_raster(tmp_path / "pred.tif", pred)
    val = np.zeros((20, 30), np.uint8)
    val[3:9, 4:16] = rng.integers(1, 4, (6, 12))
    chip = Chip(10, 15, np.zeros((2, 20, 30), np.float32), np.ones((20, 30), bool), val * 0, val)
    empty = Chip(0, 0, np.zeros((2, 5, 5), np.float32), np.ones((5, 5), bool), np.zeros((5, 5), np.uint8),
                 np.zeros((5, 5), np.uint8))
    held = held_out([empty, chip])
    assert [(r, c, v.shape) for r, c, v in held] == [(13, 19, (6, 12))]  # cropped to the pixels, placed
    names = ["a", "b", "c"]
    got = score_map(str(tmp_path / "pred.tif"), held, 3, names)
    assert got == scores(confusion(val, pred[10:30, 15:45], 3), names)
    assert got["pixels"] == 72


# --- model file ------------------------------------------------------------------------------------


def test_model_file_loads_weights_only_and_info(learned, capsys):
    raw = torch.load(learned["model"], map_location="cpu", weights_only=True)
    assert isinstance(raw, dict)
    assert raw["format"] == "semiseg-model"
    assert raw["classes"]["names"] == [f"class {k}" for k in range(1, LEARN_CLASSES + 1)]
    assert raw["config"]["model"]["in_channels"] == 4
    assert len(raw["band_stats"]["low"]) == 4 and len(raw["band_stats"]["high"]) == 4
    assert raw["members"] and all(isinstance(v, torch.Tensor) for v in raw["members"][0].values())
    assert raw["engine_version"]

    rc, out, err = run_cli(capsys, ["info", "--model", learned["model"]])
    assert rc == 0, err
    info = json.loads(out)
    assert info["method"] == "supervised"
    assert info["bands"] == 4
    assert info["classes"]["names"] == raw["classes"]["names"]
    assert len(info["classes"]["colours"]) == LEARN_CLASSES
    assert info["metrics"]["steps"] == raw["metrics"]["steps"]
    assert info["provenance"]["image"] == "image.tif"

    # the loaded model rebuilds a network holding exactly the saved weights
    m = modelfile.load(str(learned["model"]))
    net = m.networks(torch.device("cpu"))[0]
    saved = raw["members"][0]
    assert set(net.state_dict()) == set(saved)
    assert all(torch.equal(v, saved[k]) for k, v in net.state_dict().items())
    with torch.no_grad():
        logits = net(torch.zeros(1, 4, 32, 32))  # 4 bands in, one logit per class out
    assert logits.shape == (1, LEARN_CLASSES, 32, 32)


# --- band statistics -----------------------------------------------------------------------------


def test_band_stats_200_band_float(tmp_path):
    rng = np.random.default_rng(0)
    bands = 200
    offsets = np.arange(bands, dtype=np.float32)[:, None, None] * 10.0
    data = (rng.random((bands, 40, 48), dtype=np.float32) * (1 + np.arange(bands) % 5)[:, None, None]
            + offsets).astype(np.float32)
    path = write_raster(tmp_path / "hyper.tif", data, nodata=None)
    with rasterio.open(path) as ds:
        st = compute_band_stats(ds, str(path))
    assert st.low.shape == (bands,) and st.high.shape == (bands,)
    assert st.low.dtype == np.float32
    width = (1 + np.arange(bands) % 5).astype(np.float32)
    assert np.allclose(st.low, offsets[:, 0, 0] + 0.02 * width, atol=0.03 * width)
    assert np.allclose(st.high, offsets[:, 0, 0] + 0.98 * width, atol=0.03 * width)
    y = st.apply(data)
    assert -0.1 < float(np.median(y)) < 1.1


def test_band_stats_one_band_uint8_with_nodata(tmp_path):
    ramp = np.tile(np.arange(256, dtype=np.uint8), (64, 1))  # every value 0..255, 64 times
    data = ramp.copy()
    data[:, :128] = 255  # the left half is nodata and must not count
    path = write_raster(tmp_path / "gray.tif", data, nodata=255)
    with rasterio.open(path) as ds:
        st = compute_band_stats(ds, str(path))
    valid = ramp[:, 128:255].ravel().astype(np.float64)  # values 128..254
    assert st.low.shape == (1,)
    assert st.low[0] == pytest.approx(np.percentile(valid, 2), abs=1.0)
    assert st.high[0] == pytest.approx(np.percentile(valid, 98), abs=1.0)
    assert st.high[0] < 255


def test_band_stats_constant_band_does_not_blow_up(tmp_path):
    data = np.stack([np.full((32, 32), 7, np.uint8), np.arange(1024, dtype=np.uint8).reshape(32, 32)])
    path = write_raster(tmp_path / "const.tif", data)
    with rasterio.open(path) as ds:
        st = compute_band_stats(ds, str(path))
    y = st.apply(data)
    assert np.all(np.isfinite(y))
    assert st.high[0] - st.low[0] >= 1.0
    assert math.isclose(float(st.low[0]), 7.0)


def test_spectral_stem_is_automatic_for_many_bands_and_absent_from_old_model_files():
    from engine.config import ModelConfig
    from engine.models import SpectralStem, build_model

    hyper = ModelConfig(widths=(8, 16))
    hyper.set_bands(200)
    hyper.num_classes = 3
    net = build_model(hyper)
    assert hyper.spectral_stem == 32 and isinstance(net.encoder, SpectralStem)
    assert net.encoder.mix[0].weight.shape == (32, 200, 1, 1)  # 1x1 band mixer
    assert net.encoder.body.stages[0][0].weight.shape[1] == 32  # the 3x3 layers see 32 channels
    assert net(torch.zeros(1, 200, 32, 32)).shape == (1, 3, 32, 32)

    rgbn = ModelConfig(widths=(8, 16))
    rgbn.set_bands(4)
    assert rgbn.spectral_stem == 0 and not isinstance(build_model(rgbn).encoder, SpectralStem)

    # a model file written before the stem existed has no key: it must rebuild without a stem
    old = hyper.to_dict()
    del old["spectral_stem"]
    assert ModelConfig.from_dict(old).spectral_stem == 0
    # a stored resolved value survives the round trip
    assert ModelConfig.from_dict(hyper.to_dict()).spectral_stem == 32


def test_spectral_stem_flag_turns_it_off_or_sizes_it():
    from engine.cli import _config, build_parser

    base = ["run", "--image", "i.tif", "--labels", "l.tif", "--out-dir", "o"]
    for extra, want in (([], 32), (["--spectral-stem", "0"], 0), (["--spectral-stem", "16"], 16)):
        cfg = _config(build_parser().parse_args(base + extra))
        cfg.model.set_bands(200)
        assert cfg.model.spectral_stem == want, extra


def test_engine_commands_give_gdal_a_block_cache_of_megabytes(monkeypatch, capsys):
    """rasterio takes an integer GDAL_CACHEMAX as bytes: the engine must hand it 64 MiB, not 64."""
    from osgeo import gdal

    from engine import cli
    from engine.raster import GDAL_CACHE_MB

    seen = []
    monkeypatch.delenv("GDAL_CACHEMAX", raising=False)
    monkeypatch.setattr(cli, "_dispatch", lambda *_: seen.append(gdal.GetCacheMax()))
    assert cli.main(["info", "--model", "any.semiseg"]) == 0
    assert seen == [GDAL_CACHE_MB * 2 ** 20]
    monkeypatch.setenv("GDAL_CACHEMAX", "200")  # the user's own setting (megabytes) is left alone
    assert cli.main(["info", "--model", "any.semiseg"]) == 0
    assert seen[-1] != GDAL_CACHE_MB * 2 ** 20
    capsys.readouterr()


def test_the_polygons_command_does_not_load_torch(tmp_path):
    """No network is needed to polygonize a map, so the command starts without torch (about 0.6 GB)."""
    import subprocess
    import sys
    from pathlib import Path

    path = write_raster(tmp_path / "map.tif", np.array([[1, 2], [2, 2]], np.uint8), nodata=0)
    code = ("import sys; from engine.cli import main; rc = main(['polygons', '--prediction', sys.argv[1], "
            "'--out', sys.argv[2], '--progress', 'none']); assert rc == 0; "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "m.gpkg")], text=True,
                          capture_output=True, cwd=str(Path(__file__).resolve().parents[2]), check=True)
    assert done.stdout.strip() == "False"


def test_balanced_label_weights_give_every_class_the_same_total():
    from types import SimpleNamespace

    from engine.training import label_class_weights, sparse_ce

    chips = [SimpleNamespace(class_pixels={1: np.arange(300), 3: np.arange(20)}),
             SimpleNamespace(class_pixels={1: np.arange(100), 3: np.arange(20)})]
    w = label_class_weights(chips, 4)
    counts = np.array([400, 0, 40, 0])
    assert w[1] == 0 and w[3] == 0  # no training pixels
    assert float(w[0]) * 400 == pytest.approx(float(w[2]) * 40)  # the same total per class
    assert float((w.numpy() * counts).sum()) == pytest.approx(counts.sum())  # mean weight 1 per pixel
    # in the loss: a batch of one big class and one small one weighs both classes alike
    logits = torch.zeros(1, 2, 1, 11)
    logits[0, 0] = 2.0  # predicts class 1 everywhere
    labels = torch.tensor([[[1] * 10 + [2]]], dtype=torch.uint8)
    plain = sparse_ce(logits, labels)
    balanced = sparse_ce(logits, labels, torch.tensor([1.0 / 10, 1.0]))
    ce = torch.nn.functional.cross_entropy
    right = ce(logits[..., :1], torch.zeros(1, 1, 1, dtype=torch.long))
    wrong = ce(logits[..., :1], torch.ones(1, 1, 1, dtype=torch.long))
    assert plain == pytest.approx(float((10 * right + wrong) / 11))
    assert balanced == pytest.approx(float((right + wrong) / 2))
