import json

from analyses import params


def test_gpt3_table_reproduces_the_seed():
    components = params.gpt3_components().set_index("component")
    # The seed's figures: embedding exactly 50,257 x 12,288; the rest rounded.
    assert components.loc["embedding", "parameters"] == 617_558_016
    assert components.loc["unembedding", "parameters"] == 617_558_016
    assert round(components.loc["attention", "parameters"] / 1e9) == 58
    assert round(components.loc["MLP", "parameters"] / 1e9) == 116
    assert round(components.loc["total", "parameters"] / 1e9) == 175
    assert abs(components.loc["MLP", "share"] - 2 / 3) < 0.01, "the seed says about 2/3 of GPT-3 is MLP"


def test_gpt2_presets_match_published_sizes():
    for name, published in {"gpt2-small": 124_439_808, "gpt2-xl": 1_557_611_200}.items():
        table = params.preset_table(name).set_index("component")
        assert table.loc["total", "parameters"] == published, name


def test_quick_report_is_complete(tmp_path):
    report = params.run(params.Config.quick())
    folder = report.save(tmp_path)
    results = json.loads((folder / "results.json").read_text())
    assert results["headline"]["gpt2_presets_match"] is True
    n_match, n_total = map(int, results["headline"]["instances_match"].split("/"))
    assert n_match == n_total == 32
    assert (folder / "figures" / "preset_shares.png").stat().st_size > 10_000
    assert (folder / "gpt3_components.csv").is_file()
