"""kill -9 of a training run at every line of its checkpoint write, then a resume: the weights
end bit-identical to a run that was never interrupted.

``KILL_POINTS_AT_LEAST`` is counted in docs/reliability.md.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KILL_POINTS_AT_LEAST = 40  # lines of save_checkpoint and its atomic file writes, for the step-20 checkpoint

# A helper trains uninterrupted once; then for k = 1, 2, ... it forks a child that trains
# and stops at the k-th line run while writing the step-20 checkpoint, kills it with
# SIGKILL there, resumes the run in the same folder and compares the final weights.
KILL_EVERY_LINE = textwrap.dedent('''
    import contextlib, io, json, os, shutil, signal, sys, time
    from pathlib import Path
    import torch
    import models.checkpoint, models.checkpoint.runs
    from models.train import TrainConfig, train

    root = Path(sys.argv[1])
    CFG = TrainConfig(steps=30, lr=0.05, checkpoint_every=10, seed=3)
    WRITERS = {(models.checkpoint.__file__, "atomic_path")}

    def batches(step):
        g = torch.Generator().manual_seed(step)
        x = torch.randn(16, 4, generator=g)
        return x, x.sum(-1, keepdim=True)

    def loss_fn(model, batch):
        x, y = batch
        return torch.nn.functional.mse_loss(model(x), y)

    def run(folder):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        with contextlib.redirect_stderr(io.StringIO()):  # "Resuming from ..." notes
            train(model, batches, loss_fn, CFG, checkpoint_dir=folder, progress=False)
        return {k: v.clone() for k, v in model.state_dict().items()}

    expected = run(root / "uninterrupted")
    results, k = [], 1
    while True:
        folder, marker = root / f"run-{k}", root / f"reached-{k}"
        pid = os.fork()
        if pid == 0:
            count, active = [0], [False]
            def local(frame, event, arg):
                if event == "line":
                    count[0] += 1
                    if count[0] == k:
                        marker.touch()
                        time.sleep(600)
                return local
            def outer(frame, event, arg):  # save_checkpoint's own lines; inactive once it returns
                if event == "return":
                    active[0] = False
                return local(frame, event, arg) and outer
            def tracer(frame, event, arg):
                code = frame.f_code
                if code.co_name == "save_checkpoint" and frame.f_locals.get("step") == 20:
                    active[0] = True
                    return outer
                # and each atomic file write inside it (the steps of its renames)
                return local if active[0] and (code.co_filename, code.co_name) in WRITERS else None
            sys.settrace(tracer)
            run(folder)
            sys.settrace(None)
            os._exit(0)
        while True:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            if marker.exists():
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                break
            time.sleep(0.002)
        if done:
            break
        left = sorted(p.name for p in folder.iterdir())
        resumed = run(folder)  # the same call again: resumes from the newest good checkpoint
        equal = all(torch.equal(resumed[n], expected[n]) for n in expected)
        results.append({"line": k, "left": left, "equal": equal})
        shutil.rmtree(folder)
        k += 1
    print(json.dumps(results))
''')


def test_kill_9_at_every_line_of_a_checkpoint_write_then_resume_ends_bit_identical(tmp_path):
    done = subprocess.run([sys.executable, "-c", KILL_EVERY_LINE, str(tmp_path)], capture_output=True, text=True,
                          cwd=REPO, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert len(results) >= KILL_POINTS_AT_LEAST, f"only {len(results)} kill points: is the tracer reaching the write?"
    different = [r for r in results if not r["equal"]]
    assert not different, f"resumed weights differ after kill -9 at {len(different)} lines, first: {different[0]}"
    # some kills left only the step-10 checkpoint (and a temporary), some the finished step 20
    assert any("step-00000020" not in r["left"] for r in results)
    assert any("step-00000020" in r["left"] for r in results)
