"""The shared training loop: schedule, validation, best checkpoint, progress and cancel.

A method (supervised, icnet, ...) is a small class with ``train_step`` and ``ensemble``; everything
around a step lives here once, so each method reads as one page.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.config import TrainConfig
from engine.data import Chip, TileSampler, stem_axes
from engine.ema import EMATeacher
from engine.metrics import confusion, scores
from engine.predict import predict_array
from engine.progress import Reporter
from engine.runtime import NEVER_CANCELLED, CancelToken


@dataclass
class TrainData:
    """What every method trains from."""

    chips: list[Chip]
    sampler: TileSampler
    num_classes: int
    bands: int
    class_names: list[str]

    @property
    def val_chips(self) -> list[Chip]:
        return [c for c in self.chips if c.val.any()]


def poly_lr(base: float, step: int, total: int, power: float = 0.9) -> float:
    """Polynomial decay from ``base`` to 0 over ``total`` steps."""
    return base * (1 - (step - 1) / total) ** power


def sparse_ce(logits: torch.Tensor, labels: torch.Tensor,
              class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy over labeled pixels only (label 0 = unlabeled is ignored); ``class_weight`` (K) weighs
    each pixel by its class (a weighted mean over the labeled pixels)."""
    target = labels.long() - 1  # classes 1..K -> 0..K-1, unlabeled -> -1
    if (target >= 0).sum() == 0:
        return logits.sum() * 0.0
    weight = None if class_weight is None else class_weight.to(logits)
    return nn.functional.cross_entropy(logits, target, weight=weight, ignore_index=-1)


def label_counts(chips, num_classes: int) -> np.ndarray:
    """Training pixels per class (K,), over all chips."""
    counts = np.zeros(num_classes, np.float64)
    for chip in chips:
        for c, pixels in chip.class_pixels.items():
            counts[c - 1] += len(pixels)
    return counts


def label_class_weights(chips, num_classes: int, cap: float = 10.0) -> torch.Tensor:
    """Per-class weights (K) that give every labeled class the same total weight in the cross-entropy:
    the inverse of its share of the training pixels, capped at ``cap``, then scaled so that the mean
    weight per labeled pixel is 1 (classes without training pixels get 0)."""
    counts = label_counts(chips, num_classes)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = counts.sum() / (present.sum() * counts[present])
    w = np.minimum(w, cap)
    w[present] *= counts.sum() / (w[present] * counts[present]).sum()
    return torch.tensor(w, dtype=torch.float32)


def imbalance_cap_weights(counts, ratio: float) -> torch.Tensor | None:
    """Per-class weights (K) that cap the labels' imbalance at ``ratio``: a class with fewer than
    (largest class's count / ``ratio``) labeled pixels gets weight (largest / ratio) / count, so it counts
    as if it had 1/``ratio`` of the largest class's pixels; every other class gets 1. None (no weighting at
    all) when no class is that far behind, or ``ratio`` <= 0 (off). Classes without pixels get 1 (they
    never occur in the loss)."""
    counts = np.asarray(counts, np.float64)
    if ratio <= 0 or not (counts > 0).any():
        return None
    floor = counts.max() / ratio
    low = (counts > 0) & (counts < floor)
    if not low.any():
        return None
    w = np.ones(len(counts))
    w[low] = floor / counts[low]
    return torch.tensor(w, dtype=torch.float32)


def to_batch(arrays, device: torch.device):
    return [torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in arrays]


def load_matching(net: nn.Module, state: dict) -> list[str]:
    """Load the tensors of ``state`` whose name and shape ``net`` shares (in place, so an optimiser keeps
    working on the same tensors); returns the names left as they were (e.g. a classifier for another
    number of classes)."""
    own = net.state_dict()
    fit = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    net.load_state_dict(fit, strict=False)
    return sorted(k for k in own if k not in fit)


def snapshot(nets: list[nn.Module]) -> list[dict]:
    return [{k: v.detach().clone().cpu() for k, v in n.state_dict().items()} for n in nets]


def evaluate_chips(nets: list[nn.Module], chips: list[Chip], num_classes: int, device: torch.device,
                   names: list[str], cell: int = 128, cancel: CancelToken = NEVER_CANCELLED) -> dict:
    """Scores on the validation pixels, predicting only the cells that hold some."""
    was_training = [n.training for n in nets]
    for n in nets:
        n.eval()
    cm = np.zeros((num_classes, num_classes), np.int64)
    for chip in chips:
        h, w = chip.val.shape
        cells = [(r, c, min(cell, h - r), min(cell, w - c)) for r in range(0, h, cell)
                 for c in range(0, w, cell) if chip.val[r:r + cell, c:c + cell].any()]
        pred, _ = predict_array(nets, chip.x, chip.valid, device, windows=cells, cancel=cancel)
        cm += confusion(chip.val, pred, num_classes)
    for n, t in zip(nets, was_training, strict=False):
        n.train(t)
    return scores(cm, names)


