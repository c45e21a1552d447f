"""ROME edits of SmolLM2's facts: the counterfactual choice, the edit plan and CounterFact's scores against
hand-computed values; slow: one edit on SmolLM2 rewrites its fact and leaves a neighbour alone, and the
quick section runs end to end."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from analyses.facts_lm import edits as E
from interp.editing import edited
from interp.report import Report
from models.data.known_facts import Fact, Relation


class WordTokenizer:
    """One token per word (a leading space is part of the word, as in BPE): enough for object choice."""

    def __init__(self):
        self.ids: dict[str, int] = {}

    def encode(self, text, prepend_bos=None):
        return [self.ids.setdefault(w, len(self.ids)) for w in text.split()]

    def to_string(self, ids):
        words = {i: w for w, i in self.ids.items()}
        return " ".join(words[i] for i in ids)


def test_counterfactual_object_is_a_seeded_single_token_unlike_the_old_first_token():
    tok = WordTokenizer()
    fact = Fact("USA", "city", "New York")
    objects = ["New York", "New", "Paris", "Rio de Janeiro", "Tokyo", "Rome", "Paris"]
    picks = {E.counterfactual_object(tok, fact, objects, seed) for seed in range(40)}
    assert picks == {"Paris", "Tokyo", "Rome"}, (
        "candidates must be the relation's other single-token objects whose token differs from the old first "
        f"token ('New'), got {picks}")
    assert E.counterfactual_object(tok, fact, objects, 3) == E.counterfactual_object(tok, fact, objects[::-1], 3), \
        "the choice must not depend on the order the objects come in"
    with pytest.raises(ValueError, match="no single-token object"):
        E.counterfactual_object(tok, fact, ["New York", "New", "Rio de Janeiro"], 0)


def _table(rows):
    return pd.DataFrame([{"subject": s, "relation": r, "object": o, "known": k} for s, r, o, k in rows])


RELATIONS = {"capital": Relation("capital", ("The capital of {} is", "{}'s capital is")),
             "language": Relation("language", ("In {}, people speak", "The language of {} is"))}


def test_plan_takes_relations_in_turn_and_neighbours_exclude_the_new_object():
    tok = WordTokenizer()
    table = _table([("France", "capital", "Paris", True), ("Japan", "capital", "Tokyo", True),
                    ("Italy", "capital", "Rome", True), ("Chile", "capital", "Santiago", False),
                    ("France", "language", "French", True), ("Spain", "language", "Spanish", True),
                    ("Mexico", "language", "Spanish", True), ("Lone", "sport", "golf", True)])
    relations = {**RELATIONS, "sport": Relation("sport", ("{} plays",))}
    plan = E.plan_edits(tok, table, n_edits=5, seed=0, relations=relations)
    assert len(plan) == 5 and [e.fact.relation for e in plan[:4]] == ["capital", "language"] * 2, \
        "edits should alternate between relations (a relation with one known fact has no neighbour, so none)"
    assert plan == E.plan_edits(tok, table, 5, 0, relations=relations), "the plan must follow from the seed"
    for edit in plan:
        assert edit.new != edit.fact.object
        assert all(n.relation == edit.fact.relation and n.subject != edit.fact.subject for n in edit.neighbours)
        assert all(n.object != edit.new for n in edit.neighbours), "a neighbour whose answer is the new object "
        "cannot tell P(own) from P(new)"
    assert {e.new for e in plan if e.fact.relation == "capital"} <= {"Paris", "Tokyo", "Rome", "Santiago"}
    with pytest.raises(ValueError, match="no templates"):
        E.plan_edits(tok, table, 2, 0, relations=RELATIONS)


def test_counterfact_scores_on_hand_made_probabilities():
    rows = []
    for condition, (edit_p, para_p, neigh_p) in {
        "unedited": ((0.1, 0.8), [(0.2, 0.7), (0.1, 0.6)], [(0.9, 0.05), (0.8, 0.1)]),
        "edited": ((0.9, 0.05), [(0.6, 0.3), (0.2, 0.5)], [(0.9, 0.05), (0.3, 0.6)]),
    }.items():  # (p_new, p_true)
        rows.append({"edit": 0, "condition": condition, "kind": "edit", "p_new": edit_p[0], "p_true": edit_p[1]})
        rows += [{"edit": 0, "condition": condition, "kind": "paraphrase", "p_new": n, "p_true": t} for n, t in para_p]
        rows += [{"edit": 0, "condition": condition, "kind": "neighbour", "p_new": n, "p_true": t} for t, n in neigh_p]
    scores = E.counterfact_scores(pd.DataFrame(rows)).set_index("condition")
    assert scores.loc["unedited", ["ES", "PS", "NS"]].tolist() == [0.0, 0.0, 1.0]
    assert scores.loc["edited", ["ES", "PS", "NS"]].tolist() == [1.0, 0.5, 0.5]
    assert scores.loc["edited", "EM"] == pytest.approx(0.85)
    assert scores.loc["edited", "PM"] == pytest.approx(((0.6 - 0.3) + (0.2 - 0.5)) / 2)
    assert scores.loc["edited", "NM"] == pytest.approx(((0.9 - 0.05) + (0.3 - 0.6)) / 2)
    no_paraphrase = E.counterfact_scores(pd.DataFrame([r for r in rows if r["kind"] != "paraphrase"]))
    assert no_paraphrase.PS.isna().all(), "a score with no prompt of its kind must be NaN, not 0"


def test_intervals_are_wilson_for_a_share_and_student_t_otherwise():
    share = [1.0] * 45 + [0.0] * 5
    mean, low, high = E.mean_interval(share, proportion=True)
    assert (mean, round(low, 3), round(high, 3)) == (0.9, 0.786, 0.957)
    x = np.random.default_rng(0).normal(0.3, 0.2, size=20)
    mean, low, high = E.mean_interval(x)
    expected = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (low, high) == pytest.approx(expected)
    assert E.mean_interval([0.9, 1.0, 1.0], upper=1.0)[2] == 1.0, "a score's interval must stay inside its range"
    scores = pd.DataFrame({"edit": [0, 1, 0, 1], "condition": ["edited", "edited", "unedited", "unedited"],
                           **{s: [1.0, 0.0, 0.0, 0.0] for s in E.SCORES}})
    summary = E.summarise_scores(scores).set_index(["score", "condition"])
    assert summary.loc[("ES", "edited"), "mean"] == 50.0 and summary.loc[("ES", "edited"), "n_edits"] == 2
    table = E.reference_table(E.summarise_scores(scores))
    assert table.set_index("score").loc["NS", "GPT-2 XL + ROME (Meng et al. 2022)"] == 75.4


def test_settings_refuse_what_cannot_run():
    with pytest.raises(ValueError, match="n_value_contexts"):
        E.EditSettings(n_contexts=2, n_value_contexts=4)
    with pytest.raises(ValueError, match="chunk"):
        E.EditSettings(covariance_tokens=64, chunk=128)


def test_covariance_text_is_the_gensim_news_corpus():
    text = E.covariance_text()
    assert len(text) > 300_000 and "Australia" in text, "expected Lee's news corpus from gensim's test data"


# ----- on SmolLM2 ------------------------------------------------------------------------------------

DEV_RELATIONS = {
    "capital": Relation("capital", ("The capital of {} is the city of", "The government of {} sits in the city of")),
    "language": Relation("language", ("In {}, the official language is", "The native language of {} is")),
}
DEV_FACTS = [Fact(s, "capital", o) for s, o in (("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"),
                                                 ("Germany", "Berlin"), ("Egypt", "Cairo"), ("Greece", "Athens"),
                                                 ("Austria", "Vienna"), ("Kenya", "Nairobi"))] \
    + [Fact(s, "language", o) for s, o in (("France", "French"), ("Italy", "Italian"), ("Germany", "German"),
                                            ("Russia", "Russian"), ("Spain", "Spanish"), ("Mexico", "Spanish"))]


@pytest.fixture(scope="module")
def smollm2():
    from models import zoo

    return zoo.load("smollm2")


def _known_table(model, facts, relations):
    from analyses.facts_lm.known import last_logits, object_token

    prompts = [relations[f.relation].main.format(f.subject) for f in facts]
    predicted = last_logits(model, prompts).argmax(-1).tolist()
    return pd.DataFrame({"subject": [f.subject for f in facts], "relation": [f.relation for f in facts],
                         "object": [f.object for f in facts], "prompt": prompts,
                         "known": [p == object_token(model.tokenizer, f.object) for p, f in zip(predicted, facts)]})


@pytest.mark.slow
def test_one_edit_rewrites_its_fact_and_leaves_another_subject_alone(smollm2):
    from analyses.facts_lm.known import last_logits, object_token

    tok, layer = smollm2.tokenizer, 4
    fact = DEV_FACTS[0]
    subjects, objects = ("France", "Japan", "Germany", "Egypt"), ("Paris", "Tokyo", "Berlin", "Cairo")
    prompts = [DEV_RELATIONS["capital"].main.format(s) for s in subjects]
    answers = [object_token(tok, o) for o in objects]
    rome = object_token(tok, "Rome")
    before = torch.softmax(last_logits(smollm2, prompts), -1)
    assert before.argmax(-1).tolist() == answers, "SmolLM2 should know these capitals; did the model change?"
    delta = E.rome_edit(smollm2, fact, "Rome", layer, settings=E.EditSettings.quick(), relations=DEV_RELATIONS)
    with edited(smollm2, layer, delta):
        after = torch.softmax(last_logits(smollm2, prompts), -1)
    top = after.argmax(-1).tolist()
    assert top[0] == rome, f"the edit should make France's capital Rome, got {tok.to_string([top[0]])!r}"
    assert before[0, rome] < before[0, answers[0]], "unedited, P(new) < P(old)"
    assert after[0, rome] > after[0, answers[0]], "efficacy: after the edit P(new) > P(old)"
    # Japan and Germany the model knows firmly; Egypt is a close call (P(Cairo) 0.15, P(Alexandria) 0.11)
    # that the edit does tip to Alexandria, so there only the neighbourhood score's test: Rome stays below Cairo
    assert top[1:3] == answers[1:3], "Japan's and Germany's capitals should survive an edit of France's"
    assert (after[1:, rome] < after[torch.arange(1, 4), torch.tensor(answers[1:])]).all(), \
        "no neighbour should come to prefer the new object over its own"
    assert last_logits(smollm2, prompts).argmax(-1).tolist() == answers, "the edit must be undone on exit"
    with pytest.raises(ValueError, match="single-token"):
        E.rome_edit(smollm2, fact, "Buenos Aires", layer, settings=E.EditSettings.quick(), relations=DEV_RELATIONS)
    no_subject = {"capital": Relation("capital", ("The capital city is",))}
    with pytest.raises(ValueError, match="not in its prompt"):
        E.rome_edit(smollm2, fact, "Rome", layer, settings=E.EditSettings.quick(), relations=no_subject)


@pytest.mark.slow
def test_quick_edit_section_runs_and_beats_the_unedited_baseline(smollm2):
    table = _known_table(smollm2, DEV_FACTS, DEV_RELATIONS)
    assert table.known.sum() >= 8, f"SmolLM2 should know most of the test facts, knows {table.known.sum()}"
    report = Report("edits", "edits")
    out = E.edit_section(report, smollm2, table, 4, n_edits=4, seed=0, settings=E.EditSettings.quick(),
                         relations=DEV_RELATIONS)
    assert out["n_edits"] == 4 and out["relations"] == 2 and out["layer"] == 4
    for name in ("efficacy", "paraphrase", "specificity"):
        assert 0.0 <= out[name] <= 1.0 and 0.0 <= out[f"baseline_{name}"] <= 1.0
    assert out["baseline_efficacy"] == 0.0, "the unedited model answers its known facts, so P(new) < P(old)"
    assert out["efficacy"] >= 0.75 and out["efficacy"] > out["baseline_efficacy"], f"edits did not take: {out}"
    assert out["specificity"] >= 0.75, f"the edits broke their neighbours: {out}"
    assert 0.0 <= out["neighbours_kept"] <= 1.0
    section = report.sections[-1]
    tables = {item.name: item.df for item in section.items if hasattr(item, "df")}
    assert set(tables) == {"edit_scores", "edit_scores_by_relation", "edits", "edit_generations"}
    assert tables["edit_scores_by_relation"].edits.sum() == 4
    assert tables["edit_scores"].score.tolist() == list(E.SCORES)
    assert len(tables["edits"]) == 4 and {"p_new_before", "p_new_after", "p_old_after"} <= set(tables["edits"])
    assert len(tables["edit_generations"]) == 2 * 2
    assert any(getattr(item, "png", None) for item in section.items), "the scores figure is missing"
    assert "edit_efficacy_score" in report.headlines
