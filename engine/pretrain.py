"""The ``pretrain`` job and the encoder file it writes.

Pretrain an image once (inpainting, no labels), then fine-tune from the saved encoder each time the
analyst adds labels: ``python -m engine pretrain --image IMG --out ENC`` then
``python -m engine train --method inpaint --init ENC ...``.

The encoder file, like the ``.semiseg`` model file, is one torch file of tensors and plain values
that loads with ``torch.load(weights_only=True)``: the inpainter's encoder (and decoder) weights, the
band count and normalisation they were trained with, the model architecture and the pretraining
config. Fine-tuning normalises its image with these band statistics, so the encoder sees the values
it learnt from.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
from dataclasses import dataclass, field

import torch
from torch import nn

from engine import __version__
from engine.config import InpaintConfig, ModelConfig, TrainConfig
from engine.data import Chip, TileSampler, build_chips
from engine.errors import InputError
from engine.inpainting import InpaintingPretrainer
from engine.modelfile import atomic_save, safe_load
from engine.progress import Reporter
from engine.raster import BandStats, band_count, band_summary, compute_band_stats, open_image
from engine.runtime import NEVER_CANCELLED, CancelToken

FORMAT = "semiseg-encoder"
FORMAT_VERSION = 1


@dataclass
class EncoderFile:
    """Pretrained weights for the segmentation network's encoder (and decoder)."""

    model: ModelConfig  # architecture; in_channels = band count
    band_stats: BandStats
    encoder: dict  # state dict of SegNet.encoder
    decoder: dict = field(default_factory=dict)  # state dict of SegNet.decoder (may be empty)
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)
    metrics: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)
    head: dict = field(default_factory=dict)  # the inpainter's restoration head (older files: empty)

    @property
    def bands(self) -> int:
        return self.model.in_channels


