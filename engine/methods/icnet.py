"""ICNet: two students that teach each other through each other's EMA teacher (METHODS.md §1).

Every step: one labeled batch for both students, one unlabeled batch seen in a weak view (flips and
90° turns) and a strong view (+ colour/band jitter and noise, engine.augment.strong_view).

* supervised: sparse cross-entropy of both students on the labeled tiles;
* unsupervised, alternating by step parity: on even steps student A learns the strong view against the
  pseudo-labels of B's teacher on the weak view, on odd steps B against A's teacher. A student is
  never taught by its own teacher, which keeps the two models different;
* one SGD step per student (gradient values clipped), then both teachers take their EMA step.

``--icnet-mode reference`` is that and nothing more (hard argmax pseudo-labels, weight 1, teacher B
predicts). ``improved`` adds, each switchable (config.ICNetConfig): confidence-masked, class-adaptive
pseudo-labels; CutMix between unlabeled tiles; a pixel-to-prototype contrastive loss on a projection
head; iterative rounds (the teachers' ensemble, its probabilities smoothed edge-aware (engine.smooth),
refreshes a pseudo-label pool -- each class's most confident pixels, a share that widens every round --
that fills the pixels the current teacher is unsure of, and the LR schedule restarts; ``--reseed`` also
re-initialises the weaker student); and prediction from the mean softmax of both teachers. The
pseudo-label loss weighs ``unsup_weight`` (0.25) of the supervised loss, and per class against that
class's share of the pseudo-labels (``balance_unsup``, losses.ClassBalance): self-training otherwise
confirms whatever lead one class takes over a neighbour until it swallows it.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.augment import band_jitter, cutmix, cutmix_boxes, random_dihedral, rgb_colour_jitter, strong_view
from engine.data import Chip, TileSampler
from engine.ema import EMATeacher
from engine.losses import (
    ClassAdaptiveThresholds,
    ClassBalance,
    PrototypeBank,
    masked_ce,
    prototype_infonce,
    pseudo_labels,
)
from engine.models import build_model
from engine.predict import DIHEDRAL_VIEWS, auto_views, predict_array, view_probs
from engine.runtime import NEVER_CANCELLED
from engine.smooth import EdgeAwareSmoothing
from engine.training import Method, evaluate_chips, load_matching, poly_lr, sparse_ce, to_batch


def pool_bars(preds, thresholds: np.ndarray, share: float) -> np.ndarray:
    """Per-class confidence a pixel needs to join the pseudo-label pool, indexed by class value (0..K;
    0 = invalid, never pooled).

    ``preds``: (classes, confidence) arrays of the ensemble over the chips; ``thresholds``: (K,) the
    adaptive confidence thresholds. A pixel joins if its confidence passes its class's threshold, *or*
    ranks in the most confident ``share`` of the pixels predicted as that class (the iterative rounds
    widen ``share`` each round: a curriculum). The rank rule does not depend on how calibrated the
    ensemble's softmax is -- two averaged teachers are often unsure in absolute terms on an image with
    many classes while still ranking their correct pixels first -- and every class gets pool pixels in
    proportion to its predicted area, so rare classes are not starved.
    """
    k = len(thresholds)
    bars = np.full(k + 1, np.inf, np.float32)
    bars[1:] = thresholds
    if share > 0:
        cls = np.concatenate([c[c > 0] for c, _ in preds])
        conf = np.concatenate([f[c > 0] for c, f in preds])
        for v in range(1, k + 1):
            mine = conf[cls == v]
            if len(mine):
                bars[v] = min(bars[v], float(np.quantile(mine, 1.0 - share)))
    return bars


class Student(nn.Module):
    """A segmentation network, plus a projection head for the contrastive loss when it is used."""

    def __init__(self, cfg, proj_dim: int = 0, band_axes: np.ndarray | None = None):
        super().__init__()
        self.net = build_model(cfg, band_axes=band_axes)
        width = self.net.decoder.out_channels
        self.proj = nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(width, proj_dim, 1)) if proj_dim else None

    def forward(self, x):
        """Logits and unit-length pixel embeddings (None without a projection head)."""
        f = self.net.features(x)
        emb = F.normalize(self.proj(f), dim=1) if self.proj is not None else None
        return self.net.head(f), emb


def labeled_view(x: torch.Tensor, generator=None) -> torch.Tensor:
    """The labeled tiles' jitter: brightness/contrast 0.2 and hue 0.2 for RGB, per band otherwise."""
    if x.shape[1] == 3:
        return rgb_colour_jitter(x, 0.2, 0.2, 0.0, 0.2, 0.0, generator=generator)
    return band_jitter(x, 0.2, 0.2, generator=generator)


