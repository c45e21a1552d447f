"""The facts_lm analysis: known-fact selection, tracing over facts, the lens, verdict rules, bad input."""

import json

import pandas as pd
import pytest

from analyses import facts_lm
from analyses.facts_lm.known import object_token, subject_span
from analyses.facts_lm.trace import choose, peaks
from interp.patching import average_indirect_effect
from models.data.known_facts import Fact, prompt_for


def test_choose_takes_relations_in_turn_and_is_seeded():
    known = pd.DataFrame({"relation": ["a"] * 5 + ["b"] * 2 + ["c"] * 1, "subject": list("abcdefgh")})
    picked = choose(known, 6, seed=0)
    assert picked.relation.value_counts().to_dict() == {"a": 3, "b": 2, "c": 1}
    assert picked.equals(choose(known, 6, seed=0))
    assert len(choose(known, None, seed=0)) == 8


def _groups(values):
    """A fake trace: per (kind, layer, group) one value per fact."""
    rows = [{"fact": f, "kind": k, "layer": layer, "group": g, "indirect_effect": v + 0.01 * f}
            for (k, layer, g), v in values.items() for f in range(4)]
    return average_indirect_effect(pd.DataFrame(rows))


def test_peaks_find_the_layer_and_group_of_the_largest_mean():
    groups = _groups({("mlp", 0, "last subject token"): 0.1, ("mlp", 1, "last subject token"): 0.3,
                      ("mlp", 2, "last token"): 0.2, ("attn", 0, "last token"): 0.05, ("attn", 2, "last token"): 0.4,
                      ("resid", 1, "last subject token"): 0.5, ("resid", 2, "last token"): 0.9})
    top = peaks(groups, n_layers=3)
    assert top["mlp"]["last subject token"]["layer"] == 1
    assert top["mlp"]["overall"]["group"] == "last subject token"
    assert top["attn"]["last token"]["layer"] == 2 and top["attn"]["last token"]["depth"] == pytest.approx(2.5 / 3)
    low, high = top["mlp"]["last subject token"]["ci"]
    assert low < 0.3 + 0.015 < high


def _trace_summary(mlp_layer, mlp_ie, attn_layer, attn_ie, attn_subject=0.01, gap=0.5, ci=0.05):
    def peak(layer, ie):
        return {"layer": layer, "mean": ie, "ci": (ie - ci, ie + ci), "depth": (layer + 0.5) / 30, "group": "x",
                "n_facts": 10}

    return {"n_layers": 30, "gap": gap,
            "subject_groups": {"last subject token": {"layer": mlp_layer, "mlp_ie": mlp_ie,
                                                      "ci": (mlp_ie - ci, mlp_ie + ci), "attn_ie": attn_subject}},
            "peaks": {"mlp": {"last subject token": peak(mlp_layer, mlp_ie)},
                      "attn": {"last token": peak(attn_layer, attn_ie)}}}


def test_claims_follow_rome_picture_and_fail_without_it():
    rome_like = facts_lm.fact_lm_claims(_trace_summary(3, 0.25, 20, 0.5), None, None)
    assert [c.holds for c in rome_like] == [True, True, True]
    late_mlp = facts_lm.fact_lm_claims(_trace_summary(25, 0.25, 5, 0.5), None, None)
    assert [c.holds for c in late_mlp] == [True, False, False]
    weak = facts_lm.fact_lm_claims(_trace_summary(3, 0.05, 20, 0.5, ci=0.1), None, None)
    assert not weak[0].holds and not weak[1].holds
    edits = {"efficacy": 0.95, "specificity": 0.5}
    assert not facts_lm.fact_lm_claims(_trace_summary(3, 0.25, 20, 0.5), None, edits)[-1].holds


def test_bad_input_says_what_is_wrong():
    with pytest.raises(ValueError, match="no templates"):
        prompt_for(Fact("France", "no such relation", "Paris"))
    with pytest.raises(ValueError, match="exactly one"):
        prompt_for(Fact("France", "capital", "Paris"), "The capital is")
    with pytest.raises(ValueError, match="at least 1"):
        facts_lm.Config(samples=0)
    with pytest.raises(ValueError, match="n_trace_facts"):
        facts_lm.Config(n_trace_facts=0)


@pytest.fixture(scope="module")
def smollm2():
    from models import zoo

    return zoo.load("smollm2")


