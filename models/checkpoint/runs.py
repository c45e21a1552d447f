"""The checkpoint folders of one training run: ``step-XXXXXXXX/`` written atomically.

Each folder holds ``model.safetensors`` and ``config.json`` (openable with
``models.checkpoint.load_model``), ``optimizer.safetensors``, ``rng.safetensors`` and
``trainer.json`` (step, train config, history), written last: a folder without it is
incomplete and ignored. ``models.train.train`` saves and resumes through these functions.
"""

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from models import checkpoint as ckpt

# TrainConfig fields that do not change the weights, so a resume may differ in them
BOOKKEEPING = {"checkpoint_every", "keep_last"}

_STEP = re.compile(r"^step-(\d+)$")
TRAINER = "trainer.json"


def step_name(step: int) -> str:
    return f"step-{step:08d}"


def latest_checkpoint(checkpoint_dir: str | Path) -> Path | None:
    """The newest complete checkpoint folder in ``checkpoint_dir``, or None."""
    found = _checkpoints(Path(checkpoint_dir))
    return found[-1][1] if found else None


def _checkpoints(root: Path) -> list[tuple[int, Path]]:
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = _STEP.match(child.name)
        if match and (child / TRAINER).is_file():  # trainer.json is written last
            found.append((int(match.group(1)), child))
    return sorted(found)


def remove_temporaries(root: Path) -> None:
    """Remove what an interrupted save left (never a complete checkpoint)."""
    if root.is_dir():
        for child in root.iterdir():
            if child.name.startswith(".step-") and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)


def save_checkpoint(
    root: Path,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: Any,
    history: list[dict[str, float]],
    model_config: Any = None,
) -> Path:
    """Write ``root/step-XXXXXXXX/`` atomically; keep the newest ``cfg.keep_last``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_name(step)
    tmp = root / f".{final.name}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        ckpt.save_model(model, tmp, model_config)
        ckpt.save_optimizer(optimizer, tmp / "optimizer.safetensors")
        ckpt.save_tensors(ckpt.rng_state(), tmp / "rng.safetensors")
        state = {"step": step, "train_config": dataclasses.asdict(cfg), "history": history}
        ckpt.write_json(state, tmp / TRAINER)
        if final.exists():  # only when a resume=False run re-saves a step
            old = root / f".{final.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            final.rename(old)
            shutil.rmtree(old)
        tmp.rename(final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # Later steps can only come from an older run that resume=False replaced.
    found = _checkpoints(root)
    stale = [p for s, p in found if s > step] + [p for s, p in found if s <= step][: -cfg.keep_last]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return final


def restore(
    folder: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    cfg: Any,
    model_config: Any,
) -> tuple[int, list[dict[str, float]]]:
    state = json.loads((folder / TRAINER).read_text())
    saved_cfg = {k: v for k, v in state["train_config"].items() if k not in BOOKKEEPING}
    now_cfg = {k: v for k, v in dataclasses.asdict(cfg).items() if k not in BOOKKEEPING}
    differences = ckpt.config_differences(saved_cfg, now_cfg)
    if differences:
        raise ValueError(
            f"cannot resume from {folder}: it was trained with a different TrainConfig:\n  "
            + "\n  ".join(differences)
            + "\nUse the same config, another checkpoint_dir, or resume=False."
        )
    if state["step"] > cfg.steps:
        raise ValueError(f"checkpoint {folder} is at step {state['step']}, past steps={cfg.steps}")
    ckpt.load_weights(model, folder, expected_config=model_config)
    ckpt.load_optimizer(optimizer, folder / "optimizer.safetensors")
    rng, _ = ckpt.load_tensors(folder / "rng.safetensors")
    ckpt.set_rng_state(rng)
    return state["step"], state["history"]
