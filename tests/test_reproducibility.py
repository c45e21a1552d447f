"""Same inputs, same numbers (issue 18, item 4): fresh runs agree, and so do 1 and 2 torch threads.

The training loop runs on the thread count its ``TrainConfig`` states (1 by default), so the weights a
recipe trains do not depend on the cores or the load of the machine (``interp run`` picks its threads
from the free CPUs). ``benchmarks/reproducibility.py`` measures every analysis; these tests keep the
cheap cases true.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmarks.reproducibility import differences, run_once
from models.kernels import OPT_OUT, PINS, cpu_flags, pin_kernels
from models.facts_subject import FactsSubjectConfig, build_facts_model, train_facts_model

REPO = Path(__file__).resolve().parents[1]
HAS_AVX2 = "avx2" in cpu_flags()

PRESETS = ("backprop", "diffusion")  # run twice and on 1 and 2 threads; diffusion's differed on 1 and 2 before
RUNS = (("first", None), ("second", None), ("one thread", 1), ("two threads", 2))  # (label, --threads)


def facts_weights(caller_threads: int, steps: int = 12, **train_fields) -> dict[str, torch.Tensor]:
    """The quick facts subject after ``steps`` updates, trained with the caller on ``caller_threads`` torch threads."""
    config = FactsSubjectConfig.quick(0)
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, steps=steps, warmup_steps=4, eval_every=None,
                                                                   **train_fields))
    before = torch.get_num_threads()
    torch.set_num_threads(caller_threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = build_facts_model(config)
            train_facts_model(model, config, progress=False)
        assert torch.get_num_threads() == caller_threads, "train() must give the caller's thread count back"
    finally:
        torch.set_num_threads(before)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_training_does_not_depend_on_the_callers_threads():
    # Before training was pinned to cfg.threads, 1 and 2 threads ended 12 steps apart (and the
    # quick facts subject's headline figures apart after 400).
    one, two = facts_weights(1), facts_weights(2)
    assert _largest_difference(one, two) == 0.0


def test_threads_none_keeps_the_callers_count_and_can_differ():
    # The check above can fail: with the caller's count (threads=None), 1 and 2 threads do differ.
    one, two = facts_weights(1, threads=None), facts_weights(2, threads=None)
    assert _largest_difference(one, two) > 0.0


def test_train_config_threads_is_checked():
    with pytest.raises(ValueError, match="threads"):
        dataclasses.replace(FactsSubjectConfig.quick(0).train, threads=0)


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESETS)
def test_quick_presets_give_the_same_headline_twice_and_on_1_and_2_threads(name):
    # fresh processes, fresh zoo caches; timings (figures named *seconds*) are not compared
    runs = {label: run_once(name, quick=True, threads=threads, share=None, timeout=900)
            for label, threads in RUNS}
    assert differences(runs["first"]["headline"], runs["second"]["headline"]) == []
    assert differences(runs["one thread"]["headline"], runs["two threads"]["headline"]) == []


@pytest.mark.parametrize("environ, flags, machine, made", [
    ({}, {"avx2", "avx512f"}, "x86_64", PINS),                                   # an AVX512 CPU held to AVX2
    ({}, {"avx2"}, "AMD64", PINS),
    ({"ATEN_CPU_CAPABILITY": "default"}, {"avx2"}, "x86_64",                    # the user's own setting kept
     {k: v for k, v in PINS.items() if k != "ATEN_CPU_CAPABILITY"}),
    ({OPT_OUT: "native"}, {"avx2"}, "x86_64", {}),                             # opted out
    ({OPT_OUT: " Native "}, {"avx2"}, "x86_64", {}),
    ({}, {"avx", "sse4_2"}, "x86_64", {}),                                     # no AVX2: nothing to hold to
    ({}, set(), "arm64", {}),                                                  # an ARM laptop
])
def test_kernels_are_pinned_only_on_x86_with_avx2_and_never_over_the_users_settings(environ, flags, machine, made):
    before = dict(environ)
    assert pin_kernels(environ, flags=flags, machine=machine) == made
    assert environ == {**before, **made}


def _fresh_environment(**settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PINS and k != OPT_OUT}
    return {**env, **settings}


@pytest.mark.skipif(not HAS_AVX2, reason="the kernels are pinned on x86-64 CPUs with AVX2 only")
@pytest.mark.parametrize("settings, expected", [({}, "AVX2+mkl-avx2+onednn-avx2"), ({OPT_OUT: "native"}, None)])
def test_interp_run_records_the_kernels_it_ran_on(tmp_path, settings, expected):
    done = subprocess.run([sys.executable, "-m", "analyses.cli", "run", "params", "--out", str(tmp_path)],
                          env=_fresh_environment(**settings), capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    machine = json.loads((tmp_path / "params" / "results.json").read_text())["machine"]
    native = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                            env=_fresh_environment(), capture_output=True, text=True, timeout=120).stdout.strip()
    assert machine["kernels"] == (expected or native)
    assert machine["torch_cpu_capability"] == (expected or native).split("+")[0]


TRAIN_AND_HASH = ("import hashlib, torch; from tests.test_reproducibility import facts_weights; "
                  "w = facts_weights(1); print(hashlib.sha256(b''.join(w[k].numpy().tobytes() for k in sorted(w))).hexdigest())")


@pytest.mark.skipif(not HAS_AVX2, reason="the kernels are pinned on x86-64 CPUs with AVX2 only")
def test_the_pinned_kernels_train_what_torchs_own_choice_trains_on_an_avx2_cpu_and_differ_where_it_chooses_more():
    # What pinning buys, measured here: the weights the quick facts subject reaches in 12 steps are those of
    # a CPU whose best is AVX2 (ATen's AVX2 kernels, MKL held to AVX2). Where this CPU has AVX512, torch's own
    # choice gives other weights, which is why interp pins.
    def weights_hash(**settings):
        done = subprocess.run([sys.executable, "-c", TRAIN_AND_HASH], env=_fresh_environment(**settings),
                              capture_output=True, text=True, timeout=300, cwd=REPO)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.strip()

    pinned = weights_hash(**PINS)
    assert weights_hash(**PINS, MKL_ENABLE_INSTRUCTIONS="AVX2") == pinned   # MKL told the CPU is AVX2-only
    native = subprocess.run([sys.executable, "-c", "import torch; print(torch.backends.cpu.get_cpu_capability())"],
                            env=_fresh_environment(), capture_output=True, text=True, timeout=120).stdout.strip()
    if native == "AVX512":
        assert weights_hash(**{OPT_OUT: "native"}) != pinned
