"""Progress for people (a bar on stderr) and for programs (JSON-lines events on stdout).

Events: start, stage, progress, metric, artifact, warning, error, done. Every event
is one JSON object per line, flushed at once so the plugin sees it live.
"""

from __future__ import annotations

import json
import sys
import time


def _fmt_eta(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


class Reporter:
    """Emits events in the chosen mode: ``jsonl``, ``bar`` or ``none`` (warnings only, on stderr)."""

    def __init__(self, mode: str = "bar", stream_out=None, stream_err=None):
        self.mode = mode
        self.out = stream_out or sys.stdout
        self.err = stream_err or sys.stderr
        self._stage_t0 = time.monotonic()
        self._bar_open = False

    def emit(self, event: str, **fields) -> None:
        fields = {"event": event, **fields}
        if self.mode == "jsonl":
            self.out.write(json.dumps(fields, default=_json_default) + "\n")
            self.out.flush()
        elif self.mode == "bar":
            self._human(event, fields)
        elif event == "warning":  # ``none``: no progress, but what may make the result wrong is still said
            self.err.write(f"Warning: {fields['message']}\n")
            self.err.flush()

    def stage(self, name: str, total_steps: int | None = None, **fields) -> None:
        self._stage_t0 = time.monotonic()
        self.emit("stage", stage=name, total_steps=total_steps, **fields)

    def progress(self, stage: str, step: int, total: int, **fields) -> None:
        elapsed = time.monotonic() - self._stage_t0
        eta = elapsed / step * (total - step) if step > 0 else None
        self.emit("progress", stage=stage, step=step, total_steps=total,
                  eta_s=None if eta is None else round(eta, 1), **fields)

    def warning(self, message: str, code: str = "warning") -> None:
        self.emit("warning", code=code, message=message)

    def _end_bar(self) -> None:
        if self._bar_open:
            self.err.write("\n")
            self._bar_open = False

    def _human(self, event: str, f: dict) -> None:
        if event == "progress":
            total = max(int(f["total_steps"]), 1)
            done = int(30 * f["step"] / total)
            extra = f"  loss {f['loss']:.3f}" if isinstance(f.get("loss"), float) else ""
            self.err.write(f"\r{f['stage']:>10} [{'#' * done}{'.' * (30 - done)}] {f['step']}/{total}"
                           f"{extra}  eta {_fmt_eta(f.get('eta_s'))}   ")
            self.err.flush()
            self._bar_open = True
            return
        self._end_bar()
        if event == "start":
            self.err.write(f"SemiSeg {f.get('command', '')}: device {f.get('device')}\n")
        elif event == "stage":
            self.err.write(f"{f['stage']}: {f.get('message', '')}\n")
        elif event == "metric":
            parts = [f"{k} {v:.3f}" for k, v in f.items() if isinstance(v, float)]
            self.err.write(f"  step {f.get('step')}: {', '.join(parts)}\n")
        elif event == "artifact":
            self.err.write(f"  wrote {f['kind']}: {f['path']}\n")
        elif event == "warning":
            self.err.write(f"Warning: {f['message']}\n")
        elif event == "done":
            self.err.write(f"Done in {f.get('seconds', 0):.1f} s.\n")
        self.err.flush()


def _json_default(o):
    try:
        return float(o)
    except (TypeError, ValueError):
        return str(o)
