"""``interp spread``: an analysis's headline figures over several training seeds (:mod:`analyses.seed_spread`)."""

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Optional

import typer

import analyses
from analyses.cli.app import app, check_threads, fail, what_to_change
from analyses.cli.run_command import build_config, run_analysis


def check_seeds(count: int) -> int:
    if count < 2:
        raise typer.BadParameter(f"{count} is too few seeds for a spread; use 2 or more (5 gives a usable interval)")
    return count


@app.command("spread")
def spread(
    names: list[str] = typer.Argument(..., help="Analyses whose preset to run once per seed.", metavar="NAME..."),
    seeds: int = typer.Option(5, "--seeds", callback=check_seeds, help="Seeds 0 to N-1."),
    quick: bool = typer.Option(False, "--quick", help="The small preset."),
    into: Optional[Path] = typer.Option(None, "--into", help="Folder for NAME-PRESET.json (default: "
                                                            "$INTERP_SPREADS, else the committed analyses/seed_spreads)."),
    threads: Optional[int] = typer.Option(None, "--threads", callback=check_threads,
                                          help="torch threads (default: the CPUs free for this process)."),
) -> None:
    """Run analyses once per training seed and keep each run's headline figures: the spread their reports compare with."""
    from analyses import seed_spread
    from interp.parallel import default_workers, sweep_settings
    from interp.progress import note, run_log
    from interp.threads import apply_threads, thread_choice

    try:
        configs = {name: {s: build_config(name, quick, s, []) for s in range(seeds)} for name in names}
    except (KeyError, ValueError) as error:
        fail(str(error.args[0] if error.args else error))
    target = into or seed_spread.folder()
    if target.exists() and not target.is_dir():
        fail(f"--into {target} is a file; give a folder for the spreads")
    try:  # before hours of runs: can the spreads be written there?
        target.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=target))
    except OSError as error:
        fail(f"cannot write into --into {target} ({error.strerror or error}); {what_to_change(error)}")
    preset = "quick" if quick else "full"
    n_threads, why = thread_choice(threads)
    workers = default_workers(n_threads)
    with contextlib.ExitStack() as stack:
        stack.callback(apply_threads, apply_threads(n_threads))
        stack.enter_context(sweep_settings(backend="processes" if workers > 1 else "serial", workers=workers))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="interp-spread-")))
        stack.enter_context(run_log(scratch / "run.log"))  # progress on stderr
        note(f"spread of {', '.join(names)} ({preset} preset) over seeds 0-{seeds - 1}; {n_threads} torch thread(s) "
             f"({why}); reports of each seed into a scratch folder")

        def headline(config) -> dict:
            report, _ = run_analysis(name, config, scratch, preset)
            return report.results()["headline"]

        for name in names:
            measured = seed_spread.measure(analyses.label(name), preset, configs[name], headline)
            path = seed_spread.save(measured, target)
            typer.echo(f"spread of {name} over {seeds} seeds: {path}")