def save_encoder(enc: EncoderFile, path: str) -> None:
    """Write atomically (a reader never sees half a file)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "engine_version": __version__,
               "model": enc.model.to_dict(), "bands": enc.bands, "band_stats": enc.band_stats.to_dict(),
               "encoder": {k: v.detach().cpu() for k, v in enc.encoder.items()},
               "decoder": {k: v.detach().cpu() for k, v in enc.decoder.items()},
               "head": {k: v.detach().cpu() for k, v in enc.head.items()},
               "inpaint": dataclasses.asdict(enc.inpaint),
               "metrics": enc.metrics, "provenance": enc.provenance}
    atomic_save(payload, path)


def load_encoder(path: str) -> EncoderFile:
    """Read an encoder file; anything else (a model file, a foreign or damaged file) is refused."""
    if not os.path.exists(path):
        raise InputError(f"Encoder {path} does not exist; make one with `python -m engine pretrain`.",
                         "encoder_not_found")
    d = safe_load(path, f"Encoder {path} is not a SemiSeg encoder file (damaged, or not made by SemiSeg) "
                  "and was refused without running it; make one with `python -m engine pretrain`.",
                  "encoder_invalid")
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        hint = (" (it is a trained model; give it to `predict`)" if isinstance(d, dict)
                and d.get("format") == "semiseg-model" else "")
        raise InputError(f"{path} is not a SemiSeg encoder file{hint}; make one with "
                         "`python -m engine pretrain`.", "encoder_invalid")
    if int(d.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(f"Encoder {path} was made by a newer SemiSeg; update SemiSeg to use it.",
                         "encoder_version")
    try:
        return EncoderFile(ModelConfig.from_dict(d["model"]), BandStats.from_dict(d["band_stats"]),
                           dict(d["encoder"]), dict(d.get("decoder", {})),
                           InpaintConfig.from_dict(d.get("inpaint", {})), dict(d.get("metrics", {})),
                           dict(d.get("provenance", {})), dict(d.get("head", {})))
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"Encoder {path} is incomplete or damaged; pretrain again.",
                         "encoder_invalid") from e


def pretrain_chips(chips: list[Chip], stats: BandStats, cfg: TrainConfig, device: torch.device,
                   reporter: Reporter, cancel: CancelToken = NEVER_CANCELLED) -> EncoderFile:
    """Run stage 1 on tiles drawn anywhere in ``chips``; ``cfg.model.in_channels`` must be set."""
    sampler = TileSampler(chips, cfg.inpaint.tile_size, cfg.seed + 7919)  # its own tile stream
    trainer = InpaintingPretrainer(cfg.model, cfg.inpaint, sampler, device, cfg.seed)
    result = trainer.run(reporter, cancel)
    model = ModelConfig.from_dict(cfg.model.to_dict())
    return EncoderFile(model, stats, result.encoder, result.decoder, cfg.inpaint, result.metrics,
                       head=result.head)


def unlabeled_chips(paths: list[str], stats: BandStats | None, bands: int | None, budget_mb: int,
                    seed: int, nodata=()) -> tuple[list[Chip], BandStats, int]:
    """Label-free chips from rasters with the same bands; band stats from the first when not given;
    ``nodata``: open_image's."""
    chips: list[Chip] = []
    for i, path in enumerate(paths):
        with open_image(path, nodata) as ds:
            here = band_count(ds)
            if bands is not None and here != bands:
                raise InputError(f"Image {path} has {band_summary(ds)} but {paths[0]} has {bands}; give "
                                 "rasters with the same bands.", "band_mismatch")
            if stats is None:
                stats = compute_band_stats(ds, path, seed=seed)
            bands = here
            chips += build_chips(ds, stats, None, None, budget_mb if i == 0 else budget_mb // 2, seed)
    return chips, stats, bands


def pretrain(image: str, out: str, cfg: TrainConfig, device: torch.device, reporter: Reporter,
             unlabeled: list[str] | None = None, cancel: CancelToken = NEVER_CANCELLED) -> dict:
    """The ``pretrain`` job: image(s) -> encoder file at ``out``; returns its metrics."""
    reporter.stage("prepare", message=f"reading {os.path.basename(image)} (+{len(unlabeled or [])} more)")
    torch.manual_seed(cfg.seed)
    chips, stats, bands = unlabeled_chips([image, *(unlabeled or [])], None, None, cfg.memory_budget_mb,
                                          cfg.seed, cfg.nodata)
    if not chips:
        raise InputError(f"Image {image} has no valid pixels to learn from; check its nodata value.",
                         "image_all_nodata")
    cfg.model.set_bands(bands)
    enc = pretrain_chips(chips, stats, cfg, device, reporter, cancel)
    enc.provenance = provenance([image, *(unlabeled or [])], device)
    cancel.check()  # a cancel after the last step keeps the earlier encoder file
    save_encoder(enc, out)
    return enc.metrics


def pretraining_key(rasters: list[str], cfg: TrainConfig) -> str:
    """Fingerprint of everything an in-run pretraining depends on (``cfg.model`` must know the bands).

    The rasters (absolute path, size, modification time), the architecture, the stage-1 settings, the
    seed, the memory budget and the engine version; the class count and the fine-tuning settings are
    left out, so adding labels or a class keeps an image's encoder. An encoder file made by a run
    with ``--encoder-cache`` carries it in its provenance.
    """
    files = []
    for path in rasters:
        st = os.stat(path)
        files.append([os.path.abspath(path), st.st_size, st.st_mtime_ns])
    stage1 = {k: v for k, v in dataclasses.asdict(cfg.inpaint).items()
              if k not in InpaintConfig.FINE_TUNE_FIELDS}
    model = {k: v for k, v in cfg.model.to_dict().items() if k != "num_classes"}
    payload = {"rasters": files, "inpaint": stage1, "model": model, "seed": cfg.seed,
               "memory_budget_mb": cfg.memory_budget_mb, "engine_version": __version__}
    if cfg.nodata:  # (only when given, so that the encoders cached before the option keep their key)
        payload["nodata"] = [float(v) for v in cfg.nodata]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def cached_encoder(path: str, key: str, reporter: Reporter) -> EncoderFile | None:
    """The encoder at ``path`` if it was pretrained for ``key``; None (and why, as a message) if not."""
    if not os.path.exists(path):
        return None
    try:
        enc = load_encoder(path)
    except InputError as e:
        if not path.lower().endswith(".semienc"):  # another file (a model, a map): never replaced
            raise InputError(f"Encoder cache {path} is not an encoder file and is left as it is; give "
                             "--encoder-cache a .semienc path (a damaged .semienc is pretrained again).",
                             "encoder_cache_invalid") from e
        reporter.warning(f"The cached encoder {path} is damaged or not an encoder file; pretraining again "
                         "and replacing it.", "encoder_cache_invalid")
        return None
    if enc.provenance.get("cache_key") != key:
        reporter.stage("prepare", message=f"the cached encoder {os.path.basename(path)} was pretrained on "
                       "other rasters or settings; pretraining again")
        return None
    reporter.stage("prepare", message=f"reusing the encoder pretrained on this image "
                   f"({os.path.basename(path)}, {enc.provenance.get('created', '?')})")
    return enc


def save_cached_encoder(enc: EncoderFile, path: str, key: str, rasters: list[str], device) -> None:
    """Write an encoder pretrained within a run to the cache ``path`` (atomically), keyed for reuse."""
    enc.provenance = provenance(rasters, device, cache_key=key)
    save_encoder(enc, path)


def provenance(rasters: list[str], device, **extra) -> dict:
    """Where and when an encoder was pretrained: the rasters' names, the time, the software."""
    return {"image": os.path.basename(rasters[0]), "unlabeled": [os.path.basename(p) for p in rasters[1:]],
            "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "engine_version": __version__, "torch": str(torch.__version__), "device": str(device), **extra}


def load_pretrained(net: nn.Module, enc: EncoderFile, decoder: bool = True, levels: int = 0) -> list[str]:
    """Copy ``enc``'s encoder (and decoder) weights into a SegNet ``net``; return the loaded parts.

    ``levels`` > 0 loads only the encoder's first ``levels`` levels (from the input), the rest keeping
    their random start; a decoder needs the whole encoder under it. Shapes must match exactly, the whole
    file's even when part of it is loaded: a silent partial load would train from random weights while
    claiming otherwise, so any mismatch is an error with the reason.
    """
    if decoder and enc.decoder and levels > 0:
        raise ValueError("the pretrained decoder needs the whole pretrained encoder (levels=0)")
    parts = [("encoder", net.encoder, enc.encoder)]
    if decoder and enc.decoder:
        parts.append(("decoder", net.decoder, enc.decoder))
    for name, module, state in parts:
        own = module.state_dict()
        bad = sorted(set(own) ^ set(state)) + sorted(k for k in own if k in state
                                                     and own[k].shape != state[k].shape)
        if bad:
            raise InputError(f"The pretrained {name} does not fit this network ({len(bad)} tensor(s) differ, "
                             f"e.g. {bad[0]}); fine-tune with the architecture it was pretrained with.",
                             "encoder_mismatch")
    for name, module, state in parts:
        if name == "encoder" and levels > 0:
            prefixes = tuple(p for level in module.level_prefixes()[:levels] for p in level)
            state = {**module.state_dict(), **{k: v for k, v in state.items() if k.startswith(prefixes)}}
        module.load_state_dict(state)
    return [name for name, _, _ in parts]
