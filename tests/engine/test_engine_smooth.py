"""Edge-aware smoothing of class probabilities (engine.smooth): speckle inside a region goes, an edge
between unlike pixels stays, nodata sends nothing, and the raster sets the scale."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from engine_helpers import predict_modes

from engine.smooth import EdgeAwareSmoothing, neighbour_differences, sample_windows

H = W = 40


def _scene(seed: int = 0):
    """Two materials left / right of column 20 and a 2-px stripe of a third one (columns 8-9) inside
    the left one, 4 bands, a little noise; and the true class of every pixel (0, 1, 2)."""
    rng = np.random.default_rng(seed)
    spectra = np.array([[0.2, 0.3, 0.4, 0.5], [0.6, 0.5, 0.3, 0.2], [0.9, 0.9, 0.1, 0.8]], np.float32)
    cls = np.zeros((H, W), int)
    cls[:, 20:] = 1
    cls[:, 8:10] = 2
    x = spectra[cls].transpose(2, 0, 1) + rng.normal(0, 0.02, (4, H, W)).astype(np.float32)
    return x.astype(np.float32), cls


def _noisy_probs(cls: np.ndarray, seed: int = 0, flip_share: float = 0.2) -> torch.Tensor:
    """Probabilities that favour the true class, except at a random share of pixels, which favour a
    wrong one (the speckle of a network trained on few labels)."""
    rng = np.random.default_rng(seed)
    guess = cls.copy()
    flip = rng.random(cls.shape) < flip_share
    guess[flip] = (cls[flip] + rng.integers(1, 3, flip.sum())) % 3
    p = np.full((3, H, W), 0.2, np.float32)
    np.put_along_axis(p, guess[None], 0.6, axis=0)
    return torch.from_numpy(p)


def test_speckle_inside_regions_goes_and_a_thin_distinct_stripe_stays():
    x, cls = _scene()
    valid = np.ones((H, W), bool)
    probs = _noisy_probs(cls)
    smooth = EdgeAwareSmoothing.fit([(x, valid)])
    out = smooth(probs, torch.from_numpy(x), torch.from_numpy(valid))
    assert torch.allclose(out.sum(0), torch.ones(H, W), atol=1e-5)  # still probabilities
    before = float((probs.argmax(0).numpy() == cls).mean())
    after = float((out.argmax(0).numpy() == cls).mean())
    assert before < 0.85 and after > 0.99, (before, after)
    stripe = cls == 2
    assert (out.argmax(0).numpy()[stripe] == 2).all()
    # the band term is what keeps the 2-px stripe: smoothing by distance alone erases it
    blind = EdgeAwareSmoothing(scale=1e9)(probs, torch.from_numpy(x), torch.from_numpy(valid))
    assert (blind.argmax(0).numpy()[stripe] == 2).mean() < 0.5


def test_a_uniform_map_stays_uniform_and_zero_iterations_change_nothing():
    x, _ = _scene(1)
    valid = torch.ones(H, W, dtype=torch.bool)
    p = torch.tensor([0.7, 0.2, 0.1])[:, None, None].expand(3, H, W).contiguous()
    smooth = EdgeAwareSmoothing.fit([(x, valid.numpy())])
    assert torch.allclose(smooth(p, torch.from_numpy(x), valid), p, atol=1e-6)
    noisy = _noisy_probs(_scene(1)[1])
    same = EdgeAwareSmoothing(smooth.scale, iterations=0)(noisy, torch.from_numpy(x), valid)
    assert torch.equal(same, noisy)


def test_nodata_pixels_send_nothing_and_keep_their_values():
    x, cls = _scene(2)
    cls[:] = 0
    valid = np.ones((H, W), bool)
    valid[:, :20] = False  # the left half is nodata (its bands are zero, its probabilities say class 2)
    x[:, ~valid] = 0.0
    p = np.zeros((3, H, W), np.float32)
    p[0] = 0.6
    p[1:] = 0.2
    p[:, ~valid] = np.array([0.0, 0.0, 1.0], np.float32)[:, None]
    p = torch.from_numpy(p)
    smooth = EdgeAwareSmoothing(scale=1e9)  # blind to bands: only validity can stop class 2 spreading
    out = smooth(p, torch.from_numpy(x), torch.from_numpy(valid))
    assert torch.allclose(out[:, valid], p[:, valid], atol=1e-6)
    assert torch.equal(out[:, ~valid], p[:, ~valid])


def test_the_scale_follows_the_raster_not_its_units_and_many_bands_are_projected():
    x, _ = _scene(3)
    valid = np.ones((H, W), bool)
    s1 = EdgeAwareSmoothing.fit([(x, valid)])
    s100 = EdgeAwareSmoothing.fit([(100 * x, valid)])
    assert s1.projection is None and np.isclose(s100.scale, 1e4 * s1.scale, rtol=1e-4)
    probs = _noisy_probs(_scene(3)[1])
    valid_t = torch.from_numpy(valid)
    a = s1(probs, torch.from_numpy(x), valid_t)
    b = s100(probs, torch.from_numpy(100 * x), valid_t)
    assert torch.allclose(a, b, atol=1e-4)  # the same map in other units
    # 40 bands: distances are taken on the 8 leading principal components (a (8, 40) projection)
    rng = np.random.default_rng(0)
    many = np.einsum("kc,khw->chw", rng.normal(size=(4, 40)).astype(np.float32), x)
    fitted = EdgeAwareSmoothing.fit([(many, valid)])
    assert fitted.projection.shape == (EdgeAwareSmoothing.MAX_FEATURES, 40)
    out = fitted(probs, torch.from_numpy(many), valid_t)
    assert float((out.argmax(0).numpy() == _scene(3)[1]).mean()) > 0.99
    # a piecewise-constant raster has neighbour distance 0 almost everywhere: the scale stays finite
    flat = np.zeros((2, H, W), np.float32)
    assert np.median(neighbour_differences(flat, valid)) == 0.0
    assert EdgeAwareSmoothing.fit([(flat, valid)]).scale > 0.0


def test_smoothing_only_a_core_gives_the_whole_block_values_there():
    """A sliding window wants only its core: the rounds then shrink towards it (less work), and the
    core's values must be those of smoothing the whole block -- wherever the core lies, edges too."""
    x, cls = _scene(4)
    valid = np.ones((H, W), bool)
    valid[30:, 5:12] = False  # some nodata, near the bottom edge
    probs = _noisy_probs(cls, seed=4)
    xt, vt = torch.from_numpy(x), torch.from_numpy(valid)
    smooth = EdgeAwareSmoothing(EdgeAwareSmoothing.fit([(x, valid)]).scale, radius=2, iterations=4)
    whole = smooth(probs, xt, vt)
    for top, left, h, w in ((9, 9, 22, 22), (0, 0, 10, 40), (25, 30, 15, 10), (12, 3, 1, 1), (0, 0, H, W)):
        part = smooth(probs, xt, vt, core=(top, left, h, w))
        assert part.shape == (3, h, w)
        assert torch.allclose(part, whole[:, top:top + h, left:left + w], atol=1e-6), (top, left, h, w)
    # with more bands than features, the projection too is applied to the core's surroundings only
    many = np.einsum("kc,khw->chw", np.random.default_rng(4).normal(size=(4, 12)).astype(np.float32), x)
    projected = dataclasses.replace(smooth, projection=EdgeAwareSmoothing.fit([(many, valid)]).projection)
    assert projected.projection is not None
    mt = torch.from_numpy(many)
    assert torch.allclose(projected(probs, mt, vt, core=(25, 30, 15, 10)),
                          projected(probs, mt, vt)[:, 25:40, 30:40], atol=1e-6)
    # pixels beyond the reach do not matter: a copy that differs only there gives the same core
    far = probs.clone()
    far[:, :, :2] = torch.tensor([0.0, 0.0, 1.0])[:, None, None]  # 2 px at the left edge, > reach 8 px away
    assert torch.allclose(smooth(far, xt, vt, core=(9, 11, 20, 20)), whole[:, 9:29, 11:31], atol=1e-6)


