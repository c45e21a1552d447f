"""kill -9 of a zoo build once a checkpoint has landed, then a rerun: the build resumes and ends
with weights bit-identical to a build that was never interrupted, and the zoo holds no
half-written file.

``interp run`` builds only the subjects its analyses name, and a subject registered by a test
(``zoo.register``) exists in the registering process only, so the helper process here drives
``zoo.load`` itself: the call ``interp run`` makes when an analysis asks for its subject.
``KILL_CASES`` is counted in docs/reliability.md.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from models import checkpoint as ckpt

REPO = Path(__file__).resolve().parents[2]
NAME = "tiny-kill"
STEPS, EVERY = 100, 10
# the checkpoints after which the build is killed, one kill (and rerun) each
KILL_CASES = [(10,), (10, 30)]
FINISHED = {"config.json", "history.json", "model.safetensors", "zoo.json"}

# A tiny subject (dropout, so the saved RNG state matters too) built through zoo.load. Each step
# sleeps 20 ms: the build then lasts about 2 s, so a poll every few milliseconds catches it
# between two checkpoints; the sleep changes no number.
BUILD = textwrap.dedent(f'''
    import time
    import torch
    from models import zoo
    from models.train import TrainConfig, train

    @zoo.register({NAME!r})
    def tiny(quick, seed):
        cfg = TrainConfig(steps={STEPS}, lr=0.05, checkpoint_every={EVERY}, seed=seed)

        def batches(step):
            time.sleep(0.02)
            g = torch.Generator().manual_seed(seed * 10**6 + step)
            x = torch.randn(16, 4, generator=g)
            return x, x.sum(-1, keepdim=True)

        def loss_fn(model, batch):
            x, y = batch
            return torch.nn.functional.mse_loss(model(x), y)

        return zoo.Recipe(
            config={{"train": cfg, "version": 1}},
            build=lambda: torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                                              torch.nn.Linear(16, 1)),
            train=lambda model, folder: train(model, batches, loss_fn, cfg, checkpoint_dir=folder, progress=False,
                                              desc={NAME!r}),
        )

    zoo.load({NAME!r}, quick=True, seed=0)
    print(zoo.subject_dir({NAME!r}, quick=True, seed=0).relative_to(zoo.cache_dir()))
''')


def build(cache: Path) -> subprocess.Popen:
    env = {**os.environ, "INTERP_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", BUILD], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish(run: subprocess.Popen) -> tuple[str, str]:
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, f"the build failed (exit {run.returncode}):\n{err}"
    return out.strip(), err


def every_file(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return ckpt.load_tensors(folder / ckpt.WEIGHTS)[0]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    """The subject built once, start to finish, in a cache of its own; its folder."""
    cache = tmp_path_factory.mktemp("uninterrupted")
    relative, _ = finish(build(cache))
    return cache / relative


def kill_after(run: subprocess.Popen, cache: Path, step: int) -> list[str]:
    """SIGKILL ``run`` as soon as its checkpoint of ``step`` is complete; what the cache then holds."""
    landed = f"checkpoints/step-{step:08d}/trainer.json"  # written last: the checkpoint is complete
    started = time.monotonic()
    while not list(cache.glob(f"{NAME}/*/{landed}")):
        assert run.poll() is None, f"the build ended before its step-{step} checkpoint:\n{run.stderr.read()}"
        assert time.monotonic() - started < 120, f"no step-{step} checkpoint after 120 s"
        time.sleep(0.002)
    run.kill()
    run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL
    return every_file(cache)


@pytest.mark.parametrize("kills", KILL_CASES, ids=["-".join(map(str, k)) for k in KILL_CASES])
def test_kill_9_of_a_zoo_build_then_a_rerun_ends_bit_identical(uninterrupted, tmp_path, kills):
    cache = tmp_path / "zoo"
    for step in kills:  # each build after the first resumes the one killed before it
        left = kill_after(build(cache), cache, step)
        assert not [f for f in left if f.endswith(ckpt.CONFIG) and "checkpoints" not in f], (
            f"the build finished before the kill after step {step}: make it slower")
        assert any(f"step-{step:08d}/trainer.json" in f for f in left), left
    relative, err = finish(build(cache))
    assert "resuming an interrupted first use" in err and f"step-{kills[-1]:08d}" in err, (
        f"the rerun did not resume from the checkpoint the kill left:\n{err}")
    folder = cache / relative
    assert relative == str(uninterrupted.relative_to(uninterrupted.parents[1])), "a different cache key"

    expected, resumed = weights(uninterrupted), weights(folder)
    assert resumed.keys() == expected.keys()
    different = [name for name in expected if not torch.equal(resumed[name], expected[name])]
    assert not different, f"weights differ from an uninterrupted build after kill -9 at {kills}: {different}"
    assert (folder / "history.json").read_bytes() == (uninterrupted / "history.json").read_bytes()
    # nothing half-written: the finished subject's files, no checkpoint, no temporary file
    assert every_file(cache) == sorted(f"{relative}/{name}" for name in FINISHED), every_file(cache)
    assert json.loads((folder / ckpt.CONFIG).read_text())["version"] == 1
