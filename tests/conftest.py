"""Session set-up shared by engine and plugin tests.

The repo root goes on ``sys.path`` so ``import engine`` works from any test file, and Qt is told to
render offscreen before pytest-qgis creates the ``QgsApplication`` (tests never need a display).
"""

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
