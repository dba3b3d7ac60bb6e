"""How much of each class a map holds: pixels, share and hectares, tallied while the map is written.

The first question asked of a land-cover map is how much of each class it holds. Hectares come from the
raster's own grid: a projected CRS gives every pixel the same area (its grid cell in the CRS's unit,
converted to metres: feet and US survey feet included); a geographic CRS gives each row its own, the
area on the WGS 84 ellipsoid of the latitude band the row covers (exact for a north-up grid; another
datum's ellipsoid differs by a few parts in a hundred thousand). A raster without a CRS, or with a unit
PROJ cannot convert to metres, gets pixels and shares only.
"""

from __future__ import annotations

import math

import numpy as np

WGS84_A = 6_378_137.0
WGS84_F = 1 / 298.257223563
M2_PER_HECTARE = 10_000.0


def _zone(lat_deg: np.ndarray) -> np.ndarray:
    """Area per radian of longitude between the equator and ``lat_deg`` on the WGS 84 ellipsoid, over b²."""
    e2 = WGS84_F * (2 - WGS84_F)
    e = math.sqrt(e2)
    s = np.sin(np.radians(np.clip(lat_deg, -90.0, 90.0)))
    return s / (2 * (1 - e2 * s * s)) + np.log((1 + e * s) / (1 - e * s)) / (4 * e)


def row_pixel_areas(transform, crs, row0: int, rows: int) -> np.ndarray | None:
    """Area in m² of one pixel in each of the rows ``row0`` .. ``row0 + rows - 1`` of a raster with this
    affine ``transform`` and ``crs``; None when the grid says nothing of metres (no CRS, an unknown unit,
    a rotated geographic grid)."""
    if crs is None:
        return None
    t = transform
    if crs.is_geographic:
        if t.b != 0 or t.d != 0:
            return None
        lat = t.f + t.e * np.arange(row0, row0 + rows + 1, dtype=np.float64)  # row edges
        b = WGS84_A * (1 - WGS84_F)
        return b * b * np.abs(np.diff(_zone(lat))) * abs(math.radians(t.a))
    if not crs.is_projected:
        return None
    try:
        metres = float(crs.linear_units_factor[1])
    except Exception:  # noqa: BLE001  (a unit PROJ cannot name: no hectares)
        return None
    return np.full(rows, abs(t.a * t.e - t.b * t.d) * metres * metres)


class ClassTally:
    """Pixels and m² per class of a class raster (0 = no data, 1..K), added block by block as it is
    written; ``transform`` and ``crs`` are the written raster's."""

    def __init__(self, num_classes: int, transform, crs) -> None:
        self.num_classes = num_classes
        self.transform, self.crs = transform, crs
        self.pixels = np.zeros(num_classes + 1, np.int64)
        probe = row_pixel_areas(transform, crs, 0, 1)
        self.m2 = None if probe is None else np.zeros(num_classes + 1, np.float64)

    def add(self, classes: np.ndarray, row: int) -> None:
        """Count a block of ``classes`` (uint8, 0 = no data) whose first row is ``row`` of the raster."""
        k = self.num_classes + 1
        self.pixels += np.bincount(classes.ravel(), minlength=k)[:k]
        if self.m2 is not None:
            areas = row_pixel_areas(self.transform, self.crs, row, classes.shape[0])
            weights = np.broadcast_to(areas[:, None], classes.shape).ravel()
            self.m2 += np.bincount(classes.ravel(), weights=weights, minlength=k)[:k]

    def summary(self, names: list[str]) -> dict:
        """``{"unit": "hectare" or None, "classes": {name: {"pixels", "share", "hectares"}}}``: share of
        the mapped area (no data left out; by area where hectares are known, else by pixels)."""
        amount = self.pixels[1:] if self.m2 is None else self.m2[1:]
        total = float(amount.sum())
        classes = {}
        for i, name in enumerate(names):
            entry = {"pixels": int(self.pixels[i + 1]),
                     "share": float(amount[i] / total) if total else 0.0}
            if self.m2 is not None:
                entry["hectares"] = float(self.m2[i + 1] / M2_PER_HECTARE)
            classes[name] = entry
        return {"unit": None if self.m2 is None else "hectare", "classes": classes,
                "nodata_pixels": int(self.pixels[0])}


def areas_text(summary: dict, limit: int | None = None) -> str:
    """``water 12.4 ha (3.1 %), forest ...`` (largest first; pixels where hectares are unknown)."""
    items = sorted(summary["classes"].items(), key=lambda kv: -kv[1]["share"])[:limit]
    parts = []
    for name, e in items:
        amount = (f"{_hectares(e['hectares'])} ha" if e.get("hectares") is not None
                  else f"{e['pixels']:,} px")
        parts.append(f"{name} {amount} ({100 * e['share']:.1f} %)")
    return ", ".join(parts)


def _hectares(ha: float) -> str:
    return f"{ha:,.0f}" if ha >= 100 else f"{ha:.3g}"
