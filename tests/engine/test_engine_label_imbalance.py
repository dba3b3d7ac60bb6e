"""``imbalance_cap`` R (off by default) caps the labels' class imbalance: a class with fewer than 1/R of
the largest class's labeled pixels is weighed up to that share; counts within R× of each other train
unweighted, exactly as with the cap off."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from engine.config import make_config
from engine.methods.supervised import Supervised
from engine.training import imbalance_cap_weights, label_counts


def _chips(counts):
    return [SimpleNamespace(class_pixels={c + 1: np.arange(n) for c, n in enumerate(counts) if n > 0})]


def _supervised(counts, **overrides):
    cfg = make_config("fast", in_channels=3, num_classes=len(counts), **overrides)
    data = SimpleNamespace(chips=_chips(counts), num_classes=len(counts))
    return Supervised(cfg, data, torch.device("cpu"))


def test_cap_is_off_by_default():
    # measured worse than no weights on synthetic block-plus-scribbles labels (bench/label_imbalance.py)
    assert make_config("fast").imbalance_cap == 0.0
    assert make_config("balanced").imbalance_cap == 0.0
    assert _supervised([2500, 25]).class_weight is None


def test_counts_within_the_cap_give_no_weights():
    # the bundled sample's counts (941..2,747) and equal counts: nothing changes, no weight tensor at all
    assert imbalance_cap_weights([2747, 1747, 999, 941, 1815], 10.0) is None
    assert imbalance_cap_weights([50] * 16, 10.0) is None
    assert imbalance_cap_weights([1000, 100], 10.0) is None  # exactly 1/R: not below
    assert imbalance_cap_weights([1000, 0, 200], 10.0) is None  # a class without pixels does not count
    assert _supervised([2747, 1747, 999, 941, 1815], imbalance_cap=10.0).class_weight is None


def test_a_class_far_behind_is_lifted_to_one_tenth_of_the_largest():
    w = imbalance_cap_weights([2500, 25, 400, 0], 10.0)
    assert w is not None
    assert w.tolist() == pytest.approx([1.0, (2500 / 10) / 25, 1.0, 1.0])
    assert float(w[1]) * 25 == pytest.approx(2500 / 10)  # its effective count: 1/R of the largest
    sup = _supervised([2500, 25, 400], imbalance_cap=10.0)
    assert sup.class_weight.tolist() == pytest.approx([1.0, 10.0, 1.0])
    # counted over every chip
    chips = [SimpleNamespace(class_pixels={1: np.arange(2000), 2: np.arange(5)}),
             SimpleNamespace(class_pixels={1: np.arange(500), 2: np.arange(20)})]
    assert label_counts(chips, 2).tolist() == [2500, 25]


def test_cap_zero_disables_and_balance_labels_keeps_its_meaning():
    assert imbalance_cap_weights([2500, 25], 0.0) is None
    assert _supervised([2500, 25], imbalance_cap=0.0).class_weight is None
    # --balance-labels: the inverse share (label_class_weights), mean weight 1 per labeled pixel
    full = _supervised([2500, 25], imbalance_cap=10.0, balance_labels=True).class_weight
    assert full.tolist() != pytest.approx([1.0, 10.0])
    assert float(full[1]) / float(full[0]) > 10.0
    assert float((full * torch.tensor([2500.0, 25.0])).sum()) == pytest.approx(2525.0)
