"""Saving and loading trained subjects: safetensors weights plus a JSON config.

    >>> import tempfile, torch
    >>> from models.checkpoint import save_model, load_model
    >>> net = torch.nn.Linear(3, 2)
    >>> folder = save_model(net, tempfile.mkdtemp(), config={"d_in": 3, "d_out": 2})
    >>> again = load_model(folder, lambda c: torch.nn.Linear(c["d_in"], c["d_out"]))
    >>> torch.equal(again.weight, net.weight)
    True

A saved model is a folder holding ``model.safetensors`` (the state dict) and
``config.json`` (the model config, ``dataclasses.asdict`` of it when it is a dataclass).

This package is the project's one persistence layer: this module saves and loads a model's
folder and writes files atomically (``atomic_path``); :mod:`models.checkpoint.runs` keeps a
training run's ``step-XXXXXXXX/`` folders (weights, optimizer, RNG, trainer state) for
``models.train``; :mod:`models.checkpoint.file_format` tells a weights file from its bytes. The
zoo (``models.zoo``) names and caches trained subjects on top of it; ``interp.parallel.store``
writes sweep results with its ``atomic_path``.
Pickles are never loaded: unpickling runs arbitrary code, so a ``torch.save`` file is
refused with a message instead of being opened (``torch.load`` is never called).

Every file is written atomically: to a temporary file in the same folder, then
``os.replace``-d over the old one, so an interrupt or a crash mid-write leaves the
previous file in place, never a truncated one.

The optimizer and RNG helpers (``save_optimizer``, ``load_optimizer``, ``rng_state``,
``set_rng_state``) flatten their state into tensors so that training checkpoints are
safetensors too; ``models.train`` uses them.
"""

import contextlib
import dataclasses
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch as st  # called as st.save_file so tests can simulate a crash
import torch
from torch import nn

from models.checkpoint import file_format

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


# ---------------------------------------------------------------------------- files


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    The temporary file lives in the same folder so that ``os.replace`` is a rename on
    one file system, which is atomic: readers see the old file or the new one, never
    half of one. On any exception (KeyboardInterrupt included) the temporary is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def save_tensors(
    tensors: dict[str, torch.Tensor],
    path: str | os.PathLike,
    metadata: dict[str, str] | None = None,
) -> None:
    """Save a dict of tensors as safetensors, atomically.

    safetensors refuses tensors that share memory (tied embeddings) or are
    non-contiguous, so shared ones are cloned and every tensor is made contiguous.
    """
    seen: set[int] = set()
    flat = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu()
        key = tensor.untyped_storage().data_ptr()
        if key in seen or not tensor.is_contiguous():
            tensor = tensor.clone(memory_format=torch.contiguous_format)
        seen.add(key)
        flat[name] = tensor.contiguous()
    with atomic_path(path) as tmp:
        st.save_file(flat, str(tmp), metadata=metadata)


def check_safetensors(path: str | os.PathLike) -> None:
    """Raise ``ValueError`` unless ``path`` is a valid safetensors file, saying what it is.

    Validity is parsed as the safetensors specification states it (``models.checkpoint.file_format``):
    the header length, a JSON header that agrees with the file size. Only a file that fails
    that is named from its first bytes (``torch.save`` writes a zip archive, ``pickle.dump``
    opens with 0x80 and a protocol number), so a valid file whose header length happens to
    start with the byte 0x80 is read, not mistaken for a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    problem = file_format.safetensors_problem(path)
    if problem is None:
        return
    what = file_format.looks_like(path)
    if what is not None:
        raise ValueError(
            f"{path} is not a safetensors file (it is {what}); interp never loads pickles "
            "because unpickling runs arbitrary code. Re-save the weights with "
            "models.checkpoint.save_model (or safetensors.torch.save_file) from a trusted "
            "environment."
        )
    raise ValueError(
        f"{path} is not a safetensors file ({problem}); it may be truncated or "
        "corrupted: save it again (models.checkpoint.save_model), or delete it to have the "
        "zoo rebuild it. interp never loads pickles."
    )


def load_tensors(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load ``(tensors, metadata)`` from a safetensors file, refusing anything else."""
    check_safetensors(path)
    try:
        with safetensors.safe_open(str(path), framework="pt", device=str(device)) as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except safetensors.SafetensorError as e:
        raise ValueError(f"{path} is not a readable safetensors file: {e}") from e
    return tensors, metadata


# ---------------------------------------------------------------------------- configs


def config_dict(config: Any) -> dict:
    """The JSON form of a config: ``asdict`` of a dataclass, a dict as is, None as {}.

    Dataclasses nested in a dict become dicts, values JSON cannot hold (a
    ``torch.dtype``) become their ``str``, tuples become lists. Comparing two configs compares these forms, so a config read back from JSON
    equals the one that was saved.
    """
    if config is None:
        return {}
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, dict):
        raise TypeError(f"a config must be a dataclass instance or a dict, not {type(config).__name__}")

    def plain(value: Any) -> Any:  # called by json for what it cannot write itself
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)  # dataclasses nested in a dict
        return str(value)

    return json.loads(json.dumps(config, default=plain, sort_keys=True))


