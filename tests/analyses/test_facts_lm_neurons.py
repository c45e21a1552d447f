"""AND-gate neurons of facts_lm: each measure against a direct computation on a tiny random Llama, and (slow) the
quick path on SmolLM2."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from analyses.facts_lm import neurons
from analyses.facts_lm.known import object_token
from interp.intervals import share_interval
from interp.neurons import and_gate_score, mlp_activations, neuron_logit_attribution
from interp.report import Report
from models.data.known_facts import FACTS, FAMILIES, prompt_for
from models.transformer import Transformer, TransformerConfig
from models.transformer.hf_tokenizer import HFTokenizer

PEOPLE = ("Tom Hanks", "Tom Cruise", "Boris Johnson", "Dwayne Johnson", "Magic Johnson", "Emma Stone", "Emma Watson")


def word_tokenizer() -> HFTokenizer:
    """A word-level tokenizer over every word of the facts' prompts, objects and family names."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = {w for f in FACTS for w in (prompt_for(f) + " " + f.object).split()}
    words |= {w for pair in FAMILIES for w in pair}
    vocab = {w: i for i, w in enumerate(["<unk>", "<pad>", *sorted(words)])}
    inner = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return HFTokenizer(PreTrainedTokenizerFast(tokenizer_object=inner, unk_token="<unk>", pad_token="<pad>"))


@pytest.fixture(scope="module")
def tiny():
    tokenizer = word_tokenizer()
    cfg = TransformerConfig(d_model=16, n_layers=3, n_heads=2, d_mlp=32, d_vocab=len(tokenizer), n_ctx=64,
                            normalization="RMS", positional_embedding="rotary", gated_mlp=True, act_fn="silu",
                            use_bias=False, seed=0)
    model = Transformer(cfg, tokenizer).eval()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():  # weights large enough that one neuron moves the logits well above rounding (as _llama.py)
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * (0.1 if p.ndim == 1 else 0.25)
                    + (1.0 if p.ndim == 1 else 0.0))
        model.ln_final.w.copy_(torch.linspace(0.5, 2.0, cfg.d_model))  # a DLA that forgot the gain would show
    return model


def known_table(model, people=PEOPLE) -> pd.DataFrame:
    facts = [f for f in FACTS if f.subject in people]
    return pd.DataFrame({"subject": [f.subject for f in facts], "relation": [f.relation for f in facts],
                         "object": [f.object for f in facts], "prompt": [prompt_for(f) for f in facts],
                         "answer": [object_token(model.tokenizer, f.object) for f in facts], "known": True})


def test_partners_put_real_namesakes_first_then_fixed_swaps():
    first_only, last_only = neurons.partners("Tom", "Hanks", 6, seed=0)
    real_toms = [f"Tom {l}" for f, l in FAMILIES if f == "Tom" and l != "Hanks"]
    assert first_only[:len(real_toms)] == real_toms, "real people sharing the first name come first"
    assert len(first_only) == len(last_only) == 6 and "Tom Hanks" not in first_only + last_only
    assert all(n.startswith("Tom ") for n in first_only) and all(n.endswith(" Hanks") for n in last_only)
    assert len(set(first_only)) == 6 and len(set(last_only)) == 6
    assert neurons.partners("Tom", "Hanks", 6, seed=0) == (first_only, last_only), "partners must not change run to run"
    assert neurons.partners("Tom", "Hanks", 6, seed=1)[1] != last_only


def test_family_facts_keeps_known_family_members_namesakes_first(tiny):
    table = known_table(tiny, PEOPLE + ("France",))
    table.loc[table.subject == "Emma Watson", "known"] = False
    facts = neurons.family_facts(table)
    assert set(facts.subject) == set(PEOPLE) - {"Emma Watson"}
    assert list(facts.subject[:3]) == ["Boris Johnson", "Dwayne Johnson", "Magic Johnson"]
    assert (facts["first"] + " " + facts["last"] == facts.subject).all()
    assert facts.known_namesakes.tolist() == sorted(facts.known_namesakes, reverse=True)
    assert len(neurons.family_facts(table, max_facts=2)) == 2


