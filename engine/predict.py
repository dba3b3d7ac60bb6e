"""Sliding-window prediction with a halo, for in-memory arrays and for rasters of any size.

The raster is cut into ``core``×``core`` blocks; each is predicted from a window ``halo`` px larger on
every side and only its core is kept, so every output pixel sees at least ``halo`` px of context and
tile seams do not show; beyond the raster's edges the window is filled by mirroring the raster
(``mirrored``), the kind of context the network was trained on. With test-time augmentation
(``views=8``) every window is predicted in its 8 flips / 90° turns, each turned back, and the softmax
averaged: the networks are trained on those views, and the mean of 8 predictions is steadier than one.
Window origins sit on multiples of the network stride, so the pooling grid is the same as in a
whole-image pass. Files are read and written block by block (cores are multiples of the GeoTIFF block
size), so peak memory does not grow with the raster.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import numpy as np
import rasterio
import torch
from rasterio.enums import Resampling

from engine.areas import ClassTally
from engine.categories import write_class_table
from engine.errors import InputError, OutputError
from engine.io_out import check_writable, clear_stale, partial_path, publish_raster
from engine.labels import LabelPatches
from engine.modelfile import SavedModel
from engine.progress import Reporter
from engine.raster import (
    band_count,
    band_summary,
    gdal_cache,
    map_crs,
    map_window_transform,
    open_image,
    read_normalised,
    valid_windows,
)
from engine.runtime import NEVER_CANCELLED, CancelToken
from engine.smooth import EdgeAwareSmoothing, sample_windows
from engine.spots import SpotFinder

Reader = Callable[[int, int, int, int], tuple[np.ndarray, np.ndarray]]

# ``--tta auto``: 8 views up to this many pixels, one view above (8 views cost 8× the predict time).
TTA_AUTO_PIXELS = {"cpu": 4_000_000, "accelerator": 64_000_000}


def core_windows(height: int, width: int, core: int) -> list[tuple[int, int, int, int]]:
    """(row, col, h, w) blocks that tile the raster."""
    return [(r, c, min(core, height - r), min(core, width - c))
            for r in range(0, height, core) for c in range(0, width, core)]


def tta_views(mode: str, height: int, width: int, device: torch.device) -> int:
    """Views per window for ``--tta`` ``on`` (8), ``off`` (1) or ``auto`` (8 while the raster is small
    enough that 8× the predict time stays minor next to training: TTA_AUTO_PIXELS)."""
    if mode not in ("auto", "on", "off"):
        raise InputError(f"Test-time augmentation '{mode}' is unknown; use auto, on or off.", "bad_tta")
    if mode != "auto":
        return 8 if mode == "on" else 1
    return auto_views(height * width, device)


def auto_views(pixels: int, device: torch.device) -> int:
    """What ``--tta auto`` picks for this many pixels: 8 views up to TTA_AUTO_PIXELS, one above."""
    return 8 if pixels <= TTA_AUTO_PIXELS["cpu" if device.type == "cpu" else "accelerator"] else 1


# the 8 views of a window: (quarter turns, horizontal flip after the turn); the first is the window itself,
# the first two a flip pair, the first four also a quarter turn
DIHEDRAL_VIEWS: tuple[tuple[int, bool], ...] = tuple((t, f) for t in range(4) for f in (False, True))


def to_view(x: torch.Tensor, view: tuple[int, bool]) -> torch.Tensor:
    """``x`` (..., H, W) seen in ``view`` (one of DIHEDRAL_VIEWS)."""
    turns, flip = view
    x = torch.rot90(x, turns, (-2, -1))
    return torch.flip(x, (-1,)) if flip else x


def from_view(x: torch.Tensor, view: tuple[int, bool]) -> torch.Tensor:
    """Undo ``to_view``: a map predicted on the view, back on the window's own grid."""
    turns, flip = view
    return torch.rot90(torch.flip(x, (-1,)) if flip else x, -turns, (-2, -1))


