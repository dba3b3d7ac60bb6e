"""Headless use: ``qgis_process`` finds the plugin, lists its algorithms and runs Train and segment on the
bundled sample, leaving a styled prediction GeoTIFF.

Debian's ``/usr/bin/qgis_process`` wrapper passes ``--noversioncheck``, which 3.22's ``qgis_process``
rejects, so the binary behind it is called. The plugin is found through ``QGIS_PLUGINPATH`` (a folder
holding a ``semiseg`` link to this repo) in a throwaway profile.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import rasterio
from processing_helpers import REPO_ROOT

QGIS_PROCESS = Path("/usr/bin/qgis_process.bin")
SAMPLE = REPO_ROOT / "resources" / "sample"

pytestmark = pytest.mark.skipif(not QGIS_PROCESS.exists(), reason="needs Debian's qgis_process")


@pytest.fixture(scope="module")
def qgis_process(tmp_path_factory):
    """Run ``qgis_process.bin <args>`` with the plugin installed in a throwaway profile."""
    home = tmp_path_factory.mktemp("qgis_process")
    (home / "plugins").mkdir()
    (home / "plugins" / "semiseg").symlink_to(REPO_ROOT, target_is_directory=True)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QGIS_PLUGINPATH=str(home / "plugins"),
               QGIS_CUSTOM_CONFIG_PATH=str(home / "profile"), SEMISEG_ENGINE_PYTHON=sys.executable)

    def run(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
        return subprocess.run([str(QGIS_PROCESS), *args], env=env, cwd=home, capture_output=True, text=True,
                              timeout=timeout)

    enabled = run("plugins", "enable", "semiseg")
    assert enabled.returncode == 0, enabled.stdout + enabled.stderr
    return run


def test_qgis_process_lists_the_algorithms(qgis_process):
    listed = qgis_process("list")
    assert listed.returncode == 0, listed.stderr
    for alg in ("train", "predict", "train_and_segment", "evaluate", "polygons", "accuracy_sample",
                "assess_accuracy"):
        assert f"semiseg:{alg}\t" in listed.stdout


@pytest.mark.slow
def test_qgis_process_trains_and_segments_the_sample(qgis_process, tmp_path):
    done = qgis_process("run", "semiseg:train_and_segment", "--",
                        f"INPUT={SAMPLE / 'landsat_rgb.tif'}", f"LABELS={SAMPLE / 'landsat_rgb_labels.gpkg'}",
                        "LABEL_FIELD=class", "PRESET=0", "STEPS=10", "TILE_SIZE=64", "DEVICE=cpu",
                        f"OUTPUT_FOLDER={tmp_path}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"PREDICTION:\t{tmp_path / 'prediction.tif'}" in done.stdout
    with rasterio.open(tmp_path / "prediction.tif") as ds, rasterio.open(SAMPLE / "landsat_rgb.tif") as img:
        assert (ds.crs, ds.transform, ds.shape) == (img.crs, img.transform, img.shape)
        assert ds.colormap(1)[1][:3] != (0, 0, 0)
    qml = (tmp_path / "prediction.qml").read_text(encoding="utf-8")
    assert 'type="paletted"' in qml and 'label="water"' in qml and 'label="forest"' in qml
