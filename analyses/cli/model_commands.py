"""``interp params``, ``interp explore`` and ``interp chat``: counting, exploring and talking to models."""

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from analyses.cli.app import app, check_seed, fail

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
        fail(f"unknown preset {preset!r}; choose one of {', '.join(module.PRESETS)}")
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
    seed: int = typer.Option(0, "--seed", callback=check_seed),
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
        fail(str(error.args[0] if error.args else error))
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is None:
        fail(f"zoo subject {subject!r} is not a language model; chat with 'facts' or 'smollm2'")
    chatting = getattr(tokenizer, "has_chat_template", False)
    if not chatting and top_p is not None:
        fail(f"--top-p applies to chat models; {subject!r} completes with --temperature only")
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
