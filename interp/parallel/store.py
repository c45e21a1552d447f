"""Finished tasks of a sweep kept on disk as they finish, so that a sweep stopped half-way
(Ctrl-C, a killed job, a full queue's time limit) resumes without recomputing them.

A task's key is a hash of its inputs written as canonical JSON, so a task list rebuilt by
the same code finds its stored results. A result is written as two files, ``KEY.json``
(the structure: numbers, strings, lists, dicts, table columns) and ``KEY.npz`` (its arrays),
and loaded without unpickling anything (``numpy.load(allow_pickle=False)``): a stored folder
is data, not code. What a result may hold: ``None``, bools, ints, floats (NaN and infinities
too), strings, lists, tuples, dicts with string keys, numpy arrays of numbers or strings,
torch tensors (not bfloat16) and pandas DataFrames with a default index; it comes back equal
bit for bit, dtypes included.

    >>> import tempfile, pandas as pd, torch
    >>> store = TaskStore(tempfile.mkdtemp(), "demo")
    >>> key = task_key({"cell": 3, "seed": 7})
    >>> store.put(key, {"loss": 0.25, "w": torch.ones(2), "table": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})})
    >>> sorted(store.get(key)), key in store.keys()
    (['loss', 'table', 'w'], True)
"""

import dataclasses
import hashlib
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from models.checkpoint import atomic_path


def task_json(task: Any) -> str:
    """``task`` as canonical JSON (sorted keys); dataclasses and named tuples count as dicts."""
    return json.dumps(_plain(task), sort_keys=True, separators=(",", ":"), allow_nan=True)


def task_key(task: Any) -> str:
    """A stable 20-character name for ``task``: the hash of its canonical JSON."""
    return hashlib.sha256(task_json(task).encode()).hexdigest()[:20]


def fingerprint(value: Any) -> str:
    """A hash of what ``value`` holds: the bytes of its tensors, arrays and tables, a module's weights and
    config, recursively through dicts, lists and tuples (other objects by their type and ``repr``). A store
    files each result under the task's key *and* this fingerprint of the sweep's function and shared inputs,
    so that two sweeps with the same task records but different inputs never read each other's results."""
    digest = hashlib.blake2b(digest_size=16)
    _feed(digest, value, depth=0)
    return digest.hexdigest()


def _feed(digest, value: Any, depth: int) -> None:
    if depth > 20:
        raise TypeError("the shared inputs nest too deep to fingerprint")
    digest.update(type(value).__qualname__.encode() + b"|")
    if isinstance(value, torch.nn.Module):
        digest.update(repr(getattr(value, "cfg", None)).encode())
        _feed(digest, value.state_dict(), depth + 1)
    elif isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{value.dtype}{tuple(value.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy() if tensor.numel() else b"")
    elif isinstance(value, np.ndarray):
        digest.update(f"{value.dtype}{value.shape}".encode())
        digest.update(repr(value.tolist()).encode() if value.dtype == object else np.ascontiguousarray(value).data)
    elif isinstance(value, pd.DataFrame):
        digest.update(repr(list(value.columns)).encode())
        digest.update(pd.util.hash_pandas_object(value, index=True).to_numpy().data)
    elif isinstance(value, dict):
        for key, item in value.items():
            digest.update(repr(key).encode())
            _feed(digest, item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _feed(digest, item, depth + 1)
    elif callable(value) and hasattr(value, "__qualname__"):
        digest.update(f"{getattr(value, '__module__', '')}.{value.__qualname__}".encode())
    else:
        digest.update(repr(value).encode())


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return _plain(value._asdict())
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"a task's dict keys must be strings, got {list(value)!r}")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"a task must be made of numbers, strings, lists and dicts (it is its own record and key); "
                    f"got {type(value).__name__}: {value!r:.80}")


