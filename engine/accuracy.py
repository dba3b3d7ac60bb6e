"""How accurate a map is, and how much of each class there really is: a stratified random sample of
points to check, and the estimates that sample supports.

A map's pixel counts are not the areas on the ground: every class gains the pixels wrongly given to it
and loses those given to others. Good practice for land-cover maps (Olofsson et al., "Good practices for
estimating area and assessing accuracy of land change", Remote Sensing of Environment 148, 2014) is to
check a random sample of points against reference data (field visits, better imagery), with the map's
classes as strata, and to estimate from it the overall, user's and producer's accuracies and each
class's area, each with a 95 % confidence interval. Map classes are strata of unequal size and unequal
sample rate, so every count is weighted by the share of the map its stratum covers.

``draw_sample`` draws points at random among the pixels of each map class in two passes over the map,
whatever its size. How many per class: the same number for every class (``per_class``), or ``total``
points shared in proportion to the classes' areas with at least ``minimum`` for each class (``allocate``,
the compromise Olofsson et al. recommend: proportional allocation gives the overall accuracy and the large
classes' estimates their best precision, the floor keeps the rare classes' estimates usable); fewer where
a class has fewer pixels. Of the two passes, one counts the classes, the second
picks the chosen pixels by their rank within their class. The points go to a GeoPackage, in random
order, with the map's class and an empty ``reference`` field to fill in. ``assess`` reads the filled-in
sample (or any reference: points, polygons or a raster), looks up the map under it and computes the
estimates. Neither needs torch; the GeoPackage needs GDAL's Python bindings (``osgeo``).
"""

from __future__ import annotations

import csv
import json
import os
import time

import numpy as np
import rasterio
from rasterio.windows import Window

from engine.areas import M2_PER_HECTARE, ClassTally
from engine.categories import read_category_names, value_lut
from engine.errors import InputError
from engine.io_out import check_writable, partial_path, publish, write_json
from engine.metrics import confusion, scores
from engine.progress import Reporter
from engine.raster import grid_window, row_blocks
from engine.runtime import NEVER_CANCELLED, CancelToken
from engine.vector import (
    field_value,
    geometry_in,
    is_vector_source,
    missing_bindings,
    open_layer,
    osgeo_modules,
    raster_srs,
    require_gpkg,
    source_file,
    source_srs,
    unplaced_hint,
)

WRITE_CHUNK = 20_000  # sample points written between cancel checks and progress events
PER_CLASS = 50  # points per map class: Olofsson et al. suggest 50-100 for the rare classes
Z95 = 1.96  # half width of a 95 % interval in standard errors (the convention the literature reports in)
BLOCK_BYTES = 16 * 2**20  # map rows read at a time (whole rows of the file's tiles, at least)
SAMPLE_FIELDS = ("id", "map_class", "map_name", "reference")


# ----------------------------------------------------------------------------------------------- estimates


