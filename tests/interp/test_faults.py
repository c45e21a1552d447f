"""Faults injected into real processes: kill -9 at every step of a report write, Ctrl-C in
``interp run``, a file-size limit, a read-only output folder. Afterwards the old report is
intact or the new one complete, never half of one (or none).

``KILL_POINTS_AT_LEAST``, ``SIGNAL_CASES``, ``FILE_SIZE_LIMITS`` and ``READ_ONLY_CASES`` are counted
in docs/reliability.md.
"""

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KILL_POINTS_AT_LEAST = 20  # lines run by Report.save and the folder swap (24 on Python 3.11)

# A helper process writes report A, then for k = 1, 2, ... forks a child that writes report B
# and stops at the k-th line it runs in Report.save and interp/atomic_dir.py; the helper
# kills it with SIGKILL there, records what is on disk, restores A and goes on, until a
# child finishes without reaching its line.
KILL_EVERY_LINE = textwrap.dedent('''
    import json, os, signal, sys, time
    from pathlib import Path
    import pandas as pd
    import interp.atomic_dir, interp.report
    from interp.report import Report

    out = Path(sys.argv[1])
    # Report.save and whatever moves its folder into place (before interp/atomic_dir.py, a
    # helper in report.py did)
    TRACED = {(interp.report.__file__, "save"), (interp.report.__file__, "_swap_into_place")}

    def traced(code):
        return (code.co_filename, code.co_name) in TRACED or code.co_filename == interp.atomic_dir.__file__

    def make(version):
        report = Report("demo", f"Version {version}", config={"version": version})
        report.section("Numbers", f"Text of {version}.").table(pd.DataFrame({"v": [version] * 3}), "numbers")
        report.headline("version", version)
        report.elapsed_seconds, report.date = 1.0, "2026-01-01"
        return report

    def snapshot(folder):
        if not folder.is_dir():
            return None
        return {str(p.relative_to(folder)): p.read_bytes().hex() for p in sorted(folder.rglob("*")) if p.is_file()}

    make("A").save(out)
    a = snapshot(out / "demo")
    states, k = [], 1
    while True:
        marker = out.parent / f"reached-{k}"
        pid = os.fork()
        if pid == 0:
            count = [0]
            def local(frame, event, arg):
                if event == "line":
                    count[0] += 1
                    if count[0] == k:
                        marker.touch()
                        time.sleep(600)
                return local
            def tracer(frame, event, arg):
                return local if traced(frame.f_code) else None
            sys.settrace(tracer)
            make("B").save(out)
            sys.settrace(None)
            os._exit(0)
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if marker.exists():
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.002)
        states.append({"line": k, "killed": not done, "state": snapshot(out / "demo")})
        if done:
            break
        make("A").save(out)  # the next write starts from A again
        k += 1
    b = states[-1]["state"]
    print(json.dumps({"a": a, "b": b, "states": states}))
''')


