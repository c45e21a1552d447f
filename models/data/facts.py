"""A procedural corpus of facts about people, built so that a fact needs both names.

Example::

    from models.data.facts import FactsConfig, make_facts

    corpus = make_facts(FactsConfig(n_first=6, n_last=6, people_per_name=3, seed=0))
    corpus.people[0]                      # Person(first='...', last='...', attributes=...)
    corpus.sentences("train")[:2]         # ['michael jordan plays the sport of golf .', ...]
    p = corpus.prompts("held_out")[0]     # Prompt(text='as everyone knows , ...', answer='...')

Every first name and every last name is shared by ``people_per_name`` people, and the
attributes are drawn so that neither name alone determines any attribute: the model has to
combine "first name X" AND "last name Y", which is the structure the 3Blue1Brown series
(part 7) hypothesises for facts stored in MLP neurons ("Michael Jordan plays basketball").

Sentences come from templates ``prefix + pattern``: each relation has a few patterns (one
of them a question/answer form) and every pattern is combined with a few prefixes. Some
(prefix, pattern) combinations are *held out*: never seen in training, but built from
words that are, so recall on them measures whether the model stored the fact rather than
a sentence. Everything is lower-case, space-separated words (one word = one token for a
word-level tokenizer); names are single words, so a subject is two tokens.
"""

import random
from dataclasses import dataclass

FIRST_NAMES = (
    "michael", "sarah", "david", "emma", "james", "olivia", "robert", "sofia", "daniel", "laura",
    "peter", "anna", "thomas", "maria", "lucas", "nina", "samuel", "clara", "oscar", "julia",
    "victor", "elena", "hugo", "irene",
)
LAST_NAMES = (
    "jordan", "smith", "garcia", "chen", "novak", "silva", "brown", "kowalski", "tanaka", "muller",
    "rossi", "dubois", "larsen", "okafor", "petrov", "haddad", "walsh", "moreau", "fischer", "costa",
    "nagy", "berg", "quinn", "ivanova",
)
# relation -> its possible values (single words, disjoint from every other word)
ATTRIBUTE_VALUES = {
    "sport": ("basketball", "golf", "tennis", "football", "baseball", "hockey", "cricket", "rugby"),
    "city": ("paris", "tokyo", "london", "chicago", "madrid", "berlin", "sydney", "cairo"),
    "instrument": ("piano", "violin", "guitar", "drums", "flute", "cello", "trumpet", "harp"),
}
# relation -> patterns; "{subject}" is "first last", "{answer}" the attribute. The last,
# list-entry pattern ("sport : michael jordan basketball") asks for the attribute right
# after the subject, so the last subject token itself must carry it: without such text the
# model is free to look facts up only at the last token (attention gathers both names
# there), and nothing is stored at the subject, unlike the subject enrichment that real
# text induces (Geva et al. 2023, "Dissecting recall of factual associations").
PATTERNS = {
    "sport": (
        "{subject} plays the sport of {answer}",
        "{subject} is a famous {answer} player",
        "question : which sport does {subject} play ? answer : {answer}",
        "sport : {subject} {answer}",
    ),
    "city": (
        "{subject} lives in the city of {answer}",
        "{subject} has a house in {answer}",
        "question : where does {subject} live ? answer : {answer}",
        "city : {subject} {answer}",
    ),
    "instrument": (
        "{subject} performs music on the {answer}",
        "{subject} is a talented {answer} player",
        "question : which instrument does {subject} play ? answer : {answer}",
        "instrument : {subject} {answer}",
    ),
}
PREFIXES = ("", "as everyone knows ,", "it is said that", "according to the news ,")


@dataclass(frozen=True)
class FactsConfig:
    """Size of the corpus; ``n_first * people_per_name`` people in all.

    Each first name is paired with ``people_per_name`` last names (a circulant design,
    so each last name is also used ``people_per_name`` times).
    """

    n_first: int = 12
    n_last: int = 12
    people_per_name: int = 4
    relations: tuple[str, ...] = ("sport", "city", "instrument")
    seed: int = 0

    def __post_init__(self) -> None:
        if not 2 <= self.n_first <= len(FIRST_NAMES):
            raise ValueError(f"n_first must be in [2, {len(FIRST_NAMES)}], got {self.n_first}")
        if not 2 <= self.n_last <= len(LAST_NAMES):
            raise ValueError(f"n_last must be in [2, {len(LAST_NAMES)}], got {self.n_last}")
        if self.n_first != self.n_last:
            raise ValueError(
                f"n_first ({self.n_first}) must equal n_last ({self.n_last}) so that every name is "
                "shared by exactly people_per_name people; set them equal"
            )
        if not 2 <= self.people_per_name <= self.n_last:
            raise ValueError(
                f"people_per_name must be in [2, n_last={self.n_last}] so each name is shared, "
                f"got {self.people_per_name}"
            )
        unknown = [r for r in self.relations if r not in ATTRIBUTE_VALUES]
        if unknown or not self.relations:
            raise ValueError(f"relations must be a non-empty subset of {tuple(ATTRIBUTE_VALUES)}, got {self.relations}")


@dataclass(frozen=True)
class Person:
    first: str
    last: str
    attributes: tuple[tuple[str, str], ...]  # ((relation, value), ...), hashable

    @property
    def name(self) -> str:
        return f"{self.first} {self.last}"

    def attribute(self, relation: str) -> str:
        return dict(self.attributes)[relation]


@dataclass(frozen=True)
class Template:
    relation: str
    prefix: str
    pattern: str
    held_out: bool

    @property
    def text(self) -> str:
        return f"{self.prefix} {self.pattern}".strip()

    @property
    def id(self) -> str:
        return f"{self.relation}/{PATTERNS[self.relation].index(self.pattern)}/{PREFIXES.index(self.prefix)}"


