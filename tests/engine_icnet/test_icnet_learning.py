"""ICNet's unlabeled pixels help: with a few labels it beats the supervised network at the same steps.

The scene: 128 × 128 px, 4 bands, 3 classes, one 10-px scribble per class (about 0.5 % of the pixels
labeled); small networks (widths 8-16-32), 32-px tiles, 300 steps of the default settings, one torch
thread; mIoU of each method's own one-view map (no smoothing) against the full truth. How it was
chosen (scene seeds 0-3, supervised vs icnet mIoU at unsup weight 1 / 0.25 / 0.25 class-balanced --
those three measured with two iterative rounds, the default then -- / today's default, 0.25
class-balanced without rounds; the last column is reproduced with ``PYTHONPATH=. python
tests/engine_icnet/test_icnet_learning.py --seeds 0 1 2 3 --unsup-weight 0.25``):

    seed 0: 0.684 vs 0.754 / 0.798 / 0.809 / 0.741      seed 2: 0.678 vs 0.901 / 0.815 / 0.860 / 0.868
    seed 1: 0.931 vs 0.963 / 0.960 / 0.956 / 0.960      seed 3: 0.788 vs 0.875 / 0.842 / 0.849 / 0.863

Those figures are from an earlier code. Measured again on 2026-12-07 (``--seeds 0 1 2 3``), supervised vs
icnet: seed 0 0.648 vs 0.738, seed 1 0.922 vs 0.955, seed 2 0.697 vs 0.767, seed 3 0.859 vs 0.890; with
teachers that keep batch-norm statistics of their own (``--own-statistics``, engine.ema) seeds 0 / 2 give
0.583 / 0.631, which is why the improved mode does not use them.

ICNet's EMA teachers need a schedule long enough to follow the students, hence 300 steps. The test
takes seeds 0 and 2, where the labels alone leave the most to learn. It can fail: with the pseudo-label
loss off (``--unsup-weight 0``) seed 0 gives 0.684 vs 0.718 (0.710 with two rounds), under the 0.05
margin; seed 2 stays ahead then (0.859), as the unlabeled pixels still reach the network through the
contrastive loss's pseudo-labelled pixels and the two EMA teachers predict.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.config import make_config
from engine.data import Chip, TileSampler
from engine.methods import method_class
from engine.metrics import confusion, scores
from engine.predict import predict_array
from engine.synthetic import scene, scribbles
from engine.training import TrainData, poly_lr, refresh_teachers

SIZE, BANDS, CLASSES, STEPS = 128, 4, 3, 300


def scene_with_scribbles(seed: int):
    img, truth = scene(SIZE, SIZE, bands=BANDS, classes=CLASSES, seed=seed)
    return img, truth, scribbles(truth, 1, length=10, seed=seed + 1)


def train_and_score(method: str, seed: int, unsup_weight: float | None = None,
                    own_statistics: bool = False) -> float:
    img, truth, labels = scene_with_scribbles(seed)
    chip = Chip(0, 0, img.astype(np.float32), np.ones(truth.shape, bool), labels, np.zeros_like(labels))
    chip.index()
    data = TrainData([chip], TileSampler([chip], 32, 0), CLASSES, BANDS, ["a", "b", "c"])
    cfg = make_config("fast", method=method, steps=STEPS, tile_size=32, batch_size=4, val_fraction=0, seed=0)
    cfg.unlabeled_batch_size = 4
    cfg.model.widths = (8, 16, 32)
    cfg.model.in_channels, cfg.model.num_classes = BANDS, CLASSES
    if unsup_weight is not None:
        cfg.icnet.unsup_weight = unsup_weight
    cfg.icnet.own_statistics = own_statistics
    torch.manual_seed(0)
    m = method_class(method)(cfg, data, torch.device("cpu"))
    for step in range(1, STEPS + 1):  # the schedule training.fit applies
        for opt in m.optimizers():
            for g in opt.param_groups:
                g["lr"] = poly_lr(cfg.lr, step, STEPS) * g.get("lr_scale", 1.0)
        m.train_step(step, STEPS)
    refresh_teachers(m)  # as fit() does before it saves
    pred, _ = predict_array(m.ensemble(), chip.x, chip.valid, torch.device("cpu"))
    return scores(confusion(truth, pred, CLASSES))["miou"]


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("seed", [0, 2])
def test_icnet_beats_supervised_with_few_labels_at_the_same_steps(seed, one_thread):  # noqa: ARG001
    sup, icnet = train_and_score("supervised", seed), train_and_score("icnet", seed)
    assert (scene_with_scribbles(seed)[2] > 0).mean() < 0.01  # a few labels: under 1 % of the pixels
    assert icnet > sup + 0.05, (sup, icnet)


if __name__ == "__main__":  # the table in the docstring
    import argparse

    ap = argparse.ArgumentParser(description="supervised vs icnet mIoU on the test's synthetic scenes")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 2])
    ap.add_argument("--unsup-weight", type=float, nargs="+", default=[None])
    ap.add_argument("--own-statistics", action="store_true", help="teachers keep statistics of their own")
    a = ap.parse_args()
    torch.set_num_threads(1)
    for seed in a.seeds:
        row = [f"{train_and_score('icnet', seed, w, a.own_statistics):.3f}" for w in a.unsup_weight]
        print(f"seed {seed}: supervised {train_and_score('supervised', seed):.3f} vs icnet {' / '.join(row)}",
              flush=True)