def test_kill_9_at_every_line_of_a_report_write_leaves_the_old_report_or_the_new(tmp_path):
    out = tmp_path / "reports"
    done = subprocess.run([sys.executable, "-c", KILL_EVERY_LINE, str(out)], capture_output=True, text=True,
                          cwd=REPO, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    a, b, states = found["a"], found["b"], found["states"]
    assert a and b and a != b and "results.json" in b
    killed = [s for s in states if s["killed"]]
    assert len(killed) >= KILL_POINTS_AT_LEAST, f"only {len(killed)} kill points: is the tracer reaching Report.save?"
    broken = [s["line"] for s in killed if s["state"] not in (a, b)]
    assert not broken, (f"kill -9 at lines {broken} of {len(killed)} left neither the old report nor the new "
                        f"one (first: {next(s['state'] for s in killed if s['line'] == broken[0])!r:.300})")
    assert any(s["state"] == a for s in killed) and any(s["state"] == b for s in killed)


def test_recover_puts_back_a_folder_left_aside_by_a_killed_writer(tmp_path):
    from interp.atomic_dir import recover, replace_dir

    aside = tmp_path / ".demo.old-12345"
    aside.mkdir()
    (aside / "results.json").write_text("{}")
    recover(tmp_path / "demo")
    assert (tmp_path / "demo" / "results.json").read_text() == "{}" and not aside.exists()
    staging = tmp_path / "staging"
    staging.mkdir()
    (staging / "results.json").write_text('{"new": 1}')
    replace_dir(staging, tmp_path / "demo")
    assert (tmp_path / "demo" / "results.json").read_text() == '{"new": 1}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


def test_the_two_rename_fallback_is_also_complete(tmp_path, monkeypatch):
    from interp import atomic_dir

    monkeypatch.setattr(atomic_dir, "exchange", lambda a, b: False)
    for version in ("old", "new"):
        staging = tmp_path / f"staging-{version}"
        staging.mkdir()
        (staging / "v").write_text(version)
        atomic_dir.replace_dir(staging, tmp_path / "demo")
    assert (tmp_path / "demo" / "v").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"]


SLOW = ("--set", "check_layers=12", "--set", "check_d_model=128")  # about 1.5 s of analysis to interrupt


def interp_run(out: Path, *extra: str, preexec_fn=None) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

    def prepare():
        # a suite started in the background by a shell (`cmd &`) inherits SIGINT ignored, and Python
        # then leaves it ignored: the interrupted run would finish. A user's Ctrl-C reaches a default one.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if preexec_fn is not None:
            preexec_fn()

    return subprocess.Popen([sys.executable, "-m", "analyses.cli", "run", "params", "--quick", "--out", str(out),
                             *extra], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=prepare)


def wait_for_the_analysis(run: subprocess.Popen) -> None:
    started = time.monotonic()
    for line in run.stderr:  # "[interp] [1/1] params ..." once the analysis is under way
        if "[1/1] params ..." in line:
            return
        assert time.monotonic() - started < 120, "interp run never started the analysis"
    raise AssertionError("interp run ended before starting the analysis")


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def params_report(tmp_path_factory) -> Path:
    """A reports folder holding one complete params report, made once for this module."""
    out = tmp_path_factory.mktemp("first") / "reports"
    first = interp_run(out)
    assert first.wait(timeout=120) == 0, first.stderr.read()
    return out


def copy_of(reports: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(reports, tmp_path / "reports"))


# (signal, when): what each run gets is asserted below
SIGNAL_CASES = [("SIGINT", "during the analysis"), ("SIGKILL", "during the analysis")]


@pytest.mark.parametrize("signal_name, when", SIGNAL_CASES)
def test_a_signal_during_interp_run_keeps_the_old_report(params_report, tmp_path, signal_name, when):
    """Ctrl-C: one line, exit code 130. kill -9: nothing to say, but the same disk. Both:
    the previous report intact and no staging folder; after kill -9 a rerun completes."""
    out = copy_of(params_report, tmp_path)
    before = files_of(out / "params")

    run = interp_run(out, *SLOW)
    wait_for_the_analysis(run)
    run.send_signal(getattr(signal, signal_name))
    code = run.wait(timeout=60)
    rest = run.stderr.read()
    assert code != 0, "the analysis finished before the signal arrived; make SLOW slower"
    if signal_name == "SIGINT":
        assert code == 130, f"exit code {code}:\n{rest}"
        assert "Traceback" not in rest, rest
        assert rest.strip().splitlines()[-1].startswith("error: interrupted"), rest
    else:
        assert code == -signal.SIGKILL
    assert files_of(out / "params") == before, f"{signal_name} changed the previous report"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".params.")], "a staging folder was left behind"
    if signal_name == "SIGKILL":
        again = interp_run(out)
        assert again.wait(timeout=120) == 0, again.stderr.read()
        assert json.loads((out / "params" / "results.json").read_text())["name"] == "params"


# file-size limit -> what cannot be written under it: the report (report.html is over 100 kB),
# then also the index page (2.5 kB), written after the reports
FILE_SIZE_LIMITS = {100_000: "100 kB (report.html fails)", 2_000: "2 kB (report.md fails, and then the index page)"}


