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
    """Fail early, before any training, if ``path`` cannot be created; and remove the partial files of
    ``path`` that a killed engine left (sweep_partials)."""
    folder = os.path.dirname(os.path.abspath(path))
    ensure_folder(folder)
    if os.path.isdir(path):
        raise OutputError(f"Output {path} is a folder; give a file name.", "output_not_writable")
    sweep_partials(path)


def sweep_partials(path: str) -> list[str]:
    """Remove the partial files of ``path`` (partial_path, with their ``.aux.xml`` or ``-journal``) whose
    process is gone: an engine killed outright (out of memory, SIGKILL) cannot remove its own. Those of a
    process still running are another engine's, at work. Returns what was removed."""
    root, ext = os.path.splitext(os.path.abspath(path))
    folder, stem = os.path.split(root)
    marker = f"{stem}.partial-"
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not name.startswith(marker):
            continue
        pid, _, rest = name[len(marker):].partition(".")
        if not pid.isdigit() or not f".{rest}".startswith(ext or ".tif") or _alive(int(pid)):
            continue
        try:
            os.remove(os.path.join(folder, name))
            removed.append(name)
        except OSError:
            pass  # someone else's to deal with: it never stops a run
    return removed


def _alive(pid: int) -> bool:
    if os.name == "nt":  # signal 0 is Ctrl+C there: assume alive (nothing swept) rather than signal it
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # (no permission to signal it: it exists)
        return True
    return True


def _same_file(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_not_inputs(outputs, inputs) -> None:
    """Refuse, before any work, an output that is one of the command's inputs (or another of its outputs):
    writing it would replace the image, labels or model it is made from. Paths compare as files (links,
    relative and absolute spellings alike); a vector source's ``|layername=...`` options are left off."""
    from engine.vector import source_file  # noqa: PLC0415

    outs = [o for o in outputs if o]
    ins = [source_file(i) for i in inputs if i]
    for k, out in enumerate(outs):
        for src in ins:
            if _same_file(out, src):
                raise OutputError(f"Output {out} is the input {src}; give the output another name, so that "
                                  "the input is not overwritten.", "output_is_input")
        for other in outs[k + 1:]:
            if _same_file(out, other):
                raise OutputError(f"Output {out} is given twice; give each output its own name.",
                                  "output_is_input")


def ensure_folder(folder: str) -> None:
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(f"Output folder {folder} is a file; give the name of a folder (new or existing).",
                          "output_not_writable")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".semiseg-write-test-"):
            pass
    except OSError as e:
        raise OutputError(f"Output folder {folder} is not writable ({e.strerror or e}); choose a folder "
                          "you can write to.", "output_not_writable") from e


def publish(part: str, path: str) -> None:
    """Rename the finished ``part`` to ``path``, replacing any file there in one step. When the system
    refuses (on Windows a file open in another program cannot be replaced) the partial file goes and one
    sentence says why, the old ``path`` left as it was."""
    try:
        os.replace(part, path)
    except OSError as e:
        if os.path.exists(part):
            os.remove(part)
        raise OutputError(f"Output {path} cannot be replaced ({e.strerror or e}); close it where it is open "
                          "(another program, a QGIS layer), or choose another name.",
                          "output_not_writable") from e


def clear_stale(part: str, path: str) -> None:
    """Remove what an earlier file at ``path`` left beside it that would describe the wrong pixels once
    the finished ``part`` replaces it: its ``.aux.xml`` (statistics QGIS computed; unless ``part`` has
    one of its own), and external overviews (``.ovr``, as QGIS's Build Pyramids makes) and masks
    (``.msk``), which QGIS would draw zoomed out instead of the new map. One that cannot be removed is a
    sentence, before anything is replaced."""
    for ext in (".ovr", ".msk", ".aux.xml"):
        old = path + ext
        if not os.path.exists(old) or (ext == ".aux.xml" and os.path.exists(part + ext)):
            continue
        try:
            os.remove(old)
        except OSError as e:
            raise OutputError(f"{old}, left beside {path} by an earlier map, cannot be removed "
                              f"({e.strerror or e}); close it where it is open or remove it, or choose "
                              "another name.", "output_not_writable") from e


def publish_raster(part: str, path: str) -> None:
    """publish() a finished raster and its ``.aux.xml`` (run clear_stale first)."""
    publish(part, path)
    if os.path.exists(part + ".aux.xml"):
        publish(part + ".aux.xml", path + ".aux.xml")


def write_json(path: str, obj) -> None:
    """``obj`` as indented JSON at ``path``, written under a partial name and renamed when complete."""
    tmp = partial_path(path)
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
        publish(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
