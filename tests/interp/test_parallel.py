"""interp.parallel: the three backends agree bit for bit, dead workers are replaced, sweeps resume."""

import math
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch

from interp.parallel import SweepError, check_backend, map_tasks, sweep_settings
from interp.parallel.demo import matmul_chain
from interp.parallel.store import TaskStore, fingerprint
from tests.parallel_tasks import counted, die_once, raises_on


def test_the_three_backends_give_the_same_tensors(ray_cluster):
    shared = torch.randn(64, 64) / 8
    tasks = [{"steps": 20, "seed": s} for s in (0, 1, 2, 3, 10**12)]
    serial = map_tasks(matmul_chain, tasks, shared=shared)
    processes = map_tasks(matmul_chain, tasks, shared=shared, backend="processes", workers=2)
    ray = map_tasks(matmul_chain, tasks, shared=shared, backend="ray", workers=2)
    assert all(torch.equal(a, b) and torch.equal(a, c) for a, b, c in zip(serial, processes, ray))
    assert len({float(x) for x in serial}) == len(tasks)  # the seeds matter: the check can fail


def test_serial_runs_tasks_on_the_workers_thread_count_and_gives_the_callers_back():
    before = torch.get_num_threads()
    seen = map_tasks(_threads, [{"seed": 0}], threads=1)
    assert seen == [1] and torch.get_num_threads() == before


def _threads(task):
    return torch.get_num_threads()


@pytest.mark.parametrize("backend", ["processes", "ray"])
def test_a_killed_worker_has_its_task_run_again(backend, tmp_path, request):
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    shared = torch.arange(4.0)
    tasks = [{"i": i, "dir": str(tmp_path), "die": i in (1, 4), "seed": 100 + i} for i in range(6)]
    reference = map_tasks(die_once, [dict(t, die=False) for t in tasks], shared=shared)
    results = map_tasks(die_once, tasks, shared=shared, backend=backend, workers=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["died-1", "died-4"]  # two workers did die
    assert all(torch.equal(a, b) for a, b in zip(results, reference))


def test_a_worker_that_keeps_dying_fails_its_task_with_its_inputs(tmp_path):
    tasks = [{"i": i, "dir": str(tmp_path / str(i)), "die": i == 2, "seed": i} for i in range(3)]
    for task in tasks:
        (tmp_path / str(task["i"])).mkdir()
    with pytest.raises(SweepError, match=r'(?s)1 of 3 task\(s\).*task 2 \{"die":true') as caught:
        map_tasks(die_once, tasks, shared=torch.ones(4), backend="processes", workers=2, retries=0)
    assert list(caught.value.failures) == [2] and "its worker died once (last exit code -9)" in str(caught.value)


@pytest.mark.parametrize("backend", ["serial", "processes", "ray"])
def test_a_task_that_raises_is_reported_with_its_inputs_and_the_rest_are_kept(backend, tmp_path, request):
    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    tasks = [{"i": i, "bad": i == 1, "seed": i} for i in range(4)]
    with pytest.raises(SweepError) as caught:
        map_tasks(raises_on, tasks, backend=backend, workers=2, store=tmp_path, name="s")
    message = str(caught.value)
    assert '1 of 4 task(s)' in message and 'task 1 {"bad":true,"i":1,"seed":1}' in message
    assert "ArithmeticError: task 1 cannot be done" in message
    assert len(TaskStore(tmp_path, "s").keys()) == 3  # the three that did not raise


def test_an_interrupted_sweep_resumes_without_recomputing_finished_tasks(tmp_path):
    script = textwrap.dedent(f"""
        import torch
        from interp.parallel import map_tasks
        from tests.parallel_tasks import counted
        if __name__ == "__main__":
            tasks = [{{"i": i, "dir": {str(tmp_path)!r}, "stop_at": 3, "seed": i}} for i in range(6)]
            map_tasks(counted, tasks, shared=torch.tensor(2.0), store={str(tmp_path / "store")!r}, name="s")
    """)
    stopped = subprocess.run([sys.executable, "-c", script], cwd=str(_root()), capture_output=True, text=True)
    assert stopped.returncode == -9, stopped.stderr  # killed half-way, as a Ctrl-C or a time limit would
    assert (tmp_path / "ran").read_text().split() == ["0", "1", "2", "3"]
    tasks = [{"i": i, "dir": str(tmp_path), "stop_at": 3, "seed": i} for i in range(6)]
    resumed = map_tasks(counted, tasks, shared=torch.tensor(2.0), store=tmp_path / "store", name="s")
    assert (tmp_path / "ran").read_text().split() == ["0", "1", "2", "3", "3", "4", "5"]  # 0-2 were not rerun
    fresh = map_tasks(counted, tasks, shared=torch.tensor(2.0))
    assert all(torch.equal(a, b) for a, b in zip(resumed, fresh))


def _root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]


