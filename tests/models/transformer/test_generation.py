"""Generation with a key/value cache against its references: the full forward at every step,
each prompt alone, Hugging Face's ``generate`` and logits warpers; hooks during generation; ``interp chat``."""

import pytest
import torch
from typer.testing import CliRunner

from analyses.cli import app
from models.transformer import CharTokenizer, Transformer, generate
from models.transformer.convert_llama import to_hf_llama
from models.transformer.sampling import chat_reply, filter_logits, next_token
from tests.models.transformer.conftest import small_config

LLAMA = dict(normalization="RMS", positional_embedding="rotary", gated_mlp=True, act_fn="silu", use_bias=False,
             n_heads=4, d_model=32, d_mlp=48, rotary_base=500.0, n_key_value_heads=2)
CONFIGS = {
    "gpt2": small_config(n_ctx=32, d_vocab=40),
    "llama-grouped": small_config(**LLAMA, n_ctx=32, d_vocab=40),
}
SAMPLING = {
    "greedy": dict(temperature=0),
    "sampled": dict(temperature=0.8, seed=3),
    "top-k-top-p": dict(temperature=1.2, top_k=12, top_p=0.8, seed=4),
}


def randomised(cfg, seed=0):
    """Every parameter random, large enough that the next token is far from uniform (norm gains around 1)."""
    model = Transformer(cfg)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.3 + (1.0 if name.endswith(".w") else 0.0))
    return model.eval()


def prompt_of(cfg, batch=2, n=6, seed=1):
    return torch.randint(0, cfg.d_vocab, (batch, n), generator=torch.Generator().manual_seed(seed))


def left_padded(rows, pad=0):
    """Tokens and attention mask of 1-D token rows, left-padded."""
    width = max(len(row) for row in rows)
    tokens = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, width - len(row):], mask[i, width - len(row):] = row, 1
    return tokens, mask


@torch.no_grad()
def full_forward_generation(model, tokens, n, temperature=1.0, top_k=None, top_p=None, seed=None, mask=None):
    """The reference: the whole sequence through the model at every step, no cache."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    for _ in range(n):
        logits = model(tokens, attention_mask=mask)[:, -1]
        tokens = torch.cat([tokens, next_token(logits, temperature, top_k, top_p, generator)], dim=1)
        mask = None if mask is None else torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
    return tokens


@pytest.fixture(scope="module")
def smollm2():
    from models import zoo

    return zoo.load("smollm2")


# ----- the cache computes what the full forward computes --------------------------------------------------


@pytest.mark.parametrize("sampling", list(SAMPLING))
@pytest.mark.parametrize("family", list(CONFIGS))
def test_cache_gives_the_tokens_of_the_full_forward(family, sampling):
    model = randomised(CONFIGS[family])
    tokens = prompt_of(model.cfg)
    expected = full_forward_generation(model, tokens, 20, **SAMPLING[sampling])
    out = generate(model, tokens, 20, **SAMPLING[sampling])
    assert torch.equal(out, expected), f"{family}/{sampling}: the cached steps diverge from the full forward"
    no_cache = generate(model, tokens, 20, use_cache=False, **SAMPLING[sampling])
    assert torch.equal(no_cache, expected)
    assert len(set(out[0, 6:].tolist())) > 3, "the test model should not repeat one token (a vacuous comparison)"


def test_each_step_feeds_one_position():
    """The cache is used: after the prompt's forward, every forward sees one new position."""
    model = randomised(CONFIGS["llama-grouped"])
    seen = []
    generate(model, prompt_of(model.cfg), 5, temperature=0,
             fwd_hooks=[("hook_embed", lambda x, hook: seen.append(x.shape[1]))])
    assert seen == [6, 1, 1, 1, 1], "one forward per new token: the prompt, then one position at a time"


@pytest.mark.parametrize("sampling", ["greedy", "top-k-top-p"])
def test_cache_gives_the_tokens_of_the_full_forward_on_smollm2(smollm2, sampling):
    tokens = smollm2.to_tokens("The capital of France is")
    expected = full_forward_generation(smollm2, tokens, 12, **SAMPLING[sampling])
    out = generate(smollm2, tokens, 12, stop_at_eos=False, **SAMPLING[sampling])
    assert torch.equal(out, expected), smollm2.to_string(torch.cat([out, expected]))


