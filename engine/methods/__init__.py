"""Training methods by name. Each module is one readable page built on engine.training."""

from __future__ import annotations

from engine.methods.icnet import ICNet
from engine.methods.inpaint import Inpaint
from engine.methods.inpaint_icnet import InpaintICNet
from engine.methods.supervised import Supervised

REGISTRY = {"supervised": Supervised, "icnet": ICNet, "inpaint": Inpaint, "inpaint+icnet": InpaintICNet}


def method_class(name: str):
    from engine.errors import InputError  # noqa: PLC0415

    if name not in REGISTRY:
        raise InputError(f"Method '{name}' is not available in this engine; choose one of "
                         f"{', '.join(sorted(REGISTRY))}.", "method_unknown")
    return REGISTRY[name]
