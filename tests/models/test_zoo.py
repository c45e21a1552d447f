"""The zoo: train on first use, load from cache after, retrain when the recipe changes."""

import json

import pytest
import torch

from models import zoo
from models.train import TrainConfig, train

TRAININGS = []  # one entry per time a recipe actually trained
SETTINGS = {"slope": 3.0, "crash_at": None}


def line(quick: bool, seed: int) -> zoo.Recipe:
    """Fit y = slope * x + 1 with one linear layer: a subject that trains in milliseconds."""
    slope, crash_at = SETTINGS["slope"], SETTINGS["crash_at"]
    cfg = TrainConfig(steps=20 if quick else 40, lr=0.05, checkpoint_every=5, seed=seed)

    def batches(step):
        if step == crash_at:
            raise KeyboardInterrupt
        x = torch.randn(16, 1, generator=torch.Generator().manual_seed(seed * 10**6 + step))
        return x, slope * x + 1

    def fit(model, checkpoint_dir):
        TRAININGS.append((quick, seed, slope))
        loss_fn = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])  # noqa: E731
        return train(model, batches, loss_fn, cfg, checkpoint_dir=checkpoint_dir, progress=False)

    return zoo.Recipe(config={"train": cfg, "slope": slope, "version": 1}, build=lambda: torch.nn.Linear(1, 1), train=fit)


@pytest.fixture(autouse=True)
def isolated_zoo(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path / "zoo"))
    monkeypatch.setattr(zoo, "_REGISTERED", {})
    monkeypatch.setattr(zoo, "SUBJECTS", {})
    monkeypatch.setitem(SETTINGS, "slope", 3.0)
    monkeypatch.setitem(SETTINGS, "crash_at", None)
    TRAININGS.clear()
    zoo.register("line")(line)


def test_first_load_trains_with_a_message_and_the_second_reads_the_cache(tmp_path, capsys):
    first = zoo.load("line", quick=True)
    err = capsys.readouterr().err
    assert "Training zoo subject 'line' (first use, cached at" in err
    assert str(tmp_path / "zoo" / "line") in err
    assert len(TRAININGS) == 1 and not first.training

    second = zoo.load("line", quick=True)
    assert len(TRAININGS) == 1 and "Training" not in capsys.readouterr().err
    assert torch.equal(first.weight, second.weight) and torch.equal(first.bias, second.bias)

    folder = zoo.subject_dir("line", quick=True)
    assert folder.name.startswith("quick-seed0-")
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "history.json", "model.safetensors", "zoo.json"]
    assert json.loads((folder / "config.json").read_text())["slope"] == 3.0


def test_a_changed_recipe_or_variant_trains_again_and_retrain_forces_it():
    zoo.load("line", quick=True)
    zoo.load("line", quick=False)  # the full variant is cached separately
    zoo.load("line", quick=True, seed=1)
    assert len(TRAININGS) == 3
    SETTINGS["slope"] = -2.0
    changed = zoo.load("line", quick=True)
    assert TRAININGS[-1] == (True, 0, -2.0)
    assert changed.weight.item() < 0
    zoo.load("line", quick=True, retrain=True)
    assert len(TRAININGS) == 5


def test_weights_trained_with_other_cpu_kernels_are_not_taken_for_these(monkeypatch):
    from models.kernels import kernels

    zoo.load("line", quick=True)
    zoo.load("line", quick=True)
    assert len(TRAININGS) == 1
    here = zoo.subject_dir("line", quick=True)
    monkeypatch.setattr(zoo, "kernels", lambda: "AVX512-elsewhere")  # another machine's kernels
    assert kernels() != "AVX512-elsewhere" and zoo.subject_dir("line", quick=True) != here
    zoo.load("line", quick=True)
    assert len(TRAININGS) == 2, "a cache filled by other kernels should train its own copy"


def test_a_cached_config_that_differs_is_refused():
    zoo.load("line", quick=True)
    path = zoo.subject_dir("line", quick=True) / "config.json"
    config = json.loads(path.read_text())
    config["slope"] = 9.0
    path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"(?s)slope: saved 9.0, expected 3.0.*retrain=True"):
        zoo.load("line", quick=True)


def test_an_interrupted_first_use_resumes_on_the_next_load(capsys):
    SETTINGS["crash_at"] = 13
    with pytest.raises(KeyboardInterrupt):
        zoo.load("line", quick=True)
    folder = zoo.subject_dir("line", quick=True)
    assert not (folder / "config.json").exists()  # nothing half-cached
    SETTINGS["crash_at"] = None
    capsys.readouterr()
    resumed = zoo.load("line", quick=True)
    assert "resuming an interrupted first use" in capsys.readouterr().err
    assert not (folder / "checkpoints").exists()
    straight = zoo.load("line", quick=True, retrain=True)
    assert torch.equal(resumed.weight, straight.weight) and torch.equal(resumed.bias, straight.bias)


def test_subjects_are_found_lazily_from_import_strings(monkeypatch):
    monkeypatch.setitem(zoo.SUBJECTS, "lazy-line", f"{__name__}:line")
    assert zoo.list() == ["lazy-line", "line"]
    zoo.load("lazy-line", quick=True)
    assert len(TRAININGS) == 1


def test_an_unknown_name_lists_the_close_ones():
    with pytest.raises(ValueError, match=r"no zoo subject named 'lien'. Did you mean 'line'"):
        zoo.load("lien")


def test_training_is_recorded_for_the_report_timing(monkeypatch):
    monkeypatch.setattr(zoo, "TRAINED", [])
    zoo.load("line", quick=True)
    zoo.load("line", quick=True)  # cached: no second record
    assert [(t["name"], t["quick"], t["seed"]) for t in zoo.TRAINED] == [("line", True, 0)], zoo.TRAINED
    assert zoo.TRAINED[0]["seconds"] >= 0
    assert [row["name"] for row in zoo.cached()] == ["line"]
    assert zoo.clear("line") and zoo.cached() == []
