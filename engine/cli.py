"""``python -m engine``: the command line every other part (plugin, Processing, scripts) uses.

argparse only maps flags onto the dataclasses in engine.config; the work is in engine.pipeline.
Exit status 0 on success, 2 on a user error (one sentence on stderr, and an ``error`` event with
``--progress jsonl``), 130 when cancelled, 1 on an internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

from engine import __version__
from engine.config import PRESETS, WARM_START_SHARE, make_config
from engine.errors import Cancelled, OutputError, SemiSegError, disk_full
from engine.progress import Reporter


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--image", required=True, help="raster to learn from (any GDAL format, any band count)")
    p.add_argument("--labels", required=True,
                   help="label raster (uint8, 0 = unlabeled) or vector file (points/lines/polygons)")
    p.add_argument("--label-field", default=None, help="class field of vector labels (default: class)")
    p.add_argument("--unlabeled", nargs="*", default=[], help="more rasters (same bands) to learn from")
    _add_nodata_option(p, "of the image and the --unlabeled rasters; a warm start keeps its model's unless "
                          "given")
    p.add_argument("--method", default="supervised", help="supervised, icnet, inpaint or inpaint+icnet")
    p.add_argument("--preset", default="balanced", choices=sorted(PRESETS))
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--val-fraction", type=float, default=None,
                   help="share of labeled pixels held out for validation, by whole strokes (default 0.2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="override the preset's training steps")
    p.add_argument("--warm-start", default=None, metavar="MODEL",
                   help="start from this model of the image (e.g. the last run's, before more labels were "
                        "painted; same method): its weights, normalisation and network, for half the "
                        "preset's steps unless --steps is given")
    p.add_argument("--tile-size", type=int, default=None, help="override the training tile side (px)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--weight-average", type=_decay, default=None, metavar="DECAY",
                   help="supervised/inpaint: predict with the moving average of the weights, DECAY its cap "
                        "(default 0.99; 0 = the last weights)")
    p.add_argument("--balance-labels", action="store_true",
                   help="supervised: every labeled class weighs the same in the loss, however many pixels "
                        "it has (an experiment)")
    _add_network_options(p)
    p.add_argument("--progress", default="bar", choices=["jsonl", "bar", "none"])
    _add_icnet_options(p)
    _add_inpaint_options(p)


def _nodata_value(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text} is not a pixel value; give a number, or none") from None


def _add_nodata_option(p: argparse.ArgumentParser, whose: str) -> None:
    p.add_argument("--nodata", type=_nodata_value, nargs="+", default=None, metavar="VALUE",
                   help="pixels holding VALUE in any band are no data (not learnt from, not mapped), besides "
                        f"the file's own no-data value: a collar the file does not declare ({whose}; none: "
                        "no such value)")


def _nodata_list(a: argparse.Namespace) -> list[float] | None:
    """``--nodata`` as a list of values ([] for none), or None where it was not given."""
    if a.nodata is None:
        return None
    if None in a.nodata and len(a.nodata) > 1:
        from engine.errors import InputError  # noqa: PLC0415

        raise InputError("--nodata none cannot be given with values; give the values, or none alone.",
                         "bad_usage")
    return [v for v in a.nodata if v is not None]


def _add_network_options(p: argparse.ArgumentParser) -> None:
    """The architecture flags train, run and pretrain share (config.ModelConfig)."""
    p.add_argument("--arch", default=None, choices=["unet", "resnet18", "resnet34", "resnet50"])
    p.add_argument("--spectral-stem", type=int, default=None, metavar="N",
                   help="1x1 band mixer to N channels before the network (0 = none; default: 32 when the "
                        "image has more than 32 bands)")
    p.add_argument("--stem-init", default=None, choices=["pca", "random"],
                   help="how that band mixer starts: random (default) or on the image's principal "
                        "directions (pca; an experiment)")


def _add_icnet_options(p: argparse.ArgumentParser) -> None:
    """ICNet switches (config.ICNetConfig); each ``--no-X`` turns one improved-mode addition off."""
    g = p.add_argument_group("icnet")
    g.add_argument("--icnet-mode", default=None, choices=["reference", "improved"],
                   help="reference: the released code's behaviour; improved (default): with the additions")
    g.add_argument("--unlabeled-batch-size", type=int, default=None, help="unlabeled tiles per step")
    g.add_argument("--conf-threshold", type=float, default=None, help="pseudo-label confidence threshold")
    g.add_argument("--contrastive-weight", type=float, default=None)
    g.add_argument("--rounds", type=int, default=None,
                   help="iterative rounds, each refreshing the pseudo-label pool (default 1 = none)")
    g.add_argument("--unsup-weight", type=float, default=None,
                   help="pseudo-label loss weight next to the supervised loss (default 0.25; reference 1)")
    g.add_argument("--pool-fraction", type=float, default=None,
                   help="share of each class's most confident pixels added to the pseudo-label pool per "
                        "round (0 = confidence threshold only)")
    for flag, what in (("conf-mask", "confidence-masked pseudo-labels (plain argmax instead)"),
                       ("class-adaptive", "per-class thresholds (one threshold for all classes)"),
                       ("cutmix", "CutMix between unlabeled tiles"),
                       ("contrastive", "the pixel contrastive loss"),
                       ("rounds", "iterative rounds (the default; kept for older commands)"),
                       ("pool-smoothing", "edge-aware smoothing of the pool's predictions"),
                       ("balance-unsup", "per-class weighting of the pseudo-label loss (a plain mean)"),
                       ("ensemble", "prediction from both teachers (teacher B alone)")):
        g.add_argument(f"--no-{flag}", action="store_true", help=f"no {what}")
    g.add_argument("--reseed", action="store_true",
                   help="at each new round re-initialise the weaker student (default: keep both)")
    g.add_argument("--pool-tta", action="store_true",
                   help="build the pseudo-label pool from 8-view predictions (while --tta auto would use 8)")
    g.add_argument("--teacher-views", type=int, default=None, choices=[1, 2, 4, 8],
                   help="pseudo-labels from the teacher's mean over this many flips / 90° turns of each "
                        "unlabeled tile (default 1; each extra view costs one more teacher pass)")
    g.add_argument("--smooth-pseudo-labels", action="store_true",
                   help="take every step's pseudo-labels from the teacher's edge-aware smoothed output")
    g.add_argument("--supervised-first", action="store_true",
                   help="train round 1 on the labels alone; the unlabeled losses start with the round-2 pool")
    g.add_argument("--balance-unsup", action="store_true",
                   help="weight the pseudo-label loss per class against its share of the pseudo-labels "
                        "(the default now; the flag stays so that earlier commands still run)")


def _apply_icnet_options(cfg, a: argparse.Namespace) -> None:
    ic = cfg.icnet
    if a.unlabeled_batch_size is not None:
        cfg.unlabeled_batch_size = a.unlabeled_batch_size
    for name in ("icnet_mode", "conf_threshold", "contrastive_weight", "rounds", "unsup_weight",
                 "pool_fraction", "teacher_views"):
        if getattr(a, name) is not None:
            setattr(ic, "mode" if name == "icnet_mode" else name, getattr(a, name))
    ic.conf_mask &= not a.no_conf_mask
    ic.class_adaptive &= not a.no_class_adaptive
    ic.cutmix &= not a.no_cutmix
    ic.ensemble &= not a.no_ensemble
    ic.pool_smoothing &= not a.no_pool_smoothing
    ic.reseed |= a.reseed
    ic.pool_tta |= a.pool_tta
    ic.pseudo_smoothing |= a.smooth_pseudo_labels
    ic.supervised_first |= a.supervised_first
    ic.balance_unsup = (ic.balance_unsup or a.balance_unsup) and not a.no_balance_unsup
    if a.no_contrastive:
        ic.contrastive_weight = 0.0
    if a.no_rounds:
        ic.rounds = 1
    round_only = [flag for flag, given in (("--pool-fraction", a.pool_fraction is not None),
                                           ("--no-pool-smoothing", a.no_pool_smoothing),
                                           ("--reseed", a.reseed), ("--pool-tta", a.pool_tta),
                                           ("--supervised-first", a.supervised_first)) if given]
    if round_only and ic.rounds < 2 and ic.mode == "improved" and "icnet" in cfg.method:
        verb = "acts" if len(round_only) == 1 else "act"
        raise SemiSegError(f"{', '.join(round_only)} {verb} only on ICNet's iterative rounds, which are off "
                           "by default; add --rounds 2 to use them, or leave them out.", code="bad_usage")


def _add_inpaint_options(p: argparse.ArgumentParser, fine_tune: bool = True) -> None:
    """Inpainting switches (config.InpaintConfig) for train/run (``fine_tune``) and pretrain."""
    g = p.add_argument_group("inpaint")
    if fine_tune:
        g.add_argument("--init", default=None,
                       help="encoder file from `pretrain`: start from it instead of pretraining in this run")
        g.add_argument("--encoder-cache", default=None, metavar="ENC",
                       help="reuse ENC if it was pretrained on these rasters with these settings; otherwise "
                            "pretrain in this run and write the encoder there for the next run")
        g.add_argument("--ssim-weight", type=_weight, default=None,
                       help="weight of the SSIM loss next to cross-entropy (0 = cross-entropy only)")
        g.add_argument("--encoder-lr-scale", type=float, default=None,
                       help="learning rate of the pretrained encoder relative to the rest (0 = frozen)")
        g.add_argument("--decoder-transfer", choices=["on", "off"], default=None,
                       help="also start the decoder, on the whole encoder, from the inpainter (default "
                            "off: the encoder's first level pretrained, the rest fresh)")
        g.add_argument("--transfer-levels", type=_levels, default=None, metavar="N",
                       help="start the encoder's first N levels (from the input) from the pretrained "
                            "encoder, the deeper ones from random (default 1; 0 = the whole encoder)")
        # the older spelling of "--decoder-transfer off", the default now
        g.add_argument("--no-decoder-transfer", action="store_true", help=argparse.SUPPRESS)
        g.add_argument("--head-warmup", type=float, default=None, metavar="FRACTION",
                       help="share of the fine-tuning steps that train only the classifier over the "
                            "frozen pretrained network before everything trains")
        g.add_argument("--restore-weight", type=_weight, default=None, metavar="W",
                       help="keep restoring erased cells of unlabeled tiles while fine-tuning, with this "
                            "weight next to the segmentation loss (0 = off, the default)")
    g.add_argument("--pretrain-steps", type=int, default=None, help="inpainter steps of the pretraining")
    g.add_argument("--no-instructor", action="store_true",
                   help="erase random cells in every round (ablation of the adversarial instructor)")
    g.add_argument("--instructor-context", default=None, choices=["random", "own"],
                   help="what the inpainter sees while the instructor trains (default random; own: the "
                        "reference formulation)")
    g.add_argument("--spectral-whitening", default=None, choices=["on", "off"],
                   help="measure the inpainter's restoration error on the whitened principal components of "
                        "the bands instead of the raw bands (every spectral direction counts alike)")
    g.add_argument("--debug-dir", default=None,
                   help="write inpainting_rounds.png there: tiles | erasure masks | restorations per round")


def _levels(text: str) -> int:
    """A count of encoder levels: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of levels (0, 1, 2, ...)")
    return value