def stratified_estimates(counts: np.ndarray, mapped: np.ndarray) -> dict:
    """Accuracies and class areas from a sample stratified by map class.

    ``counts`` (K, K): sample units by map class (rows) and reference class (columns); ``mapped`` (K,):
    how much of the map each class covers (hectares or pixels). Strata without a sample unit are left
    out (the estimates then cover the rest of the map: ``coverage``). Every estimate comes with the half
    width of its 95 % interval (None where a stratum has a single unit, whose variance is unknown)."""
    n = np.asarray(counts, np.float64)
    mapped = np.asarray(mapped, np.float64)
    k = n.shape[0]
    n_i = n.sum(1)
    sampled = n_i > 0
    total = float(mapped[sampled].sum())
    all_mapped = float(mapped.sum())
    if total <= 0:
        raise ValueError("no mapped stratum has a sample unit")
    w = np.where(sampled, mapped / total, 0.0)
    frac = np.divide(n, n_i[:, None], out=np.zeros_like(n), where=sampled[:, None])
    p = w[:, None] * frac  # estimated share of the (sampled) map in each map x reference cell
    ref_share = p.sum(0)
    dof = n_i - 1
    known = np.all(dof[sampled] > 0)  # a stratum of one unit has no variance estimate
    inv = np.divide(1.0, dof, out=np.zeros_like(dof), where=dof > 0)
    cell_var = frac * (1 - frac) * inv[:, None]  # variance of each row's proportions, per unit
    users = np.diag(frac)
    oa = float(np.trace(p))
    producers = np.divide(np.diag(p), ref_share, out=np.full(k, np.nan), where=ref_share > 0)

    def half(var) -> float | None:
        return float(Z95 * np.sqrt(max(var, 0.0))) if known else None

    big_n = w * total  # mapped amount of the sampled strata
    est_n = (big_n[:, None] * frac).sum(0)  # estimated amount of each reference class
    share_var = (w[:, None] ** 2 * cell_var).sum(0)  # variance of each reference class's estimated share
    per_class = []
    for j in range(k):
        prod = None
        if ref_share[j] > 0:
            others = sum(big_n[i] ** 2 * cell_var[i, j] for i in range(k) if i != j)
            var = big_n[j] ** 2 * (1 - producers[j]) ** 2 * cell_var[j, j] + producers[j] ** 2 * others
            prod = {"estimate": float(producers[j]), "ci95": half(var / est_n[j] ** 2)}
        users_entry = None
        if sampled[j]:
            low, high = wilson(n[j, j], n_i[j])
            users_entry = {"estimate": float(users[j]),
                           "ci95": float(Z95 * np.sqrt(cell_var[j, j])) if dof[j] > 0 else None,
                           "low": low, "high": high}
        area_half = half(share_var[j])
        per_class.append({
            "samples": int(n_i[j]),
            "users_accuracy": users_entry,
            "producers_accuracy": prod,
            "mapped": float(mapped[j]),
            "estimated": {"estimate": float(total * ref_share[j]),
                          "ci95": None if area_half is None else total * area_half},
        })
    oa_var = float((w ** 2 * users * (1 - users) * inv).sum())
    return {"overall_accuracy": {"estimate": oa, "ci95": half(oa_var)},
            "classes": per_class, "coverage": total / all_mapped if all_mapped else 0.0,
            "area_proportions": p.tolist()}


def wilson(successes: float, n: float) -> tuple[float, float]:
    """The 95 % Wilson score interval of a binomial proportion: ``successes`` of ``n``.

    A user's accuracy is one: the share of a map class's sample points that really are that class, a
    simple random sample within the class. The symmetric interval (``ci95``, the estimate ± 1.96 standard
    errors) has no width when every point agrees, and held the true user's accuracy only 74-93 % of the
    time on Indian Pines (bench/accuracy.py); Wilson's is never empty and stays within 0..1."""
    if n <= 0:
        return 0.0, 1.0
    p, z2 = successes / n, Z95 * Z95
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


# ------------------------------------------------------------------------------------------------ the map


def _open_map(prediction: str):
    if not os.path.exists(prediction):
        raise InputError(f"Map {prediction} does not exist; check the path.", "bad_prediction")
    try:
        ds = rasterio.open(prediction)
    except rasterio.errors.RasterioIOError as e:
        raise InputError(f"Map {prediction} cannot be read ({e}); give a class raster written by SemiSeg "
                         "(prediction.tif).", "bad_prediction") from e
    if ds.count != 1 or ds.dtypes[0] != "uint8":
        ds.close()
        raise InputError(f"Map {prediction} is not a single-band 8-bit class raster; give a prediction.tif "
                         "written by SemiSeg.", "bad_prediction")
    return ds


def _read_map(ds, row: int, height: int) -> np.ndarray:
    """Rows ``row``..``row + height`` of the map, 0 wherever it is no data: its nodata value when that is
    not 0 (a map made elsewhere, with 255 as no data), or its mask. SemiSeg's own maps have 0 as no data."""
    win = Window(0, row, ds.width, height)
    block = ds.read(1, window=win)
    if ds.nodata != 0:  # (with 0 as nodata the mask is where the values are 0 already)
        block[ds.read_masks(1, window=win) == 0] = 0
    return block


def _row_blocks(ds) -> list[tuple[int, int]]:
    """The map's row blocks: about BLOCK_BYTES each, whole rows of the file's own tiles."""
    tile = ds.block_shapes[0][0] if ds.block_shapes else 1
    return list(row_blocks(ds.height, ds.width, 1, BLOCK_BYTES, align=tile))


CHUNK = 2**21  # pixels counted at a time: np.bincount widens uint8 to 8-byte integers (16 MiB here)


