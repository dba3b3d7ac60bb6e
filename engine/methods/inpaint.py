"""Inpainting method, stage 2: fine-tune a segmentation network that starts from the inpainter.

Stage 1 (engine.inpainting, run by the pipeline or once by ``python -m engine pretrain``) taught an
encoder–decoder to restore the regions an adversarial instructor erased. Here the segmentation
network's encoder starts from that encoder and, with ``transfer_decoder`` (default), its decoder from
the inpainting decoder: both hold features of the imagery at every scale, only the 1×1 classifier
starts from random. It is then trained like the supervised baseline (same network, augmentations,
SGD and steps) with one more loss:

    loss = CE(labeled pixels) + ssim_weight × (1 − SSIM(softmax, one-hot)) on fully labeled 11×11 windows

SSIM weight: **1.0** by default (``--ssim-weight``). Both terms are per-pixel means of comparable size
(CE starts near ln K and falls to ~0.1; 1 − SSIM lies in [0, 1] and falls as the windows' structure
is matched), so 1.0 lets SSIM shape region interiors and boundaries without drowning the per-pixel
class evidence; on the synthetic polygon-label check it was not worse than 0.5 or 2 (see the
README's benchmark section). SSIM only acts where labels are dense: with point or thin scribble
labels no window is fully labeled and the loss is exactly CE.
"""

from __future__ import annotations

import torch

from engine.augment import band_jitter, random_dihedral
from engine.ema import WeightAverage
from engine.models import build_model
from engine.pretrain import EncoderFile, load_pretrained
from engine.ssim import ssim_loss
from engine.training import Method, sparse_ce, to_batch


class Inpaint(Method):
    name = "inpaint"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        torch.manual_seed(cfg.seed)
        self.net = build_model(cfg.model, band_axes=self.band_axes).to(device).train()
        encoder = list(self.net.encoder.parameters())
        rest = [p for n, p in self.net.named_parameters() if not n.startswith("encoder.")]
        groups = [{"params": encoder, "lr_scale": cfg.inpaint.encoder_lr_scale}, {"params": rest}]
        self.opt = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        self.average = WeightAverage(self.net, cfg.weight_average)  # a copy at its first update
        self.ssim_weight = cfg.inpaint.ssim_weight
        self.warmup_steps = round(cfg.inpaint.head_warmup * cfg.steps)
        self.pretrained = False

    def initialise(self, enc: EncoderFile) -> None:
        """Load the pretrained encoder (and decoder) into the network (in place: the optimiser keeps
        working on the same tensors)."""
        load_pretrained(self.net, enc, decoder=self.cfg.inpaint.transfer_decoder)
        self.pretrained = True

    def optimizers(self):
        return [self.opt]

    def train_step(self, step, total):
        x, y = to_batch(self.data.sampler.labeled(self.cfg.batch_size), self.device)
        x, y = random_dihedral(x, y)
        x = band_jitter(x)
        if self.pretrained and step <= self.warmup_steps:  # linear probe first: the body stays frozen
            with torch.no_grad():
                feats = self.net.features(x)
            logits = self.net.head(feats)
        else:
            logits = self.net(x)
        ce = sparse_ce(logits, y)
        loss = ce
        logs = {"ce": ce.item()}
        if self.ssim_weight > 0:
            ssim = ssim_loss(torch.softmax(logits, 1), y)
            loss = ce + self.ssim_weight * ssim
            logs["ssim"] = ssim.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.average.update()
        logs["loss"] = loss.item()
        return logs

    def ensemble(self):
        return [self.average.model()]
