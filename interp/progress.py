"""Progress notes for long runs: to stderr and to the run log that ``interp run`` writes.

Analyses call :func:`note` at the start of each stage that can take more than a few
seconds; the notes go to the ``interp`` logger, which ``interp run`` points at stderr and
at ``<out>/run.log`` (:func:`run_log`). Used as a library, with no handler configured,
notes are silent (Python's last-resort handler shows warnings only).

Example::

    from interp.progress import note, run_log

    with run_log("reports/run.log"):
        note("superposition: dimensionality sweep (2 of 4)")
"""

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger("interp")


def note(message: str) -> None:
    """One progress line (``interp run`` shows it on stderr and writes it to the run log)."""
    logger.info(message)


@contextmanager
def run_log(path: str | Path, echo: bool = True) -> Iterator[Path]:
    """Send progress notes to ``path`` (appended, timestamped) and, with ``echo``, to stderr."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    to_file.formatter.converter = time.gmtime
    handlers: list[logging.Handler] = [to_file]
    if echo:
        to_stderr = logging.StreamHandler(sys.stderr)
        to_stderr.setFormatter(logging.Formatter("[interp] %(message)s"))
        handlers.append(to_stderr)
    level = logger.level
    logger.setLevel(logging.INFO)
    for handler in handlers:
        logger.addHandler(handler)
    try:
        yield path
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
