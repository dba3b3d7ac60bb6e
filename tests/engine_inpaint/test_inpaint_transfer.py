"""Pretrained weights really reach the segmentation network (not silently random), via the file too."""

import dataclasses

import pytest
import rasterio
import torch

from engine.config import make_config
from engine.data import TileSampler, build_chips
from engine.errors import InputError
from engine.labels import LabelPatches
from engine.methods.inpaint import Inpaint
from engine.methods.inpaint_icnet import InpaintICNet
from engine.methods.supervised import Supervised
from engine.models import build_model
from engine.pretrain import EncoderFile, load_encoder, load_pretrained, pretrain_chips, save_encoder
from engine.progress import Reporter
from engine.raster import compute_band_stats, open_image
from engine.synthetic import write_scene
from engine.training import TrainData

CPU = torch.device("cpu")


def tiny_cfg(method="inpaint"):
    cfg = make_config("fast", method=method, tile_size=32, batch_size=2, widths=(8, 16), steps=2)
    cfg.inpaint = dataclasses.replace(cfg.inpaint, steps=3, rounds=1, tile_size=32, cell=8, batch_size=2,
                                      instructor_width=8, latent=8)
    return cfg


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scene")
    paths = write_scene(str(folder), 64, 64, bands=3, classes=3, seed=2)
    cfg = tiny_cfg()
    with rasterio.open(paths["labels"]) as ds:
        lab = ds.read(1)
    with open_image(paths["image"]) as ds:
        stats = compute_band_stats(ds)
        chips = build_chips(ds, stats, LabelPatches.from_array(lab), None, 64, 0)
    cfg.model.in_channels, cfg.model.num_classes = 3, 3
    enc = pretrain_chips(chips, stats, cfg, CPU, Reporter("none"))
    path = str(folder / "enc.pt")
    save_encoder(enc, path)
    data = TrainData(chips, TileSampler(chips, 32, 0), 3, 3, ["a", "b", "c"])
    return {"paths": paths, "enc_path": path, "data": data, "cfg": cfg}


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


def test_encoder_file_loads_safely_and_carries_what_fine_tuning_needs(scene):
    raw = torch.load(scene["enc_path"], map_location="cpu", weights_only=True)
    assert raw["format"] == "semiseg-encoder" and raw["bands"] == 3
    assert len(raw["band_stats"]["low"]) == 3 and raw["model"]["widths"] == [8, 16]
    enc = load_encoder(scene["enc_path"])
    assert same(enc.encoder, raw["encoder"]) and same(enc.decoder, raw["decoder"])
    assert same(enc.head, raw["head"]) and enc.head["weight"].shape[:2] == (3, 8)  # restoration head: bands


def test_fine_tuning_keeps_restoring_through_the_pretrained_head(scene):
    enc = load_encoder(scene["enc_path"])
    cfg = tiny_cfg()
    cfg.model.in_channels, cfg.model.num_classes = 3, 3
    cfg.inpaint.restore_weight = 1.0
    method = Inpaint(cfg, scene["data"], CPU)
    method.initialise(enc)
    # the inpainter's decoder works on the whole encoder it was pretrained with, whatever transfer_levels
    assert cfg.inpaint.transfer_levels == 1 and same(method.net.encoder.state_dict(), enc.encoder)
    # the inpainter's own decoder and head, not fresh ones, and a decoder apart from the segmentation one
    assert same(method.restorer["head"].state_dict(), enc.head)
    assert same(method.restorer["decoder"].state_dict(), enc.decoder)
    assert method.restorer["decoder"] is not method.net.decoder
    labeled_stream = scene["data"].sampler.rng.bit_generator.state
    logs = method.train_step(1, cfg.steps)
    after_restoring = scene["data"].sampler.rng.bit_generator.state
    assert logs["restore"] > 0 and logs["loss"] >= logs["ce"] + logs["restore"] - 1e-6
    assert not same(method.restorer["head"].state_dict(), enc.head)  # it learns with the network
    # erased tiles leave the encoder's batch-norm statistics (what prediction normalises with) alone
    stats = {k: v.clone() for k, v in method.net.encoder.state_dict().items() if "running" in k}
    method.restoration_step()
    assert stats and all(torch.equal(method.net.encoder.state_dict()[k], v) for k, v in stats.items())
    assert not same(method.net.encoder.state_dict(), enc.encoder)

    # off: no restoration, and the labeled batches are the same ones either way
    cfg.inpaint.restore_weight = 0.0
    plain = Inpaint(cfg, scene["data"], CPU)
    plain.initialise(enc)
    scene["data"].sampler.rng.bit_generator.state = labeled_stream
    assert plain.restorer is None and "restore" not in plain.train_step(1, cfg.steps)
    assert scene["data"].sampler.rng.bit_generator.state == after_restoring


