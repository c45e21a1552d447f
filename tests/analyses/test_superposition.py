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