def _histogram(block: np.ndarray) -> np.ndarray:
    """(256,) pixels per value of a uint8 block, counted in chunks so that the temporaries stay small."""
    flat = block.ravel()
    counts = np.zeros(256, np.int64)
    for i in range(0, flat.size, CHUNK):
        counts += np.bincount(flat[i:i + CHUNK], minlength=256)
    return counts


def _tally(tally: ClassTally, block: np.ndarray, row: int) -> None:
    """``tally.add`` a few rows at a time (its per-pixel area weights are 8 bytes a pixel)."""
    rows = max(1, CHUNK // max(1, block.shape[1]))
    for r in range(0, block.shape[0], rows):
        tally.add(block[r:r + rows], row + r)


def _class_names(names: list[str], k: int) -> list[str]:
    """Names of classes 1..``k``: the map's category names (``names``, index 0 = class 1), "class N" where
    it has none."""
    return [(names[i] if i < len(names) and names[i] else f"class {i + 1}") for i in range(k)]


def _gdal():
    return osgeo_modules(missing_bindings("Accuracy samples"))


# --------------------------------------------------------------------------------------------------- sample


def allocate(pixels: np.ndarray, total: int, minimum: int) -> np.ndarray:
    """Points per class for ``pixels`` (pixels of each class): ``total`` in all, in proportion to the
    classes' pixels but at least ``minimum`` for every class, never more than a class's pixels; shares
    rounded by largest remainder. A class held at the floor (or at all of its pixels) leaves the rest to
    the others in proportion to theirs. Floors come first: a ``total`` under them gives every class its
    floor (``draw_sample`` refuses such a total)."""
    pixels = np.asarray(pixels, np.int64)
    n = np.zeros(len(pixels), np.int64)
    present = pixels > 0
    if total >= pixels.sum():
        return pixels.copy()
    held = np.zeros(len(pixels), bool)  # classes whose count is decided: the floor, or all their pixels
    while True:
        free = present & ~held
        left = total - n[held].sum()
        if not free.any():
            return n
        share = np.zeros(len(pixels))
        share[free] = left * pixels[free] / pixels[free].sum()
        floor = np.minimum(pixels, minimum)
        low, full = free & (share < floor), free & (share > pixels)
        if not (low | full).any():
            break
        n[low], n[full] = floor[low], pixels[full]
        held |= low | full
    n[free] = np.floor(share[free]).astype(np.int64)
    extra = int(left - n[free].sum())  # largest remainders get the points lost to rounding down
    order = np.argsort(-(share - np.floor(share)) * free, kind="stable")
    n[order[:extra]] += 1
    return n


def draw_sample(prediction: str, out: str, per_class: int = PER_CLASS, seed: int = 0,
                reporter: Reporter | None = None, cancel: CancelToken = NEVER_CANCELLED,
                total: int | None = None, minimum: int = PER_CLASS) -> dict:
    """Write random points of each class of the map ``prediction`` to the GeoPackage ``out``: ``per_class``
    of each class or, given ``total``, that many shared by area with at least ``minimum`` per class
    (``allocate``); all of a class's pixels where it has fewer. At pixel centres, in random order, with the
    fields ``id``, ``map_class``, ``map_name`` and an empty ``reference``. Written under a partial name and
    renamed when complete."""
    reporter = reporter or Reporter("none")
    gdal, ogr, osr = _gdal()
    require_gpkg(out, "The sample is")
    if total is None and per_class < 1:
        raise InputError(f"Give at least 1 point per class, not {per_class}.", "bad_usage")
    if total is not None and (minimum < 1 or total < 1):
        raise InputError(f"Give at least 1 point in all and per class, not {total} and {minimum}.",
                         "bad_usage")
    t0 = time.monotonic()
    with _open_map(prediction) as ds:
        check_writable(out)
        blocks = _row_blocks(ds)
        reporter.stage("count", len(blocks), message=f"counting the classes of {ds.width}×{ds.height} px")
        counts = np.zeros(256, np.int64)
        for b, (r, h) in enumerate(blocks):
            cancel.check()
            counts += _histogram(_read_map(ds, r, h))
            reporter.progress("count", b + 1, len(blocks))
        if counts[1:].sum() == 0:
            raise InputError(f"Map {prediction} has no mapped pixel (all are 0); give a map with classes.",
                             "bad_prediction")
        k = int(np.flatnonzero(counts)[-1])
        found = read_category_names(prediction)[1:]
        names = _class_names(found, max(k, len(found)))
        needed = int(np.minimum(counts[1:k + 1], minimum).sum())  # the floor of every class
        if total is not None and total < needed:
            raise InputError(f"{total} points cannot give each of the map's classes {minimum}; give at least "
                             f"{needed} points in all, or a smaller minimum per class.", "bad_usage")
        wanted = (np.full(k, per_class, np.int64) if total is None
                  else allocate(counts[1:k + 1], total, minimum))
        rng = np.random.default_rng(seed)
        take = np.minimum(wanted, counts[1:k + 1])
        ranks = {c: np.sort(rng.choice(int(counts[c]), int(take[c - 1]), replace=False))
                 for c in range(1, k + 1) if counts[c] > 0}
        seen = np.zeros(256, np.int64)
        rows, cols, classes = [], [], []
        reporter.stage("sample", len(blocks), message=f"{sum(len(v) for v in ranks.values())} points")
        for b, (r, h) in enumerate(blocks):
            cancel.check()
            block = _read_map(ds, r, h).ravel()
            for start in range(0, block.size, CHUNK):  # the pixels in order, a chunk at a time
                chunk = block[start:start + CHUNK]
                here = np.bincount(chunk, minlength=256)
                for c, want in ranks.items():
                    lo, hi = np.searchsorted(want, [seen[c], seen[c] + here[c]])
                    if hi > lo:
                        flat = np.flatnonzero(chunk == c)[want[lo:hi] - seen[c]] + start
                        rows.append(flat // ds.width + r)
                        cols.append(flat % ds.width)
                        classes.append(np.full(len(flat), c))
                seen += here
            reporter.progress("sample", b + 1, len(blocks))
        rows, cols, classes = (np.concatenate(a) for a in (rows, cols, classes))
        order = rng.permutation(len(rows))  # interpreted in random order, not class by class
        rows, cols, classes = rows[order], cols[order], classes[order]
        xs, ys = rasterio.transform.xy(ds.transform, rows, cols, offset="center")
        srs = raster_srs(ds.crs)
    part = partial_path(out)
    vec = layer = None
    try:
        reporter.stage("write", len(rows), message=f"writing {len(rows):,} points")
        vec = ogr.GetDriverByName("GPKG").CreateDataSource(part)
        layer = vec.CreateLayer(os.path.splitext(os.path.basename(out))[0], srs, ogr.wkbPoint)
        for name, kind in zip(SAMPLE_FIELDS, (ogr.OFTInteger, ogr.OFTInteger, ogr.OFTString, ogr.OFTInteger),
                              strict=True):
            layer.CreateField(ogr.FieldDefn(name, kind))
        vec.StartTransaction()
        defn = layer.GetLayerDefn()
        for i, (x, y, c) in enumerate(zip(np.atleast_1d(xs), np.atleast_1d(ys), classes, strict=True)):
            f = ogr.Feature(defn)
            f.SetField("id", i + 1)
            f.SetField("map_class", int(c))
            f.SetField("map_name", names[int(c) - 1])
            point = ogr.Geometry(ogr.wkbPoint)
            point.AddPoint_2D(float(x), float(y))
            f.SetGeometry(point)
            layer.CreateFeature(f)
            if (i + 1) % WRITE_CHUNK == 0:
                cancel.check()
                reporter.progress("write", i + 1, len(rows))
        vec.CommitTransaction()
        cancel.check()
        layer = vec = None
        publish(part, out)
    except RuntimeError as e:
        cancel.check()
        raise InputError(f"Writing the sample {out} failed ({e}); check the free space there.",
                         "sample_failed") from e
    finally:
        layer = vec = None  # closed before its file goes
        if os.path.exists(part):
            os.remove(part)
    per = {names[c - 1]: int(len(v)) for c, v in ranks.items()}
    floor = per_class if total is None else minimum
    short = [f"{n} ({v})" for n, v in per.items() if v < floor]
    if short:
        reporter.warning(f"Some classes have fewer pixels than {floor} points; all their pixels were "
                         f"taken: {', '.join(short)}.", "sample_small_class")
    reporter.emit("artifact", kind="sample", path=os.path.abspath(out))
    return {"sample": os.path.abspath(out), "points": int(len(rows)), "per_class": per,
            "seed": seed, "sample_seconds": round(time.monotonic() - t0, 2)}


# --------------------------------------------------------------------------------------------------- assess


class Reference:
    """Reference sample units on the map's grid: pixel ``rows``, ``cols``, reference ``classes`` (1..K),
    and what the file said of them (``drawn``: the map class a SemiSeg sample point was drawn from, 0 where
    unknown)."""

    def __init__(self, rows, cols, classes, drawn=None, points: bool = True, skipped: int = 0,
                 outside: int = 0):
        self.rows = np.asarray(rows, np.int64)
        self.cols = np.asarray(cols, np.int64)
        self.classes = np.asarray(classes, np.int64)
        self.drawn = np.zeros(len(self.rows), np.int64) if drawn is None else np.asarray(drawn, np.int64)
        self.points, self.skipped, self.outside = points, skipped, outside


def _class_of(value, names: list[str], path: str, field: str) -> int:
    """A reference value as a class number (0: not filled in yet), or the sentence refusing it."""
    if value is None:
        return 0
    if isinstance(value, float):
        if value != round(value):
            raise InputError(f"Reference {path} field '{field}' holds {value}; give whole class numbers or "
                             "class names.", "reference_values")
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return 0
        if text.lstrip("-").isdigit():
            value = int(text)
        else:
            lookup = {n.strip().lower(): i + 1 for i, n in enumerate(names)}
            if text.lower() not in lookup:
                raise InputError(f"Reference {path} field '{field}' holds '{text}', which is no class of the "
                                 f"map ({', '.join(names)}); use those names or their numbers.",
                                 "reference_values")
            return lookup[text.lower()]
    value = int(value)
    if value < 0 or value > len(names):
        raise InputError(f"Reference {path} field '{field}' holds {value}, but the map's classes are 1.."
                         f"{len(names)} ({', '.join(names)}); 0 or empty means not checked yet.",
                         "reference_values")
    return value


def _as_reference(e: InputError, path: str) -> str:
    """A label-loading refusal (engine.labels) said of a reference raster."""
    if e.code == "labels_outside_image":
        return f"Reference {path} lies outside the map; give reference data that overlaps it."
    if e.code == "labels_empty":
        return f"Reference {path} holds no reference class (all 0); fill in the classes checked."
    return e.message.replace(f"Labels {path} have", f"Reference {path} has").replace(
        f"Labels {path}", f"Reference {path}")


def read_reference(path: str, ds, names: list[str], field: str = "reference") -> Reference:
    """The reference units in ``path`` on the grid of the open map ``ds``: a vector file's features (a
    point is one unit, the pixel under it; a line or polygon gives every pixel it covers) or a class
    raster's labeled pixels."""
    file = source_file(path)  # FILE|layername=NAME|subset=...: a layer of a vector file
    if not os.path.exists(file):
        raise InputError(f"Reference {file} does not exist; check the path.", "reference_not_found")
    if not is_vector_source(path):
        from engine.labels import load_labels  # noqa: PLC0415

        try:
            labels = load_labels(path, ds, min_classes=1, keep_values=True)  # the map's own values
        except InputError as e:  # its sentences speak of labels to paint: say it of the reference
            raise InputError(_as_reference(e, path), e.code.replace("labels", "reference")) from e
        rows, cols, classes = [], [], []
        for crop in labels.patches.crops:
            rr, cc = np.nonzero(crop.array)
            rows.append(rr + crop.row)
            cols.append(cc + crop.col)
            classes.append(crop.array[rr, cc])
        classes = np.concatenate(classes)
        if classes.max() > len(names):
            raise InputError(f"Reference {path} holds class {int(classes.max())}, but the map's classes are "
                             f"1..{len(names)}; number the reference like the map.", "reference_values")
        return Reference(np.concatenate(rows), np.concatenate(cols), classes, points=False)
    _gdal()
    fix = "name the field that holds the reference class."
    src, layer, fields = open_layer(path, "Reference", field, fix, "reference")
    drawn_field = "map_class" if "map_class" in fields else None
    target, assumed = raster_srs(ds.crs), source_srs(path)
    inverse = ~ds.transform
    rows, cols, classes, drawn = [], [], [], []
    points, skipped, outside = True, 0, 0
    for f in layer:
        v = _class_of(field_value(f, field), names, path, field)
        g = geometry_in(f, layer, target, f"Reference {path}", assumed) if v else None
        if g is None:
            skipped += 1
            continue
        d = f.GetField(drawn_field) if drawn_field else None
        if g.GetDimension() == 0:
            xy = [g.GetPoint_2D(i) for i in range(g.GetPointCount())] or \
                 [g.GetGeometryRef(i).GetPoint_2D() for i in range(g.GetGeometryCount())]
            for x, y in xy:
                c, r = inverse * (x, y)
                r, c = int(np.floor(r)), int(np.floor(c))
                if 0 <= r < ds.height and 0 <= c < ds.width:
                    rows.append(np.array([r]))
                    cols.append(np.array([c]))
                    classes.append(np.array([v]))
                    drawn.append(np.array([int(d or 0)]))
                else:
                    outside += 1
            continue
        points = False
        rr, cc = _covered_pixels(g, ds)
        if not len(rr):
            outside += 1
            continue
        rows.append(rr)
        cols.append(cc)
        classes.append(np.full(len(rr), v))
        drawn.append(np.zeros(len(rr), np.int64))
    if not rows:
        what = "lie outside the map" if outside else f"have no class in field '{field}' yet"
        fix = (unplaced_hint(layer, target, ds.name, assumed) if outside else "") or \
            "fill in the reference class of some points over the map first"
        raise InputError(f"Reference {path}: its features {what}; {fix}.", "reference_empty")
    return Reference(*(np.concatenate(a) for a in (rows, cols, classes, drawn)), points=points,
                     skipped=skipped, outside=outside)


def _on_labels(ref: Reference, ds, labels: str, label_field: str | None) -> np.ndarray:
    """Which reference units lie on a labeled pixel of ``labels`` (raster or vector, on ``ds``'s grid)."""
    from engine.labels import load_labels  # noqa: PLC0415

    painted = np.zeros(len(ref.rows), bool)
    patches = load_labels(labels, ds, label_field, min_classes=1).patches
    for crop in patches.crops if patches is not None else []:
        h, w = crop.array.shape
        inside = ((ref.rows >= crop.row) & (ref.rows < crop.row + h) & (ref.cols >= crop.col)
                  & (ref.cols < crop.col + w))
        idx = np.flatnonzero(inside)
        painted[idx] |= crop.array[ref.rows[idx] - crop.row, ref.cols[idx] - crop.col] > 0
    return painted


def _covered_pixels(g, ds) -> tuple[np.ndarray, np.ndarray]:
    """Grid rows and columns of the pixels whose centres a line or polygon covers (all it touches for
    lines), within the map."""
    from rasterio.features import rasterize  # noqa: PLC0415

    x0, x1, y0, y1 = g.GetEnvelope()
    win = grid_window((x0, y0, x1, y1), ds)
    if win is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    r0, c0, h, w = win
    arr = rasterize([(json.loads(g.ExportToJson()), 1)], out_shape=(h, w),
                    transform=ds.window_transform(Window(c0, r0, w, h)), fill=0,
                    all_touched=g.GetDimension() == 1, dtype="uint8")
    rr, cc = np.nonzero(arr)
    return rr + r0, cc + c0


def assess(prediction: str, reference: str, field: str = "reference", reporter: Reporter | None = None,
           cancel: CancelToken = NEVER_CANCELLED, labels: str | None = None,
           label_field: str | None = None) -> dict:
    """Accuracy and class areas of the map ``prediction`` from the reference ``reference`` (see the module
    docstring). ``labels``: the labels the map was trained on, if known; units on them are counted (and
    warned about), since a run holds its labeled pixels at their class. Returns the report as a dict
    (``engine.accuracy.report_text`` puts it in words)."""
    reporter = reporter or Reporter("none")
    t0 = time.monotonic()
    with _open_map(prediction) as ds:
        found = read_category_names(prediction)[1:]
        ref = read_reference(reference, ds, _class_names(found, len(found) or 255), field)
        blocks = _row_blocks(ds)
        reporter.stage("assess", len(blocks), message=f"{len(ref.rows):,} reference units over the map")
        order = np.argsort(ref.rows, kind="stable")
        sorted_rows = ref.rows[order]
        mapped_at = np.zeros(len(ref.rows), np.int64)
        tally = ClassTally(255, ds.transform, ds.crs)
        for b, (r, h) in enumerate(blocks):
            cancel.check()
            block = _read_map(ds, r, h)
            _tally(tally, block, r)
            lo, hi = np.searchsorted(sorted_rows, [r, r + h])
            idx = order[lo:hi]
            mapped_at[idx] = block[ref.rows[idx] - r, ref.cols[idx]]
            reporter.progress("assess", b + 1, len(blocks))
        painted = _on_labels(ref, ds, labels, label_field) if labels else np.zeros(len(ref.rows), bool)
    largest = int(np.flatnonzero(tally.pixels)[-1])
    if not found and ref.classes.max() > largest:  # a map without class names: its classes are its values
        raise InputError(f"Reference {reference} holds class {int(ref.classes.max())}, but the map's classes "
                         f"are 1..{largest}; number the reference like the map.", "reference_values")
    k = max(len(found), largest, int(ref.classes.max()))
    names = _class_names(found, k)
    on_map = mapped_at > 0
    off_map = int((~on_map).sum())
    if not on_map.any():
        raise InputError(f"Reference {reference}: none of its units lies on a mapped pixel of {prediction}; "
                         "give reference data over the map.", "reference_empty")
    m, r = mapped_at[on_map], ref.classes[on_map]
    values = np.arange(1, k + 1)  # the map value of each class of the report
    if any(not n.strip() for n in found):  # a map of class codes (10, 20, 30): the values between are none
        seen = set(np.flatnonzero(tally.pixels[1:k + 1]) + 1) | set(np.unique(r).tolist())
        values = np.array([v for v in range(1, k + 1) if (v <= len(found) and found[v - 1].strip())
                           or v in seen])
        lut = value_lut(values).astype(np.int64)
        m, r = lut[m], lut[r]
        names = [names[v - 1] for v in values]
        k = len(values)
    counts = np.zeros((k, k), np.int64)
    np.add.at(counts, (m - 1, r - 1), 1)
    amount = (tally.m2[values] / M2_PER_HECTARE if tally.m2 is not None
              else tally.pixels[values].astype(np.float64))
    est = stratified_estimates(counts, amount)
    unit = "hectare" if tally.m2 is not None else "pixel"
    changed = int(((ref.drawn[on_map] > 0) & (ref.drawn[on_map] != m)).sum())
    warnings = []
    if changed:
        warnings.append((f"{changed} of the sample's points now lie on another class than the map they were "
                         "drawn from; the map has changed since, so draw a new sample for it (the estimates "
                         "assume the sample was drawn by this map's classes).", "sample_map_changed"))
    unsampled = [names[i] for i in range(k) if amount[i] > 0 and counts[i].sum() == 0]
    if unsampled:
        warnings.append((f"No reference unit lies on {', '.join(unsampled)}; the estimates cover the other "
                         f"{100 * est['coverage']:.1f} % of the map.", "class_not_sampled"))
    # classes the sample never found outside their own map class: their producer's accuracy reads 1 and
    # their area interval holds no omission, although the other classes' pixels may hide some too rare
    # for this sample to see (the intervals then hold the truth less often than 95 %: Benchmarks)
    others = counts.sum(1) > 0
    blind = [names[j] for j in range(k) if counts[j, j] > 0 and others.sum() > 1
             and counts[np.arange(k) != j, j].sum() == 0]
    if blind:
        fewest = int(counts.sum(1)[others].min())
        its, leave = ("their", "area intervals leave") if len(blind) > 1 else ("its", "area interval leaves")
        warnings.append((f"No checked point of another map class turned out to be {', '.join(blind)}: "
                         f"{its} producer's accuracy reads 1.00 and {its} {leave} out omissions too rare "
                         f"for this sample to see (under about 1 in {fewest} points of a map class); more "
                         "points in the large classes narrow that blind spot.", "no_omission_seen"))
    trained_on = int((painted & on_map).sum())
    if trained_on:
        warnings.append((f"{trained_on} of the reference units lie on pixels painted for training; the map "
                         "holds those at their painted class, so they flatter it (a new sample avoids them "
                         "only by chance; their share of the map is small).", "reference_on_labels"))
    if not ref.points:
        warnings.append(("The reference has lines, polygons or raster pixels: every pixel counts as one "
                         "unit, but pixels of one shape are not independent, so the 95 % intervals are too "
                         "narrow; a sample of points (python -m engine sample) gives honest ones.",
                         "reference_clustered"))
    for message, code in warnings:
        reporter.warning(message, code)
    classes = {}
    for i, name in enumerate(names):
        classes[name] = {**est["classes"][i], "reference_units": int(counts[:, i].sum())}
    plain = scores(confusion(r, m, k), names)
    return {"prediction": os.path.abspath(prediction), "reference": os.path.abspath(reference),
            "units": int(on_map.sum()), "points": ref.points, "not_filled_in": ref.skipped,
            "outside_map": ref.outside + off_map, "on_training_labels": trained_on if labels else None,
            "unit": unit, "class_values": [int(v) for v in values],
            "overall_accuracy": est["overall_accuracy"], "coverage": est["coverage"], "classes": classes,
            "confusion_map_by_reference": counts.tolist(),
            "area_proportions_map_by_reference": est["area_proportions"],
            "sample": {"oa": plain["oa"], "kappa": plain["kappa"], "miou": plain["miou"]},
            "warnings": [code for _, code in warnings],
            "warning_messages": [message for message, _ in warnings],
            "assess_seconds": round(time.monotonic() - t0, 2)}


def _pm(entry: dict | None, digits: int = 2, scale: float = 1.0) -> str:
    """"0.93 ± 0.05", or "0.93 (0.85–0.97)" for an estimate with its own bounds (a user's accuracy)."""
    if entry is None:
        return "–"
    value = f"{entry['estimate'] * scale:,.{digits}f}"
    if "low" in entry:
        return f"{value} ({entry['low'] * scale:,.{digits}f}–{entry['high'] * scale:,.{digits}f})"
    return value if entry["ci95"] is None else f"{value} ± {entry['ci95'] * scale:,.{digits}f}"


REPORT_SUFFIXES = (".json", ".csv")


def write_report(path: str, report: dict) -> None:
    """The report as JSON (``.json``) or as the tables of an accuracy assessment (``.csv``: the classes'
    estimates, then the error matrix in sample counts and in estimated shares of the map's area), written
    under a partial name and renamed when complete."""
    if path.lower().endswith(".json"):
        write_json(path, report)
        return
    names = list(report["classes"])
    unit = "ha" if report["unit"] == "hectare" else "px"

    def pm(entry: dict | None) -> list:
        if entry is None:
            return ["", ""]
        return [entry["estimate"], "" if entry["ci95"] is None else entry["ci95"]]

    def bounds(entry: dict | None) -> list:
        return ["", "", ""] if entry is None else [entry["estimate"], entry["low"], entry["high"]]

    rows = [["class", "points", f"mapped ({unit})", f"estimated ({unit})", "± 95 %", "user's accuracy",
             "95 % from", "95 % to", "producer's accuracy", "± 95 %"]]
    for name, c in report["classes"].items():
        rows.append([name, c["samples"], c["mapped"], *pm(c["estimated"]), *bounds(c["users_accuracy"]),
                     *pm(c["producers_accuracy"])])
    oa = report["overall_accuracy"]
    oa_bounds = ["", ""] if oa["ci95"] is None else [oa["estimate"] - oa["ci95"], oa["estimate"] + oa["ci95"]]
    rows.append(["overall accuracy", report["units"], "", "", "", oa["estimate"], *oa_bounds])
    for title, matrix in (("sample units", report["confusion_map_by_reference"]),
                          ("estimated share of the map", report["area_proportions_map_by_reference"])):
        rows += [[], [f"map (rows) by reference (columns): {title}", *names, "total"]]
        rows += [[name, *row, sum(row)] for name, row in zip(names, matrix, strict=True)]
        rows.append(["total", *(sum(col) for col in zip(*matrix, strict=True)), sum(map(sum, matrix))])
    part = partial_path(path)
    try:
        with open(part, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        publish(part, path)
    finally:
        if os.path.exists(part):
            os.remove(part)


def report_text(report: dict) -> str:
    """The report as a few lines for a terminal: overall accuracy, then one line per class."""
    unit = "ha" if report["unit"] == "hectare" else "px"
    lines = [f"Overall accuracy {_pm(report['overall_accuracy'], 3)} (95 % interval, {report['units']:,} "
             f"reference {'points' if report['points'] else 'pixels'})",
             f"{'class':<20} {'n':>5} {'user’s':>13} {'producer’s':>13} {'mapped ' + unit:>14} "
             f"{'estimated ' + unit:>24}"]
    for name, c in report["classes"].items():
        lines.append(f"{name[:20]:<20} {c['samples']:>5} {_pm(c['users_accuracy']):>13} "
                     f"{_pm(c['producers_accuracy']):>13} {c['mapped']:>14,.0f} {_pm(c['estimated'], 0):>24}")
    return "\n".join(lines)