# ----- batches of prompts of different lengths ---------------------------------------------------------------


@pytest.mark.parametrize("family", list(CONFIGS))
def test_left_padded_rows_generate_what_each_prompt_alone_generates(family):
    model = randomised(CONFIGS[family])
    rows = [prompt_of(model.cfg, batch=1, n=n, seed=n)[0] for n in (9, 4, 1)]
    tokens, mask = left_padded(rows, pad=7)
    out = generate(model, tokens, 12, temperature=0, attention_mask=mask)
    assert out.shape == (3, 9 + 12) and torch.equal(out[:, :9], tokens)
    for i, row in enumerate(rows):
        alone = full_forward_generation(model, row[None], 12, temperature=0)
        assert torch.equal(out[i, 9:], alone[0, len(row):]), f"row {i} ({len(row)} tokens) differs from itself alone"


def test_left_padded_sampling_equals_the_padded_full_forward():
    """Sampled rows share one generator, so compare against the full forward over the same padded batch."""
    model = randomised(CONFIGS["llama-grouped"])
    tokens, mask = left_padded([prompt_of(model.cfg, 1, n, seed=n)[0] for n in (7, 2)])
    expected = full_forward_generation(model, tokens, 10, mask=mask, **SAMPLING["top-k-top-p"])
    assert torch.equal(generate(model, tokens, 10, attention_mask=mask, **SAMPLING["top-k-top-p"]), expected)


def test_smollm2_three_prompts_of_different_lengths(smollm2):
    texts = ["The capital of France is", "Once upon a time, in a small village by the sea,", "Water boils at"]
    tokens, mask = smollm2.tokenizer.batch(texts, padding_side="left")
    assert len(set(mask.sum(1).tolist())) == 3, "the prompts should have three different lengths"
    out = generate(smollm2, tokens, 10, temperature=0, attention_mask=mask, stop_at_eos=False)
    for i, text in enumerate(texts):
        alone = generate(smollm2, smollm2.to_tokens(text), 10, temperature=0, stop_at_eos=False)
        assert torch.equal(out[i, -10:], alone[0, -10:]), f"{text!r} continues differently in the batch"
    strings = generate(smollm2, texts, 10, temperature=0, stop_at_eos=False)
    assert strings == [generate(smollm2, text, 10, temperature=0, stop_at_eos=False) for text in texts]


def test_list_of_strings_is_left_padded():
    tokenizer = CharTokenizer.from_corpus("the cat sat on the mat.")
    model = randomised(small_config(n_ctx=32, d_vocab=tokenizer.d_vocab))
    model.tokenizer = tokenizer
    texts = ["the cat", "a", "on the mat"]
    out = generate(model, texts, 6, temperature=0)
    assert out == [generate(model, text, 6, temperature=0) for text in texts]
    assert all(isinstance(s, str) and s.startswith(t) for s, t in zip(out, texts))


# ----- the end-of-sequence token -------------------------------------------------------------------------------


def test_rows_stop_at_eos_and_are_padded_as_hugging_face_pads_them():
    model = randomised(CONFIGS["llama-grouped"])
    tokens, mask = left_padded([prompt_of(model.cfg, 1, n, seed=n)[0] for n in (6, 3)])
    free = generate(model, tokens, 16, temperature=0, attention_mask=mask)
    eos = int(free[0, 6 + 4])  # row 0's fifth new token
    assert eos not in free[0, 6:10].tolist(), "pick a token row 0 produces first at its fifth step"
    out = generate(model, tokens, 16, temperature=0, attention_mask=mask, eos_token_id=eos, pad_token_id=39)
    assert torch.equal(out[0, :11], free[0, :11]) and (out[0, 11:] == 39).all(), "row 0 stops after its EOS"
    row1 = free[1, 6:].tolist()
    stop = row1.index(eos) + 1 if eos in row1 else len(row1)
    assert torch.equal(out[1, 6:6 + stop], free[1, 6:6 + stop]), "row 1 is not affected by row 0 stopping"
    hf = to_hf_llama(model).generate(tokens, attention_mask=mask, max_new_tokens=16, do_sample=False,
                                     eos_token_id=eos, pad_token_id=39)
    assert torch.equal(out, hf), "Hugging Face stops and pads the same rows at the same steps"


