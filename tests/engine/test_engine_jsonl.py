"""``--progress jsonl``: the event stream the plugin reads from the engine's stdout."""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
from engine_helpers import TINY_STEPS, TINY_TRAIN, jsonl_events, leftovers, run_engine, write_raster

from engine.synthetic import write_scene


def test_jsonl_stream_of_a_successful_run(tmp_path):
    scene = write_scene(str(tmp_path), 96, 96, bands=3, classes=3, seed=2)
    out = tmp_path / "out"
    proc = run_engine(["run", "--image", scene["image"], "--labels", scene["labels"], "--out-dir", out,
                       "--progress", "jsonl", *TINY_TRAIN])
    assert proc.returncode == 0, proc.stderr
    events = jsonl_events(proc.stdout)  # every line is JSON
    assert all(isinstance(e, dict) and "event" in e for e in events)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start"
    assert kinds[-1] == "done"
    assert kinds.count("start") == 1 and kinds.count("done") == 1
    assert "error" not in kinds
    assert events[0]["device"] == "cpu"

    progress = [e for e in events if e["event"] == "progress"]
    assert progress
    for e in progress:
        assert isinstance(e["step"], int) and isinstance(e["total_steps"], int)
        assert 1 <= e["step"] <= e["total_steps"]
        assert isinstance(e["eta_s"], numbers.Real) and e["eta_s"] >= 0
        assert isinstance(e["stage"], str)
    train_steps = [e["step"] for e in progress if e["stage"] == "supervised"]
    assert train_steps == sorted(train_steps) and train_steps[-1] == TINY_STEPS
    assert all(e["total_steps"] == TINY_STEPS for e in progress if e["stage"] == "supervised")

    artifacts = {e["kind"]: Path(e["path"]) for e in events if e["event"] == "artifact"}
    assert set(artifacts) >= {"model", "prediction", "confidence", "metrics"}
    for kind, path in artifacts.items():
        assert path.is_absolute() and path.exists(), kind
        assert path.parent == out.resolve()
    done = events[-1]
    assert Path(done["model"]) == artifacts["model"]
    assert isinstance(done["metrics"], dict) and done["metrics"]["steps"] == TINY_STEPS
    # a progress bar is for people: none of it on stderr in jsonl mode
    assert "[###" not in proc.stderr and "Traceback" not in proc.stderr


def test_jsonl_stream_reports_an_error_event(tmp_path):
    scene = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=3)
    empty = write_raster(tmp_path / "empty_labels.tif", np.zeros((64, 64), np.uint8))
    out = tmp_path / "out"
    proc = run_engine(["run", "--image", scene["image"], "--labels", empty, "--out-dir", out,
                       "--progress", "jsonl", *TINY_TRAIN])
    assert proc.returncode != 0
    events = jsonl_events(proc.stdout)
    assert all("event" in e for e in events)
    assert events[0]["event"] == "start"
    assert events[-1]["event"] == "error"
    err = events[-1]
    assert err["code"] == "labels_empty"
    assert isinstance(err["message"], str) and str(empty) in err["message"]
    assert "done" not in [e["event"] for e in events]
    assert "Traceback" not in proc.stderr
    assert leftovers(out) == []


def test_progress_none_still_says_the_warnings():
    import io

    from engine.progress import Reporter

    out, err = io.StringIO(), io.StringIO()
    quiet = Reporter("none", out, err)
    quiet.stage("train", 10, message="training")
    quiet.progress("train", 5, 10)
    quiet.warning("the image looks like another sensor", "values_differ")
    assert out.getvalue() == "" and err.getvalue() == "Warning: the image looks like another sensor\n"
