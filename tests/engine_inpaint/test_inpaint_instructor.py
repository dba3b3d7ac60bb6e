"""The adversarial instructor learns, within a few steps, to erase the cells the inpainter restores worst."""

import numpy as np
import pytest
import torch

from engine.config import InpaintConfig, ModelConfig
from engine.data import Chip, TileSampler
from engine.inpainting import InpaintingPretrainer, erase, restoration_loss, restoration_target


@pytest.fixture(autouse=True)
def one_thread():
    """Small networks run faster on one thread, especially on a shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def patchy_scene(size: int = 128, seed: int = 0) -> np.ndarray:
    """Flat background with square patches of pure noise: restorable cells and hopeless ones."""
    rng = np.random.default_rng(seed)
    x = np.full((3, size, size), 0.5, np.float32)
    for _ in range(40):
        r, c = rng.integers(0, size - 10, 2)
        x[:, r:r + 10, c:c + 10] = rng.uniform(0, 1, (3, 10, 10))
    return x


N = 30  # instructor steps


@pytest.mark.parametrize("context", ["random", "own"])
def test_instructor_steps_raise_the_inpainters_loss_on_the_cells_it_picks(context):
    torch.manual_seed(0)
    x = patchy_scene()
    valid = np.ones(x.shape[1:], bool)
    chip = Chip(0, 0, x, valid, np.zeros(valid.shape, np.uint8), np.zeros(valid.shape, np.uint8))
    cfg = InpaintConfig(tile_size=32, cell=8, margin=0, batch_size=8, lr=0.05, instructor_width=8, latent=16,
                        instructor_lr=1e-2, instructor_context=context)
    trainer = InpaintingPretrainer(ModelConfig(widths=(8, 16), in_channels=3), cfg,
                                   TileSampler([chip], 32, seed=0), torch.device("cpu"), seed=0)
    for _ in range(25):  # round 0: random masks
        trainer.inpainter_step(use_instructor=False)
    xs, vs = zip(*(trainer.batch() for _ in range(4)), strict=True)
    xe, ve = torch.cat(xs), torch.cat(vs)
    random_masks = [trainer.random_mask(ve) for _ in range(4)]

    def losses():
        trainer.inpainter.eval()
        trainer.instructor.eval()
        with torch.no_grad():
            target = restoration_target(xe)
            picked = trainer.instructor_mask(xe, ve, sample=False)
            rnd = torch.stack([restoration_loss(trainer.inpainter(erase(xe, m)), target, m, ve)
                               for m in random_masks]).mean()
            own = restoration_loss(trainer.inpainter(erase(xe, picked)), target, picked, ve)
        trainer.instructor.train()
        return own.item(), rnd.item()

    before, random_loss = losses()
    trainer.freeze_inpainter(True)
    for _ in range(N):
        trainer.instructor_step()
    after, random_after = losses()
    assert abs(random_after - random_loss) < 1e-6  # the inpainter did not move
    assert after > 1.25 * random_loss, (before, after, random_loss)
    assert after > before