def test_the_store_gives_back_every_kind_of_result_bit_for_bit(tmp_path):
    frame = pd.DataFrame({"x": np.array([0.1, np.nan, -np.inf], dtype=np.float32), "n": [1, 2, 3],
                          "label": ["a", "b", None], "flag": [True, False, True]})
    result = {"frame": frame, "t": torch.randn(2, 3, dtype=torch.float64), "i": torch.arange(3),
              "arr": np.array(["x", "yz"]), "nested": [1, (2.5, "s"), {"$odd": math.inf}], "none": None,
              "np": np.float32(0.3), "nan": math.nan}
    store = TaskStore(tmp_path, "kinds")
    store.put("k", result)
    back = store.get("k")
    pd.testing.assert_frame_equal(back["frame"], frame)
    assert back["t"].dtype == torch.float64 and torch.equal(back["t"], result["t"]) and torch.equal(back["i"], result["i"])
    assert back["arr"].tolist() == ["x", "yz"] and back["nested"] == [1, (2.5, "s"), {"$odd": math.inf}]
    assert back["none"] is None and back["np"] == np.float32(0.3) and back["np"].dtype == np.float32
    assert math.isnan(back["nan"])
    assert not list(tmp_path.rglob("*.partial"))


@pytest.mark.parametrize("result, match", [(object(), "cannot store a object"),
                                           (pd.DataFrame({"a": [1]}, index=[5]), "default index"),
                                           (torch.ones(1, dtype=torch.bfloat16), "bfloat16")])
def test_the_store_refuses_what_it_cannot_give_back(tmp_path, result, match):
    with pytest.raises(TypeError, match=match):
        TaskStore(tmp_path, "bad").put("k", result)


@pytest.mark.parametrize("tasks, match", [([{"n": 1}], "must carry its seed"), ([{"seed": -1}], "must carry its seed"),
                                          ([{"seed": True}], "must carry its seed"),
                                          ([{"seed": 1}, {"seed": 1}], "same inputs"),
                                          ([{"seed": 1, "f": object()}], "must be made of numbers")])
def test_bad_tasks_are_refused_before_anything_runs(tasks, match):
    with pytest.raises((ValueError, TypeError), match=match):
        map_tasks(raises_on, tasks)