def _weight(text: str) -> float:
    v = float(text)
    if not (v >= 0.0 and v < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} is not a loss weight; give a number from 0 (off) up")
    return v


def _pixel_size(text: str) -> float:
    v = float(text)
    if not (0.0 < v < float("inf")):
        raise argparse.ArgumentTypeError(f"{text} is not a pixel size; give a positive number of cm/px")
    return v


def _decay(text: str) -> float:
    v = float(text)
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a decay; give a number from 0 (off) up to, not "
                                         "including, 1 (e.g. 0.99)")
    return v


def _add_predict_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tta", default="auto", choices=["auto", "on", "off"],
                   help="test-time augmentation: average each window's prediction over its 8 flips / 90° "
                        "turns (8x the predict time); auto = on for rasters up to 4 megapixels on a CPU, "
                        "64 on a GPU")
    p.add_argument("--smooth", default="on", choices=["on", "off"],
                   help="edge-aware smoothing of the class probabilities: neighbouring pixels with alike "
                        "bands share a class, an edge between unlike pixels stops it (default on)")
    p.add_argument("--area", type=float, nargs=4, default=None, metavar=("XMIN", "YMIN", "XMAX", "YMAX"),
                   help="segment only this part of the image (bounds in the image's CRS): the map covers "
                        "the image pixels the area touches and equals the whole image's map there")


