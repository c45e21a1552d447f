"""The explorer on the real models: SmolLM2 and MiniLM through the JSON API equal our instruments run directly."""

import pytest
import torch
from fastapi.testclient import TestClient

from interp.explore import Entry, Registry, create_app
from interp.lens import logit_lens
from interp.patching import activation_patching

pytestmark = pytest.mark.slow

PROMPT = "The capital of France is the city of"


@pytest.fixture(scope="module")
def smollm2():
    from models import zoo

    return zoo.load("smollm2")


@pytest.fixture(scope="module")
def client(smollm2):
    return TestClient(create_app(Registry({"smollm2": Entry(lambda: smollm2)})))


def test_prompt_view_on_smollm2_answers_paris_and_equals_the_lens(client, smollm2):
    response = client.post("/api/prompt", json={"model": "smollm2", "prompt": PROMPT, "k": 5})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["top_k"][-1][0]["token"] == "ĠParis" or data["top_k"][-1][0]["token"].strip() == "Paris"
    tokens = smollm2.to_tokens(PROMPT)
    lens = logit_lens(smollm2, tokens)
    assert torch.allclose(torch.tensor(data["lens"]["probs"], dtype=torch.float64), lens.max(-1).values.double(),
                          atol=1e-6)
    patterns = torch.tensor(data["attention"]["patterns"], dtype=torch.float64)
    assert patterns.shape == (30, 9, tokens.shape[1], tokens.shape[1])


def test_patching_on_smollm2_equals_activation_patching(client, smollm2):
    body = {"model": "smollm2", "clean": PROMPT, "corrupted": "The capital of Italy is the city of",
            "activation": "resid_pre"}
    response = client.post("/api/patch", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    a, w = data["answer"]["id"], data["wrong"]["id"]
    assert data["answer"]["token"].strip("Ġ ") == "Paris" and data["wrong"]["token"].strip("Ġ ") == "Rome"
    expected = activation_patching(smollm2, smollm2.to_tokens(body["clean"]), smollm2.to_tokens(body["corrupted"]),
                                   lambda logits: (logits[:, -1, a] - logits[:, -1, w]).mean(), "resid_pre")
    torch.testing.assert_close(torch.tensor(data["values"], dtype=torch.float64), expected.double(),
                               rtol=1e-5, atol=1e-4)


def test_minilm_serves_attention_and_neuron_activations():
    """MiniLM (TransformerLens's bridge over a BERT encoder) through the same API: patterns and activations
    equal the bridge's cache; the next-token panels say why they are empty."""
    from models.pretrained import load_minilm

    model = load_minilm()
    client = TestClient(create_app(Registry({"minilm": Entry(lambda: model, causal=False)})))
    prompt = "the mole dug a hole"
    data = client.post("/api/prompt", json={"model": "minilm", "prompt": prompt}).json()
    assert data["tokens"] == ["[CLS]", "the", "mole", "dug", "a", "hole", "[SEP]"]
    assert data["lens"] is None and "no next-token head" in data["unavailable"]["lens"]
    _, cache = model.run_with_cache(model.to_tokens(prompt))
    patterns = torch.tensor(data["attention"]["patterns"], dtype=torch.float64)
    expected = torch.stack([cache[f"blocks.{L}.attn.hook_pattern"][0] for L in range(6)]).double()
    assert patterns.shape == (6, 12, 7, 7)
    assert torch.allclose(patterns, expected, atol=5e-7)
    neurons = client.post("/api/neurons", json={"model": "minilm", "prompt": prompt, "position": 2,
                                                "rank_by": "activation", "k": 3}).json()["neurons"]
    acts = torch.stack([cache[f"blocks.{L}.mlp.hook_post"][0, 2] for L in range(6)]).flatten()
    assert [n["activation"] for n in neurons] == pytest.approx(acts.topk(3).values.tolist(), rel=1e-5)
    refused = client.post("/api/patch", json={"model": "minilm", "clean": "a cat", "corrupted": "a dog"})
    assert refused.status_code == 422 and "encoder" in refused.json()["error"]


def test_the_builtin_models_and_the_facts_subjects_example():
    """`interp explore`'s registry: the three models listed; the facts subject's example prompts run in
    every panel (prompt, neurons, patching, tracing)."""
    from analyses.explore_command import builtin_registry

    client = TestClient(create_app(builtin_registry(quick=True)))
    listed = client.get("/api/models").json()["models"]
    assert [m["name"] for m in listed] == ["smollm2", "facts", "minilm"]
    assert [m["causal"] for m in listed] == [True, True, False]
    from models import zoo

    zoo.load("facts", quick=True)  # trained by the facts tests, or here on first use (quick: about a minute)
    example = next(m for m in client.get("/api/models").json()["models"] if m["name"] == "facts")
    assert example["ready"] is True
    prompt = client.post("/api/prompt", json={"model": "facts", "prompt": "question : which sport does"})
    assert prompt.status_code == 200, prompt.text
    info = next(m for m in client.get("/api/models").json()["models"] if m["name"] == "facts")["example"]
    assert client.post("/api/neurons", json={"model": "facts", "prompt": info["prompt"]}).status_code == 200
    patched = client.post("/api/patch", json={"model": "facts", "clean": info["clean"], "corrupted": info["corrupted"]})
    assert patched.status_code == 200, patched.text
    traced = client.post("/api/trace", json={"model": "facts", "prompt": info["prompt"], "subject": info["trace-subject"],
                                             "samples": 2})
    assert traced.status_code == 200, traced.text
    assert traced.json()["subject"] == [6, 8]  # <bos> question : which sport does | first last
