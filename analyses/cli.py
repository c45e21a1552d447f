"""The ``interp`` command: a thin wrapper around the analyses and the report writer.

    interp list [--json]
    interp run NAME... | all [--quick] [--seed N] [--out DIR] [--set key=value] [--threads N] [--json]
               [--workers N] [--backend serial|processes|ray] [--address HOST:PORT]
    interp params PRESET [--weights-only] [--json]
    interp chat [facts | smollm2] [--temperature T] [--top-p P] [--max-new-tokens N] [--seed N]
    interp zoo list | clear NAME|--all | retrain NAME [--quick] [--seed N]
    interp explore [--model NAME] [--host 127.0.0.1] [--port 8765] [--quick] [--max-tokens N]

The light commands (``list``, ``params``, ``--help``) import neither torch nor any analysis
module, so they answer at once; ``run`` and ``chat`` import what they need when called.
"""

import contextlib
import dataclasses
import errno
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import typer
import typer.core
# typer 0.29 vendors click; its usage errors are these classes
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

import analyses  # light: a name table and the standard library

BUG_HINT = ("this is a bug in interp, not a mistake in your command: please report it to the interp "
            "maintainers with the traceback above and the command you ran")
INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process stopped by Ctrl-C
SWEEPS = ".sweeps"  # OUT/.sweeps/NAME: an unfinished analysis's finished sweep tasks


