"""A full disk is one sentence and leaves nothing half-written: on a real, tiny tmpfs where this machine lets
the tests mount one (root on Linux), and the recognition of the error through what wraps it always."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
from engine_helpers import TINY_TRAIN

from engine.errors import disk_full
from engine.synthetic import write_scene

REPO = Path(__file__).resolve().parents[2]


def test_disk_full_is_found_inside_the_errors_that_wrap_it():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/data/map.partial-1.tif")
        except OSError as inner:
            raise RuntimeError("writing the map failed") from inner
    except RuntimeError as outer:
        found = disk_full(outer)
    assert found is not None and found.filename == "/data/map.partial-1.tif"
    assert disk_full(RuntimeError("GDAL: Write failed: No space left on device")) is not None
    assert disk_full(OSError(errno.EACCES, "Permission denied")) is None
    assert disk_full(ValueError("no")) is None


@pytest.fixture
def tiny_disk(tmp_path):
    """A mounted tmpfs of a given size (KiB), unmounted afterwards."""
    mounted = []

    def mount(kib: int) -> Path:
        where = tmp_path / f"disk{kib}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(where)],
                              capture_output=True)
        if done.returncode != 0:
            pytest.skip("mounting a tmpfs needs root on Linux; the error's recognition is tested above")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", str(where)], check=False)


def engine(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "SEMISEG_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "engine", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs is Linux's")
def test_a_full_disk_is_one_sentence_and_leaves_nothing(tmp_path, tiny_disk):
    scene = write_scene(str(tmp_path), 128, 128, bands=3, classes=3, seed=1)
    model = tmp_path / "model.semiseg"
    done = engine("train", "--image", scene["image"], "--labels", scene["labels"], "--out", model,
                  *TINY_TRAIN, "--progress", "none")
    assert done.returncode == 0, done.stderr
    # too small for the model: the run stops at writing it
    disk = tiny_disk(max(16, model.stat().st_size // 1024 // 2))
    done = engine("run", "--image", scene["image"], "--labels", scene["labels"], "--out-dir", disk / "run",
                  *TINY_TRAIN, "--progress", "none")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "The disk is full" in done.stderr and "another disk" in done.stderr
    assert not [p for p in disk.rglob("*") if p.is_file()]
    # room for the map but not its confidence raster (float32, four times the map's bytes)
    disk = tiny_disk(128 * 128 * 2 // 1024)
    done = engine("predict", "--model", model, "--image", scene["image"], "--out", disk / "map.tif",
                  "--confidence", disk / "confidence.tif", "--tta", "off", "--smooth", "off",
                  "--device", "cpu", "--progress", "none")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "The disk is full" in done.stderr
    assert not [p for p in disk.rglob("*") if p.is_file()]
