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
    b, k = (v.view(n, c, 1, 1) for v in _jitter_draws(n, c, brightness, contrast, x, generator))
    mean = x.mean(dim=(-2, -1), keepdim=True)
    return torch.addcmul(mean * (1 - k) + b, x, k)  # (x - mean) * k + mean + b in one pass


def _jitter_draws(n: int, c: int, brightness: float, contrast: float, like: torch.Tensor, generator):
    """(N, C) brightness offsets and contrast scales of band_jitter."""
    b = (torch.rand(n, c, generator=generator) * 2 - 1).to(like) * brightness
    k = 1 + (torch.rand(n, c, generator=generator) * 2 - 1).to(like) * contrast
    return b, k


# ---------------------------------------------------------------- strong views (semi-supervised)
# ICNet's strong view (METHODS.md §1) is colour jitter + random grayscale + Gaussian noise of fixed
# L2 norm. Colour jitter, hue and grayscale only mean something for RGB; for any other band count we
# use the band-generic counterparts below (documented in README): per-band brightness/contrast for
# brightness/contrast, a blend towards the per-pixel band mean for saturation (and, partially, for
# grayscale: a full grayscale would erase the spectral signature multispectral and hyperspectral
# classes are told apart by), and a small random linear mixing of the bands for hue.

_LUMA = (0.299, 0.587, 0.114)


def _uniform(n: int, lo: float, hi: float, like: torch.Tensor, generator) -> torch.Tensor:
    return (lo + (hi - lo) * torch.rand(n, 1, 1, 1, generator=generator)).to(like)


def rgb_colour_jitter(x: torch.Tensor, brightness: float = 0.2, contrast: float = 0.2,
                      saturation: float = 0.2, hue: float = 0.1, grayscale_p: float = 0.2,
                      generator: torch.Generator | None = None) -> torch.Tensor:
    """torchvision-like colour jitter of a (N, 3, H, W) batch, per sample (values are not clipped:
    inputs are band-normalised, not [0, 1] images). Hue turns the chroma plane of YIQ by up to
    ``hue`` of a full turn; grayscale replaces the sample by its luma with probability ``grayscale_p``."""
    n = x.shape[0]
    luma = torch.tensor(_LUMA).to(x).view(1, 3, 1, 1)
    x = x * _uniform(n, 1 - brightness, 1 + brightness, x, generator)
    gray = (x * luma).sum(1, keepdim=True)
    x = gray.mean((-2, -1), keepdim=True) + (x - gray.mean((-2, -1), keepdim=True)) * _uniform(
        n, 1 - contrast, 1 + contrast, x, generator)
    gray = (x * luma).sum(1, keepdim=True)
    x = gray + (x - gray) * _uniform(n, 1 - saturation, 1 + saturation, x, generator)
    if hue > 0:  # rotate (I, Q) about the luma axis
        to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
        theta = (torch.rand(n, generator=generator) * 2 - 1) * hue * 2 * torch.pi
        rot = torch.zeros(n, 3, 3)
        rot[:, 0, 0] = 1
        rot[:, 1, 1], rot[:, 1, 2] = theta.cos(), -theta.sin()
        rot[:, 2, 1], rot[:, 2, 2] = theta.sin(), theta.cos()
        m = (torch.linalg.inv(to_yiq) @ rot @ to_yiq).to(x)
        x = torch.einsum("nij,njhw->nihw", m, x)
    if grayscale_p > 0:
        to_gray = (torch.rand(n, generator=generator) < grayscale_p).to(x.device).view(n, 1, 1, 1)
        x = torch.where(to_gray, (x * luma).sum(1, keepdim=True).expand_as(x), x)
    return x


