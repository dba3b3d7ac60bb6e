"""The strong view (band-generic), fixed-norm noise and CutMix (engine.augment)."""

import pytest
import torch

from engine.augment import cutmix, cutmix_boxes, fixed_norm_noise, strong_view


@pytest.mark.parametrize("bands", [1, 3, 4, 200])
def test_strong_view_any_band_count(bands):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, bands, 16, 16, generator=g)
    y = strong_view(x, generator=g)
    assert y.shape == x.shape and torch.isfinite(y).all()
    assert not torch.allclose(x, y)


@pytest.mark.parametrize("bands", [4, 50])
def test_fused_strong_view_is_jitter_then_saturation_then_mixing_then_noise(bands):
    """The one-matrix strong view equals its definition applied step by step with the same draws."""
    x = torch.rand(3, bands, 12, 12, generator=torch.Generator().manual_seed(1)) * 2 - 1
    fused = strong_view(x, generator=torch.Generator().manual_seed(7))

    g = torch.Generator().manual_seed(7)
    n = len(x)
    b = (torch.rand(n, bands, generator=g) * 2 - 1) * 0.2  # per-band brightness and contrast
    k = 1 + (torch.rand(n, bands, generator=g) * 2 - 1) * 0.2
    tile_mean = x.mean(dim=(-2, -1), keepdim=True)
    y = (x - tile_mean) * k[..., None, None] + tile_mean + b[..., None, None]
    s = 0.8 + 0.4 * torch.rand(n, 1, 1, 1, generator=g)  # saturation about the per-pixel band mean
    weak = 0.5 + 0.3 * torch.rand(n, 1, 1, 1, generator=g)
    pick = torch.rand(n, 1, 1, 1, generator=g) < 0.2
    pixel_mean = y.mean(1, keepdim=True)
    y = pixel_mean + (y - pixel_mean) * torch.where(pick, weak, s)
    r = torch.randn(n, bands, bands, generator=g) / bands ** 0.5  # band mixing
    y = y + 0.1 * torch.einsum("nij,njhw->nihw", r, y)
    y = fixed_norm_noise(y, generator=g)
    assert torch.allclose(fused, y, atol=1e-5)


@pytest.mark.parametrize("shape", [(2, 3, 256, 256), (2, 200, 32, 32)])
def test_noise_has_fixed_norm_scaled_for_tile_size(shape):
    x = torch.zeros(shape)
    noise = fixed_norm_noise(x, norm=20.0, generator=torch.Generator().manual_seed(0))
    expected = 20.0 * (x[0].numel() / (3 * 256 * 256)) ** 0.5
    assert torch.allclose(noise.flatten(1).norm(dim=1), torch.full((shape[0],), expected), rtol=1e-4)


def test_cutmix_keeps_images_and_labels_aligned():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (4, 24, 24), generator=g)
    x = labels[:, None].float().repeat(1, 3, 1, 1) * 10  # the image encodes its labels
    boxes = cutmix_boxes(4, 24, 24, p=1.0, generator=g)
    assert boxes.any(dim=(1, 2)).all()
    mx, ml = cutmix(boxes, x, labels)
    assert torch.equal(mx[:, 0] / 10, ml.float())
    assert torch.equal(ml[0][boxes[0]], labels[3][boxes[0]])  # pasted from the batch's next sample
    assert torch.equal(ml[0][~boxes[0]], labels[0][~boxes[0]])


def test_cutmix_batch_of_one_pastes_the_turned_tile():
    labels = torch.arange(16).reshape(1, 4, 4)
    boxes = torch.zeros(1, 4, 4, dtype=torch.bool)
    boxes[0, :2, :2] = True
    (ml,) = cutmix(boxes, labels)
    assert torch.equal(ml[0, :2, :2], labels[0].flip(0, 1)[:2, :2])
