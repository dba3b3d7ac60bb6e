"""``python -m engine export``: the ONNX file runs in onnxruntime like the torch model, as Deepness runs it.

One tiny model is trained (10 steps, 64 px tiles) and exported once for the whole module through the
real command line; the tests then read the file.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from engine import modelfile
from engine.export import declare_io_shape
from engine.predict import ensemble_probs
from engine.synthetic import write_scene

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.slow  # every test uses the module's trained and exported model

REPO_ROOT = Path(__file__).resolve().parents[2]


def engine(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """A 128 × 128 px 4-band uint16 scene, a tiny model trained on it, and its ONNX export."""
    folder = tmp_path_factory.mktemp("export")
    scene = write_scene(str(folder), height=128, width=128, bands=4, classes=3)
    model = folder / "tiny.semiseg"
    train = engine("train", "--image", scene["image"], "--labels", scene["labels"], "--preset", "fast",
                   "--steps", "10", "--tile-size", "64", "--device", "cpu", "--progress", "none",
                   "--out", str(model))
    assert train.returncode == 0, train.stderr
    onnx_path = folder / "tiny.onnx"
    export = engine("export", "--model", str(model), "--onnx", str(onnx_path), "--resolution", "100",
                    "--progress", "jsonl")
    assert export.returncode == 0, export.stderr
    events = [json.loads(line) for line in export.stdout.splitlines() if line.startswith("{")]
    return {**scene, "model": str(model), "onnx": str(onnx_path), "events": events}


def session(path: str):
    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def torch_probs(model_path: str, raw: np.ndarray) -> np.ndarray:
    """What the engine computes for a (C, H, W) block of raw pixels: normalise, ensemble softmax."""
    model = modelfile.load(model_path)
    x = torch.from_numpy(model.band_stats.apply(raw))[None]
    return ensemble_probs(model.networks(torch.device("cpu")), x).numpy()[0]


def deepness_input(raw: np.ndarray, meta: dict[str, str]) -> np.ndarray:
    """Deepness's pre-processing: raw band values / 255, then (x - mean) / std from the metadata."""
    mean = np.asarray(json.loads(meta["standardization_mean"]), np.float32)[:, None, None]
    std = np.asarray(json.loads(meta["standardization_std"]), np.float32)[:, None, None]
    return ((raw.astype(np.float32) / 255.0 - mean) / std)[None].astype(np.float32)


def test_export_reports_the_file_through_events(exported):
    kinds = [e["event"] for e in exported["events"]]
    assert kinds[0] == "start" and kinds[-1] == "done"
    assert {"event": "artifact", "kind": "onnx", "path": exported["onnx"]} in exported["events"]
    assert Path(exported["onnx"]).stat().st_size > 10_000


def test_onnx_argmax_matches_torch_on_the_test_raster(exported):
    with rasterio.open(exported["image"]) as ds:
        raw = ds.read().astype(np.float32)
    sess = session(exported["onnx"])
    meta = sess.get_modelmeta().custom_metadata_map
    p_onnx = sess.run(None, {sess.get_inputs()[0].name: deepness_input(raw, meta)})[0][0]
    p_torch = torch_probs(exported["model"], raw)
    assert p_onnx.shape == p_torch.shape == (3, 128, 128)
    agreement = float((p_onnx.argmax(0) == p_torch.argmax(0)).mean())
    assert agreement >= 0.999, f"argmax agrees on only {agreement:.4%} of pixels"
    assert np.abs(p_onnx - p_torch).max() < 1e-3
    np.testing.assert_allclose(p_onnx.sum(0), 1.0, atol=1e-4)  # probabilities, not logits


def test_tile_size_and_batch_are_dynamic(exported):
    sess = session(exported["onnx"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert inp.shape == ["batch", 4, "tile", "tile"]  # Deepness reads the side here; H, W must match
    assert out.shape == ["batch", 3, "tile", "tile"]
    rng = np.random.default_rng(0)
    for shape in [(1, 4, 64, 64), (3, 4, 32, 32), (1, 4, 96, 160)]:
        x = rng.uniform(0, 40, shape).astype(np.float32)
        (probs,) = sess.run(None, {inp.name: x})
        assert probs.shape == (shape[0], 3, shape[2], shape[3])


def test_fixed_size_declares_one_tile(exported):
    proto = onnx.load(exported["onnx"])
    assert declare_io_shape(proto, 64) == (1, 64)  # what `export --fixed-size --tile-size 64` writes
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape == [1, 4, 64, 64] and sess.get_outputs()[0].shape == [1, 3, 64, 64]
    (probs,) = sess.run(None, {sess.get_inputs()[0].name: np.zeros((1, 4, 64, 64), np.float32)})
    assert probs.shape == (1, 3, 64, 64)


def test_metadata_is_what_deepness_reads(exported):
    meta = session(exported["onnx"]).get_modelmeta().custom_metadata_map
    decoded = {k: json.loads(v) for k, v in meta.items()}  # Deepness json.loads every value
    assert decoded["model_type"] == "Segmentor"
    assert decoded["class_names"] == {"0": "class 1", "1": "class 2", "2": "class 3"}
    assert decoded["resolution"] == 100.0
    assert decoded["tile_size"] == 512 and decoded["tile_size"] % decoded["semiseg_stride"] == 0
    assert 0 < decoded["tiles_overlap"] <= 50
    assert decoded["seg_thresh"] == 0.0
    assert decoded["standardization_mean"] == [0.0] * 4 and decoded["standardization_std"] == [1.0] * 4
    assert len(decoded["semiseg_class_colours"]) == 3


def test_model_file_is_valid_onnx(exported):
    proto = onnx.load(exported["onnx"])
    onnx.checker.check_model(proto)
    assert proto.producer_name == "SemiSeg"


def test_tile_size_off_the_stride_is_refused_in_one_sentence(exported, tmp_path):
    done = engine("export", "--model", exported["model"], "--onnx", str(tmp_path / "x.onnx"),
                  "--tile-size", "100", "--progress", "none")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("Error: Tile size 100 is not a multiple")
    assert not (tmp_path / "x.onnx").exists()


def test_missing_model_is_refused(tmp_path):
    done = engine("export", "--model", str(tmp_path / "nope.semiseg"), "--onnx", str(tmp_path / "x.onnx"),
                  "--progress", "none")
    assert done.returncode == 2
    assert "does not exist" in done.stderr


def test_a_pixel_size_that_is_not_one_is_refused(exported, tmp_path):
    for bad in ("-5", "0", "inf"):
        done = engine("export", "--model", exported["model"], "--onnx", str(tmp_path / "x.onnx"),
                      "--resolution", bad, "--progress", "none")
        assert done.returncode == 2 and "not a pixel size" in done.stderr, done.stderr
        assert not (tmp_path / "x.onnx").exists()


def test_an_export_is_written_only_under_an_onnx_name(exported, tmp_path):
    for name in ("model.txt", "model"):
        done = engine("export", "--model", exported["model"], "--onnx", str(tmp_path / name),
                      "--progress", "none")
        assert done.returncode == 2 and "must end in .onnx" in done.stderr, done.stderr
        assert not (tmp_path / name).exists()
