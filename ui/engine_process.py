"""Start the SemiSeg engine as a child process and read its JSON-lines events.

This is the one module that knows how to run ``python -m engine ...``: which interpreter (the first
one that can import torch, unless the user set one), which working directory and ``PYTHONPATH`` (the
plugin folder, so that ``engine`` imports), how to read the event stream, and how to stop the child
(terminate, then kill). It holds no widgets and touches no layers, so the dock's task and the
Processing algorithms both use it, from any thread. QGIS's own process never imports torch: every
question that needs torch (is it there? which devices?) is asked of a child.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent.parent

# Seconds between the polite stop (SIGTERM: the engine stops within a step and removes partial
# outputs) and the hard one (SIGKILL), for a child stuck somewhere that does not check for cancel.
TERMINATE_GRACE_S = 10.0

# Seconds to keep reading stdout after the child exited (the last events may still be in the pipe).
_STDOUT_DRAIN_S = 2.0

# Methods offered when the engine cannot be asked (it is asked through its own config in a child
# process: see ``query_methods``). The engine rejects a method it does not know with a clear sentence.
FALLBACK_METHODS: tuple[str, ...] = ("supervised",)

# Run in a candidate interpreter: only a Python that can import torch can run the engine.
_TORCH_CHECK = "import torch"
_METHODS_QUERY = "import json; from engine.config import METHODS; print(json.dumps(list(METHODS)))"

EventCallback = Callable[[dict], None]


@dataclass
class EngineResult:
    """What one engine run left behind: its exit status, every event, and the end of its stderr."""

    returncode: int | None  # None: the child never started
    events: list[dict] = field(default_factory=list)
    cancelled: bool = False  # the caller asked to stop it
    stderr_tail: str = ""
    start_problem: str = ""  # why the child could not be started, if it was not

    @property
    def done(self) -> dict | None:
        """The ``done`` event (paths of everything written, metrics), or None."""
        return next((e for e in reversed(self.events) if e.get("event") == "done"), None)

    @property
    def error(self) -> dict | None:
        """The last ``error`` event (``code`` and one-sentence ``message``), or None."""
        return next((e for e in reversed(self.events) if e.get("event") == "error"), None)

    @property
    def warnings(self) -> list[str]:
        """The engine's warning sentences (each once, in order): things the analyst should know even
        though the run succeeded, e.g. a model applied to imagery unlike its training image."""
        return list(dict.fromkeys(str(e["message"]) for e in self.events
                                  if e.get("event") == "warning" and e.get("message")))

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.done is not None and not self.cancelled

    def artifacts(self) -> dict[str, str]:
        """Files the engine reported, by kind (model, prediction, confidence, metrics)."""
        return {e["kind"]: e["path"] for e in self.events if e.get("event") == "artifact" and "path" in e}

    def user_message(self) -> str:
        """One sentence for the message bar: the engine's own sentence when it gave one."""
        if self.ok:
            return "Finished."
        if self.cancelled:
            return "Cancelled; nothing was added to the project."
        if self.start_problem:
            return self.start_problem
        if self.error is not None and self.error.get("message"):
            return str(self.error["message"])
        if self.returncode is not None and self.returncode < 0:
            return (f"The engine stopped unexpectedly (signal {-self.returncode}; out of memory?). "
                    "QGIS is fine; the SemiSeg log has the details.")
        return (f"The engine stopped unexpectedly (exit status {self.returncode}). QGIS is fine; the "
                "SemiSeg log has the details.")


