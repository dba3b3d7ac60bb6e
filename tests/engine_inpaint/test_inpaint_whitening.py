"""The whitened spectral restoration loss (InpaintConfig.spectral_whitening): every spectral direction
counts alike, on the same scale as the plain L2."""

import numpy as np
import torch

from engine.cli import main
from engine.data import Chip
from engine.inpainting import pixel_error, restoration_target, spectral_projection
from engine.synthetic import write_scene


def correlated_chip(bands: int = 12, side: int = 64, seed: int = 0) -> tuple[Chip, np.ndarray]:
    """Pixels = mean + a strong shared 'brightness' direction + weak independent 'shape' directions."""
    rng = np.random.default_rng(seed)
    bright = np.ones(bands) / np.sqrt(bands)
    shape = np.linalg.qr(np.c_[bright, rng.normal(size=(bands, bands - 1))])[0][:, 1:3].T  # ⟂ brightness
    n = side * side
    coef = np.c_[rng.normal(0, 0.20, n), rng.normal(0, 0.02, (n, 2))]
    pix = 0.5 + coef @ np.vstack([bright, shape])  # (n, bands) around 0.5
    x = pix.T.reshape(bands, side, side).astype(np.float32)
    valid = np.ones((side, side), bool)
    chip = Chip(0, 0, x, valid, np.zeros((side, side), np.uint8), np.zeros((side, side), np.uint8))
    return chip, np.vstack([bright, shape])


def test_projection_whitens_the_leading_components_and_keeps_the_plain_scale():
    chip, _ = correlated_chip()
    proj = spectral_projection([chip], shrink=0.0, max_components=3)
    t = restoration_target(torch.from_numpy(chip.x)).reshape(chip.x.shape[0], -1).T.double()
    z = (t - t.mean(0)) @ proj.double()
    var = z.var(0)
    assert torch.allclose(var, var.mean().expand(3), rtol=0.05)  # each kept direction counts alike
    # restoring every pixel as the mean scores what the plain L2 over bands scores (same loss scale)
    mean = t.mean(0).float().reshape(1, -1, 1, 1).expand(1, -1, 64, 64)
    target = restoration_target(torch.from_numpy(chip.x))[None]
    plain, white = pixel_error(mean, target).mean(), pixel_error(mean, target, proj).mean()
    assert abs(float(white) / float(plain) - 1) < 0.02


def test_a_wrong_spectral_shape_costs_as_much_as_a_wrong_brightness():
    chip, dirs = correlated_chip()
    proj = spectral_projection([chip], shrink=0.0, max_components=3)
    target = restoration_target(torch.from_numpy(chip.x))[None]
    # the same-size error along the brightness direction and along a weak shape direction
    errs = [target + 0.1 * torch.from_numpy(d).float().reshape(1, -1, 1, 1) for d in dirs[:2]]
    plain = [float(pixel_error(e, target).mean()) for e in errs]
    white = [float(pixel_error(e, target, proj).mean()) for e in errs]
    assert abs(plain[0] / plain[1] - 1) < 1e-3  # plain L2 cannot tell them apart...
    # ...though a shape error is 10× rarer in the data (σ 0.02 against 0.2): whitened it costs ~100× more
    assert white[1] / white[0] > 50
    # shrinkage caps what a direction of little variance can weigh
    shrunk = spectral_projection([chip], shrink=0.01, max_components=3)
    w2 = [float(pixel_error(e, target, shrunk).mean()) for e in errs]
    assert 1 < w2[1] / w2[0] < white[1] / white[0]


def test_pretrain_flag_reaches_the_trainer_and_the_encoder_file(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=5, classes=3, seed=7)
    enc = str(tmp_path / "w.enc")
    assert main(["pretrain", "--image", paths["image"], "--out", enc, "--pretrain-steps", "3",
                 "--spectral-whitening", "on", "--preset", "fast", "--device", "cpu", "--progress",
                 "none"]) == 0
    saved = torch.load(enc, map_location="cpu", weights_only=True)
    assert saved["inpaint"]["spectral_whitening"] is True
