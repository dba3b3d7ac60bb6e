"""The ICNet method: step-parity alternation, reference vs improved, rounds, CLI mapping."""

import copy

import numpy as np
import pytest
import torch

from engine.cli import _config, build_parser
from engine.config import METHODS, TrainConfig, make_config
from engine.data import Chip, TileSampler
from engine.errors import SemiSegError
from engine.methods import method_class
from engine.methods.icnet import ICNet
from engine.synthetic import scene, scribbles
from engine.training import TrainData


def _data(bands=3, size=32, tile=16):
    img, truth = scene(size, size, bands=bands, classes=3, seed=0)
    lab = scribbles(truth, 1, length=6, seed=1)
    chip = Chip(0, 0, img.astype(np.float32), np.ones(truth.shape, bool), lab, np.zeros_like(lab))
    chip.index()
    return TrainData([chip], TileSampler([chip], tile, 0), 3, bands, ["a", "b", "c"])


def _method(mode="improved", bands=3, steps=4, **switches):
    cfg = make_config("fast", method="icnet", steps=steps, tile_size=16, batch_size=2, val_fraction=0)
    cfg.unlabeled_batch_size = 2
    cfg.model.widths = (4, 8)
    cfg.model.in_channels, cfg.model.num_classes = bands, 3
    cfg.icnet.mode = mode
    for k, v in switches.items():
        setattr(cfg.icnet, k, v)
    return ICNet(cfg, _data(bands), torch.device("cpu"))


def test_registered_and_listed():
    assert method_class("icnet") is ICNet
    assert "icnet" in METHODS


def test_alternation_by_step_parity():
    """Even steps: A learns from B's teacher; odd steps: B learns from A's teacher."""
    m = _method("reference")
    called = []
    for idx, teacher in enumerate(m.teachers):
        orig = teacher.model.forward
        teacher.model.forward = lambda x, _i=idx, _f=orig: (called.append(_i), _f(x))[1]
    for step in (1, 2, 3, 4):
        m.train_step(step, 4)
    assert called == [0, 1, 0, 1]  # step 1 (odd): teacher A teaches B; step 2: teacher B teaches A


def test_students_differ_and_teachers_follow():
    m = _method("reference")
    a, b = (dict(s.net.named_parameters()) for s in m.students)
    assert not torch.equal(a["head.weight"], b["head.weight"])  # different random initialisations
    before = m.teachers[0].model.net.head.weight.clone()
    logs = m.train_step(1, 4)
    assert np.isfinite(logs["loss"])
    assert not torch.equal(before, m.teachers[0].model.net.head.weight)  # EMA step taken


def test_saved_teachers_hold_statistics_of_their_own_weights():
    """fit() estimates each teacher's batch-norm statistics for its own weights before saving them
    (engine.ema): the saved members hold what a fresh estimate on the same tiles gives, and not the
    students' statistics averaged."""
    from engine.ema import refresh_statistics
    from engine.progress import Reporter
    from engine.training import fit, statistics_batches

    m = _method("reference", steps=3)
    members, _ = fit(m, Reporter("none"))
    batches = statistics_batches(m.data.chips, m.cfg, m.device)
    net = copy.deepcopy(m.teachers[1].model.net)
    for layer in net.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.running_mean.fill_(123.0)
    refresh_statistics(net, batches)
    (saved,) = members  # reference mode: teacher B predicts
    means = [k for k in saved if k.endswith("running_mean")]
    assert means and all(torch.allclose(saved[k], net.state_dict()[k], atol=1e-6) for k in means)
    student = m.students[1].net.state_dict()
    assert not all(torch.allclose(saved[k], student[k]) for k in means)


def test_reference_turns_every_addition_off():
    m = _method("reference")
    ic = m.ic
    got = (ic.conf_mask, ic.cutmix, ic.contrastive_weight, ic.rounds, ic.ensemble)
    assert got == (False, False, 0.0, 1, False)
    assert ic.own_statistics and m.refreshed_teachers() == m.teachers  # teachers with statistics of their own
    assert not _method("improved").ic.own_statistics and _method("improved").refreshed_teachers() == []
    assert len(m.ensemble()) == 1 and m.ensemble()[0] is m.teachers[1].model.net  # teacher B predicts
    assert m.students[0].proj is None
    assert len(_method("improved").ensemble()) == 2