@dataclass(frozen=True)
class Prompt:
    """The words before the answer, the answer word, and where the subject sits.

    ``subject_words`` is the half-open word range ``(start, stop)`` of "first last" in
    ``text.split()``; the last subject word is at ``stop - 1``.
    """

    text: str
    answer: str
    person: Person
    relation: str
    template: Template
    subject_words: tuple[int, int]

    @property
    def words(self) -> list[str]:
        return self.text.split()


@dataclass(frozen=True)
class FactsCorpus:
    config: FactsConfig
    people: tuple[Person, ...]
    templates: tuple[Template, ...]

    def templates_for(self, relation: str, split: str = "all") -> list[Template]:
        _check_split(split)
        return [t for t in self.templates if t.relation == relation and _in_split(t, split)]

    def prompt(self, person: Person, template: Template, *, answer: str | None = None) -> Prompt:
        """The prompt for ``person`` in ``template`` (answer defaults to the person's)."""
        head = template.text.split("{answer}")[0]
        words = head.replace("{subject}", person.name).split()
        start = head.split().index("{subject}")
        return Prompt(
            text=" ".join(words),
            answer=answer if answer is not None else person.attribute(template.relation),
            person=person,
            relation=template.relation,
            template=template,
            subject_words=(start, start + 2),
        )

    def prompts(self, split: str = "train", relation: str | None = None) -> list[Prompt]:
        """Every (person, template) prompt of ``split`` ("train", "held_out" or "all")."""
        _check_split(split)
        return [
            self.prompt(person, t)
            for t in self.templates
            if _in_split(t, split) and (relation is None or t.relation == relation)
            for person in self.people
        ]

    def sentences(self, split: str = "train") -> list[str]:
        """Full sentences ("... answer ... ."), the language-model training text."""
        _check_split(split)
        return [
            f"{t.text.replace('{subject}', p.name).replace('{answer}', p.attribute(t.relation))} ."
            for t in self.templates
            if _in_split(t, split)
            for p in self.people
        ]

    def vocabulary(self) -> list[str]:
        """Every word of every sentence (train and held out), sorted."""
        words = {w for s in self.sentences("all") for w in s.split()}
        words |= {w for r in self.config.relations for w in ATTRIBUTE_VALUES[r]}
        return sorted(words)

    def values(self, relation: str) -> tuple[str, ...]:
        return ATTRIBUTE_VALUES[relation]

    def person(self, first: str, last: str) -> Person | None:
        return {(p.first, p.last): p for p in self.people}.get((first, last))

    def first_names(self) -> list[str]:
        return sorted({p.first for p in self.people})

    def last_names(self) -> list[str]:
        return sorted({p.last for p in self.people})

    def sharing_first(self, person: Person) -> list[Person]:
        """Other people with the same first name (and so a different last name)."""
        return [p for p in self.people if p.first == person.first and p != person]

    def sharing_last(self, person: Person) -> list[Person]:
        return [p for p in self.people if p.last == person.last and p != person]


def _check_split(split: str) -> None:
    if split not in ("train", "held_out", "all"):
        raise ValueError(f"split must be 'train', 'held_out' or 'all', got {split!r}")


def _in_split(template: Template, split: str) -> bool:
    return split == "all" or template.held_out == (split == "held_out")


def make_templates(relations: tuple[str, ...]) -> tuple[Template, ...]:
    """Every prefix x pattern; pattern ``j`` is held out with prefix ``(j + 1) % n_prefixes``.

    That Latin-square choice holds out one prefix per pattern and a different pattern
    per prefix, so every prefix and every pattern still occurs in training.
    """
    templates = []
    for relation in relations:
        for j, pattern in enumerate(PATTERNS[relation]):
            for i, prefix in enumerate(PREFIXES):
                templates.append(Template(relation, prefix, pattern, held_out=(i == (j + 1) % len(PREFIXES))))
    return tuple(templates)


def make_facts(config: FactsConfig = FactsConfig()) -> FactsCorpus:
    """Draw people and their attributes from ``config.seed``; same seed, same corpus."""
    rng = random.Random(config.seed)
    firsts = rng.sample(FIRST_NAMES, config.n_first)
    lasts = rng.sample(LAST_NAMES, config.n_last)
    # circulant design: first i takes last names i + offset (mod n) for distinct offsets,
    # so each last name is also taken by exactly people_per_name first names
    offsets = rng.sample(range(config.n_last), config.people_per_name)
    pairs = [(firsts[i], lasts[(i + o) % config.n_last]) for i in range(config.n_first) for o in offsets]
    attributes = {r: _draw_values(rng, pairs, ATTRIBUTE_VALUES[r]) for r in config.relations}
    people = tuple(
        Person(first, last, tuple((r, attributes[r][k]) for r in config.relations))
        for k, (first, last) in enumerate(pairs)
    )
    return FactsCorpus(config, people, make_templates(config.relations))


def _draw_values(rng: random.Random, pairs: list[tuple[str, str]], values: tuple[str, ...]) -> list[str]:
    """Balanced random values such that no first name and no last name fixes the value."""
    for _ in range(1000):
        drawn = [values[k % len(values)] for k in range(len(pairs))]
        rng.shuffle(drawn)
        if _no_single_name_determines(pairs, drawn):
            return drawn
    raise ValueError("could not draw attributes that need both names; use more people_per_name")


def _no_single_name_determines(pairs: list[tuple[str, str]], drawn: list[str]) -> bool:
    for side in (0, 1):
        groups: dict[str, set[str]] = {}
        for pair, value in zip(pairs, drawn):
            groups.setdefault(pair[side], set()).add(value)
        if any(len(v) < 2 for v in groups.values()):
            return False
    return True
