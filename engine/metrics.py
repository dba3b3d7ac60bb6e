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


# the most classes whose confusion matrix is printed as a table; a wider one stays in the JSON alone
TABLE_CLASSES = 20
NAME_WIDTH = 16  # longer class names are cut to this many characters in the table


def scores_text(result: dict, names: list[str] | None = None, limit: int = TABLE_CLASSES) -> str:
    """``scores``'s result for a person: OA, mIoU and kappa on one line, then the confusion matrix as a
    table, a row per truth class and a column per map class, of the classes that have a pixel in either
    (up to ``limit`` of them; more only say where the matrix is)."""
    cm = np.asarray(result["confusion"], dtype=np.int64)
    k = cm.shape[0] if cm.ndim == 2 else 0
    if not result["pixels"]:
        return "No pixel was scored: the map has no class wherever the truth has one."
    names = names if names is not None and len(names) == k else [f"class {i}" for i in range(1, k + 1)]
    head = (f"{result['pixels']:,} pixels scored: overall accuracy {result['oa']:.3f}, mIoU "
            f"{result['miou']:.3f}, kappa {result['kappa']:.3f}.")
    shown = [i for i in range(k) if cm[i].any() or cm[:, i].any()]
    if len(shown) > limit:
        return (f"{head}\nThe confusion matrix of {len(shown)} classes is too wide to print; it is in the "
                "JSON (\"confusion\": a row per truth class, a column per map class, in class order).")
    values = result.get("class_values") or list(range(1, k + 1))  # coded classes: each row's map value
    labels = [_cut(names[i] if names[i] == f"class {values[i]}" else f"{values[i]} {names[i]}")
              for i in shown]
    corner = "truth \\ map"
    first = max(len(corner), *(len(s) for s in labels))
    widths = [max(len(s), *(len(f"{v:,}") for v in cm[shown, i])) for s, i in zip(labels, shown, strict=True)]
    lines = [f"{head}\nConfusion matrix in pixels (rows: truth, columns: map):",
             "  ".join([corner.ljust(first), *(s.rjust(w) for s, w in zip(labels, widths, strict=True))])]
    for s, i in zip(labels, shown, strict=True):
        cells = (f"{cm[i, j]:,}".rjust(w) for j, w in zip(shown, widths, strict=True))
        lines.append("  ".join([s.ljust(first), *cells]))
    if len(shown) < k:
        lines.append(f"({k - len(shown)} class(es) with no pixel in the truth or the map left out.)")
    return "\n".join(lines)


def _cut(name: str) -> str:
    return name if len(name) <= NAME_WIDTH else name[:NAME_WIDTH - 1] + "…"
