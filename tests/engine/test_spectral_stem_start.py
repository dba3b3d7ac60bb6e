"""The spectral stem's start on the image's principal directions (ModelConfig.stem_init)."""

from __future__ import annotations

import numpy as np
import torch

from engine.config import ModelConfig, make_config
from engine.data import Chip, TileSampler, principal_axes, sample_pixels, stem_axes
from engine.methods.icnet import ICNet
from engine.methods.supervised import Supervised
from engine.models import SpectralStem, build_model
from engine.training import TrainData


def low_rank_pixels(n: int, bands: int, variances, seed: int = 0):
    """(n, bands) pixels whose variance lies along len(variances) known orthonormal directions."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.normal(size=(bands, len(variances))))
    z = rng.normal(size=(n, len(variances))) * np.sqrt(variances)
    return z @ basis.T + 0.3, basis


def test_principal_axes_finds_the_directions_in_order_and_skips_empty_ones():
    pixels, basis = low_rank_pixels(4000, 40, [100.0, 10.0, 1.0])
    axes = principal_axes(pixels, 8)
    assert axes.shape == (40, 3)  # rank 3: no fourth direction is made up
    assert np.allclose(np.linalg.norm(axes, axis=0), 1.0)
    agreement = np.abs(axes.T @ basis)  # |cos| between found and true directions
    assert np.all(np.diag(agreement) > 0.99), agreement
    assert principal_axes(pixels, 2).shape == (40, 2)
    assert principal_axes(np.ones((50, 40)), 4).shape == (40, 0)  # a constant image has none


def test_sample_pixels_takes_valid_pixels_only():
    x = np.zeros((5, 20, 20), np.float32)
    valid = np.zeros((20, 20), bool)
    valid[:10] = True
    x[:, :10] = 1.0  # valid pixels are 1, invalid ones 0
    chip = Chip(0, 0, x, valid, np.zeros((20, 20), np.uint8), np.zeros((20, 20), np.uint8))
    got = sample_pixels([chip], max_pixels=50)
    assert got.shape == (50, 5) and np.all(got == 1.0)


def test_the_stem_starts_on_each_direction_with_both_signs():
    cfg = ModelConfig(widths=(8, 16), num_classes=3)
    cfg.set_bands(60)
    axes = np.linalg.qr(np.random.default_rng(1).normal(size=(60, 5)))[0]
    torch.manual_seed(0)
    random_start = build_model(cfg).encoder.mix[0].weight[:, :, 0, 0].detach().clone()
    torch.manual_seed(0)
    net = build_model(cfg, band_axes=axes)
    assert isinstance(net.encoder, SpectralStem)
    w = net.encoder.mix[0].weight[:, :, 0, 0].detach().numpy()
    half = cfg.spectral_stem // 2
    assert np.allclose(w[:5], axes.T, atol=1e-6)
    assert np.allclose(w[half:half + 5], -axes.T, atol=1e-6)
    # channels without a direction keep the random start they would have had
    assert torch.equal(torch.from_numpy(w[5:half]), random_start[5:half])
    assert torch.equal(torch.from_numpy(w[half + 5:]), random_start[half + 5:])
    # and nothing else in the network changed
    torch.manual_seed(0)
    plain = build_model(cfg)
    assert torch.equal(net.head.weight, plain.head.weight)


def hyperspectral_data(bands: int = 48, size: int = 64) -> TrainData:
    pixels, _ = low_rank_pixels(size * size, bands, [50.0, 5.0, 2.0, 1.0, 0.5, 0.2])
    x = pixels.T.reshape(bands, size, size).astype(np.float32)
    train = np.zeros((size, size), np.uint8)
    train[5, 5], train[40, 40] = 1, 2
    chip = Chip(0, 0, x, np.ones((size, size), bool), train, np.zeros_like(train))
    chip.index()
    return TrainData([chip], TileSampler([chip], 32, 0), 2, bands, ["a", "b"])


def test_every_methods_networks_start_on_the_images_directions_unless_asked_not_to():
    data = hyperspectral_data()
    want = principal_axes(sample_pixels(data.chips), 16)
    assert want.shape == (data.bands, 6)  # the scene's six directions
    for stem_init in ("pca", "random"):
        for method in (Supervised, ICNet):
            cfg = make_config("fast", method=method.name, stem_init=stem_init)
            cfg.model.set_bands(data.bands)
            cfg.model.num_classes = data.num_classes
            m = method(cfg, data, torch.device("cpu"))
            nets = [m.net] if method is Supervised else [s.net for s in m.students]
            for net in nets:
                w = net.encoder.mix[0].weight[:want.shape[1], :, 0, 0].detach().numpy()
                assert np.allclose(w, want.T, atol=1e-5) == (stem_init == "pca"), (method.name, stem_init)
    assert stem_axes(ModelConfig(spectral_stem=0), data.chips) is None  # RGB-like: no stem, no start


def test_old_model_files_rebuild_with_a_random_start():
    d = ModelConfig().to_dict()
    del d["stem_init"]
    assert ModelConfig.from_dict(d).stem_init == "random"