def _apply_inpaint_options(cfg, a: argparse.Namespace) -> None:
    ip = cfg.inpaint
    if getattr(a, "init", None):
        ip.init = a.init
    if getattr(a, "encoder_cache", None):
        ip.cache = a.encoder_cache
    if getattr(a, "ssim_weight", None) is not None:
        ip.ssim_weight = a.ssim_weight
    if getattr(a, "encoder_lr_scale", None) is not None:
        ip.encoder_lr_scale = a.encoder_lr_scale
    if getattr(a, "decoder_transfer", None) is not None:
        ip.transfer_decoder = a.decoder_transfer == "on"
    elif getattr(a, "no_decoder_transfer", False):
        ip.transfer_decoder = False
    levels = getattr(a, "transfer_levels", None)
    if levels is not None:
        if ip.transfer_decoder and levels > 0:
            raise SemiSegError("--decoder-transfer on needs the whole pretrained encoder under it; add "
                               "--transfer-levels 0, or leave the decoder fresh.", code="bad_usage")
        ip.transfer_levels = levels
    if getattr(a, "head_warmup", None) is not None:
        ip.head_warmup = a.head_warmup
    if getattr(a, "restore_weight", None) is not None:
        ip.restore_weight = a.restore_weight
    if a.pretrain_steps is not None:
        ip.steps = a.pretrain_steps
    if a.debug_dir:
        ip.debug_dir = a.debug_dir
    ip.instructor &= not a.no_instructor
    if a.instructor_context:
        ip.instructor_context = a.instructor_context
    if a.spectral_whitening:
        ip.spectral_whitening = a.spectral_whitening == "on"


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m engine",
                                 description="SemiSeg engine: segment a raster from a few painted labels.")
    ap.add_argument("--version", action="version", version=f"SemiSeg engine {__version__}")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model from an image and sparse labels")
    _add_train_options(p)
    p.add_argument("--out", default="model.semiseg", help="model file to write")

    p = sub.add_parser("pretrain", help="inpainting pretraining without labels: image(s) -> encoder file")
    p.add_argument("--image", required=True, help="raster to learn from (any GDAL format, any band count)")
    p.add_argument("--unlabeled", nargs="*", default=[], help="more rasters (same bands) to learn from")
    p.add_argument("--out", required=True, help="encoder file to write (give it to train/run --init)")
    p.add_argument("--preset", default="balanced", choices=sorted(PRESETS))
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--seed", type=int, default=0)
    _add_nodata_option(p, "of the image and the --unlabeled rasters")
    _add_network_options(p)
    p.add_argument("--progress", default="bar", choices=["jsonl", "bar", "none"])
    _add_inpaint_options(p, fine_tune=False)

    p = sub.add_parser("predict", help="segment a raster with a trained model")
    p.add_argument("--model", required=True)
    p.add_argument("--image", required=True)
    p.add_argument("--out", required=True, help="class GeoTIFF to write")
    p.add_argument("--confidence", default=None, help="also write the max-softmax confidence GeoTIFF")
    p.add_argument("--labels", default=None,
                   help="labels on this image (raster or vector, the model's class numbers): the smoothing "
                        "holds them at their class and spreads them to alike neighbours, as run does")
    p.add_argument("--label-field", default=None, help="class field of vector labels (default: class)")
    _add_nodata_option(p, "default: those the model was trained with")
    p.add_argument("--device", default="auto")
    p.add_argument("--progress", default="bar", choices=["jsonl", "bar", "none"])
    _add_predict_options(p)

    p = sub.add_parser("run", help="train, then segment the image (the one-click path)")
    _add_train_options(p)
    p.add_argument("--out-dir", required=True,
                   help="folder for model.semiseg, prediction.tif, confidence.tif, metrics.json")
    _add_predict_options(p)
    p.add_argument("--anchor-labels", default="on", choices=["on", "off"],
                   help="the smoothing holds the labeled pixels the model trained on at their class and "
                        "spreads them to alike neighbours (label propagation; default on)")

    p = sub.add_parser("polygons", help="a class map as polygons (GeoPackage) with class names and areas")
    p.add_argument("--prediction", required=True, help="class raster written by predict or run")
    p.add_argument("--out", required=True, help="GeoPackage (.gpkg) to write")
    p.add_argument("--min-pixels", type=int, default=0, metavar="N",
                   help="minimum mapping unit: patches of fewer than N pixels first join their largest "
                        "neighbour (default 0: every patch)")
    p.add_argument("--progress", default="bar", choices=["jsonl", "bar", "none"])

    p = sub.add_parser("sample", help="random points per map class to check against reference data")
    p.add_argument("--prediction", required=True, help="class raster written by predict or run")
    p.add_argument("--out", required=True, help="GeoPackage (.gpkg) of points to write")
    p.add_argument("--per-class", type=int, default=50, metavar="N",
                   help="points per map class, the same for every class (default 50; all its pixels where "
                        "a class has fewer)")
    p.add_argument("--total", type=int, default=None, metavar="N",
                   help="N points in all instead, shared in proportion to the classes' areas with at least "
                        "--min-per-class for each (Olofsson et al. 2014); N = classes x minimum gives every "
                        "class the same")
    p.add_argument("--min-per-class", type=int, default=50, metavar="M",
                   help="with --total: the fewest points any class gets (default 50)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", default="bar", choices=["jsonl", "bar", "none"])

    p = sub.add_parser("assess", help="accuracy and class areas with 95 %% intervals from reference data")
    p.add_argument("--prediction", required=True, help="class raster written by predict or run")
    p.add_argument("--reference", required=True,
                   help="the sample with its reference classes filled in (or any points, polygons or class "
                        "raster of reference data)")
    p.add_argument("--reference-field", default="reference",
                   help="field holding the reference class, as a number or a class name (default reference)")
    p.add_argument("--labels", default=None,
                   help="the labels the map was trained on: reference units on them are counted and warned "
                        "about (the map holds them at their class)")
    p.add_argument("--label-field", default=None, help="class field of vector labels (default: class)")
    p.add_argument("--out", nargs="+", default=[], metavar="REPORT",
                   help="also write the report to these files: .json (everything), .csv (the tables)")
    p.add_argument("--progress", default="bar", choices=["jsonl", "bar", "none"])

    p = sub.add_parser("evaluate", help="score a prediction against a truth raster (JSON)")
    p.add_argument("--prediction", required=True)
    p.add_argument("--truth", required=True)
    p.add_argument("--progress", default="none", choices=["jsonl", "none"],
                   help="jsonl: the scores arrive in the `done` event instead of as printed JSON")

    p = sub.add_parser("info", help="describe a model file (JSON)")
    p.add_argument("--model", required=True)

    p = sub.add_parser("export", help="write a model as ONNX for the Deepness QGIS plugin and ONNX runtimes")
    p.add_argument("--model", required=True)
    p.add_argument("--onnx", required=True, help="ONNX file to write")
    p.add_argument("--tile-size", type=int, default=512, help="tile side Deepness uses (px; default 512)")
    p.add_argument("--resolution", type=_pixel_size, default=None,
                   help="pixel size of the imagery the model expects, in cm/px (Deepness resamples to it; "
                        "default: the training raster's, when the model records it in metres)")
    p.add_argument("--fixed-size", action="store_true",
                   help="declare a fixed 1 x bands x tile x tile input instead of dynamic axes")
    p.add_argument("--progress", default="bar", choices=["jsonl", "bar", "none"])

    sub.add_parser("devices", help="list usable devices (JSON)")
    return ap


