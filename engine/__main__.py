"""``python -m engine`` entry point."""

import os
import signal
import sys


def _cancelled_while_starting(signum, frame) -> None:  # noqa: ARG001
    """A cancel before the command's own handling is in place (imports, argument parsing): nothing is
    written yet, so leave at once with the status of a cancel."""
    os.write(2, b"Cancelled; no output was written.\n")
    os._exit(130)


for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, _cancelled_while_starting)

# The plugin starts the engine in its own folder, so that ``-m engine`` finds this package whatever the
# caller's folder holds; the folder the caller works in comes as SEMISEG_WORKDIR, and relative paths in
# the arguments (qgis_process, processing.run from a script) are taken from there, as the caller meant.
_workdir = os.environ.pop("SEMISEG_WORKDIR", "")
if _workdir and os.path.isdir(_workdir):
    os.chdir(_workdir)

from engine.cli import main  # noqa: E402  (after the handlers: importing torch takes a while)

sys.exit(main())
