"""Collect activations at named hooks over a dataset, in batches, in RAM or spilled to disk.

Works on any ``HookedRootModule`` (our ``Transformer``, the digit ``Network``, a
TransformerLens ``TransformerBridge``): each batch runs through ``run_with_hooks`` with
hooks that copy the named activations out. With ``budget_bytes`` smaller than the whole
collection, each batch is appended to a ``.npy`` file instead and the result comes back
as read-only memory-mapped arrays, so a collection larger than RAM still works; the
values are the same either way.

Example::

    import torch
    from models.mlp import Network
    from interp.activations import collect_activations

    net = Network([64, 16, 16, 10], activation="relu", cost="cross_entropy")
    x = torch.rand(1000, 64)
    acts = collect_activations(net, x, ["layers.0.hook_post", "layers.1.hook_post"], batch_size=256)
    acts["layers.0.hook_post"].shape                  # (1000, 16), a numpy array
    small = collect_activations(net, x, ["layers.0.hook_post"], budget_bytes=16_000)  # memmap on disk

For token models, ``positions`` keeps one position per example (for example the
ambiguous word in each sentence) from hooks whose second dimension is ``pos``, and
``batched_kwargs`` passes per-example tensors such as an ``attention_mask``.
"""

import difflib
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from jaxtyping import Int
from torch import Tensor
from tqdm.auto import tqdm

from interp.hooks import cached_run


