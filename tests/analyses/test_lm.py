"""The lm analysis: its measures against direct computations, and its quick preset end to end on SmolLM2."""

import json

import pandas as pd
import pytest
import torch

from analyses import lm
from analyses.lm import measures
from models.transformer import Transformer, TransformerConfig


def tiny_llama(d_vocab=2100):
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=d_vocab, n_ctx=64,
                            normalization="RMS", positional_embedding="rotary", gated_mlp=True, act_fn="silu",
                            use_bias=False)
    return Transformer(cfg).eval()


def test_head_scores_find_a_planted_previous_token_and_induction_head():
    model = tiny_llama()
    length = 10

    def plant(pattern, hook):  # head 0: previous token; head 1: induction in the second copy
        planted = torch.zeros_like(pattern)
        n = pattern.shape[-1]
        planted[:, 0, torch.arange(1, n), torch.arange(n - 1)] = 1.0
        planted[:, 0, 0, 0] = 1.0
        planted[:, 1] = torch.eye(n)
        q = torch.arange(length + 1, 2 * length)
        planted[:, 1, q] = 0.0
        planted[:, 1, q, q - length + 1] = 1.0
        return planted

    with model.hooks(fwd_hooks=[("blocks.1.attn.hook_pattern", plant)]):
        scores = measures.head_scores(model, length=length, batch=2)
    layer1 = scores[scores.layer == 1].set_index("head")
    assert layer1.loc[0, "prev_token"] == pytest.approx(1.0)
    assert layer1.loc[1, "induction"] == pytest.approx(1.0)
    assert layer1.loc[1, "prev_token"] < 0.2 and layer1.loc[0, "induction"] < 0.2


def test_lens_summary_reads_first_and_lasting_top_layers():
    lens = pd.DataFrame({"prompt": ["p"] * 5, "answer": ["a"] * 5, "layer": [-1, 0, 1, 2, 3],
                         "rank_answer": [5, 1, 3, 1, 1], "p_answer": [0.0, 0.5, 0.1, 0.6, 0.7]})
    row = measures.lens_summary(lens).iloc[0]
    assert row.first_top_layer == 0 and row.stays_top_from == 2 and row.p_final == 0.7
    never = lens.assign(rank_answer=[2] * 5)
    assert pd.isna(measures.lens_summary(never).iloc[0].stays_top_from)


@pytest.fixture(scope="module")
def smollm2():
    from models import zoo

    return zoo.load("smollm2")


@pytest.mark.slow
def test_logit_lens_ends_at_the_models_own_prediction(smollm2):
    lens = measures.logit_lens(smollm2, "The capital of France is the city of", " Paris")
    assert list(lens.layer) == list(range(-1, smollm2.cfg.n_layers))
    with torch.no_grad():
        probs = smollm2(smollm2.to_tokens("The capital of France is the city of"))[0, -1].softmax(-1)
    assert lens.p_answer.iloc[-1] == pytest.approx(float(probs[smollm2.tokenizer.encode(" Paris")[0]]), abs=1e-6)
    assert lens.rank_answer.iloc[-1] == 1 and lens.top_token.iloc[-1] == " Paris"


@pytest.mark.slow
def test_an_answer_of_several_tokens_is_refused(smollm2):
    with pytest.raises(ValueError, match="tokens"):
        measures.answer_token(smollm2, " Kuala Lumpur")


@pytest.mark.slow
def test_quick_report_is_complete(tmp_path):
    saved = lm.run(lm.Config.quick()).save(tmp_path)
    for name in ("report.md", "report.html", "results.json", "model_card.csv", "next_tokens.csv", "logit_lens.csv",
                 "head_scores.csv", "continuations.csv"):
        assert (saved / name).is_file(), f"{name} missing from the lm report"
    assert {p.name for p in (saved / "figures").iterdir()} >= {"logit_lens.png", "head_scores.png", "head_patterns.png"}
    assert (saved / "figures" / "logit_lens.html").is_file(), "the interactive logit lens beside its PNG is missing"
    headline = json.loads((saved / "results.json").read_text())["headline"]
    assert headline["parameters"] == 134_515_008
    correct, total = map(int, headline["panel_correct"].split("/"))
    assert total == 6 and correct >= 4, "SmolLM2 answered fewer than 4 of 6 easy panel questions: a broken model?"
    assert "skipped" in (saved / "report.md").read_text().lower(), "the quick preset must say it skipped the HF check"


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="panel"):
        lm.Config(panel=0)
    with pytest.raises(ValueError, match="top_k"):
        lm.Config(top_k=0)
