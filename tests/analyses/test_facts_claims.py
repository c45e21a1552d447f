"""The facts verdict's rules, fed numbers on both sides of each threshold (no model needed)."""

import pytest

from analyses.facts import fact_claims


def numbers(**changes):
    trace = {"gap": 0.6, "attn_last_ie": 0.5, "attn_last_layer": 1, "mlp_last_token_ie": 0.5, "mlp_last_token_layer": 2,
             "subject_groups": {
                 "first subject token": {"layer": 0, "mlp_ie": 0.035, "ci": (0.018, 0.05), "attn_ie": 0.006},
                 "last subject token": {"layer": 0, "mlp_ie": 0.009, "ci": (-0.005, 0.024), "attn_ie": 0.007}}}
    site = {"and_score": 1.1, "typical": -0.01, "promotes": 0.83, "still_right": 1.0, "margin_drop_ratio": 8.4}
    neurons = {"subject": {**site, "site": "last subject token", "promotes": 0.15},
               "last": {**site, "site": "last token"}}
    edit = {"site": "last token", "efficacy": 1.0, "specificity": 0.996}
    for key, value in changes.items():
        where, _, field = key.partition("__")
        {"trace": trace, "last": neurons["last"], "edit": edit}[where][field] = value
    return trace, neurons, edit


def claim(name, *args):
    claims = {c.statement.split()[0]: c for c in fact_claims(*args)}
    return claims[name]


def test_ablation_that_leaves_the_fact_right_does_not_carry_it():
    # the committed full run: 8.4x selective, but the fact stays right in 100% of prompts
    assert not claim("Ablating", *numbers()).holds, "a fact still right after ablation is not carried by those neurons"
    assert claim("Ablating", *numbers(last__still_right=0.4)).holds
    assert not claim("Ablating", *numbers(last__still_right=0.4, last__margin_drop_ratio=4.9)).holds


def test_localisation_considers_every_subject_token_group():
    trace, neurons, edit = numbers()
    groups = trace["subject_groups"]
    text = claim("Facts", trace, neurons, edit).markdown()
    assert "first subject token" in text and "last subject token" in text
    assert not claim("Facts", trace, neurons, edit).holds  # 0.035 < 0.25 x 0.6
    groups["first subject token"] = {"layer": 0, "mlp_ie": 0.2, "ci": (0.1, 0.3), "attn_ie": 0.01}
    localised = claim("Facts", trace, neurons, edit)
    assert localised.holds and localised.verdict == "yes, at the first subject token", localised.verdict
    groups["first subject token"]["attn_ie"] = 0.11  # MLP no longer twice attention's
    assert not claim("Facts", trace, neurons, edit).holds


@pytest.mark.parametrize("promotes,holds", [(0.5, True), (0.49, False)])
def test_and_gate_rule_threshold(promotes, holds):
    assert claim("Neurons", *numbers(last__promotes=promotes)).holds is holds


@pytest.mark.parametrize("specificity,holds", [(0.95, True), (0.949, False)])
def test_edit_rule_quotes_specificity_once(specificity, holds):
    edit = claim("A", *numbers(edit__specificity=specificity))
    assert edit.holds is holds
    assert f"{specificity:.1%}" in edit.markdown(), "the verdict must quote the number the editing section quotes"
