"""Labeled pixels on nodata teach nothing and are never mapped: they are dropped before the validation
split, and a class left without usable labels is named."""

from __future__ import annotations

import json

import numpy as np
from engine_helpers import TINY_TRAIN, run_cli, write_raster


def _stripes(tmp_path, valid_rows=None, transparent_cols=None):
    """A 3-band 96×96 image of three vertical class stripes, with three equal strokes per class (rows
    16, 48, 80), as labels.tif; pixels outside ``valid_rows`` are nodata (value 0), and with
    ``transparent_cols`` an alpha band makes those columns transparent instead."""
    rng = np.random.default_rng(0)
    cls = np.ones((96, 96), np.uint8)
    cls[:, 32:] = 2
    cls[:, 64:] = 3
    img = (np.stack([cls * 60, cls * 40, 200 - cls * 50]) + rng.normal(0, 4, (3, 96, 96))).clip(1, 255)
    img = img.astype(np.uint8)
    labels = np.zeros((96, 96), np.uint8)
    for r in (16, 48, 80):
        for c in (10, 42, 74):
            labels[r:r + 3, c:c + 6] = cls[r:r + 3, c:c + 6]
    if valid_rows is not None:
        img[:, :valid_rows[0]] = 0
        img[:, valid_rows[1]:] = 0
        image = write_raster(tmp_path / "image.tif", img, nodata=0)
    else:
        alpha = np.full((1, 96, 96), 255, np.uint8)
        alpha[:, :, transparent_cols:] = 0
        image = write_raster(tmp_path / "image.tif", np.concatenate([img, alpha]), photometric="RGB",
                             alpha="YES")
    return str(image), str(write_raster(tmp_path / "labels.tif", labels))


def _warnings(stdout: str) -> list[str]:
    return [e["message"] for e in map(json.loads, stdout.splitlines()) if e["event"] == "warning"]


def test_strokes_on_nodata_do_not_count_nor_take_the_validation_split(tmp_path, capsys):
    """Only the middle row of strokes lies on valid pixels; the validation split used to hold out valid
    strokes and then refuse: every labeled pixel on nodata."""
    image, labels = _stripes(tmp_path, valid_rows=(40, 56))
    model = tmp_path / "m.semiseg"
    rc, stdout, err = run_cli(capsys, ["train", "--image", image, "--labels", labels, "--out", model,
                                       *TINY_TRAIN, "--progress", "jsonl"])
    assert rc == 0, err
    # two thirds of every class's strokes are lost to nodata: said, in one sentence for all classes
    partly = [w for w in _warnings(stdout) if "on nodata in the image teach nothing" in w]
    assert len(partly) == 1 and all(f"36 of the 54 of 'class {c}' (67 %)" in partly[0] for c in (1, 2, 3))
    rc, info, _ = run_cli(capsys, ["info", "--model", model])
    assert json.loads(info)["metrics"]["labeled_pixels"] == {"class 1": 18, "class 2": 18, "class 3": 18}


def test_a_class_whose_strokes_are_all_transparent_is_named(tmp_path, capsys):
    image, labels = _stripes(tmp_path, transparent_cols=64)  # class 3's stripe
    rc, stdout, err = run_cli(capsys, ["run", "--image", image, "--labels", labels, "--out-dir",
                                       tmp_path / "out", *TINY_TRAIN, "--progress", "jsonl"])
    assert rc == 0, err
    warned = _warnings(stdout)
    assert any("class 'class 3' has its 54 labeled pixels all on nodata" in w for w in warned), warned
    assert not any("teach nothing" in w for w in warned), warned  # the others lost nothing; 3 is said above


