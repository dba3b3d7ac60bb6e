"""Training configuration: one typed dataclass, named presets, CLI flags only map onto it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

Method = Literal["supervised", "icnet", "inpaint", "inpaint+icnet"]
METHODS: tuple[str, ...] = ("supervised",)  # methods this engine build can train


@dataclass
class ModelConfig:
    """Network architecture; stored in the model file so predict rebuilds the same network."""

    arch: Literal["unet", "resnet18", "resnet34", "resnet50"] = "unet"
    widths: tuple[int, ...] = (24, 48, 96, 192)  # U-Net channels per level (CPU-friendly default)
    in_channels: int = 3  # set from the image's band count
    num_classes: int = 2  # set from the labels

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["widths"] = tuple(d.get("widths", cls.widths))
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained. Defaults are the ``balanced`` preset."""

    method: str = "supervised"
    preset: str = "balanced"
    model: ModelConfig = field(default_factory=ModelConfig)
    tile_size: int = 128  # training crop side, px (multiple of 16)
    batch_size: int = 8  # labeled tiles per step
    steps: int = 1500  # optimisation steps
    lr: float = 0.01  # SGD learning rate (poly decay)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    val_fraction: float = 0.2  # share of labeled pixels held out, by whole strokes/blocks
    val_every: int = 100  # steps between validations
    seed: int = 0
    memory_budget_mb: int = 1024  # image pixels held in RAM for training tiles
    unlabeled_batch_size: int = 8  # used by semi-supervised methods

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        model = ModelConfig.from_dict(d.pop("model", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(model=model, **{k: v for k, v in d.items() if k in known})


# Presets: named instances. `fast` is sized for a ~1 Mpx image to a finished map in a few minutes on
# 2 CPU cores; `best` assumes a GPU or patience.
PRESETS: dict[str, TrainConfig] = {
    "fast": TrainConfig(preset="fast", model=ModelConfig(widths=(16, 32, 64, 128)), tile_size=96,
                        batch_size=8, steps=400, val_every=50),
    "balanced": TrainConfig(preset="balanced"),
    "best": TrainConfig(preset="best", model=ModelConfig(widths=(32, 64, 128, 256, 256)), tile_size=192,
                        batch_size=8, steps=4000, val_every=200, memory_budget_mb=2048),
}


def make_config(preset: str = "balanced", **overrides) -> TrainConfig:
    """A fresh copy of ``preset`` with ``overrides`` (None values are ignored) applied."""
    cfg = TrainConfig.from_dict(PRESETS[preset].to_dict())
    for k, v in overrides.items():
        if v is None:
            continue
        if k in {f.name for f in dataclasses.fields(ModelConfig)}:
            setattr(cfg.model, k, v)
        else:
            setattr(cfg, k, v)
    return cfg
