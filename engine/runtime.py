"""Process-wide concerns: device choice, CPU threads, cancellation by signal.

torch is imported where a device is chosen or listed, not with the module: commands that need no
network (``polygons``) start without loading it.
"""

from __future__ import annotations

import contextlib
import os
import signal
from typing import TYPE_CHECKING

from engine.errors import Cancelled, InputError

if TYPE_CHECKING:
    import torch


def choose_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU (using every core)."""
    import torch  # noqa: PLC0415

    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            name = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            name = "mps"
        else:
            name = "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError("CUDA was asked for (--device cuda) but this Python's torch sees no CUDA GPU; "
                             "use --device cpu or auto.", "device_unavailable")
        idx = int(name.split(":")[1]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise InputError(f"--device {name} does not exist: this machine has {torch.cuda.device_count()} "
                             "CUDA device(s); pick cuda:0 or auto.", "device_unavailable")
    elif name == "mps":
        if not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
            raise InputError("MPS was asked for (--device mps) but is not available here; use --device cpu "
                             "or auto.", "device_unavailable")
    elif name != "cpu":
        raise InputError(f"Unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps.", "device_unknown")
    if name == "cpu":
        torch.set_num_threads(cpu_threads())
    return torch.device(name)


def cpu_threads() -> int:
    """Threads for CPU work: every core this process may run on, or ``SEMISEG_THREADS`` when set (for
    several engines sharing one machine, e.g. parallel benchmark jobs)."""
    env = os.environ.get("SEMISEG_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def list_devices() -> list[dict]:
    """Devices this engine can use, for the plugin's device picker."""
    import torch  # noqa: PLC0415

    devs = [{"id": "cpu", "name": f"CPU ({os.cpu_count()} cores)"}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devs.append({"id": f"cuda:{i}", "name": p.name, "memory_gb": round(p.total_memory / 2**30, 1)})
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        devs.append({"id": "mps", "name": "Apple GPU (MPS)"})
    return devs


class CancelToken:
    """Set by SIGTERM/SIGINT; long loops call ``check()`` and unwind, removing partial outputs."""

    def __init__(self):
        self.cancelled = False
        self._promptly = False

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handler)

    def _handler(self, signum, frame) -> None:  # noqa: ARG002
        self.cancelled = True
        if self._promptly:  # raised where the main thread is, once the current read returns
            self._promptly = False  # once: the unwinding is not interrupted again
            raise Cancelled("Cancelled; no output was written.")

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled("Cancelled; no output was written.")

    @contextlib.contextmanager
    def promptly(self):
        """Around work that writes nothing (reading a raster's statistics, labels and training blocks,
        which on a large or slowly decoded raster takes minutes and has no loop to call check() in): a
        cancel raises at once instead of at the next check()."""
        self.check()
        self._promptly = True
        try:
            yield
        finally:
            self._promptly = False


NEVER_CANCELLED = CancelToken()
