"""The patch SSIM loss: 0 for a perfect map, larger the more the structure is off, inert on points."""

import torch
import torch.nn.functional as F

from engine.ssim import full_windows, ssim_loss


def two_fields(boundary: int, size: int = 48) -> torch.Tensor:
    """(1, size, size) labels: class 1 left of ``boundary``, class 2 right of it (fully labeled)."""
    y = torch.ones(1, size, size, dtype=torch.uint8)
    y[:, :, boundary:] = 2
    return y


def onehot(y: torch.Tensor, k: int = 2) -> torch.Tensor:
    return F.one_hot(y.long() - 1, k).permute(0, 3, 1, 2).float()


def test_identical_maps_cost_nothing():
    y = two_fields(24)
    assert ssim_loss(onehot(y), y).item() < 1e-6


def test_loss_grows_with_structural_mismatch():
    y = two_fields(24)
    losses = [ssim_loss(onehot(two_fields(24 + shift)), y).item() for shift in (0, 1, 3, 6)]
    assert losses[0] < 1e-6
    assert losses == sorted(losses) and losses[1] > 0.01 and losses[3] > 2 * losses[1]
    # blurring the boundary (right classes, wrong structure) also costs
    soft = F.avg_pool2d(onehot(y), 7, stride=1, padding=3, count_include_pad=False)
    assert ssim_loss(soft, y).item() > 0.01


def test_only_fully_labeled_windows_count():
    y = two_fields(24)
    y[:, ::2, ::2] = 0  # sparse: no 11x11 window is fully labeled
    probs = torch.full((1, 2, 48, 48), 0.5, requires_grad=True)
    loss = ssim_loss(probs, y)
    assert loss.item() == 0.0 and not full_windows(y).any()
    loss.backward()  # still part of the graph
    dense = two_fields(24)
    dense[:, :, :12] = 0
    assert full_windows(dense).sum() == (48 - 10) * (48 - 10 - 12)


def test_gradient_pushes_predictions_towards_the_labels():
    y = two_fields(24)
    logits = (3 * onehot(two_fields(27))).requires_grad_()  # boundary predicted 3 px too far right
    ssim_loss(torch.softmax(logits, 1), y).backward()
    g = logits.grad[0, :, 10:38]
    assert g[1, :, 24:27].mean() < 0 < g[0, :, 24:27].mean()  # wrong pixels: towards class 2
    assert g[1, :, 30:40].mean() < 0 < g[1, :, 5:15].mean()  # right pixels: more confident
