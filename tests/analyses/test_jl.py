import json

from analyses import jl


def test_quick_report_is_complete(tmp_path):
    report = jl.run(jl.Config.quick())
    folder = report.save(tmp_path)
    results = json.loads((folder / "results.json").read_text())
    headline = results["headline"]
    assert 1.0 <= headline["ratio_to_bound"] < 2.0, "optimised coherence must sit above the bound, and near it"
    assert headline["optimised_max_abs_cos"] < headline["random_max_abs_cos"]
    assert headline["small_case_worst_gap_deg"] < 0.5
    for name in ("angles", "history", "capacity", "small"):
        assert (folder / "figures" / f"{name}.png").stat().st_size > 5_000, name
    for name in ("series_summary", "capacity", "growth", "small_cases"):
        assert (folder / f"{name}.csv").exists(), name
    # 900 lines in R^30 lie beyond d(d+1)/2 = 465 and p = 31 gives 961 chirp lines: both starts are run
    summary = (folder / "series_summary.csv").read_text()
    for name in ("random", "optimised from random", "chirp frame", "optimised from chirp"):
        assert f"\n{name}," in summary, name
    assert "optimised_from_random_max_abs_cos" in headline