def test_decoys_are_made_up_names_of_the_same_first_name(tiny):
    facts = neurons.family_facts(known_table(tiny))
    decoys = neurons.decoy_facts(facts)
    assert (decoys["first"] == facts["first"]).all() and (decoys.person == facts.subject).all()
    assert not set(zip(decoys["first"], decoys["last"])) & set(FAMILIES), "a decoy is a real member"
    assert all(d in p and s not in p for d, s, p in zip(decoys.subject, facts.subject, decoys.prompt))


def test_subject_activations_equal_unpadded_single_runs(tiny):
    prompts = ["Shakespeare was a famous playwright, and Tom Hanks was a famous",
               "Magic Johnson is a famous player of the sport of", "Emma Stone"]
    subjects = ["Tom Hanks", "Magic Johnson", "Emma Stone"]
    batched = neurons.subject_activations(tiny, prompts, subjects, [0, 2])
    for row, (prompt, subject) in enumerate(zip(prompts, subjects)):
        tokens = tiny.to_tokens(prompt)
        position = tiny.tokenizer.span_tokens(prompt, subject)[1] - 1
        alone = mlp_activations(tiny, tokens, torch.tensor([position]), [0, 2])[0]
        torch.testing.assert_close(batched[row], alone, atol=1e-5, rtol=1e-5,
                                   msg=f"left padding or the subject position is off for {prompt!r}")


