"""Brush geometry in pixel space: which pixels a round brush covers when dragged along a segment.

Pure Python on bytes (no Qt, no GDAL), so it is easy to test. Coordinates are fractional (column,
row) with (0, 0) at the raster's top-left corner; pixel (c, r) covers [c, c+1) x [r, r+1). A pixel is
painted when its centre lies within half the brush diameter of the segment, and the pixels under the
segment's ends are always painted, so even a one-pixel brush leaves a mark on every click.
"""

from __future__ import annotations

import math

from .label_raster import Window

Point = tuple[float, float]


def segment_window(start: Point, end: Point, diameter: float, width: int, height: int) -> Window | None:
    """The smallest pixel window holding the brush swept from ``start`` to ``end``; None if off-raster."""
    radius = max(diameter, 1.0) / 2.0
    col0 = max(int(math.floor(min(start[0], end[0]) - radius)), 0)
    row0 = max(int(math.floor(min(start[1], end[1]) - radius)), 0)
    col1 = min(int(math.ceil(max(start[0], end[0]) + radius)), width)
    row1 = min(int(math.ceil(max(start[1], end[1]) + radius)), height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


def _linear_interval(a: float, b: float, low: float, high: float) -> tuple[float, float] | None:
    """The x with low <= a*x + b <= high (an interval, possibly unbounded), or None."""
    if a == 0:
        return (-math.inf, math.inf) if low <= b <= high else None
    x1, x2 = (low - b) / a, (high - b) / a
    return min(x1, x2), max(x1, x2)


def row_interval(y: float, start: Point, end: Point, radius: float) -> tuple[float, float] | None:
    """The x range, on the horizontal line at ``y``, within ``radius`` of the segment (a capsule).

    The capsule is the union of two end discs and the band between them; it is convex, so its
    intersection with the line is one interval: the union of the three pieces' intervals.
    """
    pieces = []
    for cx, cy in (start, end):
        if abs(y - cy) <= radius:
            half = math.sqrt(radius * radius - (y - cy) ** 2)
            pieces.append((cx - half, cx + half))
    dx, dy = end[0] - start[0], end[1] - start[1]
    length = math.hypot(dx, dy)
    if length > 0:
        # distance from the segment's line (cross product) and position along it (dot product)
        across = _linear_interval(dy, -start[0] * dy - (y - start[1]) * dx, -radius * length, radius * length)
        along = _linear_interval(dx, -start[0] * dx + (y - start[1]) * dy, 0.0, length * length)
        if across and along and max(across[0], along[0]) <= min(across[1], along[1]):
            pieces.append((max(across[0], along[0]), min(across[1], along[1])))
    if not pieces:
        return None
    return min(p[0] for p in pieces), max(p[1] for p in pieces)


def paint_segment(data: bytearray, window: Window, start: Point, end: Point, diameter: float,
                  value: int) -> int:
    """Set the pixels of ``data`` (the bytes of ``window``) that the brush covers to ``value``.

    Works a row at a time (one slice per row), so a wide brush costs no more than a narrow one.
    Returns how many pixels changed.
    """
    radius = max(diameter / 2.0, 0.5)
    changed = 0
    for r in range(window.height):
        span = row_interval(window.row + r + 0.5, start, end, radius)
        if span is None:
            continue
        # pixel centres window.col + c + 0.5 inside the span
        c0 = max(int(math.ceil(span[0] - 0.5 - window.col)), 0)
        c1 = min(int(math.floor(span[1] - 0.5 - window.col)), window.width - 1)
        if c1 < c0:
            continue
        i0, i1 = r * window.width + c0, r * window.width + c1 + 1
        changed += (i1 - i0) - data[i0:i1].count(value)
        data[i0:i1] = bytes([value]) * (i1 - i0)
    for col, row in (start, end):  # the pixel under each end, whatever the brush size
        c, r = int(math.floor(col)) - window.col, int(math.floor(row)) - window.row
        if 0 <= c < window.width and 0 <= r < window.height and data[r * window.width + c] != value:
            data[r * window.width + c] = value
            changed += 1
    return changed
