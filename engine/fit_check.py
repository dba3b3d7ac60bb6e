"""Does a raster fit a model? Warnings before a model segments imagery unlike what it learnt from.

A model applied to another raster sees its bands through the normalisation of the training image and
its texture at the training image's pixel size. Imagery of another sensor, another scaling (reflectance
0..1 against 0..10000, 8 against 16 bits) or another resolution gives a map that looks like a map and is
wrong, with nothing to tell the analyst. These checks compare what the model file records of its training
image with the raster to segment and say so, in one sentence each, without stopping the prediction.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import InputError
from engine.raster import BandStats, band_count, compute_band_stats

# a band's 2nd-98th percentile range this many times wider or narrower than in training, or its middle
# moved by more than one training range, is imagery the model has not seen
RANGE_RATIO = 3.0
CENTRE_SHIFT = 1.0
# pixels this many times larger or smaller than in training show the scene at another scale
PIXEL_RATIO = 2.0


def grid_facts(ds) -> dict:
    """What a model file keeps of its training raster's grid: pixel size along columns and rows (rotation
    included) in metres for a projected CRS, in degrees for a geographic one (``units``; None with no or
    an unknown CRS, the size then in the grid's own units), and the CRS."""
    t = ds.transform
    size = [math.hypot(t.a, t.d), math.hypot(t.b, t.e)]
    crs = ds.crs
    units = None
    if crs is not None and crs.is_geographic:
        units = "degree"
    elif crs is not None and crs.is_projected:
        try:
            factor = float(crs.linear_units_factor[1])  # metres per unit (feet: 0.3048)
        except Exception:  # noqa: BLE001  (a CRS whose unit PROJ cannot name: nothing to compare)
            factor = None
        if factor:
            size, units = [v * factor for v in size], "metre"
    return {"pixel_size": size, "crs": crs.to_string() if crs else None, "units": units}


def _pixel(size: float, units: str) -> str:
    return f"{size:.3g} m" if units == "metre" else f"{size:.3g}°"


def resolution_warning(trained: dict | None, ds, path: str) -> str | None:
    """One sentence when ``ds``'s pixels are more than PIXEL_RATIO times larger or smaller than those of
    the training raster (``trained``: grid_facts of it, from the model file), else None. Only grids in
    the same units are compared (metres with metres, degrees with degrees)."""
    if not trained or not trained.get("units") or not trained.get("pixel_size"):
        return None
    here = grid_facts(ds)
    if here["units"] != trained["units"]:
        return None
    a, b = float(np.mean(here["pixel_size"])), float(np.mean(trained["pixel_size"]))
    if a <= 0 or b <= 0 or max(a / b, b / a) <= PIXEL_RATIO:
        return None
    return (f"Image {path} has {_pixel(a, here['units'])} pixels but the model was trained on "
            f"{_pixel(b, trained['units'])} pixels, so it sees the scene at another scale and its map may be "
            "poor; resample the image to the training resolution, or train on this image.")


def values_warning(trained: BandStats, here: BandStats, path: str, source: str = "the model was trained on",
                   fix: str = "imagery of the same sensor and scaling, or train on this image") -> str | None:
    """One sentence when a band's values lie far from those ``source`` names (its 2nd-98th percentile
    range RANGE_RATIO times wider or narrower, or its middle moved by more than CENTRE_SHIFT training
    ranges), naming the band that differs most, else None; ``fix`` ends it after "give"."""
    width = np.maximum(trained.high - trained.low, 1e-6)
    ratio = np.maximum(here.high - here.low, 1e-6) / width
    shift = np.abs((here.low + here.high) / 2 - (trained.low + trained.high) / 2) / width
    badness = np.maximum(np.abs(np.log(ratio)) / math.log(RANGE_RATIO), shift / CENTRE_SHIFT)
    band = int(np.argmax(badness))
    if badness[band] <= 1.0:
        return None
    return (f"Image {path} has band values unlike those {source} (band {band + 1}: "
            f"{here.low[band]:.4g} to {here.high[band]:.4g} here, {trained.low[band]:.4g} to "
            f"{trained.high[band]:.4g} there, 2nd to 98th percentile), so its map may be poor; give "
            f"{fix}.")


def fit_warnings(model, ds, path: str) -> list[tuple[str, str]]:
    """(code, sentence) for each way the open raster ``ds`` at ``path`` differs from the model's training
    raster; [] when it fits (or nothing is known to compare)."""
    if band_count(ds) != model.bands:
        return []  # prediction refuses it, with its own sentence
    out = []
    res = resolution_warning(model.provenance.get("grid"), ds, path)
    if res:
        out.append(("resolution_differs", res))
    try:
        here = compute_band_stats(ds, path)  # sampled as the training image's were
    except InputError:  # nothing valid to compare: prediction writes nodata anyway
        return out
    val = values_warning(model.band_stats, here, path)
    if val:
        out.append(("values_differ", val))
    return out