class OneLineErrors(typer.core.TyperGroup):
    """Every mistake in a command line is one line on stderr and exit code 2.

    click prints usage errors (an unknown option, a seed that is not a number) as a boxed
    paragraph; here each is one line ending with the ``--help`` to read. Ctrl-C is one line
    and exit code 130. Anything else escaping a command is a bug: its traceback is kept and
    followed by where to report it.
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as error:  # a bare `interp` or `interp zoo`: the help is the answer
            error.show()
            sys.exit(2)
        except UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else prog_name or "interp"
            _say(f"{error.format_message()} (see '{where} --help')")
            sys.exit(2)
        except ClickException as error:
            _say(error.format_message())
            sys.exit(error.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            code = INTERRUPTED
        except Exception:
            traceback.print_exc()
            _say(BUG_HINT)
            sys.exit(1)
        if code == INTERRUPTED:  # typer turns KeyboardInterrupt into exit code 130, silently
            _say("interrupted; reports already written are complete and the one being written was not "
                 "replaced (the previous one is intact); its finished sweep tasks are kept in OUT/.sweeps, "
                 "and running it again resumes them")
        sys.exit(code if isinstance(code, int) else 0)


def _say(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)


app = typer.Typer(add_completion=False, no_args_is_help=True, help="Mechanistic interpretability toolkit.",
                  cls=OneLineErrors)
zoo_app = typer.Typer(no_args_is_help=True, help="The cache of trained subjects ($INTERP_CACHE, default "
                                                 "~/.cache/interp/zoo): list, clear or retrain them.")
app.add_typer(zoo_app, name="zoo")

DEFAULT_OUT = Path("reports")
# a full disk, a file-size limit, a quota, a read-only or forbidden folder: the user's to fix, no traceback
NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}
MAX_SEED = 2**32 - 1  # numpy's generators take seeds up to this; torch's take more


def _fail(message: str) -> None:
    _say(message)
    raise typer.Exit(2)


def _what_to_change(error: OSError) -> str:
    full = error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    return "free some space or choose another folder" if full else "make it writable or choose another folder"


def _count_check(what: str) -> Callable[[Optional[int]], Optional[int]]:
    """A typer callback refusing a ``what`` count below 1."""
    def check(count: Optional[int]) -> Optional[int]:
        if count is not None and count < 1:
            raise typer.BadParameter(f"{count} is not a {what} count; use a whole number >= 1")
        return count

    return check


_check_threads, _check_workers = _count_check("thread"), _count_check("worker")


def _check_seed(seed: Optional[int]) -> Optional[int]:
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise typer.BadParameter(f"{seed} is not a seed; use a whole number from 0 to {MAX_SEED}")
    return seed


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
    return float(results["elapsed_seconds"]) - float(results.get("subject_training_seconds") or 0)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


@app.command("run")
def run(
    names: list[str] = typer.Argument(..., help=f"Analyses to run, or 'all': {', '.join(analyses.ANALYSES)}, "
                                                "an installed one, or a path to an analysis .py file.",
                                      metavar="NAME... | all"),
    quick: bool = typer.Option(False, "--quick", help="Small preset (minutes, used in CI)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override every analysis's seed.", callback=_check_seed),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder that receives the reports (the default, reports/, "
                                                        "holds the committed ones: a run rewrites them)."),
    assignments: list[str] = typer.Option([], "--set", help="key=value override of a config field."),
    as_json: bool = typer.Option(False, "--json", help="Print each report's results.json."),
    threads: Optional[int] = typer.Option(None, "--threads", callback=_check_threads,
                                          help="torch threads (default: $INTERP_THREADS, else the CPUs free for "
                                               "this process: its CPUs less the other runnable threads)."),
    workers: Optional[int] = typer.Option(None, "--workers", callback=_check_workers,
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
    from interp.threads import apply_threads, thread_choice

    selected = list(analyses.known()) if names == ["all"] else names
    try:
        configs = {name: build_config(name, quick, seed, assignments if names != ["all"] else []) for name in selected}
    except (KeyError, ValueError) as error:
        _fail(str(error.args[0] if error.args else error))
    if names == ["all"] and assignments:
        _fail("--set applies to named analyses only; run them one by one to override fields")
    if out.exists() and not out.is_dir():
        _fail(f"--out {out} is a file; give a folder for the reports")
    try:
        n_threads, why = thread_choice(threads)
    except ValueError as error:  # $INTERP_THREADS that is not a count
        _fail(str(error))
    # sweeps: where the user says, else one worker process per thread the run may use (serial on one)
    from interp.parallel import default_workers

    backend = backend or ("ray" if address is not None else
                          "processes" if (workers or default_workers(n_threads)) > 1 else "serial")
    if backend == "processes" and workers is None:
        workers = default_workers(n_threads)
    try:
        check_backend(backend, address)
    except ValueError as error:
        _fail(str(error))
    preset = "quick" if quick else "full"
    results, failed, unwritable, started = {}, [], {}, time.perf_counter()
    opened = contextlib.ExitStack()
    try:
        out.mkdir(parents=True, exist_ok=True)
        os.rmdir(tempfile.mkdtemp(prefix=".probe-", dir=out))  # a report is a new folder swapped in: can one be made?
        log = opened.enter_context(run_log(out / "run.log"))
    except OSError as error:
        _fail(f"cannot write into --out {out} ({error.strerror or error}); {_what_to_change(error)}")
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
                 f"{f', of which {trained:.0f} s training its subject' if trained else ''})")
        try:
            index = write_index(out, order=list(analyses.known()))  # after every run, so it is never stale
        except OSError as error:  # the disk filled up during the run: the reports written are complete
            if error.errno not in NO_ROOM:
                raise
            _fail(f"cannot write the index into --out {out} ({error.strerror}); {_what_to_change(error)}")
        note(f"index: {index} (total {_duration(time.perf_counter() - started)})")
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    else:  # on stdout too, so `interp run all > file` keeps where everything went
        typer.echo(f"{len(results)} of {len(configs)} report(s) written under {out}; index {index}; log {log}")
    if failed and set(failed) == set(unwritable):
        _fail(f"cannot write into --out {out} ({', '.join(sorted(set(unwritable.values())))}); free some space or "
              f"choose another folder: the previous reports of {', '.join(failed)} are intact")
    if failed:
        _fail(f"{len(failed)} analysis(es) failed: {', '.join(failed)} (tracebacks in {out / 'run.log'}); unless "
              f"the traceback shows a mistake in your input, {BUG_HINT.split(': ', 1)[1]}")


def _light_transformer_modules():
    """``models.transformer.config`` and ``.params`` without the package's ``__init__``.

    The package imports the model (torch, about 2 s); counting parameters needs only these
    two pure-Python modules. They are loaded from their files under their own names, so
    a later real import of the package reuses them.
    """
    import importlib.util

    if "models.transformer" in sys.modules:
        from models.transformer import params as params_module

        return params_module
    import models

    folder = Path(models.__file__).parent / "transformer"
    for name in ("config", "params"):
        full = f"models.transformer.{name}"
        if full not in sys.modules:
            spec = importlib.util.spec_from_file_location(full, folder / f"{name}.py")
            module = importlib.util.module_from_spec(spec)
            sys.modules[full] = module
            spec.loader.exec_module(module)
    return sys.modules["models.transformer.params"]


WHAT_IS_COUNTED = {
    False: "every parameter (weights, biases, LayerNorms, position embedding)",
    True: "weight matrices only (3Blue1Brown's GPT-3 table)",
}


@app.command("params")
def params(
    preset: str = typer.Argument(..., help="gpt3, gpt2-small, gpt2-medium, gpt2-large, gpt2-xl, smollm2-135m or "
                                           "llama-2-7b."),
    weights_only: bool = typer.Option(
        False, "--weights-only", help="Weight matrices only, as in 3Blue1Brown's GPT-3 table (no biases, LNs, positions)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One key per component plus total."),
) -> None:
    """Count a preset's parameters per component, analytically (nothing is allocated).

    The default counts every parameter (GPT-3: 175,221,867,601); --weights-only counts the
    weight matrices, as 3Blue1Brown's table does (GPT-3: 175,181,291,520).
    """
    module = _light_transformer_modules()
    if preset not in module.PRESETS:
        _fail(f"unknown preset {preset!r}; choose one of {', '.join(module.PRESETS)}")
    options = dict(biases=False, layer_norms=False, pos_embed=False)
    counts = module.count_parameters(module.PRESETS[preset], **(options if weights_only else {}))
    if as_json:
        typer.echo(json.dumps(counts, indent=2))
        return
    totals = {False: counts["total"] if not weights_only else None, True: counts["total"] if weights_only else None}
    totals[not weights_only] = module.count_parameters(module.PRESETS[preset], **({} if weights_only else options))["total"]
    width = max(len(f"{v:,}") for v in counts.values())
    typer.echo(f"{'component':<10} {'parameters':>{width}}    share")
    for component, value in counts.items():
        typer.echo(f"{component:<10} {value:>{width},} {value / counts['total']:>8.2%}")
    typer.echo("")
    for only in (False, True):
        marker = "  <- this table" if only == weights_only else f"  ({'--weights-only' if only else 'the default'})"
        typer.echo(f"{WHAT_IS_COUNTED[only]}: {totals[only]:,}{marker}")


@app.command("explore")
def explore(
    model: str = typer.Option("smollm2", "--model", help="The model loaded at start (others load when first "
                                                         "chosen): smollm2, facts or minilm."),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on; anything but loopback is "
                                                         "reachable from other machines (a warning says so)."),
    port: int = typer.Option(8765, "--port", help="TCP port (0: any free port)."),
    quick: bool = typer.Option(False, "--quick", help="The zoo subjects' small variants."),
    max_tokens: int = typer.Option(64, "--max-tokens", help="Longest prompt accepted, in tokens."),
) -> None:
    """A local web explorer: pick a model, type a prompt, see tokens, attention, the logit lens, neurons,
    patching and tracing (http://127.0.0.1:8765 by default; Ctrl-C stops it)."""
    from analyses.explore_command import explore as serve_explorer  # names the models; imported only here

    serve_explorer(model=model, host=host, port=port, quick=quick, max_tokens=max_tokens)


@app.command("chat")
def chat(
    subject: str = typer.Argument("facts", help="Zoo language model: 'facts' (completes sentences word by word) "
                                                "or 'smollm2' (an instruct model: a conversation)."),
    quick: bool = typer.Option(False, "--quick", help="The subject's small variant."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = always the most likely token."),
    top_p: Optional[float] = typer.Option(None, "--top-p", help="Sample from the most likely tokens holding this "
                                                                "much probability (with --temperature > 0)."),
    max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens",
                                                 help="Longest reply (default 8 words for facts, 256 tokens for a chat model)."),
    seed: int = typer.Option(0, "--seed", callback=_check_seed),
) -> None:
    """Talk to a zoo language model, one line per turn (an empty line quits).

    A model with a chat template (smollm2) keeps the conversation and answers each turn through
    the template; the others complete the line you type.
    """
    from models import zoo
    from models.transformer.sampling import chat_reply, check_sampling_arguments

    try:
        check_sampling_arguments(0 if max_new_tokens is None else max_new_tokens, temperature, None, top_p)
        model = zoo.load(subject, quick=quick, seed=seed)
    except (KeyError, ValueError, ImportError, FileNotFoundError) as error:
        _fail(str(error.args[0] if error.args else error))
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        _fail(f"zoo subject {subject!r} is not a language model; chat with 'facts' or 'smollm2'")
    chatting = getattr(tokenizer, "has_chat_template", False)
    if not chatting and top_p is not None:
        _fail(f"--top-p applies to chat models; {subject!r} completes with --temperature only")
    if chatting:
        typer.echo(f"{subject}: say something (an empty line quits)")
    else:
        people = getattr(getattr(model, "corpus", None), "people", None)
        who = people[0].name if people else "<first> <last>"  # a person the subject knows
        typer.echo(f"{subject}: type the start of a sentence, e.g. "
                   f"'question : which sport does {who} play ? answer :'")
    budget = max_new_tokens if max_new_tokens is not None else 256 if chatting else 8
    messages: list[dict[str, str]] = []
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            break
        if not line:
            break
        try:
            if chatting:
                asked = [*messages, {"role": "user", "content": line}]  # kept only once answered
                reply = chat_reply(model, asked, budget, temperature=temperature, top_p=top_p, seed=seed)
                messages = [*asked, {"role": "assistant", "content": reply}]
                typer.echo(reply)
            else:
                from models.facts_subject import complete

                typer.echo(f"{line} {complete(model, line, budget, temperature=temperature, seed=seed)}")
        except ValueError as error:
            typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)


