"""The explorer's JSON API: each answer equal to the instrument it calls, every bad input a 4xx with a
message, and 20 concurrent requests equal to the same requests one at a time, with no hook left."""

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from fastapi.testclient import TestClient

from interp.explore import Entry, Limits, Registry, create_app
from interp.lens import logit_lens
from interp.patching import activation_patching, causal_trace
from models.transformer import Transformer, TransformerConfig
from models.transformer.tokenizer import CharTokenizer

CORPUS = "abcdefghijklmnopqrstuvwxyz ,.<>&'"


def tiny(normalization: str = "LN", seed: int = 0) -> Transformer:
    tokenizer = CharTokenizer.from_corpus(CORPUS)
    extra = {"normalization": "RMS", "positional_embedding": "rotary", "gated_mlp": True, "act_fn": "silu",
             "n_key_value_heads": 1} if normalization == "RMS" else {}
    cfg = TransformerConfig(d_model=32, n_layers=3, n_heads=2, d_mlp=64, d_vocab=tokenizer.d_vocab, n_ctx=24, **extra)
    torch.manual_seed(seed)
    model = Transformer(cfg, tokenizer=tokenizer)
    with torch.no_grad():  # larger weights than the default init, so patterns and effects are not flat
        for p in model.parameters():
            if p.ndim > 1:
                p.mul_(4)
        model.ln_final.w.copy_(1 + 0.5 * torch.randn_like(model.ln_final.w))  # a gain the attribution must apply
    return model.eval()


class Encoder(Transformer):
    """Stands in for an encoder: the registry marks it causal=False."""


@pytest.fixture(scope="module")
def models():
    return {"gpt": tiny("LN"), "llama": tiny("RMS", seed=1)}


@pytest.fixture(scope="module")
def client(models):
    entries = {name: Entry(lambda m=m: m) for name, m in models.items()}
    entries["encoder"] = Entry(lambda: tiny("LN", seed=2), causal=False)
    entries["untrained"] = Entry(lambda: tiny(), ready=lambda: False, not_ready="run `make it`")
    return TestClient(create_app(Registry(entries), Limits(max_tokens=20, max_sites=45, max_k=12)))


def post(client, path, **body):
    response = client.post(path, json=body)
    return response.status_code, response.json()


@pytest.mark.parametrize("name", ["gpt", "llama"])
def test_prompt_view_equals_the_model_and_the_lens(client, models, name):
    model = models[name]
    code, data = post(client, "/api/prompt", model=name, prompt="hello there", k=3)
    assert code == 200, data
    tokens = model.to_tokens("hello there")
    assert data["tokens"] == model.to_str_tokens(tokens[0])
    logits, cache = model.run_with_cache(tokens)
    patterns = torch.tensor(data["attention"]["patterns"], dtype=torch.float64)  # [layer head query key]
    expected = torch.stack([cache[f"blocks.{L}.attn.hook_pattern"][0] for L in range(3)])
    assert patterns.shape == expected.shape
    assert torch.allclose(patterns, expected.double(), atol=5e-7), "attention patterns differ from run_with_cache"
    top = logits[0].softmax(-1).topk(3)
    assert [[e["id"] for e in row] for row in data["top_k"]] == top.indices.tolist()
    assert torch.allclose(torch.tensor([[e["prob"] for e in row] for row in data["top_k"]], dtype=torch.float64), top.values.double(),
                          atol=5e-7)
    lens = logit_lens(model, tokens)  # [layer pos d_vocab]
    probs = torch.tensor(data["lens"]["probs"], dtype=torch.float64)
    assert probs.shape == lens.shape[:2]
    assert torch.allclose(probs, lens.max(-1).values.double(), atol=5e-7)
    assert data["lens"]["layer_labels"] == ["embed", "0", "1", "2"]


def test_attention_of_one_layer_and_head(client, models):
    code, data = post(client, "/api/attention", model="gpt", prompt="abc", layer=1, head=0)
    assert code == 200, data
    _, cache = models["gpt"].run_with_cache(models["gpt"].to_tokens("abc"))
    assert torch.allclose(torch.tensor(data["patterns"], dtype=torch.float64)[0, 0], cache["blocks.1.attn.hook_pattern"][0, 0].double(),
                          atol=5e-7)


