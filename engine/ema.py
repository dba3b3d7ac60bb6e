"""Exponential-moving-average (mean) teacher of a student network.

After every optimisation step the teacher's weights move towards the student's:
``teacher = a * teacher + (1 - a) * student`` with ``a = min(1 - 1 / (t + 1), cap)``, where ``t``
counts the updates already made; written as ``teacher.lerp_(student, 1 - a)``, so a weight that does not
move (a frozen encoder) stays exactly what it is. The first update (a = 0) makes the teacher an exact
copy; the averaging window then grows until it reaches ``1 / (1 - cap)`` steps.

Batch-norm statistics: the mean of the students' statistics is not the statistics of the mean of their
weights (the lesson of stochastic weight averaging). The two agree while the weights hardly move within
the averaging window, and by default a teacher averages its students' statistics with their weights:
for a window of the last ~100 steps (ICNet's improved mode, cap 0.99; the weight average) that did as
well as, or better than, statistics estimated for the teacher's own weights (README, Benchmarks:
*Teachers' batch-norm statistics*). A teacher that averages every weight since the start (ICNet as
released, cap 0.999) predicted a few classes everywhere with averaged statistics (Indian Pines, k = 5:
teacher A 3 % overall accuracy after 50 steps, 23 % with statistics of its own weights; 8 % against
34 % after 100; bench/results/teacher_statistics_indian_pines.md). With ``own_statistics`` a teacher
keeps statistics of its own instead: it teaches in training mode, each batch normalised by its own
statistics (as mean-teacher code commonly runs its teacher), which also moves its running statistics
along, and ``refresh_statistics`` estimates them afresh from tiles before it is validated or saved
(training.fit).
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

    def __init__(self, student: nn.Module, cap: float = 0.999, own_statistics: bool = False):
        self.cap, self.own_statistics = cap, own_statistics
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
        if not self.own_statistics:  # the students' statistics, averaged like the weights
            for t, s in zip(self.model.buffers(), student.buffers(), strict=True):
                if t.dtype.is_floating_point:
                    t.lerp_(s.detach(), w)
                else:
                    t.copy_(s)
        self.updates += 1

    def reset(self, student: nn.Module) -> None:
        """Start again from a copy of ``student`` (used when the student is re-initialised)."""
        self.model.load_state_dict(student.state_dict())
        self.updates = 0

    @torch.no_grad()
    def __call__(self, *args, **kwargs):
        """The teacher's output on a batch: with ``own_statistics`` normalised by the batch's own
        statistics (which also moves its running statistics along), else by its averaged ones."""
        if not self.own_statistics:
            return self.model(*args, **kwargs)
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
    the network itself predicts. ``decay`` 0 turns the average off. Its batch-norm statistics are the
    network's, averaged like the weights (see the module's note).
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
