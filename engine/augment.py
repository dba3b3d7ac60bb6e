"""Batch augmentations on tensors, defined for any band count.

Geometric: random flips and 90° rotations, applied identically to image and labels. Radiometric:
per-band brightness and contrast jitter (the band-generic stand-in for RGB colour jitter).
"""

from __future__ import annotations

import torch


def random_dihedral(*tensors: torch.Tensor, generator: torch.Generator | None = None):
    """Apply one random flip/rot90 per sample to every tensor (..., H, W) of a batch alike."""
    n = tensors[0].shape[0]
    ops = torch.randint(0, 8, (n,), generator=generator).tolist()
    outs = [t.clone() for t in tensors]
    for i, op in enumerate(ops):
        for t_in, t_out in zip(tensors, outs, strict=False):
            v = t_in[i]
            if op & 4:
                v = v.flip(-1)
            v = torch.rot90(v, op & 3, dims=(-2, -1))
            t_out[i] = v
    return outs


def band_jitter(x: torch.Tensor, brightness: float = 0.2, contrast: float = 0.2,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Per-sample, per-band brightness offset and contrast scale about the band's tile mean."""
    n, c = x.shape[:2]
    b = (torch.rand(n, c, 1, 1, generator=generator) * 2 - 1).to(x) * brightness
    k = 1 + (torch.rand(n, c, 1, 1, generator=generator) * 2 - 1).to(x) * contrast
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return (x - mean) * k + mean + b
