"""Supervised training learns a synthetic scene from scribbles (scored against the full truth).

How the schedule was chosen (256×256 4-band scene, 3 classes — two region classes, roads folded into
the second, small rectangular "buildings" as the third —, 6 scribbles per class (~1.5 % of the
pixels), fast preset, 64-px tiles, lr 0.01, one CPU thread), mIoU against the truth for scene seeds 0-4:

    steps   seeds 0..4                         min    mean
      30    0.831 0.911 0.870 0.812 0.894      0.812  0.864
      40    0.805 0.853 0.876 0.906 0.868      0.805  0.862
      60    0.855 0.842 0.902 0.800 0.830      0.800  0.846
     100    0.884 0.831 0.902 0.916 0.883      0.831  0.883

Every seed passes 0.80 from 30 steps on, but only by a hair until 100 steps, so the test trains 100.
(On the 4-class scene, roads and buildings as separate small classes, no schedule tried reached 0.80
reliably: the small classes are over-predicted; see the engine tests' report.)
"""

from __future__ import annotations

import json

import numpy as np
import rasterio
from engine_helpers import LEARN_CLASSES, LEARN_CONFIG, run_cli, split_label_array

from engine import pipeline


def test_supervised_learns_synthetic_scene_from_scribbles(learned, capsys):
    with rasterio.open(learned["labels"]) as ds:
        labels = ds.read(1)
    with rasterio.open(learned["truth"]) as ds:
        truth = ds.read(1)
    # The labels really are sparse scribbles: a few percent of the pixels, never a wrong class.
    assert 0 < (labels > 0).mean() < 0.05
    assert np.all(labels[labels > 0] == truth[labels > 0])

    rc, out, err = run_cli(capsys, ["evaluate", "--prediction", learned["prediction"],
                                    "--truth", learned["truth"]])
    assert rc == 0, err
    result = json.loads(out)
    assert result == pipeline.evaluate(str(learned["prediction"]), str(learned["truth"]))
    with rasterio.open(learned["prediction"]) as ds:
        pred = ds.read(1)
    # every truth pixel is scored except the few the image itself marks nodata (a band at 0)
    assert result["pixels"] == int(((truth > 0) & (pred > 0)).sum())
    assert result["pixels"] >= 0.999 * (truth > 0).sum()
    assert result["miou"] >= 0.80, result["per_class_iou"]
    assert result["oa"] >= 0.90
    assert result["kappa"] >= 0.80
    # every class is found, not just the big ones
    assert all(v is not None and v >= 0.5 for v in result["per_class_iou"].values()), result

    metrics = json.loads(learned["metrics"].read_text())
    assert metrics["steps"] == LEARN_CONFIG["steps"]
    assert set(metrics["labeled_pixels"]) == {f"class {k}" for k in range(1, LEARN_CLASSES + 1)}
    assert all(n > 0 for n in metrics["labeled_pixels"].values())
    # how the map was made: a 256² raster on a CPU gets 8 views (--tta auto) and the default smoothing
    assert metrics["predict_views"] == 8 and metrics["predict_smoothing"] is True
    # map_val_*: the delivered map scored on the very pixels training held out, recomputed here from the
    # labels' own split and the whole prediction raster
    from engine.config import make_config
    from engine.metrics import confusion, scores

    _, val = split_label_array(labels, make_config("fast", seed=0, **LEARN_CONFIG).val_fraction, 0)
    assert val.any()
    expected = scores(confusion(val, pred, LEARN_CLASSES), list(metrics["labeled_pixels"]))
    assert metrics["map_val_pixels"] == expected["pixels"] == int((val > 0).sum())
    assert metrics["map_val_oa"] == expected["oa"] and metrics["map_val_miou"] == expected["miou"]
    assert metrics["map_val_confusion"] == expected["confusion"]
    # the network alone was scored on the same pixels while training
    assert metrics["val_pixels"] == metrics["map_val_pixels"]
