from collections import defaultdict

import pytest

from models.data.facts import FactsConfig, make_facts


def test_same_seed_same_corpus_and_different_seed_differs():
    assert make_facts(FactsConfig(seed=3)) == make_facts(FactsConfig(seed=3))
    assert make_facts(FactsConfig(seed=3)).people != make_facts(FactsConfig(seed=4)).people


def test_every_name_is_shared_and_no_single_name_determines_an_attribute():
    config = FactsConfig(n_first=8, n_last=8, people_per_name=3, seed=1)
    corpus = make_facts(config)
    assert len(corpus.people) == 8 * 3
    assert len({(p.first, p.last) for p in corpus.people}) == len(corpus.people), "duplicate person"
    for side in ("first", "last"):
        groups = defaultdict(list)
        for p in corpus.people:
            groups[getattr(p, side)].append(p)
        assert all(len(g) == 3 for g in groups.values()), f"each {side} name should be shared by 3 people"
        for relation in config.relations:
            for name, group in groups.items():
                values = {p.attribute(relation) for p in group}
                assert len(values) >= 2, f"{side} name {name} alone determines {relation}"


def test_held_out_templates_are_unseen_combinations_of_seen_words():
    corpus = make_facts(FactsConfig(n_first=4, n_last=4, people_per_name=2))
    train = [t for t in corpus.templates if not t.held_out]
    held = [t for t in corpus.templates if t.held_out]
    assert held and train
    assert not {t.text for t in held} & {t.text for t in train}
    train_words = {w for s in corpus.sentences("train") for w in s.split()}
    held_words = {w for s in corpus.sentences("held_out") for w in s.split()}
    assert held_words <= train_words, f"held-out words never trained: {held_words - train_words}"
    for relation in corpus.config.relations:
        assert any("question" in t.text for t in corpus.templates_for(relation, "train")), "no Q/A prompt"


def test_prompt_marks_subject_and_ends_before_answer():
    corpus = make_facts(FactsConfig(n_first=4, n_last=4, people_per_name=2))
    for prompt in corpus.prompts("all"):
        start, stop = prompt.subject_words
        assert prompt.words[start:stop] == [prompt.person.first, prompt.person.last]
        assert prompt.answer == prompt.person.attribute(prompt.relation)
        sentence = f"{prompt.text} {prompt.answer}"
        assert any(s.startswith(sentence + " ") for s in corpus.sentences("all"))
    # each prompt's answer must be predictable: same prompt words never lead to two answers
    seen = {}
    for prompt in corpus.prompts("all"):
        assert seen.setdefault(prompt.text, prompt.answer) == prompt.answer, f"ambiguous prompt {prompt.text!r}"


@pytest.mark.parametrize("kwargs", [dict(n_first=1, n_last=1), dict(n_first=4, n_last=5), dict(people_per_name=1),
                                    dict(relations=("colour",))])
def test_bad_config_says_what_to_change(kwargs):
    with pytest.raises(ValueError, match="must"):
        FactsConfig(**kwargs)