def test_an_encoder_file_without_a_restoration_head_gets_a_fresh_one(scene):
    enc = load_encoder(scene["enc_path"])
    enc.head = {}  # a file saved before encoder files kept the head
    cfg = tiny_cfg()
    cfg.model.in_channels, cfg.model.num_classes = 3, 3
    cfg.inpaint.restore_weight = 0.5
    method = Inpaint(cfg, scene["data"], CPU)
    method.initialise(enc)
    assert method.train_step(1, cfg.steps)["restore"] > 0


def test_inpaint_method_starts_from_the_file_weights(scene):
    enc = load_encoder(scene["enc_path"])
    cfg = dataclasses.replace(scene["cfg"], inpaint=dataclasses.replace(scene["cfg"].inpaint,
                                                                       transfer_levels=0))
    method = Inpaint(cfg, scene["data"], CPU)
    fresh = {k: v.clone() for k, v in method.net.encoder.state_dict().items()}
    assert not same(fresh, enc.encoder)  # a random init would not pass the checks below
    decoder = {k: v.clone() for k, v in method.net.decoder.state_dict().items()}
    method.initialise(enc)
    assert same(method.net.encoder.state_dict(), enc.encoder)
    assert same(method.net.decoder.state_dict(), decoder)  # by default the decoder stays fresh
    cfg = dataclasses.replace(scene["cfg"], inpaint=dataclasses.replace(scene["cfg"].inpaint,
                                                                       transfer_decoder=True))
    with_decoder = Inpaint(cfg, scene["data"], CPU)
    with_decoder.initialise(enc)
    assert same(with_decoder.net.decoder.state_dict(), enc.decoder)
    assert same(with_decoder.net.encoder.state_dict(), enc.encoder)  # the decoder's whole encoder under it
    # the optimiser trains exactly those tensors
    opt_params = {id(p) for g in method.opt.param_groups for p in g["params"]}
    assert all(id(p) in opt_params for p in method.net.encoder.parameters())


def test_by_default_only_the_first_encoder_level_starts_pretrained(scene):
    enc = load_encoder(scene["enc_path"])
    assert scene["cfg"].inpaint.transfer_levels == 1
    method = Inpaint(scene["cfg"], scene["data"], CPU)
    fresh = {k: v.clone() for k, v in method.net.encoder.state_dict().items()}
    method.initialise(enc)
    loaded = method.net.encoder.state_dict()
    first = {k for k in loaded if k.startswith("stages.0.")}
    assert first and all(torch.equal(loaded[k], enc.encoder[k]) for k in first)
    deeper = [k for k in loaded if k.startswith("stages.1.") and loaded[k].dtype.is_floating_point]
    assert deeper and all(torch.equal(loaded[k], fresh[k]) for k in deeper)
    assert not any(torch.equal(loaded[k], enc.encoder[k]) for k in deeper if k.endswith("weight")
                   and loaded[k].dim() == 4)


def test_inpaint_icnet_students_share_the_encoder_but_not_their_decoders(scene):
    enc = load_encoder(scene["enc_path"])
    cfg = tiny_cfg("inpaint+icnet")
    cfg.model.in_channels, cfg.model.num_classes = 3, 3
    method = InpaintICNet(cfg, scene["data"], CPU)
    method.initialise(enc)
    for student, teacher in zip(method.students, method.teachers, strict=True):
        assert same(student.net.encoder.state_dict(), enc.encoder)
        assert same(teacher.model.net.encoder.state_dict(), enc.encoder)
    a, b = (s.net.decoder.state_dict() for s in method.students)
    assert not same(a, b)
    reseeded = method._new_student(123)  # a student re-seeded between rounds gets it again
    assert same(reseeded.net.encoder.state_dict(), enc.encoder)


