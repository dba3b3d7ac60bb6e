"""Cell masks erase exactly the asked share of a tile, only where they may."""

import pytest
import torch

from engine.inpainting import (
    cell_validity,
    cells_erased,
    erasable,
    random_cells,
    soft_cells,
    to_pixels,
    topk_cells,
)


@pytest.mark.parametrize("tile,cell,fraction", [(64, 8, 0.25), (128, 16, 0.25), (96, 16, 0.25), (64, 8, 0.5)])
def test_random_and_instructor_masks_erase_the_asked_fraction(tile, cell, fraction):
    g = tile // cell
    allowed = erasable(torch.ones(3, g, g), margin=1)
    for cells in (random_cells((3, g, g), fraction, torch.device("cpu"), allowed),
                  topk_cells(torch.randn(3, g, g), fraction, allowed)):
        pixels = to_pixels(cells, cell)
        assert pixels.shape == (3, tile, tile)
        assert set(pixels.unique().tolist()) <= {0.0, 1.0}
        share = pixels.mean((1, 2))
        assert torch.allclose(share, torch.full((3,), cells_erased(g * g, fraction) / (g * g)))
        assert (share - fraction).abs().max() <= 0.5 / (g * g) + 1e-6  # as close as whole cells allow
        assert not cells[:, 0].any() and not cells[:, -1].any()  # the margin is never erased
        assert not cells[:, :, 0].any() and not cells[:, :, -1].any()


def test_top_scoring_cells_are_the_ones_erased():
    scores = torch.arange(64.0).reshape(1, 8, 8)
    m = topk_cells(scores, 0.25)
    assert m.sum() == 16 and m.reshape(-1)[-16:].all()


def test_soft_mask_keeps_its_mass_and_follows_the_hard_one():
    scores = torch.randn(4, 8, 8, requires_grad=True)
    soft = soft_cells(scores * 50, 0.25, 0.1)  # however the instructor scales its scores
    hard = topk_cells(scores, 0.25)
    assert (soft.mean((1, 2)) - 0.25).abs().max() < 0.05
    assert ((soft > 0.5).float() == hard).float().mean() > 0.95
    soft.sum().backward()
    assert scores.grad is not None and scores.grad.abs().sum() > 0  # the instructor gets a gradient


def test_nodata_cells_are_not_erased():
    valid = torch.ones(2, 64, 64, dtype=torch.bool)
    valid[:, :, :32] = False  # left half is nodata
    allowed = erasable(cell_validity(valid, 8))
    m = random_cells((2, 8, 8), 0.25, torch.device("cpu"), allowed)
    assert m.sum((1, 2)).tolist() == [16, 16]
    assert not m[:, :, :4].any()
