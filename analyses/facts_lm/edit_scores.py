"""CounterFact's scores of ROME edits (ES PS NS EM PM NM), their summaries over edits with 95% intervals, and ROME's.

Example::

    from analyses.facts_lm.edit_scores import counterfact_scores, summarise_scores

    summarise_scores(counterfact_scores(run.prompts))   # ES PS NS EM PM NM, edited and unedited

Scores per edit (Meng et al. 2022, Table 4): efficacy ES, P(new) > P(old) on the edit prompt;
paraphrase PS, the same on the relation's other templates (the held-out one included);
neighbourhood NS, P(own object) > P(new) on the main-template prompts of other known subjects
of the relation (those whose object starts with the new object's token left out); and the
magnitudes EM, PM (mean P(new) - P(old)) and NM (mean P(own) - P(new)). Probabilities are of
objects' first tokens; new objects are single tokens. Every score is also measured on the
unedited model, so an edit that changes nothing is visible.
"""

from typing import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from interp.intervals import wilson_interval

# Meng et al. 2022 (NeurIPS), Table 4: CounterFact, GPT-2 XL edited by ROME at layer 17 of 48 (0-based), in %.
# Read from the transcription of the paper in github.com/viktor-shcherb/msc_thesis
# (references/2022-12-locating-editing-factual-associations-gpt/sections/03_...storage.md); the
# magnitudes EM, PM, NM, the fluency GE and the unedited model's per-score row were not in any source
# reachable here, so they are left out rather than recalled.
ROME_GPT2_XL = {"ES": 100.0, "PS": 96.4, "NS": 75.4, "S": 89.2, "RS": 41.9}
ROME_GPT2_XL_UNEDITED = {"S": 30.5}
ROME_SOURCE = ("Meng et al. 2022, Locating and Editing Factual Associations in GPT (NeurIPS), Table 4, GPT-2 XL "
               "on CounterFact (as transcribed in github.com/viktor-shcherb/msc_thesis)")
SCORES = ("ES", "PS", "NS", "EM", "PM", "NM")


def counterfact_scores(prompts: pd.DataFrame) -> pd.DataFrame:
    """Per edit and condition, CounterFact's scores from per-prompt probabilities (fractions, not %).

    ``prompts``: one row per prompt with ``edit condition kind p_true p_new`` (``kind``: edit,
    paraphrase or neighbour; ``p_true``: the old object's probability, for a neighbour its own
    object's). ES / PS: share of edit / paraphrase prompts with ``p_new > p_true``; NS: share
    of neighbour prompts with ``p_true > p_new``; EM / PM: mean ``p_new - p_true`` there; NM:
    mean ``p_true - p_new`` on the neighbours. A score with no prompt of its kind is NaN.
    """
    wins = prompts.assign(new_wins=(prompts.p_new > prompts.p_true).astype(float),
                          margin=prompts.p_new - prompts.p_true)
    by = wins.groupby(["edit", "condition", "kind"])[["new_wins", "margin"]].mean().unstack("kind")

    def column(stat: str, kind: str) -> pd.Series:
        return by[(stat, kind)] if (stat, kind) in by.columns else pd.Series(np.nan, index=by.index)

    out = pd.DataFrame({"ES": column("new_wins", "edit"), "PS": column("new_wins", "paraphrase"),
                        "NS": 1 - column("new_wins", "neighbour"), "EM": column("margin", "edit"),
                        "PM": column("margin", "paraphrase"), "NM": -column("margin", "neighbour")})
    return out.reset_index()


def neighbours_kept(prompts: pd.DataFrame) -> pd.Series:
    """Per edit, the share of its neighbourhood prompts whose most likely next token the edit left unchanged
    (stricter than NS, which only asks that the new object not overtake the neighbour's own)."""
    neighbours = prompts[prompts.kind == "neighbour"]
    wide = neighbours.pivot_table(index=["edit", "prompt"], columns="condition", values="top")
    return (wide["edited"] == wide["unedited"]).groupby("edit").mean().rename("neighbours_kept")


def mean_interval(values: Sequence[float], proportion: bool = False, lower: float = -np.inf,
                  upper: float = np.inf) -> tuple[float, float, float]:
    """Mean and 95% interval over edits: Wilson's for a share of edits (``proportion``: 0/1 values), else
    Student's t cut to ``[lower, upper]`` (the range the score can take; zero width when every edit
    scores the same)."""
    x = np.asarray([v for v in values if not np.isnan(v)], dtype=float)
    if not len(x):
        return np.nan, np.nan, np.nan
    mean, n = float(x.mean()), len(x)
    if proportion:
        return (mean, *wilson_interval(mean, n))
    if n < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean, max(mean - half, lower), min(mean + half, upper)


def summarise_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per score and condition: mean over edits and its 95% interval, in % (as ROME reports them)."""
    rows = []
    for score in SCORES:
        for condition in ("unedited", "edited"):
            values = scores.loc[scores.condition == condition, score]
            mean, low, high = mean_interval(values.tolist(), proportion=score == "ES",
                                            lower=0.0 if score in ("PS", "NS") else -1.0, upper=1.0)
            rows.append({"score": score, "condition": condition, "mean": 100 * mean, "low": 100 * low,
                         "high": 100 * high, "n_edits": int(values.notna().sum())})
    return pd.DataFrame(rows)
