"""What the dock needs to pick a map up where it was left when the project is saved, closed and opened
again (QGIS restarted, days later): the record of each map, kept in the project with its layer.

A map's prediction layer carries its record as a custom property (JSON), which QGIS saves in the project:
the image and labels it came from, the method, preset and model, the validation scores, the class areas
and the least sure places. A project saved before maps were recorded still has its layers and their run
folders; the record is then rebuilt from the folder's ``metrics.json`` and ``model.semiseg``. An accuracy
sample is the sample of the map beside which it was written; its last assessment is the report named on
its layer, shown again only while its error matrix is that of the sample's checks as they are now.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from qgis.core import QgsMapLayer, QgsProject, QgsVectorLayer

from .layer_files import layer_file
from .result_layers import GROUP_NAME, ROLE_PROPERTY, SOURCE_PROPERTY
from .sample_check import not_checked

RECORD_PROPERTY = "semiseg/record"  # on a prediction layer: its map's record (JSON)
REPORT_PROPERTY = "semiseg/accuracy"  # on a sample layer: the JSON report of its last assessment


def keep_record(layer: QgsMapLayer, record: dict) -> None:
    """Store ``record`` with the prediction ``layer`` (saved with the project); stamped with the time."""
    layer.setCustomProperty(RECORD_PROPERTY, json.dumps({**record, "made": time.time()}))


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def record_of(layer: QgsMapLayer) -> dict | None:
    """The record of a prediction layer whose file is still there, with ``prediction`` set to that file
    (QGIS may have found it at a new place: a moved project folder) and a ``model`` that exists or "";
    None for any other layer."""
    prediction = layer_file(layer)
    if layer.customProperty(ROLE_PROPERTY) != "prediction" or prediction is None:
        return None
    folder = Path(prediction).parent
    try:
        record = json.loads(layer.customProperty(RECORD_PROPERTY) or "null")
    except ValueError:
        record = None
    if not isinstance(record, dict):  # a project saved before records: what its run folder says
        metrics = _read_json(folder / "metrics.json")
        record = {"image": layer.customProperty(SOURCE_PROPERTY) or "", "metrics": metrics or None,
                  "class_areas": metrics.get("class_areas"), "spots": metrics.get("spots") or [],
                  "made": Path(prediction).stat().st_mtime}
    record["prediction"] = prediction
    _follow_move(record, folder)
    model = record.get("model") or ""
    if not Path(model).is_file():  # moved with its run folder, or a run of an older project
        model = str(folder / "model.semiseg") if (folder / "model.semiseg").is_file() else ""
    record["model"] = model
    record["title"] = record.get("title") or layer.name().removesuffix(" prediction")
    return record


def _follow_move(record: dict, folder: Path) -> None:
    """Where the map's run folder was moved (with the project folder, to another disk or machine), the
    image, labels and model named in ``record`` that are no longer where they were are looked for
    where the move took them: the part of their path the two run folders share is replaced. The
    run folder it was made in is ``record["folder"]``, or for older records that of its model."""
    model = record.get("model") or ""
    made_in = record.get("folder") or (str(Path(model).parent) if Path(model).name == "model.semiseg" else "")
    roots = moved_roots(Path(made_in), folder) if made_in else None
    if roots is None:
        return
    old_root, new_root = roots
    for key in ("image", "labels", "model"):
        value = record.get(key) or ""
        path, sep, rest = value.partition("|")  # vector labels: FILE|layername=...
        if not path or Path(path).exists():
            continue
        try:
            moved = new_root / Path(path).relative_to(old_root)
        except ValueError:  # not under the moved folder: left as it is
            continue
        if moved.exists():
            record[key] = str(moved) + sep + rest


def moved_roots(old: Path, new: Path) -> tuple[Path, Path] | None:
    """(old root, new root) of a folder moved from ``old`` to ``new``: the two paths less the trailing
    parts they share (A/runs/x and B/runs/x: A and B); None when nothing moved or nothing is shared."""
    a, b = old.parts, new.parts
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    if n == 0 or a == b:
        return None
    return Path(*a[:len(a) - n]), Path(*b[:len(b) - n])


def map_records(project: QgsProject) -> list[tuple[QgsMapLayer, dict]]:
    """Every map's (prediction layer, record) in ``project``, the newest first."""
    found = [(layer, record) for layer in project.mapLayers().values()
             if (record := record_of(layer)) is not None]
    return sorted(found, key=lambda pair: -float(pair[1].get("made") or 0))


def samples_of(project: QgsProject, prediction: str) -> list[QgsVectorLayer]:
    """The accuracy samples of the map ``prediction`` in ``project`` (each is written beside its map),
    the one highest in the layer tree (the newest, unless moved) first."""
    folder = Path(prediction).resolve().parent
    group = project.layerTreeRoot().findGroup(GROUP_NAME)
    order = [node.layerId() for node in (group.findLayers() if group is not None else [])]
    samples = [layer for layer in project.mapLayers().values()
               if layer.customProperty(ROLE_PROPERTY) == "sample" and layer_file(layer)
               and Path(layer_file(layer)).resolve().parent == folder]
    return sorted(samples, key=lambda layer: order.index(layer.id()) if layer.id() in order else len(order))


def last_report(sample: QgsVectorLayer) -> dict | None:
    """The report of the sample's last assessment while it still speaks of the sample's checks as they
    are now (the same count of points per map class and reference class), else None: checks changed
    since then need a new assessment."""
    path = sample.customProperty(REPORT_PROPERTY)
    report = _read_json(Path(path)) if path else {}
    matrix = report.get("confusion_map_by_reference")
    if not report.get("classes") or not isinstance(matrix, list):
        return None
    k = len(matrix)
    counts = [[0] * k for _ in range(k)]
    for feature in sample.getFeatures():
        mapped, reference = feature["map_class"], feature["reference"]
        if not_checked(reference):
            continue
        try:
            mapped, reference = int(mapped), int(reference)
        except (TypeError, ValueError):
            continue
        if 1 <= mapped <= k and 1 <= reference <= k:
            counts[mapped - 1][reference - 1] += 1
    return report if counts == matrix else None