@pytest.mark.parametrize("name", ["gpt", "llama"])
def test_neuron_attribution_equals_transformer_lens(client, models, name):
    """Each neuron's direct logit attribution equals TransformerLens's stack_neuron_results + logit_attrs."""
    model = models[name]
    code, data = post(client, "/api/neurons", model=name, prompt="a cat sat", position=4, k=8)
    assert code == 200, data
    tokens = model.to_tokens("a cat sat")
    logits, cache = model.run_with_cache(tokens)
    target = data["target"]["id"]
    assert target == int(logits[0, 4].argmax())
    stack, labels = cache.stack_neuron_results(layer=3, pos_slice=4, return_labels=True, apply_ln=False)
    attrs = cache.logit_attrs(stack, tokens=torch.tensor([target]), pos_slice=4)  # [component batch]
    reference = {label: float(value) for label, value in zip(labels, attrs[:, 0])}
    ranked = sorted(reference.values(), key=abs, reverse=True)
    assert [abs(n["dla"]) for n in data["neurons"]] == pytest.approx([abs(v) for v in ranked[:8]], rel=1e-4, abs=1e-6)
    for n in data["neurons"]:
        assert n["dla"] == pytest.approx(reference[f"L{n['layer']}N{n['neuron']}"], rel=1e-4, abs=1e-6)
        act = cache[f"blocks.{n['layer']}.mlp.hook_post"][0, 4, n["neuron"]]
        assert n["activation"] == pytest.approx(float(act), rel=1e-5, abs=1e-7)


def test_neurons_ranked_by_activation(client, models):
    code, data = post(client, "/api/neurons", model="gpt", prompt="a cat sat", rank_by="activation", k=5)
    assert code == 200, data
    _, cache = models["gpt"].run_with_cache(models["gpt"].to_tokens("a cat sat"))
    acts = torch.stack([cache[f"blocks.{L}.mlp.hook_post"][0, -1] for L in range(3)]).flatten()
    assert [n["activation"] for n in data["neurons"]] == pytest.approx(acts.topk(5).values.tolist(), rel=1e-5)


@pytest.mark.parametrize("activation", ["resid_pre", "attn_out", "mlp_out"])
def test_patching_equals_activation_patching(client, models, activation):
    model = models["llama"]
    code, data = post(client, "/api/patch", model="llama", clean="the cat", corrupted="the dog",
                      activation=activation, answer="s", wrong="x")
    assert code == 200, data
    clean, corrupted = model.to_tokens("the cat"), model.to_tokens("the dog")
    a, w = data["answer"]["id"], data["wrong"]["id"]

    def metric(logits):
        return (logits[:, -1, a] - logits[:, -1, w]).mean()

    expected = activation_patching(model, clean, corrupted, metric, activation)
    values = torch.tensor(data["values"], dtype=torch.float64)
    assert values.shape == expected.shape == (3, 8)
    assert torch.allclose(values, expected.double(), rtol=1e-5, atol=1e-6)
    assert data["clean_value"] == pytest.approx(float(metric(model(clean))), rel=1e-5)
    assert data["corrupted_value"] == pytest.approx(float(metric(model(corrupted))), rel=1e-5)


def test_tracing_equals_causal_trace(client, models):
    model = models["gpt"]
    code, data = post(client, "/api/trace", model="gpt", prompt="the cat sat", subject="cat", kind="mlp",
                      samples=2, window=2, seed=3)
    assert code == 200, data
    tokens = model.to_tokens("the cat sat")
    assert data["subject"] == [5, 8]  # <bos> t h e ' ' | c a t
    answer = int(model(tokens)[0, -1].argmax())
    df = causal_trace(model, tokens, (5, 8), noise_std=3 * float(model.W_E.std()), answer=answer, kinds=("mlp",),
                      samples=2, window=2, seed=3)
    expected = torch.tensor(df.pivot(index="layer", columns="pos", values="indirect_effect").to_numpy())
    assert torch.allclose(torch.tensor(data["values"], dtype=torch.float64), expected, rtol=1e-5, atol=1e-7)
    span = post(client, "/api/trace", model="gpt", prompt="the cat sat", subject_start=5, subject_stop=8, kind="mlp",
                samples=2, window=2, seed=3)[1]
    assert span["values"] == data["values"]


def test_an_encoder_serves_attention_and_activations_only(client):
    code, data = post(client, "/api/prompt", model="encoder", prompt="abc")
    assert code == 200 and data["top_k"] is None and data["lens"] is None and "no next-token head" in data["unavailable"]["lens"]
    code, data = post(client, "/api/neurons", model="encoder", prompt="abc", rank_by="activation")
    assert code == 200 and "dla" not in data["neurons"][0]


