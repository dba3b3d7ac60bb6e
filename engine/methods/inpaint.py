"""Inpainting method, stage 2: fine-tune a segmentation network that starts from the inpainter.

Stage 1 (engine.inpainting, run by the pipeline or once by ``python -m engine pretrain``) taught an
encoder–decoder to restore the regions an adversarial instructor erased. Here the first level of the
segmentation network's encoder (with a spectral stem's band mixer) starts from that encoder's; its
deeper levels, decoder and 1×1 classifier start from random (``transfer_levels``, ``--transfer-levels``;
0 transfers the whole encoder, as inpaint+icnet's students get it). Features fitted to restoring the
image were, past the first level, a narrower start for the classes than random ones: on Indian Pines,
k = 5, five seeds, the first level alone gave 0.805 mean OA with the labels held, the whole encoder
0.795, the supervised network 0.797 (README). (``transfer_decoder``, ``--decoder-transfer on``, also
starts the decoder from the inpainting decoder, on the whole encoder. A decoder fitted to restoring
bands was no better a start for class boundaries than a fresh one: on Indian Pines, k = 5, the encoder
alone was ahead on each of three seeds, 0.801 against 0.791 mean OA with the labels held, and level at
k = 10.) It is then
trained like the supervised baseline (same network, augmentations, SGD and steps) with one more loss:

    loss = CE(labeled pixels) + ssim_weight × (1 − SSIM(softmax, one-hot)) on fully labeled 11×11 windows

SSIM weight: **1.0** by default (``--ssim-weight``). Both terms are per-pixel means of comparable size
(CE starts near ln K and falls to ~0.1; 1 − SSIM lies in [0, 1] and falls as the windows' structure
is matched), so 1.0 lets SSIM shape region interiors and boundaries without drowning the per-pixel
class evidence; on the synthetic polygon-label check it was not worse than 0.5 or 2 (see the
README's benchmark section). SSIM only acts where labels are dense: with point or thin scribble
labels no window is fully labeled and the loss is exactly CE.

With ``restore_weight`` > 0 (``--restore-weight``, an experiment, off) the network also goes on with the
pretext task while it learns the classes: each step erases random cells of unlabeled tiles (from the
image's own tile stream, so the labeled batches stay the same) and adds restore_weight × the
pretraining's restoration loss, through the inpainter's own decoder and restoration head on the shared
encoder. The few labeled pixels then cannot pull the encoder away from the image's structure, and every
unlabeled pixel keeps teaching it. (Restoring from the segmentation decoder's own features instead made
those features serve two masters: on Indian Pines, k = 5, seed 0, the default map fell from OA 0.794 to
0.485.)
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from engine.augment import band_jitter, random_dihedral
from engine.data import TileSampler
from engine.ema import WeightAverage
from engine.inpainting import erase, random_cell_mask, restoration_loss, restoration_target
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
        self.restorer: nn.Module | None = None  # inpainter's decoder + head, when fine-tuning keeps restoring
        self.restore_weight = cfg.inpaint.restore_weight

    def initialise(self, enc: EncoderFile) -> None:
        """Load the pretrained encoder (and decoder) into the network (in place: the optimiser keeps
        working on the same tensors)."""
        ip = self.cfg.inpaint
        # the inpainter's decoder, transferred or kept restoring, works on the whole encoder it was
        # pretrained with
        whole = ip.transfer_decoder or self.restore_weight > 0
        load_pretrained(self.net, enc, decoder=ip.transfer_decoder, levels=0 if whole else ip.transfer_levels)
        self.pretrained = True
        if self.restore_weight > 0:
            self._keep_restoring(enc)

    def _keep_restoring(self, enc: EncoderFile) -> None:
        """Set up the pretext task for fine-tuning: the inpainter's own decoder and restoration head
        (from ``enc``; fresh ones where the file lacks them) on the shared encoder, and erasure as in
        its pretraining."""
        decoder = copy.deepcopy(self.net.decoder)
        if enc.decoder:
            decoder.load_state_dict(enc.decoder)
        head = nn.Conv2d(self.net.decoder.out_channels, self.data.bands, 1)
        if enc.head:
            head.load_state_dict(enc.head)
        self.restorer = nn.ModuleDict({"decoder": decoder, "head": head}).to(self.device).train()
        self.opt.add_param_group({"params": list(self.restorer.parameters())})
        self.erasure = enc.inpaint
        self.unlabeled = TileSampler(self.data.chips, self.cfg.tile_size, self.cfg.seed + 104_729)
        self.gen = torch.Generator().manual_seed(self.cfg.seed)

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """The inpainter's restoration of ``x`` through the segmentation network's encoder."""
        y = self.restorer["decoder"](self.net.encoder(x))
        if y.shape[-2:] != x.shape[-2:]:
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.tanh(self.restorer["head"](y))

    def restoration_step(self) -> torch.Tensor:
        """The pretraining's loss on a batch of unlabeled tiles with random cells erased."""
        e = self.erasure
        x, valid = self.unlabeled.unlabeled(self.cfg.unlabeled_batch_size)
        x, valid = torch.from_numpy(x).to(self.device), torch.from_numpy(valid).to(self.device)
        x, valid = random_dihedral(x, valid, generator=self.gen)
        mask = random_cell_mask(valid, e, self.device, self.gen)
        # erased tiles must not move the shared encoder's batch-norm statistics, which prediction uses:
        # they normalise by their own batch, but the running means stay those of whole tiles
        norms = [m for m in self.net.encoder.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        kept = [m.momentum for m in norms]
        for m in norms:
            m.momentum = 0.0
        try:
            out = self.restore(erase(x, mask))
        finally:
            for m, momentum in zip(norms, kept, strict=True):
                m.momentum = momentum
        return restoration_loss(out, restoration_target(x), mask, valid, e.erased_weight)

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
        if self.restorer is not None and step > self.warmup_steps:
            rec = self.restoration_step()
            loss = loss + self.restore_weight * rec
            logs["restore"] = rec.item()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.average.update()
        logs["loss"] = loss.item()
        return logs

    def ensemble(self):
        return [self.average.model()]
