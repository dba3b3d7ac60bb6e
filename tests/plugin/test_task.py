"""The QgsTask around the engine: progress, events on the main thread, cancel from the task manager."""

from __future__ import annotations

import threading

from plugin_helpers import plugin_module, wait_until
from qgis.core import QgsApplication

task_module = plugin_module("ui.task")
jobs = plugin_module("ui.jobs")


def start(task):
    done = []
    task.completed.connect(done.append)
    QgsApplication.taskManager().addTask(task)
    return done


def make_task(fake_python, scenario, tmp_path, **kwargs):
    job = jobs.TrainJob(image="image.tif", labels="labels.tif", out_dir=str(tmp_path / "run"))
    return task_module.EngineTask(job, fake_python(scenario), **kwargs)


def test_progress_maps_stages_onto_one_bar():
    progress = task_module.overall_progress
    assert progress({"event": "metric"}) is None
    assert progress({"event": "progress", "stage": "supervised", "step": 50, "total_steps": 100}) == 45.0
    assert progress({"event": "progress", "stage": "predict", "step": 1, "total_steps": 2}) == 95.0
    assert progress({"event": "progress", "stage": "predict", "step": 1, "total_steps": 2}, True) == 50.0


def test_an_event_with_no_numbers_for_progress_is_passed_on_not_a_failure(fake_python, tmp_path):
    assert task_module.overall_progress({"event": "progress", "step": "n/a", "total_steps": 10}) is None
    assert task_module.overall_progress({"event": "progress", "step": 1, "total_steps": "ten"}) is None
    task = make_task(fake_python, "bad_progress", tmp_path)
    progress = []
    task.progressChanged.connect(progress.append)
    done = start(task)
    wait_until(lambda: done, what="the task to finish")
    assert done[0].ok and 45.0 in progress  # the good event still moves the bar


def test_task_reports_progress_and_events_on_the_main_thread(fake_python, tmp_path):
    task = make_task(fake_python, "ok", tmp_path)
    seen, threads = [], set()

    def on_event(event):
        seen.append(event["event"])
        threads.add(threading.current_thread() is threading.main_thread())

    task.event_received.connect(on_event)
    progress = []
    task.progressChanged.connect(progress.append)
    done = start(task)
    wait_until(lambda: done, what="the task to finish")
    assert done[0].ok
    assert seen[-1] == "done" and seen.count("progress") == 4
    assert threads == {True}
    assert progress[:4] == [22.5, 45.0, 67.5, 90.0]  # training is 90 % of the bar


def test_cancel_from_the_task_manager_stops_the_child(fake_python, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    task = make_task(fake_python, "slow", tmp_path, cleanup_dir=str(run_dir))
    events = []
    task.event_received.connect(events.append)
    done = start(task)
    wait_until(lambda: len(events) > 3, what="the child to start")
    QgsApplication.taskManager().cancelAll()
    wait_until(lambda: done, timeout_s=10, what="the cancelled task to end")
    assert done[0].cancelled and not done[0].ok
    assert not run_dir.exists(), "a cancelled run leaves no folder behind"


def test_engine_error_is_a_result_not_an_exception(fake_python, tmp_path):
    task = make_task(fake_python, "user_error", tmp_path)
    done = start(task)
    wait_until(lambda: done, what="the task to finish")
    assert not done[0].ok
    assert "do not overlap" in done[0].user_message()


def test_train_job_maps_onto_engine_flags():
    job = jobs.TrainJob(image="i.tif", labels="l.gpkg", out_dir="o", label_field="class", preset="fast",
                        steps=20, tile_size=64)
    args = job.engine_args()
    assert args[:7] == ["run", "--image", "i.tif", "--labels", "l.gpkg", "--out-dir", "o"]
    assert args[args.index("--label-field") + 1] == "class"
    assert args[args.index("--steps") + 1] == "20" and "--seed" not in args
    predict = jobs.PredictJob(model="m.semiseg", image="i.tif", out_dir="o").engine_args()
    assert predict[predict.index("--out") + 1].endswith("prediction.tif")
    # smoothing stays the engine's default unless turned off
    assert "--smooth" not in args and "--smooth" not in predict
    plain = jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o", smooth=False).engine_args()
    assert plain[plain.index("--smooth") + 1] == "off"
    plain = jobs.PredictJob(model="m.semiseg", image="i.tif", out_dir="o", smooth=False).engine_args()
    assert plain[plain.index("--smooth") + 1] == "off"


def test_area_jobs_pass_bounds_the_engine_parses_back_exactly():
    from engine.cli import build_parser

    area = (731745.123456789, -2821995.5, 750945.0, -2802795.25)  # negative numbers are values, not flags
    for job in (jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o", area=area),
                jobs.PredictJob(model="m.semiseg", image="i.tif", out_dir="o", area=area)):
        args = job.engine_args()
        assert tuple(build_parser().parse_args(args).area) == area
        assert "visible area" in job.description
    for job in (jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o"),
                jobs.PredictJob(model="m.semiseg", image="i.tif", out_dir="o")):
        assert "--area" not in job.engine_args() and build_parser().parse_args(job.engine_args()).area is None


def test_a_warm_start_job_continues_from_the_model_instead_of_the_encoder_cache():
    from engine.cli import build_parser

    job = jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o", method="inpaint",
                        encoder_cache="enc.semienc", warm_start="last/model.semiseg")
    parsed = build_parser().parse_args(job.engine_args())
    assert parsed.warm_start == "last/model.semiseg" and parsed.encoder_cache is None
    assert "--warm-start" not in jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o").engine_args()


def test_inpaint_jobs_reuse_the_images_encoder(tmp_path):
    cache = jobs.encoder_cache_path(tmp_path, str(tmp_path / "a" / "image.tif"), "fast")
    assert cache.parent == tmp_path / "semiseg_runs" / "encoders" and cache.name.startswith("image-")
    assert cache != jobs.encoder_cache_path(tmp_path, str(tmp_path / "b" / "image.tif"), "fast")
    assert cache != jobs.encoder_cache_path(tmp_path, str(tmp_path / "a" / "image.tif"), "balanced")
    for method, passed in (("inpaint", True), ("inpaint+icnet", True), ("icnet", False),
                           ("supervised", False)):
        args = jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o", method=method,
                             encoder_cache=str(cache)).engine_args()
        assert ("--encoder-cache" in args) == passed, method
        if passed:
            assert args[args.index("--encoder-cache") + 1] == str(cache)


def test_run_folders_are_fresh_and_kept(tmp_path):
    first = jobs.new_run_folder(tmp_path, "image")
    second = jobs.new_run_folder(tmp_path, "image")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent == tmp_path / "semiseg_runs"


def test_nodata_jobs_pass_values_the_engine_parses_back_or_none():
    from engine.cli import _nodata_list, _plain_negative_numbers, build_parser

    for job in (jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o", nodata=(0.0, -3.4e38)),
                jobs.PredictJob(model="m.semiseg", image="i.tif", out_dir="o", nodata=(0.0, -3.4e38))):
        argv = _plain_negative_numbers(job.engine_args())  # as the engine's main() reads its arguments
        assert _nodata_list(build_parser().parse_args(argv)) == [0.0, -3.4e38]
    for job in (jobs.TrainJob(image="i.tif", labels="l.tif", out_dir="o"),
                jobs.PredictJob(model="m.semiseg", image="i.tif", out_dir="o")):
        assert _nodata_list(build_parser().parse_args(job.engine_args())) == []  # told: none
