"""Output files: checked before work starts, written to a partial name and renamed when complete."""

from __future__ import annotations

import json
import os
import tempfile

from engine.errors import OutputError


def partial_path(path: str) -> str:
    """Where ``path`` is written until complete; the process id keeps two runs that write the same file
    (two engines given one output folder, two QGIS sessions on one image's encoder cache) apart."""
    root, ext = os.path.splitext(path)
    return f"{root}.partial-{os.getpid()}{ext or '.tif'}"


def check_writable(path: str) -> None:
    """Fail early, before any training, if ``path`` cannot be created."""
    folder = os.path.dirname(os.path.abspath(path))
    ensure_folder(folder)
    if os.path.isdir(path):
        raise OutputError(f"Output {path} is a folder; give a file name.", "output_not_writable")


def ensure_folder(folder: str) -> None:
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".semiseg-write-test-"):
            pass
    except OSError as e:
        raise OutputError(f"Output folder {folder} is not writable ({e.strerror or e}); choose a folder "
                          "you can write to.", "output_not_writable") from e


def write_json(path: str, obj) -> None:
    """``obj`` as indented JSON at ``path``, written under a partial name and renamed when complete."""
    tmp = partial_path(path)
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)
