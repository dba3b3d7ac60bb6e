"""End to end through the CLI: pretrain an image once, then train/run from the saved encoder."""

import json
import os

import torch

from engine import modelfile
from engine.cli import main
from engine.synthetic import write_scene

TINY = ["--preset", "fast", "--device", "cpu", "--progress", "none"]


def test_pretrain_then_train_from_the_encoder(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=3)
    enc, dbg = str(tmp_path / "scene.enc"), str(tmp_path / "debug")
    assert main(["pretrain", "--image", paths["image"], "--out", enc, "--pretrain-steps", "4",
                 "--debug-dir", dbg, *TINY]) == 0
    assert os.path.exists(enc) and os.path.exists(os.path.join(dbg, "inpainting_rounds.png"))

    # zero fine-tuning steps: the saved model must hold the encoder file's weights exactly (all of them
    # with --transfer-levels 0; the first level's by default)
    pretrained = torch.load(enc, map_location="cpu", weights_only=True)["encoder"]
    for levels, prefix in (["--transfer-levels", "0"], "stages."), ([], "stages.0."):
        model_path = str(tmp_path / f"m0-{len(levels)}.semiseg")
        assert main(["train", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
                     "--init", enc, "--steps", "0", "--out", model_path, *levels, *TINY]) == 0
        saved = modelfile.load(model_path).members[0]
        loaded = {k: v for k, v in pretrained.items() if k.startswith(prefix)}
        assert loaded and all(torch.equal(saved[f"encoder.{k}"], v) for k, v in loaded.items())

    out_dir = str(tmp_path / "run")
    assert main(["run", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
                 "--init", enc, "--steps", "3", "--tile-size", "32", "--ssim-weight", "0.5",
                 "--out-dir", out_dir, *TINY]) == 0
    with open(os.path.join(out_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["pretrain"]["from_file"] == "scene.enc"
    assert os.path.exists(os.path.join(out_dir, "prediction.tif"))


def test_inpaint_without_init_pretrains_within_the_run(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=4)
    out_dir = str(tmp_path / "run")
    assert main(["run", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
                 "--pretrain-steps", "3", "--no-instructor", "--steps", "2", "--tile-size", "32",
                 "--out-dir", out_dir, *TINY]) == 0
    with open(os.path.join(out_dir, "metrics.json")) as f:
        pre = json.load(f)["pretrain"]
    assert pre["pretrain_instructor"] is False and pre["seconds"] > 0


def test_init_errors_are_one_sentence(tmp_path, capsys):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=5)
    args = ["train", "--image", paths["image"], "--labels", paths["labels"], "--steps", "1",
            "--out", str(tmp_path / "m.semiseg"), *TINY]
    assert main([*args, "--method", "inpaint", "--init", str(tmp_path / "missing.enc")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main([*args, "--method", "supervised", "--init", paths["image"]]) == 2
    assert "--init needs a method" in capsys.readouterr().err
    assert main([*args, "--method", "inpaint", "--init", paths["image"]]) == 2
    assert "not a SemiSeg encoder file" in capsys.readouterr().err


def test_encoder_lr_scale_and_decoder_transfer_flags(tmp_path):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=6)
    enc = str(tmp_path / "scene.enc")
    assert main(["pretrain", "--image", paths["image"], "--out", enc, "--pretrain-steps", "3", *TINY]) == 0
    pretrained = torch.load(enc, map_location="cpu", weights_only=True)
    base = ["train", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
            "--init", enc, "--tile-size", "32", "--transfer-levels", "0", *TINY]

    # a frozen encoder (scale 0) keeps its pretrained weights through training; the rest learns
    frozen = str(tmp_path / "frozen.semiseg")
    assert main([*base, "--steps", "3", "--encoder-lr-scale", "0", "--out", frozen]) == 0
    saved = modelfile.load(frozen).members[0]
    weights = {k: v for k, v in pretrained["encoder"].items() if k.endswith("weight")}
    assert weights and all(torch.equal(saved[f"encoder.{k}"], v) for k, v in weights.items())
    assert not all(torch.equal(saved[f"decoder.{k}"], v) for k, v in pretrained["decoder"].items()
                   if k.endswith("weight"))

    # by default (and with the older --no-decoder-transfer) the pretrained encoder (here all of it) and a
    # fresh decoder: it differs even after zero steps; --decoder-transfer on also loads the inpainting
    # decoder
    for flags, transferred in (([], False), (["--no-decoder-transfer"], False),
                               (["--decoder-transfer", "on"], True), (["--decoder-transfer", "off"], False)):
        out = str(tmp_path / f"decoder-{len(flags)}-{transferred}.semiseg")
        assert main([*base, "--steps", "0", *flags, "--out", out]) == 0
        saved = modelfile.load(out).members[0]
        assert all(torch.equal(saved[f"encoder.{k}"], v) for k, v in pretrained["encoder"].items())
        conv = {k: v for k, v in pretrained["decoder"].items() if k.endswith("weight") and v.dim() > 1}
        same = [torch.equal(saved[f"decoder.{k}"], v) for k, v in conv.items()]
        assert conv and (all(same) if transferred else not any(same)), flags


def test_restore_weight_reaches_fine_tuning_and_a_negative_one_is_refused(tmp_path, capsys):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=7)
    enc = str(tmp_path / "scene.enc")
    assert main(["pretrain", "--image", paths["image"], "--out", enc, "--pretrain-steps", "3", *TINY]) == 0
    base = ["train", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
            "--init", enc, "--tile-size", "32", "--steps", "2", *TINY]
    out = str(tmp_path / "restoring.semiseg")
    assert main([*base, "--restore-weight", "0.5", "--out", out]) == 0
    assert modelfile.load(out).config.inpaint.restore_weight == 0.5
    try:
        code = main([*base, "--restore-weight", "-1", "--out", str(tmp_path / "never.semiseg")])
    except SystemExit as e:
        code = e.code
    assert code == 2 and "-1 is not a loss weight" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "never.semiseg")


