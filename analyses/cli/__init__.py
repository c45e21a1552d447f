"""The ``interp`` command: a thin wrapper around the analyses and the report writer.

    interp list [--json]
    interp run NAME... | all [--quick] [--seed N] [--out DIR] [--set key=value] [--threads N] [--json]
               [--workers N] [--backend serial|processes|ray] [--address HOST:PORT]
    interp params PRESET [--weights-only] [--json]
    interp chat [facts | smollm2] [--temperature T] [--top-p P] [--max-new-tokens N] [--seed N]
    interp zoo list | clear NAME|--all | retrain NAME [--quick] [--seed N]
    interp spread NAME... [--seeds N] [--quick] [--into DIR] [--threads N]
    interp explore [--model NAME] [--host 127.0.0.1] [--port 8765] [--quick] [--max-tokens N]

The light commands (``list``, ``params``, ``--help``) import neither torch nor any analysis
module, so they answer at once; ``run`` and ``chat`` import what they need when called.

Modules: ``app`` (the typer apps, one-line errors, shared option checks), ``run_command``
(``list``, ``run``), ``spread_command`` (``spread``), ``model_commands`` (``params``, ``explore``, ``chat``), ``zoo_commands``
(``zoo``). Importing this package registers every command on ``app``.
"""

import analyses  # noqa: F401  (light; tests reach the analyses table through this package)
from analyses.cli import model_commands, run_command, spread_command, zoo_commands  # noqa: F401  (register the commands)
from analyses.cli.app import BUG_HINT, INTERRUPTED, app
from analyses.cli.run_command import build_config, run_analysis

__all__ = ["BUG_HINT", "INTERRUPTED", "app", "build_config", "main", "run_analysis"]


def main() -> None:  # console-script entry point
    from models.kernels import pin_kernels

    pin_kernels()  # before any torch operation: the same kernels on every x86-64 machine (models.kernels)
    app(prog_name="interp")

