import numpy as np
import pytest
import scipy.stats
import torch

from interp.patching.tracing import (
    average_indirect_effect, causal_trace, embedding_std, find_subject, position_group, window_layers,
)
from tests.interp._bridges import tiny_bridge

TOKENS = torch.tensor([[4, 11, 12, 7, 8, 9]])
SUBJECT = (1, 3)


def trace(**kwargs):
    model = tiny_bridge()
    defaults = dict(subject=SUBJECT, answer=3, noise_std=1.0, samples=4, window=3, seed=0)
    return causal_trace(model, TOKENS, **{**defaults, **kwargs})


def test_same_seed_same_trace_other_seed_other_noise():
    a, b, c = trace(seed=1), trace(seed=1), trace(seed=2)
    assert a.equals(b)
    assert not np.allclose(a["score"], c["score"])
    assert set(a["kind"]) == {"resid", "mlp", "attn"} and len(a) == 3 * 2 * 6


def test_known_answers():
    df = trace(max_rows=10)  # several chunks
    clean, corrupted = df["clean"].iloc[0], df["corrupted"].iloc[0]
    assert abs(clean - corrupted) > 1e-4, "noise should move the answer probability"
    resid = df[df.kind == "resid"].set_index(["layer", "pos"])["score"]
    # the logits read only the last layer's last position: restoring it restores the clean run
    assert resid[(1, 5)] == pytest.approx(clean, abs=1e-6)
    # the position before the subject never saw the noise (causal attention)
    assert resid[(0, 0)] == pytest.approx(corrupted, abs=1e-6)
    # without noise nothing is corrupted and nothing can be restored
    quiet = trace(noise_std=0.0)
    assert np.allclose(quiet["indirect_effect"], 0.0, atol=1e-6)


def test_window_restoration_matches_a_hand_written_loop():
    model = tiny_bridge()
    df = trace(window=2, kinds=("mlp",))
    _, cache = model.run_with_cache(TOKENS)
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(4, 2, 32, generator=generator) * 1.0
    layer, pos = 1, 2  # window 2 at layer 1 restores layers 0 and 1
    probs = []
    for s in range(4):
        def add_noise(act, hook, s=s):
            act = act.clone()
            act[0, 1:3] += noise[s]
            return act

        hooks = [("hook_embed", add_noise)]
        for restored in (0, 1):
            name = f"blocks.{restored}.hook_mlp_out"
            hooks.append((name, lambda act, hook, name=name: _put(act, cache[name], pos)))
        logits = model.run_with_hooks(TOKENS, fwd_hooks=hooks)
        probs.append(torch.softmax(logits[0, -1], -1)[3].item())
    ours = df.set_index(["layer", "pos"])["score"][(layer, pos)]
    assert ours == pytest.approx(np.mean(probs), abs=1e-6)


def _put(act, clean, pos):
    act = act.clone()
    act[:, pos] = clean[:, pos]
    return act


def test_rome_window_and_position_groups():
    assert window_layers(20, 10, 48) == list(range(15, 25))  # ROME: [L - 5, L + 5)
    assert window_layers(0, 3, 4) == [0, 1] and window_layers(3, 3, 4) == [2, 3]
    groups = [position_group(p, (2, 5), 9) for p in range(9)]
    assert groups == ["before subject", "before subject", "first subject token", "middle subject tokens",
                      "last subject token", "first subsequent token", "further tokens", "further tokens",
                      "last token"]


def test_average_over_facts_has_standard_error_interval():
    a, b, c = trace(seed=0).assign(fact=0), trace(seed=1).assign(fact=1), trace(seed=2).assign(fact=2)
    stats = average_indirect_effect(__import__("pandas").concat([a, b, c]), by=("kind", "layer", "pos"))
    row = stats[(stats.kind == "mlp") & (stats.layer == 0) & (stats.pos == 2)].iloc[0]
    values = [df[(df.kind == "mlp") & (df.layer == 0) & (df.pos == 2)]["indirect_effect"].item() for df in (a, b, c)]
    assert row["mean"] == pytest.approx(np.mean(values))
    assert row["sem"] == pytest.approx(scipy.stats.sem(values))
    assert row["ci_high"] - row["ci_low"] == pytest.approx(2 * 1.96 * scipy.stats.sem(values))


def test_embedding_std_matches_the_embedding_matrix_rows():
    model = tiny_bridge()
    std = embedding_std(model, TOKENS)
    assert std == pytest.approx(model.W_E[TOKENS[0]].std().item(), rel=1e-5)


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ValueError, match="do not occur in the prompt"):
        find_subject([4, 11, 12, 7], [12, 11])
    assert find_subject([4, 11, 12, 7], [11, 12]) == (1, 3)
    with pytest.raises(ValueError, match="not inside the prompt"):
        trace(subject=(4, 9))
    with pytest.raises(ValueError, match=r"\[batch\] tensor of length"):
        trace(answer=None, metric=lambda logits: logits[:, -1, 3].mean())
    with pytest.raises(ValueError, match="exactly one of answer"):
        trace(metric=lambda logits: logits[:, -1, 3])


def test_runs_on_minilm_wrapped_by_transformer_lens_with_a_hidden_state_metric():
    from models.pretrained import load_minilm

    model = load_minilm()
    tokens = model.tokenizer(["michael jordan plays basketball"], return_tensors="pt")["input_ids"]
    subject = find_subject(tokens[0], model.tokenizer(["michael jordan"], add_special_tokens=False)["input_ids"][0])
    last = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name == last)
    target = cache[last][0, -1]
    metric = lambda hidden: torch.cosine_similarity(hidden[:, -1], target[None], dim=-1)  # noqa: E731
    std = embedding_std(model, tokens)
    df = causal_trace(model, tokens, subject, metric=metric, noise_std=3 * std, samples=3, window=3,
                      output_hook=last, seed=0)
    assert df["clean"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert df["corrupted"].iloc[0] < 0.999
    resid = df[df.kind == "resid"].set_index(["layer", "pos"])["score"]
    assert resid[(model.cfg.n_layers - 1, tokens.shape[1] - 1)] == pytest.approx(1.0, abs=1e-5)
    assert df.equals(causal_trace(model, tokens, subject, metric=metric, noise_std=3 * std, samples=3, window=3,
                                  output_hook=last, seed=0))
