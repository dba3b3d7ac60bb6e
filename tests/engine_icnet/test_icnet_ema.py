"""EMA teacher arithmetic (engine.ema)."""

import torch
from torch import nn

from engine.ema import EMATeacher


def _net(value: float) -> nn.Module:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(value)
        net[1].running_mean.fill_(value)
    return net


def test_first_update_copies_then_averages():
    student = _net(1.0)
    teacher = EMATeacher(_net(0.0), cap=0.999)
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
    assert torch.allclose(teacher.model[1].running_mean, torch.full((2,), 2.0))
    assert int(teacher.model[1].num_batches_tracked) == int(student[1].num_batches_tracked)


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
