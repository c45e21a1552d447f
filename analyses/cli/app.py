"""The ``interp`` application: its typer apps, one-line errors and exit codes, and the checks
its options share. The commands live in the modules beside this one."""

import errno
import sys
import traceback
from pathlib import Path
from typing import Callable, Optional

import typer
import typer.core
# typer 0.29 vendors click; its usage errors are these classes
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

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
            say(f"{error.format_message()} (see '{where} --help')")
            sys.exit(2)
        except ClickException as error:
            say(error.format_message())
            sys.exit(error.exit_code)
        except (typer.Abort, KeyboardInterrupt):
            code = INTERRUPTED
        except Exception:
            traceback.print_exc()
            say(BUG_HINT)
            sys.exit(1)
        if code == INTERRUPTED:  # typer turns KeyboardInterrupt into exit code 130, silently
            say("interrupted; reports already written are complete and the one being written was not "
                 "replaced (the previous one is intact); its finished sweep tasks are kept in OUT/.sweeps, "
                 "and running it again resumes them")
        sys.exit(code if isinstance(code, int) else 0)


def say(message: str) -> None:
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


def fail(message: str) -> None:
    say(message)
    raise typer.Exit(2)


def what_to_change(error: OSError) -> str:
    full = error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
    return "free some space or choose another folder" if full else "make it writable or choose another folder"


def count_check(what: str) -> Callable[[Optional[int]], Optional[int]]:
    """A typer callback refusing a ``what`` count below 1."""
    def check(count: Optional[int]) -> Optional[int]:
        if count is not None and count < 1:
            raise typer.BadParameter(f"{count} is not a {what} count; use a whole number >= 1")
        return count

    return check


check_threads, check_workers = count_check("thread"), count_check("worker")


def check_seed(seed: Optional[int]) -> Optional[int]:
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise typer.BadParameter(f"{seed} is not a seed; use a whole number from 0 to {MAX_SEED}")
    return seed
