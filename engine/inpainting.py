"""Stage 1 of the inpainting method: adversarial, semantic-aware inpainting pretraining (METHODS.md §2).

Two networks play against each other on unlabeled tiles:

* the **inpainter** is the segmentation network's own encoder and decoder with a restoration head
  (one output per band, through tanh); it restores a tile from which grid cells were erased;
* the **instructor** is a small ResNet-like CNN (strided convolutions, no max-pool) that scores every
  ``cell``×``cell`` grid cell of a tile through a variational head; the top-scoring cells, a fixed
  share of the tile area, are erased.

Round 0 trains the inpainter on random cell masks. Each adversarial round then trains the instructor
(inpainter frozen) to *maximise* the inpainter's error on the cells it erases — a soft sigmoid mask
around the top-k threshold lets the gradient reach the scores — and then trains the inpainter to
restore the near-binary masks the instructor now picks. Flat, predictable cells are easy to restore,
so the instructor drifts to buildings, roads and field edges: the pretext task becomes about the
structures a segmentation must get right, and the encoder learns them without labels.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.augment import random_dihedral
from engine.config import InpaintConfig, ModelConfig
from engine.data import TileSampler, sample_pixels, stem_axes
from engine.models import build_model
from engine.progress import Reporter
from engine.runtime import NEVER_CANCELLED, CancelToken

NEG = -1e4  # score of cells that must not be erased (mostly nodata)


# ----------------------------------------------------------------------------------------- networks
class Inpainter(nn.Module):
    """The segmentation network's encoder + decoder, with a tanh restoration head per band.

    ``self.net`` *is* a :class:`engine.models.SegNet` whose "classes" are the bands, so its encoder and
    decoder state dicts load into the segmentation network unchanged.
    """

    def __init__(self, model_cfg: ModelConfig, band_axes: np.ndarray | None = None):
        super().__init__()
        cfg = ModelConfig.from_dict({**model_cfg.to_dict(), "num_classes": model_cfg.in_channels})
        self.net = build_model(cfg, imagenet=True, band_axes=band_axes)

    @property
    def encoder(self) -> nn.Module:
        return self.net.encoder

    @property
    def decoder(self) -> nn.Module:
        return self.net.decoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


class ResBlock(nn.Module):
    """A basic residual block; ``stride`` 2 halves the resolution (the instructor's only down-sampling)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = (nn.Identity() if stride == 1 and cin == cout else
                     nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x))


