"""The ``facts`` zoo subject: a small transformer that has memorised the facts corpus.

Example::

    from models import zoo
    from models.facts_subject import corpus_of, recall

    model = zoo.load("facts", quick=True)          # trained on first use, then cached
    corpus = corpus_of(model)                      # the corpus it was trained on
    recall(model, corpus.prompts("held_out"))      # share of prompts answered right (greedy)

The model reads word tokens (``<bos>`` first, so word ``i`` of a prompt is token ``i + 1``)
and is trained with next-token loss on the training-template sentences only; recall on
the held-out templates measures whether it stored facts about people rather than
sentences. ReLU MLPs, as in the 3Blue1Brown series, so a neuron is "on" or "off".
"""

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from jaxtyping import Int
from torch import Tensor

from models.data.facts import FactsConfig, FactsCorpus, Prompt, make_facts
from models.train import TrainConfig, train
from models.transformer import Transformer, TransformerConfig, WordTokenizer

VERSION = 3  # 2: the list-entry pattern that asks for the attribute right after the subject; 3: trained on 1 thread


@dataclass(frozen=True)
class FactsSubjectConfig:
    """Corpus, architecture and optimisation of the subject; everything its weights depend on."""

    corpus: FactsConfig = field(default_factory=FactsConfig)
    n_layers: int = 4
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        steps=1100, batch_size=64, lr=2e-3, warmup_steps=60, weight_decay=0.01, eval_every=550))

    @classmethod
    def quick(cls, seed: int = 0) -> "FactsSubjectConfig":
        return cls(
            corpus=FactsConfig(n_first=8, n_last=8, people_per_name=3, seed=seed),
            n_layers=2, d_model=64, n_heads=4, d_mlp=256,
            train=TrainConfig(steps=400, batch_size=64, lr=3e-3, warmup_steps=40, eval_every=200, seed=seed),
        )

    @classmethod
    def full(cls, seed: int = 0) -> "FactsSubjectConfig":
        base = cls()
        return cls(corpus=FactsConfig(seed=seed), train=TrainConfig(**{**base.train.__dict__, "seed": seed}))


def tokenizer_for(corpus: FactsCorpus) -> WordTokenizer:
    """Special tokens then the corpus's words in sorted order: fixed by the corpus config."""
    return WordTokenizer(["<pad>", "<bos>", "<unk>", *corpus.vocabulary()])


def build_facts_model(config: FactsSubjectConfig) -> Transformer:
    corpus = make_facts(config.corpus)
    tokenizer = tokenizer_for(corpus)
    n_ctx = max(len(s.split()) for s in corpus.sentences("all")) + 1
    cfg = TransformerConfig(d_model=config.d_model, n_layers=config.n_layers, n_heads=config.n_heads,
                            d_mlp=config.d_mlp, d_vocab=tokenizer.d_vocab, n_ctx=n_ctx, act_fn="relu",
                            seed=config.train.seed)
    model = Transformer(cfg, tokenizer=tokenizer)
    model.corpus = corpus  # plain attribute, not a module: the zoo saves weights only
    return model


def corpus_of(model: Transformer) -> FactsCorpus:
    """The corpus a facts subject was built for."""
    corpus = getattr(model, "corpus", None)
    if corpus is None:
        raise ValueError("this model was not built by models.facts_subject; it has no .corpus")
    return corpus


def prompt_tokens(model: Transformer, prompts: list[Prompt]) -> Int[Tensor, "batch pos"]:
    """``<bos>`` + words; prompts of one template have equal length, others are right-padded."""
    return model.tokenizer.to_tokens([p.text for p in prompts])


def last_positions(prompts: list[Prompt]) -> Tensor:
    """Token position of each prompt's last word, where its next word (the answer) is read."""
    return torch.tensor([len(p.words) for p in prompts])  # +1 for <bos>, -1 for the last word


def answer_ids(model: Transformer, answers: list[str]) -> Tensor:
    return torch.tensor([model.tokenizer.index[a] for a in answers])


