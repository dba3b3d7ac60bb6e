"""The engine child process: events in order, the engine's own error sentence, crash, cancel, discovery."""

from __future__ import annotations

import sys
import time

import pytest
from plugin_helpers import REPO_ROOT, plugin_module

engine_process = plugin_module("ui.engine_process")


def run_fake(fake_python, scenario: str, **kwargs):
    events = []
    process = engine_process.EngineProcess(fake_python(scenario), ["run", "--out-dir", "x"],
                                           on_event=events.append, **kwargs)
    return process, events


def test_parse_event_accepts_only_json_events():
    assert engine_process.parse_event('{"event": "start", "pid": 1}\n') == {"event": "start", "pid": 1}
    for line in ("", "some library chatter", '{"no_event": 1}', "{broken", "[1, 2]"):
        assert engine_process.parse_event(line) is None


def test_successful_run_streams_every_event_in_order(fake_python):
    process, events = run_fake(fake_python, "ok")
    result = process.run()
    assert result.ok and result.returncode == 0
    assert [e["event"] for e in events] == ["start", "stage"] + ["progress"] * 4 + ["metric", "done"]
    assert result.events == events
    assert result.done["metrics"] == {"val_miou": 0.5}


def test_warnings_are_collected_once_each_in_order():
    events = [{"event": "warning", "code": "a", "message": "First."}, {"event": "progress", "step": 1},
              {"event": "warning", "code": "b", "message": "Second."},
              {"event": "warning", "code": "a", "message": "First."}, {"event": "done"}]
    result = engine_process.EngineResult(0, events)
    assert result.ok and result.warnings == ["First.", "Second."]
    assert engine_process.EngineResult(0, [{"event": "done"}]).warnings == []


def test_user_error_gives_the_engines_sentence(fake_python):
    result = run_fake(fake_python, "user_error")[0].run()
    assert not result.ok and result.returncode == 2
    assert result.error["code"] == "labels_outside_image"
    assert result.user_message() == "Labels labels.tif do not overlap image.tif; paint on the image."
    assert "do not overlap" in result.stderr_tail


def test_killed_child_is_reported_not_raised(fake_python):
    result = run_fake(fake_python, "crash")[0].run()
    assert not result.ok and result.returncode < 0
    assert "stopped unexpectedly" in result.user_message()
    assert "something deep broke" in result.stderr_tail


def test_a_grandchild_holding_stdout_does_not_hang_the_run(fake_python):
    t0 = time.monotonic()
    result = run_fake(fake_python, "orphan")[0].run()
    assert result.ok and time.monotonic() - t0 < 10


@pytest.mark.parametrize("scenario", ["slow", "stubborn"])
def test_cancel_ends_the_child_within_seconds(fake_python, scenario):
    process, events = run_fake(fake_python, scenario, grace_s=1.0)
    t0 = time.monotonic()
    result = process.run(should_cancel=lambda: len(events) >= 3)
    assert time.monotonic() - t0 < 8
    assert result.cancelled and not result.ok
    assert result.user_message().startswith("Cancelled")
    assert len(events) < 100  # stopped long before the end


def test_a_failing_event_handler_stops_the_child_before_it_raises(fake_python):
    """Whatever goes wrong in the plugin while it reads the events, no engine is left running unread."""

    def broken(_event):
        raise ValueError("a bug in the handler")

    process = engine_process.EngineProcess(fake_python("slow"), ["run", "--out-dir", "."], on_event=broken)
    with pytest.raises(ValueError, match="a bug in the handler"):
        process.run()
    assert process._proc.poll() is not None


def test_an_engine_python_that_is_not_there_is_named_as_such():
    missing = engine_process.EngineSetup(None, configured="/nonexistent/python3").problem
    assert "/nonexistent/python3 does not exist or cannot be run" in missing
    torchless = engine_process.EngineSetup(None, configured=sys.executable).problem
    assert "cannot import torch" in torchless


def test_missing_interpreter_is_a_message():
    result = engine_process.EngineProcess("/nonexistent/python", ["devices"]).run()
    assert result.returncode is None and not result.ok
    assert "Could not start the engine" in result.user_message()


def test_child_runs_in_the_plugin_folder_with_it_on_pythonpath():
    env = engine_process.engine_environment({"PYTHONPATH": "/elsewhere"})
    assert env["PYTHONPATH"].split(":")[:2] == [str(REPO_ROOT), "/elsewhere"]
    assert engine_process.engine_command("py", ["devices"]) == ["py", "-m", "engine", "devices"]


def test_candidates_start_with_the_plugin_venv():
    candidates = engine_process.candidate_pythons()
    venv_python = REPO_ROOT / ".venv" / "bin" / "python"
    if venv_python.is_file():
        assert candidates[0] == str(venv_python)
    assert len(candidates) == len(set(candidates))


def test_probe_reports_devices_and_methods(fake_python):
    engine_process.forget_torch_checks()
    setup = engine_process.probe_engine(fake_python("ok"))
    assert setup.python and setup.problem == ""
    assert [d["id"] for d in setup.devices] == ["cpu", "cuda:0"]
    assert setup.methods == ["supervised", "fakemethod"]


def test_probe_without_torch_says_how_to_fix_it(fake_python):
    engine_process.forget_torch_checks()
    python = fake_python("no_torch")
    setup = engine_process.probe_engine(python)
    assert setup.python is None
    assert "cannot import torch" in setup.problem and python in setup.problem
    assert "pip install torch" in engine_process.EngineSetup(None).problem


@pytest.mark.slow
def test_relative_paths_are_the_callers(tmp_path, monkeypatch):
    """qgis_process or a script may pass paths relative to the folder it runs in; the engine, started in
    the plugin folder, reads them from there, not from the plugin folder."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    truth = np.array([[1, 1, 2, 2]] * 4, np.uint8)
    profile = dict(driver="GTiff", height=4, width=4, count=1, dtype="uint8",
                   transform=from_origin(0, 4, 1, 1), crs="EPSG:32633")
    for name in ("map.tif", "truth.tif"):
        with rasterio.open(tmp_path / name, "w", **profile) as f:
            f.write(truth, 1)
    monkeypatch.chdir(tmp_path)
    args = ["evaluate", "--prediction", "map.tif", "--truth", "truth.tif", "--progress", "jsonl"]
    result = engine_process.EngineProcess(sys.executable, args).run()
    assert result.ok, result.user_message()
    assert result.done["oa"] == 1.0 and result.done["pixels"] == 16


@pytest.mark.slow
def test_real_engine_lists_devices_and_methods():
    engine_process.forget_torch_checks()
    assert engine_process.can_import_torch(sys.executable)
    assert engine_process.query_devices(sys.executable)[0]["id"] == "cpu"
    assert "supervised" in engine_process.query_methods(sys.executable)