def test_generation_ends_when_every_row_has_stopped():
    model = randomised(CONFIGS["gpt2"])
    tokens = prompt_of(model.cfg, batch=1)
    free = generate(model, tokens, 12, temperature=0)
    eos = int(free[0, 6 + 2])
    out = generate(model, tokens, 12, temperature=0, eos_token_id=eos)
    first = free[0, 6:].tolist().index(eos)
    assert torch.equal(out, free[:, : 6 + first + 1]), "a single row ends right after its EOS token"


# ----- Hugging Face's generate -------------------------------------------------------------------------------


@pytest.mark.parametrize("sampling", list(SAMPLING))
def test_matches_hugging_face_generate_on_a_random_llama(sampling):
    """Greedy and sampled: transformers draws from the global RNG, ours from a generator with the same seed."""
    model = randomised(CONFIGS["llama-grouped"])
    hf = to_hf_llama(model)
    tokens, mask = left_padded([prompt_of(model.cfg, 1, n, seed=n)[0] for n in (8, 5, 2)])
    options = SAMPLING[sampling]
    ours = generate(model, tokens, 16, attention_mask=mask, **options)
    hf_options = dict(do_sample=False) if options["temperature"] == 0 else dict(
        do_sample=True, temperature=options["temperature"], top_k=options.get("top_k", 0),
        top_p=options.get("top_p", 1.0))
    state = torch.get_rng_state()
    try:
        torch.manual_seed(options.get("seed", 0))
        theirs = hf.generate(tokens, attention_mask=mask, max_new_tokens=16, pad_token_id=0, **hf_options)
    finally:
        torch.set_rng_state(state)
    assert torch.equal(ours, theirs), f"{sampling}: ours\n{ours}\ntransformers\n{theirs}"


@pytest.mark.slow
def test_matches_hugging_face_generate_on_smollm2(smollm2):
    from models import smollm2 as smollm2_module

    hf = smollm2_module.load_hf()
    tokens = smollm2.to_tokens(smollm2.tokenizer.chat_prompt([{"role": "user", "content": "What is gravity?"}]))
    theirs = hf.generate(tokens, max_new_tokens=32, do_sample=False)
    ours = generate(smollm2, tokens, 32, temperature=0)
    assert theirs.shape[1] == tokens.shape[1] + 32, "the reply should not end within 32 tokens (a shorter test)"
    assert torch.equal(ours, theirs), smollm2.to_string(torch.cat([ours, theirs]))


@pytest.mark.parametrize("top_k, top_p", [(None, 0.9), (None, 0.3), (5, None), (20, 0.6), (1, 0.9), (None, 1.0)])
def test_filters_equal_hugging_face_warpers(top_k, top_p):
    from transformers.generation.logits_process import TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(8, 100, generator=torch.Generator().manual_seed(0)) * 3
    expected = logits
    if top_k is not None:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p is not None:
        expected = TopPLogitsWarper(top_p)(None, expected)
    ours = filter_logits(logits, top_k, top_p)
    assert torch.equal(ours.isinf(), expected.isinf()), "a different set of tokens survives the filter"
    assert torch.equal(ours[~ours.isinf()], logits[~ours.isinf()]), "kept logits must be unchanged"


@pytest.mark.parametrize("top_p, n_kept", [(0.45, 1), (0.55, 2), (0.79, 2), (0.85, 3), (1.0, 4)])
def test_nucleus_keeps_the_smallest_set_reaching_top_p(top_p, n_kept):
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = ~filter_logits(logits, None, top_p).isinf()
    assert kept.tolist() == [[i < n_kept for i in range(4)]]


def test_seed_leaves_the_global_rng_alone():
    model = randomised(CONFIGS["gpt2"])
    state = torch.get_rng_state()
    a = generate(model, prompt_of(model.cfg), 8, seed=11)
    assert torch.equal(torch.get_rng_state(), state), "a seeded generation must not draw from the global RNG"
    assert torch.equal(a, generate(model, prompt_of(model.cfg), 8, seed=11))
    assert not torch.equal(a, generate(model, prompt_of(model.cfg), 8, seed=12))