def test_and_gate_scores_are_the_instrument_over_partner_means_per_spread(tiny):
    facts = neurons.family_facts(known_table(tiny))
    scores, acts = neurons.and_gate_scores(tiny, facts, [1, 2], n_partners=3)
    assert scores.shape == (len(facts), 2, tiny.cfg.d_mlp)
    row = facts.iloc[0]
    first_only, last_only = neurons.partners(row["first"], row["last"], 3)
    run = lambda names: neurons.subject_activations(tiny, [row.prompt.replace(row.subject, n) for n in names],
                                                    names, [1, 2])
    both, f, l = run([row.subject])[0], run(first_only).mean(0), run(last_only).mean(0)
    torch.testing.assert_close(acts["both"][0], both, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(acts["partner_mean"][0], run(first_only + last_only).mean(0), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(scores[0], and_gate_score(both, f, l) / acts["std"], atol=1e-4, rtol=1e-4)


def test_dla_folds_the_final_gain_and_agrees_with_the_instrument_without_it(tiny):
    facts = neurons.family_facts(known_table(tiny))
    scores, acts = neurons.and_gate_scores(tiny, facts, [1, 2], n_partners=3)
    table = neurons.and_neuron_table(tiny, facts, scores, acts, top_k=3)
    assert len(table) == 3 * len(facts) and table.groupby("subject")["rank"].apply(list).map([1, 2, 3].__eq__).all()
    gain = tiny.ln_final.w.detach()
    for _, r in table.head(4).iterrows():
        direction = tiny.W_out[r.layer, r.neuron].detach() * gain
        unembed = tiny.W_U.detach()[:, object_token(tiny.tokenizer, r.object)]
        assert r.dla == pytest.approx(float(direction @ unembed), abs=1e-4)
    saved = gain.clone()
    with torch.no_grad():
        tiny.ln_final.w.fill_(1.0)
    try:
        plain = neurons.and_neuron_table(tiny, facts, scores, acts, top_k=3)
        for _, r in plain.head(4).iterrows():
            answer = object_token(tiny.tokenizer, r.object)
            expected = float(neuron_logit_attribution(tiny, r.layer, [r.neuron], [answer])[0, 0])
            assert r.dla == pytest.approx(expected, abs=1e-4)
    finally:
        with torch.no_grad():
            tiny.ln_final.w.copy_(saved)


def test_ablating_to_the_clean_values_changes_nothing_and_random_sets_match_layers(tiny):
    facts = neurons.family_facts(known_table(tiny))
    scores, acts = neurons.and_gate_scores(tiny, facts, [0, 1], n_partners=3)  # not the last layer: at the subject
    table = neurons.and_neuron_table(tiny, facts, scores, acts, top_k=4)              # it never reaches the logits
    controls = neurons.random_neurons(table, tiny.cfg.d_mlp, n_draws=2)
    for subject, draws in controls.items():
        mine = table[table.subject == subject]
        for chosen in draws:
            assert {l: len(n) for l, n in chosen.items()} == mine.groupby("layer").size().to_dict()
            assert not {(l, n) for l, ns in chosen.items() for n in ns} & set(zip(mine.layer, mine.neuron))
    clean = dict(acts, partner_mean=acts["both"])  # "ablate" each fact's neurons to its own values
    same = neurons.ablate(tiny, facts, table, clean, controls, n_others=2)
    own = same[same.group.isin(["this fact", "random neurons, this fact"])]
    assert np.allclose(own.margin_drop, 0, atol=1e-4), "setting neurons to their clean values moved the fact"
    moved = neurons.ablate(tiny, facts, table, acts, controls, n_others=2)
    assert set(moved.group) == {"this fact", "shares a name", "other facts", "random neurons, this fact"}
    assert (moved.groupby("ablated").group.apply(lambda g: (g == "other facts").sum()) == 2).all()
    assert moved[moved.group == "this fact"].margin_drop.abs().min() > 1e-4, "ablating AND neurons moved nothing"
    namesakes = moved[moved.group == "shares a name"]
    assert all(a.split()[0] == e.split()[0] or a.split()[1] == e.split()[1]
               for a, e in zip(namesakes.ablated, namesakes.evaluated))


def test_wilson_interval_known_values():
    share, low, high = share_interval([0] * 10)
    assert share == 0 and low == pytest.approx(0, abs=1e-12) and high == pytest.approx(0.2775, abs=1e-4)
    share, low, high = share_interval([1, 0] * 10)
    assert share == 0.5 and low == pytest.approx(0.2993, abs=1e-4) and high == pytest.approx(0.7007, abs=1e-4)


def test_neuron_section_reports_every_documented_number(tiny):
    report = Report("t", "t")
    s = neurons.neuron_section(report, tiny, known_table(tiny), [0, 1], top_k=3, quick=True)
    assert s["n_facts"] == len(PEOPLE) and s["layers"] == [0, 1] and s["top_k"] == 3
    for key in ("and_score", "typical", "and_score_decoy", "and_minus_decoy", "act_both", "act_partner", "promotes",
                "dla_rank_in_relation", "margin_drop_this", "margin_drop_namesake", "margin_drop_other",
                "margin_drop_random", "abs_margin_change_this", "abs_margin_change_random", "p_drop_this",
                "margin_before", "still_right"):
        low, high = s[f"{key}_ci"]
        assert low <= s[key] <= high and math.isfinite(low) and math.isfinite(high), key
    assert 0 <= s["promotes_ci"][0] and s["still_right_ci"][1] <= 1
    section = report.sections[-1]
    assert section.title == "AND-gate neurons"
    names = [getattr(item, "name", None) for item in section.items]
    assert {"and_neurons", "and_ablation"} <= set(names)


@pytest.mark.slow
def test_quick_path_on_smollm2_finds_neurons_whose_ablation_moves_their_fact():
    from analyses.facts_lm.known import known_facts
    from models import zoo

    model = zoo.load("smollm2")
    members = {f"{a} {b}" for a, b in FAMILIES}
    table = known_facts(model, [f for f in FACTS if f.subject in members])
    report = Report("t", "t")
    s = neurons.neuron_section(report, model, table, [2, 3, 4, 5, 6], quick=True)
    assert s["n_facts"] == 11
    top = report.sections[-1].items[1].df
    assert len(top) == 11 and (top.and_score > 0).all() and top.layer.between(2, 6).all()
    assert (top.act_both > np.maximum(top.act_first_only, top.act_last_only)).all()
    # measured (layers 2-6): |margin change| 0.29 for the top 5 AND neurons of a fact, 0.011 for random ones (28x)
    assert s["abs_margin_change_this"] > 5 * s["abs_margin_change_random"], \
        "ablating a fact's AND neurons moves it no more than ablating random neurons"
    assert s["abs_margin_change_this"] > 0.02
