"""Helpers for the plugin tests: import the plugin as ``semiseg``, spin the event loop, a fake engine.

The repo root is imported as the package ``semiseg``, the name it has once installed, so the ``ui``
modules are ``semiseg.ui.*`` here exactly as inside QGIS. The *fake engine* stands in for
``python -m engine`` where a test is about the plumbing, not the training: a tiny script that replays
the scenario named in ``FAKE_ENGINE_SCENARIO``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time
from pathlib import Path

from qgis.core import QgsApplication

REPO_ROOT = Path(__file__).resolve().parents[2]
ENGINE_PYTHON = sys.executable  # the tests' own interpreter has torch (the .venv)


def import_plugin_package(name: str = "semiseg"):
    """Import the repo root as the package ``name`` (what QGIS does with the installed folder)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
    )
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


def plugin_module(name: str):
    """``plugin_module("ui.task")`` -> the module ``semiseg.ui.task``."""
    import_plugin_package()
    return importlib.import_module(f"semiseg.{name}")


def wait_until(predicate, timeout_s: float = 60.0, what: str = "condition") -> None:
    """Spin Qt's event loop until ``predicate()`` is true (task signals arrive through it)."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        QgsApplication.processEvents()
        time.sleep(0.02)


# The fake engine: `python -m engine <command> ...` is answered by replaying a scenario.
FAKE_ENGINE = r'''
import json, os, signal, sys, time
scenario = os.environ["FAKE_ENGINE_SCENARIO"]
args = sys.argv[1:]
if args[:2] == ["-m", "engine"]:
    args = args[2:]
elif args[:1] == ["-c"]:  # `-c "import torch"` and the methods query
    code = args[1]
    if "import torch" in code and scenario == "no_torch":
        sys.exit(1)
    if "METHODS" in code:
        print(json.dumps(["supervised", "fakemethod"]))
    sys.exit(0)

def emit(event, **fields):
    print(json.dumps({"event": event, **fields}), flush=True)

if args[:1] == ["devices"]:
    print(json.dumps([{"id": "cpu", "name": "CPU"}, {"id": "cuda:0", "name": "Fake GPU"}]))
    sys.exit(0)
out_dir = args[args.index("--out-dir") + 1] if "--out-dir" in args else os.getcwd()
emit("start", command=args[0], device="cpu", pid=os.getpid())
if scenario == "ok":
    emit("stage", stage="supervised", total_steps=4, message="training 4 steps on cpu")
    for step in range(1, 5):
        emit("progress", stage="supervised", step=step, total_steps=4, eta_s=4 - step, loss=1.0 / step)
    emit("metric", step=4, val_miou=0.5, val_oa=0.75)
    emit("done", seconds=0.1, model=os.path.join(out_dir, "model.semiseg"), metrics={"val_miou": 0.5})
elif scenario == "user_error":
    emit("error", code="labels_outside_image", message="Labels labels.tif do not overlap image.tif; "
         "paint on the image.")
    print("Error: Labels labels.tif do not overlap image.tif; paint on the image.", file=sys.stderr)
    sys.exit(2)
elif scenario == "orphan":  # leaves a grandchild holding stdout open, then exits
    import subprocess
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    emit("done", seconds=0.1)
elif scenario == "bad_progress":  # progress fields that are no numbers, then a normal end
    emit("progress", stage="supervised", step="n/a", total_steps="ten")
    emit("progress", stage="supervised", step=5, total_steps=10)
    emit("done", seconds=0.1)
elif scenario == "crash":
    print("Traceback: something deep broke", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
elif scenario in ("slow", "stubborn"):
    if scenario == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    emit("stage", stage="supervised", total_steps=1000, message="training")
    for step in range(1, 1001):
        emit("progress", stage="supervised", step=step, total_steps=1000, eta_s=1000 - step)
        time.sleep(0.05)
    emit("done", seconds=50)
'''
