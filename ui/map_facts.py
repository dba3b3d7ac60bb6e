"""What the engine says about a map it wrote (its ``done`` event), in the words the dock and Processing use.

Pure Python: no Qt, no engine import (the plugin never imports the engine).
"""

from __future__ import annotations


def map_fact(done: dict, key: str):
    """``key`` (e.g. ``class_areas``, ``spots``) of a map: in ``predict``'s done event itself, in ``run``'s
    under ``metrics``; None when the engine did not say."""
    return done.get(key) or (done.get("metrics") or {}).get(key)


def class_area_items(summary: dict | None) -> list[tuple[str, str]]:
    """(class name, "12,749 ha (34.6 %)") per class, largest first: hectares where the grid gives them,
    else pixels, and the share of the mapped area; [] when the engine did not say."""
    classes = (summary or {}).get("classes") or {}
    items = []
    for name, e in sorted(classes.items(), key=lambda kv: -float(kv[1].get("share", 0))):
        ha = e.get("hectares")
        if isinstance(ha, int | float):
            amount = f"{ha:,.0f} ha" if ha >= 100 else f"{ha:.3g} ha"
        else:
            amount = f"{int(e.get('pixels', 0)):,} px"
        items.append((name, f"{amount} ({100 * float(e.get('share', 0)):.1f} %)"))
    return items


def _pm(entry: dict | None, digits: int = 2) -> str:
    """"0.93 ± 0.08" from an engine estimate ``{"estimate", "ci95"}``, or "0.93 (0.85–0.97)" when it has
    its own bounds (``low``, ``high``: a user's accuracy); "–" when there is none."""
    if not isinstance(entry, dict) or not isinstance(entry.get("estimate"), int | float):
        return "–"
    text = f"{entry['estimate']:,.{digits}f}"
    if isinstance(entry.get("low"), int | float) and isinstance(entry.get("high"), int | float):
        return f"{text} ({entry['low']:,.{digits}f}–{entry['high']:,.{digits}f})"
    return text if entry.get("ci95") is None else f"{text} ± {entry['ci95']:,.{digits}f}"


def accuracy_summary(report: dict) -> str:
    """"Overall accuracy 0.89 ± 0.05 from 213 checked points (95 % intervals)" for an ``assess`` report."""
    units = int(report.get("units", 0))
    what = "checked points" if report.get("points") else "reference pixels"
    return f"Overall accuracy {_pm(report.get('overall_accuracy'))} from {units:,} {what} (95 % intervals)"


def accuracy_items(report: dict) -> list[tuple[str, str]]:
    """(class name, "user's 0.93 ± 0.08, producer's 0.89 ± 0.06, 13,110 ± 1,367 ha (mapped 12,591)") per
    class of an ``assess`` report: the accuracies and the area the sample supports next to the map's."""
    unit = "ha" if report.get("unit") == "hectare" else "px"
    items = []
    for name, c in (report.get("classes") or {}).items():
        mapped = c.get("mapped")
        mapped_text = f" (mapped {mapped:,.0f})" if isinstance(mapped, int | float) else ""
        area = f"{_pm(c.get('estimated'), 0)} {unit}{mapped_text}"
        items.append((name, f"user's {_pm(c.get('users_accuracy'))}, producer's "
                            f"{_pm(c.get('producers_accuracy'))}, {area}"))
    return items