def test_bad_backend_settings_are_one_line_errors(monkeypatch):
    with pytest.raises(ValueError, match="unknown backend 'dask'; use one of serial, processes, ray"):
        check_backend("dask")
    with pytest.raises(ValueError, match="needs --backend ray"):
        check_backend("processes", "127.0.0.1:6379")
    with pytest.raises(ValueError, match="cannot reach a Ray cluster at 127.0.0.1:9"):
        check_backend("ray", "127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(ValueError, match="not host:port"):
        check_backend("ray", "nowhere")
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(ValueError, match=r"Ray is not installed; install it with: pip install 'ray==2.60.0'"):
        check_backend("ray")


def test_sweep_settings_choose_the_backend_of_calls_that_do_not(tmp_path):
    tasks = [{"i": i, "seed": i} for i in range(3)]
    with sweep_settings(backend="processes", workers=2, store=tmp_path):
        assert map_tasks(raises_on, tasks, name="inside") == [0, 1, 2]
    assert len(TaskStore(tmp_path, "inside").keys()) == 3
    with pytest.raises(ValueError, match="unknown backend"):
        with sweep_settings(backend="nope"):
            pass


def test_sweeps_with_the_same_tasks_but_other_inputs_do_not_share_stored_results(tmp_path):
    tasks = [{"n": n, "seed": n} for n in range(3)]
    from interp.parallel.demo import noisy_sum

    twice = map_tasks(noisy_sum, tasks, shared=2.0, store=tmp_path, name="same name")
    thrice = map_tasks(noisy_sum, tasks, shared=3.0, store=tmp_path, name="same name")
    assert thrice == [x * 1.5 for x in twice] and thrice == map_tasks(noisy_sum, tasks, shared=3.0)
    weights = torch.nn.Linear(2, 2)
    before = fingerprint(weights)
    with torch.no_grad():
        weights.weight[0, 0] += 1e-7
    assert fingerprint(weights) != before and fingerprint(torch.ones(3)) != fingerprint(torch.ones(3, dtype=torch.float64))


def test_workers_stay_up_between_sweeps_and_take_each_sweeps_own_shared_inputs():
    from interp.parallel.demo import noisy_sum

    tasks = [{"n": n, "seed": n} for n in range(4)]
    first = map_tasks(noisy_sum, tasks, shared=1.0, backend="processes", workers=2)
    second = map_tasks(noisy_sum, tasks, shared=-1.0, backend="processes", workers=2)  # the same workers
    assert second == [-x for x in first] and first == map_tasks(noisy_sum, tasks, shared=1.0)


def test_a_process_on_one_ray_cluster_refuses_to_join_another(ray_cluster):
    from interp.parallel.on_ray import connect

    import ray

    here = ray.get_runtime_context().gcs_address
    connect(here, workers=2)  # the same cluster: fine
    with pytest.raises(ValueError, match=f"already runs on the Ray cluster at {here}; it cannot also join"):
        connect("10.0.0.5:6379", workers=2)


def test_shared_inputs_too_big_for_dev_shm_run_serially_with_the_same_results(monkeypatch, caplog):
    import logging
    import shutil

    from interp.parallel import pool

    shared = torch.randn(256, 256)  # 256 KiB of tensors
    tasks = [{"steps": 3, "seed": s} for s in range(3)]
    room = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda path: room(path)._replace(free=64 * 1024)
                        if path == pool.SHM else room(path))  # as in a container with a small /dev/shm
    monkeypatch.setattr(pool, "run_on_processes", lambda *a, **k: pytest.fail("a sweep that cannot fit ran on workers"))
    with caplog.at_level(logging.INFO, logger="interp"):
        small = map_tasks(matmul_chain, tasks, shared=shared, backend="processes", workers=2)
    assert "running this sweep serially: the shared inputs need 0.2 MiB of shared memory and /dev/shm has 0.1 MiB free" in caplog.text
    assert all(torch.equal(a, b) for a, b in zip(small, map_tasks(matmul_chain, tasks, shared=shared)))
    assert pool.tensor_bytes({"m": torch.nn.Linear(4, 2), "t": [torch.ones(3, dtype=torch.float64)]}) == 40 + 24


def test_the_default_worker_count_is_the_cpus_the_memory_available_allows(monkeypatch):
    from interp.parallel import default_workers

    pages = {"SC_PAGE_SIZE": 4096, "SC_AVPHYS_PAGES": 3 * 2**30 // 4096}  # 3 GiB available
    monkeypatch.setattr("os.sysconf", lambda name: pages[name])
    assert default_workers(2) == 2 and default_workers(16) == 3
    pages["SC_AVPHYS_PAGES"] = 2**29 // 4096  # half a GiB: one worker, never none
    assert default_workers(16) == 1