@pytest.mark.parametrize("bands", [1, 4])
def test_improved_step_runs_for_any_band_count(bands):
    m = _method("improved", bands=bands)
    for step in (1, 2):
        logs = m.train_step(step, 4)
    assert {"sup", "unsup", "contrast", "mask", "loss"} <= set(logs)
    assert all(np.isfinite(v) for v in logs.values())


def test_rounds_refresh_pool_and_reseed_one_student():
    m = _method("improved", steps=4, rounds=2, conf_threshold=0.0, reseed=True)
    for step in (1, 2):
        m.train_step(step, 4)
    params = [s.net.head.weight.clone() for s in m.students]
    m.train_step(3, 4)  # first step of round 2
    assert m.round == 1 and m.pool is not None
    changed = [not torch.allclose(p, s.net.head.weight, atol=1e-2)
               for p, s in zip(params, m.students, strict=False)]
    assert sum(changed) >= 1
    assert m.pool.chips[0].train.any()


@pytest.mark.parametrize("reseed", [False, True])
def test_reseed_replaces_exactly_one_student_only_when_asked(reseed):
    m = _method("improved", steps=4, rounds=2, conf_threshold=0.0, reseed=reseed)
    for step in (1, 2):
        m.train_step(step, 4)
    before = list(m.students)
    m.train_step(3, 4)  # first step of round 2: the pool is refreshed either way
    assert m.pool is not None
    replaced = sum(a is not b for a, b in zip(before, m.students, strict=True))
    assert replaced == (1 if reseed else 0)


def test_cli_maps_icnet_switches():
    ap = build_parser()
    base = ["run", "--image", "i.tif", "--labels", "l.tif", "--out-dir", "o", "--method", "icnet"]
    cfg = _config(ap.parse_args(base))
    assert cfg.icnet.mode == "improved" and cfg.icnet.cutmix and cfg.icnet.rounds == 1
    assert _config(ap.parse_args(base + ["--rounds", "2"])).icnet.rounds == 2  # rounds are opt-in
    cfg = _config(ap.parse_args(base + ["--icnet-mode", "reference"]))
    assert cfg.icnet.mode == "reference"
    cfg = _config(ap.parse_args(base + ["--no-cutmix", "--no-contrastive", "--no-rounds", "--no-conf-mask",
                                        "--no-ensemble", "--unlabeled-batch-size", "3"]))
    ic = cfg.icnet
    got = (ic.cutmix, ic.contrastive_weight, ic.rounds, ic.conf_mask, ic.ensemble)
    assert got == (False, 0.0, 1, False, False)
    assert cfg.unlabeled_batch_size == 3
    assert not cfg.icnet.reseed and cfg.icnet.pool_fraction == 0.3
    with pytest.raises(SemiSegError, match="--pool-fraction, --reseed act only on ICNet's iterative rounds"):
        _config(ap.parse_args(base + ["--reseed", "--pool-fraction", "0"]))  # rounds are off by default
    cfg = _config(ap.parse_args(base + ["--rounds", "2", "--reseed", "--pool-fraction", "0"]))
    assert cfg.icnet.reseed and cfg.icnet.pool_fraction == 0.0
    again = TrainConfig.from_dict(cfg.to_dict())  # stored in the model file and read back
    assert again.icnet == cfg.icnet


class NoisyNearestMean(torch.nn.Module):
    """A stand-in teacher network with a known error pattern: nearest class mean of the bands, plus
    strong per-pixel noise on the logits (the speckle of a network trained on few labels)."""

    stride = 16

    def __init__(self, means: np.ndarray, noise: float, seed: int = 0):
        super().__init__()
        self.means = torch.from_numpy(means.astype(np.float32))  # (K, C)
        self.noise, self.gen = noise, torch.Generator().manual_seed(seed)

    def forward(self, x):
        d = ((x[:, None] - self.means[None, :, :, None, None]) ** 2).sum(2)
        d = d / d.mean().clamp_min(1e-6)
        return -d + self.noise * torch.randn(d.shape, generator=self.gen)


