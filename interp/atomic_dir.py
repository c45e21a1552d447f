"""Replace a folder by another in one step, so that a reader (or a killed writer) never
finds half of one, or none.

    >>> import tempfile; from pathlib import Path
    >>> root = Path(tempfile.mkdtemp()); (root / "new").mkdir()
    >>> _ = (root / "new" / "a").write_text("new")
    >>> replace_dir(root / "new", root / "report")
    >>> (root / "report" / "a").read_text()
    'new'

A rename replaces a file atomically, but not a non-empty folder: the old folder has to be
moved aside first, and a ``kill -9`` between the two renames would leave no folder at all.
On Linux, ``renameat2(RENAME_EXCHANGE)`` swaps the two folders in one step; the old one is
then deleted at leisure. Where the system or file system lacks it, the two renames are done
with the old folder kept beside the target (``.NAME.old-PID``) until the new one is in place,
and ``recover`` puts such a folder back if a writer died between them.
"""

import ctypes
import ctypes.util
import errno
import os
import shutil
import sys
from pathlib import Path

AT_FDCWD, RENAME_EXCHANGE = -100, 2


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError):  # glibc before 2.28, or another libc
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


_renameat2 = _load_renameat2()


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths in one step; False where the system cannot."""
    if _renameat2 is None:
        return False
    if _renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False  # a file system without exchange: fall back to two renames
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def replace_dir(staging: Path, target: Path) -> None:
    """Put folder ``staging`` at ``target``, replacing what is there in one step."""
    staging, target = Path(staging), Path(target)
    recover(target)
    if not target.exists():
        os.replace(staging, target)
        return
    if exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now the old folder
        return
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(staging, target)
    shutil.rmtree(old, ignore_errors=True)


def recover(target: Path) -> None:
    """If ``target`` is missing because a writer died between its two renames, put back the
    folder it had moved aside (the newest ``.NAME.old-PID``)."""
    target = Path(target)
    if target.exists() or not target.parent.is_dir():
        return
    aside = sorted(target.parent.glob(f".{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if aside:
        os.replace(aside[-1], target)
