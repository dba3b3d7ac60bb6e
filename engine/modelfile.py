"""The ``.semiseg`` model file: one torch file of tensors and plain values, no pickled code.

It loads with ``torch.load(weights_only=True)``, so a model file from a colleague cannot run code.
It holds the weights of every ensemble member, the architecture and training config, class names and
colours, band count and normalisation, method, metrics and provenance.
"""

from __future__ import annotations

import errno
import os
import shutil
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from engine import __version__
from engine.categories import ClassTable
from engine.config import ModelConfig, TrainConfig
from engine.errors import InputError, OutputError
from engine.io_out import partial_path, publish
from engine.labels import LabelCrop, LabelPatches
from engine.models import SegNet, build_model
from engine.raster import BandStats

FORMAT = "semiseg-model"
FORMAT_VERSION = 1


NEVER = -1.0e4  # a classifier bias no pixel's logit overcomes (and one that float16 still holds)


@dataclass
class SavedModel:
    config: TrainConfig
    classes: ClassTable
    band_stats: BandStats
    members: list[dict]  # state_dicts; predictions average their softmax
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    # the labeled pixels held out of training (None: none): a warm start from this model validates on
    # them again, since they are the ones it never learnt from
    validation: LabelPatches | None = None

    @property
    def bands(self) -> int:
        return self.config.model.in_channels

    def networks(self, device: torch.device, channels_last: bool | None = None) -> list[SegNet]:
        """The members, ready to predict on ``device``. ``channels_last`` (None: on a CPU) gives them
        channels-last (NHWC) weights and sets their ``channels_last``, so engine.predict feeds them
        channels-last windows: oneDNN's convolutions run about 1.45× faster on 4-band windows and no
        slower on 200 bands, with the same maps (bench/channels_last.py). Export asks for NCHW."""
        if channels_last is None:
            channels_last = device.type == "cpu"
        unlabeled = self.unlabeled_classes()
        nets = []
        for sd in self.members:
            net = build_model(self.config.model)
            net.load_state_dict(sd)
            if unlabeled:  # never predicted: nothing taught the network what they look like
                with torch.no_grad():
                    net.head.bias[unlabeled] = NEVER
            net = net.to(device).eval()
            if channels_last:
                net = net.to(memory_format=torch.channels_last)
                net.channels_last = True
            nets.append(net)
        return nets

    def unlabeled_classes(self) -> list[int]:
        """0-based indexes of the classes that had no labeled pixel in training (a class table with gaps,
        e.g. land-cover codes 1, 3, 7): networks() gives them a logit no pixel reaches, so a map never
        shows a class nobody painted."""
        counts = self.metrics.get("labeled_pixels") or {}
        return [i for i, name in enumerate(self.classes.names) if counts.get(name, 1) == 0]

    def info(self) -> dict:
        return {"method": self.config.method, "preset": self.config.preset, "bands": self.bands,
                "classes": self.classes.to_dict(), "architecture": self.config.model.to_dict(),
                "ensemble_members": len(self.members), "metrics": self.metrics,
                "provenance": self.provenance, "config": self.config.to_dict()}


def save(model: SavedModel, path: str) -> None:
    """Write atomically: a reader never sees a half-written model file."""
    payload = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "engine_version": __version__,
        "config": model.config.to_dict(), "classes": model.classes.to_dict(),
        "band_stats": model.band_stats.to_dict(),
        "members": [{k: v.detach().cpu() for k, v in sd.items()} for sd in model.members],
        "metrics": model.metrics, "provenance": model.provenance,
        "validation": [{"row": c.row, "col": c.col, "labels": torch.from_numpy(c.array)}
                       for c in (model.validation.crops if model.validation is not None else [])],
    }
    atomic_save(payload, path)


def atomic_save(payload: dict, path: str) -> None:
    """``torch.save`` to a partial name, then rename: a reader never sees a half-written file."""
    tmp = partial_path(path)
    try:
        try:
            torch.save(payload, tmp)
        except RuntimeError as e:  # torch's writer reports a failed write (a full disk) as "unexpected pos"
            if shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < 64 * 2**20:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path) from e  # the CLI's disk_full
            raise OutputError(f"Writing {path} failed ({str(e).strip().splitlines()[0][:160]}); check the "
                              "disk, or write it to another folder.", "output_write_failed") from e
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def safe_load(path: str, refusal: str, code: str):
    """``torch.load(weights_only=True)``: tensors and plain containers only, never code. Any failure
    (damaged, foreign, code-carrying) becomes one InputError with the sentence ``refusal``."""
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols; we refuse them anyway
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  (weights_only never runs code; any failure means "not ours")
        raise InputError(refusal, code) from e


def load(path: str) -> SavedModel:
    """Read a model file; anything else (corrupt, foreign, code-carrying) is refused."""
    if not os.path.exists(path):
        raise InputError(f"Model {path} does not exist; check the path.", "model_not_found")
    d = safe_load(path, f"Model {path} is not a SemiSeg model file (damaged, or not made by SemiSeg) and "
                  "was refused without running it; train a model or ask for the original file.",
                  "model_invalid")
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise InputError(f"Model {path} is not a SemiSeg model file; train a model with "
                         "`python -m engine train` first.", "model_invalid")
    if int(d.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(f"Model {path} was made by a newer SemiSeg; update SemiSeg to use it.",
                         "model_version")
    try:
        cfg = TrainConfig.from_dict(d["config"])
        crops = [LabelCrop(v["labels"].numpy().astype(np.uint8), int(v["row"]), int(v["col"]))
                 for v in d.get("validation", [])]
        return SavedModel(cfg, ClassTable.from_dict(d["classes"]), BandStats.from_dict(d["band_stats"]),
                          list(d["members"]), dict(d.get("metrics", {})), dict(d.get("provenance", {})),
                          LabelPatches(crops) if crops else None)
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"Model {path} is incomplete or damaged; retrain it.", "model_invalid") from e


def model_config_of(model: SavedModel) -> ModelConfig:
    return model.config.model
