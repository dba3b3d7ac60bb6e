"""Training configuration: one typed dataclass, named presets, CLI flags only map onto it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

Method = Literal["supervised", "icnet", "inpaint", "inpaint+icnet"]
# methods this engine build can train
METHODS: tuple[str, ...] = ("supervised", "icnet", "inpaint", "inpaint+icnet")


@dataclass
class ModelConfig:
    """Network architecture; stored in the model file so predict rebuilds the same network."""

    arch: Literal["unet", "resnet18", "resnet34", "resnet50"] = "unet"
    widths: tuple[int, ...] = (24, 48, 96, 192)  # U-Net channels per level (CPU-friendly default)
    in_channels: int = 3  # set from the image's band count
    num_classes: int = 2  # set from the labels
    # 1×1 conv-BN-ReLU that mixes the bands down to this many channels before the encoder (0 = none;
    # -1 = auto: 32 channels when the image has more than 32 bands). On hyperspectral imagery it
    # replaces a 3×3 first layer over hundreds of bands (cost and parameters 9× smaller, a learned
    # PCA-like projection that few labels can fit); on RGB/multispectral images it is off.
    spectral_stem: int = -1
    # how that band mixer starts: "random" like any other layer, or "pca" on the image's leading
    # principal directions, each with both signs (data.stem_axes). An experiment, off: Indian Pines,
    # supervised, fast preset, seeds 0-2, default output: k=5 0.791 vs 0.794, k=10 0.858 vs 0.863; ICNet
    # k=10 seeds 0-1: 0.888 / 0.825 vs 0.896 / 0.851
    stem_init: Literal["pca", "random"] = "random"

    def set_bands(self, bands: int) -> None:
        """Set the input band count and resolve the automatic spectral stem for it."""
        self.in_channels = bands
        if self.spectral_stem < 0:
            self.spectral_stem = 32 if bands > 32 else 0

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["widths"] = list(self.widths)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        d = dict(d)
        d["widths"] = tuple(d.get("widths", cls.widths))
        d.setdefault("spectral_stem", 0)  # model files from before the stem existed have none
        d.setdefault("stem_init", "random")  # nor those from before its principal-direction start
        return cls(**{k: v for k, v in d.items() if k in {f.name for f in dataclasses.fields(cls)}})


@dataclass
class InpaintConfig:
    """Self-supervised inpainting pretraining (stage 1) and its fine-tuning (stage 2); METHODS.md §2."""

    # --- stage 1: adversarial inpainting on unlabeled tiles
    steps: int = 3000  # inpainter steps (round 0 + all adversarial rounds); scales the whole schedule
    rounds: int = 3  # adversarial rounds after round 0 (each: instructor phase, then inpainter phase)
    warmup_fraction: float = 0.4  # share of the inpainter steps spent in round 0 (random cell masks)
    instructor_share: float = 0.15  # instructor steps, all rounds together, per inpainter step
    tile_size: int = 128  # pretraining crop side, px (multiple of ``cell``; the reference's 128)
    batch_size: int = 8
    cell: int = 16  # side of an erasable grid cell, px
    erase_fraction: float = 0.25  # share of the tile area erased
    margin: int = 1  # cells along the tile border never erased (context on every side)
    erased_weight: float = 0.99  # L2 weight of erased pixels (visible pixels get 1 - this)
    lr: float = 0.05  # inpainter SGD learning rate; halves at each adversarial round
    momentum: float = 0.9
    instructor_lr: float = 1e-3  # Adam; the reference's 1e-5 is for far longer schedules
    instructor_width: int = 32  # channels of the instructor's first stage
    latent: int = 100  # per-cell latent size of the instructor's variational head
    kl_weight: float = 1e-6
    soft_temperature: float = 0.1  # sigmoid temperature on standardised cell scores (instructor phase)
    # what the frozen inpainter sees while the instructor trains: "random" cells (rewards content) or
    # the instructor's "own" cells (the reference formulation); see InpaintingPretrainer.instructor_step
    instructor_context: Literal["random", "own"] = "random"
    instructor: bool = True  # False: every round uses random cell masks (ablation)
    spectral_whitening: bool = False  # restoration error on whitened principal components of the bands
    #                                   instead of raw bands (inpainting.spectral_projection)
    # --- stage 2: fine-tuning
    ssim_weight: float = 1.0  # weight of the patch SSIM loss next to cross-entropy (see methods/inpaint.py)
    # also start the segmentation decoder from the inpainting decoder (off: the encoder alone, as
    # inpaint+icnet's students do; on Indian Pines, k = 5, three seeds, the encoder alone gave 0.801
    # against 0.791 with the labels held, ahead on every seed, and 0.880 against 0.879 at k = 10; README)
    transfer_decoder: bool = False
    # encoder levels, from the input, that start from the pretrained encoder (the deeper ones and the
    # decoder from random); 0: all. The first level (with a spectral stem's band mixer) transfers
    # what restoring taught about the bands and local texture; the deeper levels, fitted to restoring the
    # image, were a narrower start for the classes than random ones (Indian Pines, k = 5, five seeds:
    # README, *Inpaint transfers its first encoder level*). With transfer_decoder or restore_weight (both
    # use the inpainter's decoder): the whole encoder.
    transfer_levels: int = 1
    encoder_lr_scale: float = 1.0  # learning rate of the pretrained encoder relative to the rest (0: frozen)
    head_warmup: float = 0.0  # share of fine-tuning steps that train only the classifier (linear probe
    #                           first, then everything: a random head's first gradients do not
    #                           scramble the pretrained features)
    # weight of the restoration loss kept during fine-tuning (0: off): the network goes on restoring
    # randomly erased cells of unlabeled tiles through the pretrained restoration head while it learns
    # the classes, so the few labels cannot pull the shared features away from the image's structure
    restore_weight: float = 0.0
    init: str = ""  # encoder file from `python -m engine pretrain`; empty: pretrain within the run
    # encoder cache file (train/run without ``init``): used when it was pretrained on the same rasters
    # with the same stage-1 settings (pretrain.pretraining_key), else the run pretrains and writes it
    cache: str = ""
    debug_dir: str = ""  # folder for the rounds picture (tiles | erasure masks | restorations)

    # fields that act on stage 2 or on files only: an encoder pretrained with other values is the same
    FINE_TUNE_FIELDS = ("ssim_weight", "transfer_decoder", "transfer_levels", "encoder_lr_scale",
                        "head_warmup", "restore_weight", "init", "cache", "debug_dir")

    @classmethod
    def from_dict(cls, d: dict) -> InpaintConfig:
        return cls(**{k: v for k, v in dict(d).items() if k in {f.name for f in dataclasses.fields(cls)}})


@dataclass
class ICNetConfig:
    """ICNet: two students, cross EMA teachers (METHODS.md §1). ``reference`` reproduces the released
    code and ignores the switches below; ``improved`` (default) turns each addition on or off."""

    mode: Literal["reference", "improved"] = "improved"
    unsup_weight: float = 0.25  # weight of the pseudo-label loss next to the supervised loss; at 1 the
    #                             pseudo-labels let a class swallow its neighbour whole (Indian Pines k=5
    #                             with the default output: 0.715 at 1, 0.794 at 0.25, better on every seed)
    ema_cap: float = 0.99  # teacher decay min(1 - 1/(t+1), ema_cap); the reference's 0.999 averages
    #                        a whole short (fast-preset) schedule, so its teacher lags far behind
    clip_value: float = 0.1  # gradient value clipping (0 = off)
    # --- improved-mode switches
    conf_mask: bool = True  # use only pseudo-labels whose teacher confidence passes the threshold
    conf_threshold: float = 0.9  # confidence threshold (the base one when class_adaptive)
    class_adaptive: bool = True  # per-class thresholds following the teacher's confidence per class
    cutmix: bool = True  # CutMix between unlabeled tiles (image and pseudo-labels alike)
    cutmix_p: float = 0.5  # probability that a tile gets a pasted box
    contrastive_weight: float = 0.1  # pixel-to-prototype InfoNCE on a projection head (0 = off)
    temperature: float = 0.1  # InfoNCE temperature
    proj_dim: int = 32  # projection-head embedding size
    rounds: int = 1  # iterative rounds: the pseudo-label pool is refreshed at each new one (1 = off).
    #                  Off by default: Indian Pines default output over five seeds, 1 vs 2 rounds: k=5
    #                  0.802 vs 0.780, k=10 0.872 vs 0.859 (ahead on 4 of 5 each); synthetic scene level
    pool_fraction: float = 0.3  # pool also takes each class's most confident share (x round; 0 = off)
    pool_smoothing: bool = True  # pool from edge-aware smoothed predictions (engine.smooth)
    pool_tta: bool = False  # pool from 8-view predictions (test-time augmentation) while the chips are
    #                         small enough for ``--tta auto`` to use 8 views (engine.predict.auto_views)
    pseudo_smoothing: bool = False  # every step's pseudo-labels from edge-aware smoothed teacher output
    teacher_views: int = 1  # the teacher's pseudo-labels from the mean softmax over this many flips /
    #                         90° turns of the weak view (1, 2, 4 or 8; each extra view one teacher pass)
    supervised_first: bool = False  # round 1 from the labels alone; unlabeled losses start at round 2
    balance_unsup: bool = True  # pseudo-label loss weighted per class against its share (ClassBalance):
    #                             on top of weight 0.25, Indian Pines default output k=5 0.794 -> 0.799,
    #                             k=10 0.857 -> 0.873 (up on 5 of 6 seed pairs, -0.002 on the sixth)
    reseed: bool = False  # at a new round, re-initialise the weaker student (off: a short schedule
    #                       leaves a re-seeded student too little time; Indian Pines k=5 seed 0 below)
    ensemble: bool = True  # predict with both teachers' mean softmax (else teacher B alone)
    # teachers keep batch-norm statistics of their own weights (engine.ema): they teach with each batch's
    # statistics and are re-estimated before validating and saving. Reference mode: on (its 0.999 average
    # since the start does not fit averaged statistics). Improved: off (cap 0.99; averaged statistics did
    # better: learning-test scenes, seeds 0 / 2, mIoU 0.738 / 0.767 against 0.583 / 0.631; Indian Pines
    # k=5 level at best)
    own_statistics: bool = False

    def resolved(self) -> ICNetConfig:
        """The settings a run actually uses: reference mode switches every addition off."""
        if self.mode == "improved":
            return self
        return dataclasses.replace(self, unsup_weight=1.0, ema_cap=0.999, clip_value=0.1, conf_mask=False,
                                   class_adaptive=False, cutmix=False, contrastive_weight=0.0, rounds=1,
                                   pool_smoothing=False, pool_tta=False, pseudo_smoothing=False,
                                   teacher_views=1, supervised_first=False, balance_unsup=False,
                                   ensemble=False, own_statistics=True)

    @classmethod
    def from_dict(cls, d: dict) -> ICNetConfig:
        return cls(**{k: v for k, v in dict(d).items() if k in {f.name for f in dataclasses.fields(cls)}})


@dataclass
class TrainConfig:
    """Everything that decides how a model is trained. Defaults are the ``balanced`` preset."""

    method: str = "supervised"
    preset: str = "balanced"
    model: ModelConfig = field(default_factory=ModelConfig)
    tile_size: int = 128  # training crop side, px (multiple of 16)
    batch_size: int = 8  # labeled tiles per step
    steps: int = 1500  # optimisation steps
    lr: float = 0.01  # SGD learning rate (poly decay)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    val_fraction: float = 0.2  # share of labeled pixels held out, by whole strokes/blocks
    val_every: int = 100  # steps between validations
    seed: int = 0
    memory_budget_mb: int = 1024  # image pixels held in RAM for training tiles
    unlabeled_batch_size: int = 8  # used by semi-supervised methods
    weight_average: float = 0.99  # supervised / inpaint predict with an EMA of the weights, this its cap
    #                               (0 = with the last weights); ICNet's teachers are EMAs already
    inpaint: InpaintConfig = field(default_factory=InpaintConfig)  # inpaint, inpaint+icnet
    icnet: ICNetConfig = field(default_factory=ICNetConfig)  # icnet, inpaint+icnet
    warm_start: str = ""  # a model file to start from (--warm-start): its weights, normalisation, network
    # supervised: weigh each class's labeled pixels by the inverse of its share of them (an experiment,
    # off): a class painted as a few large blobs then counts as much as one painted as a few dots
    balance_labels: bool = False
    # supervised, unless balance_labels: a class with fewer labeled pixels than (largest class's / this)
    # is weighed up to that share (an experiment, 0 = off): on synthetic scenes with one big filled block
    # beside short scribbles, 10 measured worse than no weights (bench/results/label_imbalance.md)
    imbalance_cap: float = 0.0
    # values that are no data in every band of the image (and of --unlabeled rasters), besides the files'
    # own (--nodata): None = not given (a warm start then keeps its model's), [] = none
    nodata: list[float] | None = None

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        d = dict(d)
        model = ModelConfig.from_dict(d.pop("model", {}))
        d["inpaint"] = InpaintConfig.from_dict(d.get("inpaint", {}))
        d["icnet"] = ICNetConfig.from_dict(d.get("icnet", {}))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(model=model, **{k: v for k, v in d.items() if k in known})


# A warm start (the analyst's previous model of the image) trains this share of the preset's steps: on
# Indian Pines (k = 5 model + five more labels per class, four methods, three seeds) half the steps was
# level with a fresh training and a quarter about 0.01 OA behind (bench/warm_start.py)
WARM_START_SHARE = 0.5

# Presets: named instances. `fast` is sized for a ~1 Mpx image to a finished map in a few minutes on
# 2 CPU cores; `best` assumes a GPU or patience.
PRESETS: dict[str, TrainConfig] = {
    "fast": TrainConfig(preset="fast", model=ModelConfig(widths=(16, 32, 64, 128)), tile_size=96,
                        batch_size=8, steps=400, val_every=50,
                        inpaint=InpaintConfig(steps=1200, tile_size=64, cell=8)),
    "balanced": TrainConfig(preset="balanced"),
    "best": TrainConfig(preset="best", model=ModelConfig(widths=(32, 64, 128, 256, 256)), tile_size=192,
                        batch_size=8, steps=4000, val_every=200, memory_budget_mb=2048,
                        inpaint=InpaintConfig(steps=8000, rounds=4)),
}


def make_config(preset: str = "balanced", **overrides) -> TrainConfig:
    """A fresh copy of ``preset`` with ``overrides`` (None values are ignored) applied."""
    cfg = TrainConfig.from_dict(PRESETS[preset].to_dict())
    for k, v in overrides.items():
        if v is None:
            continue
        if k in {f.name for f in dataclasses.fields(ModelConfig)}:
            setattr(cfg.model, k, v)
        else:
            setattr(cfg, k, v)
    return cfg