def test_models_and_limits_are_listed(client):
    models = client.get("/api/models").json()["models"]
    assert [m["name"] for m in models] == ["gpt", "llama", "encoder", "untrained"]
    assert {m["name"]: m.get("ready", True) for m in models}["untrained"] is False
    assert client.get("/api/limits").json() == {"max_tokens": 20, "max_k": 12, "max_sites": 45, "max_samples": 10,
                                                "max_prompt_chars": 2000}


# every bad input: (path, body or raw text, status, words the message must contain)
BAD_INPUTS = [
    ("/api/prompt", {"model": "nope", "prompt": "abc"}, 404, ["unknown model", "gpt"]),
    ("/api/prompt", "{not json", 400, ["not valid JSON"]),
    ("/api/prompt", "[1, 2]", 422, ["valid dictionary"]),
    ("/api/prompt", {"model": "gpt"}, 422, ["'prompt' is missing"]),
    ("/api/prompt", {"model": "gpt", "prompt": "abc", "temperature": 1}, 422, ["'temperature' is not a field"]),
    ("/api/prompt", {"model": "gpt", "prompt": "abc", "k": "many"}, 422, ["'k'", "integer"]),
    ("/api/prompt", {"model": "gpt", "prompt": "abc", "k": 0}, 422, ["k = 0", "1 to 12"]),
    ("/api/prompt", {"model": "gpt", "prompt": "abc", "k": 13}, 422, ["k = 13", "1 to 12"]),
    ("/api/prompt", {"model": "gpt", "prompt": "   "}, 400, ["empty"]),
    ("/api/prompt", {"model": "gpt", "prompt": "a" * 20}, 413, ["21 tokens", "at most 20", "shorten"]),
    ("/api/prompt", {"model": "gpt", "prompt": "a" * 2001}, 422, ["'prompt'", "2000 characters"]),
    ("/api/prompt", {"model": "untrained", "prompt": "abc"}, 409, ["not built", "make it"]),
    ("/api/attention", {"model": "gpt", "prompt": "abc", "layer": 3}, 422, ["layer 3", "0 to 2"]),
    ("/api/attention", {"model": "gpt", "prompt": "abc", "layer": -1}, 422, ["layer -1", "0 to 2"]),
    ("/api/attention", {"model": "gpt", "prompt": "abc", "head": 2}, 422, ["head 2", "0 to 1"]),
    ("/api/neurons", {"model": "gpt", "prompt": "abc", "position": 4}, 422, ["position 4", "0 to 3"]),
    ("/api/neurons", {"model": "gpt", "prompt": "abc", "rank_by": "size"}, 422, ["rank_by"]),
    ("/api/neurons", {"model": "gpt", "prompt": "abc", "target": "ab"}, 400, ["2 tokens", "one token"]),
    ("/api/neurons", {"model": "encoder", "prompt": "abc"}, 422, ["no next-token head", "activation"]),
    ("/api/patch", {"model": "gpt", "clean": "the cat", "corrupted": "the cats"}, 422, ["8 tokens", "9", "same number"]),
    ("/api/patch", {"model": "gpt", "clean": "ab", "corrupted": "ac", "activation": "z"}, 422, ["activation", "resid_pre"]),
    ("/api/patch", {"model": "gpt", "clean": "ab", "corrupted": "ac", "answer": "s", "wrong": "s"}, 422,
     ["same token"]),
    ("/api/patch", {"model": "gpt", "clean": "abcdefghijklmno", "corrupted": "abcdefghijklmnp"}, 413,
     ["48 (layer, position) sites", "limit of 45"]),
    ("/api/patch", {"model": "encoder", "clean": "ab", "corrupted": "ac"}, 422, ["encoder", "patching"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject": "dog"}, 422, ["'dog' does not occur"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat"}, 422, ["give the subject"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject_start": 3}, 422, ["both subject_start"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject_start": 5, "subject_stop": 9}, 422,
     ["[5, 9)", "8 tokens"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject_start": 4, "subject_stop": 4}, 422, ["start < stop"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject": "cat", "samples": 11}, 422, ["samples = 11"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject": "cat", "window": 0}, 422, ["window = 0"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject": "cat", "window": 4}, 422, ["window = 4", "1 to 3"]),
    ("/api/trace", {"model": "gpt", "prompt": "the cat", "subject": "cat", "kind": "z"}, 422, ["kind", "mlp"]),
    ("/api/nothing", {"model": "gpt"}, 404, ["Not Found", "/api/nothing"]),
]


