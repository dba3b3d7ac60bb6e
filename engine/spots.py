"""Where to paint next: the places of a map where the model is least sure, found while the map is written.

The confidence raster shows where the model is unsure, but on a large raster the analyst has to look for
the dark patches. Every map therefore also lists a few *spots*: square cells of the map whose mean
confidence is lowest, spread apart so that they show different places. Painting the classes seen there
gives the next training the labels it lacks most (a labeled pixel is held at its class with certainty, so
cells with labels are not suggested again).

The cell side follows the map's size (``spot_cell``: a power of two near a sixteenth of the map's side,
8 to 64 px) and divides the 512-px prediction blocks, so a cell is always filled by one block.
"""

from __future__ import annotations

import math

import numpy as np

SPOTS = 10  # spots listed per map
MIN_VALID = 0.5  # share of a cell's pixels that must be mapped (not no data, inside the map)
SPACING = 2  # chosen cells are at least this many cells apart (rows or columns)


def spot_cell(height: int, width: int) -> int:
    """The spot size for a ``height``×``width`` map: the power of two nearest sqrt(height·width) / 16,
    from 8 to 64 px."""
    side = math.sqrt(max(height * width, 1)) / 16
    return int(min(64, max(8, 2 ** round(math.log2(max(side, 1))))))


class SpotFinder:
    """Sums confidence per cell of a ``height``×``width`` map as its blocks are written; ``spots()`` lists
    the least confident cells."""

    def __init__(self, height: int, width: int, transform, cell: int | None = None) -> None:
        self.height, self.width, self.transform = height, width, transform
        self.cell = cell or spot_cell(height, width)
        shape = (-(-height // self.cell), -(-width // self.cell))
        self.total = np.zeros(shape, np.float64)
        self.count = np.zeros(shape, np.int64)

    def add(self, confidence: np.ndarray, valid: np.ndarray, row: int, col: int) -> None:
        """A written block: ``confidence`` (max class probability) and ``valid`` (mapped pixels), its top-left
        pixel at (``row``, ``col``) of the map."""
        c = self.cell
        h, w = valid.shape
        # pad the block to whole cells of the map's grid (pixels of the padding are not valid)
        r0, c0 = row % c, col % c
        ph, pw = -(-(r0 + h) // c) * c, -(-(c0 + w) // c) * c
        conf = np.zeros((ph, pw), np.float64)
        ok = np.zeros((ph, pw), bool)
        conf[r0:r0 + h, c0:c0 + w] = np.where(valid, confidence, 0.0)
        ok[r0:r0 + h, c0:c0 + w] = valid
        cells = (ph // c, c, pw // c, c)
        gr, gc = row // c, col // c
        self.total[gr:gr + cells[0], gc:gc + cells[2]] += conf.reshape(cells).sum(axis=(1, 3))
        self.count[gr:gr + cells[0], gc:gc + cells[2]] += ok.reshape(cells).sum(axis=(1, 3))

    def spots(self, limit: int = SPOTS, origin: tuple[int, int] = (0, 0)) -> list[dict]:
        """Up to ``limit`` cells, least confident first, each at least SPACING cells from those before it
        and at least MIN_VALID mapped: ``row``, ``col`` (of the image: the map's pixel plus ``origin``, the
        map's top-left pixel in the image), ``size`` (px), ``confidence`` (mean) and ``bounds`` (xmin,
        ymin, xmax, ymax in the map's CRS)."""
        c = self.cell
        eligible = self.count >= MIN_VALID * c * c
        mean = np.where(eligible, self.total / np.maximum(self.count, 1), np.inf)
        order = np.argsort(mean, axis=None, kind="stable")
        chosen: list[tuple[int, int]] = []
        out = []
        for flat in order:
            if len(out) == limit or not np.isfinite(mean.flat[flat]):
                break
            gr, gc = divmod(int(flat), mean.shape[1])
            if any(abs(gr - r) < SPACING and abs(gc - cc) < SPACING for r, cc in chosen):
                continue
            chosen.append((gr, gc))
            r, col = gr * c, gc * c
            h, w = min(c, self.height - r), min(c, self.width - col)
            xs, ys = zip(*(self.transform * (x, y) for x in (col, col + w) for y in (r, r + h)), strict=True)
            out.append({"row": r + origin[0], "col": col + origin[1], "size": c,
                        "confidence": round(float(mean[gr, gc]), 4),
                        "bounds": [float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))]})
        return out
