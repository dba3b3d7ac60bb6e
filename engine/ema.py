"""Exponential-moving-average (mean) teacher of a student network.

After every optimisation step the teacher's weights move towards the student's:
``teacher = a * teacher + (1 - a) * student`` with ``a = min(1 - 1 / (t + 1), cap)``, where ``t``
counts the updates already made; written as ``teacher.lerp_(student, 1 - a)``, so a weight that does not
move (a frozen encoder) stays exactly what it is. The first update (a = 0) makes the teacher an exact
copy; the averaging window then grows until it reaches ``1 / (1 - cap)`` steps. Batch-norm running statistics
are averaged the same way (integer counters are copied), so the teacher in eval mode normalises with
statistics that match its averaged weights.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


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
        return self.model(*args, **kwargs)


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