class Instructor(nn.Module):
    """Scores each ``cell``×``cell`` cell of a tile; higher = erase. Stochastic via a variational head.

    The trunk reaches cell resolution by log2(cell) stride-2 residual blocks. The head maps each cell's
    features to a Gaussian latent (mean, log-variance; ``latent`` dims), samples it (reparameterised)
    and reads a score from the sample. ``kl`` holds the last forward's KL divergence to N(0, I).
    """

    def __init__(self, bands: int, cell: int = 16, width: int = 32, latent: int = 100):
        super().__init__()
        if cell < 2 or cell & (cell - 1):
            raise ValueError(f"cell must be a power of two >= 2, got {cell}")
        self.cell = cell
        layers: list[nn.Module] = [nn.Conv2d(bands, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(inplace=True)]
        cin = width
        for i in range(int(math.log2(cell))):
            cout = min(width * 2 ** (i + 1) // 2, width * 4)
            layers.append(ResBlock(cin, cout, 2))
            cin = cout
        self.trunk = nn.Sequential(*layers)
        self.to_latent = nn.Conv2d(cin, 2 * latent, 1)
        with torch.no_grad():  # start with little sampling noise (std ~0.1) so early scores carry signal
            self.to_latent.bias[latent:].fill_(-4.0)
        self.to_score = nn.Sequential(nn.Conv2d(latent, width, 1), nn.ReLU(inplace=True),
                                      nn.Conv2d(width, 1, 1))
        self.kl = torch.zeros(())

    def forward(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """(B, C, H, W) -> (B, H/cell, W/cell) cell scores."""
        mu, logvar = self.to_latent(self.trunk(x)).chunk(2, dim=1)
        logvar = logvar.clamp(-10, 10)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        self.kl = 0.5 * (mu ** 2 + logvar.exp() - 1 - logvar).sum(1).mean()
        return self.to_score(z)[:, 0]


# ----------------------------------------------------------------------------------------- masks
def cells_erased(grid_cells: int, fraction: float) -> int:
    """How many cells make ``fraction`` of the tile (at least one, never all)."""
    return int(min(max(round(fraction * grid_cells), 1), grid_cells - 1))


def cell_validity(valid: torch.Tensor, cell: int) -> torch.Tensor:
    """(B, H, W) bool -> (B, H/cell, W/cell) share of valid pixels per cell."""
    return F.avg_pool2d(valid.float()[:, None], cell)[:, 0]


def erasable(valid_share: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """(B, gh, gw) bool: cells that may be erased: mostly valid, and ``margin`` cells off the border.

    A margin keeps context around every erased cell, so how hard a cell is to restore depends on what
    it holds and not on where it sits (a corner cell, with context on two sides only, is always hard).
    """
    ok = valid_share >= 0.5
    if margin > 0 and min(ok.shape[-2:]) > 2 * margin:
        inner = torch.zeros_like(ok)
        inner[:, margin:-margin, margin:-margin] = True
        ok = ok & inner
    return ok


def allowed_cells(valid: torch.Tensor, cfg: InpaintConfig) -> torch.Tensor:
    """(B, gh, gw) bool: the cells of (B, H, W) ``valid`` tiles that ``cfg``'s erasure may pick."""
    return erasable(cell_validity(valid, cfg.cell), cfg.margin)


def random_cell_mask(valid: torch.Tensor, cfg: InpaintConfig, device: torch.device,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, H, W) pixel mask of random erasable cells covering ``cfg.erase_fraction`` of each tile."""
    ok = allowed_cells(valid, cfg)
    return to_pixels(random_cells(tuple(ok.shape), cfg.erase_fraction, device, ok, generator), cfg.cell)


def topk_cells(scores: torch.Tensor, fraction: float, allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Hard (B, gh, gw) 0/1 mask of the top-scoring cells covering ``fraction`` of each tile."""
    b = scores.shape[0]
    s = scores.detach().reshape(b, -1).clone()
    if allowed is not None:
        s[~allowed.reshape(b, -1)] = NEG
    k = cells_erased(s.shape[1], fraction)
    idx = s.topk(k, dim=1).indices
    m = torch.zeros_like(s).scatter_(1, idx, 1.0)
    return m.reshape(scores.shape)


def random_cells(shape: tuple[int, int, int], fraction: float, device: torch.device,
                 allowed: torch.Tensor | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Random cells covering ``fraction`` of each tile, among the ``allowed`` ones."""
    scores = torch.rand(shape, generator=generator).to(device)
    return topk_cells(scores, fraction, allowed)


def soft_cells(scores: torch.Tensor, fraction: float, temperature: float,
               allowed: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable (B, gh, gw) mask: sigmoid of standardised scores around the top-k threshold.

    Standardising per tile keeps the mask's mass near ``fraction`` however the instructor scales its
    scores, so it cannot win by erasing everything; the threshold (midway between the k-th and the
    next score) is a constant for the gradient.
    """
    b = scores.shape[0]
    s = scores.reshape(b, -1)
    z = (s - s.mean(1, keepdim=True)) / (s.std(1, keepdim=True) + 1e-6)
    if allowed is not None:
        z = torch.where(allowed.reshape(b, -1), z, torch.full_like(z, NEG))
    k = cells_erased(s.shape[1], fraction)
    top = z.detach().topk(k + 1, dim=1).values
    thr = (top[:, k - 1:k] + top[:, k:k + 1]) / 2
    return torch.sigmoid((z - thr) / temperature).reshape(scores.shape)


def to_pixels(cell_mask: torch.Tensor, cell: int) -> torch.Tensor:
    """(B, gh, gw) -> (B, gh*cell, gw*cell) by repeating each cell."""
    return cell_mask.repeat_interleave(cell, -2).repeat_interleave(cell, -1)


# ----------------------------------------------------------------------------------------- loss
def restoration_target(x: torch.Tensor) -> torch.Tensor:
    """The normalised tile (~[0, 1]) mapped onto tanh's range."""
    return (2 * x - 1).clamp(-1, 1)


def erase(x: torch.Tensor, pixel_mask: torch.Tensor) -> torch.Tensor:
    """Blank the masked pixels (0, the value nodata also gets); soft masks blank partly."""
    return x * (1 - pixel_mask[:, None])


def spectral_projection(chips, max_pixels: int = 50_000, shrink: float = 0.01, max_components: int = 32,
                        seed: int = 0) -> torch.Tensor:
    """(C, m) matrix that maps a restoration residual onto the bands' whitened principal components.

    With many correlated bands (hyperspectral, multispectral stacks) a plain L2 over bands is almost
    all the first principal component -- brightness -- and an inpainter can score well while restoring
    none of the spectral shape that tells one crop from another. Projected onto the leading components
    (at most ``max_components``), each scaled to unit variance, every spectral direction counts alike.
    ``shrink`` × the largest variance is added to every variance before scaling, so directions of
    little more than noise are not blown up. The whole matrix is scaled so that restoring every pixel
    as the image mean scores what it scores with the plain L2, keeping the loss (and the learning
    rate that suits it) on the same scale. Pixels: up to ``max_pixels`` valid ones from ``chips``.
    """
    t = np.clip(2.0 * sample_pixels(chips, max_pixels, seed).astype(np.float64) - 1.0, -1.0, 1.0)
    bands = t.shape[1]
    if len(t) < 2:
        return torch.eye(bands)
    cov = np.cov(t, rowvar=False).reshape(bands, bands)
    lam, vec = np.linalg.eigh(cov)
    lam, vec = np.clip(lam[::-1], 0.0, None), vec[:, ::-1]
    if lam[0] <= 0:  # a constant image: nothing to weigh, plain L2
        return torch.eye(bands)
    keep = max(1, min(max_components, int((lam > 1e-6 * lam[0]).sum())))
    lam, vec = lam[:keep], vec[:, :keep]
    s = shrink * lam[0]
    plain = float(np.trace(cov)) / bands  # mean predictor's plain L2
    whitened = float((lam / (lam + s)).mean())  # mean predictor's whitened loss before scaling
    scale = plain / whitened
    proj = vec / np.sqrt(lam + s) * math.sqrt(scale)
    return torch.from_numpy(proj.astype(np.float32))


def pixel_error(out: torch.Tensor, target: torch.Tensor, proj: torch.Tensor | None = None) -> torch.Tensor:
    """(B, H, W) squared restoration error per pixel: mean over bands, or over the whitened spectral
    components when ``proj`` (spectral_projection) is given."""
    r = out - target
    if proj is not None:
        r = torch.einsum("bchw,cm->bmhw", r, proj)
    return (r ** 2).mean(1)


def restoration_loss(out: torch.Tensor, target: torch.Tensor, pixel_mask: torch.Tensor, valid: torch.Tensor,
                     erased_weight: float = 0.99, per_tile: bool = False,
                     proj: torch.Tensor | None = None) -> torch.Tensor:
    """L2 restoration error: ``erased_weight`` × mean over erased pixels + the rest × mean over visible.

    ``pixel_mask`` may be soft (the instructor phase): it then weights each pixel's share. Nodata
    pixels never count. ``per_tile`` returns one value per tile instead of the batch mean. ``proj``:
    measure the error on whitened spectral components (spectral_projection) instead of raw bands.
    """
    err = pixel_error(out, target, proj)
    v = valid.float()
    m, keep = pixel_mask * v, (1 - pixel_mask) * v
    dims = (1, 2) if per_tile else (0, 1, 2)
    on = (err * m).sum(dims) / m.sum(dims).clamp_min(1.0)
    off = (err * keep).sum(dims) / keep.sum(dims).clamp_min(1.0)
    return erased_weight * on + (1 - erased_weight) * off


# ----------------------------------------------------------------------------------------- training
@dataclass
class PretrainResult:
    """What stage 2 needs from stage 1, plus the numbers and pictures that show what happened."""

    encoder: dict
    decoder: dict
    metrics: dict = field(default_factory=dict)
    picture: str | None = None
    head: dict = field(default_factory=dict)  # the restoration head (fine-tuning can keep restoring)


class InpaintingPretrainer:
    """Holds both networks, their optimisers and the schedule; ``run()`` plays all rounds."""

    def __init__(self, model_cfg: ModelConfig, cfg: InpaintConfig, sampler: TileSampler,
                 device: torch.device, seed: int = 0):
        if cfg.tile_size % cfg.cell:
            raise ValueError(f"pretraining tile {cfg.tile_size} px is not a multiple of the "
                             f"{cfg.cell}-px cell")
        self.cfg, self.sampler, self.device = cfg, sampler, device
        torch.manual_seed(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.inpainter = Inpainter(model_cfg, stem_axes(model_cfg, sampler.chips)).to(device).train()
        self.instructor = Instructor(model_cfg.in_channels, cfg.cell, cfg.instructor_width,
                                     cfg.latent).to(device).train()
        self.opt_inp = torch.optim.SGD(self.inpainter.parameters(), lr=cfg.lr, momentum=cfg.momentum,
                                       weight_decay=1e-4)
        self.opt_ins = torch.optim.Adam(self.instructor.parameters(), lr=cfg.instructor_lr)
        self.proj = (spectral_projection(sampler.chips, seed=seed).to(device) if cfg.spectral_whitening
                     else None)

    # -- batches and masks
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x, valid = self.sampler.unlabeled(self.cfg.batch_size)
        x = torch.from_numpy(x).to(self.device)
        valid = torch.from_numpy(valid).to(self.device)
        x, valid = random_dihedral(x, valid, generator=self.gen)
        return x, valid

    def instructor_mask(self, x: torch.Tensor, valid: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """Near-binary pixel mask of the cells the instructor erases (what feeds the inpainter)."""
        with torch.no_grad():
            scores = self.instructor(x, sample=sample)
        return to_pixels(topk_cells(scores, self.cfg.erase_fraction, self.allowed(valid)), self.cfg.cell)

    def allowed(self, valid: torch.Tensor) -> torch.Tensor:
        return allowed_cells(valid, self.cfg)

    def random_mask(self, valid: torch.Tensor) -> torch.Tensor:
        return random_cell_mask(valid, self.cfg, self.device, self.gen)

    # -- one step of each player
    def inpainter_step(self, use_instructor: bool) -> float:
        x, valid = self.batch()
        mask = self.instructor_mask(x, valid) if use_instructor else self.random_mask(valid)
        out = self.inpainter(erase(x, mask))
        loss = restoration_loss(out, restoration_target(x), mask, valid, self.cfg.erased_weight,
                                proj=self.proj)
        self.opt_inp.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.inpainter.parameters(), 5.0)
        self.opt_inp.step()
        return loss.item()

    def instructor_step(self) -> float:
        """Minimise 1 − L_rec + β·KL, L_rec weighted by the soft mask; the inpainter is frozen.

        ``instructor_context`` decides what the frozen inpainter sees:

        * ``own`` (the reference formulation): the tile erased by the instructor's own soft mask, the
          gradient flowing through the inpainter into the mask. The instructor can then raise the
          error by *where* it puts cells, not only by what they hold: clumping them into one large
          hole far from any context always wins. On Indian Pines every mask collapsed onto one central
          blob per tile, whatever the tile held.
        * ``random`` (default): the tile erased by a random cell mask of the same share; each erased
          cell's restoration error is then weighted by the instructor's soft mask. The instructor is
          rewarded for the cells whose *content* the inpainter cannot restore from ordinary context —
          objects, roads, edges — and one step costs no backward pass through the inpainter.
        """
        x, valid = self.batch()
        scores = self.instructor(x)
        allowed = self.allowed(valid)
        soft = soft_cells(scores, self.cfg.erase_fraction, self.cfg.soft_temperature, allowed)
        target = restoration_target(x)
        if self.cfg.instructor_context == "own":
            mask = to_pixels(soft, self.cfg.cell)
            rec = restoration_loss(self.inpainter(erase(x, mask)), target, mask, valid,
                                   self.cfg.erased_weight, proj=self.proj)
        else:
            context = random_cells(tuple(allowed.shape), self.cfg.erase_fraction, self.device, allowed,
                                   self.gen)
            with torch.no_grad():
                restored = self.inpainter(erase(x, to_pixels(context, self.cfg.cell)))
                err = pixel_error(restored, target, self.proj)
                v = valid.float()[:, None]
                cell_err = (F.avg_pool2d((err * valid)[:, None], self.cfg.cell)
                            / F.avg_pool2d(v, self.cfg.cell).clamp_min(1e-6))[:, 0]
            w = soft * context
            rec = (w * cell_err).sum() / w.sum().clamp_min(1e-6)
        loss = 1 - rec + self.cfg.kl_weight * self.instructor.kl
        self.opt_ins.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_ins.step()
        return rec.item()

    def freeze_inpainter(self, frozen: bool) -> None:
        self.inpainter.train(not frozen)
        for p in self.inpainter.parameters():
            p.requires_grad_(not frozen)

    # -- the schedule
    def schedule(self) -> list[tuple[int, int]]:
        """(instructor steps, inpainter steps) per round; round 0 has no instructor phase."""
        c = self.cfg
        n0 = max(1, round(c.steps * c.warmup_fraction)) if c.rounds else c.steps
        rest = c.steps - n0
        n_ins = max(1, round(c.instructor_share * c.steps / c.rounds)) if c.instructor and c.rounds else 0
        plan = [(0, n0)]
        for r in range(c.rounds):
            n = rest // c.rounds + (1 if r < rest % c.rounds else 0)
            plan.append((n_ins, n))
        return plan

    def run(self, reporter: Reporter, cancel: CancelToken = NEVER_CANCELLED) -> PretrainResult:
        plan = self.schedule()
        total = sum(a + b for a, b in plan)
        reporter.stage("pretrain", total, message=f"inpainting pretraining: {len(plan) - 1} adversarial "
                       f"round(s), {self.cfg.steps} inpainter steps on {self.device}")
        debug = RoundsRecorder(self) if self.cfg.debug_dir else None
        step, logs = 0, {}
        every = max(1, min(10, total // 50))
        for rnd, (n_ins, n_inp) in enumerate(plan):
            if rnd > 0:
                for g in self.opt_inp.param_groups:  # "stepping down": halve at every adversarial round
                    g["lr"] = self.cfg.lr * 0.5 ** rnd
            if n_ins:
                self.freeze_inpainter(True)
                for _ in range(n_ins):
                    cancel.check()
                    step += 1
                    logs["instructor_rec"] = self.instructor_step()
                    if step % every == 0:
                        reporter.progress("pretrain", step, total, round=rnd, **_rounded(logs))
                self.freeze_inpainter(False)
            use_instructor = rnd > 0 and self.cfg.instructor
            for _ in range(n_inp):
                cancel.check()
                step += 1
                logs["loss"] = self.inpainter_step(use_instructor)
                if step % every == 0 or step == total:
                    reporter.progress("pretrain", step, total, round=rnd, **_rounded(logs))
            if debug is not None:
                debug.record(rnd, use_instructor)
        metrics = {"pretrain_steps": self.cfg.steps, "pretrain_rounds": self.cfg.rounds,
                   "pretrain_instructor": self.cfg.instructor, "pretrain_final_loss": logs.get("loss")}
        picture = None
        if debug is not None:
            metrics["erased_structure_ratio"] = debug.structure_ratios
            picture = debug.save(os.path.join(self.cfg.debug_dir, "inpainting_rounds.png"))
            reporter.emit("artifact", kind="debug_picture", path=os.path.abspath(picture))
        self.inpainter.eval()
        enc = {k: v.detach().cpu().clone() for k, v in self.inpainter.encoder.state_dict().items()}
        dec = {k: v.detach().cpu().clone() for k, v in self.inpainter.decoder.state_dict().items()}
        head = {k: v.detach().cpu().clone() for k, v in self.inpainter.net.head.state_dict().items()}
        return PretrainResult(enc, dec, metrics, picture, head)


def _rounded(logs: dict) -> dict:
    return {k: round(float(v), 4) for k, v in logs.items()}


# ----------------------------------------------------------------------------------------- picture
def structure(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W) local structure: gradient magnitude summed over bands."""
    gy = (x[..., 1:, :] - x[..., :-1, :]).abs().sum(1)
    gx = (x[..., :, 1:] - x[..., :, :-1]).abs().sum(1)
    return F.pad(gy, (0, 0, 0, 1)) + F.pad(gx, (0, 1, 0, 0))


class RoundsRecorder:
    """Fixed tiles; after each round, the mask the current instructor picks and the restoration.

    Also measures, per round, how much more structure (gradient magnitude) the erased cells hold than
    the tile on average: 1.0 for random cells, > 1 when the instructor targets edges and objects.
    """

    def __init__(self, trainer: InpaintingPretrainer, tiles: int = 4):
        self.t = trainer
        state = trainer.sampler.rng.bit_generator.state  # keep the training stream unchanged
        x, valid = trainer.sampler.unlabeled(tiles)
        trainer.sampler.rng.bit_generator.state = state
        self.x = torch.from_numpy(x).to(trainer.device)
        self.valid = torch.from_numpy(valid).to(trainer.device)
        g = torch.Generator().manual_seed(1234)
        ok = trainer.allowed(self.valid)
        cells = random_cells(tuple(ok.shape), trainer.cfg.erase_fraction, trainer.device, ok, g)
        self.random = to_pixels(cells, trainer.cfg.cell)
        self.rows: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.structure_ratios: list[float] = []

    @torch.no_grad()
    def record(self, rnd: int, use_instructor: bool) -> None:
        t = self.t
        was = t.inpainter.training, t.instructor.training
        t.inpainter.eval()
        t.instructor.eval()
        mask = t.instructor_mask(self.x, self.valid, sample=False) if use_instructor else self.random
        out = t.inpainter(erase(self.x, mask))
        t.inpainter.train(was[0])
        t.instructor.train(was[1])
        s = structure(self.x) * self.valid
        erased = (s * mask).sum() / mask.sum().clamp_min(1)
        ratio = float(erased / (s.sum() / self.valid.sum().clamp_min(1)))
        self.structure_ratios.append(round(ratio, 3))
        self.rows.append((rnd, mask.cpu().numpy(), ((out + 1) / 2).cpu().numpy()))

    def save(self, path: str) -> str:
        """One row per round; per tile three panels: tile | erased cells (yellow) | restoration."""
        from PIL import Image, ImageDraw  # noqa: PLC0415  (only needed for this picture)

        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        x = self.x.cpu().numpy()
        bands = _display_bands(x.shape[1])
        lo = np.percentile(x[:, bands], 2, axis=(0, 2, 3))[:, None, None]
        hi = np.percentile(x[:, bands], 98, axis=(0, 2, 3))[:, None, None]

        def rgb(a: np.ndarray) -> np.ndarray:
            v = np.clip((a[bands] - lo) / np.maximum(hi - lo, 1e-6), 0, 1)
            return (v.transpose(1, 2, 0) * 255).astype(np.uint8)

        n, _, h, w = x.shape
        scale = max(1, 128 // h)
        pad, label_w, head = 4, 70, 18
        pw, ph = w * scale, h * scale
        width = label_w + n * (3 * pw + 2 * pad) + (n - 1) * 3 * pad
        height = head + len(self.rows) * (ph + pad)
        img = Image.new("RGB", (width, height), (255, 255, 255))
        draw = ImageDraw.Draw(img)
        for i in range(n):
            x0 = label_w + i * (3 * pw + 5 * pad)
            for j, name in enumerate(("tile", "erased", "restored")):
                draw.text((x0 + j * (pw + pad) + 2, 3), name, fill=(0, 0, 0))
        for r, (rnd, mask, out) in enumerate(self.rows):
            y0 = head + r * (ph + pad)
            kind = "random" if rnd == 0 or not self.t.cfg.instructor else "instructor"
            draw.text((4, y0 + ph // 2 - 12), f"round {rnd}", fill=(0, 0, 0))
            draw.text((4, y0 + ph // 2 + 2), kind, fill=(90, 90, 90))
            for i in range(n):
                x0 = label_w + i * (3 * pw + 5 * pad)
                tile = rgb(x[i])
                over = tile.copy()
                m = mask[i] > 0.5
                over[m] = (0.35 * over[m] + 0.65 * np.array([255, 215, 0])).astype(np.uint8)
                restored = rgb(out[i] * 1.0)
                for j, panel in enumerate((tile, over, restored)):
                    pim = Image.fromarray(panel).resize((pw, ph), Image.NEAREST)
                    img.paste(pim, (x0 + j * (pw + pad), y0))
        img.save(path)
        return path


def _display_bands(c: int) -> list[int]:
    """Three bands to show: the first three (RGB-like) or, for many bands, spread across the range."""
    if c >= 3 and c <= 4:
        return [0, 1, 2]
    if c < 3:
        return [0] * 3
    return [int(c * 0.75), int(c * 0.45), int(c * 0.15)]
