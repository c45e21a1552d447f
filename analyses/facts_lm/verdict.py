"""The facts_lm verdicts: the seed's and ROME's claims decided by stated rules, set beside the toy subject."""

import json
from pathlib import Path
from typing import Optional

import pandas as pd

from analyses.facts import AND_PROMOTES, BROKEN_STILL_RIGHT, LOCALISED_CI_LOW, mlp_localisation_claim
from interp.claims import Check, Claim
from interp.report import Report

EARLY_TO_MIDDLE = 0.6  # ROME's early site: the MLP peak at the last subject token lies in the first 60% of layers
LATE = 0.5  # ROME's late site: the attention peak at the last token lies in the second half
EDIT_EFFICACY = 0.9  # the toy's thresholds for "a rank-one edit rewrites the fact"
EDIT_SPECIFICITY = 0.9


def fact_lm_claims(trace: dict, neurons: Optional[dict], edits: Optional[dict]) -> list[Claim]:
    """The seed's and ROME's claims on this model, each decided by its stated rule from the measured numbers."""
    n_layers = trace["n_layers"]
    localised = mlp_localisation_claim(trace["subject_groups"], trace["gap"])
    mlp = trace["peaks"]["mlp"]["last subject token"]
    attn = trace["peaks"]["attn"]["last token"]
    early = Claim("ROME's early site: the MLP effect at the last subject token peaks in early-to-middle layers",
                  "early-to-middle MLP peak", (
                      Check("its 95% CI low", mlp["ci"][0], ">", LOCALISED_CI_LOW),
                      Check(f"peak depth (layer + 0.5) / {n_layers}", mlp["depth"], "<=", EARLY_TO_MIDDLE, fmt=".2f")))
    late = Claim("ROME's late site: attention at the last token matters in late layers", "late attention peak", (
        Check("its 95% CI low", attn["ci"][0], ">", LOCALISED_CI_LOW),
        Check(f"peak depth (layer + 0.5) / {n_layers}", attn["depth"], ">=", LATE, fmt=".2f")))
    claims = [localised, early, late]
    if neurons is not None and "and_minus_decoy_ci" in neurons:
        claims.append(Claim("Neurons act as AND gates on the two names", "AND gate beats a made-up name", (
            Check("top neuron's AND-score lead over a made-up namesake, 95% CI low", neurons["and_minus_decoy_ci"][0],
                  ">", 0.0),
            Check("share whose top neuron ranks the object first in its relation", neurons["promotes"], ">=",
                  AND_PROMOTES, fmt=".0%"))))
        claims.append(Claim("Ablating those neurons breaks that fact", "ablation breaks the fact", (
            Check("share of facts still answered after ablation", neurons["still_right"], "<=", BROKEN_STILL_RIGHT,
                  fmt=".0%"),
            Check("the fact's logit-margin drop, 95% CI low", neurons["margin_drop_this_ci"][0], ">", 0.0))))
    if edits is not None:
        claims.append(Claim("A rank-one MLP edit rewrites the fact", "ROME edit works", (
            Check("efficacy (new object beats old)", edits["efficacy"], ">=", EDIT_EFFICACY, fmt=".1%"),
            Check("neighbourhood specificity", edits["specificity"], ">=", EDIT_SPECIFICITY, fmt=".1%"))))
    return claims


def verdict_section(report: Report, config, trace: dict, neurons, edits) -> None:
    claims = fact_lm_claims(trace, neurons, edits)
    holds = sum(c.holds for c in claims)
    report.headline("verdict_checks_passed", holds, f"of {len(claims)}: " + ", ".join(c.rule for c in claims))
    section = report.section("Verdict", (
        f"**{holds} of {len(claims)} checks hold on SmolLM2-135M.** Each line gives the rule and every number it "
        f"used.\n\n" + "\n".join(c.markdown() for c in claims)))
    toy = toy_comparison(config.toy_report, trace, neurons, edits)
    if toy is not None:
        section.table(toy, "beside_the_toy", f"SmolLM2 beside the toy `facts` subject (read from "
                      f"`{config.toy_report}`).")
    else:
        section.text(f"The toy `facts` subject's results were not found at `{config.toy_report}` (run `interp run "
                     "facts` first to set them beside these).")
    section.text(
        "**What differs from ROME's protocol.** The model is a 4-bit quantised 135M Llama-family model, not GPT-2 XL; "
        f"the facts are {report.headlines['facts_known']['value']} hand-written ones the model knows, not ROME's "
        f"known-1000; {trace['n_facts']} of them are traced with {config.samples} noise draws each (ROME: 1000 "
        f"facts, 10 draws; `--set n_trace_facts=none --set samples=10` runs every known fact at that resolution); the "
        "score is the probability of the object's first token; prompts start with template words before the subject "
        "(\"before subject\" is its own token group, where restoring changes nothing by construction).")


def toy_comparison(path: str, trace: dict, neurons, edits) -> Optional[pd.DataFrame]:
    file = Path(path)
    if not file.is_file():
        return None
    toy = json.loads(file.read_text())
    head = {k: v["value"] if isinstance(v, dict) else v for k, v in toy.get("headline", {}).items()}
    rows = [("MLP peak layer at the last subject token", trace["peaks"]["mlp"]["last subject token"]["layer"],
             head.get("trace_mlp_last_subject_peak_layer")),
            ("its average indirect effect", trace["peaks"]["mlp"]["last subject token"]["mean"],
             head.get("trace_mlp_last_subject_peak_ie")),
            ("largest attention indirect effect at the last token", trace["peaks"]["attn"]["last token"]["mean"],
             head.get("trace_attn_last_token_max_ie"))]
    if edits is not None:
        rows += [("edit efficacy", edits["efficacy"], head.get("edit_efficacy")),
                 ("edit neighbourhood specificity", edits["specificity"], head.get("edit_neighbour_specificity"))]
    rows.append(("verdict checks passed", None, head.get("verdict_checks_passed")))
    return pd.DataFrame(rows, columns=["quantity", "SmolLM2-135M", f"toy facts subject ({toy.get('date', '?')})"])
