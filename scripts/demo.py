"""SemiSeg demo: train on the bundled sample's scribbles, segment the whole image, draw a preview.

    .venv/bin/python scripts/demo.py [--preset fast|balanced|best] [--out-dir out/demo]

Runs the engine's one-click path (``python -m engine run``) as a child process, exactly as the plugin
does, on ``resources/sample/landsat_rgb.tif`` with the painted labels
``resources/sample/landsat_rgb_labels.tif``. Then writes ``preview.png`` beside the outputs: the image,
the labels over a dimmed copy of the image, and the prediction, side by side with a legend.
``--preview-only`` redraws the preview from outputs already in ``--out-dir``.

Uses only numpy, rasterio and Pillow itself (the engine runs in the child process).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image, ImageDraw, ImageFont
from rasterio.enums import ColorInterp, Resampling
from rasterio.vrt import WarpedVRT

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # for engine.categories (pure rasterio; no torch is imported here)

from engine.categories import ClassTable, read_class_table  # noqa: E402

SAMPLE_IMAGE = "resources/sample/landsat_rgb.tif"
SAMPLE_LABELS = "resources/sample/landsat_rgb_labels.tif"

PANEL_MAX = 640  # longest side of one preview panel, in screen pixels
MARGIN = 12
BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)


# ----------------------------------------------------------------------------------------------- run


def run_engine(out_dir: Path, preset: str) -> int:
    cmd = [sys.executable, "-m", "engine", "run", "--image", SAMPLE_IMAGE, "--labels", SAMPLE_LABELS,
           "--out-dir", str(out_dir), "--preset", preset, "--progress", "bar"]
    print("demo: " + " ".join(cmd[1:] if cmd[0] == sys.executable else cmd), flush=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.call(cmd, cwd=ROOT, env=env)


# ------------------------------------------------------------------------------------------- preview


def _panel_shape(width: int, height: int) -> tuple[int, int]:
    """(rows, cols) of a panel: the raster's own size, shrunk so the longest side is PANEL_MAX."""
    scale = min(1.0, PANEL_MAX / max(width, height))
    return max(1, round(height * scale)), max(1, round(width * scale))


def _rgb_bands(ds) -> list[int]:
    """1-based band indexes to show as red, green, blue (one band: grey)."""
    interp = list(ds.colorinterp)
    want = [ColorInterp.red, ColorInterp.green, ColorInterp.blue]
    if all(c in interp for c in want):
        return [interp.index(c) + 1 for c in want]
    if ds.count >= 3:
        return [1, 2, 3]
    return [1, 1, 1]