def config_differences(saved: Any, expected: Any) -> list[str]:
    """Lines ``key: saved X, expected Y`` for every key on which two configs differ."""
    saved, expected = config_dict(saved), config_dict(expected)
    lines = []
    for key in sorted(saved.keys() | expected.keys()):
        a, b = saved.get(key, "<missing>"), expected.get(key, "<missing>")
        if a != b:
            lines.append(f"{key}: saved {a!r}, expected {b!r}")
    return lines


def read_config(directory: str | os.PathLike) -> dict:
    """The config saved beside a model's weights (``config.json``)."""
    path = Path(directory) / CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"no {CONFIG} in {directory}: not a saved model folder")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------- models


def save_model(model: nn.Module, directory: str | os.PathLike, config: Any = None) -> Path:
    """Save ``model.state_dict()`` and ``config`` into ``directory``; return it.

    The weights are written before the config, so a folder with a ``config.json`` is
    complete: code that treats ``config.json`` as the "done" marker (the zoo) is safe.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors(model.state_dict(), directory / WEIGHTS)
    write_json(config_dict(config), directory / CONFIG)
    return directory


MAX_PROBLEMS_SHOWN = 4


def load_weights(
    model: nn.Module, path: str | os.PathLike, *, expected_config: Any = None
) -> nn.Module:
    """Load saved weights into ``model`` in place, refusing any mismatch; return it.

    ``path`` is a saved model folder or a ``.safetensors`` file. With
    ``expected_config``, the folder's ``config.json`` must equal it. Missing,
    unexpected or differently shaped tensors are refused with their names.
    """
    path = Path(path)
    directory, file = (path, path / WEIGHTS) if path.is_dir() else (path.parent, path)
    if expected_config is not None:
        differences = config_differences(read_config(directory), expected_config)
        if differences:
            raise ValueError(
                f"checkpoint {directory} was saved with a different config:\n  "
                + "\n  ".join(differences)
                + "\nBuild the model with the saved config (models.checkpoint.read_config) "
                "or retrain it."
            )
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    saved, _ = load_tensors(file, device=device)
    own = model.state_dict()
    problems = [f"missing from checkpoint: {k}" for k in own if k not in saved]
    problems += [f"not in model: {k}" for k in saved if k not in own]
    problems += [
        f"{k}: checkpoint shape {tuple(saved[k].shape)}, model shape {tuple(own[k].shape)}"
        for k in own
        if k in saved and saved[k].shape != own[k].shape
    ]
    if problems:
        shown = problems[:MAX_PROBLEMS_SHOWN]  # a wrong width touches every layer: name a few, count the rest
        more = f"\n  ... and {len(problems) - len(shown)} more" if len(problems) > len(shown) else ""
        raise ValueError(
            f"checkpoint {file} does not fit {type(model).__name__} ({len(problems)} tensor(s) differ):\n  "
            + "\n  ".join(shown) + more
            + "\nIs the model built with the same config as the checkpoint?"
        )
    model.load_state_dict(saved)
    return model


def load_model(
    directory: str | os.PathLike,
    build: Callable[[dict], nn.Module],
    *,
    expected_config: Any = None,
    device: str | torch.device | None = None,
) -> nn.Module:
    """Build a model from a saved folder's config with ``build(config)`` and load it.

    >>> # model = load_model("runs/facts", lambda c: Transformer(TransformerConfig(**c)))
    """
    model = build(read_config(directory))
    if device is not None:
        model = model.to(device)
    return load_weights(model, directory, expected_config=expected_config)


# ---------------------------------------------------------------------------- optimizer


def save_optimizer(optimizer: torch.optim.Optimizer, path: str | os.PathLike) -> None:
    """Save an optimizer's state dict as safetensors, atomically.

    Per-parameter state tensors become ``state.{index}.{name}``; everything that is
    not a tensor (param groups, scalar state) goes into the metadata as JSON.
    """
    state_dict = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, state in state_dict["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value
            else:
                scalars[f"{index}.{name}"] = value
    metadata = {
        "param_groups": json.dumps(state_dict["param_groups"]),
        "scalars": json.dumps(scalars),
    }
    save_tensors(tensors, path, metadata)


def load_optimizer(optimizer: torch.optim.Optimizer, path: str | os.PathLike) -> None:
    """Restore an optimizer saved by ``save_optimizer`` (same parameters, same order)."""
    tensors, metadata = load_tensors(path)
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in json.loads(metadata["scalars"]).items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    groups = json.loads(metadata["param_groups"])
    for group in groups:
        if "betas" in group:  # JSON turned the tuple into a list
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# ---------------------------------------------------------------------------- RNG


def rng_state() -> dict[str, torch.Tensor]:
    """torch's global RNG states (CPU and every CUDA device) as uint8 tensors."""
    states = {"torch.cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            states[f"torch.cuda.{i}"] = s
    return states


def set_rng_state(states: dict[str, torch.Tensor]) -> None:
    """Restore what ``rng_state`` returned (CUDA states only where devices match)."""
    torch.set_rng_state(states["torch.cpu"].cpu())
    names = [k for k in states if k.startswith("torch.cuda.")]
    cuda = [states[k].cpu() for k in sorted(names, key=lambda k: int(k.rsplit(".", 1)[1]))]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