def _pool_accuracy(**switches) -> float:
    """Share of right labels in the round pool built from two noisy nearest-mean stand-in teachers."""
    img, truth = scene(32, 32, bands=3, classes=3, seed=0)
    means = np.stack([img[:, truth == c].mean(1) for c in (1, 2, 3)])
    m = _method("improved", steps=4, rounds=2, conf_threshold=0.0, pool_fraction=0.9, **switches)
    assert (m.smoothing is not None) == switches.get("pool_smoothing", True)
    for t in m.teachers:
        t.model.net = NoisyNearestMean(means, noise=1.5)
    m._next_round()
    pooled = m.pool.chips[0].train
    return float((pooled[pooled > 0] == truth[pooled > 0]).mean())


def test_round_pool_comes_from_smoothed_predictions_when_asked():
    """The same teachers' map smoothed along the scene's regions: fewer wrong labels in the pool."""
    plain, smoothed = _pool_accuracy(pool_smoothing=False), _pool_accuracy(pool_smoothing=True)
    assert smoothed > plain + 0.05, (plain, smoothed)


def test_round_pool_from_eight_views_when_asked():
    """The stand-in teachers' speckle differs from view to view, so the mean of 8 views has less of it:
    with ``pool_tta`` the pool's labels are more often right."""
    one, eight = (_pool_accuracy(pool_smoothing=False, pool_tta=t) for t in (False, True))
    assert eight > one + 0.05, (one, eight)


def test_smoothing_switches_from_the_command_line():
    ap = build_parser()
    base = ["run", "--image", "i.tif", "--labels", "l.tif", "--out-dir", "o", "--method", "icnet"]
    ic = _config(ap.parse_args(base)).icnet
    assert ic.pool_smoothing and not ic.pseudo_smoothing
    flags = ["--rounds", "2", "--no-pool-smoothing", "--smooth-pseudo-labels"]
    ic = _config(ap.parse_args(base + flags)).icnet
    assert not ic.pool_smoothing and ic.pseudo_smoothing
    ref = _config(ap.parse_args(base + ["--icnet-mode", "reference"])).icnet.resolved()
    assert not ref.pool_smoothing and not ref.pseudo_smoothing
    assert _config(ap.parse_args(base + ["--smooth", "off"])).icnet.pool_smoothing  # predict-only option
    assert not _config(ap.parse_args(base)).icnet.pool_tta
    assert _config(ap.parse_args(base + ["--rounds", "2", "--pool-tta"])).icnet.pool_tta
    with pytest.raises(SemiSegError, match="--pool-tta acts only on"):
        _config(ap.parse_args(base + ["--pool-tta"]))  # no rounds, no pool: said, not ignored
    ref = _config(ap.parse_args(base + ["--pool-tta", "--icnet-mode", "reference"])).icnet.resolved()
    assert not ref.pool_tta


def test_pseudo_labels_from_smoothed_teacher_output_train():
    m = _method("improved", steps=4, rounds=1, pseudo_smoothing=True)
    for step in (1, 2):
        logs = m.train_step(step, 4)
        assert np.isfinite(logs["loss"]) and 0.0 <= logs["mask"] <= 1.0