def image_display(path: str | os.PathLike, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An 8-bit RGB rendering (2-98 % stretch per band, nodata black) and its valid-pixel mask."""
    with rasterio.open(path) as ds:
        bands = _rgb_bands(ds)
        data = ds.read(bands, out_shape=(3, *shape), resampling=Resampling.nearest).astype(np.float64)
        valid = ds.dataset_mask(out_shape=shape, resampling=Resampling.nearest) > 0
    rgb = np.zeros((*shape, 3), np.uint8)
    for i in range(3):
        band = data[i]
        ok = valid & np.isfinite(band)
        if not ok.any():
            continue
        lo, hi = np.percentile(band[ok], [2, 98])
        scaled = (band - lo) / max(hi - lo, 1e-12) * 255.0
        rgb[..., i] = np.clip(np.nan_to_num(scaled), 0, 255).astype(np.uint8)
    rgb[~valid] = 0
    return rgb, valid


def class_display(path: str | os.PathLike, image_path: str | os.PathLike,
                  shape: tuple[int, int]) -> np.ndarray:
    """A class raster read onto the image's grid (nearest neighbour) at the panel's size."""
    with rasterio.open(image_path) as img, rasterio.open(path) as ds:
        same_grid = (ds.crs == img.crs and ds.transform.almost_equals(img.transform)
                     and (ds.width, ds.height) == (img.width, img.height))
        if same_grid:
            return ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        with WarpedVRT(ds, crs=img.crs, transform=img.transform, width=img.width, height=img.height,
                       resampling=Resampling.nearest, nodata=0) as vrt:
            return vrt.read(1, out_shape=shape, resampling=Resampling.nearest)


def _num_classes(path: str | os.PathLike, values: np.ndarray) -> int:
    from engine.categories import read_category_names  # noqa: PLC0415

    k = int(values.max()) if values.size else 0
    k = max(k, len(read_category_names(str(path))) - 1)
    try:
        with rasterio.open(path) as ds:
            cmap = ds.colormap(1)
        # colour tables are padded to 256 entries; count the coloured, opaque ones after 0
        coloured = [i for i, c in cmap.items() if i > 0 and c[3] > 0 and c[:3] != (0, 0, 0)]
        if coloured and max(coloured) < 256:
            k = max(k, max(coloured))
    except ValueError:
        pass
    return k


def _paint(base: np.ndarray, classes: np.ndarray, table: ClassTable) -> np.ndarray:
    out = base.copy()
    for i, colour in enumerate(table.colours, start=1):
        out[classes == i] = colour
    return out


def _font(size: int):
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def make_preview(image: str | os.PathLike, labels: str | os.PathLike | None, prediction: str | os.PathLike,
                 out_png: str | os.PathLike, title: str = "") -> Path:
    """image | labels over a dimmed image | prediction, with captions and a legend, as a PNG."""
    with rasterio.open(image) as ds:
        shape = _panel_shape(ds.width, ds.height)
        img_name = Path(image).name
    rgb, valid = image_display(image, shape)
    pred = class_display(prediction, image, shape)
    k = _num_classes(prediction, pred)
    table = read_class_table(str(prediction), k)

    panels = [(rgb, f"image: {img_name}")]
    if labels is not None:
        lab = class_display(labels, image, shape)
        lab_table = read_class_table(str(labels), max(int(lab.max()), 1))
        dimmed = (rgb.astype(np.float32) * 0.45).astype(np.uint8)
        n_lab = int((lab > 0).sum())
        panels.append((_paint(dimmed, lab, lab_table),
                       f"painted labels: {n_lab} px ({100.0 * n_lab / lab.size:.1f} %)"))
    pred_rgb = _paint(np.zeros_like(rgb), pred, table)
    pred_rgb[~valid | (pred == 0)] = 0
    panels.append((pred_rgb, f"prediction: {Path(prediction).name}"))

    font, small = _font(16), _font(14)
    rows, cols = shape
    caption_h = 26
    title_h = 30 if title else 0
    swatch = 16
    # lay the legend out in as many lines as it needs
    legend_items = list(zip(table.names, table.colours, strict=True))
    canvas_w = MARGIN + len(panels) * (cols + MARGIN)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lines: list[list[tuple[str, tuple[int, int, int], int]]] = [[]]
    x = MARGIN
    for name, colour in legend_items:
        w = swatch + 6 + int(probe.textlength(name, font=small)) + 18
        if x + w > canvas_w - MARGIN and lines[-1]:
            lines.append([])
            x = MARGIN
        lines[-1].append((name, colour, x))
        x += w
    legend_h = len(lines) * (swatch + 8) + 8
    canvas_h = MARGIN + title_h + caption_h + rows + MARGIN + legend_h + MARGIN
    canvas = Image.new("RGB", (canvas_w, canvas_h), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    y = MARGIN
    if title:
        draw.text((MARGIN, y), title, fill=TEXT, font=font)
        y += title_h
    for i, (arr, caption) in enumerate(panels):
        x0 = MARGIN + i * (cols + MARGIN)
        draw.text((x0, y + 2), caption, fill=TEXT, font=small)
        canvas.paste(Image.fromarray(arr, "RGB"), (x0, y + caption_h))
    y += caption_h + rows + MARGIN
    for line in lines:
        for name, colour, x0 in line:
            draw.rectangle([x0, y, x0 + swatch, y + swatch], fill=tuple(colour), outline=(60, 60, 60))
            draw.text((x0 + swatch + 6, y), name, fill=TEXT, font=small)
        y += swatch + 8
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_png)
    return out_png


# ---------------------------------------------------------------------------------------------- main


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def print_metrics(metrics_path: Path) -> dict:
    try:
        metrics = json.loads(metrics_path.read_text())
    except (OSError, ValueError) as exc:
        print(f"demo: could not read {metrics_path}: {exc}")
        return {}
    if metrics.get("val_miou") is None:
        print("validation: none (too few strokes were held out)")
    else:
        p = "map_val_" if metrics.get("map_val_miou") is not None else "val_"  # map_val_: run scored its map
        what = "of the map" if p == "map_val_" else "of the network"
        print(f"validation {what} (held-out strokes, {metrics.get(f'{p}pixels', '?')} px): "
              f"mIoU {_fmt(metrics.get(f'{p}miou'))}, overall accuracy {_fmt(metrics.get(f'{p}oa'))}, "
              f"kappa {_fmt(metrics.get(f'{p}kappa'))}")
        per_class = metrics.get(f"{p}per_class_iou") or {}
        if per_class:
            print("  IoU per class: " + ", ".join(f"{n} {_fmt(v)}" for n, v in per_class.items()))
        if p == "map_val_":
            print(f"  the network alone while training: mIoU {_fmt(metrics.get('val_miou'))}, "
                  f"overall accuracy {_fmt(metrics.get('val_oa'))}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="fast", choices=["fast", "balanced", "best"],
                    help="training preset passed to the engine (default: fast)")
    ap.add_argument("--out-dir", default=None,
                    help="folder for the outputs (default: out/demo in the plugin folder)")
    ap.add_argument("--preview-only", action="store_true",
                    help="do not train: redraw preview.png from the outputs already in --out-dir")
    a = ap.parse_args(argv)
    out_dir = Path(a.out_dir).resolve() if a.out_dir else ROOT / "out" / "demo"

    t0 = time.monotonic()
    if not a.preview_only:
        rc = run_engine(out_dir, a.preset)
        if rc != 0:
            print(f"demo: the engine failed (exit status {rc}); see its message above.", file=sys.stderr)
            return rc if rc > 0 else 1
    wall = time.monotonic() - t0

    prediction = out_dir / "prediction.tif"
    if not prediction.exists():
        print(f"demo: {prediction} does not exist; run the demo without --preview-only first.",
              file=sys.stderr)
        return 1
    metrics_path = out_dir / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    title = "SemiSeg demo: a few painted strokes → a map of the whole image"
    shown = metrics.get("map_val_miou", metrics.get("val_miou"))
    if shown is not None:
        title += f"   (validation mIoU {shown:.2f})"
    preview = make_preview(ROOT / SAMPLE_IMAGE, ROOT / SAMPLE_LABELS, prediction, out_dir / "preview.png",
                           title=title)

    print()
    print(f"outputs in {out_dir}:")
    for name in ("model.semiseg", "prediction.tif", "confidence.tif", "metrics.json", "preview.png"):
        p = out_dir / name
        if p.exists():
            print(f"  {name:15s} {p.stat().st_size / 1024:8.0f} KiB")
    print_metrics(metrics_path)
    if not a.preview_only:
        print(f"demo took {wall:.0f} s. Look at {preview}, or open prediction.tif and confidence.tif "
              "in QGIS.")
    else:
        print(f"preview redrawn: {preview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