def collect_activations(
    model: Any,
    inputs: Tensor,
    hook_names: Sequence[str],
    batch_size: int = 64,
    positions: Int[Tensor, " batch"] | None = None,
    batched_kwargs: dict[str, Tensor] | None = None,
    forward_kwargs: dict[str, Any] | None = None,
    budget_bytes: int | None = None,
    spill_dir: str | Path | None = None,
    dtype: np.dtype = np.float32,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Activations at each hook for every example of ``inputs``: ``{hook_name: array (n, ...)}``.

    ``inputs`` is split along its first dimension into batches of ``batch_size``.
    ``batched_kwargs`` are sliced the same way and passed to the forward pass with
    ``forward_kwargs``. ``budget_bytes`` bounds what this function holds in memory for
    the collection (the model's own forward-pass memory is not counted): if the arrays
    would exceed it they are written batch by batch to ``spill_dir`` (a temporary folder
    by default, whose files are removed once the arrays are no longer referenced).
    """
    hook_names = list(dict.fromkeys(hook_names))
    if not hook_names:
        raise ValueError("hook_names is empty; name at least one hook, e.g. 'blocks.0.hook_resid_post'")
    _check_hook_names(model, hook_names)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(inputs)
    if positions is not None and len(positions) != n:
        raise ValueError(f"positions has {len(positions)} entries but inputs has {n} examples; give one position per example")
    batched_kwargs = dict(batched_kwargs or {})
    for key, value in batched_kwargs.items():
        if len(value) != n:
            raise ValueError(f"batched_kwargs[{key!r}] has {len(value)} rows but inputs has {n}")
    store = None
    try:
        with torch.no_grad():
            for start in tqdm(range(0, n, batch_size), desc="activations", disable=not progress):
                stop = min(start + batch_size, n)
                batch = _run_batch(model, inputs[start:stop], hook_names, {k: v[start:stop] for k, v in batched_kwargs.items()},
                                   forward_kwargs or {}, None if positions is None else positions[start:stop], dtype)
                if store is None:
                    store = _open_store(batch, n, stop - start, budget_bytes, spill_dir, dtype)
                store.write(start, batch)
    except BaseException:
        if store is not None:
            store.abort()  # an interrupted collection leaves no partial files behind
        raise
    if store is None:
        raise ValueError("inputs is empty; give at least one example")
    return store.finish()


def _check_hook_names(model: Any, hook_names: list[str]) -> None:
    known = getattr(model, "hook_dict", None)
    if not known:
        return
    unknown = [name for name in hook_names if name not in known]
    if unknown:
        hints = {name: difflib.get_close_matches(name, list(known), n=2) for name in unknown}
        raise ValueError(f"unknown hook names {unknown}; closest: {hints}. List them with model.hook_dict.keys()")


def _run_batch(model, inputs, hook_names, kwargs, forward_kwargs, positions, dtype) -> dict[str, np.ndarray]:
    def at_positions(name: str, activation: Tensor) -> Tensor:
        if positions is None:
            return activation
        if activation.ndim < 2 or activation.shape[1] <= int(positions.max()):
            raise ValueError(f"positions need a (batch, pos, ...) activation at {name}, got shape {tuple(activation.shape)}")
        return activation[torch.arange(len(activation), device=activation.device), positions.to(activation.device)]

    _, caught = cached_run(model, inputs, hook_names, keep=at_positions, **kwargs, **forward_kwargs)
    missing = [name for name in hook_names if name not in caught]
    if missing:
        raise ValueError(f"hooks {missing} did not fire in the forward pass; check the names against model.hook_dict")
    return {name: caught[name].float().cpu().numpy().astype(dtype, copy=False) for name in hook_names}


def _open_store(batch, n, batch_n, budget_bytes, spill_dir, dtype):
    shapes = {name: array.shape[1:] for name, array in batch.items()}
    itemsize = np.dtype(dtype).itemsize
    total = n * itemsize * sum(math.prod(shape) for shape in shapes.values())
    if budget_bytes is None or total <= budget_bytes:
        return _MemoryStore(shapes, n, dtype)
    per_batch = batch_n * itemsize * sum(math.prod(shape) for shape in shapes.values())
    if per_batch > budget_bytes:
        raise ValueError(
            f"one batch of activations takes {per_batch:,} bytes, more than budget_bytes={budget_bytes:,}; "
            f"lower batch_size to at most {max(1, budget_bytes * batch_n // per_batch)}"
        )
    return _DiskStore(shapes, n, dtype, spill_dir)


class _MemoryStore:
    def __init__(self, shapes, n, dtype):
        self.arrays = {name: np.empty((n, *shape), dtype=dtype) for name, shape in shapes.items()}

    def write(self, start, batch):
        for name, array in batch.items():
            _check_shape(name, array, self.arrays[name].shape[1:])
            self.arrays[name][start : start + len(array)] = array

    def abort(self):
        self.arrays.clear()

    def finish(self):
        return self.arrays


class _DiskStore:
    """Appends each batch to ``<hook>.npy.partial``; renamed and memory-mapped once complete.

    Writing through ``file.write`` rather than a writable memmap keeps dirty pages from
    piling up in the process's resident memory.
    """

    def __init__(self, shapes, n, dtype, spill_dir):
        self.temporary = spill_dir is None
        self.folder = Path(tempfile.mkdtemp(prefix="activations-")) if spill_dir is None else Path(spill_dir)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.shapes, self.n, self.dtype = shapes, n, np.dtype(dtype)
        self.paths = {name: self.folder / f"{name}.npy" for name in shapes}
        self.files = {}
        for name, shape in shapes.items():
            handle = open(f"{self.paths[name]}.partial", "wb")
            header = {"descr": np.lib.format.dtype_to_descr(self.dtype), "fortran_order": False, "shape": (n, *shape)}
            np.lib.format.write_array_header_1_0(handle, header)
            self.files[name] = handle

    def write(self, start, batch):
        for name, array in batch.items():
            _check_shape(name, array, self.shapes[name])
            self.files[name].write(memoryview(np.ascontiguousarray(array)).cast("B"))

    def abort(self):
        for name, handle in self.files.items():
            handle.close()
            Path(f"{self.paths[name]}.partial").unlink(missing_ok=True)
        if self.temporary:
            os.rmdir(self.folder)

    def finish(self):
        arrays = {}
        for name, handle in self.files.items():
            handle.close()
            os.replace(f"{self.paths[name]}.partial", self.paths[name])
            arrays[name] = np.load(self.paths[name], mmap_mode="r")
            if self.temporary:
                # the mapping keeps the data alive; the file disappears with the last reference
                self.paths[name].unlink()
        if self.temporary:
            os.rmdir(self.folder)
        return arrays


def _check_shape(name, array, shape):
    if array.shape[1:] != tuple(shape):
        raise ValueError(f"{name}: a batch gave per-example shape {array.shape[1:]} after {tuple(shape)}; "
                         "pad every batch to the same length (tokenize the whole dataset at once)")
