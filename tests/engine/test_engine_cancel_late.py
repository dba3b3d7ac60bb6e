"""A cancel that comes late — after the last window, while overviews are built, while a run predicts —
leaves the earlier files as they were; a killed engine's partial files are swept by the next one."""

from __future__ import annotations

import os

import pytest
import torch


class CancelAt:
    """A Reporter that cancels ``token`` when the stage ``stage`` starts (as a SIGTERM then would)."""

    def __init__(self, stage: str, token):
        from engine.progress import Reporter

        self.reporter, self.stage_name, self.token = Reporter("none"), stage, token

    def __getattr__(self, name):
        return getattr(self.reporter, name)

    def stage(self, name, *args, **kwargs):
        if name == self.stage_name:
            self.token.cancelled = True
        return self.reporter.stage(name, *args, **kwargs)


def test_a_cancel_while_overviews_are_built_keeps_the_earlier_map(learned, tmp_path):
    from engine import modelfile
    from engine.errors import Cancelled
    from engine.predict import predict_file
    from engine.runtime import CancelToken
    from engine.synthetic import write_scene

    (tmp_path / "scene").mkdir()
    image = write_scene(str(tmp_path / "scene"), 300, 300, bands=4, classes=3, seed=1)["image"]  # >256 px
    out = tmp_path / "map.tif"
    out.write_bytes(b"the earlier map")
    token = CancelToken()
    with pytest.raises(Cancelled):
        predict_file(modelfile.load(str(learned["model"])), image, str(out), None, torch.device("cpu"),
                     CancelAt("overviews", token), cancel=token, tta="off", smooth=False)
    assert out.read_bytes() == b"the earlier map"
    assert sorted(os.listdir(tmp_path)) == ["map.tif", "scene"]


@pytest.mark.parametrize("earlier", [True, False])
def test_a_run_cancelled_while_predicting_never_leaves_a_model_beside_another_runs_map(learned, tmp_path,
                                                                                      earlier):
    """Over an earlier run's folder nothing changes; in a fresh folder the trained model is kept, as
    the message says."""
    from engine.config import make_config
    from engine.errors import Cancelled
    from engine.pipeline import run
    from engine.runtime import CancelToken

    out = tmp_path / "run"
    if earlier:
        out.mkdir()
        for name in ("model.semiseg", "prediction.tif", "metrics.json"):
            (out / name).write_bytes(f"earlier {name}".encode())
    token = CancelToken()
    cfg = make_config("fast", seed=0, steps=3, tile_size=32, batch_size=2)
    with pytest.raises(Cancelled) as raised:
        run(str(learned["image"]), str(learned["labels"]), str(out), cfg, torch.device("cpu"),
            CancelAt("predict", token), cancel=token)
    if earlier:
        assert "earlier files" in str(raised.value)
        assert {n: (out / n).read_bytes() for n in os.listdir(out)} == {
            n: f"earlier {n}".encode() for n in ("model.semiseg", "prediction.tif", "metrics.json")}
    else:
        assert "the trained model is kept" in str(raised.value)
        assert sorted(os.listdir(out)) == ["model.semiseg"]


def test_partial_files_of_a_killed_engine_are_swept_and_a_running_ones_kept(tmp_path):
    from engine.io_out import check_writable

    dead = 2 ** 22 + 12345  # above the usual pid_max: no such process
    mine = f"map.partial-{os.getpid()}.tif"
    for name in (f"map.partial-{dead}.tif", f"map.partial-{dead}.tif.aux.xml", mine,
                 f"map.partial-{dead}.gpkg", "map.partial-x.tif"):
        (tmp_path / name).write_text("x")
    check_writable(str(tmp_path / "map.tif"))
    assert sorted(os.listdir(tmp_path)) == sorted([mine, f"map.partial-{dead}.gpkg", "map.partial-x.tif"])


class SignalAt(CancelAt):
    """A Reporter that delivers a SIGTERM to ``token`` (its handler, as the signal would) when ``stage``
    starts, and records the stages that start."""

    def __init__(self, stage: str, token):
        super().__init__(stage, token)
        self.seen: list[str] = []

    def stage(self, name, *args, **kwargs):
        self.seen.append(name)
        if name == self.stage_name:
            import signal

            self.token._handler(signal.SIGTERM, None)
        return self.reporter.stage(name, *args, **kwargs)


def test_a_cancel_while_reading_for_training_is_heard_at_once(tmp_path):
    """Reading a large or slowly decoded raster for its statistics, labels and training blocks has no loop
    that checks for a cancel: one that comes then stops the engine there, not when training starts."""
    from engine.config import make_config
    from engine.errors import Cancelled
    from engine.pipeline import run
    from engine.runtime import CancelToken
    from engine.synthetic import write_scene

    scene = write_scene(str(tmp_path), 64, 64, bands=3, classes=2, seed=0)
    token = CancelToken()
    reporter = SignalAt("prepare", token)
    with pytest.raises(Cancelled):
        run(scene["image"], scene["labels"], str(tmp_path / "run"), make_config("fast", seed=0, steps=2),
            torch.device("cpu"), reporter, cancel=token)
    assert reporter.seen == ["prepare"]  # no training stage began
    assert not (tmp_path / "run").exists()


def test_a_signal_outside_promptly_only_marks_the_token():
    import signal

    from engine.errors import Cancelled
    from engine.runtime import CancelToken

    token = CancelToken()
    token._handler(signal.SIGTERM, None)  # e.g. while a training step runs: the next check() unwinds
    assert token.cancelled
    with pytest.raises(Cancelled):
        token.check()