def _check_warm_start_network(a: argparse.Namespace) -> None:
    """A warm start continues the model's own network: refuse --arch / --spectral-stem / --stem-init that
    ask for a different one, instead of ignoring them."""
    given = (("arch", a.arch), ("spectral_stem", a.spectral_stem), ("stem_init", a.stem_init))
    asked = {k: v for k, v in given if v is not None}
    if not a.warm_start or not asked:
        return
    from engine import modelfile  # noqa: PLC0415
    from engine.errors import InputError  # noqa: PLC0415

    has = modelfile.load(a.warm_start).config.model
    flags = {"arch": "--arch", "spectral_stem": "--spectral-stem", "stem_init": "--stem-init"}
    for key, value in asked.items():
        if getattr(has, key) != value:
            raise InputError(f"Model {a.warm_start} has {flags[key]} {getattr(has, key)}, and a warm start "
                             f"continues its network; drop {flags[key]} {value}, or train without "
                             "--warm-start.", "warm_start_network")


def _config(a: argparse.Namespace):
    _check_warm_start_network(a)
    steps = a.steps
    if steps is None and a.warm_start:
        steps = max(1, round(PRESETS[a.preset].steps * WARM_START_SHARE))
    cfg = make_config(a.preset, method=a.method, seed=a.seed, val_fraction=a.val_fraction,
                      steps=steps, tile_size=a.tile_size, warm_start=a.warm_start,
                      batch_size=a.batch_size, lr=a.lr, arch=a.arch,
                      spectral_stem=a.spectral_stem, stem_init=a.stem_init,
                      weight_average=a.weight_average, balance_labels=a.balance_labels or None,
                      nodata=_nodata_list(a))
    _apply_icnet_options(cfg, a)
    _apply_inpaint_options(cfg, a)
    return cfg