@pytest.mark.parametrize("kwargs, message", [
    (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(top_k=2.5), "top_k"),
    (dict(temperature=float("nan")), "temperature"), (dict(max_new_tokens=1.5), "max_new_tokens"),
    (dict(stop_at_eos=False, eos_token_id=3), "stop_at_eos"), (dict(eos_token_id=400), "eos_token_id"),
    (dict(attention_mask=torch.tensor([[1, 1, 1, 1, 1, 0]] * 2)), "left-padded"),
    (dict(attention_mask=torch.ones(2, 5, dtype=torch.long)), "shape"),
    (dict(attention_mask=torch.full((2, 6), 2)), "0 .padding. and 1"),
])
def test_bad_arguments_say_what_to_change(kwargs, message):
    model = randomised(CONFIGS["gpt2"])
    with pytest.raises(ValueError, match=message):
        generate(model, prompt_of(model.cfg), **{"max_new_tokens": 2, **kwargs})


def test_mask_goes_with_tokens_only():
    model = randomised(small_config(n_ctx=32, d_vocab=len(CharTokenizer.from_corpus("ab"))))
    model.tokenizer = CharTokenizer.from_corpus("ab")
    with pytest.raises(ValueError, match="token prompts"):
        generate(model, "ab", 2, attention_mask=torch.ones(1, 3))


# ----- hooks ---------------------------------------------------------------------------------------------


def test_fwd_hooks_fire_once_per_step_and_are_removed():
    model = randomised(CONFIGS["llama-grouped"])
    calls = []
    generate(model, prompt_of(model.cfg), 7, temperature=0,
             fwd_hooks=[("blocks.1.attn.hook_pattern", lambda x, hook: calls.append(tuple(x.shape)))])
    assert calls == [(2, 4, 6, 6)] + [(2, 4, 1, 7 + i) for i in range(6)], "prompt, then one query per step"
    assert not any(hp._forward_hooks for hp in model.hook_dict.values()), "a hook was left attached"


def test_hooks_on_the_model_fire_at_every_step():
    model = randomised(CONFIGS["gpt2"])
    calls = []
    with model.hooks(fwd_hooks=[("blocks.0.hook_resid_pre", lambda x, hook: calls.append(x.shape[1]))]):
        generate(model, prompt_of(model.cfg), 4, temperature=0)
    model.add_hook("blocks.0.hook_mlp_out", lambda x, hook: calls.append(-x.shape[1]))
    generate(model, prompt_of(model.cfg), 3, temperature=0)
    model.reset_hooks()
    assert calls == [6, 1, 1, 1, -6, -1, -1]


@pytest.mark.parametrize("family", list(CONFIGS))
def test_an_edit_by_a_hook_changes_the_output_as_it_changes_the_full_forward(family):
    """Values of head 0 zeroed in block 0: the cache holds the edited values, so later steps read them."""
    model = randomised(CONFIGS[family])
    tokens = prompt_of(model.cfg)

    def silence_head_0(v, hook):
        v = v.clone()
        v[:, :, 0] = 0
        return v

    edit = [("blocks.0.attn.hook_v", silence_head_0)]
    out = generate(model, tokens, 16, temperature=0, fwd_hooks=edit)
    with model.hooks(fwd_hooks=edit):
        expected = full_forward_generation(model, tokens, 16, temperature=0)
    assert torch.equal(out, expected), "the hook's edit did not persist through the cache as in the full forward"
    assert not torch.equal(out, generate(model, tokens, 16, temperature=0)), "the edit should change the tokens"


def test_steering_hook_takes_over_every_step():
    model = randomised(CONFIGS["gpt2"])
    target = 17
    push = 50 * model.W_U[:, target].detach() / model.W_U[:, target].norm()
    out = generate(model, prompt_of(model.cfg), 8, temperature=0,
                   fwd_hooks=[("ln_final.hook_normalized", lambda x, hook: x + push)])
    assert (out[:, 6:] == target).all()


