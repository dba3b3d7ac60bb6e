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
