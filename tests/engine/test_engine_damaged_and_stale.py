"""Files that are not what they seem: a damaged image, a map whose no-data value is not 0, what an earlier
map left beside the file a new one replaces, a map asked for under another format's name."""

from __future__ import annotations

import numpy as np
import rasterio
from engine_helpers import run_cli, write_raster
from osgeo import gdal


def test_a_truncated_image_is_one_sentence_and_no_map(learned, tmp_path, capsys):
    with rasterio.open(learned["image"]) as ds:
        data, prof = ds.read(), {"crs": ds.crs, "transform": ds.transform}
    whole = write_raster(tmp_path / "whole.tif", data, **prof)  # striped, uncompressed
    cut = tmp_path / "cut.tif"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    out = tmp_path / "map.tif"
    rc, _, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", cut, "--out", out,
                                  "--device", "cpu", "--progress", "none"])
    assert rc == 2 and "Traceback" not in err, err
    assert f"Image {cut} cannot be read at rows" in err and "damaged or incomplete" in err
    assert not out.exists() and not list(tmp_path.glob("*partial*"))


def test_a_new_map_removes_what_the_old_one_left_beside_it(learned, tmp_path, capsys):
    """External overviews (QGIS's Build Pyramids) and statistics of the replaced map would show the old
    map zoomed out, and stretch the new one with the old values."""
    out = tmp_path / "map.tif"
    conf = tmp_path / "conf.tif"
    args = ["predict", "--model", learned["model"], "--image", learned["image"], "--out", out,
            "--confidence", conf, "--device", "cpu", "--progress", "none", "--tta", "off"]
    assert run_cli(capsys, args)[0] == 0
    for path in (out, conf):
        ds = gdal.Open(str(path), gdal.GA_ReadOnly)
        ds.BuildOverviews("NEAREST", [2, 4])  # read-only: written as path.ovr
        ds = None
    (tmp_path / "conf.tif.aux.xml").write_text("<PAMDataset><Metadata><MDI key='STATISTICS_MAXIMUM'>7"
                                               "</MDI></Metadata></PAMDataset>")
    assert (tmp_path / "map.tif.ovr").exists()
    assert run_cli(capsys, args)[0] == 0
    assert not (tmp_path / "map.tif.ovr").exists() and not (tmp_path / "conf.tif.ovr").exists()
    assert not (tmp_path / "conf.tif.aux.xml").exists()
    # one that cannot be removed (here a folder of that name) stops it before the old map is replaced
    (tmp_path / "map.tif.ovr").mkdir()
    (tmp_path / "map.tif.ovr" / "x").write_text("x")
    before = out.stat().st_mtime_ns
    rc, _, err = run_cli(capsys, args)
    assert rc == 2 and "left beside" in err and "cannot be removed" in err and "Traceback" not in err, err
    assert out.stat().st_mtime_ns == before


def test_a_map_is_written_only_under_a_geotiff_name(learned, tmp_path, capsys):
    out = tmp_path / "map.png"
    rc, _, err = run_cli(capsys, ["predict", "--model", learned["model"], "--image", learned["image"],
                                  "--out", out, "--device", "cpu", "--progress", "none"])
    assert rc == 2 and "must end in .tif or .tiff" in err and not out.exists()


def test_sample_and_assess_skip_a_maps_nodata_value_other_than_0(tmp_path, capsys):
    from rasterio.transform import from_origin

    m = np.ones((40, 40), np.uint8)
    m[:, 20:] = 2
    m[:, :8] = 255  # no data, declared
    path = write_raster(tmp_path / "map255.tif", m, nodata=255, transform=from_origin(0, 40, 1, 1))
    sample = tmp_path / "sample.gpkg"
    rc, _, err = run_cli(capsys, ["sample", "--prediction", path, "--out", sample, "--per-class", "5",
                                  "--progress", "none"])
    assert rc == 0, err
    from osgeo import ogr

    src = ogr.Open(str(sample))
    drawn = sorted(f.GetField("map_class") for f in src.GetLayer())
    src = None
    assert drawn == [1] * 5 + [2] * 5
    rc, out, err = run_cli(capsys, ["assess", "--prediction", path, "--reference", sample,
                                    "--reference-field", "map_class", "--out", tmp_path / "r.json",
                                    "--progress", "none"])
    assert rc == 0, err
    import json

    report = json.loads((tmp_path / "r.json").read_text())
    text = json.dumps(report)
    assert "class 255" not in text
