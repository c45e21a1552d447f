import pytest

from analyses.facts_measure import edit_facts
from models import zoo


@pytest.fixture(scope="module")
def quick_subject():
    return zoo.load("facts", quick=True, seed=0)


def test_rome_edit_at_the_traced_site_meets_the_efficacy_and_specificity_goals(quick_subject):
    # layer 1 at the last token is where the quick analysis's trace puts the MLP lookup
    # (MLP indirect effect 0.71 there against 0.02 at the last subject token)
    edits = edit_facts(quick_subject, layer=1, relation="sport", n_edits=20, seed=0, site="last token")
    assert len(edits) == 20 and (edits.site == "last token").all()
    assert edits.efficacy.mean() >= 0.9, (
        f"efficacy {edits.efficacy.mean():.1%}: the rank-one edit no longer makes the new value win; "
        "check target_value (v*) and rome_update")
    assert edits.specificity.mean() >= 0.95, (
        f"specificity {edits.specificity.mean():.1%}: the edit leaks into other people's facts; check the key "
        "covariance (key_covariance) the update is weighted by")
    assert edits.own_other_relations_kept.mean() >= 0.95, "the person's other relations should survive the edit"


def test_edit_facts_rejects_an_unknown_site(quick_subject):
    with pytest.raises(ValueError, match="site must be one of"):
        edit_facts(quick_subject, layer=0, relation="sport", n_edits=1, seed=0, site="first token")