class TaskStore:
    """One sweep's finished results under ``folder/name/`` (``name`` with spaces and slashes as ``_``)."""

    def __init__(self, folder: str | Path, name: str):
        self.folder = Path(folder) / re.sub(r"[^\w.-]+", "_", name)
        self.folder.mkdir(parents=True, exist_ok=True)

    def keys(self) -> set[str]:
        """Keys of the tasks whose results are stored (both files present)."""
        return {p.stem for p in self.folder.glob("*.json") if (self.folder / f"{p.stem}.npz").exists()}

    def put(self, key: str, result: Any) -> None:
        """Store ``result`` under ``key``; each file is written to a temporary name and renamed, the
        structure last, so that a kill at any moment leaves either the whole result or none."""
        arrays: dict[str, np.ndarray] = {}
        tree = _encode(result, arrays)
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        _write(self.folder / f"{key}.npz", buffer.getvalue())
        _write(self.folder / f"{key}.json", json.dumps(tree, allow_nan=True).encode())

    def get(self, key: str) -> Any:
        """The result stored under ``key``."""
        tree = json.loads((self.folder / f"{key}.json").read_text())
        with np.load(self.folder / f"{key}.npz", allow_pickle=False) as arrays:
            return _decode(tree, {name: arrays[name] for name in arrays.files})


def _write(path: Path, data: bytes) -> None:
    with atomic_path(path) as partial:
        partial.write_bytes(data)


def _array(value: np.ndarray, arrays: dict[str, np.ndarray]) -> str:
    if value.dtype == object:
        raise TypeError("a stored array cannot hold Python objects; use numbers or strings")
    name = f"a{len(arrays)}"
    arrays[name] = value
    return name


def _encode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return {"$float": repr(value)}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return {"$numpy": _array(np.asarray(value), arrays)}
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            raise TypeError("bfloat16 tensors cannot be stored; convert the result to float32")
        return {"$tensor": _array(value.detach().cpu().numpy(), arrays)}
    if isinstance(value, np.ndarray):
        return {"$numpy": _array(value, arrays)}
    if isinstance(value, pd.DataFrame):
        if not isinstance(value.index, pd.RangeIndex) or value.index.start != 0 or value.index.step != 1:
            raise TypeError("a stored DataFrame needs the default index; call reset_index() first")
        columns = []
        for name in value.columns:
            if not isinstance(name, str):
                raise TypeError(f"a stored DataFrame needs string column names, got {name!r}")
            column = value[name]
            if column.dtype == object or not isinstance(column.dtype, np.dtype):  # Python objects, pandas's str
                columns.append([name, str(column.dtype), [_encode(v, arrays) for v in column.tolist()]])
            else:
                columns.append([name, "array", _array(column.to_numpy(), arrays)])
        return {"$frame": columns, "rows": len(value)}
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, arrays) for v in value]}
    if isinstance(value, list):
        return [_encode(v, arrays) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"a stored dict needs string keys, got {list(value)!r:.80}")
        if any(k.startswith("$") for k in value):
            return {"$dict": {k: _encode(v, arrays) for k, v in value.items()}}
        return {k: _encode(v, arrays) for k, v in value.items()}
    raise TypeError(f"cannot store a {type(value).__name__} in a task result")


def _decode(tree: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(tree, list):
        return [_decode(v, arrays) for v in tree]
    if not isinstance(tree, dict):
        return tree
    if "$float" in tree:
        return float(tree["$float"])
    if "$numpy" in tree:
        array = arrays[tree["$numpy"]]
        return array[()] if array.ndim == 0 else array
    if "$tensor" in tree:
        return torch.from_numpy(arrays[tree["$tensor"]].copy())
    if "$tuple" in tree:
        return tuple(_decode(v, arrays) for v in tree["$tuple"])
    if "$dict" in tree:
        return {k: _decode(v, arrays) for k, v in tree["$dict"].items()}
    if "$frame" in tree:
        data = {name: arrays[values] if kind == "array" else pd.Series(_objects(_decode(values, arrays))).astype(kind)
                for name, kind, values in tree["$frame"]}
        return pd.DataFrame(data, index=pd.RangeIndex(tree["rows"]))
    return {k: _decode(v, arrays) for k, v in tree.items()}


def _objects(values: list) -> np.ndarray:
    column = np.empty(len(values), dtype=object)
    column[:] = values
    return column