def test_strips_of_a_few_rows_give_the_one_pass_values_exactly(monkeypatch):
    """Smoothing works through the block a few rows at a time (for the cache): each pixel still sums
    the same terms in the same order, so the result is the same to the bit, whatever the strip size."""
    import engine.smooth as smooth_module

    x, cls = _scene(5)
    valid = np.ones((H, W), bool)
    valid[3:9, 30:33] = False
    probs, xt, vt = _noisy_probs(cls, seed=5), torch.from_numpy(x), torch.from_numpy(valid)
    anchors = torch.zeros(H, W, dtype=torch.long)
    anchors[20, 5] = 1
    smooth = EdgeAwareSmoothing(EdgeAwareSmoothing.fit([(x, valid)]).scale, radius=3, iterations=3)
    monkeypatch.setattr(smooth_module, "STRIP_BYTES", 2**40)  # one strip: the whole block at once
    assert len(smooth_module.strips(H, 3, W)) == 1
    one_pass = smooth(probs, xt, vt, core=(5, 4, 30, 33), anchors=anchors)
    for size in (1, 4 * 3 * W * 7 // torch.get_num_threads()):  # the 4-row floor, 7-row strips
        monkeypatch.setattr(smooth_module, "STRIP_BYTES", size)
        assert len(smooth_module.strips(H, 3, W)) > 5
        assert torch.equal(smooth(probs, xt, vt, core=(5, 4, 30, 33), anchors=anchors), one_pass)


def test_sample_windows_cover_the_raster_with_bounded_reads():
    reads = []

    def read(r, c, h, w):
        reads.append((r, c, h, w))
        return np.zeros((1, h, w), np.float32), np.ones((h, w), bool)

    assert len(sample_windows(read, 100, 80)) == 1 and reads == [(0, 0, 100, 80)]
    reads.clear()
    blocks = sample_windows(read, 50_000, 50_000)
    assert len(blocks) == 16 and all(h == w == 256 for _, _, h, w in reads)
    rows, cols = sorted({r for r, *_ in reads}), sorted({c for _, c, *_ in reads})
    assert len(rows) == len(cols) == 4 and rows[0] == 0 and rows[-1] == 50_000 - 256 and rows == cols


def test_cli_predict_smooth_on_and_off(learned, tmp_path, capsys):
    got = predict_modes(capsys, learned, tmp_path, "--smooth", ("on", "off"), extra=("--tta", "off"))
    for mode, g in got.items():
        assert ("smoothing" in g["message"]) == (mode == "on")
    acc = {m: g["accuracy"] for m, g in got.items()}
    assert not np.array_equal(got["on"]["map"], got["off"]["map"])  # the option reaches the prediction
    assert acc["on"] >= acc["off"] - 0.01, acc


def test_anchored_pixels_keep_their_class_and_spread_it_to_alike_pixels_only():
    """Label propagation: the network wrongly (and unsurely) says class 1 over the whole left material,
    class 0 -- a field swallowed by its neighbour, which no smoothing of its own output undoes; a few
    labeled class-0 pixels in it win it back, while they do not leak across the edge into the unlike
    right half (class 1) or the thin stripe (class 2)."""
    x, cls = _scene(5)
    valid = torch.ones(H, W, dtype=torch.bool)
    p = np.full((3, H, W), 0.1, np.float32)
    p[cls, np.arange(H)[:, None], np.arange(W)[None]] = 0.8
    left = cls == 0
    p[:, left] = np.array([0.3, 0.4, 0.3], np.float32)[:, None]
    p[:, cls == 1] = np.array([0.3, 0.45, 0.25], np.float32)[:, None]  # right, but unsure too
    probs = torch.from_numpy(p)
    anchors = torch.zeros(H, W, dtype=torch.long)
    anchors[3:40:6, [3, 19]] = 1  # 14 labeled class-0 pixels, half of them at the edge (classes 1-based)
    assert bool(left[anchors.numpy() > 0].all())
    smooth = EdgeAwareSmoothing.fit([(x, valid.numpy())])
    xt = torch.from_numpy(x)
    free = smooth(probs, xt, valid).argmax(0).numpy()
    held = smooth(probs, xt, valid, anchors=anchors)
    held_cls = held.argmax(0).numpy()
    assert (free[left] == 1).all()  # smoothing alone keeps the field's wrong majority
    assert (held_cls[left] == 0).mean() > 0.95, (held_cls[left] == 0).mean()
    assert torch.equal(held[:, anchors > 0], torch.tensor([1.0, 0.0, 0.0])[:, None].expand(3, 14))
    assert torch.allclose(held.sum(0), torch.ones(H, W), atol=1e-5)
    assert (held_cls[cls == 1] == 1).all() and (held_cls[cls == 2] == 2).all()  # nothing crossed an edge
    # the band term is what stops them: blind to bands, the labels at the edge leak into the right half
    blind = EdgeAwareSmoothing(scale=1e9)(probs, xt, valid, anchors=anchors).argmax(0).numpy()
    assert (blind[cls == 1] == 0).sum() > 20


def test_anchors_on_nodata_or_beyond_the_classes_are_ignored_and_cores_match_the_whole_block():
    x, cls = _scene(6)
    valid = np.ones((H, W), bool)
    valid[30:, 5:12] = False
    probs = _noisy_probs(cls, seed=6)
    xt, vt = torch.from_numpy(x), torch.from_numpy(valid)
    anchors = torch.zeros(H, W, dtype=torch.long)
    anchors[::5, ::5] = torch.from_numpy(cls[::5, ::5] + 1)
    anchors[32, 6] = 3  # on nodata: sends nothing, keeps its probabilities
    anchors[2, 2] = 9  # no such class
    smooth = EdgeAwareSmoothing(EdgeAwareSmoothing.fit([(x, valid)]).scale, radius=2, iterations=4)
    whole = smooth(probs, xt, vt, anchors=anchors)
    assert torch.equal(whole[:, 32, 6], probs[:, 32, 6])
    assert not torch.equal(whole[:, 2, 2], torch.tensor([0.0, 0.0, 0.0]))
    for top, left, h, w in ((9, 9, 22, 22), (25, 30, 15, 10), (0, 0, H, W)):
        part = smooth(probs, xt, vt, core=(top, left, h, w), anchors=anchors)
        assert torch.allclose(part, whole[:, top:top + h, left:left + w], atol=1e-6), (top, left, h, w)
    # no rounds: the labeled pixels are still held, everything else is untouched
    none = EdgeAwareSmoothing(smooth.scale, iterations=0)(probs, xt, vt, anchors=anchors)
    at = (anchors >= 1) & (anchors <= 3) & vt
    assert torch.equal(none[:, ~at], probs[:, ~at])
    assert torch.equal(none.argmax(0)[at] + 1, anchors[at])


def test_anchor_windows_read_the_labels_crop_anywhere_even_beyond_the_raster():
    from engine.labels import LabelPatches

    labels = np.zeros((50, 60), np.uint8)
    labels[10, 20] = 1
    labels[30, 45] = 2
    a = LabelPatches.from_array(labels)
    (crop,) = a.crops
    assert (crop.row, crop.col, crop.array.shape, a.count, a.max_class) == (10, 20, (21, 26), 2, 2)
    assert np.array_equal(a.window(0, 0, 50, 60), labels)
    assert np.array_equal(a.window(-64, -64, 200, 200)[64:114, 64:124], labels)
    win = a.window(25, 40, 10, 10)
    assert win[5, 5] == 2 and win.sum() == 2
    assert not a.window(100, 100, 10, 10).any()
    assert LabelPatches.from_array(np.zeros((5, 5), np.uint8)) is None