def test_a_background_value_other_than_0_is_one_warning_that_says_so(tmp_path, capsys):
    image, labels = _stripes(tmp_path, valid_rows=(0, 96))
    import rasterio

    with rasterio.open(labels) as ds:
        lab = ds.read(1)
    lab[lab == 0] = 255  # exported with 255 as background, no nodata tag
    background = write_raster(tmp_path / "bg255.tif", lab)
    rc, stdout, err = run_cli(capsys, ["train", "--image", image, "--labels", background, "--out",
                                       tmp_path / "m.semiseg", *TINY_TRAIN, "--progress", "jsonl"])
    assert rc == 0, err
    # 1, 2, 3 and 255 are codes (more gaps than classes): four classes, the last of which holds most pixels
    warned = [w for w in _warnings(stdout) if "holds" in w or "will not show it" in w]
    assert len(warned) == 1 and warned[0].startswith("class 255 ('class 255') holds"), warned
    assert "make it 0 or the file's nodata" in warned[0]


def test_only_squares_with_labels_are_read_and_nothing_where_all_is_valid(tmp_path):
    """Points 200 px apart over a 1000² raster make one crop of nearly the whole raster; the check reads
    the 64-px squares that hold them, and a raster that cannot have invalid pixels is not read at all."""
    from engine.data import may_be_invalid, on_valid_pixels
    from engine.labels import LabelPatches
    from engine.raster import open_image

    img = np.full((1, 1000, 1000), 7, np.uint16)
    img[0, :, 500:] = 0
    labels = np.zeros((1000, 1000), np.uint8)
    labels[100::200, 100::200] = 1
    patches = LabelPatches.from_array(labels)
    plain = write_raster(tmp_path / "plain.tif", img)
    holed = write_raster(tmp_path / "holed.tif", img, nodata=0)
    with open_image(str(plain)) as ds:
        assert not may_be_invalid(ds) and on_valid_pixels(patches, ds) is patches
    with open_image(str(holed)) as ds:
        reads = []
        import engine.data as data

        real = data.read_block
        data.read_block = lambda *a: reads.append(a[3] * a[4]) or real(*a)
        try:
            kept = on_valid_pixels(patches, ds)
        finally:
            data.read_block = real
    assert kept.count == 10  # the points on the valid left half (columns 100 and 300)
    assert sum(reads) <= 25 * 64 * 64


def test_validation_on_pieces_of_training_strokes_is_said(tmp_path, capsys):
    """Classes with fewer than 3 separate strokes are validated on pieces of their own strokes, which
    reads optimistic; the run says so, naming them, and says which class is not validated at all."""
    image, _ = _stripes(tmp_path, valid_rows=(0, 96))
    labels = np.zeros((96, 96), np.uint8)
    labels[10:80, 8:12] = 1  # one long stroke: cut into pieces
    labels[16:19, 42:48] = labels[48:51, 42:48] = labels[80:83, 42:48] = 2  # three strokes: whole ones
    labels[40:42, 74:77] = 3  # one tiny blob: a single piece, nothing to hold out
    lab = str(write_raster(tmp_path / "pieces.tif", labels))
    rc, stdout, err = run_cli(capsys, ["train", "--image", image, "--labels", lab, "--out",
                                       tmp_path / "m.semiseg", *TINY_TRAIN, "--progress", "jsonl"])
    assert rc == 0, err
    warned = _warnings(stdout)
    nearby = [w for w in warned if "pieces of strokes that also train" in w]
    assert len(nearby) == 1 and nearby[0].startswith("'class 1' has fewer than 3 separate strokes"), warned
    assert any(w.startswith("'class 3' has too few labeled pixels to hold any out") for w in warned), warned


def test_whole_strokes_held_out_say_nothing(tmp_path, capsys):
    image, labels = _stripes(tmp_path, valid_rows=(0, 96))  # three strokes per class
    rc, stdout, err = run_cli(capsys, ["train", "--image", image, "--labels", labels, "--out",
                                       tmp_path / "m.semiseg", *TINY_TRAIN, "--progress", "jsonl"])
    assert rc == 0, err
    assert not [w for w in _warnings(stdout) if "validat" in w], _warnings(stdout)
