"""Test-time augmentation: each window predicted in its 8 flips / 90° turns, turned back, averaged."""

from __future__ import annotations

import pytest
import torch
from engine_helpers import predict_modes

from engine.config import ModelConfig
from engine.errors import InputError
from engine.models import build_model
from engine.predict import TTA_AUTO_PIXELS, ensemble_probs, tta_views


def _dihedral(t: torch.Tensor, turns: int, flip: bool) -> torch.Tensor:
    t = torch.rot90(t, turns, (2, 3))
    return torch.flip(t, (3,)) if flip else t


def test_eight_views_make_the_prediction_follow_every_flip_and_turn_of_the_input():
    torch.manual_seed(0)
    net = build_model(ModelConfig(widths=(8, 16), in_channels=3, num_classes=4, spectral_stem=0)).eval()
    x = torch.rand(1, 3, 32, 32)
    one = ensemble_probs([net], x, views=1)
    eight = ensemble_probs([net], x, views=8)
    assert torch.allclose(eight.sum(1), torch.ones(1, 32, 32), atol=1e-5)
    moved_one = moved_eight = 0.0
    for turns in range(4):
        for flip in (False, True):
            xt = _dihedral(x, turns, flip)
            # 8 views: predicting the turned input gives the turned prediction (the views are turned back)
            gap8 = float((ensemble_probs([net], xt, views=8) - _dihedral(eight, turns, flip)).abs().max())
            assert gap8 < 1e-5, (turns, flip, gap8)
            moved_eight += gap8
            moved_one += float((ensemble_probs([net], xt, views=1) - _dihedral(one, turns, flip)).abs().max())
    # one view is not invariant (an untrained random network), so the property above is the averaging's
    assert moved_one > 100 * max(moved_eight, 1e-7)


def test_eight_views_of_a_non_square_window_keep_its_shape():
    torch.manual_seed(1)
    net = build_model(ModelConfig(widths=(8, 16), in_channels=2, num_classes=3, spectral_stem=0)).eval()
    x = torch.rand(2, 2, 16, 48)
    assert ensemble_probs([net, net], x, views=8).shape == (2, 3, 16, 48)
    with pytest.raises(ValueError):
        ensemble_probs([net], x, views=4)


def test_auto_uses_eight_views_while_the_raster_is_small():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    side = int(TTA_AUTO_PIXELS["cpu"] ** 0.5)
    assert tta_views("auto", side, side, cpu) == 8
    assert tta_views("auto", side + 1, side + 1, cpu) == 1
    assert tta_views("auto", side + 1, side + 1, gpu) == 8  # an accelerator affords larger rasters
    assert tta_views("auto", 50_000, 50_000, gpu) == 1
    assert tta_views("on", 50_000, 50_000, cpu) == 8
    assert tta_views("off", 10, 10, cpu) == 1
    with pytest.raises(InputError, match="auto, on or off"):
        tta_views("always", 10, 10, cpu)


def test_cli_predict_tta_on_and_off(learned, tmp_path, capsys):
    got = predict_modes(capsys, learned, tmp_path, "--tta", ("on", "off"))
    for mode, g in got.items():
        assert ("8 views" in g["message"]) == (mode == "on")
    acc = {m: g["accuracy"] for m, g in got.items()}
    # the same model, so the maps mostly agree; averaging 8 views does not make a trained model worse
    assert (got["on"]["map"] == got["off"]["map"]).mean() > 0.9
    assert acc["on"] >= acc["off"] - 0.01, acc


def test_cpu_networks_are_channels_last_and_predict_as_before(learned):
    """A saved model's networks on a CPU run channels-last (faster convolutions) and give the NCHW
    network's probabilities, with one view and with eight."""
    from engine import modelfile

    model = modelfile.load(str(learned["model"]))
    (net,) = model.networks(torch.device("cpu"))
    assert net.channels_last
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    plain = build_model(model.config.model)
    plain.load_state_dict(model.members[0])
    plain.eval()
    x = torch.randn(2, model.bands, 96, 80)
    for views in (1, 8):
        assert torch.allclose(ensemble_probs([net], x, views), ensemble_probs([plain], x, views), atol=1e-5)