def test_a_mismatching_encoder_is_refused(scene):
    enc = load_encoder(scene["enc_path"])
    cfg = tiny_cfg()
    cfg.model.in_channels, cfg.model.widths = 3, (8, 16, 32)
    for levels in (0, 1):  # a partial load checks the whole file too (its first level here fits)
        with pytest.raises(InputError, match="does not fit"):
            load_pretrained(build_model(cfg.model), enc, decoder=False, levels=levels)
    with pytest.raises(ValueError, match="whole pretrained encoder"):
        load_pretrained(build_model(scene["cfg"].model), enc, decoder=True, levels=1)


def test_head_warmup_trains_only_the_classifier_first_then_everything(scene):
    enc = load_encoder(scene["enc_path"])
    cfg = tiny_cfg()
    cfg.model.in_channels, cfg.model.num_classes = 3, 3
    cfg.steps, cfg.inpaint.head_warmup = 4, 0.5  # 2 probe steps, then 2 of everything
    method = Inpaint(cfg, scene["data"], CPU)
    method.initialise(enc)
    head = {k: v.clone() for k, v in method.net.head.state_dict().items()}
    weights = {k: v.clone() for k, v in method.net.named_parameters() if not k.startswith("head.")}
    for step in (1, 2):
        method.train_step(step, cfg.steps)
    body = {k: v for k, v in method.net.named_parameters() if not k.startswith("head.")}
    assert same(body, weights)  # the body (pretrained encoder, decoder) did not move
    assert not same(method.net.head.state_dict(), head)
    method.train_step(3, cfg.steps)
    assert not same(method.net.encoder.state_dict(), enc.encoder)  # now everything learns


@pytest.mark.parametrize("method_cls", [Inpaint, Supervised])
def test_the_moving_average_of_the_weights_predicts_and_zero_turns_it_off(scene, method_cls):
    cfg = tiny_cfg()
    cfg.model.in_channels, cfg.model.num_classes = 3, 3
    method = method_cls(cfg, scene["data"], CPU)
    seen = []
    for step in (1, 2, 3):
        method.train_step(step, 3)
        seen.append({k: v.detach().clone() for k, v in method.net.state_dict().items()})
    (predictor,) = method.ensemble()
    assert predictor is not method.net and not predictor.training
    # cap 0.99 is not reached in 3 updates: a = 1 - 1/(t+1) makes the average the plain mean of the iterates
    got = predictor.state_dict()
    params = dict(method.net.named_parameters())
    for name in params:
        assert torch.allclose(got[name], torch.stack([s[name] for s in seen]).mean(0), atol=1e-6), name
    assert not all(torch.equal(got[k], p) for k, p in params.items())  # not simply the last weights

    cfg.weight_average = 0.0
    plain = method_cls(cfg, scene["data"], CPU)
    assert plain.ensemble() == [plain.net]


@pytest.mark.parametrize("arch, bands, first", [("unet", 40, ("mix.", "body.stages.0.")),
                                                ("resnet18", 3, ("stem.",))])
def test_encoder_levels_of_every_architecture_cover_its_whole_encoder(arch, bands, first):
    cfg = make_config("fast", method="inpaint", widths=(8, 16, 32))
    cfg.model.arch, cfg.model.num_classes = arch, 3
    cfg.model.set_bands(bands)  # 40 bands: a spectral stem's band mixer in front of the U-Net
    net = build_model(cfg.model)
    levels = net.encoder.level_prefixes()
    assert levels[0] == first
    names = list(net.encoder.state_dict())
    owners = [[i for i, level in enumerate(levels) if n.startswith(level)] for n in names]
    assert all(len(o) == 1 for o in owners), "every tensor belongs to exactly one level"
    torch.manual_seed(1)
    donor = build_model(cfg.model)
    enc = EncoderFile(cfg.model, None, donor.encoder.state_dict(), donor.decoder.state_dict())
    load_pretrained(net, enc, decoder=False, levels=1)
    loaded = net.encoder.state_dict()
    for name, (level,) in zip(names, owners, strict=True):
        if loaded[name].dtype.is_floating_point and loaded[name].dim() == 4:
            assert torch.equal(loaded[name], enc.encoder[name]) == (level == 0), name
