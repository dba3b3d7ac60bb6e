"""EMA teacher arithmetic (engine.ema)."""

import pytest
import torch
from torch import nn

from engine.ema import EMATeacher, WeightAverage, refresh_statistics


def _net(value: float) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
        net[1].running_mean.fill_(value)
    return net


@pytest.mark.parametrize("own", [False, True])
def test_first_update_copies_then_averages(own):
    student = _net(1.0)
    teacher = EMATeacher(_net(0.0), cap=0.999, own_statistics=own)
    assert teacher.decay() == 0.0  # a = 1 - 1/(0 + 1)
    teacher.update(student)
    assert all(torch.all(p == 1.0) for p in teacher.model.parameters())
    assert teacher.decay() == 0.5  # a = 1 - 1/2
    with torch.no_grad():
        for p in student.parameters():
            p.fill_(3.0)
        student[1].running_mean.fill_(3.0)
    teacher.update(student)  # 0.5 * 1 + 0.5 * 3
    assert all(torch.allclose(p, torch.full_like(p, 2.0)) for p in teacher.model.parameters())
    if own:  # the students' statistics are not the averaged weights' (engine.ema): it keeps its own
        assert torch.all(teacher.model[1].running_mean == 0.0)
    else:  # averaged like the weights
        assert torch.allclose(teacher.model[1].running_mean, torch.full((2,), 2.0))


def test_refresh_gives_the_statistics_of_the_averaged_weights():
    """Students y = 1x then y = 3x: their mean weight gives y = 2x, whose variance is 4 var(x), not the
    mean of the students' variances, (1 + 9) / 2 var(x). The refresh measures the former."""
    torch.manual_seed(0)
    batches = [torch.randn(64, 1) for _ in range(3)]
    xs = torch.cat(batches)

    def student(w: float) -> nn.Module:
        net = nn.Sequential(nn.Linear(1, 1, bias=False), nn.BatchNorm1d(1))
        with torch.no_grad():
            net[0].weight.fill_(w)
        return net

    teacher = EMATeacher(student(1.0), cap=0.999)
    teacher.update(student(1.0))
    teacher.update(student(3.0))
    teacher.refresh_statistics(batches)
    bn = teacher.model[1]
    assert torch.allclose(bn.running_mean, (2 * xs).mean(0), atol=1e-5)
    # torch's cumulative mode: the mean of each batch's unbiased variance
    expected = torch.stack([(2 * b).var(0) for b in batches]).mean(0)
    assert torch.allclose(bn.running_var, expected, rtol=1e-4)
    assert torch.allclose(bn.running_var, 4 * xs.var(0), rtol=0.2)
    assert not teacher.model.training and bn.momentum == 0.1  # back as it was


def test_teacher_with_own_statistics_normalises_each_batch_by_its_own():
    teacher = EMATeacher(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2, affine=False)), own_statistics=True)
    x = torch.randn(32, 2) * 5 + 7
    out = teacher(x)
    assert torch.allclose(out.mean(0), torch.zeros(2), atol=1e-4)  # the batch's mean, not the stored 0
    assert not teacher.model.training
    assert not torch.all(teacher.model[1].running_mean == 0.0)  # the running statistics moved along


def test_refresh_leaves_networks_without_batch_norm_and_the_mode_alone():
    net = nn.Linear(2, 2).train()
    refresh_statistics(net, [torch.randn(4, 2)])
    assert net.training


def test_weight_average_averages_the_statistics_with_the_weights():
    """The weight average of a network's last steps takes the network's statistics along (engine.ema)."""
    net = _net(1.0)
    average = WeightAverage(net, 0.99)
    average.update()  # the first update copies
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(3.0)
        net[1].running_mean.fill_(3.0)
    average.update()  # 0.5 * 1 + 0.5 * 3
    model = average.model()
    assert all(torch.allclose(p, torch.full_like(p, 2.0)) for p in model.parameters())
    assert torch.allclose(model[1].running_mean, torch.full((2,), 2.0))
    assert int(model[1].num_batches_tracked) == int(net[1].num_batches_tracked)


def test_decay_is_capped_and_teacher_is_frozen():
    student = _net(1.0)
    teacher = EMATeacher(student, cap=0.9)
    for _ in range(50):
        teacher.update(student)
    assert teacher.decay() == 0.9
    assert not any(p.requires_grad for p in teacher.model.parameters())
    assert not teacher.model.training


def test_teacher_tracks_running_mean_of_weights():
    """Before the cap, a = 1 - 1/(t+1) makes the teacher the plain mean of the students seen so far."""
    student = _net(0.0)
    teacher = EMATeacher(student, cap=0.999)
    for v in (1.0, 2.0, 6.0):
        with torch.no_grad():
            for p in student.parameters():
                p.fill_(v)
        teacher.update(student)
    assert all(torch.allclose(p, torch.full_like(p, 3.0)) for p in teacher.model.parameters())


def test_reset_restarts_from_student():
    teacher = EMATeacher(_net(0.0))
    teacher.update(_net(5.0))
    teacher.reset(_net(7.0))
    assert teacher.updates == 0
    assert all(torch.all(p == 7.0) for p in teacher.model.parameters())