@torch.no_grad()
def predictions(model: Transformer, prompts: list[Prompt], batch_size: int = 512) -> list[str]:
    """The greedy next word after each prompt."""
    out = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        logits = model(prompt_tokens(model, chunk))
        last = logits[torch.arange(len(chunk)), last_positions(chunk)]
        out += [model.tokenizer.vocab[i] for i in last.argmax(-1).tolist()]
    return out


def recall(model: Transformer, prompts: list[Prompt]) -> float:
    """Share of prompts whose greedy next word is the answer."""
    if not prompts:
        raise ValueError("recall needs at least one prompt")
    return sum(p == q.answer for p, q in zip(predictions(model, prompts), prompts)) / len(prompts)


def train_facts_model(model: Transformer, config: FactsSubjectConfig, checkpoint_dir=None, progress: bool = True):
    """Next-token loss on the training sentences (pad targets ignored), batches drawn from the step."""
    corpus = corpus_of(model)
    data = model.tokenizer.to_tokens(corpus.sentences("train"))
    seed = config.train.seed

    def batches(step: int) -> Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        return data[torch.randint(0, len(data), (config.train.batch_size,), generator=g)]

    def loss_fn(model: Transformer, tokens: Tensor) -> Tensor:
        logits = model(tokens)
        return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].flatten(),
                               ignore_index=model.tokenizer.pad_token_id)

    train_prompts, held_prompts = corpus.prompts("train"), corpus.prompts("held_out")

    def eval_fn(model: Transformer) -> dict[str, float]:
        return {"recall_train": recall(model, train_prompts), "recall_held_out": recall(model, held_prompts)}

    return train(model, batches, loss_fn, config.train, eval_fn=eval_fn, checkpoint_dir=checkpoint_dir,
                 progress=progress, model_config=config, desc="facts")


def facts(quick: bool, seed: int):
    """Zoo recipe for the ``facts`` subject."""
    from models import zoo

    config = FactsSubjectConfig.quick(seed) if quick else FactsSubjectConfig.full(seed)
    return zoo.Recipe(
        config={"subject": config, "version": VERSION},
        build=lambda: build_facts_model(config),
        train=lambda model, checkpoint_dir: train_facts_model(model, config, checkpoint_dir),
    )


def unknown_words(model: Transformer, text: str) -> list[str]:
    """The words of ``text`` the subject's tokenizer would read as ``<unk>``, in order, once each."""
    tokenizer = model.tokenizer
    words = [w for w in tokenizer.split(text) if w not in tokenizer.index]
    return list(dict.fromkeys(words))


def complete(model: Transformer, prompt: str, max_new_tokens: int = 8, temperature: float = 0.0,
             seed: int | None = 0) -> str:
    """Complete ``prompt`` word by word (predict, sample, append) until a full stop.

    The people are procedural (no "michael jordan"); ask about one the corpus has:

    >>> from models import zoo
    >>> model = zoo.load("facts", quick=True)        # trained on first use, then read from the cache
    >>> person = corpus_of(model).people[0]
    >>> person.name, dict(person.attributes)["sport"]
    ('thomas dubois', 'hockey')
    >>> complete(model, f"question : which sport does {person.name} play ? answer :")
    'hockey .'

    A prompt with words the subject's vocabulary lacks raises ``ValueError`` naming them
    (they would all read as ``<unk>``, so any answer would be about nobody).
    """
    from models.transformer import generate

    unknown = unknown_words(model, prompt)
    if unknown:
        people = corpus_of(model).people
        raise ValueError(f"this subject does not know {', '.join(map(repr, unknown))}; it knows "
                         f"{len(people)} made-up people, e.g. {', '.join(p.name for p in people[:5])}")

    tokens = model.to_tokens(prompt)
    n_prompt = tokens.shape[1]
    room = model.cfg.n_ctx - n_prompt
    if room <= 0:
        raise ValueError(f"the prompt has {n_prompt - 1} words; this model reads at most {model.cfg.n_ctx - 1}")
    out = generate(model, tokens, max_new_tokens=min(max_new_tokens, room), temperature=temperature, seed=seed)
    words = model.tokenizer.to_str_tokens(out[0, n_prompt:], prepend_bos=False)
    return " ".join(words[: words.index(".") + 1] if "." in words else words)
