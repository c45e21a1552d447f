"""``interp run`` and the sweeps: --workers/--backend reach them, and a stopped run resumes them."""

import json

from typer.testing import CliRunner

from analyses.cli import app

runner = CliRunner()


def _figures(folder):
    return json.loads((folder / "context" / "results.json").read_text())["headline"]


def test_a_stopped_run_resumes_its_finished_sweep_tasks_and_equals_a_run_on_two_workers(tmp_path, monkeypatch):
    import interp.probing
    from analyses.context import measures

    stopped, workers = tmp_path / "stopped", tmp_path / "workers"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # stop the run after its sense probes, as a Ctrl-C would
        patch.setattr(measures, "sense_cosines", interrupt)
        assert runner.invoke(app, ["run", "context", "--quick", "--backend", "serial", "--out", str(stopped)]
                             ).exit_code == 130
    kept = stopped / ".sweeps" / "context"
    assert len(list((kept / "linear_probes").glob("*.json"))) == 3 * 7  # three words, seven layers each
    fits = []
    real = interp.probing.cross_val_score

    def counted(*args, **kwargs):  # the probes' work (each hook: the real task and the control task)
        fits.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(interp.probing, "cross_val_score", counted)
    result = runner.invoke(app, ["run", "context", "--quick", "--backend", "serial", "--out", str(stopped)])
    assert result.exit_code == 0, result.output  # serial, so that this process sees the probes run
    assert len(fits) == 2 * 3  # only the digit probes (three hooks): the sense probes were read back
    assert not (stopped / ".sweeps").exists()  # the report is written: nothing is left to resume
    monkeypatch.undo()
    assert runner.invoke(app, ["run", "context", "--quick", "--workers", "2", "--out", str(workers)]).exit_code == 0
    assert "sweeps on processes (2 workers)" in (workers / "run.log").read_text()
    assert _figures(stopped) == _figures(workers)
    assert len(_figures(stopped)) > 10


def test_sweeps_kept_by_a_run_of_another_config_are_not_reused(tmp_path):
    kept = tmp_path / ".sweeps" / "context"
    (kept / "linear_probes").mkdir(parents=True)
    (kept / "config.json").write_text('{"seed": 99}')
    (kept / "linear_probes" / "stale.json").write_text("{}")
    assert runner.invoke(app, ["run", "context", "--quick", "--out", str(tmp_path)]).exit_code == 0
    assert not (tmp_path / ".sweeps").exists()


def test_the_default_is_a_worker_per_thread_and_one_thread_is_serial(tmp_path):
    assert runner.invoke(app, ["run", "params", "--quick", "--threads", "2", "--out", str(tmp_path)]).exit_code == 0
    assert "2 torch thread(s) (--threads); sweeps on processes (2 workers)" in (tmp_path / "run.log").read_text()
    assert runner.invoke(app, ["run", "params", "--quick", "--threads", "1", "--out", str(tmp_path)]).exit_code == 0
    last = (tmp_path / "run.log").read_text().splitlines()[-4:]
    assert any("1 torch thread(s) (--threads); log:" in line for line in last), last


def test_a_run_on_ray_writes_the_serial_runs_figures(tmp_path, ray_cluster):
    serial, on_ray = tmp_path / "serial", tmp_path / "ray"
    assert runner.invoke(app, ["run", "context", "--quick", "--backend", "serial", "--out", str(serial)]).exit_code == 0
    result = runner.invoke(app, ["run", "context", "--quick", "--backend", "ray", "--workers", "2", "--out", str(on_ray)])
    assert result.exit_code == 0, result.output
    assert "sweeps on ray (2 workers)" in (on_ray / "run.log").read_text()
    assert _figures(serial) == _figures(on_ray)
