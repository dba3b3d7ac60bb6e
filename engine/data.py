"""Training data: image chips held in memory, a spatially disjoint validation split, tile sampling.

A *chip* is a normalised block of the image kept in RAM (the whole image when it fits the memory
budget, else grid cells around the labels plus random unlabeled cells). Training tiles are random
crops of chips: labeled tiles are centred near labeled pixels (classes drawn uniformly, so a class
painted with three strokes is not drowned by one painted with thirty), unlabeled tiles anywhere valid.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from rasterio.enums import MaskFlags
from scipy import ndimage

from engine.config import ModelConfig
from engine.labels import LabelPatches
from engine.raster import BandStats, band_count, palette_lut, read_block, read_normalised, valid_places


@dataclass
class Chip:
    """A normalised image block in memory with its training and validation labels."""

    row: int  # top-left in image pixels
    col: int
    x: np.ndarray  # (C, h, w) float32, normalised, 0 where invalid
    valid: np.ndarray  # (h, w) bool
    train: np.ndarray  # (h, w) uint8 training labels (0 = none)
    val: np.ndarray  # (h, w) uint8 validation labels (0 = none)
    # per class (1..K) the flat indices of its training pixels, for class-balanced centring
    class_pixels: dict[int, np.ndarray] = field(default_factory=dict)

    def index(self) -> None:
        flat = self.train.ravel()
        self.class_pixels = {int(c): np.flatnonzero(flat == c) for c in np.unique(flat) if c > 0}


def on_valid_pixels(labels: LabelPatches, ds, tile: int = 64) -> LabelPatches | None:
    """``labels`` less the pixels that are nodata in the open image ``ds`` (nodata value, mask, alpha,
    NaN, --nodata): those teach nothing and are never mapped. None when no labeled pixel is left. Only
    the ``tile``-px squares of each crop that hold labeled pixels are read (points spread over a large
    orthophoto cost their squares, not the area between them), and nothing where the image cannot
    have an invalid pixel."""
    if not may_be_invalid(ds):
        return labels
    kept = []
    for crop in labels.crops:
        array = crop.array.copy()
        h, w = array.shape
        for r in range(0, h, tile):
            band = array[r:r + tile]
            held = np.flatnonzero(band.any(axis=0))
            for c in np.unique(held // tile) * tile:
                n, m = band.shape[0], min(tile, w - c)
                _, valid = read_block(ds, crop.row + r, crop.col + int(c), n, m)
                band[:, c:c + m][~valid] = 0
        kept.append(array)
    return labels.replace(kept)


def may_be_invalid(ds) -> bool:
    """Whether some pixel of ``ds`` may be invalid to read_block: a nodata value, a mask or alpha band, a
    palette (transparent colours), float values (NaN) or ``--nodata`` values; a plain integer raster
    without any of them has none."""
    if getattr(ds, "extra_nodata", ()) or ds.dtypes[0].startswith("float") or palette_lut(ds) is not None:
        return True
    return any(flags != [MaskFlags.all_valid] for flags in ds.mask_flag_enums)


def split_labels(labels: LabelPatches, fraction: float, seed: int, block: int = 32,
                 report: dict | None = None):
    """Hold out ``fraction`` of each class's labeled pixels as *whole units* for validation.

    A unit is a connected stroke/blob; when a class has fewer than 3 of them, its strokes are cut into
    ``block``-px grid pieces, so one long scribble still yields a disjoint validation piece. At least one
    unit of every class stays in training. Works patch by patch (a stroke never straddles two patches),
    numbering strokes across patches as one labelling of the whole grid would, so the split does not
    depend on how the labels are cut into patches. Returns (train, val) LabelPatches (val None when
    nothing is held out). ``report``, when given, gets ``pieces``: the classes validated on pieces of
    the strokes they train on, and ``unvalidated``: the classes with nothing held out (one piece).
    """
    train = [c.array.copy() for c in labels.crops]
    val = [np.zeros_like(c.array) for c in labels.crops]
    if fraction <= 0:
        return labels.replace(train), None
    rng = np.random.default_rng(seed)
    top, left = labels.origin  # the block pieces follow the labels' bounding box, as they always have
    for c in [int(v) for v in np.flatnonzero(labels.histogram()) if v > 0]:
        rr, cc, where, unit = _units(labels, c)
        n = int(unit.max())
        if n < 3:  # split strokes into grid pieces: (component, block row, block col)
            unit = (unit * 100_003 + (rr - top) // block) * 100_003 + (cc - left) // block
        ids, inverse, sizes = np.unique(unit, return_inverse=True, return_counts=True)
        if len(ids) < 2:
            if report is not None:
                report.setdefault("unvalidated", []).append(c)
            continue
        if n < 3 and report is not None:
            report.setdefault("pieces", []).append(c)
        target = fraction * len(rr)
        held, got = [], 0
        for j in rng.permutation(len(ids)):
            if got >= target or len(held) == len(ids) - 1:
                break
            if got + sizes[j] > 1.5 * target:  # would overshoot: try a smaller unit
                continue
            held.append(j)
            got += sizes[j]
        if not held:  # every unit is large: hold out the smallest one
            held = [int(np.argmin(sizes))]
        pick = np.isin(inverse, held)
        for i, crop in enumerate(labels.crops):
            mine = pick & (where == i)
            r, q = rr[mine] - crop.row, cc[mine] - crop.col
            val[i][r, q] = c
            train[i][r, q] = 0
    return labels.replace(train), labels.replace(val)


def keep_validation(labels: LabelPatches, held: LabelPatches | None):
    """(train, val) for a warm start: ``held`` (the validation pixels of the model it starts from) stay
    the validation wherever ``labels`` still give them the same class, and every other labeled pixel
    trains -- the strokes painted since included. The model never learnt from ``held``, so its scores
    stay honest, and they stay comparable from one run of the loop to the next."""
    if held is None:
        return labels, None
    val = []
    for crop in held.crops:
        now = labels.window(crop.row, crop.col, *crop.array.shape)
        val.append(np.where(now == crop.array, crop.array, 0).astype(np.uint8))
    val = held.replace(val)
    if val is None:
        return labels, None
    train = []
    for crop in labels.crops:
        v = val.window(crop.row, crop.col, *crop.array.shape)
        train.append(np.where(v > 0, 0, crop.array).astype(np.uint8))
    train = labels.replace(train)
    return train, val


def _units(labels: LabelPatches, c: int):
    """Grid rows, columns, patch index and stroke number (1..n, int64) of the pixels of class ``c``;
    strokes (8-connected) are numbered in the raster order of their first pixel over the whole grid."""
    rows, cols, where, local, firsts = [], [], [], [], []
    offset = 0
    for i, crop in enumerate(labels.crops):
        mask = crop.array == c
        comp, n = ndimage.label(mask, structure=np.ones((3, 3)))
        if n == 0:
            continue
        rr, cc = np.nonzero(mask)
        lab = comp[rr, cc].astype(np.int64)
        first = np.unique(lab, return_index=True)[1]  # each stroke's first pixel in raster order
        rows.append(rr + crop.row)
        cols.append(cc + crop.col)
        where.append(np.full(len(rr), i))
        local.append(lab + offset)
        firsts.append(np.stack([rr[first] + crop.row, cc[first] + crop.col], 1))
        offset += n
    firsts = np.concatenate(firsts)
    number = np.empty(offset + 1, np.int64)
    number[1 + np.lexsort((firsts[:, 1], firsts[:, 0]))] = np.arange(1, offset + 1)
    return (np.concatenate(rows), np.concatenate(cols), np.concatenate(where),
            number[np.concatenate(local)])


def _chip_labels(labels: LabelPatches | None, valid: np.ndarray, r: int, q: int) -> np.ndarray:
    """The labels of the chip at row ``r``, column ``q`` shaped like ``valid``, 0 on invalid pixels."""
    if labels is None:
        return np.zeros(valid.shape, np.uint8)
    return np.where(valid, labels.window(r, q, *valid.shape), 0).astype(np.uint8)


def build_chips(ds, stats: BandStats, train: LabelPatches | None, val: LabelPatches | None, budget_mb: int,
                seed: int, chip: int = 512) -> list[Chip]:
    """Load the image blocks needed for training within ``budget_mb`` of RAM: the whole image when it
    fits, else the ``chip``-px blocks with labels (``train``, ``val``: None for an image without labels)
    and random unlabeled ones; when many of those hold no valid pixel (a mosaic of much nodata), the
    rest are drawn among the blocks that have some."""
    h, w, c = ds.height, ds.width, band_count(ds)
    bytes_per_px = c * 4 + 3
    if h * w * bytes_per_px > budget_mb * 2**20:
        gh, gw = (h + chip - 1) // chip, (w + chip - 1) // chip
        has = np.zeros((gh, gw), bool)
        for labels in (train, val):
            if labels is not None:
                rr, cc = labels.nonzero()
                has[rr // chip, cc // chip] = True
        cap = max(2, budget_mb * 2**20 // (chip * chip * bytes_per_px))
        rng = np.random.default_rng(seed)
        lab_cells = [tuple(v) for v in np.argwhere(has)]
        if len(lab_cells) > cap * 3 // 4:  # keep a share of the budget for unlabeled context
            lab_cells = [lab_cells[i] for i in rng.choice(len(lab_cells), cap * 3 // 4, replace=False)]
        free = [tuple(v) for v in np.argwhere(~has)]
        n_free = min(len(free), cap - len(lab_cells))
        free_cells = [free[i] for i in rng.choice(len(free), n_free, replace=False)] if n_free > 0 else []
        chips = _read_chips(ds, stats, train, val, lab_cells + free_cells, chip)
        labeled = set(lab_cells)
        empty = n_free - sum(1 for ch in chips if (ch.row // chip, ch.col // chip) not in labeled)
        if empty > n_free // 4:  # a mosaic of much nodata: draw the rest among the cells with valid pixels
            chosen = set(lab_cells + free_cells)
            more = [cell for cell in _valid_cells(ds, chip) if cell not in chosen]
            if more:
                pick = rng.choice(len(more), min(len(more), empty), replace=False)
                chips += _read_chips(ds, stats, train, val, [more[i] for i in np.sort(pick)], chip)
        return chips
    return _read_chips(ds, stats, train, val, None, chip)


def _valid_cells(ds, chip: int) -> list[tuple[int, int]]:
    """The ``chip``-px cells of ``ds`` that hold valid pixels, from a decimated look at the whole raster
    (engine.raster.valid_places)."""
    places = valid_places(ds)
    i, j = np.nonzero(places.weight)
    rows = (places.rows[i] + places.rows[i + 1]) // 2 // chip  # each look cell's centre's chip cell
    cols = (places.cols[j] + places.cols[j + 1]) // 2 // chip
    return sorted({(int(r), int(c)) for r, c in zip(rows, cols, strict=True)})


def _read_chips(ds, stats: BandStats, train, val, cells: list[tuple[int, int]] | None,
                chip: int) -> list[Chip]:
    """The chips of ``cells`` (chip-grid (row, col)), or of the whole image for None; those without a
    valid pixel are left out."""
    h, w = ds.height, ds.width
    windows = ([(0, 0, h, w)] if cells is None else
               [(r * chip, q * chip, min(chip, h - r * chip), min(chip, w - q * chip)) for r, q in cells])
    chips = []
    for r, q, ch, cw in windows:
        x, valid = read_normalised(ds, stats, r, q, ch, cw)
        t, v = _chip_labels(train, valid, r, q), _chip_labels(val, valid, r, q)
        if not valid.any():
            continue
        chip_ = Chip(r, q, x, valid, t, v)
        chip_.index()
        chips.append(chip_)
    return chips


def sample_pixels(chips: list[Chip], max_pixels: int = 50_000, seed: int = 0) -> np.ndarray:
    """(N, C) band values of up to ``max_pixels`` valid pixels, drawn evenly from ``chips``."""
    if not chips:
        return np.zeros((0, 0), np.float32)
    rng = np.random.default_rng(seed)
    per_chip = max(1, max_pixels // len(chips))
    samples = []
    for ch in chips:
        idx = np.flatnonzero(ch.valid.ravel())
        if len(idx) > per_chip:
            idx = rng.choice(idx, per_chip, replace=False)
        samples.append(ch.x.reshape(ch.x.shape[0], -1)[:, idx].T)
    return np.concatenate(samples)


def principal_axes(pixels: np.ndarray, count: int) -> np.ndarray:
    """(C, m) the ``m <= count`` leading principal directions of (N, C) ``pixels`` (unit columns,
    largest variance first); directions of no variance (below 1e-6 of the largest) are left out."""
    bands = pixels.shape[1]
    if len(pixels) < 2:
        return np.zeros((bands, 0))
    cov = np.cov(pixels.astype(np.float64), rowvar=False).reshape(bands, bands)
    lam, vec = np.linalg.eigh(cov)
    lam, vec = lam[::-1], vec[:, ::-1]
    if lam[0] <= 0:
        return np.zeros((bands, 0))
    keep = min(count, int((lam > 1e-6 * lam[0]).sum()))
    return np.ascontiguousarray(vec[:, :keep])


def stem_axes(cfg: ModelConfig, chips) -> np.ndarray | None:
    """The principal directions of the training chips' pixels a spectral stem starts on, or None when
    the network has no stem or ``cfg.stem_init`` is "random".

    Why: on hyperspectral imagery (hundreds of correlated bands) a random 1×1 mixer sees mostly the
    first component (brightness); the differences between materials live in the next ones, weak in
    every random projection. Starting on the leading components -- computed from every pixel, labeled
    or not -- gives the few labels all of them at equal footing (the batch norm after the mixer scales
    each to unit variance) from the first step; training then moves them like any other weight.
    Measured level with the random start on Indian Pines (README, Benchmarks), so it is not the default.
    """
    if cfg.spectral_stem <= 0 or cfg.stem_init != "pca" or not chips:
        return None
    return principal_axes(sample_pixels(chips), cfg.spectral_stem // 2)


class TileSampler:
    """Random training tiles from chips: labeled (class-balanced centres) and unlabeled."""

    def __init__(self, chips: list[Chip], tile: int, seed: int):
        self.chips = chips
        self.tile = tile
        self.rng = np.random.default_rng(seed)
        self.classes = sorted({c for ch in chips for c in ch.class_pixels})
        self.by_class = {c: [i for i, ch in enumerate(chips) if c in ch.class_pixels] for c in self.classes}
        areas = np.array([ch.valid.sum() for ch in chips], np.float64)
        self.area_p = areas / areas.sum()

    def _crop(self, chip: Chip, r0: int, c0: int):
        t = self.tile
        x = np.zeros((chip.x.shape[0], t, t), np.float32)
        y = np.zeros((t, t), np.uint8)
        valid = np.zeros((t, t), bool)
        h, w = chip.valid.shape
        r1, c1 = min(r0 + t, h), min(c0 + t, w)
        x[:, :r1 - r0, :c1 - c0] = chip.x[:, r0:r1, c0:c1]
        y[:r1 - r0, :c1 - c0] = chip.train[r0:r1, c0:c1]
        valid[:r1 - r0, :c1 - c0] = chip.valid[r0:r1, c0:c1]
        return x, y, valid

    def _origin(self, size: int, centre: int) -> int:
        """A tile origin that keeps ``centre`` inside the tile at a random offset."""
        if size <= self.tile:
            return 0
        lo, hi = max(0, centre - self.tile + 1), min(centre, size - self.tile)
        return int(self.rng.integers(lo, hi + 1))

    def labeled(self, n: int):
        """``n`` tiles each centred near a labeled pixel of a uniformly drawn class."""
        xs, ys = [], []
        for _ in range(n):
            c = self.classes[self.rng.integers(len(self.classes))]
            chip = self.chips[self.by_class[c][self.rng.integers(len(self.by_class[c]))]]
            pix = chip.class_pixels[c][self.rng.integers(len(chip.class_pixels[c]))]
            pr, pc = divmod(int(pix), chip.valid.shape[1])
            h, w = chip.valid.shape
            x, y, _ = self._crop(chip, self._origin(h, pr), self._origin(w, pc))
            xs.append(x)
            ys.append(y)
        return np.stack(xs), np.stack(ys)

    def unlabeled(self, n: int):
        """``n`` tiles anywhere in the chips (weighted by valid area); returns images and validity."""
        xs, vs = [], []
        for _ in range(n):
            chip = self.chips[self.rng.choice(len(self.chips), p=self.area_p)]
            h, w = chip.valid.shape
            r0 = int(self.rng.integers(0, max(h - self.tile, 0) + 1))
            c0 = int(self.rng.integers(0, max(w - self.tile, 0) + 1))
            x, _, valid = self._crop(chip, r0, c0)
            xs.append(x)
            vs.append(valid)
        return np.stack(xs), np.stack(vs)
