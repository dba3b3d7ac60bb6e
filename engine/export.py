"""``export``: a ``.semiseg`` model as one ONNX file for the Deepness QGIS plugin and any ONNX runtime.

What the ONNX graph expects and returns — the contract Deepness users and scripts rely on:

- **input** ``image``: float32 ``(N, C, S, S)``, the image's C bands in the order the model was trained on,
  each value being the **raw pixel value divided by 255** — exactly what Deepness feeds a model: it reads
  the raster's band values, divides them by 255 and then standardises with the model's
  ``standardization_mean``/``standardization_std`` metadata, which this export sets to 0 and 1 so that
  Deepness leaves the values alone. ``N`` and ``S`` are dynamic (``--fixed-size``: 1 and the tile
  size); ``S`` must be a multiple of the network stride (the ``semiseg_stride`` metadata key: 8 or 16
  for U-Nets, 32 for ResNet encoders). H and W share one symbolic name (``tile``) because Deepness only
  accepts square tiles and checks it; onnxruntime also runs rectangles (both sides multiples of it).
- **inside**: SemiSeg's own band normalisation (``BandStats``: ``(raw - low) / (high - low)`` clipped to
  [-1, 2]) is baked into the graph as a per-band affine map and a clip — Deepness's mean/std
  standardisation cannot express the clip, and baking it in keeps Deepness at its defaults.
- **output** ``probabilities``: float32 ``(N, K, S, S)`` softmax probabilities, the mean over the
  model's ensemble members (as ``engine.predict.ensemble_probs``). Channel ``k`` is SemiSeg class
  ``k + 1``; ``argmax`` over channels gives the class map.
- **not in the graph**: nodata. SemiSeg masks nodata pixels out; Deepness does not pass a mask, so
  pixels at nodata get some class. Tile context: SemiSeg predicts with a halo of at least 64 px; the
  ``tiles_overlap`` metadata asks Deepness for the same margin on its default 512 px tiles.

Metadata (``metadata_props``, every value JSON-encoded as Deepness decodes it with ``json.loads``):
``model_type`` "Segmentor", ``class_names`` {"0": name of class 1, ...}, ``tile_size`` (and the
documented spelling ``tiles_size``), ``tiles_overlap`` (percent), ``seg_thresh`` 0.0 (plain argmax),
``seg_small_segment`` 0 (no clean-up), ``standardization_mean``/``standardization_std`` (0 and 1 per
band), ``resolution`` (cm/px: given, or the training raster's pixel size when the model records it in
metres) and SemiSeg's own ``semiseg_*`` keys (classes' colours, bands, method, stride, engine version,
input description).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import warnings

import numpy as np
import torch
from torch import nn

from engine import __version__
from engine.errors import InputError, SemiSegError
from engine.io_out import check_writable, partial_path, publish
from engine.modelfile import SavedModel
from engine.predict import pick_halo
from engine.raster import BandStats
from engine.runtime import NEVER_CANCELLED, CancelToken

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
TILE_DIM = "tile"  # one symbolic name for H and W: Deepness requires square tiles
DEEPNESS_INPUT_SCALE = 255.0  # Deepness divides raw band values by this before the model sees them
DEFAULT_TILE_SIZE = 512
OPSET = 17  # onnxruntime >= 1.12, the range the Deepness plugin installs


class DeepnessGraph(nn.Module):
    """raw / 255 → SemiSeg band normalisation → every ensemble member → mean softmax."""

    def __init__(self, nets: list[nn.Module], stats: BandStats, input_scale: float = DEEPNESS_INPUT_SCALE):
        super().__init__()
        self.nets = nn.ModuleList(nets)
        scale = np.maximum(stats.high - stats.low, 1e-6).astype(np.float32)
        # (raw - low) / scale with raw = x * input_scale, folded into one multiply-add per band
        gain = (input_scale / scale).astype(np.float32)
        offset = (-stats.low / scale).astype(np.float32)
        self.register_buffer("gain", torch.from_numpy(gain).view(1, -1, 1, 1))
        self.register_buffer("offset", torch.from_numpy(offset).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(x * self.gain + self.offset, -1.0, 2.0)
        p = torch.softmax(self.nets[0](y), dim=1)
        for net in self.nets[1:]:
            p = p + torch.softmax(net(y), dim=1)
        return p / len(self.nets)


def deepness_metadata(model: SavedModel, stride: int, tile_size: int = DEFAULT_TILE_SIZE,
                      resolution_cm: float | None = None) -> dict[str, str]:
    """The ``metadata_props`` of the exported model, each value JSON-encoded."""
    halo = pick_halo(stride)
    overlap_pct = min(50, math.ceil(100 * 2 * halo / tile_size))
    meta = {
        "model_type": "Segmentor",
        "class_names": {i: name for i, name in enumerate(model.classes.names)},
        "tile_size": tile_size,
        "tiles_size": tile_size,  # the spelling in Deepness's metadata table; its code reads tile_size
        "tiles_overlap": overlap_pct,
        "seg_thresh": 0.0,
        "seg_small_segment": 0,
        "standardization_mean": [0.0] * model.bands,
        "standardization_std": [1.0] * model.bands,
        "semiseg_engine_version": __version__,
        "semiseg_method": model.config.method,
        "semiseg_bands": model.bands,
        "semiseg_stride": stride,
        "semiseg_class_colours": [list(c) for c in model.classes.colours],
        "semiseg_input": "float32 (N, bands, S, S): raw band values / 255; S a multiple of semiseg_stride",
        "semiseg_output": "float32 (N, classes, S, S): softmax probabilities; channel k is class k + 1, "
                          "whose value in label and map rasters is semiseg_class_values[k]",
        "semiseg_class_values": model.classes.codes,  # each class's value in the label and map rasters
    }
    if resolution_cm is not None:
        meta["resolution"] = float(resolution_cm)
    return {k: json.dumps(v) for k, v in meta.items()}


def _check_tile_size(tile_size: int, stride: int) -> None:
    if tile_size < stride or tile_size % stride:
        raise InputError(f"Tile size {tile_size} is not a multiple of the network stride {stride}; use for "
                         f"example {max(stride, tile_size // stride * stride)}.", "bad_tile_size")


def _onnx_modules():
    try:
        import onnx  # noqa: PLC0415
        import onnxscript  # noqa: F401, PLC0415  (the torch.export-based exporter needs it)
    except ImportError as e:
        raise SemiSegError("ONNX export needs the onnx and onnxscript packages; install them with "
                           "`pip install -r requirements.txt` (or `make setup`).",
                           "missing_dependency") from e
    return onnx


def training_resolution_cm(model: SavedModel) -> float | None:
    """The training raster's pixel size in cm (the mean of its two sides), when the model file records
    it in metres (models trained since it does, on a projected CRS); else None."""
    grid = model.provenance.get("grid") or {}
    if grid.get("units") != "metre" or not grid.get("pixel_size"):
        return None
    return round(100.0 * sum(grid["pixel_size"]) / len(grid["pixel_size"]), 6)


def export_onnx(model: SavedModel, out_path: str, tile_size: int = DEFAULT_TILE_SIZE,
                resolution_cm: float | None = None, fixed_size: bool = False, opset: int = OPSET,
                cancel: CancelToken = NEVER_CANCELLED) -> dict:
    """Write ``model`` as an ONNX file at ``out_path``; return its input and output shapes.

    ``fixed_size`` declares a 1 × bands × tile_size × tile_size input instead of dynamic axes, for
    consumers (older Deepness releases among them) that read the tile size from a fixed input shape.
    """
    onnx = _onnx_modules()
    check_writable(out_path)
    if resolution_cm is None:
        resolution_cm = training_resolution_cm(model)
    nets = model.networks(torch.device("cpu"), channels_last=False)  # the exporter traces NCHW
    stride = int(nets[0].stride)
    _check_tile_size(tile_size, stride)
    graph = DeepnessGraph(nets, model.band_stats).eval()
    example = torch.zeros(1, model.bands, 4 * stride, 4 * stride)
    # H and W get independent symbols so the graph stays general (rectangles run in onnxruntime too);
    # only the names on the graph's input and output are merged into one, for Deepness (see below).
    rows = torch.export.Dim("row_blocks", min=1, max=65536 // stride)
    cols = torch.export.Dim("col_blocks", min=1, max=65536 // stride)
    dynamic = {"x": {0: torch.export.Dim("batch", min=1, max=1024), 2: stride * rows, 3: stride * cols}}
    part = partial_path(out_path)
    try:
        with warnings.catch_warnings(), _quiet_exporter_logs():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(graph, (example,), dynamo=True, dynamic_shapes=dynamic,
                                        input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                                        opset_version=opset, external_data=False, verbose=False)
        proto = program.model_proto
        batch, side = declare_io_shape(proto, tile_size if fixed_size else None)
        del proto.metadata_props[:]
        for key, value in deepness_metadata(model, stride, tile_size, resolution_cm).items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        proto.producer_name, proto.producer_version = "SemiSeg", __version__
        onnx.checker.check_model(proto)
        onnx.save(proto, part)
        cancel.check()  # (the exporter itself cannot be interrupted) an earlier file stays as it was
        publish(part, out_path)
    finally:
        if os.path.exists(part):
            os.remove(part)
    return {"onnx": os.path.abspath(out_path),
            "input": [INPUT_NAME, batch, model.bands, side, side],
            "output": [OUTPUT_NAME, batch, model.classes.num_classes, side, side],
            "stride": stride, "opset": opset}


@contextlib.contextmanager
def _quiet_exporter_logs():
    """The exporter logs its opset down-conversion as warnings; the CLI's own events say what matters."""
    logs = [logging.getLogger(name) for name in ("torch.onnx", "onnxscript")]
    levels = [log.level for log in logs]
    for log in logs:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in zip(logs, levels, strict=True):
            log.setLevel(level)


def declare_io_shape(proto, fixed_side: int | None = None) -> tuple[int | str, int | str]:
    """Declare the batch, height and width axes of the graph's input and output; return (batch, side).

    Dynamic (the default): named ``batch`` and ``tile``. torch.export names them after its symbols
    (``s0``, ``8*s1``...), but Deepness refuses outputs whose last two axes differ, so H and W get one
    name. Fixed: batch 1 and ``fixed_side`` px. Either way the graph itself stays size-independent;
    intermediate shape annotations carry the exporter's symbols, so they are dropped (runtimes re-infer
    them).
    """
    batch, side = ("batch", TILE_DIM) if fixed_side is None else (1, int(fixed_side))
    for value in list(proto.graph.input) + list(proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        for i, size in ((0, batch), (2, side), (3, side)):
            dims[i].Clear()
            if isinstance(size, str):
                dims[i].dim_param = size
            else:
                dims[i].dim_value = size
    del proto.graph.value_info[:]
    return batch, side
