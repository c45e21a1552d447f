"""The known-facts data set: its shape, its families, prompt_for's errors, and (slow) how many facts SmolLM2 knows."""

from collections import Counter

import pytest

from models.data.known_facts import FACTS, FAMILIES, RELATIONS, Fact, Relation, prompt_for


def test_enough_facts_over_enough_relations():
    assert len(FACTS) >= 400, f"only {len(FACTS)} facts"
    per_relation = Counter(f.relation for f in FACTS)
    assert len(per_relation) >= 8, f"only {len(per_relation)} relations have facts"
    assert min(per_relation.values()) >= 40, f"a relation has too few facts: {per_relation}"
    assert set(per_relation) == set(RELATIONS), "a relation has templates but no facts, or facts but no templates"


def test_every_relation_has_three_templates_each_with_one_subject_slot():
    for name, relation in RELATIONS.items():
        assert relation.name == name, f"RELATIONS[{name!r}] is named {relation.name!r}"
        assert len(relation.templates) >= 3, f"{name} needs a main, another and a held-out template"
        assert len(set(relation.templates)) == len(relation.templates), f"{name} repeats a template"
        for template in relation.templates:
            assert template.count("{}") == 1, f"{template!r} needs exactly one '{{}}'"
            assert not template.endswith(" "), f"{template!r}: the object follows after a space, so none at the end"
        assert relation.main == relation.templates[0] and relation.held_out == relation.templates[-1]


def test_facts_are_unique_and_well_formed():
    pairs = Counter((f.subject, f.relation) for f in FACTS)
    assert not [p for p, n in pairs.items() if n > 1], "a (subject, relation) appears twice"
    for fact in FACTS:
        assert fact.relation in RELATIONS, f"{fact} has a relation without templates"
        assert fact.subject and fact.object, f"{fact} is missing a part"
        assert fact.subject == fact.subject.strip() and fact.object == fact.object.strip()
        prompt = prompt_for(fact)
        assert fact.subject in prompt and not prompt.endswith(" ")
        assert fact.object.split()[0].lower() not in fact.subject.lower().split(), \
            f"{fact}: the subject gives the object away"


def test_no_worked_example_in_a_template_is_a_fact_of_its_relation():
    for fact in FACTS:
        for template in RELATIONS[fact.relation].templates:
            assert fact.subject not in template.replace("{}", ""), \
                f"{fact.subject!r} is both a fact and the worked example of {template!r}"


def test_families_are_two_word_person_facts_sharing_a_name():
    assert len(FAMILIES) >= 24
    people = {f.subject for f in FACTS}
    firsts, lasts = Counter(f for f, _ in FAMILIES), Counter(l for _, l in FAMILIES)
    for first, last in FAMILIES:
        assert f"{first} {last}" in people, f"family member {first} {last} is not a fact's subject"
        assert firsts[first] > 1 or lasts[last] > 1, f"{first} {last} shares no name with another member"
    groups = [n for n, c in (firsts + lasts).items() if c > 1]
    assert len(groups) >= 12, f"only {len(groups)} shared names: {groups}"
    assert len(set(FAMILIES)) == len(FAMILIES)


def test_prompt_for_fills_the_main_or_a_given_template():
    fact = Fact("France", "capital", "Paris")
    assert prompt_for(fact) == "The capital of France is the city of"
    assert prompt_for(fact, "{} is a country whose capital is") == "France is a country whose capital is"
    assert prompt_for(fact, RELATIONS["capital"].held_out) == RELATIONS["capital"].held_out.format("France")


def test_prompt_for_says_what_is_wrong():
    with pytest.raises(ValueError, match="no templates"):
        prompt_for(Fact("France", "anthem", "La Marseillaise"))
    with pytest.raises(ValueError, match="exactly one"):
        prompt_for(Fact("France", "capital", "Paris"), "The capital is")
    with pytest.raises(ValueError, match="exactly one"):
        prompt_for(Fact("France", "capital", "Paris"), "{} and {}")
    assert Relation("r", ("a {}", "b {}", "c {}")).held_out == "c {}"


# Known facts per relation on the main templates, measured on SmolLM2-135M (float32, CPU) when the templates were
# chosen: author 28, capital 58, company 32, continent 35, currency 24, instrument 24, landmark 34, language 49,
# occupation 41, sport 23 (348 of 636). The floors are half of that: a template or tokenizer change that breaks a
# relation fails here.
KNOWN_FLOOR = {"author": 14, "capital": 29, "company": 16, "continent": 17, "currency": 12, "instrument": 12,
               "landmark": 17, "language": 24, "occupation": 20, "sport": 11}


@pytest.mark.slow
def test_smollm2_knows_enough_facts_of_every_relation():
    from analyses.facts_lm.known import known_facts
    from models import zoo

    table = known_facts(zoo.load("smollm2"), FACTS)
    known = table.groupby("relation").known.sum().to_dict()
    low = {r: (known.get(r, 0), floor) for r, floor in KNOWN_FLOOR.items() if known.get(r, 0) < floor}
    assert not low, f"relations with fewer known facts than their floor (known, floor): {low}; all: {known}"
    family = table[table.subject.isin({f"{a} {b}" for a, b in FAMILIES})]
    assert family.known.sum() >= 19, f"only {family.known.sum()} family members known (38 measured)"
