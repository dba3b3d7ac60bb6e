"""The engine's jobs — train, predict, run, evaluate — composed from the pieces, used by the CLI."""

from __future__ import annotations

import datetime
import os
import platform
import time

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from engine import __version__, modelfile
from engine.categories import ClassTable, read_class_table, value_lut
from engine.config import ModelConfig, TrainConfig
from engine.data import Chip, TileSampler, build_chips, keep_validation, on_valid_pixels, split_labels
from engine.errors import Cancelled, InputError, OutputError
from engine.fit_check import fit_warnings, grid_facts, values_warning
from engine.io_out import check_writable, ensure_folder, partial_path, publish, write_json
from engine.labels import LabelMap, LabelPatches, load_labels
from engine.methods import method_class
from engine.metrics import confusion, scores
from engine.modelfile import SavedModel
from engine.models import SegNet
from engine.predict import predict_file
from engine.pretrain import cached_encoder, load_encoder, pretrain_chips, pretraining_key, save_cached_encoder
from engine.pretrain import pretrain as pretrain_job
from engine.progress import Reporter
from engine.raster import area_window, band_count, band_summary, compute_band_stats, open_image
from engine.runtime import NEVER_CANCELLED, CancelToken


def train(image: str, labels: str, cfg: TrainConfig, device: torch.device, reporter: Reporter,
          label_field: str | None = None, unlabeled: list[str] | None = None,
          cancel: CancelToken = NEVER_CANCELLED) -> SavedModel:
    """Train ``cfg.method`` on ``image`` with sparse ``labels`` (+ unlabeled rasters)."""
    return _train(image, labels, cfg, device, reporter, label_field, unlabeled, cancel)[0]