RUN_OUTPUTS = ("model.semiseg", "prediction.tif", "confidence.tif", "metrics.json")  # what run writes


def _inputs_and_outputs(a: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The files a command reads and those it writes (engine.io_out.check_not_inputs). ``--warm-start`` is
    left out: its model is read whole before anything is written, so a run may replace it on purpose."""
    ins = [getattr(a, k, None) for k in ("image", "labels", "model", "prediction", "reference", "init",
                                         "truth")]
    ins += list(getattr(a, "unlabeled", None) or [])
    if a.command == "run":
        outs = [os.path.join(a.out_dir, name) for name in RUN_OUTPUTS]
    elif a.command == "predict":
        outs = [a.out, a.confidence]
    elif a.command == "export":
        outs = [a.onnx]
    elif a.command == "assess":
        outs = list(a.out)
    elif a.command in ("train", "pretrain", "polygons", "sample"):
        outs = [a.out]
    else:
        outs = []
    if not getattr(a, "init", None):  # (both: refused by the pipeline as "not both")
        outs.append(getattr(a, "encoder_cache", None))  # read when it fits, else pretrained and written
    return [i for i in ins if isinstance(i, str)], outs


def _dispatch(a: argparse.Namespace, rep: Reporter, cancel) -> dict | None:
    from engine.io_out import check_not_inputs  # noqa: PLC0415

    check_not_inputs(*reversed(_inputs_and_outputs(a)))
    if a.command == "polygons":
        from engine.polygons import polygonize  # noqa: PLC0415  (GDAL's bindings, no torch)

        rep.emit("start", command=a.command, device="cpu", engine_version=__version__, pid=os.getpid())
        result = polygonize(a.prediction, a.out, a.min_pixels, rep, cancel)
        if rep.mode == "bar":
            print(f"{result['features']:,} polygons", file=sys.stderr)
        return result
    if a.command in ("sample", "assess"):
        return _accuracy(a, rep, cancel)
    from engine import modelfile, pipeline  # noqa: PLC0415  (keeps --help fast)
    from engine.areas import areas_text  # noqa: PLC0415
    from engine.runtime import choose_device  # noqa: PLC0415

    if a.command == "evaluate":
        from engine.metrics import scores_text  # noqa: PLC0415

        result = pipeline.evaluate(a.prediction, a.truth)
        if rep.mode == "jsonl":
            return result
        print(_scores_json(result))  # the scores on stdout, for scripts; for a person, a table on stderr
        names = list(result["per_class_iou"])  # class order (unless two classes share a name)
        print(scores_text(result, names), file=sys.stderr)
        return None
    if a.command == "info":
        print(json.dumps(pipeline.describe(a.model), indent=2))
        return None
    if a.command == "devices":
        from engine.runtime import list_devices  # noqa: PLC0415

        print(json.dumps(list_devices()))
        return None
    if a.command == "export":
        from engine.export import export_onnx  # noqa: PLC0415  (needs onnx; only loaded for export)

        if not a.onnx.lower().endswith(".onnx"):  # what Deepness (and every ONNX runtime's dialog) looks for
            raise OutputError(f"The export {a.onnx} must end in .onnx: Deepness opens ONNX files by that "
                              "name.", "bad_output")

        rep.emit("start", command=a.command, device="cpu", engine_version=__version__, pid=os.getpid())
        result = export_onnx(modelfile.load(a.model), a.onnx, a.tile_size, a.resolution, a.fixed_size,
                             cancel=cancel)
        rep.emit("artifact", kind="onnx", path=result["onnx"])
        return result
    device = choose_device(a.device)
    rep.emit("start", command=a.command, device=str(device), engine_version=__version__, pid=os.getpid())
    if a.command == "pretrain":
        cfg = make_config(a.preset, seed=a.seed, arch=a.arch, spectral_stem=a.spectral_stem,
                          stem_init=a.stem_init, nodata=_nodata_list(a))
        _apply_inpaint_options(cfg, a)
        metrics = pipeline.pretrain(a.image, a.out, cfg, device, rep, a.unlabeled, cancel)
        rep.emit("artifact", kind="encoder", path=os.path.abspath(a.out))
        return {"encoder": os.path.abspath(a.out), "metrics": metrics}
    if a.command == "train":
        from engine.io_out import check_writable  # noqa: PLC0415

        check_writable(a.out)
        model = pipeline.train(a.image, a.labels, _config(a), device, rep, a.label_field, a.unlabeled,
                               cancel)
        cancel.check()  # a cancel after the last step keeps the earlier model file
        modelfile.save(model, a.out)
        rep.emit("artifact", kind="model", path=os.path.abspath(a.out))
        return {"model": os.path.abspath(a.out), "metrics": model.metrics}
    if a.command == "predict":
        model = modelfile.load(a.model)
        from engine.predict import predict_file  # noqa: PLC0415

        nodata = _nodata_list(a)
        if nodata is None:  # the values the model was trained with
            nodata = list(model.config.nodata or [])
        area = pipeline.resolve_area(a.image, a.area)
        pipeline.check_fit(model, a.image, rep, nodata)
        anchors = None
        if a.labels:
            if a.smooth == "off":
                rep.warning("--labels act through the smoothing, which --smooth off turns off; they are "
                            "not used", "labels_unused")
            anchors = pipeline.prediction_anchors(a.labels, a.image, model, a.label_field)
        how = predict_file(model, a.image, a.out, a.confidence, device, rep, cancel=cancel, tta=a.tta,
                           smooth=a.smooth == "on", anchors=anchors, area=area, nodata=nodata)
        if rep.mode == "bar":
            print(f"Classes: {areas_text(how['class_areas'])}", file=sys.stderr)
        return {"prediction": os.path.abspath(a.out), "anchored_pixels": how["anchors"], "area": how["area"],
                "class_areas": how["class_areas"], "spots": how["spots"]}
    if a.command == "run":
        res = pipeline.run(a.image, a.labels, a.out_dir, _config(a), device, rep, a.label_field,
                           a.unlabeled, cancel=cancel, tta=a.tta, smooth=a.smooth == "on",
                           anchor=a.anchor_labels == "on", area=a.area)
        if rep.mode == "bar":
            print(f"Classes: {areas_text(res['metrics']['class_areas'])}", file=sys.stderr)
        return {"model": res["paths"]["model"], **res["paths"], "metrics": res["metrics"]}
    raise AssertionError(a.command)


def _scores_json(result: dict) -> str:
    """evaluate's scores as indented JSON with each row of the confusion matrix on one line (rows: truth
    classes, columns: map classes), not one number per line."""
    marker = "@@semiseg-confusion-rows@@"
    text = json.dumps({**result, "confusion": marker}, indent=2)
    rows = result.get("confusion") or []
    body = "[\n" + ",\n".join(f"    {json.dumps(r)}" for r in rows) + "\n  ]" if rows else "[]"
    return text.replace(json.dumps(marker), body, 1)


def _accuracy(a: argparse.Namespace, rep: Reporter, cancel) -> dict:
    """``sample`` and ``assess`` (engine.accuracy; GDAL and rasterio, no torch)."""
    from engine import accuracy  # noqa: PLC0415

    rep.emit("start", command=a.command, device="cpu", engine_version=__version__, pid=os.getpid())
    if a.command == "sample":
        result = accuracy.draw_sample(a.prediction, a.out, a.per_class, a.seed, rep, cancel, total=a.total,
                                      minimum=a.min_per_class)
        if rep.mode == "bar":
            print(f"{result['points']:,} points; fill in their reference class, then run assess",
                  file=sys.stderr)
        return result
    from engine.io_out import check_writable  # noqa: PLC0415

    for out in a.out:
        if not out.lower().endswith(accuracy.REPORT_SUFFIXES):
            raise SemiSegError(f"The report {out} must end in .json or .csv.", code="bad_output")
        check_writable(out)
    result = accuracy.assess(a.prediction, a.reference, a.reference_field, rep, cancel, a.labels,
                             a.label_field)
    for out in a.out:
        accuracy.write_report(out, result)
        rep.emit("artifact", kind="report", path=os.path.abspath(out))
    if rep.mode == "bar":
        print(accuracy.report_text(result), file=sys.stderr)
    return result


def _plain_negative_numbers(argv: list[str]) -> list[str]:
    """``argv`` with negative numbers in exponent form written out (-3.4028235e+38, as gdalinfo prints a
    float32 nodata value, to -340282350000000000000000000000000000000): argparse takes only plain
    negative numbers for values (``--nodata``, ``--area``), the others for unknown options."""
    import re  # noqa: PLC0415
    from decimal import Decimal  # noqa: PLC0415

    exponent = re.compile(r"-(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
    return [format(Decimal(t), "f") if exponent.fullmatch(t) else t for t in (str(a) for a in argv)]


def main(argv: list[str] | None = None) -> int:
    import warnings  # noqa: PLC0415

    from rasterio.errors import NotGeoreferencedWarning  # noqa: PLC0415

    # A raster without georeferencing is handled (or refused) with our own sentence; the library's
    # warning would only add noise to what the user reads.
    warnings.filterwarnings("ignore", category=NotGeoreferencedWarning)
    a = build_parser().parse_args(_plain_negative_numbers(sys.argv[1:] if argv is None else argv))
    rep = Reporter(getattr(a, "progress", "none"))
    from engine.runtime import CancelToken  # noqa: PLC0415

    cancel = CancelToken()
    cancel.install()
    t0 = time.monotonic()
    import rasterio  # noqa: PLC0415

    from engine.raster import gdal_cache, image_warnings_to  # noqa: PLC0415

    # a bounded GDAL block cache for every command, unless the user set one
    cache = {} if "GDAL_CACHEMAX" in os.environ else gdal_cache()
    try:
        with rasterio.Env(**cache), image_warnings_to(rep.warning):  # what an image holds: warning events
            result = _dispatch(a, rep, cancel)
    except SemiSegError as e:
        rep.emit("error", code=e.code, message=e.message)
        if rep.mode != "jsonl" or isinstance(e, Cancelled):
            print(f"Error: {e.message}" if not isinstance(e, Cancelled) else e.message, file=sys.stderr)
        else:
            print(f"Error: {e.message}", file=sys.stderr)
        return e.exit_status
    except KeyboardInterrupt:
        rep.emit("error", code="cancelled", message="Cancelled; no output was written.")
        return 130
    except MemoryError:
        msg = "Out of memory; use the fast preset, a smaller --tile-size or --batch-size, or the CPU."
        rep.emit("error", code="out_of_memory", message=msg)
        print(f"Error: {msg}", file=sys.stderr)
        return 2
    except Exception as e:  # noqa: BLE001  (the last line of defence: report, never hang)
        if (full := disk_full(e)) is not None:
            where = f" where {os.path.dirname(os.path.abspath(full.filename))} is" if full.filename else ""
            msg = (f"The disk is full{where} ({full.strerror or 'no space left on device'}); free some space "
                   "or choose an output folder on another disk.")
            rep.emit("error", code="disk_full", message=msg)
            print(f"Error: {msg}", file=sys.stderr)
            return 2
        if "out of memory" in str(e).lower():
            msg = "The GPU ran out of memory; use the fast preset, a smaller --batch-size, or --device cpu."
            rep.emit("error", code="out_of_memory", message=msg)
            print(f"Error: {msg}", file=sys.stderr)
            return 2
        traceback.print_exc(file=sys.stderr)
        rep.emit("error", code="internal", message=f"Internal error ({type(e).__name__}: {e}); please report "
                 "it with the command you ran.")
        return 1
    if result is not None:
        rep.emit("done", seconds=round(time.monotonic() - t0, 2), **result)
    return 0
