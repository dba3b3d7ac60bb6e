"""Supervised baseline: the segmentation network trained on the labeled pixels alone.

Sparse cross-entropy on augmented labeled tiles (flips, 90° rotations, band-wise brightness and
contrast), SGD with momentum and poly decay; the moving average of the weights predicts
(``--weight-average``). The same network and schedule the semi-supervised methods use, so their gains
are measured against exactly this.
"""

from __future__ import annotations

import torch

from engine.augment import band_jitter, random_dihedral
from engine.ema import WeightAverage
from engine.models import build_model
from engine.training import (
    Method,
    imbalance_cap_weights,
    label_class_weights,
    label_counts,
    sparse_ce,
    to_batch,
)


class Supervised(Method):
    name = "supervised"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        torch.manual_seed(cfg.seed)
        self.net = build_model(cfg.model, imagenet=True, band_axes=self.band_axes).to(device).train()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay)
        self.average = WeightAverage(self.net, cfg.weight_average)
        if cfg.balance_labels:  # full inverse-share weighting
            self.class_weight = label_class_weights(data.chips, data.num_classes).to(device)
        else:  # only a class far behind the largest is lifted (None: counts within the cap, no weights)
            w = imbalance_cap_weights(label_counts(data.chips, data.num_classes), cfg.imbalance_cap)
            self.class_weight = None if w is None else w.to(device)

    def optimizers(self):
        return [self.opt]

    def train_step(self, step, total):
        x, y = to_batch(self.data.sampler.labeled(self.cfg.batch_size), self.device)
        x, y = random_dihedral(x, y)
        x = band_jitter(x)
        loss = sparse_ce(self.net(x), y, self.class_weight)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.average.update()
        return {"loss": loss.item()}

    def ensemble(self):
        return [self.average.model()]
