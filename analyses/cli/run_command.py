"""``interp list`` and ``interp run``: the analyses, their configs, and the run that writes their reports."""

import contextlib
import dataclasses
import json
import os
import tempfile
import time
import traceback
from pathlib import Path
from typing import Optional

import typer

import analyses  # light: a name table and the standard library
from analyses.cli.app import (BUG_HINT, DEFAULT_OUT, NO_ROOM, SWEEPS, app, check_seed, check_threads, check_workers,
                              fail, what_to_change)

@app.command("list")
def list_analyses(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the analyses and the question each answers."""
    rows = {name: analyses.question(name) for name in analyses.known()}
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(map(len, rows))
    for name, question in rows.items():
        typer.echo(f"{name:<{width}}  {question}")


def build_config(name: str, quick: bool, seed: Optional[int], assignments: list[str]):
    """The config ``interp run`` would use for analysis ``name``."""
    from interp.config import apply_overrides

    module = analyses.get(name)
    config = module.Config.quick() if quick else module.Config()
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    return apply_overrides(config, assignments)


def run_analysis(name: str, config, out: Path, preset: str | None = None):
    """Run one analysis and save its report; returns the report and its folder.

    The report's elapsed time is the whole run, zoo training included (the zoo may train
    the analysis's subject on first use, before the analysis builds its report); the
    training it did is listed in ``results.json`` and in the report's timing line. The
    analysis's sweeps keep their finished tasks in ``OUT/.sweeps/NAME`` until the report
    is written, so that a run stopped half-way resumes them (a run of another config, or
    one whose folder lacks ``config.json``, starts them afresh; after changing the code of a
    sweep, delete ``OUT/.sweeps``).
    """
    import shutil

    import torch

    from interp.parallel import sweep_settings
    from models import zoo

    threads, trained_before, started = torch.get_num_threads(), len(zoo.TRAINED), time.perf_counter()
    cached_before = len(zoo.CACHED)
    sweeps = out / SWEEPS / analyses.label(name)
    stamp = json.dumps(dataclasses.asdict(config), sort_keys=True, default=str)
    with contextlib.suppress(OSError):
        if (sweeps / "config.json").read_text() != stamp:  # kept by a run of another config: not this run's
            shutil.rmtree(sweeps)
    sweeps.mkdir(parents=True, exist_ok=True)
    (sweeps / "config.json").write_text(stamp)
    try:
        with sweep_settings(store=sweeps):
            report = analyses.get(name).run(config)
    finally:  # an analysis that pins torch's threads must not slow the ones after it
        torch.set_num_threads(threads)
    report.elapsed_seconds = round(time.perf_counter() - started, 2)
    report.subject_training = zoo.TRAINED[trained_before:]
    report.subject_cached = zoo.CACHED[cached_before:]
    report.preset = preset
    folder = report.save(out)
    shutil.rmtree(sweeps, ignore_errors=True)
    with contextlib.suppress(OSError):  # only when no other analysis's sweeps are kept
        (out / SWEEPS).rmdir()
    return report, folder


def _previous_seconds(out: Path, name: str, preset: str) -> float | None:
    """How long ``name`` took the last time it ran with ``preset`` into ``out`` (for the estimate)."""
    try:
        results = json.loads((out / name / "results.json").read_text())
    except (OSError, ValueError):
        return None
    if results.get("preset") not in (preset, None) or results.get("elapsed_seconds") is None:
        return None
    # trainings side by side on a sweep's workers may add up to more than the run took
    return max(0.0, float(results["elapsed_seconds"]) - float(results.get("subject_training_seconds") or 0))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


@app.command("run")
def run(
    names: list[str] = typer.Argument(..., help=f"Analyses to run, or 'all': {', '.join(analyses.ANALYSES)}, "
                                                "an installed one, or a path to an analysis .py file.",
                                      metavar="NAME... | all"),
    quick: bool = typer.Option(False, "--quick", help="Small preset (minutes, used in CI)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override every analysis's seed.", callback=check_seed),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder that receives the reports (the default, reports/, "
                                                        "holds the committed ones: a run rewrites them)."),
    assignments: list[str] = typer.Option([], "--set", help="key=value override of a config field."),
    as_json: bool = typer.Option(False, "--json", help="Print each report's results.json."),
    threads: Optional[int] = typer.Option(None, "--threads", callback=check_threads,
                                          help="torch threads (default: $INTERP_THREADS, else the CPUs free for "
                                               "this process: its CPUs less the other runnable threads)."),
    workers: Optional[int] = typer.Option(None, "--workers", callback=check_workers,
                                          help="Run every sweep's tasks on N worker processes (or Ray CPUs); "
                                               "the results equal the serial ones (default: the thread count)."),
    backend: Optional[str] = typer.Option(None, "--backend", metavar="serial|processes|ray",
                                          help="Where sweeps run (default: processes, one worker per thread; "
                                               "serial on one thread; ray with --address)."),
    address: Optional[str] = typer.Option(None, "--address", metavar="HOST:PORT",
                                          help="A running Ray cluster (its head's address) for --backend ray."),
) -> None:
    """Run analyses and write their reports, the index page (OUT/index.html) and a run log (OUT/run.log)."""
    from interp.parallel import check_backend, sweep_settings
    from interp.progress import note, run_log
    from interp.report import write_index
    from interp.report.index import training_text
    from interp.threads import apply_threads, thread_choice

    selected = list(analyses.known()) if names == ["all"] else names
    try:
        configs = {name: build_config(name, quick, seed, assignments if names != ["all"] else []) for name in selected}
    except (KeyError, ValueError) as error:
        fail(str(error.args[0] if error.args else error))
    if names == ["all"] and assignments:
        fail("--set applies to named analyses only; run them one by one to override fields")
    if out.exists() and not out.is_dir():
        fail(f"--out {out} is a file; give a folder for the reports")
    try:
        n_threads, why = thread_choice(threads)
    except ValueError as error:  # $INTERP_THREADS that is not a count
        fail(str(error))
    # sweeps: where the user says, else one worker process per thread the run may use (serial on one)
    from interp.parallel import default_workers

    backend = backend or ("ray" if address is not None else
                          "processes" if (workers or default_workers(n_threads)) > 1 else "serial")
    if backend == "processes" and workers is None:
        workers = default_workers(n_threads)
    try:
        check_backend(backend, address)
    except ValueError as error:
        fail(str(error))
    preset = "quick" if quick else "full"
    results, failed, unwritable, started = {}, [], {}, time.perf_counter()
    opened = contextlib.ExitStack()
    try:
        out.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=out))  # a report is a new folder swapped in: can one be made?
        log = opened.enter_context(run_log(out / "run.log"))
    except OSError as error:
        fail(f"cannot write into --out {out} ({error.strerror or error}); {what_to_change(error)}")
    with opened:
        # before any analysis (each starts from it); the caller's count comes back after the run (in process)
        opened.callback(apply_threads, apply_threads(n_threads))
        opened.enter_context(sweep_settings(backend=backend, workers=workers, address=address))
        where = "" if backend == "serial" else f"; sweeps on {backend}" + (f" ({workers} workers)" if workers else "")
        note(f"run {' '.join(selected)} ({preset} preset{'' if seed is None else f', seed {seed}'}) into {out}; "
             f"{n_threads} torch thread(s) ({why}){where}; log: {log}")
        for k, (name, config) in enumerate(configs.items(), 1):
            rest = [_previous_seconds(out, analyses.label(n), preset) for n in list(configs)[k - 1:]]
            known = [r for r in rest if r is not None]
            estimate = (f"; about {_duration(sum(known))} left by the last run's times"
                        + (f" ({len(rest) - len(known)} without one)" if len(known) < len(rest) else "")
                        if known else "")
            note(f"[{k}/{len(configs)}] {name} ...{estimate}")
            try:
                report, folder = run_analysis(name, config, out, preset)
            except OSError as error:
                failed.append(name)
                if error.errno not in NO_ROOM:
                    note(f"[{k}/{len(configs)}] {name} FAILED:\n{traceback.format_exc()}")
                    continue
                unwritable[name] = error.strerror
                note(f"[{k}/{len(configs)}] {name} FAILED: its report could not be written into {out} "
                     f"({error.strerror}); the previous report is intact")
                continue
            except Exception:  # one broken analysis must not cost the others' reports
                note(f"[{k}/{len(configs)}] {name} FAILED:\n{traceback.format_exc()}")
                failed.append(name)
                continue
            results[name] = report.results()
            trained = results[name]["subject_training_seconds"]
            note(f"[{k}/{len(configs)}] {name}: {folder / 'report.html'} ({report.elapsed_seconds:.1f} s"
                 f"{', ' + training_text(report.elapsed_seconds, trained) if trained else ''})")
        try:
            index = write_index(out, order=list(analyses.known()))  # after every run, so it is never stale
        except OSError as error:  # the disk filled up during the run: the reports written are complete
            if error.errno not in NO_ROOM:
                raise
            fail(f"cannot write the index into --out {out} ({error.strerror}); {what_to_change(error)}")
        note(f"index: {index} (total {_duration(time.perf_counter() - started)})")
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:  # on stdout too, so `interp run all > file` keeps where everything went
        typer.echo(f"{len(results)} of {len(configs)} report(s) written under {out}; index {index}; log {log}")
    if failed and set(failed) == set(unwritable):
        fail(f"cannot write into --out {out} ({', '.join(sorted(set(unwritable.values())))}); free some space or "
              f"choose another folder: the previous reports of {', '.join(failed)} are intact")
    if failed:
        fail(f"{len(failed)} analysis(es) failed: {', '.join(failed)} (tracebacks in {out / 'run.log'}); unless "
              f"the traceback shows a mistake in your input, {BUG_HINT.split(': ', 1)[1]}")