class Method:
    """Interface of a training method; see methods/supervised.py for the smallest one."""

    name = "method"

    def __init__(self, cfg: TrainConfig, data: TrainData, device: torch.device):
        self.cfg, self.data, self.device = cfg, data, device
        # where a spectral stem starts (None: random); give it to build_model for every fresh network
        self.band_axes = stem_axes(cfg.model, data.chips)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, step: int, total: int) -> dict[str, float]:
        raise NotImplementedError

    def ensemble(self) -> list[nn.Module]:
        """Networks whose mean softmax is the prediction (saved in the model file)."""
        raise NotImplementedError

    def refreshed_teachers(self) -> list[EMATeacher]:
        """The EMA teachers among the predicting networks, which keep batch-norm statistics of their
        own (engine.ema): fit() estimates them afresh before each validation and at the end."""
        return []

    def warm_start(self, members: list[dict]) -> list[str]:
        """Start from a saved model's networks (``members``: its ensemble's weights, e.g. the model of
        the analyst's previous run on this image) instead of a fresh initialisation; returns the names
        of the weights left fresh. A method with one network (``self.net``) loads the model's last
        member into it; methods with more override this."""
        return load_matching(self.net, members[-1])


STATISTICS_BATCHES = 8  # batches of unlabeled tiles an EMA teacher's batch-norm statistics come from


def statistics_batches(chips: list[Chip], cfg: TrainConfig, device: torch.device) -> list[torch.Tensor]:
    """The unlabeled tiles an EMA teacher's statistics are estimated from: the same every time, from a
    sampler of their own (the training's draws are not disturbed)."""
    sampler = TileSampler(chips, cfg.tile_size, cfg.seed + 65_537)
    return [torch.from_numpy(sampler.unlabeled(cfg.unlabeled_batch_size)[0]).to(device)
            for _ in range(STATISTICS_BATCHES)]


def refresh_teachers(method: Method) -> None:
    """Batch-norm statistics of each EMA teacher that keeps its own (engine.ema) from its current
    weights, on unlabeled tiles as it teaches on them."""
    teachers = method.refreshed_teachers()
    if not teachers:
        return
    batches = statistics_batches(method.data.chips, method.cfg, method.device)
    for teacher in teachers:
        teacher.refresh_statistics(batches)


def fit(method: Method, reporter: Reporter, cancel: CancelToken = NEVER_CANCELLED) -> tuple[list[dict], dict]:
    """Train for ``cfg.steps`` steps; return the best members' weights and the training metrics."""
    cfg, data = method.cfg, method.data
    total = cfg.steps
    has_val = bool(data.val_chips)
    best_state, best_scores, best_step = None, None, 0
    reporter.stage(method.name, total, message=f"training {total} steps on {method.device}")
    t0 = time.monotonic()
    report_every = max(1, min(10, total // 50))
    method.cancel = cancel  # heard inside a method's long work too (ICNet's round pool)
    for step in range(1, total + 1):
        cancel.check()
        lr = poly_lr(cfg.lr, step, total)
        for opt in method.optimizers():
            for g in opt.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
        logs = method.train_step(step, total)
        if not all(math.isfinite(v) for v in logs.values()):
            reporter.warning(f"non-finite loss at step {step}; skipping it", "nonfinite_loss")
        if step % report_every == 0 or step == total:
            lr = method.optimizers()[0].param_groups[-1]["lr"]  # as used: a method may restart it
            reporter.progress(method.name, step, total, lr=round(lr, 6),
                              **{k: round(float(v), 4) for k, v in logs.items()})
        if has_val and (step % cfg.val_every == 0 or step == total):
            refresh_teachers(method)
            s = evaluate_chips(method.ensemble(), data.val_chips, data.num_classes, method.device,
                               data.class_names, cancel=cancel)
            reporter.emit("metric", step=step, val_miou=s["miou"], val_oa=s["oa"], val_kappa=s["kappa"])
            if best_scores is None or s["miou"] >= best_scores["miou"]:  # ties: the later, more trained model
                best_state, best_scores, best_step = snapshot(method.ensemble()), s, step
    if best_state is None:
        refresh_teachers(method)
        best_state, best_step = snapshot(method.ensemble()), total
    seconds = time.monotonic() - t0
    metrics = {"train_seconds": round(seconds, 2), "steps": total, "best_step": best_step,
               "steps_per_s": round(total / max(seconds, 1e-9), 3)}
    if best_scores is not None:
        metrics.update({f"val_{k}": v for k, v in best_scores.items()})
    return best_state, metrics
