"""Training methods by name. Each module is one readable page built on engine.training."""

from __future__ import annotations

from engine.methods.supervised import Supervised

REGISTRY = {"supervised": Supervised}


def method_class(name: str):
    from engine.errors import InputError  # noqa: PLC0415

    if name not in REGISTRY:
        raise InputError(f"Method '{name}' is not available in this engine; choose one of "
                         f"{', '.join(sorted(REGISTRY))}.", "method_unknown")
    return REGISTRY[name]
