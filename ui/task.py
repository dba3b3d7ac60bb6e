"""Background work for the dock: the ``QgsTask`` that runs an engine job, and the engine probe.

A ``QgsTask`` runs one engine job as a child process, off QGIS's main thread.

``run()`` (worker thread) starts the child, turns its events into task progress and re-emits them
through ``event_received`` (delivered on the main thread), and never raises and never touches the
project, layers or widgets. ``finished()`` (main thread) emits ``completed`` with the
``EngineResult``; whoever started the task adds the layers from there. Cancelling the task (from the
dock or from QGIS's task manager) terminates the child within seconds.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from qgis.core import Qgis, QgsMessageLog, QgsTask
from qgis.PyQt.QtCore import QObject, pyqtSignal

from .engine_process import EngineProcess, EngineResult, EngineSetup, probe_engine

LOG_TAG = "SemiSeg"

# Share of the task's progress bar given to training stages; prediction fills the rest.
TRAINING_SHARE = 90.0


def overall_progress(event: dict, predict_only: bool = False) -> float | None:
    """Task progress (0..100) for a ``progress`` event, or None for any other event."""
    if event.get("event") != "progress":
        return None
    try:  # an event from an engine of another version, or a broken one: no progress, not a failure
        total = float(event.get("total_steps") or 0)
        step = float(event.get("step", 0))
    except (TypeError, ValueError):
        return None
    if not total > 0:
        return None
    fraction = min(max(step / total, 0.0), 1.0)
    if predict_only:
        return 100.0 * fraction
    if event.get("stage") == "predict":
        return TRAINING_SHARE + (100.0 - TRAINING_SHARE) * fraction
    return TRAINING_SHARE * fraction


# Tasks between start and finish. QGIS's task manager owns them, but a Python subclass must also stay
# referenced from Python until it finishes, even when whoever started it (the dock) is gone.
_live_tasks: set[EngineTask] = set()


class EngineTask(QgsTask):
    """Runs ``python -m engine <args>``; ``job`` is kept for whoever handles ``completed``."""

    event_received = pyqtSignal(dict)  # every engine event, in order, on the main thread
    completed = pyqtSignal(object)  # the EngineResult, once, on the main thread

    def __init__(self, job, python: str, cleanup_dir: str | None = None) -> None:
        super().__init__(job.description, QgsTask.CanCancel)
        self.job = job
        self.python = python
        self.cleanup_dir = cleanup_dir  # removed when the run fails or is cancelled (it is ours)
        self.result: EngineResult | None = None
        self._predict_only = job.engine_args()[0] != "run"  # no training stages to share the bar with
        _live_tasks.add(self)

    def run(self) -> bool:
        try:
            process = EngineProcess(self.python, self.job.engine_args(), on_event=self._on_event)
            self.result = process.run(should_cancel=self.isCanceled)
            if not self.result.ok:
                self._remove_partial_outputs()
        except Exception as e:  # noqa: BLE001  (run() must never raise: report it instead)
            self.result = EngineResult(None, start_problem=f"The engine task failed: {type(e).__name__}: {e}")
            self._remove_partial_outputs()  # (EngineProcess.run stopped the child before it raised)
        return self.result.ok

    def finished(self, ok: bool) -> None:  # noqa: ARG002  (the result says more than ok)
        _live_tasks.discard(self)
        if self.result is None:  # cancelled before it started
            self.result = EngineResult(None, cancelled=True)
        if not self.result.ok and not self.result.cancelled:
            QgsMessageLog.logMessage(f"{self.description()}: {self.result.user_message()}\n"
                                     f"{self.result.stderr_tail}", LOG_TAG)
        for warning in self.result.warnings:
            QgsMessageLog.logMessage(f"{self.description()}: {warning}", LOG_TAG, Qgis.Warning)
        self.completed.emit(self.result)

    def _on_event(self, event: dict) -> None:
        progress = overall_progress(event, self._predict_only)
        if progress is not None:
            self.setProgress(progress)
        self.event_received.emit(event)

    def _remove_partial_outputs(self) -> None:
        if self.cleanup_dir and Path(self.cleanup_dir).is_dir():
            shutil.rmtree(self.cleanup_dir, ignore_errors=True)



class EngineProbe(QObject):
    """Finds the engine interpreter and asks it for devices and methods, on a Python thread.

    Not a ``QgsTask``: a quick check at start-up should not announce itself in the task manager and
    the message bar. ``probed`` is delivered on the main thread (queued across threads).
    """

    probed = pyqtSignal(object)  # the EngineSetup

    def __init__(self, configured: str = "", parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.configured = configured

    def start(self) -> None:
        threading.Thread(target=self._run, name="semiseg-engine-probe", daemon=True).start()

    def _run(self) -> None:
        try:
            setup = probe_engine(self.configured)
        except Exception as e:  # noqa: BLE001  (a thread has no one to raise to)
            QgsMessageLog.logMessage(f"Looking for the engine failed: {e}", LOG_TAG)
            setup = EngineSetup(None, configured=self.configured)
        try:
            self.probed.emit(setup)
        except RuntimeError:  # the dock, and this object with it, was deleted meanwhile
            pass
