"""One dataclass per engine job: every parameter of a run, and the engine arguments it maps to.

The dock builds a job from its widgets; the task only runs ``job.engine_args()``. Output folders are
made beside the project (or the label file when the project is not saved yet), never in a temporary
folder, so the model and the rasters stay with the analyst's work.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

RUNS_FOLDER = "semiseg_runs"  # made beside the project or the label file
ENCODERS_FOLDER = "encoders"  # in RUNS_FOLDER: each image's inpainting-pretrained encoder, per preset
PRETRAINED_METHODS = ("inpaint", "inpaint+icnet")  # the engine methods that start from such an encoder


@dataclass
class TrainJob:
    """Train on painted labels, then segment the whole image (``python -m engine run``)."""

    image: str  # raster file to learn from and to segment
    labels: str  # label raster (uint8, 0 = unlabeled) or vector file
    out_dir: str  # receives model.semiseg, prediction.tif, confidence.tif, metrics.json
    label_field: str = ""  # class field of vector labels; empty for a label raster
    method: str = "supervised"
    preset: str = "fast"  # fast | balanced | best
    device: str = "auto"  # auto | cpu | cuda:N | mps
    steps: int | None = None  # None: the preset's
    tile_size: int | None = None  # None: the preset's
    val_fraction: float | None = None  # None: the engine's default
    seed: int | None = None  # None: the engine's default
    smooth: bool = True  # False: the network's own map (--smooth off), faster on a CPU
    # (xmin, ymin, xmax, ymax) in the image's CRS: segment only this part (--area; e.g. the map view);
    # None: the whole image. Training learns from the whole image either way.
    area: tuple[float, float, float, float] | None = None
    # the model of the last run on this image with this method and preset (--warm-start): training
    # continues from it for half the steps; "": from scratch
    warm_start: str = ""
    # inpaint methods: the image's encoder cache (encoder_cache_path); the first run pretrains and writes
    # it, later runs on the unchanged image fine-tune from it (minutes instead of pretraining again)
    encoder_cache: str = ""
    # the image layer's "no data values" in QGIS (ui.layer_files.layer_nodata), which the file does not hold
    nodata: tuple[float, ...] = ()

    def engine_args(self) -> list[str]:
        args = ["run", "--image", self.image, "--labels", self.labels, "--out-dir", self.out_dir,
                "--method", self.method, "--preset", self.preset, "--device", self.device,
                "--progress", "jsonl"]
        if self.label_field:
            args += ["--label-field", self.label_field]
        optional = {"--steps": self.steps, "--tile-size": self.tile_size,
                    "--val-fraction": self.val_fraction, "--seed": self.seed}
        for flag, value in optional.items():
            if value is not None:
                args += [flag, str(value)]
        if self.warm_start:
            args += ["--warm-start", self.warm_start]
        elif self.encoder_cache and self.method in PRETRAINED_METHODS:
            args += ["--encoder-cache", self.encoder_cache]
        if not self.smooth:
            args += ["--smooth", "off"]
        return args + nodata_args(list(self.nodata)) + area_args(self.area)

    @property
    def description(self) -> str:
        where = " (visible area)" if self.area else ""
        return f"SemiSeg: train and segment {Path(self.image).name}{where}"


@dataclass
class PredictJob:
    """Segment a raster with a trained model (``python -m engine predict``)."""

    model: str  # a .semiseg file
    image: str  # raster to segment (same bands as the model was trained on)
    out_dir: str  # receives prediction.tif and confidence.tif
    device: str = "auto"
    smooth: bool = True  # False: the network's own map (--smooth off), faster on a CPU
    area: tuple[float, float, float, float] | None = None  # as TrainJob.area
    nodata: tuple[float, ...] = ()  # as TrainJob.nodata (this raster's layer's)

    @property
    def prediction(self) -> str:
        return str(Path(self.out_dir) / "prediction.tif")

    @property
    def confidence(self) -> str:
        return str(Path(self.out_dir) / "confidence.tif")

    def engine_args(self) -> list[str]:
        args = ["predict", "--model", self.model, "--image", self.image, "--out", self.prediction,
                "--confidence", self.confidence, "--device", self.device, "--progress", "jsonl"]
        if not self.smooth:
            args += ["--smooth", "off"]
        return args + nodata_args(list(self.nodata)) + area_args(self.area)

    @property
    def description(self) -> str:
        where = " (visible area)" if self.area else ""
        return f"SemiSeg: segment {Path(self.image).name}{where}"


@dataclass
class PolygonsJob:
    """A class map as polygons with class names and areas (``python -m engine polygons``)."""

    prediction: str  # the class raster (a run's prediction.tif)
    out: str  # the GeoPackage to write
    min_pixels: int = 0  # minimum mapping unit: smaller patches join their largest neighbour
    image: str = ""  # the raster the map segments (its layers are replaced together)
    title: str = ""  # layer name stem, as the prediction layer's

    def engine_args(self) -> list[str]:
        return ["polygons", "--prediction", self.prediction, "--out", self.out, "--min-pixels",
                str(self.min_pixels), "--progress", "jsonl"]

    @property
    def description(self) -> str:
        return f"SemiSeg: polygons of {self.title or Path(self.prediction).parent.name}"


@dataclass
class SampleJob:
    """Random points per class of a map to check against reference data (``python -m engine sample``)."""

    prediction: str  # the class raster (a run's prediction.tif)
    out: str  # the GeoPackage of points to write
    per_class: int = 50  # points per map class; with a total, the fewest any class gets
    image: str = ""  # the raster the map segments
    title: str = ""  # layer name stem, as the prediction layer's
    total: int = 0  # points in all, shared by the classes' areas (0: per_class for every class)

    def engine_args(self) -> list[str]:
        return ["sample", "--prediction", self.prediction, "--out", self.out,
                *sample_share_args(self.per_class, self.total), "--progress", "jsonl"]

    @property
    def description(self) -> str:
        return f"SemiSeg: accuracy sample of {self.title or Path(self.prediction).parent.name}"


def sample_share_args(per_class: int, total: int) -> list[str]:
    """``engine sample``'s arguments for ``per_class`` points in every class, or (``total`` > 0) that many
    shared by the classes' areas with at least ``per_class`` each."""
    if total:
        return ["--total", str(total), "--min-per-class", str(per_class)]
    return ["--per-class", str(per_class)]


