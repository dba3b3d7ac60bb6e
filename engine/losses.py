"""Losses for semi-supervised segmentation, shared by the methods (ICNet, inpainting + ICNet).

* pseudo-labels from a teacher's softmax, masked by a confidence threshold (one for all classes, or one
  per class that adapts to how sure the teacher is about that class);
* cross-entropy on a mask of pixels, normalised by the *valid* pixel count, so the unsupervised term
  grows as the teacher becomes confident on more of the tile (as in UniMatch);
* a pixel-to-prototype contrastive loss (InfoNCE): student pixel embeddings are pulled towards the
  prototype of their (pseudo-)class and pushed from the other classes' prototypes, which are moving
  averages of the teacher's embeddings of confident pixels.

The supervised sparse cross-entropy (label 0 = unlabeled) lives in engine.training as ``sparse_ce``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pseudo_labels(probs: torch.Tensor, thresholds: float | torch.Tensor = 0.0):
    """Hard pseudo-labels (N, H, W) in 0..K-1 and the mask of pixels confident enough to use.

    ``thresholds``: one number for every class, or a (K,) tensor, one per class (indexed by the
    pseudo-label). A threshold of 0 keeps every pixel (plain argmax, the ICNet reference).
    """
    conf, label = probs.max(dim=1)
    if torch.is_tensor(thresholds):
        mask = conf >= thresholds.to(conf)[label]
    else:
        mask = conf >= thresholds
    return label, mask


def masked_ce(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
              valid: torch.Tensor | None = None, class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy on the pixels of ``mask``, summed and divided by the number of valid pixels
    (each pixel weighted by ``class_weight`` of its target class when given)."""
    target = target.clamp(min=0)
    ce = F.cross_entropy(logits, target, reduction="none")
    if class_weight is not None:
        ce = ce * class_weight.to(ce)[target]
    denom = valid.sum() if valid is not None else torch.tensor(mask.numel())
    return (ce * mask).sum() / denom.clamp(min=1)


class ClassBalance:
    """Per-class weights of the pseudo-label loss that undo the pseudo-labels' own class imbalance.

    ``share_c`` is a moving average of class c's share of the pseudo-labels in use; its weight is
    ``1 / (K_seen * share_c)``, clipped to ``[1 / cap, cap]`` (1 for every class when they are equally
    frequent). A class that floods the pseudo-labels -- the start of one class swallowing a neighbour,
    which self-training then confirms -- weighs less per pixel, a dwindling one more, while the mean
    weight per pixel stays about 1.
    """

    def __init__(self, num_classes: int, momentum: float = 0.95, cap: float = 5.0):
        self.momentum, self.cap = momentum, cap
        self.share = torch.full((num_classes,), float("nan"))

    @torch.no_grad()
    def update(self, labels: torch.Tensor, mask: torch.Tensor) -> None:
        counts = torch.bincount(labels[mask].flatten().cpu(), minlength=len(self.share)).float()
        if counts.sum() == 0:
            return
        batch = counts / counts.sum()
        self.share = torch.where(torch.isnan(self.share), batch,
                                 self.momentum * self.share + (1 - self.momentum) * batch)

    def weights(self) -> torch.Tensor:
        seen = torch.nan_to_num(self.share, nan=0.0) > 0
        w = torch.ones_like(self.share)
        if seen.any():
            w[seen] = 1.0 / (int(seen.sum()) * self.share[seen])
        return w.clamp(1.0 / self.cap, self.cap)


