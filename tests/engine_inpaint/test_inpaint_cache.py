"""The encoder cache: pretrain an image in the first run, reuse it in the next ones while nothing that
the pretraining depends on has changed (what the plugin's repeated Train and segment relies on)."""

import json
import os

import torch

from engine import modelfile
from engine.cli import main
from engine.synthetic import write_scene

TINY = ["--preset", "fast", "--device", "cpu", "--progress", "none", "--tta", "off", "--smooth", "off"]


def _run(paths, tmp_path, name, *extra):
    out_dir = str(tmp_path / name)
    code = main(["run", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
                 "--pretrain-steps", "3", "--steps", "2", "--tile-size", "32", "--out-dir", out_dir,
                 *TINY, *extra])
    assert code == 0
    with open(os.path.join(out_dir, "metrics.json")) as f:
        pre = json.load(f)["pretrain"]
    return pre, modelfile.load(os.path.join(out_dir, "model.semiseg")).members[0]


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


def test_second_run_reuses_the_encoder_and_trains_the_same_model(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=6)
    cache = str(tmp_path / "cache" / "scene.semienc")  # the folder is made
    first, m1 = _run(paths, tmp_path, "r1", "--encoder-cache", cache)
    assert first["seconds"] > 0 and first["from_file"] is None and os.path.exists(cache)
    stamp = os.stat(cache).st_mtime_ns

    again, m2 = _run(paths, tmp_path, "r2", "--encoder-cache", cache)
    assert again["seconds"] is None and again["from_file"] == "scene.semienc"
    assert os.stat(cache).st_mtime_ns == stamp  # read, not rewritten
    assert _same(m1, m2)  # reusing the encoder changes nothing in what is trained

    # fine-tuning settings do not touch the pretraining: still reused
    ssim, _ = _run(paths, tmp_path, "r3", "--encoder-cache", cache, "--ssim-weight", "0.5")
    assert ssim["seconds"] is None


def test_a_changed_image_or_pretraining_setting_pretrains_again(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=7)
    cache = str(tmp_path / "scene.semienc")
    _run(paths, tmp_path, "r1", "--encoder-cache", cache)

    other, _ = _run(paths, tmp_path, "r2", "--encoder-cache", cache, "--no-instructor")
    assert other["seconds"] > 0 and other["pretrain_instructor"] is False
    reused, _ = _run(paths, tmp_path, "r3", "--encoder-cache", cache, "--no-instructor")
    assert reused["seconds"] is None  # the cache now holds the last pretraining

    st = os.stat(paths["image"])
    os.utime(paths["image"], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # the image was saved again
    edited, _ = _run(paths, tmp_path, "r4", "--encoder-cache", cache, "--no-instructor")
    assert edited["seconds"] > 0


def test_an_unreadable_cache_is_replaced_not_fatal(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=8)
    cache = tmp_path / "scene.semienc"
    cache.write_bytes(b"not an encoder")
    pre, _ = _run(paths, tmp_path, "r1", "--encoder-cache", str(cache))
    assert pre["seconds"] > 0
    assert torch.load(str(cache), weights_only=True)["format"] == "semiseg-encoder"


def test_cache_errors_are_one_sentence(tmp_path, capsys):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=9)
    args = ["train", "--image", paths["image"], "--labels", paths["labels"], "--steps", "1",
            "--out", str(tmp_path / "m.semiseg"), *TINY[:6]]
    cache = str(tmp_path / "c.semienc")
    assert main([*args, "--method", "supervised", "--encoder-cache", cache]) == 2
    assert "--encoder-cache needs a method" in capsys.readouterr().err
    assert main([*args, "--method", "inpaint", "--encoder-cache", cache, "--init", cache]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*args, "--method", "inpaint", "--encoder-cache", str(tmp_path)]) == 2  # a folder
    assert "give --encoder-cache a file path" in capsys.readouterr().err
    assert not os.path.exists(cache)


def test_a_cache_path_that_is_another_file_is_never_replaced(tmp_path, capsys):
    """A model given as the cache by mistake (it ends in .semiseg, not .semienc) is refused and kept."""
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=10)
    model = tmp_path / "m.semiseg"
    assert main(["train", "--image", paths["image"], "--labels", paths["labels"], "--steps", "1",
                 "--tile-size", "32", "--out", str(model), *TINY[:6]]) == 0
    before = model.read_bytes()
    capsys.readouterr()
    code = main(["run", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
                 "--pretrain-steps", "3", "--steps", "2", "--tile-size", "32",
                 "--out-dir", str(tmp_path / "r"), *TINY, "--encoder-cache", str(model)])
    err = capsys.readouterr().err
    assert code == 2 and f"Encoder cache {model} is not an encoder file" in err and ".semienc" in err, err
    assert model.read_bytes() == before and not (tmp_path / "r").exists()