def test_transfer_levels_flag_starts_only_the_first_levels_pretrained(tmp_path, capsys):
    paths = write_scene(str(tmp_path), 64, 64, bands=3, classes=3, seed=8)
    enc = str(tmp_path / "scene.enc")
    assert main(["pretrain", "--image", paths["image"], "--out", enc, "--pretrain-steps", "3", *TINY]) == 0
    pretrained = torch.load(enc, map_location="cpu", weights_only=True)["encoder"]
    base = ["train", "--image", paths["image"], "--labels", paths["labels"], "--method", "inpaint",
            "--init", enc, "--tile-size", "32", "--steps", "0", *TINY]
    for levels in ("0", "1", "2", "9", None):  # None: the default, the first level
        out = str(tmp_path / f"levels-{levels}.semiseg")
        assert main([*base, *(["--transfer-levels", levels] if levels else []), "--out", out]) == 0
        model = modelfile.load(out)
        levels = levels or "1"
        assert model.config.inpaint.transfer_levels == int(levels)
        saved = model.members[0]
        depth = len(model.config.model.widths)
        for level in range(depth):
            conv = {k: v for k, v in pretrained.items() if k.startswith(f"stages.{level}.") and v.dim() == 4}
            same = [torch.equal(saved[f"encoder.{k}"], v) for k, v in conv.items()]
            loaded = levels == "0" or level < int(levels)
            assert conv and (all(same) if loaded else not any(same)), (levels, level)
    # --decoder-transfer on puts the whole encoder under the decoder
    out = str(tmp_path / "decoder.semiseg")
    assert main([*base, "--decoder-transfer", "on", "--out", out]) == 0
    saved = modelfile.load(out).members[0]
    assert all(torch.equal(saved[f"encoder.{k}"], v) for k, v in pretrained.items())
    for bad, said in ((["--transfer-levels", "-1"], "is not a number of levels"),
                      (["--transfer-levels", "1", "--decoder-transfer", "on"], "needs the whole pretrained")):
        try:
            code = main([*base, *bad, "--out", str(tmp_path / "never.semiseg")])
        except SystemExit as e:
            code = e.code
        assert code == 2 and said in capsys.readouterr().err
        assert not os.path.exists(tmp_path / "never.semiseg")
