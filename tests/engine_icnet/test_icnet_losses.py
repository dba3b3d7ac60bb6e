"""Pseudo-label masks, masked cross-entropy, adaptive thresholds, pixel contrastive loss."""

import numpy as np
import torch
import torch.nn.functional as F

from engine.losses import (
    ClassAdaptiveThresholds,
    ClassBalance,
    PrototypeBank,
    masked_ce,
    prototype_infonce,
    pseudo_labels,
)


def _probs(rows):
    return torch.tensor(rows, dtype=torch.float32).T.reshape(1, len(rows[0]), 1, len(rows))


def test_pseudo_label_mask_scalar_and_per_class():
    # four pixels, three classes: confidences 0.95 (c0), 0.6 (c1), 0.8 (c2), 0.5 (c0)
    probs = _probs([[0.95, 0.05, 0.0], [0.3, 0.6, 0.1], [0.1, 0.1, 0.8], [0.5, 0.25, 0.25]])
    label, mask = pseudo_labels(probs, 0.0)
    assert label.flatten().tolist() == [0, 1, 2, 0]
    assert mask.all()  # threshold 0: plain argmax, the reference behaviour
    _, mask = pseudo_labels(probs, 0.9)
    assert mask.flatten().tolist() == [True, False, False, False]
    _, mask = pseudo_labels(probs, torch.tensor([0.9, 0.55, 0.85]))
    assert mask.flatten().tolist() == [True, True, False, False]


def test_masked_ce_is_normalised_by_valid_pixels():
    logits = torch.zeros(1, 2, 2, 2)  # uniform: CE = log 2 everywhere
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    mask = torch.tensor([[[True, False], [False, False]]])
    valid = torch.tensor([[[True, True], [False, False]]])
    loss = masked_ce(logits, target, mask, valid)
    assert torch.isclose(loss, torch.log(torch.tensor(2.0)) / 2)


def test_class_balance_weighs_a_flooding_class_down_and_a_dwindling_one_up():
    bal = ClassBalance(4, momentum=0.0, cap=5.0)
    assert torch.equal(bal.weights(), torch.ones(4))  # nothing seen yet
    labels = torch.tensor([[0, 0, 1, 1, 2, 2, 3, 3]])
    bal.update(labels, torch.ones_like(labels, dtype=torch.bool))
    assert torch.allclose(bal.weights(), torch.ones(4))  # balanced pseudo-labels: nothing changes
    labels = torch.tensor([[0] * 14 + [1] * 4 + [2] * 2])  # class 0 floods; class 3 absent
    mask = torch.ones_like(labels, dtype=torch.bool)
    mask[0, :2] = False  # masked pixels do not count: 12 / 4 / 2
    bal.update(labels, mask)
    w = bal.weights()
    assert torch.allclose(w[:3], torch.tensor([18 / 36, 18 / 12, 18 / 6])) and w[3] == 1.0
    share = torch.tensor([12, 4, 2]) / 18
    assert torch.isclose((share * w[:3]).sum(), torch.tensor(1.0))  # mean weight per pixel stays 1
    bal.update(torch.tensor([[0] * 99 + [1]]), torch.ones(1, 100, dtype=torch.bool))
    w = bal.weights()  # two classes seen now, shares 0.99 / 0.01: the rare one's 50 is clipped to cap
    assert torch.isclose(w[0], torch.tensor(1 / 1.98)) and w[1] == 5.0
    # the weights reach the loss: per pixel, by its target class
    logits = torch.randn(1, 4, 2, 3)
    target = torch.tensor([[[0, 1, 2], [3, 0, 1]]])
    mask = torch.ones(1, 2, 3, dtype=torch.bool)
    cw = torch.tensor([0.5, 2.0, 1.0, 3.0])
    ce = F.cross_entropy(logits, target, reduction="none")
    assert torch.isclose(masked_ce(logits, target, mask, class_weight=cw), (ce * cw[target]).sum() / 6)