@dataclass
class AssessJob:
    """Accuracy and class areas of a map from its checked sample (``python -m engine assess``)."""

    prediction: str  # the class raster the sample was drawn from
    reference: str  # the sample (GeoPackage) with its reference field filled in
    report: str  # the JSON report to write; its tables go beside it as CSV (same name, .csv)
    field: str = "reference"
    labels: str = ""  # the labels the map was trained on (points on them are warned about); "" = unknown
    label_field: str = ""  # class field of vector labels

    @property
    def tables(self) -> str:
        return str(Path(self.report).with_suffix(".csv"))

    def engine_args(self) -> list[str]:
        args = ["assess", "--prediction", self.prediction, "--reference", self.reference, "--reference-field",
                self.field, "--out", self.report, self.tables, "--progress", "jsonl"]
        if self.labels:
            args += ["--labels", self.labels]
        if self.labels and self.label_field:
            args += ["--label-field", self.label_field]
        return args

    @property
    def description(self) -> str:
        return f"SemiSeg: accuracy of {Path(self.prediction).parent.name}"


MAP_PRODUCT_JOBS = (PolygonsJob, SampleJob, AssessJob)  # jobs on a map already made, not a new map


def free_path(folder: str | Path, stem: str, suffix: str, companions: tuple[str, ...] = ()) -> Path:
    """``<folder>/<stem><suffix>``, or ``<stem>-2<suffix>``, ``-3``... when taken (or when the same name
    with one of the ``companions`` suffixes is, for files written together): nothing is overwritten."""
    path, n = Path(folder) / f"{stem}{suffix}", 1
    while any(path.with_suffix(s).exists() for s in (suffix, *companions)):
        n += 1
        path = Path(folder) / f"{stem}-{n}{suffix}"
    return path


def nodata_args(values: list[float]) -> list[str]:
    """``--nodata`` for the engine: the layer's no-data values, or ``none``, so that a warm start or a
    model does not bring values the layer no longer has."""
    if not values:
        return ["--nodata", "none"]
    return ["--nodata", *(repr(float(v)) for v in values)]  # (the engine reads -3.4e+38 as a value)


def area_args(area: tuple[float, float, float, float] | None) -> list[str]:
    """``--area XMIN YMIN XMAX YMAX`` (exact decimal forms of the floats), or nothing for the whole image."""
    return [] if area is None else ["--area", *(repr(float(v)) for v in area)]


def new_run_folder(base: str | Path, name: str) -> Path:
    """A fresh folder ``<base>/semiseg_runs/<name>-<date>-<time>[-n]`` (created)."""
    root = Path(base) / RUNS_FOLDER
    stamp = time.strftime("%Y%m%d-%H%M%S")
    folder = root / f"{name}-{stamp}"
    n = 1
    while folder.exists():
        n += 1
        folder = root / f"{name}-{stamp}-{n}"
    folder.mkdir(parents=True)
    return folder


def encoder_cache_path(base: str | Path, image: str, preset: str) -> Path:
    """``<base>/semiseg_runs/encoders/<image>-<hash of its path>-<preset>.semienc``: one cache per image
    file and preset (the engine itself checks that a cached encoder still fits the image and settings)."""
    tag = hashlib.sha1(str(Path(image).resolve()).encode()).hexdigest()[:8]
    return Path(base) / RUNS_FOLDER / ENCODERS_FOLDER / f"{Path(image).stem}-{tag}-{preset}.semienc"