def _train(image, labels, cfg, device, reporter, label_field, unlabeled,
           cancel) -> tuple[SavedModel, list, LabelPatches | None]:
    """train(), plus the held-out validation pixels (see held_out) to score the delivered map with, and
    the training labels, which the prediction holds (held-out pixels are not among them, so the map's
    validation score stays honest)."""
    method_cls = method_class(cfg.method)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    with cancel.promptly():  # nothing is written until training starts: a cancel is heard at once
        # (reading a large or slow raster for its statistics, labels and training blocks takes a while)
        warm = _load_warm_start(cfg)  # the model to start from (--warm-start), or None
        if cfg.nodata is None:  # not given: a warm start keeps the no-data values its model was trained with
            cfg.nodata = list(warm.config.nodata or []) if warm is not None else []
        cache = "" if warm else _cache_path(method_cls, cfg)  # an encoder cache file (--encoder-cache), or ""
        unlabeled = distinct_unlabeled(image, unlabeled, reporter)  # each readable, before the cache key
        rasters = [image, *unlabeled]  # what an in-run pretraining learns from
        enc = _load_init(method_cls, cfg)  # a pretrained encoder file (--init), or None
        with open_image(image, cfg.nodata) as ds:
            reporter.stage("prepare", message=f"reading {os.path.basename(image)}: "
                           f"{ds.width}×{ds.height} px, {band_summary(ds)}")
            grid = grid_facts(ds)  # kept in the model, to warn when it is applied to imagery at another scale
            bands = band_count(ds)
            cfg.model.set_bands(bands)
            if cache:
                key = pretraining_key(rasters, cfg)
                enc = cached_encoder(cache, key, reporter)
            if enc is not None and enc.bands != bands:
                raise InputError(f"Encoder {cfg.inpaint.init} was pretrained on {enc.bands} band(s) but "
                                 f"{image} has {band_summary(ds)}; pretrain on this image (python -m engine "
                                 "pretrain).", "band_mismatch")
            if warm is not None and warm.bands != bands:
                raise InputError(f"Model {cfg.warm_start} was trained on {warm.bands} band(s) but {image} "
                                 f"has {band_summary(ds)}; warm-start from a model of this image, or train "
                                 "without --warm-start.", "band_mismatch")
            # fine-tuning normalises with the statistics the encoder was pretrained with; a warm start with
            # those its weights were trained with
            stats = compute_band_stats(ds, image, seed=cfg.seed)
            start = warm if warm is not None else enc
            if start is not None:  # its weights expect its own normalisation: say when this image is unlike
                what, flag = (("the model to continue from was trained on", "--warm-start")
                              if warm is not None else ("the encoder was pretrained on", "--init"))
                unlike = values_warning(start.band_stats, stats, image, what,
                                        f"{flag} a file made from this image or imagery like it")
                if unlike:
                    reporter.warning(unlike, "values_differ")
                stats = start.band_stats
            lab = load_labels(labels, ds, label_field)
            for note in lab.notes:
                reporter.warning(note, "labels_note")
            painted, off_image = lab.counts(), lab.off_image
            # nodata teaches nothing
            lab = LabelMap(on_valid_pixels(lab.patches, ds), lab.shape, lab.classes)
            if lab.patches is None:
                raise InputError(f"Every labeled pixel of {labels} lies on nodata in {image}; paint labels "
                                 "on valid image pixels.", "labels_on_nodata")
            counts = lab.counts()
            _warn_unlabeled_classes(lab.classes.names, painted, counts, reporter, off_image)
            _warn_labels_on_nodata(lab.classes.names, painted, counts, reporter)
            _warn_background_code(lab.classes, painted, reporter)
            if np.count_nonzero(counts) < 2:
                raise InputError(f"Labels {labels} keep only one class on valid image pixels; paint at least "
                                 "two classes.", "labels_single_class")
            if warm is not None:  # validate on what the model to continue from held out: it never saw them
                train_lab, val_lab = keep_validation(lab.patches, renumbered(warm.validation, warm.classes,
                                                                             lab.classes))
                if train_lab is None:
                    raise InputError(f"Labels {labels} hold only the strokes the model {cfg.warm_start} is "
                                     "validated on; paint more strokes, or train without --warm-start.",
                                     "warm_start_no_training")
                if val_lab is None:
                    reporter.warning("the model to continue from held no painted stroke out (or none is "
                                     "left), so no validation score is reported; train from scratch for one",
                                     "no_validation")
            else:
                split: dict = {}
                train_lab, val_lab = split_labels(lab.patches, cfg.val_fraction, cfg.seed, report=split)
                if cfg.val_fraction > 0 and val_lab is None:
                    reporter.warning("too few separate strokes to hold any out for validation; the model is "
                                     "kept at the last step and no validation score is reported",
                                     "no_validation")
                elif val_lab is not None:
                    _warn_validation_split(lab.classes.names, split, reporter)
            cfg.model.set_bands(bands)
            cfg.model.num_classes = lab.num_classes
            chips = build_chips(ds, stats, train_lab, val_lab, cfg.memory_budget_mb, cfg.seed)
        if not any(c.class_pixels for c in chips):
            raise InputError(f"Every labeled pixel of {labels} lies on nodata in {image}; paint labels on "
                             "valid image pixels.", "labels_on_nodata")
        present = {c for ch in chips for c in ch.class_pixels}
        if len(present) < 2:
            raise InputError(f"Labels {labels} keep only one class on valid image pixels; paint at least two "
                             "classes.", "labels_single_class")
        for extra in unlabeled:
            with open_image(extra, cfg.nodata, "Unlabeled image") as ds:
                if band_count(ds) != cfg.model.in_channels:
                    raise InputError(f"Unlabeled image {extra} has {band_summary(ds)} but {image} has "
                                     f"{cfg.model.in_channels}; give rasters with the same bands.",
                                     "band_mismatch")
                chips += build_chips(ds, stats, None, None, cfg.memory_budget_mb // 2, cfg.seed)
        sampler = TileSampler(chips, cfg.tile_size, cfg.seed)
        from engine.training import TrainData, fit  # noqa: PLC0415

        data = TrainData(chips, sampler, lab.num_classes, cfg.model.in_channels, lab.classes.names)
    pretrain_seconds = None
    if warm is None and enc is None and hasattr(method_cls, "initialise"):  # stage 1 within the run
        t0 = time.monotonic()
        enc = pretrain_chips(chips, stats, cfg, device, reporter, cancel)
        pretrain_seconds = round(time.monotonic() - t0, 2)
        if cache:  # kept at once: a later run reuses it even if this one is cancelled while fine-tuning
            save_cached_encoder(enc, cache, key, rasters, device)
            reporter.emit("artifact", kind="encoder", path=cache)
    method = method_cls(cfg, data, device)
    if warm is not None:
        members = warm.members
        if (warm.classes.names, warm.classes.codes) != (lab.classes.names, lab.classes.codes):
            # a class added, removed or renamed (or its value changed): a new classifier
            members = [{k: v for k, v in m.items() if not k.startswith(SegNet.CLASSIFIER)} for m in members]
            reporter.warning(f"the model to start from knew the classes {', '.join(warm.classes.names)} "
                             f"and the labels have {', '.join(lab.classes.names)}, so its classifier starts "
                             "afresh", "warm_start_classes")
        fresh = method.warm_start(members)
        if any(not k.startswith(SegNet.CLASSIFIER) for k in fresh):  # same network: all else must fit
            raise AssertionError(f"warm start left {fresh} fresh")
        reporter.stage("warm-start", message=f"starting from {os.path.basename(cfg.warm_start)}, "
                       f"{cfg.steps} steps")
    elif enc is not None:
        method.initialise(enc)
    try:
        members, metrics = fit(method, reporter, cancel)
    except Cancelled as e:
        if cache and pretrain_seconds is not None:  # this run wrote it, on purpose: say so
            raise Cancelled(f"Cancelled; no model or map was written, and the encoder pretrained on the "
                            f"image is kept in {cache}, so the next run starts from it.") from e
        raise
    if enc is not None:
        from_file = cfg.inpaint.init or (cache if pretrain_seconds is None else "")
        metrics["pretrain"] = {**enc.metrics, "seconds": pretrain_seconds,
                               "from_file": os.path.basename(from_file) or None}
    if warm is not None:
        metrics["warm_start"] = {"model": os.path.basename(cfg.warm_start),
                                 "created": warm.provenance.get("created")}
    metrics["labeled_pixels"] = {n: int(c) for n, c in zip(lab.classes.names, counts, strict=False)}
    provenance = {"image": os.path.basename(image), "labels": os.path.basename(labels),
                  "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                  "engine_version": __version__, "torch": str(torch.__version__), "device": str(device),
                  "python": platform.python_version(), "grid": grid}
    model = SavedModel(cfg, lab.classes, stats, members, metrics, provenance, val_lab)
    return model, held_out(data.val_chips), train_lab  # held when predicting (nodata pixels ignored there)


def _warn_unlabeled_classes(names: list[str], painted, usable, reporter: Reporter,
                            off_image: tuple[int, ...] = ()) -> None:
    """Say which classes the map cannot show: none of their pixels painted, all on nodata, or (a label
    raster on another grid) all off the image; one warning per class, or one for all when there are many
    (a label raster with a background value other than 0 makes every value up to it a class)."""
    empty = [(v, name, int(p)) for v, (name, p, u) in enumerate(zip(names, painted, usable, strict=True), 1)
             if u == 0]
    if len(empty) > 5:
        shown = ", ".join(f"'{n}'" for _, n, _ in empty[:5])
        hint = _background_hint(list(range(1, len(names) + 1)), names, painted)
        reporter.warning(f"{len(empty)} classes have no usable labeled pixel ({shown}, …), so the map will "
                         f"not show them{'; ' + hint if hint else ''}", "class_without_labels")
        return
    for value, name, p in empty:
        why = "has no labeled pixel" if p == 0 else f"has its {p} labeled pixels all on nodata in the image"
        if p == 0 and value in off_image:
            why = "has its labeled pixels all outside the image (the label raster only partly covers it)"
        reporter.warning(f"class '{name}' {why}, so the map will not show it; paint some on the image to "
                         "map it", "class_without_labels")


def _warn_labels_on_nodata(names: list[str], painted, usable, reporter: Reporter, share: float = 0.1) -> None:
    """Say which classes lose a good part (``share`` or more) of their painted pixels to the image's nodata
    (a masked collar, a missing tile of a mosaic): those pixels teach nothing, so the class is learnt from
    less than was painted. Classes that lose all of them are _warn_unlabeled_classes' to say."""
    lost = [(name, int(p) - int(u), int(p)) for name, p, u in zip(names, painted, usable, strict=True)
            if u > 0 and p - u >= max(share * p, 1)]
    if not lost:
        return
    parts = [f"{left} of the {p} of '{name}' ({100 * left / p:.0f} %)" for name, left, p in lost]
    reporter.warning(f"labeled pixels on nodata in the image teach nothing: {'; '.join(parts[:5])}"
                     f"{'; …' if len(parts) > 5 else ''}; paint them again on valid pixels if those "
                     "classes are short of labels", "labels_partly_on_nodata")


def _warn_validation_split(names: list[str], split: dict, reporter: Reporter) -> None:
    """Say when the validation score is less independent than whole held-out strokes make it: classes
    with fewer than 3 separate strokes are validated on pieces of the strokes they also train on (the
    map is right next to its training pixels more often than far from them, the more so as the
    smoothing holds them), and a class with a single piece is not validated at all."""
    def quoted(values: list[int]) -> str:
        return ", ".join(f"'{names[v - 1]}'" for v in values) + (" has" if len(values) == 1 else " have")

    if split.get("pieces"):
        reporter.warning(f"{quoted(split['pieces'])} fewer than 3 separate strokes, so validation uses "
                         "pieces of strokes that also train: the validation score says how the map does "
                         "next to your labels and reads higher than it would far from them; paint 3 or more "
                         "separate strokes per class, apart, for a score that says more", "validation_nearby")
    if split.get("unvalidated"):
        reporter.warning(f"{quoted(split['unvalidated'])} too few labeled pixels to hold any out, so the "
                         "validation score does not cover it", "class_not_validated")


def _background_hint(values: list[int], names: list[str], painted) -> str:
    """When one class holds most labeled pixels, the sentence that says its value may be the file's
    background (exported with 255 or 99 for "nothing", and no nodata value); else ""."""
    top, total = int(np.argmax(painted)), int(np.sum(painted))
    if total == 0 or painted[top] <= 0.5 * total:
        return ""
    return (f"class {values[top]} ('{names[top]}') holds {int(painted[top])} of the {total} labeled pixels: "
            "if that value is the raster's background, make it 0 or the file's nodata")


def _warn_background_code(classes: ClassTable, painted, reporter: Reporter) -> None:
    """Coded labels (1, 2, 3 and 255) where one code holds most labeled pixels (_background_hint)."""
    if classes.values is not None and (hint := _background_hint(classes.values, classes.names, painted)):
        reporter.warning(hint, "labels_background")


def distinct_unlabeled(image: str, unlabeled: list[str] | None, reporter: Reporter) -> list[str]:
    """``unlabeled`` (each checked readable) without the training image and without repeats, each left
    out with a warning: the training image's tiles are sampled as unlabeled ones already, and a raster
    named twice would be sampled twice as often as the others."""
    kept: list[str] = []
    for path in unlabeled or []:
        open_image(path, what="Unlabeled image").close()
        same = next((p for p in [image, *kept] if _same_file(p, path)), None)
        if same is None:
            kept.append(path)
            continue
        what = "the training image" if same == image else f"named twice (as {same})"
        reporter.warning(f"Unlabeled image {path} is {what}; it is used once.", "unlabeled_repeated")
    return kept


def _same_file(a: str, b: str) -> bool:
    """Whether two raster paths name one file (GDAL's virtual paths, which are no files: the same path)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def prediction_anchors(labels: str, image: str, model: SavedModel,
                       label_field: str | None = None) -> LabelPatches:
    """``labels`` (raster or vector, the model's class numbers) on ``image``'s grid, to hold at their class
    when predicting it; refused when they name a class the model does not have."""
    with open_image(image) as ds:
        lab = load_labels(labels, ds, label_field, min_classes=1, class_names=model.classes.names,
                          model_classes=model.classes)
    k = model.classes.num_classes
    if lab.max_class > k:
        raise InputError(f"Labels {labels} hold class {lab.max_class} but the model knows classes "
                         f"1..{k}; give labels numbered like the model's training labels.",
                         "labels_unknown_class")
    return lab.patches


def renumbered(patches: LabelPatches | None, old: ClassTable, new: ClassTable) -> LabelPatches | None:
    """Labels numbered as the classes of ``old`` numbered as those of ``new``, through their file values
    (a class whose value ``new`` lacks is dropped): labels coded with gaps are numbered by the values a
    file holds, which may change from one run to the next."""
    if patches is None or old.codes == new.codes:
        return patches
    lut = np.zeros(256, np.uint8)
    lut[1:old.num_classes + 1] = value_lut(new.codes)[old.codes]  # old class -> its value -> new class
    return patches.recoded(lut)


def held_out(chips: list[Chip]) -> list[tuple[int, int, np.ndarray]]:
    """(row, col, labels) of each chip's validation pixels, cropped to their bounding box: small (labels
    are sparse) where the chips themselves are not, so they outlive training without holding its memory."""
    out = []
    for c in chips:
        rows, cols = np.flatnonzero(c.val.any(1)), np.flatnonzero(c.val.any(0))
        if len(rows):
            out.append((c.row + int(rows[0]), c.col + int(cols[0]),
                        c.val[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()))
    return out


def score_map(prediction: str, held: list[tuple[int, int, np.ndarray]], num_classes: int,
              names: list[str], origin: tuple[int, int] = (0, 0),
              from_values: np.ndarray | None = None) -> dict:
    """Scores of a written class raster on held-out validation pixels: the map as the analyst gets it
    (all its views, smoothing), where the training-time validation scores the network's own one-view map.
    ``origin``: the image row and column of the map's top-left pixel (a map of an area); held-out pixels
    outside the map are not scored (``pixels`` counts those that are). ``from_values``: the look-up table
    from the map's values to the classes (ClassTable.from_values), for a model of coded classes."""
    cm = np.zeros((num_classes, num_classes), np.int64)
    with rasterio.open(prediction) as ds:
        for row, col, val in held:
            win = Window(col - origin[1], row - origin[0], val.shape[1], val.shape[0])
            pred = ds.read(1, window=win, boundless=True, fill_value=0)  # 0 (outside) is never scored
            if from_values is not None:
                pred = from_values[pred]
            cm += confusion(val, pred, num_classes)
    return scores(cm, names)


def check_fit(model: SavedModel, image: str, reporter: Reporter, nodata=()) -> list[str]:
    """Warn (events, not errors) when ``image`` (``nodata``: open_image's) differs from the model's
    training raster in pixel size or band values (engine.fit_check); returns the warning codes."""
    with open_image(image, nodata) as ds:
        found = fit_warnings(model, ds, image)
    for code, message in found:
        reporter.warning(message, code)
    return [code for code, _ in found]


def resolve_area(image: str, bounds) -> tuple[int, int, int, int] | None:
    """The (row, col, height, width) window of ``image`` that ``--area`` ``bounds`` ask to segment (None:
    the whole image), checked before any work starts."""
    if bounds is None:
        return None
    with open_image(image) as ds:
        return area_window(bounds, ds, image)


def _load_warm_start(cfg: TrainConfig) -> SavedModel | None:
    """The model named by ``cfg.warm_start`` (its network adopted), or None; refused with a sentence when
    it was trained with another method or cannot start this run."""
    if not cfg.warm_start:
        return None
    if cfg.inpaint.init:
        raise InputError("Give either --warm-start (a model to continue from) or --init (a pretrained "
                         "encoder), not both.", "bad_usage")
    model = modelfile.load(cfg.warm_start)
    if model.config.method != cfg.method:
        raise InputError(f"Model {cfg.warm_start} was trained with the {model.config.method} method; "
                         f"warm-start it with --method {model.config.method}, or train without "
                         "--warm-start.", "warm_start_method")
    cfg.model = ModelConfig.from_dict(model.config.model.to_dict())  # bands and classes set later
    return model


def _load_init(method_cls, cfg: TrainConfig):
    """The encoder file named by ``cfg.inpaint.init`` (its architecture adopted), or None."""
    if not cfg.inpaint.init:
        return None
    if not hasattr(method_cls, "initialise"):
        raise InputError(f"--init needs a method that starts from a pretrained encoder (inpaint, "
                         f"inpaint+icnet), not '{cfg.method}'.", "init_unsupported")
    enc = load_encoder(cfg.inpaint.init)
    cfg.model.arch, cfg.model.widths = enc.model.arch, tuple(enc.model.widths)
    return enc


def _cache_path(method_cls, cfg: TrainConfig) -> str:
    """The encoder cache file (``--encoder-cache``) when this run may use one, else ""; checked early."""
    cache = cfg.inpaint.cache
    if not cache:
        return ""
    if not hasattr(method_cls, "initialise"):
        raise InputError(f"--encoder-cache needs a method that starts from a pretrained encoder (inpaint, "
                         f"inpaint+icnet), not '{cfg.method}'.", "init_unsupported")
    if cfg.inpaint.init:
        raise InputError("Give either --init (a pretrained encoder to start from) or --encoder-cache, not "
                         "both.", "bad_usage")
    try:
        check_writable(cache)
    except OutputError as e:
        raise OutputError(f"The encoder cache {cache} cannot be written (its folder is not writable, or "
                          "it is a folder); give --encoder-cache a file path in a folder you can write to.",
                          e.code) from e
    return cache


def pretrain(image: str, out: str, cfg: TrainConfig, device: torch.device, reporter: Reporter,
             unlabeled: list[str] | None = None, cancel: CancelToken = NEVER_CANCELLED) -> dict:
    """Inpainting pretraining on ``image`` (+ ``unlabeled``) without labels; writes the encoder file."""
    check_writable(out)
    t0 = time.monotonic()
    unlabeled = distinct_unlabeled(image, unlabeled, reporter)
    metrics = pretrain_job(image, out, cfg, device, reporter, unlabeled, cancel)
    metrics["seconds"] = round(time.monotonic() - t0, 2)
    return metrics


def run(image: str, labels: str, out_dir: str, cfg: TrainConfig, device: torch.device,
        reporter: Reporter, label_field: str | None = None, unlabeled: list[str] | None = None,
        confidence: bool = True, cancel: CancelToken = NEVER_CANCELLED, tta: str = "auto",
        smooth: bool = True, anchor: bool = True, area=None) -> dict:
    """Train, save the model, predict the image: the one-click path (``tta``, ``smooth``: predict_file's;
    ``anchor``: the smoothing holds the training labels at their class and spreads them; ``area``: bounds
    (xmin, ymin, xmax, ymax, image CRS) of the part to segment; training still learns from everything)."""
    t0 = time.monotonic()
    window = resolve_area(image, area)
    made = not os.path.isdir(out_dir)
    ensure_folder(out_dir)
    try:
        return _run(image, labels, out_dir, cfg, device, reporter, label_field, unlabeled, confidence,
                    cancel, tta, smooth, anchor, area, window, t0)
    except BaseException:
        if made and os.path.isdir(out_dir) and not os.listdir(out_dir):  # the folder it made, left empty
            os.rmdir(out_dir)
        raise


def _run(image, labels, out_dir, cfg, device, reporter, label_field, unlabeled, confidence, cancel, tta,
         smooth, anchor, area, window, t0) -> dict:
    """run() in its output folder."""
    paths = {"model": os.path.join(out_dir, "model.semiseg"),
             "prediction": os.path.join(out_dir, "prediction.tif"),
             "confidence": os.path.join(out_dir, "confidence.tif") if confidence else None,
             "metrics": os.path.join(out_dir, "metrics.json")}
    for p in paths.values():
        if p:
            check_writable(p)
    model, held, anchors = _train(image, labels, cfg, device, reporter, label_field, unlabeled, cancel)
    cancel.check()
    # under a partial name until its map is made: a model is never left beside another run's map
    part = partial_path(paths["model"])
    modelfile.save(model, part)
    t_pred = time.monotonic()
    try:
        how = predict_file(model, image, paths["prediction"], paths["confidence"], device, reporter,
                           cancel=cancel, tta=tta, smooth=smooth, anchors=anchors if anchor else None,
                           area=window, nodata=cfg.nodata)
    except Cancelled as e:
        if os.path.exists(paths["prediction"]):  # an earlier run's map: its folder stays as it was
            os.remove(part)
            raise Cancelled(f"Cancelled while predicting; no output was written, and the earlier files in "
                            f"{out_dir} are as they were.") from e
        publish(part, paths["model"])  # the trained model is complete and kept: say so, not "no output"
        reporter.emit("artifact", kind="model", path=os.path.abspath(paths["model"]))
        raise Cancelled(f"Cancelled while predicting; the trained model is kept in {paths['model']} "
                        "(python -m engine predict makes its map), and no map was written.") from e
    except BaseException:
        os.remove(part)
        raise
    publish(part, paths["model"])
    reporter.emit("artifact", kind="model", path=os.path.abspath(paths["model"]))
    metrics = dict(model.metrics)
    metrics["predict_views"], metrics["predict_smoothing"] = how["views"], how["smoothing"]
    metrics["predict_anchored_pixels"] = how["anchors"]
    metrics["class_areas"] = how["class_areas"]
    metrics["spots"] = how["spots"]
    if window is not None:
        metrics["predict_area"] = {"bounds": [float(v) for v in area], "row": window[0], "col": window[1],
                                   "height": window[2], "width": window[3]}
    if held:  # map_val_*: the delivered map on the held-out pixels; val_*: the network during training
        s = score_map(paths["prediction"], held, model.classes.num_classes, model.classes.names,
                      window[:2] if window else (0, 0), model.classes.from_values())
        if s["pixels"]:
            metrics.update({f"map_val_{k}": v for k, v in s.items()})
        else:
            reporter.warning("no held-out stroke lies in the segmented area, so the map is not scored; "
                             "val_* scores the network on all of them", "area_unscored")
    metrics["predict_seconds"] = round(time.monotonic() - t_pred, 2)
    metrics["total_seconds"] = round(time.monotonic() - t0, 2)
    write_json(paths["metrics"], metrics)
    reporter.emit("artifact", kind="metrics", path=os.path.abspath(paths["metrics"]))
    return {"paths": {k: (os.path.abspath(v) if v else None) for k, v in paths.items()}, "metrics": metrics}


def evaluate(prediction: str, truth: str) -> dict:
    """Compare a class raster with a truth raster (0 in truth = not evaluated)."""
    with open_image(prediction, what="Prediction") as ds:
        if ds.count != 1:
            raise InputError(f"Prediction {prediction} has {ds.count} bands; give a single-band class "
                             "raster.", "prediction_bands")
        pred = ds.read(1)
        from engine.labels import _from_raster, coded  # noqa: PLC0415
        from engine.vector import is_vector_source  # noqa: PLC0415

        if is_vector_source(truth):
            raise InputError(f"Truth {truth} is a vector file; evaluate takes a class raster on the "
                             "prediction's grid: rasterize it, or score points and polygons with assess "
                             "--reference.", "truth_vector")
        truth_map = _from_raster(truth, ds, "Truth", "the prediction")
    k = int(max(pred.max(), truth_map.max_class, truth_map.num_classes))
    names = read_class_table(prediction, k).names
    if truth_map.patches is None:
        raise InputError(f"Truth {truth} has no labeled pixel over the prediction; give a truth raster "
                         "that overlaps it.", "truth_empty")
    full = truth_map.full()
    values = sorted(set(np.flatnonzero(np.bincount(pred.ravel(), minlength=256)[1:]) + 1)
                    | set(np.flatnonzero(truth_map.histogram()[1:]) + 1))
    if coded(values):  # class codes (10, 20, 30): scored as those classes, not every value up to the largest
        lut = value_lut(values)
        result = scores(confusion(lut[full], lut[pred], len(values)), [names[v - 1] for v in values])
        return {**result, "class_values": [int(v) for v in values]}  # the map's value of each row
    return scores(confusion(full, pred, k), names)


def describe(model_path: str) -> dict:
    m = modelfile.load(model_path)
    return m.info()


def raster_grid(path: str) -> dict:
    with rasterio.open(path) as ds:
        return {"crs": ds.crs.to_string() if ds.crs else None, "transform": list(ds.transform)[:6],
                "width": ds.width, "height": ds.height}
