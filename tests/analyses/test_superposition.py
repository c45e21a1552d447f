import json

from analyses import superposition


def test_quick_report_is_complete(tmp_path):
    report = superposition.run(superposition.Config.quick())
    folder = report.save(tmp_path)
    results = json.loads((folder / "results.json").read_text())
    headline = results["headline"]
    assert headline["sae_mmcs_topk"] >= 0.9 or headline["sae_mmcs_l1"] >= 0.9
    assert 0 < headline["superposition_onset_sparsity"] < 1, "the dense model should not be superposed"
    for name in ("intro", "intro_represented", "dimensionality", "phase", "sae"):
        assert (folder / "figures" / f"{name}.png").stat().st_size > 5_000, name
    assert (folder / "dimensionality.csv").exists() and (folder / "phase.csv").exists()


def test_sticky_counts_file_a_feature_only_within_the_tolerance():
    import pandas as pd

    tol = superposition.STICKY_TOLERANCE
    dims = pd.DataFrame({"norm": [1.0] * 5 + [0.1],
                         "dimensionality": [0.5, 0.5 + tol, 0.375 - tol * 0.9, 0.5 + tol * 1.1, 0.101, 0.5]})
    counts = superposition.sticky_counts(dims).set_index("fraction")["features"].to_dict()
    # 0.101 (the committed run's median) is near no fraction; the unrepresented last row is not counted
    assert counts == {"1/2": 2, "3/8": 1, "none": 2}, counts


def test_plateau_needs_its_stated_number_of_points():
    def claim(length):
        return superposition.plateau_claim({"length": length})

    n = superposition.PLATEAU_POINTS
    assert claim(n).holds and not claim(n - 1).holds, "two points near 1/2 are not a plateau"
    assert f"{n - 1} >= {n} (fails)" in claim(n - 1).markdown()


def test_sticky_plateau_counts_consecutive_points_within_tolerance():
    import pandas as pd

    dims = pd.DataFrame({"inverse_density": [1, 2, 3, 4, 5], "dimensions_per_feature": [0.9, 0.52, 0.46, 0.3, 0.5]})
    assert superposition.sticky_plateau(dims)["length"] == 2
    assert superposition.sticky_plateau(dims, tolerance=0.01)["length"] == 1
