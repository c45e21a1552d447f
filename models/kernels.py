"""Which CPU kernels torch runs: the same on every x86-64 machine with AVX2, so that training a
subject gives the same weights on the next machine as on this one.

    >>> from models.kernels import PINS, pin_kernels
    >>> sorted(PINS)
    ['ATEN_CPU_CAPABILITY', 'MKL_CBWR', 'ONEDNN_MAX_CPU_ISA']
    >>> environ = {}
    >>> pin_kernels(environ, flags={"avx2", "fma"}, machine="x86_64") == PINS   # what it set
    True
    >>> pin_kernels({}, flags={"neon"}, machine="arm64")                         # nothing to pin
    {}

Why: torch picks its kernels by what the CPU can do, and kernels of different vector widths round
differently. On one machine (AMD EPYC, AVX512) a quick ``facts`` subject trained with ATen's
AVX512 kernels and with its AVX2 ones came out with different weights, and a ``digits_ddpm``
subject differed with oneDNN's AVX512 and AVX2 convolutions; full ``interp run all`` runs on two
machines of one kind (a Xeon and another) gave 18 of the ``facts`` report's 26 headline figures
different. Three settings choose the AVX2 code paths, which every x86-64 CPU of the last decade has:

- ``ATEN_CPU_CAPABILITY=avx2``: torch's own vectorised kernels (element-wise ops, reductions,
  softmax); read when torch dispatches its first operation.
- ``ONEDNN_MAX_CPU_ISA=AVX2``: oneDNN's (convolutions); read when oneDNN first runs.
- ``MKL_CBWR=AVX2``: MKL's conditional numerical reproducibility (matrix products); read when MKL
  first runs.

So :func:`pin_kernels` must run before the process's first torch operation: ``interp`` calls it
first thing, the test suite's ``conftest.py`` at its import, a notebook may as its first cell.
A setting already in the environment is kept (``ATEN_CPU_CAPABILITY=default`` and the like still
work), and ``INTERP_KERNELS=native`` pins nothing. On a CPU without AVX2, or not x86-64 (an ARM
laptop), nothing is pinned: those machines' figures may differ in the last bits, and where a
report's verdicts could turn on that, it says so. :func:`kernels` names what the process runs (a
zoo subject's cache key includes it, so weights trained with other kernels are never taken for
these).
"""

import os
import platform
from collections.abc import MutableMapping
from typing import Optional

PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
OPT_OUT = "INTERP_KERNELS"  # =native: leave torch's choice alone


def cpu_flags() -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (empty where there is no such file)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def pin_kernels(environ: Optional[MutableMapping[str, str]] = None, *, flags: Optional[set[str]] = None,
                machine: Optional[str] = None) -> dict[str, str]:
    """Choose the AVX2 kernels for torch, oneDNN and MKL in ``environ`` (default ``os.environ``), where
    the CPU is x86-64 with AVX2 and neither ``INTERP_KERNELS=native`` nor the variable itself is set;
    returns the settings it made. Call it before torch's first operation: later, torch keeps the
    kernels it already chose."""
    environ = os.environ if environ is None else environ
    flags = cpu_flags() if flags is None else flags
    machine = platform.machine() if machine is None else machine
    if environ.get(OPT_OUT, "").strip().lower() == "native":
        return {}
    if machine.lower() not in ("x86_64", "amd64") or "avx2" not in flags:
        return {}
    made = {name: value for name, value in PINS.items() if name not in environ}
    environ.update(made)
    return made


def kernels() -> str:
    """The vector kernels torch runs in this process, as torch names them (``AVX2``, ``AVX512``, ``DEFAULT``,
    ``NEON``...), with ``+mkl-avx2`` and ``+onednn-avx2`` where those libraries are held to AVX2 too."""
    import torch

    name = torch.backends.cpu.get_cpu_capability()
    if os.environ.get("MKL_CBWR", "").upper().startswith("AVX2"):
        name += "+mkl-avx2"
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() == "AVX2":
        name += "+onednn-avx2"
    return name


def pinned_environment() -> dict[str, str]:
    """The kernel settings of this process's environment (for workers that do not inherit it: a Ray
    cluster's)."""
    return {name: os.environ[name] for name in PINS if name in os.environ}