def engine_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The child's environment: the plugin folder first on ``PYTHONPATH``, unbuffered output, and the
    folder QGIS works in (``SEMISEG_WORKDIR``): the child starts in the plugin folder, so that
    ``-m engine`` is this plugin's engine, and moves to that folder before it reads its arguments, so a
    relative path given to Processing (qgis_process, a script) means the file the caller meant."""
    env = dict(os.environ if base is None else base)
    parts = [str(PLUGIN_DIR)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(parts)
    env["PYTHONUNBUFFERED"] = "1"
    try:
        env["SEMISEG_WORKDIR"] = os.getcwd()
    except OSError:  # QGIS's folder was removed under it: the engine stays in the plugin folder
        env.pop("SEMISEG_WORKDIR", None)
    return env


def engine_command(python: str, args: list[str]) -> list[str]:
    """The full command line for ``python -m engine <args>``."""
    return [python, "-m", "engine", *args]


class EngineProcess:
    """One engine child: start it, stream its events to a callback, stop it on request.

    ``run`` blocks until the child exits; call it from a worker thread (a ``QgsTask``), never from
    QGIS's main thread. ``on_event`` is called on that same thread, once per event, in order.
    """

    def __init__(self, python: str, args: list[str], on_event: EventCallback | None = None,
                 grace_s: float = TERMINATE_GRACE_S) -> None:
        self.command = engine_command(python, args)
        self.on_event = on_event
        self.grace_s = grace_s
        self._events: queue.Queue = queue.Queue()
        self._stderr: deque[str] = deque(maxlen=200)
        self._proc: subprocess.Popen | None = None

    def run(self, should_cancel: Callable[[], bool] = lambda: False, poll_s: float = 0.1) -> EngineResult:
        """Start the child and wait for it, stopping it as soon as ``should_cancel()`` is true."""
        try:
            self._proc = subprocess.Popen(
                self.command, cwd=str(PLUGIN_DIR), env=engine_environment(), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
                errors="replace", bufsize=1)
        except OSError as e:
            problem = (f"Could not start the engine with {self.command[0]} ({e}); set the engine Python "
                       "in the SemiSeg dock's Advanced section.")
            return EngineResult(None, start_problem=problem)
        readers = [threading.Thread(target=self._read_stdout, daemon=True),
                   threading.Thread(target=self._read_stderr, daemon=True)]
        for reader in readers:
            reader.start()
        try:
            events, cancelled = self._follow(should_cancel, poll_s)
        except BaseException:  # a failing on_event: no child may be left running without anyone to read it
            self.terminate()
            raise
        finally:
            for reader in readers:
                reader.join(timeout=2)
            if not any(reader.is_alive() for reader in readers):  # a reader still blocked keeps its pipe
                for pipe in (self._proc.stdout, self._proc.stderr):
                    if pipe is not None:
                        pipe.close()
        return EngineResult(self._proc.returncode, events, cancelled, "".join(self._stderr))

    def _follow(self, should_cancel: Callable[[], bool], poll_s: float) -> tuple[list[dict], bool]:
        """Pass on the child's events until it has exited; stop it when ``should_cancel()`` is true.
        Returns the events and whether it was cancelled."""
        events: list[dict] = []
        cancelled = False
        stdout_open = True
        exited_at: float | None = None
        while stdout_open or self._proc.poll() is None:
            if not cancelled and should_cancel():
                cancelled = True
                threading.Thread(target=self.terminate, daemon=True).start()
            if self._proc.poll() is not None:
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > _STDOUT_DRAIN_S:
                    break  # a grandchild still holds stdout open: do not wait for it
            try:
                event = self._events.get(timeout=poll_s)
            except queue.Empty:
                continue
            if event is None:  # stdout closed: the child is exiting
                stdout_open = False
                continue
            events.append(event)
            if self.on_event is not None:
                self.on_event(event)
        return events, cancelled

    def terminate(self) -> None:
        """Ask the child to stop (SIGTERM); kill it if it is still there after the grace period."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=self.grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            event = parse_event(line)
            if event is None:
                if line.strip():  # a library printing to stdout: keep it for the log
                    self._stderr.append(line)
            else:
                self._events.put(event)
        self._events.put(None)

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line)


