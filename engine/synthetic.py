"""Procedural scenes with a known answer, for tests and benchmarks.

Fields of smooth random regions, crossed by straight "roads" and dotted with rectangular "buildings";
each class has its own band signature and texture, plus sensor noise. Scribbles imitate an analyst:
a few short strokes per class, well inside regions of that class.
"""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin
from scipy import ndimage

from engine.categories import ClassTable, write_class_table


def scene(height: int, width: int, bands: int = 4, classes: int = 4, seed: int = 0):
    """Return (image float32 (C,H,W) in ~[0, 1], truth uint8 (H,W) with classes 1..K)."""
    rng = np.random.default_rng(seed)
    # smooth regions: argmax of K low-frequency random fields
    fields = [ndimage.gaussian_filter(rng.standard_normal((height, width)), sigma=max(height, width) / 14)
              for _ in range(max(classes - 2, 2))]
    truth = (np.argmax(np.stack(fields), 0) + 1).astype(np.uint8)
    if classes >= 3:  # roads: thin straight lines of class K-1
        for _ in range(max(2, (height + width) // 200)):
            r0, c0 = rng.integers(0, height), rng.integers(0, width)
            ang = rng.uniform(0, np.pi)
            t = np.arange(-max(height, width), max(height, width))
            rr = np.clip((r0 + t * np.sin(ang)).astype(int), 0, height - 1)
            cc = np.clip((c0 + t * np.cos(ang)).astype(int), 0, width - 1)
            road = np.zeros((height, width), bool)
            road[rr, cc] = True
            road = ndimage.binary_dilation(road, iterations=2)
            truth[road] = classes - 1
    if classes >= 2:  # buildings: rectangles of class K
        for _ in range(max(3, height * width // 6000)):
            h, w = rng.integers(6, 18, 2)
            r, c = rng.integers(0, height - h), rng.integers(0, width - w)
            truth[r:r + h, c:c + w] = classes
    signature = rng.uniform(0.15, 0.85, (classes, bands)).astype(np.float32)
    image = signature[truth - 1].transpose(2, 0, 1).copy()
    for k in range(classes):  # class-specific texture
        tex = ndimage.gaussian_filter(rng.standard_normal((height, width)), sigma=1 + k)
        tex = tex / (tex.std() + 1e-6) * 0.06
        image += (truth == k + 1)[None] * tex[None].astype(np.float32)
    image += rng.normal(0, 0.04, image.shape).astype(np.float32)
    return np.clip(image, 0, 1), truth


def scribbles(truth: np.ndarray, strokes_per_class: int = 3, length: int = 30, seed: int = 0) -> np.ndarray:
    """Short 3-px-wide strokes placed well inside each class's regions."""
    rng = np.random.default_rng(seed)
    labels = np.zeros_like(truth)
    for k in [int(v) for v in np.unique(truth) if v > 0]:
        inner = ndimage.binary_erosion(truth == k, iterations=3)
        if not inner.any():
            inner = truth == k
        pts = np.argwhere(inner)
        for _ in range(strokes_per_class):
            r, c = pts[rng.integers(len(pts))]
            ang = rng.uniform(0, 2 * np.pi)
            for t in range(length):
                rr, cc = int(r + t * np.sin(ang)), int(c + t * np.cos(ang))
                if not (0 <= rr < truth.shape[0] and 0 <= cc < truth.shape[1]) or not inner[rr, cc]:
                    break
                labels[max(rr - 1, 0):rr + 2, max(cc - 1, 0):cc + 2] = k
    labels[truth != labels] = np.where(labels[truth != labels] > 0, 0, 0)  # never a wrong label
    return labels


def write_scene(folder: str, height: int = 512, width: int = 512, bands: int = 4, classes: int = 4,
                seed: int = 0, dtype: str = "uint16", nodata_corner: bool = False,
                crs: str = "EPSG:32633", strokes_per_class: int = 3) -> dict:
    """Write image.tif, truth.tif and labels.tif (scribbles) into ``folder``; return their paths."""
    import os  # noqa: PLC0415

    image, truth = scene(height, width, bands, classes, seed)
    labels = scribbles(truth, strokes_per_class, seed=seed + 1)
    scale = {"uint8": 255, "uint16": 10000, "int16": 10000, "float32": 1.0}[dtype]
    data = (image * scale).astype(dtype)
    nodata = 0 if dtype != "float32" else -9999.0
    if nodata_corner:
        data[:, : height // 5, : width // 5] = nodata
        truth = truth.copy()
        truth[: height // 5, : width // 5] = 0
        labels[: height // 5, : width // 5] = 0
    if crs == "EPSG:4326":
        transform = from_origin(10.0, 50.0, 1e-4, 1e-4)
    else:
        transform = from_origin(500000.0, 5000000.0, 1.0, 1.0)
    paths = {k: os.path.join(folder, f"{k}.tif") for k in ("image", "truth", "labels")}
    prof = {"driver": "GTiff", "height": height, "width": width, "crs": crs, "transform": transform,
            "tiled": True, "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    with rasterio.open(paths["image"], "w", count=bands, dtype=dtype, nodata=nodata, **prof) as ds:
        ds.write(data)
    table = ClassTable.numbered(classes)
    for key, arr in (("truth", truth), ("labels", labels)):
        with rasterio.open(paths[key], "w", count=1, dtype="uint8", nodata=None, **prof) as ds:
            ds.write(arr, 1)
        write_class_table(paths[key], table)
    return paths