@pytest.mark.parametrize("limit", list(FILE_SIZE_LIMITS))
def test_a_file_size_limit_is_a_clear_error_and_keeps_the_old_report(params_report, tmp_path, limit):
    """RLIMIT_FSIZE stands in for a full disk: the report's largest files cannot be written."""
    import resource

    out = copy_of(params_report, tmp_path)
    before, index = files_of(out / "params"), (out / "index.html").read_bytes()
    assert max(len(v) for v in before.values()) > limit, "the report is too small to hit the limit"
    assert (limit < 100_000) == (len(index) > limit), "the index page should be over the smaller limit only"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    run = interp_run(out, preexec_fn=small_files)
    code, rest = run.wait(timeout=120), run.stderr.read()
    assert code == 2, f"exit code {code}:\n{rest}"
    assert "Traceback" not in rest, rest
    last = rest.strip().splitlines()[-1]
    assert last.startswith("error: cannot write") and "into --out" in last and "File too large" in last, last
    assert "free some space" in last, last
    assert files_of(out / "params") == before and (out / "index.html").read_bytes() == index
    assert not [p.name for p in out.iterdir() if p.name.startswith(".params.")], "a staging folder was left behind"


# what is read-only: the folder and all in it, or all but its run log (so the log can be opened
# and only a new report folder cannot be made)
READ_ONLY_CASES = ["everything", "all but run.log"]
NOBODY = 65534
PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH = 24, 1, 2


def as_nobody() -> None:
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def without_overriding_permissions() -> None:
    """Root without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: the permission bits apply to it too.

    Dropped from the bounding set, since execve gives root back every capability the set holds."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) refused")


def unprivileged(folder: Path, env: dict):
    """A preexec_fn under which a process cannot write into ``folder`` (already read-only), or None
    when not root (the permission bits hold). Checked by trying to write (after importing the command
    line, so the run itself can start); skips the test when nothing makes the folder unwritable."""
    if os.geteuid() != 0:
        candidates = [("as is", None)]
    else:  # root may write anyway: become nobody (whose interpreter may be out of reach), or keep the
        # uid and give up the capabilities that override permissions
        candidates = [("as nobody", as_nobody), ("without CAP_DAC_OVERRIDE", without_overriding_permissions)]
    probe = folder / "probe"
    tried = []
    for how, preexec_fn in candidates:
        try:
            done = subprocess.run([sys.executable, "-c", f"import analyses.cli; open({str(probe)!r}, 'w')"], cwd=REPO,
                                  env=env, preexec_fn=preexec_fn, capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.SubprocessError) as error:  # e.g. the interpreter is not nobody's to run
            tried.append(f"{how}: {error}")
            continue
        if done.returncode != 0 and done.stderr.strip().splitlines()[-1].startswith("PermissionError"):
            return preexec_fn
        tried.append(f"{how}: {'wrote the file' if done.returncode == 0 else done.stderr.strip()[-200:]}")
        probe.unlink(missing_ok=True)
    pytest.skip(f"nothing made {folder} unwritable here ({'; '.join(tried)})")


@pytest.fixture
def open_to_all():
    """A folder any user may enter (pytest's tmp_path lies under a 0700 folder), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="interp-read-only-"))
    folder.chmod(0o755)
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)
    shutil.rmtree(folder)


@pytest.mark.parametrize("what", READ_ONLY_CASES)
def test_a_read_only_output_folder_is_a_clear_error_and_keeps_the_old_report(params_report, open_to_all, what):
    out = Path(shutil.copytree(params_report, open_to_all / "reports"))
    for path in [*out.rglob("*"), out]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    if what == "all but run.log":
        (out / "run.log").chmod(0o666)
    before = files_of(out)
    home = open_to_all / "home"  # a home (matplotlib's cache) whoever the run is
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    env = {**os.environ, "HOME": str(home), "MPLCONFIGDIR": str(home)}
    preexec_fn = unprivileged(out, env)

    done = subprocess.run([sys.executable, "-m", "analyses.cli", "run", "params", "--quick", "--out", str(out)],
                          cwd=REPO, env={**env, "OMP_NUM_THREADS": "1"}, preexec_fn=preexec_fn, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, f"exit code {done.returncode}:\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, f"more than the error line (was an analysis run for nothing?):\n{done.stderr}"
    assert lines[0].startswith(f"error: cannot write into --out {out} (Permission denied)"), lines[0]
    assert "make it writable or choose another folder" in lines[0], lines[0]
    assert files_of(out) == before, "the previous report (or run.log) changed"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in params_report.iterdir())