def test_hooks_are_removed_after_an_error():
    model = randomised(CONFIGS["llama-grouped"])
    before = model(prompt_of(model.cfg))
    calls = []

    def fails_at_step_3(x, hook):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("hook failed")

    with pytest.raises(RuntimeError, match="hook failed"):
        generate(model, prompt_of(model.cfg), 8, fwd_hooks=[("blocks.0.hook_resid_post", fails_at_step_3)])
    assert not any(hp._forward_hooks for hp in model.hook_dict.values()), "a hook was left attached after an error"
    torch.testing.assert_close(model(prompt_of(model.cfg)), before, rtol=0, atol=0)


# ----- interp chat ------------------------------------------------------------------------------------------


def test_chat_reply_goes_through_the_chat_template(smollm2):
    messages = [{"role": "user", "content": "Name a colour."}]
    tokens = smollm2.to_tokens(smollm2.tokenizer.chat_prompt(messages))
    template = smollm2.tokenizer.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    assert tokens[0].tolist() == list(template["input_ids"]), "the prompt must tokenize as the template does"
    reply = chat_reply(smollm2, messages, 8, temperature=0)
    assert reply == smollm2.to_string(generate(smollm2, tokens, 8, temperature=0)[0, tokens.shape[1]:]).strip()
    assert reply, "an instruct model should answer"


def test_interp_chat_smollm2_keeps_the_conversation(smollm2, monkeypatch):
    from models import zoo
    from models.transformer.hf_tokenizer import HFTokenizer

    monkeypatch.setattr(zoo, "load", lambda name, **kwargs: smollm2)
    seen = []
    original = HFTokenizer.chat_prompt
    monkeypatch.setattr(HFTokenizer, "chat_prompt", lambda self, messages: seen.append(messages) or original(self, messages))
    result = CliRunner().invoke(app, ["chat", "smollm2", "--max-new-tokens", "8"], input="Hi!\nAnd you?\n\n")
    assert result.exit_code == 0, result.output
    assert len(seen) == 2, "one prompt through the chat template per turn"
    first = chat_reply(smollm2, [{"role": "user", "content": "Hi!"}], 8, temperature=0)
    assert first and first in result.output, result.output
    assert seen[1] == [{"role": "user", "content": "Hi!"}, {"role": "assistant", "content": first},
                        {"role": "user", "content": "And you?"}], "the second turn must see the first"


@pytest.mark.parametrize("argv, message", [
    (["chat", "nonexistent"], "no zoo subject"), (["chat", "smollm2", "--top-p", "1.5"], "top_p"),
])
def test_interp_chat_fails_with_one_line(argv, message):
    result = CliRunner().invoke(app, argv, input="\n")
    assert result.exit_code == 2 and "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output


def test_interp_chat_facts_still_completes_the_line(monkeypatch):
    from models import zoo
    from models.facts_subject import complete
    from models.transformer import WordTokenizer

    tokenizer = WordTokenizer.from_corpus(["question : which sport does ann lee play ? answer : tennis ."])
    model = randomised(small_config(n_ctx=32, d_vocab=tokenizer.d_vocab))
    model.tokenizer = tokenizer
    monkeypatch.setattr(zoo, "load", lambda name, **kwargs: model)
    line = "question : which sport does ann lee play ? answer :"
    result = CliRunner().invoke(app, ["chat", "facts"], input=f"{line}\n\n")
    assert result.exit_code == 0, result.output
    assert f"{line} {complete(model, line, 8, temperature=0.0, seed=0)}" in result.output
    result = CliRunner().invoke(app, ["chat", "facts", "--top-p", "0.9"], input="\n")
    assert result.exit_code == 2 and "--top-p applies to chat models" in result.stderr


def test_interp_chat_refuses_a_subject_that_is_not_a_language_model(monkeypatch):
    from models import zoo

    monkeypatch.setattr(zoo, "load", lambda name, **kwargs: torch.nn.Linear(1, 1))
    result = CliRunner().invoke(app, ["chat", "digits"], input="\n")
    assert result.exit_code == 2 and result.stderr.startswith("error: ") and "not a language model" in result.stderr