def view_probs(net: torch.nn.Module, x: torch.Tensor, views, check=None) -> torch.Tensor:
    """Sum (not mean) over ``views`` of ``net``'s softmax on each view of ``x``, turned back; ``check``
    (a cancel check) is called before each view."""
    p = None
    layout = torch.channels_last if getattr(net, "channels_last", False) else torch.contiguous_format
    for view in views:
        if check is not None:
            check()
        logits = net(to_view(x, view).contiguous(memory_format=layout))
        q = from_view(torch.softmax(logits.float(), dim=1), view)
        p = q if p is None else p + q
    return p


@torch.inference_mode()
def ensemble_probs(nets: list[torch.nn.Module], x: torch.Tensor, views: int = 1, check=None) -> torch.Tensor:
    """Mean softmax of the ensemble members; with ``views=8`` also over the 8 flips / 90° turns of
    ``x`` (each prediction turned back before averaging); ``check``: view_probs'."""
    if views not in (1, 8):
        raise ValueError(f"views must be 1 or 8, not {views}")
    p = sum(view_probs(net, x, DIHEDRAL_VIEWS[:views], check) for net in nets)
    return p / (len(nets) * views)


def run_windows(nets, read: Reader, cores, halo: int, stride: int, device: torch.device,
                batch: int = 4, cancel: CancelToken = NEVER_CANCELLED, views: int = 1,
                smooth: EdgeAwareSmoothing | None = None, anchors: LabelPatches | None = None) -> Iterator:
    """Yield ((row, col, h, w), class map uint8 1..K, confidence float32, valid bool) per core block;
    with ``smooth``, from the edge-aware smoothed probabilities of each window (``halo`` must be at
    least its reach: pick_halo), which hold the labeled pixels of ``anchors`` at their class."""
    if smooth is not None and halo < smooth.reach:
        raise ValueError(f"halo {halo} px is narrower than the smoothing's reach {smooth.reach} px")
    pending = []

    def flush():
        side_h = max(p[1].shape[1] for p in pending)
        side_w = max(p[1].shape[2] for p in pending)
        xb = np.zeros((len(pending), pending[0][1].shape[0], side_h, side_w), np.float32)
        for i, (_, x, _) in enumerate(pending):
            xb[i, :, :x.shape[1], :x.shape[2]] = x
        xt = torch.from_numpy(xb).to(device)
        probs = ensemble_probs(nets, xt, views, cancel.check)  # a cancel is heard within a view's time
        for i, ((r, c, h, w), x, valid) in enumerate(pending):
            cancel.check()
            if smooth is not None:
                hh, ww = x.shape[1:]
                known = None if anchors is None else anchors.window(r - halo, c - halo, hh, ww)
                p = smooth(probs[i, :, :hh, :ww], xt[i, :, :hh, :ww], torch.from_numpy(valid).to(device),
                           core=(halo, halo, h, w),
                           anchors=None if known is None else torch.from_numpy(known)).cpu().numpy()
            else:
                p = probs[i, :, halo:halo + h, halo:halo + w].cpu().numpy()
            core_valid = valid[halo:halo + h, halo:halo + w]
            yield (r, c, h, w), (p.argmax(0) + 1).astype(np.uint8), p.max(0), core_valid

    for r, c, h, w in cores:
        cancel.check()
        side_h = -(-(h + 2 * halo) // stride) * stride
        side_w = -(-(w + 2 * halo) // stride) * stride
        x, valid = read(r - halo, c - halo, side_h, side_w)
        pending.append(((r, c, h, w), x, valid))
        if len(pending) == batch:
            yield from flush()
            pending = []
    if pending:
        yield from flush()


def mirrored(read: Reader, height: int, width: int) -> Reader:
    """``read`` for windows that may reach beyond a ``height``×``width`` raster: the part outside is
    filled by mirroring the raster at its edge (and stays invalid, so nothing is written there).

    Training tiles lie inside the image, so a network has never seen a frame of zeros; with zeros
    beyond the edge, every pixel within a receptive field of the raster's border is classified from
    context unlike anything it learnt from — on a small raster that is every pixel. Mirrored context
    looks like the imagery. Nodata pixels inside the raster are unchanged (zero, invalid).
    """
    def read_mirrored(r: int, c: int, h: int, w: int):
        r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + h, height), min(c + w, width)
        inside = (r0, c0, r1, c1) == (r, c, r + h, c + w)
        if inside or r1 <= r0 or c1 <= c0:  # wholly inside, or wholly outside (zeros, invalid)
            return read(r, c, h, w)
        x, v = read(r0, c0, r1 - r0, c1 - c0)
        x = np.pad(x, ((0, 0), (r0 - r, r + h - r1), (c0 - c, c + w - c1)), mode="symmetric")
        valid = np.zeros((h, w), bool)
        valid[r0 - r:r1 - r, c0 - c:c1 - c] = v
        return x, valid

    return read_mirrored


def array_reader(x: np.ndarray, valid: np.ndarray) -> Reader:
    """Windows of an in-memory (C, H, W) block; zeros and invalid wherever a window leaves it."""
    h, w = valid.shape

    def read(r: int, c: int, hh: int, ww: int):
        xb = np.zeros((x.shape[0], hh, ww), np.float32)
        vb = np.zeros((hh, ww), bool)
        r0, c0, r1, c1 = max(r, 0), max(c, 0), min(r + hh, h), min(c + ww, w)
        xb[:, r0 - r:r1 - r, c0 - c:c1 - c] = x[:, r0:r1, c0:c1]
        vb[r0 - r:r1 - r, c0 - c:c1 - c] = valid[r0:r1, c0:c1]
        return xb, vb

    return read


def pick_halo(stride: int, smooth: EdgeAwareSmoothing | None = None) -> int:
    """Context margin: enough for the U-Net's receptive field at the deepest level and for the
    smoothing's reach, stride-aligned."""
    reach = smooth.reach if smooth is not None else 0
    return max(64, 2 * stride, -(-reach // stride) * stride)


def smoothing_for(read: Reader, height: int, width: int, enabled: bool,
                  more: Callable[[], list[tuple[int, int]]] | None = None) -> EdgeAwareSmoothing | None:
    """The edge-aware smoothing for a raster read by ``read`` (its range scale sampled from it), or
    None when ``enabled`` is false; ``more``: sample_windows's, windows among the valid pixels for when
    the evenly spread ones miss them."""
    return EdgeAwareSmoothing.fit(sample_windows(read, height, width, more=more)) if enabled else None


def predict_file(model: SavedModel, image_path: str, out_path: str, confidence_path: str | None,
                 device: torch.device, reporter: Reporter | None = None, core: int = 512,
                 batch: int | None = None, cancel: CancelToken = NEVER_CANCELLED, tta: str = "auto",
                 smooth: bool = True, anchors: LabelPatches | None = None,
                 area: tuple[int, int, int, int] | None = None, nodata=()) -> dict:
    """Predict ``image_path`` into a class GeoTIFF on its grid (and optionally a confidence GeoTIFF);
    ``tta``: test-time augmentation, ``auto``, ``on`` or ``off`` (tta_views); ``smooth``: edge-aware
    smoothing of the probabilities (engine.smooth), which holds the labeled pixels of ``anchors`` (on
    this image's grid) at their class and spreads them to alike neighbours; ``area``: (row, col, height,
    width) of the image to segment (engine.raster.area_window), the output rasters then cover only it;
    ``nodata``: values that are no data in every band besides the file's own (open_image).
    An area is predicted from the same windows as the whole raster (those of the core blocks it meets),
    so its map is the whole raster's map there, only sooner. Returns how it predicted: views per window,
    whether it smoothed, how many labeled pixels it anchored, the area, and how much of each class the
    map holds (engine.areas: pixels, share, hectares) and where it is least sure (engine.spots)."""
    reporter = reporter or Reporter("none")
    outputs = [p for p in (out_path, confidence_path) if p]
    for p in outputs:
        if not p.lower().endswith((".tif", ".tiff")):
            raise OutputError(f"The map {p} must end in .tif or .tiff: SemiSeg writes GeoTIFFs.",
                              "bad_output")
        check_writable(p)
    with open_image(image_path, nodata) as ds:
        if band_count(ds) != model.bands:
            raise InputError(f"Image {image_path} has {band_summary(ds)} but the model was trained on "
                             f"{model.bands}; use an image with the same bands or retrain the model.",
                             "band_mismatch")
        ar, ac, ah, aw = area or (0, 0, ds.height, ds.width)
        if not (0 <= ar and 0 <= ac and 0 < ah and 0 < aw and ar + ah <= ds.height and ac + aw <= ds.width):
            raise ValueError(f"area {area} is not inside the {ds.height}×{ds.width} raster")
        # ``auto`` decides for the whole image even for an area: the area's map is the whole map there
        views = tta_views(tta, ds.height, ds.width, device)
        nets = model.networks(device)
        stride = nets[0].stride
        read = mirrored(lambda r, c, h, w: read_normalised(ds, model.band_stats, r, c, h, w),
                        ds.height, ds.width)
        with cancel.promptly():  # reads windows to fit the smoothing's scale: nothing written yet
            smoothing = smoothing_for(read, ds.height, ds.width, smooth,
                                      more=lambda: valid_windows(ds, 256, 16, np.random.default_rng(0)))
        if anchors is not None and anchors.max_class > model.classes.num_classes:
            raise ValueError(f"anchors hold class {anchors.max_class} but the model has "
                             f"{model.classes.num_classes} classes")
        anchors = anchors if smoothing is not None else None  # they act through the smoothing
        halo = pick_halo(stride, smoothing)
        core = max(stride, core // stride * stride)
        batch = batch or (16 if device.type == "cuda" else 2)
        cores = [(r, c, h, w) for r, c, h, w in core_windows(ds.height, ds.width, core)
                 if r < ar + ah and ar < r + h and c < ac + aw and ac < c + w]
        transform = map_window_transform(ds, ar, ac)  # where QGIS draws the area (engine.raster)
        # a GCP-only image's maps are georeferenced on the affine fitted to its points, in their CRS
        profile = {"driver": "GTiff", "width": aw, "height": ah, "count": 1, "crs": map_crs(ds),
                   "transform": transform, "tiled": True, "blockxsize": 256, "blockysize": 256,
                   "compress": "deflate", "BIGTIFF": "IF_SAFER"}
        parts = {p: partial_path(p) for p in outputs}
        try:
            with rasterio.Env(**gdal_cache()):
                dst = rasterio.open(parts[out_path], "w", dtype="uint8", nodata=0, **profile)
                cdst = (rasterio.open(parts[confidence_path], "w", dtype="float32", nodata=-1.0,
                                      predictor=3, **profile) if confidence_path else None)
                try:
                    size = f"{ds.width}×{ds.height} px" if area is None else \
                        f"{aw}×{ah} px of the {ds.width}×{ds.height} px image"
                    reporter.stage("predict", len(cores), message=f"{size}, "
                                   f"{len(cores)} block(s) on {device}"
                                   + (", 8 views each (test-time augmentation)" if views == 8 else "")
                                   + (", edge-aware smoothing" if smoothing else "")
                                   + (f" held to {anchors.count} labeled pixel(s)" if anchors else ""))
                    windows = run_windows(nets, read, cores, halo, stride, device, batch, cancel, views,
                                          smoothing, anchors)
                    held = 0  # labeled pixels the smoothing held: those on valid pixels
                    to_values = model.classes.to_values()  # coded classes: the map holds their values
                    tally = ClassTally(model.classes.num_classes, transform, map_crs(ds))
                    finder = SpotFinder(ah, aw, transform)
                    for i, ((r, c, h, w), cls, conf, valid) in enumerate(windows, start=1):
                        # the part of the core block inside the area, in block and in output pixels
                        r0, c0 = max(r, ar), max(c, ac)
                        r1, c1 = min(r + h, ar + ah), min(c + w, ac + aw)
                        part = np.s_[r0 - r:r1 - r, c0 - c:c1 - c]
                        cls, conf, valid = cls[part], conf[part], valid[part]
                        win = rasterio.windows.Window(c0 - ac, r0 - ar, c1 - c0, r1 - r0)
                        if anchors is not None:
                            held += int(np.count_nonzero(anchors.window(r0, c0, r1 - r0, c1 - c0)[valid]))
                        written = np.where(valid, cls, 0).astype(np.uint8)
                        dst.write(written if to_values is None else to_values[written], 1, window=win)
                        tally.add(written, r0 - ar)
                        finder.add(conf, valid, r0 - ar, c0 - ac)
                        if cdst is not None:
                            cdst.write(np.where(valid, conf, -1.0).astype(np.float32), 1, window=win)
                        if i % max(1, len(cores) // 100) == 0 or i == len(cores):
                            reporter.progress("predict", i, len(cores))
                finally:
                    dst.close()
                    if cdst is not None:
                        cdst.close()
            cancel.check()
            factors = overview_factors(ah, aw)
            if factors:
                reporter.stage("overviews", message=f"overviews 1:{factors[0]}..1:{factors[-1]} for display")
                add_overviews(parts[out_path], factors, Resampling.mode)
                if confidence_path:
                    add_overviews(parts[confidence_path], factors, Resampling.average)
            write_class_table(parts[out_path], model.classes, zero_name="no data")
            cancel.check()  # the last moment a cancel keeps the earlier map: nothing is replaced yet
            for p in outputs:  # all of them first: an old map is replaced only when every one can be
                clear_stale(parts[p], p)
            for p in outputs:
                publish_raster(parts[p], p)
        finally:
            for part in parts.values():
                for f in (part, part + ".aux.xml"):
                    if os.path.exists(f):
                        os.remove(f)
    for kind, p in (("prediction", out_path), ("confidence", confidence_path)):
        if p:
            reporter.emit("artifact", kind=kind, path=os.path.abspath(p))
    return {"views": views, "smoothing": smoothing is not None, "anchors": held,
            "area": None if area is None else [ar, ac, ah, aw],
            "class_areas": tally.summary(model.classes.names), "spots": finder.spots(origin=(ar, ac))}


def overview_factors(height: int, width: int, smallest: int = 256) -> list[int]:
    """Reduction factors 2, 4, 8, ... down to the first overview whose longer side is at most
    ``smallest`` px (none for a raster that small already)."""
    factors, f = [], 2
    while max(height, width) / (f // 2) > smallest:
        factors.append(f)
        f *= 2
    return factors


def add_overviews(path: str, factors: list[int], resampling: Resampling) -> None:
    """Internal, deflated overviews of the GeoTIFF at ``path``: GIS software draws a large map from them
    when zoomed out instead of reading every pixel. Classes use ``mode`` (the most frequent class of each
    block, so no class is ever blended into another), confidence ``average``; nodata is left out of both."""
    with rasterio.Env(**gdal_cache(), COMPRESS_OVERVIEW="DEFLATE"), \
            rasterio.open(path, "r+") as ds:
        ds.build_overviews(factors, resampling)
        ds.update_tags(ns="rio_overview", resampling=resampling.name)


def predict_array(nets, x: np.ndarray, valid: np.ndarray, device: torch.device, core: int = 256,
                  windows=None, views: int = 1, smooth: EdgeAwareSmoothing | None = None,
                  anchors: LabelPatches | None = None,
                  cancel: CancelToken = NEVER_CANCELLED) -> tuple[np.ndarray, np.ndarray]:
    """Classes (uint8, 0 = invalid) and confidence for an in-memory (C, H, W) block (``smooth``,
    ``anchors``, ``cancel``: as in run_windows)."""
    _, h, w = x.shape
    stride = nets[0].stride
    halo = pick_halo(stride, smooth)

    read = mirrored(array_reader(x, valid), h, w)

    cls_out = np.zeros((h, w), np.uint8)
    conf_out = np.zeros((h, w), np.float32)
    core = max(stride, core // stride * stride)
    for (r, c, hh, ww), cls, conf, v in run_windows(nets, read, windows or core_windows(h, w, core),
                                                    halo, stride, device, views=views, smooth=smooth,
                                                    anchors=anchors, cancel=cancel):
        cls_out[r:r + hh, c:c + ww] = np.where(v, cls, 0)
        conf_out[r:r + hh, c:c + ww] = conf
    return cls_out, conf_out
