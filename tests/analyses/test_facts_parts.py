import pytest
import torch

from analyses.facts.edits import edit_facts
from analyses.facts.neurons import ablate_and_neurons, and_gate_scores, and_gate_table, name_grid_activations
from interp.neurons import mlp_activations
from models import zoo
from models.facts_subject import last_positions, prompt_tokens


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


def test_the_last_token_name_grid_reads_the_same_activations_as_the_real_prompts(quick_subject):
    corpus = quick_subject.corpus
    template = corpus.templates_for("sport", "train")[0]
    grid, firsts, lasts = name_grid_activations(quick_subject, template)
    people = corpus.people[:5]
    prompts = [corpus.prompt(p, template) for p in people]
    direct = mlp_activations(quick_subject, prompt_tokens(quick_subject, prompts), last_positions(prompts))
    for person, acts in zip(people, direct):
        assert torch.allclose(grid[firsts.index(person.first), lasts.index(person.last)], acts, atol=1e-5), (
            "the grid's cell for a real person must be that person's prompt read at its last token")


def test_ablating_no_neurons_changes_nothing_and_ablating_the_top_ones_does(quick_subject):
    scores, grid = and_gate_scores(quick_subject)
    table = and_gate_table(quick_subject, scores, grid, "sport", top_k=2)
    none = ablate_and_neurons(quick_subject, table, grid, "sport", top_k=0)
    assert (none["drop"].abs() < 1e-7).all() and (none["margin_drop"].abs() < 1e-5).all()
    some = ablate_and_neurons(quick_subject, table, grid, "sport", top_k=2)
    assert some["margin_drop"].abs().max() > 1e-3, "mean-ablating two neurons per person should move some margin"
    assert set(some.group) == {"this fact", "same person, other relations", "other people, same relation"}
