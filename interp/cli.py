"""The ``interp`` command: a thin wrapper around the analyses and the report writer.

    interp list [--json]
    interp run NAME... | all [--quick] [--seed N] [--out DIR] [--set key=value] [--json]
    interp params PRESET [--json]
    interp chat [facts | smollm2] [--temperature T] [--top-p P] [--max-new-tokens N] [--seed N]
"""

import dataclasses
import json
import sys
import traceback
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Mechanistic interpretability toolkit.")

DEFAULT_OUT = Path("reports")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command("list")
def list_analyses(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List the analyses and the question each answers."""
    import analyses

    rows = {name: analyses.question(name) for name in analyses.ANALYSES}
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(map(len, rows))
    for name, question in rows.items():
        typer.echo(f"{name:<{width}}  {question}")


def build_config(name: str, quick: bool, seed: Optional[int], assignments: list[str]):
    """The config ``interp run`` would use for analysis ``name``."""
    import analyses
    from interp.config import apply_overrides

    module = analyses.get(name)
    config = module.Config.quick() if quick else module.Config()
    if seed is not None:
        config = dataclasses.replace(config, seed=seed)
    return apply_overrides(config, assignments)


def run_analysis(name: str, config, out: Path):
    """Run one analysis and save its report; returns the report folder."""
    import torch

    import analyses

    threads = torch.get_num_threads()
    try:
        report = analyses.get(name).run(config)
    finally:  # an analysis that pins torch's threads must not slow the ones after it
        torch.set_num_threads(threads)
    return report, report.save(out)


@app.command("run")
def run(
    names: list[str] = typer.Argument(..., help="Analyses to run, or 'all'."),
    quick: bool = typer.Option(False, "--quick", help="Small preset (minutes, used in CI)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Override every analysis's seed."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Folder that receives the reports."),
    assignments: list[str] = typer.Option([], "--set", help="key=value override of a config field."),
    as_json: bool = typer.Option(False, "--json", help="Print each report's results.json."),
) -> None:
    """Run analyses and write their reports (and, for 'all', an index page)."""
    import analyses
    from interp.report import write_index

    selected = list(analyses.ANALYSES) if names == ["all"] else names
    try:
        configs = {name: build_config(name, quick, seed, assignments if names != ["all"] else []) for name in selected}
    except (KeyError, ValueError) as error:
        _fail(str(error.args[0] if error.args else error))
    if names == ["all"] and assignments:
        _fail("--set applies to named analyses only; run them one by one to override fields")
    results, failed = {}, []
    for name, config in configs.items():
        typer.secho(f"[interp] running {name}{' (quick)' if quick else ''} ...", err=True, fg=typer.colors.CYAN)
        try:
            report, folder = run_analysis(name, config, out)
        except Exception:  # one broken analysis must not cost the others' reports
            typer.secho(f"[interp] {name} FAILED:\n{traceback.format_exc()}", err=True, fg=typer.colors.RED)
            failed.append(name)
            continue
        results[name] = report.results()
        typer.secho(f"[interp] {name}: {folder / 'report.html'} ({report.elapsed_seconds:.1f} s)", err=True)
    if names == ["all"] or len(selected) > 1:
        index = write_index(out, order=list(analyses.ANALYSES))
        typer.secho(f"[interp] index: {index}", err=True)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
    if failed:
        _fail(f"{len(failed)} analysis(es) failed: {', '.join(failed)}")


@app.command("params")
def params(
    preset: str = typer.Argument(..., help="gpt3, gpt2-small, gpt2-medium, gpt2-large or gpt2-xl."),
    weights_only: bool = typer.Option(
        False, "--weights-only", help="Weight matrices only, as in 3Blue1Brown's GPT-3 table (no biases, LNs, positions)."
    ),
    as_json: bool = typer.Option(False, "--json", help="One key per component plus total."),
) -> None:
    """Count a preset's parameters per component, analytically (nothing is allocated)."""
    from analyses.params import preset_table

    try:
        table = preset_table(preset, weights_only=weights_only)
    except KeyError as error:
        _fail(str(error.args[0]))
    if as_json:
        typer.echo(json.dumps(dict(zip(table["component"], table["parameters"])), indent=2))
        return
    typer.echo(table.to_string(index=False, formatters={"parameters": "{:,}".format, "share": "{:.2%}".format}))


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
    seed: int = typer.Option(0, "--seed"),
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
        typer.echo(f"{subject}: type the start of a sentence, e.g. "
                   f"'question : which sport does <first> <last> play ? answer :'")
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


def main() -> None:  # console-script entry point
    app(prog_name="interp")


if __name__ == "__main__":
    sys.exit(main())