def _mixing_matrices(n: int, c: int, like: torch.Tensor, generator, saturation: float = 0.2,
                     mixing: float = 0.1, desaturate_p: float = 0.2) -> torch.Tensor:
    """Per-sample (C, C) matrices: the band-generic stand-in for saturation, grayscale and hue.

    Saturation: ``mean + s * (x - mean)`` about the per-pixel band mean, s in [1 - saturation,
    1 + saturation]; with probability ``desaturate_p`` a stronger pull towards the mean (s in [0.5, 0.8]).
    Hue: ``x + mixing * R x`` with R a random (C, C) Gaussian matrix scaled by 1/sqrt(C), a small
    spectrum-dependent distortion of every band by the others. Both are linear in the bands, so the
    result is one matrix per sample: (I + mixing R) (s I + (1 - s) J / C).
    """
    s = _uniform(n, 1 - saturation, 1 + saturation, like, generator)
    weak = _uniform(n, 0.5, 0.8, like, generator)
    pick = (torch.rand(n, 1, 1, 1, generator=generator) < desaturate_p).to(like.device)
    s = torch.where(pick, weak, s).view(n, 1, 1)
    eye = torch.eye(c, dtype=like.dtype, device=like.device)
    m = s * eye + (1 - s) / c
    if mixing > 0 and c > 1:
        r = (torch.randn(n, c, c, generator=generator) / c ** 0.5).to(like)
        m = (eye + mixing * r) @ m
    return m


def fixed_norm_noise(x: torch.Tensor, norm: float = 20.0, reference: int = 3 * 256 * 256,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Add Gaussian noise rescaled to a fixed global L2 norm per sample.

    ICNet uses norm 20 on a 3×256×256 tile; the norm is scaled by sqrt(numel / reference) so the
    per-value noise level (about 0.045) is the same for any band count and tile size.
    """
    noise = torch.randn(x.shape, generator=generator).to(x)
    target = norm * (x[0].numel() / reference) ** 0.5
    scale = target / noise.flatten(1).norm(dim=1).clamp(min=1e-12)
    return torch.addcmul(x, noise, scale.view(-1, *[1] * (x.dim() - 1)))


def strong_view(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """ICNet's strong view of a batch: colour jitter (RGB) or its band-generic stand-in, then noise."""
    if x.shape[1] == 3:
        x = rgb_colour_jitter(x, generator=generator)
    else:  # band_jitter, then the mixing matrices: both affine in each pixel's spectrum, so fused
        n, c = x.shape[:2]
        b, k = _jitter_draws(n, c, 0.2, 0.2, x, generator)
        m = _mixing_matrices(n, c, x, generator)
        bias = m @ (x.mean(dim=(-2, -1)) * (1 - k) + b)[..., None]  # (N, C, 1)
        x = torch.baddbmm(bias, m * k[:, None, :], x.flatten(2)).view_as(x)
    return fixed_norm_noise(x, generator=generator)


def cutmix_boxes(n: int, h: int, w: int, p: float = 0.5, area: tuple[float, float] = (0.1, 0.5),
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """(N, H, W) bool: per sample, with probability ``p``, one random box of ``area`` of the tile."""
    boxes = torch.zeros(n, h, w, dtype=torch.bool)
    for i in range(n):
        if torch.rand(1, generator=generator).item() >= p:
            continue
        frac = area[0] + (area[1] - area[0]) * torch.rand(1, generator=generator).item()
        aspect = float(torch.empty(1).uniform_(0.5, 2.0, generator=generator))
        bh = max(1, min(h, round((frac * h * w * aspect) ** 0.5)))
        bw = max(1, min(w, round(frac * h * w / bh)))
        r = int(torch.randint(0, h - bh + 1, (1,), generator=generator))
        c = int(torch.randint(0, w - bw + 1, (1,), generator=generator))
        boxes[i, r:r + bh, c:c + bw] = True
    return boxes


def cutmix(boxes: torch.Tensor, *tensors: torch.Tensor) -> list[torch.Tensor]:
    """Paste, inside each sample's box, the same place of the batch's next sample (CutMix).

    Every tensor (N, ..., H, W) is mixed with the same boxes, so images and their (pseudo-)labels stay
    aligned. With a batch of one tile the partner is the tile turned by 180°.
    """
    out = []
    for t in tensors:
        partner = t.roll(1, dims=0) if t.shape[0] > 1 else t.flip(-2, -1)
        m = boxes.to(t.device).view(boxes.shape[0], *[1] * (t.dim() - 3), *boxes.shape[1:])
        out.append(torch.where(m, partner, t))
    return out