class ClassAdaptiveThresholds:
    """Per-class confidence thresholds that follow how sure the teacher is about each class.

    For each class c, ``m_c`` is a moving average of the teacher's mean confidence on the pixels it
    assigns to c, and ``g`` the same over all pixels. The thresholds are ``min(base, g) * m_c / max(m)``,
    clipped to ``[floor, base]`` (the FreeMatch idea, measured on pixels): while the teacher is unsure
    overall, the bar sits at its mean confidence, so pseudo-labels flow from the start instead of
    waiting for it to pass a fixed 0.9; it rises to ``base`` as the teacher grows sure. A harder (often
    rarer) class gets a lower bar than the surest one, so it is not starved of pseudo-labels.
    """

    def __init__(self, num_classes: int, base: float, floor: float = 0.5, momentum: float = 0.9):
        self.base, self.floor, self.momentum = base, floor, momentum
        self.mean_conf = torch.full((num_classes,), float("nan"))
        self.global_conf = float("nan")

    @torch.no_grad()
    def update(self, probs: torch.Tensor, valid: torch.Tensor | None = None) -> None:
        conf, label = probs.max(dim=1)
        if valid is not None:
            conf, label = conf[valid], label[valid]
        conf, label = conf.flatten().float().cpu(), label.flatten().cpu()
        if len(conf) == 0:
            return
        g = float(conf.mean())
        self.global_conf = g if self.global_conf != self.global_conf else (
            self.momentum * self.global_conf + (1 - self.momentum) * g)
        k = len(self.mean_conf)
        counts = torch.bincount(label, minlength=k).float()
        sums = torch.bincount(label, weights=conf, minlength=k)
        seen = counts > 0
        batch = sums[seen] / counts[seen]
        old = self.mean_conf[seen]
        self.mean_conf[seen] = torch.where(torch.isnan(old), batch,
                                           self.momentum * old + (1 - self.momentum) * batch)

    def thresholds(self) -> torch.Tensor:
        m = torch.nan_to_num(self.mean_conf, nan=0.0)
        if m.max() <= 0:
            return torch.full_like(m, self.base)
        t = min(self.base, self.global_conf) * m / m.max()
        t[torch.isnan(self.mean_conf)] = self.base
        return t.clamp(min=min(self.floor, self.base), max=self.base)


class PrototypeBank:
    """One unit-length prototype per class: the moving average of the teacher's pixel embeddings."""

    def __init__(self, num_classes: int, dim: int, momentum: float = 0.9):
        self.momentum = momentum
        self.protos = torch.zeros(num_classes, dim)
        self.seen = torch.zeros(num_classes, dtype=torch.bool)

    @torch.no_grad()
    def update(self, emb: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> None:
        """``emb`` (N, D, H, W) unit-length embeddings; ``target`` (N, H, W) classes; ``mask`` pixels
        to use."""
        e = emb.permute(0, 2, 3, 1)[mask].float().cpu()
        t = target[mask].cpu()
        if len(t) == 0:
            return
        k = len(self.protos)
        sums = torch.zeros_like(self.protos).index_add_(0, t, e)
        counts = torch.bincount(t, minlength=k)
        new = counts > 0
        mean = F.normalize(sums[new], dim=1)
        old = self.protos[new]
        keep = self.seen[new][:, None]
        blended = F.normalize(self.momentum * old + (1 - self.momentum) * mean, dim=1)
        self.protos[new] = torch.where(keep, blended, mean)
        self.seen |= new


def prototype_infonce(emb: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, bank: PrototypeBank,
                      temperature: float = 0.1, max_pixels: int = 4096,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """InfoNCE between student pixel embeddings and the class prototypes.

    ``emb`` (N, D, H, W) unit-length; ``target`` (N, H, W) class of each pixel; ``mask`` the pixels to
    use. Each sampled pixel's positive is its class prototype, its negatives the other classes' seen
    prototypes. At most ``max_pixels`` pixels are drawn at random (the loss is a mean, so a sample is
    an unbiased, cheaper estimate).
    """
    protos, seen = bank.protos.to(emb), bank.seen.to(emb.device)
    mask = mask & seen[target.clamp(min=0)]
    e = emb.permute(0, 2, 3, 1)[mask]
    t = target[mask]
    if len(t) == 0 or int(seen.sum()) < 2:
        return emb.sum() * 0.0
    if len(t) > max_pixels:
        pick = torch.randperm(len(t), generator=generator)[:max_pixels].to(t.device)
        e, t = e[pick], t[pick]
    logits = e @ protos.T / temperature
    logits = logits.masked_fill(~seen[None], float("-inf"))
    return F.cross_entropy(logits, t)
