"""Segmentation metrics from a confusion matrix: OA, mIoU, Cohen's kappa, per-class IoU."""

from __future__ import annotations

import numpy as np


def confusion(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = truth class 1..K, cols = predicted class 1..K; truth 0 is ignored."""
    t = truth.ravel().astype(np.int64)
    p = pred.ravel().astype(np.int64)
    keep = (t > 0) & (t <= num_classes) & (p > 0) & (p <= num_classes)
    idx = (t[keep] - 1) * num_classes + (p[keep] - 1)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def scores(cm: np.ndarray, names: list[str] | None = None) -> dict:
    """OA, mIoU (over classes present in truth or prediction), kappa, per-class IoU, confusion."""
    cm = cm.astype(np.float64)
    total = cm.sum()
    k = cm.shape[0]
    names = names or [f"class {i}" for i in range(1, k + 1)]
    if total == 0:
        return {"oa": None, "miou": None, "kappa": None, "pixels": 0, "per_class_iou": {},
                "confusion": cm.astype(int).tolist()}
    tp = np.diag(cm)
    rows, cols = cm.sum(1), cm.sum(0)
    union = rows + cols - tp
    present = rows > 0  # classes that appear in the truth
    iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
    oa = tp.sum() / total
    pe = (rows * cols).sum() / total**2
    kappa = (oa - pe) / (1 - pe) if pe < 1 else 1.0
    return {
        "oa": float(oa),
        "miou": float(np.nanmean(iou[present])) if present.any() else None,
        "kappa": float(kappa),
        "pixels": int(total),
        "per_class_iou": {names[i]: (None if np.isnan(iou[i]) or not present[i] else float(iou[i]))
                          for i in range(k)},
        "confusion": cm.astype(int).tolist(),
    }