def parse_event(line: str) -> dict | None:
    """The event on one stdout line, or None for a line that is not a JSON event."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


# --- which Python runs the engine ---------------------------------------------------------------------

_torch_checks: dict[str, bool] = {}  # interpreter -> can import torch (asked once per session)
_torch_checks_lock = threading.Lock()
_setups: dict[str, EngineSetup] = {}  # configured interpreter ("" = auto) -> what the probe found
_probe_lock = threading.Lock()


def candidate_pythons() -> list[str]:
    """Interpreters to try, best first: the plugin folder's own venv, then the Pythons on PATH.

    Paths are not resolved: a venv's ``python`` is a link to the system one but sees other packages.
    """
    venv = PLUGIN_DIR / ".venv"
    found = [venv / "bin" / "python", venv / "Scripts" / "python.exe"]
    found += [shutil.which(name) for name in ("python3", "python")]
    executable = Path(sys.executable)  # inside QGIS this is often the qgis binary, not a Python
    if executable.name.lower().startswith("python"):
        found.append(executable)
    found += [executable.with_name("python3"), executable.with_name("python")]
    unique: list[str] = []
    for path in found:
        if path and Path(path).is_file() and str(path) not in unique:
            unique.append(str(path))
    return unique


def can_import_torch(python: str, timeout_s: float = 180.0) -> bool:
    """True when ``python -c "import torch"`` succeeds; the answer is cached for the session."""
    with _torch_checks_lock:
        if python in _torch_checks:
            return _torch_checks[python]
    try:
        done = subprocess.run([python, "-c", _TORCH_CHECK], cwd=str(PLUGIN_DIR), env=engine_environment(),
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s)
        ok = done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    with _torch_checks_lock:
        _torch_checks[python] = ok
    return ok


def forget_torch_checks() -> None:
    """Drop cached answers (after the user installed torch somewhere, or changed the setting)."""
    with _torch_checks_lock:
        _torch_checks.clear()
        _setups.clear()


def find_engine_python(configured: str = "") -> str | None:
    """The interpreter to run the engine with: ``configured`` if it has torch, else the first candidate."""
    if configured:
        return configured if can_import_torch(configured) else None
    return next((python for python in candidate_pythons() if can_import_torch(python)), None)


def _query_json(python: str, argv: list[str], timeout_s: float = 120.0):
    done = subprocess.run([python, *argv], cwd=str(PLUGIN_DIR), env=engine_environment(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "no output")
    return json.loads(done.stdout.strip().splitlines()[-1])


def query_devices(python: str) -> list[dict]:
    """``python -m engine devices``: [{"id": "cpu", "name": ...}, {"id": "cuda:0", ...}, ...]."""
    try:
        devices = _query_json(python, ["-m", "engine", "devices"])
        return [d for d in devices if isinstance(d, dict) and "id" in d]
    except (OSError, RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired):
        return [{"id": "cpu", "name": "CPU"}]


def query_methods(python: str) -> list[str]:
    """The training methods the engine build offers, asked of the engine's config in a child."""
    try:
        methods = _query_json(python, ["-c", _METHODS_QUERY])
        return [str(m) for m in methods] or list(FALLBACK_METHODS)
    except (OSError, RuntimeError, ValueError, IndexError, subprocess.TimeoutExpired):
        return list(FALLBACK_METHODS)


@dataclass
class EngineSetup:
    """What the dock needs to know before it offers "Train and segment"."""

    python: str | None  # None: no interpreter with torch was found
    devices: list[dict] = field(default_factory=list)
    methods: list[str] = field(default_factory=lambda: list(FALLBACK_METHODS))
    configured: str = ""  # the interpreter the user set, if any

    @property
    def problem(self) -> str:
        """Why training cannot start, and the fix; empty when it can."""
        if self.python:
            return ""
        if self.configured and not shutil.which(self.configured):
            return (f"The engine Python {self.configured} does not exist or cannot be run; set the path "
                    "of a Python with torch under Advanced, or clear it to auto-detect one.")
        if self.configured:
            return (f"The engine Python {self.configured} cannot import torch. Install torch into it "
                    "(pip install torch torchvision) or clear the setting to auto-detect one.")
        return ("No Python with torch was found for the engine. Install torch into a Python "
                "(pip install torch torchvision) and set it as the engine Python under Advanced.")


def probe_engine(configured: str = "") -> EngineSetup:
    """Find the engine interpreter and ask it for devices and methods (slow: run it in a task).

    A found setup is remembered for the session; a failed search is repeated next time. Probes run
    one at a time, so a second caller waits for the first one's answer instead of asking again.
    """
    with _probe_lock:
        with _torch_checks_lock:
            if configured in _setups:
                return _setups[configured]
        python = find_engine_python(configured)
        if python is None:
            return EngineSetup(None, configured=configured)
        setup = EngineSetup(python, query_devices(python), query_methods(python), configured)
        with _torch_checks_lock:
            _setups[configured] = setup
        return setup