@pytest.mark.parametrize("path, body, status, words", BAD_INPUTS,
                         ids=[f"{p}-{i}" for i, (p, *_rest) in enumerate(BAD_INPUTS)])
def test_every_bad_input_is_a_4xx_saying_what_to_change(client, path, body, status, words):
    if isinstance(body, str):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post(path, json=body)
    assert response.status_code == status, response.text
    message = response.json()["error"]
    for word in words:
        assert word in message, f"{word!r} missing from the message {message!r}"
    assert "Traceback" not in response.text


def test_a_get_on_a_post_route_and_a_prompt_that_tokenizes_to_nothing(client, models, monkeypatch):
    response = client.get("/api/prompt")
    assert response.status_code == 405 and "GET /api/prompt" in response.json()["error"]
    monkeypatch.setattr(models["gpt"], "to_tokens", lambda text, prepend_bos=None: torch.zeros(1, 0, dtype=torch.long))
    code, data = post(client, "/api/prompt", model="gpt", prompt="???")
    assert code == 400 and "tokenizes to nothing" in data["error"]


def test_a_bug_is_a_500_with_a_message_not_a_traceback(models):
    broken = tiny()

    def fail(*args, **kwargs):
        raise RuntimeError("boom")

    broken.run_with_cache = fail
    client = TestClient(create_app(Registry({"broken": Entry(lambda: broken)})), raise_server_exceptions=False)
    response = client.post("/api/prompt", json={"model": "broken", "prompt": "abc"})
    assert response.status_code == 500
    assert "bug in interp" in response.json()["error"] and "Traceback" not in response.text


def concurrent_requests():
    """20 requests: prompts, attention, neurons, patching sweeps and traces over two models."""
    words = ["the cat", "the dog", "big sun", "old man", "red box"]  # 8 tokens each
    requests = []
    for i in range(20):
        model = ["gpt", "llama"][i % 2]
        word = words[i % len(words)]
        kind = i % 5
        if kind == 0:
            requests.append(("/api/prompt", {"model": model, "prompt": word + " sat", "k": 3}))
        elif kind == 1:
            requests.append(("/api/patch", {"model": model, "clean": word, "corrupted": words[(i + 1) % 5],
                                            "activation": ["resid_pre", "attn_out", "mlp_out"][i % 3]}))
        elif kind == 2:
            requests.append(("/api/neurons", {"model": model, "prompt": word, "k": 4}))
        elif kind == 3:
            requests.append(("/api/trace", {"model": model, "prompt": word + " is", "subject": word.split()[1],
                                            "samples": 2, "window": 2, "seed": i}))
        else:
            requests.append(("/api/patch", {"model": model, "clean": word, "corrupted": words[(i + 2) % 5],
                                            "activation": "resid_pre", "answer": "s", "wrong": "x"}))
    return requests


def test_twenty_concurrent_requests_equal_the_same_requests_one_at_a_time(client, models):
    requests = concurrent_requests()
    one_at_a_time = [client.post(path, json=body) for path, body in requests]
    assert all(r.status_code == 200 for r in one_at_a_time), [r.text for r in one_at_a_time if r.status_code != 200]
    with ThreadPoolExecutor(max_workers=20) as pool:
        together = list(pool.map(lambda req: client.post(req[0], json=req[1]), requests))
    for (path, body), alone, both in zip(requests, one_at_a_time, together):
        assert both.status_code == 200, both.text
        assert json.loads(both.text) == json.loads(alone.text), f"{path} {body} differs when run concurrently"
    for name, model in models.items():
        left = sum(len(h._forward_hooks) + len(h._backward_hooks) for h in model.hook_dict.values())
        assert left == 0, f"{left} hooks left on {name}"


@pytest.mark.parametrize("host, warned", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                          ("0.0.0.0", True), ("192.168.1.5", True), ("example.org", True)])
def test_serving_beyond_loopback_warns(monkeypatch, capsys, host, warned):
    import uvicorn

    from interp.explore import serve

    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, log_level: started.update(host=host, port=port))
    serve(Registry({"gpt": Entry(tiny)}), host=host, port=8123)
    assert started == {"host": host, "port": 8123}
    assert ("warning: serving on" in capsys.readouterr().err) is warned


def test_a_port_out_of_range_is_refused():
    from interp.explore.server import check_port

    with pytest.raises(ValueError, match="--port 70000 is out of range"):
        check_port(70000)
