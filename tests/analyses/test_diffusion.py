"""The diffusion analysis: config validation, metrics against references, and a smoke run
of the quick preset that writes every report file."""

import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import binomtest
from sklearn.metrics import pairwise_distances

from analyses.diffusion import Config, run
from analyses.diffusion.metrics import mean_pairwise_distance
from interp.intervals import difference_interval, wilson_interval


@pytest.mark.parametrize("change, fragment", [
    (dict(guidance_scales=(1.0, 2.0)), "include 0"),
    (dict(guidance_scales=(0.0, "a")), "finite numbers"),
    (dict(early_steps=500, shapes_train_steps=500), "early_steps"),
    (dict(samples_per_caption=1), ">= 2"),
    (dict(n_steps=0), "n_steps"),
])
def test_bad_configs_say_what_to_change(change, fragment):
    with pytest.raises(ValueError, match=fragment):
        Config(**change)


def test_mean_pairwise_distance_matches_scikit_learn():
    x = torch.randn(7, 1, 3, 3, generator=torch.Generator().manual_seed(0))
    d = pairwise_distances(x.reshape(7, -1).numpy())
    assert mean_pairwise_distance(x) == pytest.approx(d[np.triu_indices(7, 1)].mean(), rel=1e-6)
    assert mean_pairwise_distance(x[:1]) == 0.0


def test_wilson_interval_matches_scipy():
    for k, n in ((0, 20), (13, 40), (40, 40)):
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k / n, n) == pytest.approx((ci.low, ci.high), abs=2e-4)


def test_newcombe_interval_contains_the_difference_and_covers_zero_for_equal_rates():
    low, high = difference_interval(30, 50, 30, 50)
    assert low < 0 < high and high == pytest.approx(-low)
    low, high = difference_interval(45, 50, 20, 50)
    assert 0 < low < 0.5 < high


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    report = run(Config.quick())
    return report, report.save(tmp_path_factory.mktemp("out"))


def test_quick_preset_writes_every_report_file(quick_report):
    report, folder = quick_report
    for name in ("report.md", "report.html", "results.json", "sampler_comparison.csv", "guidance_sweep.csv",
                 "clip_zero_shot.csv", "clip_direction_cosines.csv", "training_time.csv"):
        assert (folder / name).exists(), f"missing {name}"
    figures = {p.stem for p in (folder / "figures").glob("*.png")}
    assert figures >= {"forward_noising", "digit_samples", "caption_samples", "noise_vs_no_noise", "guidance_curve",
                       "guidance_samples", "clip_zero_shot", "clip_directions", "training_loss"}
    results = json.loads((folder / "results.json").read_text())
    headline = results["headline"]
    assert headline["add_noise_max_error"] == 0.0
    for key in ("digits_recognised", "shapes_caption_recognised", "no_noise_diversity_ratio", "guidance_gain_points",
                "clip_hat_cosine", "clip_zero_shot_attribute_accuracy"):
        assert isinstance(headline[key], (int, float)) and math.isfinite(headline[key]), key
    # Even the quick preset's barely trained model collapses without noise.
    assert headline["no_noise_diversity_ratio"] < 0.5


def test_report_text_agrees_with_its_numbers(quick_report):
    report, folder = quick_report
    text = (folder / "report.md").read_text()
    digits = report.headlines["digits_recognised"]["value"]
    assert f"{100 * digits:.1f}% of" in text, "the samples section must quote the measured recognition rate"
    assert "better aligned than every baseline" in text or "NOT better aligned" in text
