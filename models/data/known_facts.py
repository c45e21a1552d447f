"""Facts of public knowledge for probing a real language model: (subject, relation, object).

Example::

    from models.data.known_facts import FACTS, RELATIONS, prompt_for

    fact = FACTS[0]                               # Fact(subject='France', relation='capital', object='Paris')
    RELATIONS[fact.relation].templates[0]         # 'The capital of {} is the city of'
    prompt_for(fact)                              # 'The capital of France is the city of'
    prompt_for(fact, RELATIONS["capital"].held_out)  # the paraphrase template, never used to select facts

Written by hand for this project (no data set is downloaded). Each relation has at least
three templates with one ``{}`` for the subject; a prompt ends right before the object,
which follows after a space (``" Paris"``). The last template of each relation is *held
out*: facts are selected (the model must answer them) on the first template only, and the
held-out one tests whether an edit generalises to a paraphrase.

``FAMILIES`` groups person subjects whose first or last name is shared with other
subjects ("Michael Jordan", "Michael Phelps"; "Serena Williams", "Robin Williams"), for
the AND-gate neuron test: a neuron that stores "Michael Jordan plays basketball" should
fire on the full name far more than on either name with another partner.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Relation:
    name: str
    templates: tuple[str, ...]  # each with one "{}"; templates[-1] is held out

    @property
    def main(self) -> str:
        return self.templates[0]

    @property
    def held_out(self) -> str:
        return self.templates[-1]


@dataclass(frozen=True)
class Fact:
    subject: str
    relation: str
    object: str


RELATIONS: dict[str, Relation] = {
    "capital": Relation("capital", (
        "The capital of {} is the city of",
        "{}'s capital city is",
        "The government of {} sits in the city of",
    )),
}

FACTS: tuple[Fact, ...] = (
    Fact("France", "capital", "Paris"),
    Fact("Japan", "capital", "Tokyo"),
    Fact("Italy", "capital", "Rome"),
)

# person subjects sharing a first or a last name: (first, last) pairs, each a subject in FACTS
FAMILIES: tuple[tuple[str, str], ...] = ()


def prompt_for(fact: Fact, template: str | None = None) -> str:
    """The prompt of ``fact`` in ``template`` (default: its relation's main template)."""
    if fact.relation not in RELATIONS:
        raise ValueError(f"fact {fact} has relation {fact.relation!r}, which has no templates; "
                         f"known relations: {sorted(RELATIONS)}")
    template = RELATIONS[fact.relation].main if template is None else template
    if template.count("{}") != 1:
        raise ValueError(f"a template needs exactly one '{{}}' for the subject, got {template!r}")
    return template.format(fact.subject)
