"""Segmentation networks: a configurable U-Net and a U-Net on a torchvision ResNet encoder.

Both take any band count (the first layer is built for it) and return per-pixel class logits at the
input resolution. Input sides must be multiples of ``net.stride`` (prediction pads to that).
"""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.config import ModelConfig


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3×3 conv-BN-ReLU layers: the U-Net's unit."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


class Decoder(nn.Module):
    """Bilinear up-sampling + skip concatenation + conv block, from the deepest level up."""

    def __init__(self, enc_widths: list[int], dec_widths: list[int]):
        super().__init__()
        # enc_widths: channels of encoder features, shallow -> deep; dec_widths: output per decoder level
        self.blocks = nn.ModuleList()
        cin = enc_widths[-1]
        for skip, cout in zip(reversed(enc_widths[:-1]), dec_widths, strict=False):
            self.blocks.append(conv_block(cin + skip, cout))
            cin = cout
        self.out_channels = cin

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        x = feats[-1]
        for block, skip in zip(self.blocks, reversed(feats[:-1]), strict=False):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        return x


class UNetEncoder(nn.Module):
    def __init__(self, in_channels: int, widths: tuple[int, ...]):
        super().__init__()
        self.stages = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.stages.append(conv_block(cin, w))
            cin = w
        self.widths = list(widths)

    def level_prefixes(self) -> list[tuple[str, ...]]:
        """State-dict name prefixes of each level, from the input down (what a partial transfer of
        pretrained weights counts in)."""
        return [(f"stages.{i}.",) for i in range(len(self.stages))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


def cached_imagenet_weights(depth: str) -> str | None:
    """Path of torchvision's ImageNet checkpoint for ``depth`` if it is already in the local torch
    cache. Never downloads: SemiSeg must work offline, so these weights are a bonus, not a need."""
    folder = os.path.join(torch.hub.get_dir(), "checkpoints")
    if not os.path.isdir(folder):
        return None
    hits = sorted(f for f in os.listdir(folder) if f.startswith(f"{depth}-") and f.endswith(".pth"))
    return os.path.join(folder, hits[0]) if hits else None


class ResNetEncoder(nn.Module):
    """torchvision ResNet trunk; conv1 rebuilt for the band count.

    With ``imagenet=True`` and the checkpoint in the local cache, starts from ImageNet weights; for a
    band count other than 3, conv1's filters are the mean RGB filter repeated per band (scaled by
    3/C so activations keep their size). Otherwise random init.
    """

    def __init__(self, in_channels: int, depth: str, imagenet: bool = False):
        super().__init__()
        import torchvision  # noqa: PLC0415  (only needed for this architecture)

        net = getattr(torchvision.models, depth)(weights=None)
        ckpt = cached_imagenet_weights(depth) if imagenet else None
        if ckpt:
            net.load_state_dict(torch.load(ckpt, map_location="cpu", weights_only=True))
        if in_channels != 3:
            rgb = net.conv1.weight.data
            net.conv1 = nn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
            if ckpt:
                mean = rgb.mean(dim=1, keepdim=True) * (3.0 / in_channels)
                net.conv1.weight.data.copy_(mean.repeat(1, in_channels, 1, 1))
        self.imagenet = bool(ckpt)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu)
        self.pool = net.maxpool
        self.layers = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        expansion = 4 if depth == "resnet50" else 1
        self.widths = [64] + [c * expansion for c in (64, 128, 256, 512)]

    def level_prefixes(self) -> list[tuple[str, ...]]:
        """State-dict name prefixes of each level, from the input down (UNetEncoder.level_prefixes)."""
        return [("stem.",), *((f"layers.{i}.",) for i in range(len(self.layers)))]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        y = self.pool(feats[0])
        for layer in self.layers:
            y = layer(y)
            feats.append(y)
        return feats


class SpectralStem(nn.Module):
    """A 1×1 conv-BN-ReLU band mixer in front of an encoder (ModelConfig.spectral_stem). Part of the
    encoder, so inpainting pretraining transfers it with the rest."""

    def __init__(self, bands: int, out: int, body: nn.Module):
        super().__init__()
        self.mix = nn.Sequential(nn.Conv2d(bands, out, 1, bias=False), nn.BatchNorm2d(out),
                                 nn.ReLU(inplace=True))
        self.body = body
        self.widths = body.widths

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.body(self.mix(x))

    def level_prefixes(self) -> list[tuple[str, ...]]:
        """The body's levels (UNetEncoder.level_prefixes); the band mixer belongs to the first."""
        levels = [tuple("body." + p for p in level) for level in self.body.level_prefixes()]
        return [("mix.", *levels[0]), *levels[1:]]

    def start_on(self, axes: np.ndarray) -> None:
        """Start the mixer on the image's principal directions (ModelConfig.stem_init): channel pair
        (i, out/2 + i) projects the bands onto the i-th direction with either sign, so the ReLU after
        the batch norm keeps both halves of each of the leading out/2 components. Channels without a
        direction (an image with fewer) keep their random start."""
        w = self.mix[0].weight
        n = min(axes.shape[1], w.shape[0] // 2)
        a = torch.as_tensor(np.ascontiguousarray(axes[:, :n].T), dtype=w.dtype)
        with torch.no_grad():
            w[:n, :, 0, 0] = a
            w[w.shape[0] // 2:w.shape[0] // 2 + n, :, 0, 0] = -a


class SegNet(nn.Module):
    """Encoder + decoder + 1×1 classifier, logits at input resolution."""

    def __init__(self, cfg: ModelConfig, imagenet: bool = False):
        super().__init__()
        bands = cfg.spectral_stem if cfg.spectral_stem > 0 else cfg.in_channels
        if cfg.arch == "unet":
            self.encoder = UNetEncoder(bands, cfg.widths)
            dec = list(reversed(cfg.widths[:-1]))
            self.stride = 2 ** (len(cfg.widths) - 1)
        else:
            self.encoder = ResNetEncoder(bands, cfg.arch, imagenet)
            dec = [256, 128, 64, 64]
            self.stride = 32
        if cfg.spectral_stem > 0:
            self.encoder = SpectralStem(cfg.in_channels, cfg.spectral_stem, self.encoder)
        self.decoder = Decoder(self.encoder.widths, dec)
        self.head = nn.Conv2d(self.decoder.out_channels, cfg.num_classes, 1)

    CLASSIFIER = "head."  # state-dict names of the 1×1 classifier: the one part tied to the classes

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Decoder features at (up to) input resolution, before the classifier."""
        y = self.decoder(self.encoder(x))
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def build_model(cfg: ModelConfig, imagenet: bool = False, band_axes: np.ndarray | None = None) -> SegNet:
    """A fresh network; ``imagenet`` asks for cached ImageNet weights (ResNet encoders only);
    ``band_axes`` (stem_axes) starts a spectral stem on the image's principal directions."""
    net = SegNet(cfg, imagenet)
    if band_axes is not None and isinstance(net.encoder, SpectralStem):
        net.encoder.start_on(band_axes)
    return net