def test_class_adaptive_thresholds_lower_for_unsure_classes():
    t = ClassAdaptiveThresholds(3, base=0.9, floor=0.5, momentum=0.0)
    assert torch.allclose(t.thresholds(), torch.full((3,), 0.9))  # nothing seen yet: the base
    t.update(_probs([[0.96, 0.02, 0.02], [0.2, 0.72, 0.08]]))
    thr = t.thresholds()
    bar = (0.96 + 0.72) / 2  # the teacher's mean confidence is below the base: the bar sits there
    assert torch.isclose(thr[0], torch.tensor(bar))  # the surest class gets the whole bar
    assert torch.isclose(thr[1], torch.tensor(bar * 0.72 / 0.96))  # a less sure class a lower one
    assert thr[2] == 0.9  # never predicted: base
    t.update(_probs([[0.99, 0.005, 0.005], [0.02, 0.97, 0.01]]))
    assert torch.allclose(t.thresholds()[:2], torch.tensor([0.9, 0.9 * 0.97 / 0.99]))  # capped at base


def _clustered(n_per_class=64, classes=4, dim=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(classes, dim, generator=g), dim=1)
    target = torch.arange(classes).repeat_interleave(n_per_class)
    emb = F.normalize(centres[target] + 0.3 * torch.randn(len(target), dim, generator=g), dim=1)
    # as (N=1, D, H=1, W=P) maps
    return emb.T.reshape(1, dim, 1, -1), target.reshape(1, 1, -1)


def test_contrastive_loss_lower_for_aligned_than_shuffled():
    emb, target = _clustered()
    bank = PrototypeBank(4, emb.shape[1], momentum=0.0)
    mask = torch.ones_like(target, dtype=torch.bool)
    bank.update(emb, target, mask)
    assert bank.seen.all()
    assert torch.allclose(bank.protos.norm(dim=1), torch.ones(4))
    aligned = prototype_infonce(emb, target, mask, bank, temperature=0.1)
    shuffled = target.flatten()[torch.randperm(target.numel(), generator=torch.Generator().manual_seed(1))]
    mixed = prototype_infonce(emb, shuffled.reshape(target.shape), mask, bank, temperature=0.1)
    assert aligned < 0.5 * mixed


def test_contrastive_loss_ignores_unmasked_and_unseen_classes():
    emb, target = _clustered(classes=3)
    bank = PrototypeBank(5, emb.shape[1])
    assert prototype_infonce(emb, target, torch.ones_like(target, dtype=torch.bool), bank) == 0  # empty bank
    bank.update(emb, target, torch.ones_like(target, dtype=torch.bool))
    assert bank.seen.tolist() == [True, True, True, False, False]
    none = torch.zeros_like(target, dtype=torch.bool)
    assert prototype_infonce(emb, target, none, bank) == 0
    loss = prototype_infonce(emb.requires_grad_(), target, ~none, bank, max_pixels=10)
    loss.backward()
    assert torch.isfinite(loss) and emb.grad is not None


def test_pool_bars_rank_rule_takes_each_class_top_share():
    from engine.methods.icnet import pool_bars

    rng = np.random.default_rng(0)
    cls = np.repeat(np.array([1, 2, 0], np.uint8), [800, 200, 50]).reshape(21, 50)
    # class 1 confident, class 2 (rarer) unsure in absolute terms; 0 = invalid pixels
    conf = np.where(cls == 1, rng.uniform(0.6, 1.0, cls.shape), rng.uniform(0.1, 0.3, cls.shape))
    conf = conf.astype(np.float32)
    thr = np.array([0.9, 0.9], np.float32)
    only_thr = pool_bars([(cls, conf)], thr, 0.0)
    assert only_thr[0] == np.inf and np.allclose(only_thr[1:], 0.9)
    assert (conf[cls == 2] >= only_thr[2]).sum() == 0  # a fixed threshold starves the unsure class
    bars = pool_bars([(cls, conf)], thr, 0.25)
    for v in (1, 2):
        share = (conf[cls == v] >= bars[v]).mean()
        assert abs(share - 0.25) < 0.02, (v, share)  # the top quarter of each class, rare one too
    assert (conf[cls == 0] >= bars[0]).sum() == 0  # invalid pixels never join
    # a class whose threshold is already lower than its rank bar keeps the threshold
    low = pool_bars([(cls, conf)], np.array([0.5, 0.9], np.float32), 0.25)
    assert low[1] == np.float32(0.5)
