"""Edge-aware smoothing of class probabilities: neighbouring pixels that look alike share a class.

A network trained on a few labeled pixels is right about most of a field and wrong in scattered
pixels and patches inside it. Averaging each pixel's class probabilities with those of its neighbours,
weighted by how close they are (a Gaussian of ``sigma`` px) and how alike their bands are (a Gaussian
of the squared distance of their bands' leading principal components, scaled by the raster's typical
neighbour distance), and
repeating that ``iterations`` times, spreads the consensus of a homogeneous region over it while an
edge between unlike pixels stops it: a bilateral filter applied as a few rounds of mean-field
message passing. Nodata pixels send nothing.

With ``anchors`` (the analyst's labeled pixels) it is also label propagation: a labeled pixel holds
its class with certainty before and after every round, so it keeps its painted class and keeps
sending it to the alike pixels around it, while the network's guesses elsewhere can still be
overruled by their neighbours.

The result at a pixel depends on the raster within ``reach`` = ``radius`` × ``iterations`` px, so a
sliding window whose halo is at least that wide gives the same map as a whole-raster pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

Box = tuple[int, int, int, int]  # top, left, bottom, right (exclusive) of a part of a block


def neighbour_differences(x: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Squared feature distance of every valid pair of 4-neighbours in a (D, H, W) block."""
    parts = []
    for a, b, va, vb in ((x[:, 1:], x[:, :-1], valid[1:], valid[:-1]),
                         (x[:, :, 1:], x[:, :, :-1], valid[:, 1:], valid[:, :-1])):
        d = ((a - b) ** 2).sum(0)
        parts.append(d[va & vb])
    return np.concatenate(parts)


def sample_windows(read: Callable[..., tuple[np.ndarray, np.ndarray]], height: int, width: int,
                   windows: int = 16, size: int = 256,
                   more: Callable[[], Iterable[tuple[int, int]]] | None = None):
    """Up to ``windows`` ``size``-px (x, valid) windows spread evenly over a raster (deterministic).

    ``more``: when those windows hold fewer valid pixels than one window has (a mosaic whose valid
    pixels are a thin strip between them), the (row, col) origins of windows among the raster's valid
    pixels (engine.raster.valid_windows), read as well; the raster is looked at whole only then."""
    n = max(1, math.isqrt(windows))
    rows = sorted({int(r) for r in np.linspace(0, max(height - size, 0), n)})
    cols = sorted({int(c) for c in np.linspace(0, max(width - size, 0), n)})
    h, w = min(size, height), min(size, width)
    blocks = [read(r, c, h, w) for r in rows for c in cols]
    if more is not None and (height > size or width > size) and sum(int(v.sum()) for _, v in blocks) < h * w:
        blocks += [read(r, c, h, w) for r, c in more()]
    return blocks