class ICNet(Method):
    name = "icnet"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        self.ic = ic = cfg.icnet.resolved()
        self.gen = torch.Generator().manual_seed(cfg.seed)
        # A starts from the same initialisation the supervised baseline would; B from another one.
        self.students = [self._new_student(cfg.seed), self._new_student(cfg.seed + 7919)]
        self.teachers = [EMATeacher(s, ic.ema_cap, ic.own_statistics) for s in self.students]
        self.opts = [self._sgd(s) for s in self.students]
        k = data.num_classes
        self.adaptive = (ClassAdaptiveThresholds(k, ic.conf_threshold)
                         if ic.conf_mask and ic.class_adaptive else None)
        self.bank = PrototypeBank(k, ic.proj_dim) if ic.contrastive_weight > 0 else None
        self.balance = ClassBalance(k) if ic.balance_unsup else None
        self.round_len = math.ceil(cfg.steps / max(ic.rounds, 1))
        self.round = 0
        self.pool: TileSampler | None = None  # pseudo-labeled tiles, from round 2 on
        self.smoothing = (EdgeAwareSmoothing.fit((c.x, c.valid) for c in data.chips)
                          if ic.pool_smoothing or ic.pseudo_smoothing else None)

    # ------------------------------------------------------------------ set-up pieces
    def _new_student(self, seed: int) -> Student:
        torch.manual_seed(seed)
        proj = self.ic.proj_dim if self.ic.contrastive_weight > 0 else 0
        return Student(self.cfg.model, proj, self.band_axes).to(self.device).train()

    def _sgd(self, student: Student) -> torch.optim.Optimizer:
        return torch.optim.SGD(student.parameters(), lr=self.cfg.lr, momentum=self.cfg.momentum,
                               weight_decay=self.cfg.weight_decay)

    def optimizers(self):
        return self.opts

    def ensemble(self):
        nets = [t.model.net for t in self.teachers]
        return nets if self.ic.ensemble else nets[1:]

    def refreshed_teachers(self):
        return self.teachers if self.ic.own_statistics else []

    def warm_start(self, members):
        """Student A from the model's first member, B from its last (its two teachers, or one for a
        model saved with a single teacher); the teachers restart as copies of their students."""
        fresh = []
        for student, teacher, state in zip(self.students, self.teachers, (members[0], members[-1]),
                                           strict=True):
            fresh = load_matching(student.net, state)
            teacher.reset(student)
        return fresh

    def _thresholds(self, probs: torch.Tensor, valid: torch.Tensor):
        if not self.ic.conf_mask:
            return 0.0
        if self.adaptive is None:
            return self.ic.conf_threshold
        self.adaptive.update(probs, valid)
        return self.adaptive.thresholds()

    # ------------------------------------------------------------------ one step
    def train_step(self, step, total):
        ic, cfg = self.ic, self.cfg
        if ic.rounds > 1:
            if step > 1 and (step - 1) % self.round_len == 0:
                self._next_round()
            lr = poly_lr(cfg.lr, step - self.round * self.round_len, self.round_len)
            for opt in self.opts:
                for g in opt.param_groups:
                    g["lr"] = lr
        x_l, y = to_batch(self.data.sampler.labeled(cfg.batch_size), self.device)
        x_l, y = random_dihedral(x_l, y, generator=self.gen)
        x_l = labeled_view(x_l, self.gen)
        x_u, valid, pool_y = self._unlabeled()
        x_u, valid, pool_y = random_dihedral(x_u, valid, pool_y, generator=self.gen)
        valid = valid.bool()

        i = 0 if step % 2 == 0 else 1  # the student that learns from the other's teacher this step
        teacher = self.teachers[1 - i]
        t_logits, t_emb = teacher(x_u)
        probs = torch.softmax(t_logits.float(), dim=1)
        extra = DIHEDRAL_VIEWS[1:ic.teacher_views]  # the identity view is t_logits
        if extra:  # the other views, each turned back, averaged with it
            probs = (probs + view_probs(lambda v: teacher(v)[0], x_u, extra)) / (1 + len(extra))
        if ic.pseudo_smoothing:
            probs = torch.stack([self.smoothing(p, x, v) for p, x, v in zip(probs, x_u, valid, strict=True)])
        pl, mask = pseudo_labels(probs, self._thresholds(probs, valid))
        mask &= valid
        if self.pool is not None:  # the pool fills the pixels this teacher is unsure of
            from_pool = ~mask & (pool_y > 0)
            pl = torch.where(from_pool, pool_y.long() - 1, pl)
            mask |= from_pool
        if self.bank is not None:
            self.bank.update(t_emb, pl, mask)
        x_s = strong_view(x_u, self.gen)
        if ic.cutmix:
            boxes = cutmix_boxes(len(x_s), *x_s.shape[-2:], p=ic.cutmix_p, generator=self.gen)
            x_s, pl, mask, valid = cutmix(boxes, x_s, pl, mask, valid)

        n = len(x_l)
        logits_i, emb_i = self.students[i](torch.cat([x_l, x_s]))
        logits_j, _ = self.students[1 - i](x_l)
        sup = sparse_ce(logits_i[:n], y) + sparse_ce(logits_j, y)
        class_weight = None
        if self.balance is not None:
            self.balance.update(pl, mask)
            class_weight = self.balance.weights()
        unsup = masked_ce(logits_i[n:], pl, mask, valid, class_weight)
        # --supervised-first: round 1 from the labels alone (its smoothed map seeds the round-2 pool)
        w_unsup = 0.0 if ic.supervised_first and self.round == 0 and ic.rounds > 1 else 1.0
        loss = sup + w_unsup * ic.unsup_weight * unsup
        kept = (mask.sum() / valid.sum().clamp(min=1)).item()
        logs = {"sup": sup.item(), "unsup": unsup.item(), "mask": kept,
                "round": float(self.round + 1)}
        if self.bank is not None:
            target = torch.cat([y.long() - 1, pl])
            use = torch.cat([y > 0, mask])
            contrast = prototype_infonce(emb_i, target, use, self.bank, ic.temperature, generator=self.gen)
            loss = loss + w_unsup * ic.contrastive_weight * contrast
            logs["contrast"] = contrast.item()

        for opt in self.opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for student, opt, teacher in zip(self.students, self.opts, self.teachers, strict=True):
            if ic.clip_value > 0:
                nn.utils.clip_grad_value_(student.parameters(), ic.clip_value)
            opt.step()
            teacher.update(student)
        logs["loss"] = loss.item()
        return logs

    def _unlabeled(self):
        """Unlabeled tiles (x, valid, pool labels): anywhere in the chips, or from the pool's
        class-balanced sampler once it exists (its labels: true ones + confident ensemble ones)."""
        n = self.cfg.unlabeled_batch_size
        if self.pool is None:
            x, valid = self.data.sampler.unlabeled(n)
            x, valid = to_batch((x, valid), self.device)
            return x, valid, torch.zeros(valid.shape, dtype=torch.uint8, device=self.device)
        x, pool_y = to_batch(self.pool.labeled(n), self.device)
        return x, x.abs().sum(1) > 0, pool_y

    # ------------------------------------------------------------------ iterative rounds
    def _next_round(self) -> None:
        """Refresh the pseudo-label pool from both teachers; with ``reseed``, re-initialise the weaker
        student."""
        self.round += 1
        nets = [t.model.net for t in self.teachers]
        thr = self.adaptive.thresholds() if self.adaptive is not None else torch.full(
            (self.data.num_classes,), self.ic.conf_threshold)
        smooth = self.smoothing if self.ic.pool_smoothing else None
        views = auto_views(sum(c.valid.size for c in self.data.chips), self.device) if self.ic.pool_tta else 1
        cancel = getattr(self, "cancel", NEVER_CANCELLED)  # (set by training.fit)
        preds = [predict_array(nets, chip.x, chip.valid, self.device, views=views, smooth=smooth,
                               cancel=cancel) for chip in self.data.chips]
        bars = pool_bars(preds, thr.numpy(), min(self.ic.pool_fraction * self.round, 0.9))
        pool_chips = []
        for chip, (cls, conf) in zip(self.data.chips, preds, strict=True):
            keep = chip.valid & (conf >= bars[cls.astype(int)])
            pooled = chip.train.copy()
            pooled[(pooled == 0) & keep] = cls[(pooled == 0) & keep]
            pc = Chip(chip.row, chip.col, chip.x, chip.valid, pooled, chip.val)
            pc.index()
            pool_chips.append(pc)
        self.pool = TileSampler(pool_chips, self.cfg.tile_size, self.cfg.seed + self.round)
        if self.ic.reseed:
            self._reseed_weaker(nets, preds)

    def _reseed_weaker(self, nets, preds) -> None:
        """Re-initialise the student whose teacher is weaker: lower validation mIoU (labeled training
        pixels when there is no validation), ties broken by lower agreement with the ensemble."""
        agree = torch.zeros(2)
        for chip, (cls, _) in zip(self.data.chips, preds, strict=True):
            for m, net in enumerate(nets):
                own, _ = predict_array([net], chip.x, chip.valid, self.device)
                agree[m] += float(((own == cls) & chip.valid).sum())
        checks = self.data.val_chips or [Chip(c.row, c.col, c.x, c.valid, c.train, c.train)
                                         for c in self.data.chips if c.train.any()]
        score = [evaluate_chips([net], checks, self.data.num_classes, self.device,
                                self.data.class_names)["miou"] for net in nets]
        weaker = min(range(2), key=lambda m: (score[m], agree[m]))
        self.students[weaker] = self._new_student(self.cfg.seed + 7919 * (self.round + 1) + weaker)
        self.teachers[weaker] = EMATeacher(self.students[weaker], self.ic.ema_cap, self.ic.own_statistics)
        self.opts[weaker] = self._sgd(self.students[weaker])
