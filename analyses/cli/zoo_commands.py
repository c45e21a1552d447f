"""``interp zoo list | clear | retrain``: the cache of trained subjects."""

import json
from typing import Optional

import typer

from analyses.cli.app import check_seed, fail, zoo_app

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
        fail("name one subject to clear, or pass --all (not both)")
    if name is not None and name not in zoo.list_subjects():
        fail(f"no zoo subject named {name!r}; known: {', '.join(zoo.list_subjects())}")
    removed = zoo.clear(name)
    typer.echo("\n".join(f"removed {folder}" for folder in removed) or "nothing to remove")


@zoo_app.command("retrain")
def zoo_retrain(
    name: str = typer.Argument(..., help="Subject to train afresh (replaces its cached copy)."),
    quick: bool = typer.Option(False, "--quick", help="The subject's small variant."),
    seed: int = typer.Option(0, "--seed", callback=check_seed),
) -> None:
    """Train a subject afresh and replace its cached copy."""
    from models import zoo

    try:
        zoo.load(name, quick=quick, seed=seed, retrain=True)
    except (KeyError, ValueError, ImportError, FileNotFoundError) as error:
        fail(str(error.args[0] if error.args else error))
    typer.echo(f"retrained {name!r}: {zoo.subject_dir(name, quick=quick, seed=seed)}")