@dataclass(frozen=True, eq=False)
class EdgeAwareSmoothing:
    """The smoothing for one raster: ``projection`` (D, C) maps its normalised bands to at most
    MAX_FEATURES features (principal components; None = the bands themselves), ``scale`` is the median
    squared feature distance of neighbouring pixels -- what 'alike' means on this raster."""

    scale: float
    projection: np.ndarray | None = None
    radius: int = 5  # neighbourhood (2 radius + 1)² px
    sigma: float = 3.0  # spatial Gaussian, px
    iterations: int = 10

    MAX_FEATURES = 8

    @classmethod
    def fit(cls, blocks: Iterable[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> EdgeAwareSmoothing:
        """From (x, valid) blocks of a raster: its leading principal components (when it has more than
        MAX_FEATURES bands: distances then cost the same for 4 bands or 200) and its neighbour scale.
        Tied to the raster, not its sensor or units: a pixel pair differing like a typical neighbour
        pair gets weight exp(-1/2). A floor keeps piecewise-constant rasters (median 0) finite."""
        blocks = [(np.asarray(x, np.float32), np.asarray(v, bool)) for x, v in blocks]
        projection = None
        if blocks and blocks[0][0].shape[0] > cls.MAX_FEATURES:
            rng = np.random.default_rng(seed)
            per_block = max(1, 50_000 // len(blocks))  # a bounded sample, whatever the band count
            pixels = []
            for x, v in blocks:
                rows, cols = np.nonzero(v)
                pick = rng.choice(len(rows), min(len(rows), per_block), replace=False)
                pixels.append(x[:, rows[pick], cols[pick]].T)
            pixels = np.concatenate(pixels)
            if len(pixels) > cls.MAX_FEATURES:
                _, _, vt = np.linalg.svd(pixels - pixels.mean(0), full_matrices=False)
                projection = np.ascontiguousarray(vt[:cls.MAX_FEATURES], np.float32)
        diffs = [neighbour_differences(project(x, projection), v) for x, v in blocks]
        diffs = np.concatenate(diffs) if diffs else np.zeros(0, np.float32)
        return cls(max(float(np.median(diffs)) if len(diffs) else 0.0, 1e-6), projection)

    @property
    def reach(self) -> int:
        return self.radius * self.iterations

    @property
    def offsets(self) -> list[tuple[int, int]]:
        """(dy, dx) of every neighbour in the (2 radius + 1)² window, the pixel itself included."""
        r = self.radius
        return [(dy, dx) for dy in range(-r, r + 1) for dx in range(-r, r + 1)]

    def weights(self, x: torch.Tensor, valid: torch.Tensor, box: Box | None = None) -> torch.Tensor:
        """(n_offsets, h, w) normalised weights of the neighbours of each pixel of ``box`` (top, left,
        bottom, right; default the whole block) in a (C, H, W) block ``x``."""
        r, (H, W) = self.radius, valid.shape
        box = box or (0, 0, H, W)
        h, w = box[2] - box[0], box[3] - box[1]
        near = (max(box[0] - r, 0), max(box[1] - r, 0), min(box[2] + r, H), min(box[3] + r, W))
        x, valid = x[:, near[0]:near[2], near[1]:near[3]], valid[near[0]:near[2], near[1]:near[3]]
        if self.projection is not None:  # project only the pixels the box's neighbourhoods read
            x = torch.einsum("dc,chw->dhw", torch.from_numpy(self.projection).to(x.device), x)
        xp, vp = grown(x, box, r, origin=near), grown(valid, box, r, origin=near)
        all_valid = bool(vp.all())  # the usual case: no pixel of the neighbourhoods is nodata
        out = torch.empty(len(self.offsets), h, w, device=x.device)
        for t, b in strips(h, x.shape[0] + 2, w):  # a few rows at a time: the working set stays in cache
            xc = xp[:, r + t:r + b, r:r + w]
            for i, (dy, dx) in enumerate(self.offsets):
                # spatial * exp(-d2 / (2 scale)) * valid, computed in place in its row of ``out``
                spatial = math.exp(-(dy * dy + dx * dx) / (2 * self.sigma ** 2))
                wi = out[i, t:b]
                torch.sum((xp[:, r + dy + t:r + dy + b, r + dx:r + dx + w] - xc).pow_(2), 0, out=wi)
                wi.div_(-2 * self.scale).exp_().mul_(spatial)
                if not all_valid:
                    wi.mul_(vp[r + dy + t:r + dy + b, r + dx:r + dx + w])
            part = out[:, t:b]
            part /= part.sum(0, keepdim=True).clamp_min(1e-12)
        return out

    @torch.no_grad()
    def __call__(self, probs: torch.Tensor, x: torch.Tensor, valid: torch.Tensor,
                 core: tuple[int, int, int, int] | None = None,
                 anchors: torch.Tensor | None = None) -> torch.Tensor:
        """Smoothed (K, H, W) probabilities; ``x`` (C, H, W) the normalised bands, ``valid`` (H, W).

        ``core`` (top, left, height, width): only that part of the block is wanted (a sliding window's
        core), and only it is returned. Each round then works on the core grown by the reach still to
        come -- what the remaining rounds read -- not on the whole block: the same values, less work.

        ``anchors`` (H, W) integer: 0 where nothing is known, else the pixel's labeled class 1..K; a
        valid anchored pixel is held at that class (probability 1) throughout.
        """
        H, W = valid.shape
        top, left, h, w = core or (0, 0, H, W)
        fix = _anchoring(anchors, valid, probs.shape[0], probs.device)
        if self.iterations <= 0:
            return fix(probs.float(), (0, 0, H, W))[:, top:top + h, left:left + w]
        r, n = self.radius, self.iterations

        def around(m: int) -> Box:  # the core grown by m px, within the block
            return max(top - m, 0), max(left - m, 0), min(top + h + m, H), min(left + w + m, W)

        first = around((n - 1) * r)  # every pixel that aggregates in some round lies here
        wgt = self.weights(x.float(), valid.float(), first)
        valid = valid.bool()
        src = around(n * r)
        q = fix(probs.float()[:, src[0]:src[2], src[1]:src[3]], src)
        for i in range(1, n + 1):
            box = around((n - i) * r)
            bh, bw = box[2] - box[0], box[3] - box[1]
            qp = grown(q, box, r, origin=src)
            wb = wgt[:, box[0] - first[0]:box[2] - first[0], box[1] - first[1]:box[3] - first[1]]
            acc = torch.zeros((q.shape[0], bh, bw), device=q.device)
            for t, b in strips(bh, q.shape[0], bw):  # each pixel sums its neighbours in the same order
                part = acc[:, t:b]
                for j, (dy, dx) in enumerate(self.offsets):
                    part.addcmul_(wb[j, t:b], qp[:, r + dy + t:r + dy + b, r + dx:r + dx + bw])
            q = fix(torch.where(valid[box[0]:box[2], box[1]:box[3]], acc, qp[:, r:r + bh, r:r + bw]), box)
            src = box
        return q


STRIP_BYTES = 512 * 2**10  # a strip's rows per torch thread: what stays in a core's cache (measured)


def strips(height: int, channels: int, width: int) -> list[tuple[int, int]]:
    """(first, end) rows of the strips a (channels, height, width) float32 block is worked through: a
    strip is reread for each of the 121 neighbours, so it should stay in the cache (about STRIP_BYTES
    for each torch thread, which share a strip's rows)."""
    budget = STRIP_BYTES * max(1, torch.get_num_threads())
    rows = max(4, budget // (4 * max(1, channels) * max(1, width)))
    return [(t, min(t + rows, height)) for t in range(0, height, rows)]


def _anchoring(anchors: torch.Tensor | None, valid: torch.Tensor, classes: int,
               device: torch.device) -> Callable[[torch.Tensor, Box], torch.Tensor]:
    """fix(q, box): ``q`` (K, h, w) over ``box`` of the block with every valid anchored pixel set to its
    class's one-hot vector (``q`` itself when there is nothing to anchor)."""
    if anchors is None:
        return lambda q, box: q
    a = anchors.to(device=device, dtype=torch.long)
    a = torch.where(valid.to(device).bool() & (a >= 1) & (a <= classes), a, 0)
    if not bool(a.any()):
        return lambda q, box: q
    one_hot = torch.nn.functional.one_hot(a, classes + 1)[..., 1:].permute(2, 0, 1).float()

    def fix(q: torch.Tensor, box: Box) -> torch.Tensor:
        part = a[box[0]:box[2], box[1]:box[3]]
        return torch.where(part > 0, one_hot[:, box[0]:box[2], box[1]:box[3]], q)

    return fix


def grown(t: torch.Tensor, box: Box, m: int, origin: Box | None = None) -> torch.Tensor:
    """``t``'s (..., rows, cols) over ``box`` grown by ``m`` px on every side, zeros where that leaves
    ``t``; ``t`` covers ``origin`` (top, left, bottom, right; default: it starts at 0, 0)."""
    o_top, o_left = origin[:2] if origin else (0, 0)
    o_bottom, o_right = o_top + t.shape[-2], o_left + t.shape[-1]
    top, left, bottom, right = box[0] - m, box[1] - m, box[2] + m, box[3] + m
    part = t[..., max(top, o_top) - o_top:min(bottom, o_bottom) - o_top,
             max(left, o_left) - o_left:min(right, o_right) - o_left]
    pad = (max(o_left - left, 0), max(right - o_right, 0), max(o_top - top, 0), max(bottom - o_bottom, 0))
    return torch.nn.functional.pad(part, pad) if any(pad) else part


def project(x: np.ndarray, projection: np.ndarray | None) -> np.ndarray:
    """(C, H, W) bands -> (D, H, W) features."""
    return x if projection is None else np.einsum("dc,chw->dhw", projection, x)
