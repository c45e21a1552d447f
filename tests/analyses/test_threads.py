"""How many torch threads a run takes (interp/threads.py) and ``interp run --threads`` / ``$INTERP_THREADS``.

``AUTOMATIC_CASES``, ``BAD_COUNTS`` and ``BAD_ENVIRONMENT`` are counted in docs/reliability.md.
"""

import os
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from analyses.cli import app
from interp import threads

runner = CliRunner()


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A machine of our making: ``set(cpus, running, default)`` fixes the affinity, what /proc/loadavg
    reads (one count per read, the last repeated) and torch's default thread count."""
    loadavg = tmp_path / "loadavg"
    monkeypatch.setattr(threads, "LOADAVG", str(loadavg))
    monkeypatch.delenv(threads.ENV, raising=False)

    def set_machine(cpus: int, running: list[int] | None, default: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cpus)))
        monkeypatch.setattr(threads, "_TORCH_DEFAULT", [default])
        reads = list(running or [])

        def next_read(seconds: float) -> None:  # the count changes between two reads
            if len(reads) > 1:
                reads.pop(0)
                loadavg.write_text(f"1.00 1.00 1.00 {reads[0]}/120 4321\n")

        monkeypatch.setattr(threads, "time", SimpleNamespace(sleep=next_read))
        if reads:
            loadavg.write_text(f"1.00 1.00 1.00 {reads[0]}/120 4321\n")

    return set_machine


# (affinity CPUs, /proc/loadavg running counts read (None: no such file), torch's default, threads chosen, why)
AUTOMATIC_CASES = [
    (2, [1], 2, 2, "quiet: only this process runs"),
    (2, [2], 2, 1, "beside one CPU-bound thread"),
    (2, [5], 2, 1, "beside four: never below 1"),
    (16, [4], 8, 8, "more free CPUs than torch's default: the default"),
    (4, [1], 8, 4, "an affinity mask of 4 CPUs on a bigger machine"),
    (8, [3, 9, 3], 8, 6, "an instant's spike is outvoted by the median of three reads"),
    (8, [0], 8, 8, "a running count that misses this process counts no other"),
]


@pytest.mark.parametrize("cpus, running, default, expected, why", AUTOMATIC_CASES,
                         ids=[case[-1] for case in AUTOMATIC_CASES])
def test_the_automatic_choice_is_the_free_cpus(machine, cpus, running, default, expected, why):
    machine(cpus, running, default)
    assert threads.choose_threads() == expected, why


def test_without_proc_loadavg_the_load_average_counts(machine, monkeypatch):
    machine(4, None, 4)
    monkeypatch.setattr(os, "getloadavg", lambda: (2.4, 1.0, 0.5))
    assert threads.choose_threads() == 2
    monkeypatch.delattr(os, "getloadavg")
    assert threads.choose_threads() == 4, "with no load figure at all, every CPU of the process"


def test_a_request_wins_then_the_environment(machine, monkeypatch):
    machine(2, [9], 2)  # a busy machine: the automatic choice would be 1
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.thread_choice(4) == (4, "--threads")
    assert threads.thread_choice() == (3, "$INTERP_THREADS")
    monkeypatch.setenv(threads.ENV, " ")
    assert threads.thread_choice()[0] == 1, "a blank INTERP_THREADS is unset"


BAD_COUNTS = [0, -1, "x", 2.5, True]
BAD_ENVIRONMENT = ["0", "-1", "x", "2.5"]


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_bad_request_names_the_option(value):
    with pytest.raises(ValueError, match="--threads=.* is not a thread count"):
        threads.choose_threads(value)


@pytest.mark.parametrize("value", BAD_ENVIRONMENT)
def test_a_bad_environment_variable_is_one_line_and_exit_code_2(tmp_path, monkeypatch, value):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(ValueError, match="INTERP_THREADS="):
        threads.choose_threads()
    result = runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path)], env={threads.ENV: value})
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: INTERP_THREADS={value!r} is not a thread count"), lines
    assert not (tmp_path / "run.log").exists(), "a mistake must be caught before the run starts"


@pytest.fixture
def torch_threads(monkeypatch):
    """torch's thread counts put back afterwards; inter-op calls recorded (torch allows one per process)."""
    before = torch.get_num_threads()
    interop: list[int] = []
    monkeypatch.setattr(torch, "set_num_interop_threads", interop.append)
    yield interop
    torch.set_num_threads(before)


def test_apply_threads_sets_torch_and_skips_interop_threads_once_too_late(torch_threads, monkeypatch):
    before = torch.get_num_threads()
    assert threads.apply_threads(1) == before
    assert torch.get_num_threads() == 1 and torch_threads == [1]

    def too_late(n):
        raise RuntimeError("Error: cannot set number of interop threads after parallel work has started")

    monkeypatch.setattr(torch, "set_num_interop_threads", too_late)
    threads.apply_threads(2)
    assert torch.get_num_threads() == 2


def test_apply_threads_limits_the_blas_pools_numpy_and_scikit_learn_use(torch_threads):
    from threadpoolctl import threadpool_info, threadpool_limits

    import sklearn.linear_model  # noqa: F401 (loads scipy's and scikit-learn's BLAS, as the probes do)

    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas, "numpy links a BLAS library"
    with threadpool_limits(limits=2, user_api="blas"):  # two to start from, and put back afterwards
        threads.apply_threads(1)
        assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}


@pytest.mark.parametrize("how, why", [(["--threads", "1"], "(--threads)"), ([], "($INTERP_THREADS)")])
def test_interp_run_applies_the_count_before_the_analysis_and_logs_it(tmp_path, torch_threads, monkeypatch, how, why):
    from analyses import params

    seen = []
    real = params.run

    def recording(config):
        seen.append(torch.get_num_threads())
        return real(config)

    monkeypatch.setattr(params, "run", recording)
    torch.set_num_threads(2)
    before = torch.get_num_threads()
    result = runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path), *how],
                           env={threads.ENV: "1"} if not how else {threads.ENV: ""})
    assert result.exit_code == 0, result.output
    assert seen == [1], f"the analysis ran on {seen} threads"
    assert torch.get_num_threads() == before, "interp run left its count behind in the calling process"
    first = (tmp_path / "run.log").read_text().splitlines()[0]
    assert f"1 torch thread(s) {why}" in first, first


def test_interp_run_says_what_the_automatic_choice_saw(tmp_path, torch_threads, machine):
    machine(2, [2], 2)
    result = runner.invoke(app, ["run", "params", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    first = (tmp_path / "run.log").read_text().splitlines()[0]
    assert "1 torch thread(s) (2 CPU(s) for this process, 1 other runnable thread(s), torch's default 2)" in first
