"""Patch-level SSIM loss between a softmax prediction and one-hot sparse labels (METHODS.md §2).

For every class, SSIM compares the local mean, variance and covariance of the predicted probability
map and of the label's one-hot map inside an 11×11 Gaussian window (σ = 1.5, C1 = 0.01², C2 = 0.03²).
It rewards getting the *structure* of a region right (a whole field, a road's two edges), which
per-pixel cross-entropy does not see. With sparse labels the one-hot map is only known where the
analyst painted, so a window counts only when every pixel under it is labeled: painted blobs and filled
polygons give many such windows, thin scribbles and single points give none (the loss is then 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

C1 = 0.01 ** 2
C2 = 0.03 ** 2


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """A normalised (size, size) Gaussian kernel."""
    t = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def _local_mean(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Per-channel weighted local mean over 'valid' windows: (B, K, H, W) -> (B, K, H-s+1, W-s+1)."""
    k = x.shape[1]
    w = window.to(x)[None, None].expand(k, 1, *window.shape)
    return F.conv2d(x, w, groups=k)


def full_windows(labels: torch.Tensor, size: int = 11) -> torch.Tensor:
    """(B, H-s+1, W-s+1) bool: windows whose every pixel is labeled (label > 0)."""
    lab = (labels > 0).float()[:, None]
    count = F.avg_pool2d(lab, size, stride=1) * (size * size)
    return count[:, 0] > size * size - 0.5


def ssim_map(probs: torch.Tensor, onehot: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Per-class SSIM over 'valid' windows: (B, K, H-s+1, W-s+1)."""
    mu_p, mu_t = _local_mean(probs, window), _local_mean(onehot, window)
    var_p = _local_mean(probs * probs, window) - mu_p ** 2
    var_t = _local_mean(onehot * onehot, window) - mu_t ** 2
    cov = _local_mean(probs * onehot, window) - mu_p * mu_t
    num = (2 * mu_p * mu_t + C1) * (2 * cov + C2)
    den = (mu_p ** 2 + mu_t ** 2 + C1) * (var_p + var_t + C2)
    return num / den


def ssim_loss(probs: torch.Tensor, labels: torch.Tensor, size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Mean of 1 − SSIM(probs_k, onehot_k) over classes and over the fully labeled windows.

    ``probs``: (B, K, H, W) class probabilities (softmax of the logits); ``labels``: (B, H, W) with
    classes 1..K and 0 = unlabeled. Returns a scalar that is 0 when no window is fully labeled (still
    attached to the graph, so it can always be added to a loss).
    """
    if probs.shape[-1] < size or probs.shape[-2] < size:
        return probs.sum() * 0.0
    keep = full_windows(labels, size)
    if not keep.any():
        return probs.sum() * 0.0
    k = probs.shape[1]
    onehot = F.one_hot((labels.long() - 1).clamp_min(0), k).permute(0, 3, 1, 2).to(probs)
    s = ssim_map(probs, onehot, gaussian_window(size, sigma).to(probs.device))
    return (1 - s).mean(1)[keep].mean()