@pytest.mark.slow
def test_bad_facts_on_the_real_tokenizer(smollm2):
    with pytest.raises(ValueError, match="not in its prompt"):
        subject_span(smollm2.tokenizer, "The capital of France is the city of", "Spain")
    with pytest.raises(ValueError, match="several tokens|2 tokens|tokens"):
        object_token(smollm2.tokenizer, "Buenos Aires", single=True)
    assert object_token(smollm2.tokenizer, "Paris", single=True) == smollm2.to_single_token(" Paris")


@pytest.mark.slow
def test_tracing_over_facts_is_deterministic_for_a_seed(smollm2):
    from analyses.facts_lm.trace import trace_facts

    chosen = pd.DataFrame({"prompt": ["The capital of France is the city of"], "subject": ["France"],
                           "object": ["Paris"], "relation": ["capital"], "answer": [smollm2.to_single_token(" Paris")]})
    once = trace_facts(smollm2, chosen, samples=2, window=10, noise_std=0.3, seed=4)
    again = trace_facts(smollm2, chosen, samples=2, window=10, noise_std=0.3, seed=4)
    other = trace_facts(smollm2, chosen, samples=2, window=10, noise_std=0.3, seed=5)
    assert once.equals(again)
    assert not once["score"].equals(other["score"])
    assert len(once) == 3 * 30 * 8


@pytest.mark.slow
def test_quick_report_is_complete(tmp_path):
    toy = tmp_path / "toy.json"
    toy.write_text(json.dumps({"date": "2026-12-01", "headline": {"trace_mlp_last_subject_peak_layer": 1,
                                                                  "verdict_checks_passed": 2}}))
    report = facts_lm.run(facts_lm.Config.quick().__class__(**{**facts_lm.Config.quick().__dict__,
                                                               "toy_report": str(toy)}))
    saved = report.save(tmp_path)
    text = (saved / "report.md").read_text()
    for needle in ("Which facts the model knows", "Causal tracing at ROME's resolution", "logit lens", "Verdict",
                   "What differs from ROME's protocol", "toy facts subject (2026-12-01)"):
        assert needle in text, needle
    figures = {p.name for p in (saved / "figures").iterdir()}
    assert {"trace_example.png", "trace_groups.png", "trace_curves.png", "lens_layers.png"} <= figures
    assert "trace_example.html" in figures, "the interactive example trace beside its PNG is missing"
    headline = json.loads((saved / "results.json").read_text())["headline"]
    assert headline["facts_known"] >= 10 and headline["trace_facts"] == 2


def test_a_one_token_subject_counts_as_its_first_and_last_subject_token():
    from analyses.facts_lm.trace import rome_groups

    traces = pd.DataFrame({"fact": [0, 0, 1, 1, 1], "pos": [3, 4, 1, 2, 3], "kind": "mlp", "layer": 0,
                           "group": ["first subject token", "last token", "first subject token", "last subject token",
                                     "last token"], "indirect_effect": [0.5, 0.1, 0.2, 0.4, 0.0]})
    grouped = average_indirect_effect(rome_groups(traces), by=("kind", "group")).set_index("group")
    assert grouped.loc["last subject token", "n_facts"] == 2
    assert grouped.loc["last subject token", "mean"] == pytest.approx((0.5 + 0.4) / 2)
    assert grouped.loc["first subject token", "mean"] == pytest.approx((0.5 + 0.2) / 2)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["processes", "ray"])
def test_tracing_over_facts_gives_the_serial_result_on_processes_and_ray(smollm2, backend, request):
    from analyses.facts_lm.trace import trace_facts
    from interp.parallel import sweep_settings

    if backend == "ray":
        request.getfixturevalue("ray_cluster")
    chosen = pd.DataFrame({"prompt": ["The capital of France is the city of", "The Eiffel Tower is in the city of"],
                           "subject": ["France", "The Eiffel Tower"], "object": ["Paris", "Paris"],
                           "relation": ["capital", "landmark"], "answer": [smollm2.to_single_token(" Paris")] * 2})
    serial = trace_facts(smollm2, chosen, samples=2, window=10, noise_std=0.3, seed=4)
    with sweep_settings(backend=backend, workers=2):
        elsewhere = trace_facts(smollm2, chosen, samples=2, window=10, noise_std=0.3, seed=4)
    pd.testing.assert_frame_equal(serial, elsewhere, check_exact=True)
    assert serial.fact.nunique() == 2 and serial["score"].nunique() > 10  # two real traces, not constants