def test_balanced_unsupervised_loss_switch_and_steps():
    ap = build_parser()
    base = ["run", "--image", "i.tif", "--labels", "l.tif", "--out-dir", "o", "--method", "icnet"]
    assert _config(ap.parse_args(base)).icnet.balance_unsup  # on by default
    assert not _config(ap.parse_args(base + ["--no-balance-unsup"])).icnet.balance_unsup
    assert _config(ap.parse_args(base + ["--balance-unsup"])).icnet.balance_unsup
    assert _method("improved", steps=4, rounds=1, balance_unsup=False).balance is None
    assert not _config(ap.parse_args(base + ["--balance-unsup", "--icnet-mode", "reference"])
                       ).icnet.resolved().balance_unsup
    m = _method("improved", steps=4, rounds=1, conf_threshold=0.0, balance_unsup=True)
    for step in (1, 2):
        logs = m.train_step(step, 4)
        assert np.isfinite(logs["loss"]) and logs["unsup"] > 0
    assert not torch.isnan(m.balance.share).all()  # the pseudo-labels' class shares are being tracked


def test_supervised_first_keeps_round_one_to_the_labels():
    m = _method("improved", steps=4, rounds=2, conf_threshold=0.0, supervised_first=True)
    for step in (1, 2):  # round 1: the unlabeled losses are computed (logged) but do not count
        logs = m.train_step(step, 4)
        assert logs["unsup"] > 0 and logs["loss"] == pytest.approx(logs["sup"], abs=1e-6)
    logs = m.train_step(3, 4)  # round 2: they count
    assert logs["round"] == 2.0 and logs["loss"] > logs["sup"] + 1e-4


@pytest.mark.parametrize("views", [1, 2, 8])
def test_teacher_pseudo_labels_average_the_asked_views(views, monkeypatch):
    """--teacher-views N: the probabilities behind a step's pseudo-labels are the teacher's mean softmax
    over the first N flips / turns of the weak view (each turned back), not its single view."""
    import engine.methods.icnet as icnet_module
    from engine.predict import ensemble_probs

    m = _method("improved", teacher_views=views, cutmix=False)
    seen, probs = [], []
    teacher = m.teachers[0]  # step 1 (odd): B learns from A's teacher
    orig = teacher.model.forward
    teacher.model.forward = lambda x, _f=orig: (seen.append(x.clone()), _f(x))[1]
    real = icnet_module.pseudo_labels
    monkeypatch.setattr(icnet_module, "pseudo_labels", lambda p, t: (probs.append(p.clone()), real(p, t))[1])
    net = copy.deepcopy(teacher.model.net)  # the teacher as it taught, before its EMA step
    m.train_step(1, 4)
    one = ensemble_probs([net], seen[0], views=1)
    if views == 8:
        assert torch.allclose(probs[0], ensemble_probs([net], seen[0], views=8), atol=1e-5)
    elif views == 1:
        assert torch.allclose(probs[0], one, atol=1e-6)
    else:
        flipped = torch.flip(ensemble_probs([net], torch.flip(seen[0], (-1,)), views=1), (-1,))
        assert torch.allclose(probs[0], (one + flipped) / 2, atol=1e-5)
    if views > 1:
        assert not torch.allclose(probs[0], one, atol=1e-4)  # the extra views changed something


def test_teacher_views_from_the_command_line():
    ap = build_parser()
    base = ["run", "--image", "i.tif", "--labels", "l.tif", "--out-dir", "o", "--method", "icnet"]
    assert _config(ap.parse_args(base)).icnet.teacher_views == 1
    cfg = _config(ap.parse_args(base + ["--teacher-views", "4"]))
    assert cfg.icnet.teacher_views == 4 and cfg.icnet.resolved().teacher_views == 4
    ref = _config(ap.parse_args(base + ["--teacher-views", "4", "--icnet-mode", "reference"]))
    assert ref.icnet.resolved().teacher_views == 1
    with pytest.raises(SystemExit):
        ap.parse_args(base + ["--teacher-views", "3"])


def test_a_cancel_is_heard_while_the_round_pool_is_built():
    """Building the pool predicts every training chip: a cancel must not wait for its end (it could take
    longer than the plugin waits before killing the engine)."""
    from engine.errors import Cancelled
    from engine.runtime import CancelToken

    m = _method("improved", steps=4, rounds=2)
    m.cancel = CancelToken()
    m.cancel.cancelled = True
    with pytest.raises(Cancelled):
        m._next_round()
