"""Exponential-moving-average (mean) teacher of a student network.

After every optimisation step the teacher's weights move towards the student's:
``teacher = a * teacher + (1 - a) * student`` with ``a = min(1 - 1 / (t + 1), cap)``, where ``t``
counts the updates already made; written as ``teacher.lerp_(student, 1 - a)``, so a weight that does not
move (a frozen encoder) stays exactly what it is. The first update (a = 0) makes the teacher an exact
copy; the averaging window then grows until it reaches ``1 / (1 - cap)`` steps.

Batch-norm statistics are *not* averaged. The mean of the students' statistics is not the statistics of
the mean of their weights (the lesson of stochastic weight averaging): early in a run, when the weights
still move fast, a teacher normalising with averaged statistics predicted a few classes everywhere
(Indian Pines, ICNet as released: 7 % overall accuracy after 50 steps, 25 % with statistics of its own;
README, Benchmarks). The teacher's statistics are its own instead: a call normalises each batch by its
own statistics (batch norm in training mode, as mean-teacher training does), which also moves the
running statistics along, and ``refresh_statistics`` estimates them afresh from tiles before the teacher
is validated or saved.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

import torch
from torch import nn


def batch_norms(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@torch.no_grad()
def refresh_statistics(net: nn.Module, batches: Iterable[torch.Tensor]) -> None:
    """Estimate every batch-norm layer's running mean and variance afresh: the plain average over
    ``batches`` of what ``net``'s current weights produce (torch's cumulative mode), nothing kept from
    before. ``net`` comes back in the mode it was in."""
    norms = batch_norms(net)
    if not norms:
        return
    was_training, momenta = net.training, [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    net.train()
    try:
        for x in batches:
            net(x)
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        net.train(was_training)


class EMATeacher:
    """A frozen copy of ``student`` kept as the moving average of its weights."""

    def __init__(self, student: nn.Module, cap: float = 0.999):
        self.cap = cap
        self.model = copy.deepcopy(student).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.updates = 0

    def decay(self) -> float:
        """The averaging factor the next update will use."""
        return min(1.0 - 1.0 / (self.updates + 1), self.cap)

    @torch.no_grad()
    def update(self, student: nn.Module) -> None:
        w = 1.0 - self.decay()
        for t, s in zip(self.model.parameters(), student.parameters(), strict=True):
            t.lerp_(s.detach(), w)
        self.updates += 1

    def reset(self, student: nn.Module) -> None:
        """Start again from a copy of ``student`` (used when the student is re-initialised)."""
        self.model.load_state_dict(student.state_dict())
        self.updates = 0

    @torch.no_grad()
    def __call__(self, *args, **kwargs):
        """The teacher's output, each batch normalised by its own statistics (see the module's note);
        the running statistics move along."""
        self.model.train()
        try:
            return self.model(*args, **kwargs)
        finally:
            self.model.eval()

    def refresh_statistics(self, batches: Iterable[torch.Tensor]) -> None:
        refresh_statistics(self.model, batches)


class WeightAverage:
    """Predict with the moving average of a network's weights instead of its last ones.

    With a few labeled pixels the last SGD iterates still wander between nearby solutions; their
    average (an EMATeacher of the network, ``decay`` its cap) is a steadier model at no training cost.
    The teacher is made at the first update, i.e. after any pretrained weights were loaded; before it
    the network itself predicts. ``decay`` 0 turns the average off.
    """

    def __init__(self, net: nn.Module, decay: float):
        self.net, self.decay = net, decay
        self.ema: EMATeacher | None = None

    def update(self) -> None:
        """After every optimiser step."""
        if self.decay <= 0:
            return
        if self.ema is None:
            self.ema = EMATeacher(self.net, self.decay)
        self.ema.update(self.net)

    def model(self) -> nn.Module:
        return self.ema.model if self.ema is not None else self.net

    def teachers(self) -> list[EMATeacher]:
        """The average, once it exists, for the statistics refresh (training.Method.averages)."""
        return [self.ema] if self.ema is not None else []
