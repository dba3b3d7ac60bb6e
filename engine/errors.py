"""The one family of errors a user can cause.

Each carries a stable ``code`` (for the plugin and scripts) and one plain sentence that names the
file and the fix. The CLI prints the sentence and exits non-zero; no stack trace for user mistakes.
"""

from __future__ import annotations

import errno


class SemiSegError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""

    code = "error"
    exit_status = 2

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InputError(SemiSegError):
    """Bad image, label or model file."""

    code = "bad_input"


class OutputError(SemiSegError):
    """Output cannot be written where asked."""

    code = "output_not_writable"


class Cancelled(SemiSegError):
    """The run was cancelled (SIGTERM / SIGINT); nothing was left behind."""

    code = "cancelled"
    exit_status = 130


def disk_full(e: BaseException) -> OSError | None:
    """The "no space left" OSError in ``e`` or in what caused it (rasterio and torch wrap GDAL's and the
    C library's write errors), or None."""
    full = {errno.ENOSPC, getattr(errno, "EDQUOT", -1)}
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and (e.errno in full or "No space left on device" in str(e)):
            return e
        if "No space left on device" in str(e) or "Disk quota exceeded" in str(e):
            return OSError(errno.ENOSPC, str(e))
        e = e.__cause__ or e.__context__
    return None