@zoo_app.command("list")
def zoo_list(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """The cached subjects: name, variant, seed, size and how long each took to train."""
    from models import zoo

    rows = zoo.cached()
    if as_json:
        typer.echo(json.dumps({"cache": str(zoo.cache_dir()), "subjects": rows}, indent=2))
        return
    typer.echo(f"cache: {zoo.cache_dir()} (set INTERP_CACHE to move it)")
    if not rows:
        typer.echo(f"nothing cached yet; known subjects: {', '.join(zoo.list_subjects())}")
    for row in rows:
        trained = "" if row["train_seconds"] is None else f", trained in {row['train_seconds']:.0f} s"
        typer.echo(f"{row['name']:<10} {row['variant']:<6} seed {row['seed']}  {row['megabytes']:>8.1f} MB"
                   f"{trained}  {row['folder']}")


@zoo_app.command("clear")
def zoo_clear(
    name: Optional[str] = typer.Argument(None, help="Subject whose cached copies to delete."),
    everything: bool = typer.Option(False, "--all", help="Delete every cached subject."),
) -> None:
    """Delete cached subjects; the next use trains (or converts) them again."""
    from models import zoo

    if (name is None) == (not everything):
        _fail("name one subject to clear, or pass --all (not both)")
    if name is not None and name not in zoo.list_subjects():
        _fail(f"no zoo subject named {name!r}; known: {', '.join(zoo.list_subjects())}")
    removed = zoo.clear(name)
    typer.echo("\n".join(f"removed {folder}" for folder in removed) or "nothing to remove")


@zoo_app.command("retrain")
def zoo_retrain(
    name: str = typer.Argument(..., help="Subject to train afresh (replaces its cached copy)."),
    quick: bool = typer.Option(False, "--quick", help="The subject's small variant."),
    seed: int = typer.Option(0, "--seed", callback=_check_seed),
) -> None:
    """Train a subject afresh and replace its cached copy."""
    from models import zoo

    try:
        zoo.load(name, quick=quick, seed=seed, retrain=True)
    except (KeyError, ValueError, ImportError, FileNotFoundError) as error:
        _fail(str(error.args[0] if error.args else error))
    typer.echo(f"retrained {name!r}: {zoo.subject_dir(name, quick=quick, seed=seed)}")


def main() -> None:  # console-script entry point
    app(prog_name="interp")


if __name__ == "__main__":
    sys.exit(main())
