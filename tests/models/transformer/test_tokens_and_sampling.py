import pytest
import torch

from models.transformer import CharTokenizer, Transformer, WordTokenizer, generate, load_tokenizer
from tests.models.transformer.conftest import small_config

CORPUS = "the cat sat on the mat. the dog sat too!"


def test_char_tokenizer_round_trip(tmp_path):
    tok = CharTokenizer.from_corpus(CORPUS)
    tokens = tok.to_tokens("the mat")
    assert tokens.dtype == torch.long and tokens.shape == (1, 8) and tokens[0, 0] == tok.bos_token_id
    assert tok.to_string(tokens[0]) == "the mat"
    assert tok.to_str_tokens("tax") == ["<bos>", "t", "a", "<unk>"]
    assert tok.to_tokens("at", prepend_bos=False).tolist() == [[tok.index["a"], tok.index["t"]]]
    batch = tok.to_tokens(["a", "the"])
    assert batch.shape == (2, 4) and batch[0, -1] == tok.pad_token_id
    assert tok.to_string(batch) == ["a", "the"]
    tok.save(tmp_path / "tok.json")
    assert load_tokenizer(tmp_path / "tok.json").vocab == tok.vocab


def test_word_tokenizer(tmp_path):
    tok = WordTokenizer.from_corpus(CORPUS.split("."), max_vocab=8)
    assert tok.vocab[:4] == ["<pad>", "<bos>", "<unk>", "the"], "most frequent word should come first"
    assert len(tok) == 8
    assert tok.to_str_tokens("The cat sat") == ["<bos>", "the", "cat", "sat"]
    assert tok.to_string(tok.to_tokens("the zebra sat")[0]) == "the <unk> sat"
    tok.save(tmp_path / "words.json")
    assert WordTokenizer.load(tmp_path / "words.json").vocab == tok.vocab
    with pytest.raises(ValueError, match="CharTokenizer.load|WordTokenizer.load"):
        CharTokenizer.load(tmp_path / "words.json")


def model_with_tokenizer():
    tok = CharTokenizer.from_corpus(CORPUS)
    return Transformer(small_config(d_vocab=tok.d_vocab), tokenizer=tok)


def test_model_delegates_to_tokenizer():
    model = model_with_tokenizer()
    assert torch.equal(model.to_tokens("the"), model.tokenizer.to_tokens("the"))
    assert model.to_str_tokens("at") == ["<bos>", "a", "t"]
    assert model.to_string(model.to_tokens("cat")[0]) == "cat"
    torch.testing.assert_close(model("the cat"), model(model.to_tokens("the cat")))
    assert model("the cat", return_type="loss").ndim == 0
    with pytest.raises(ValueError, match="tokenizer"):
        Transformer(small_config())("text")


def test_greedy_is_argmax_and_deterministic():
    model = model_with_tokenizer()
    prompt = model.to_tokens("the ")
    out = generate(model, prompt, max_new_tokens=3, temperature=0)
    assert out.shape == (1, prompt.shape[1] + 3) and torch.equal(out[:, : prompt.shape[1]], prompt)
    assert out[0, prompt.shape[1]] == model(prompt)[0, -1].argmax(), "temperature 0 must pick the argmax"
    assert torch.equal(out, model.generate(prompt, 3, temperature=0))


def test_sampling_is_reproducible_with_a_seed():
    model = model_with_tokenizer()
    a = model.generate("the", 6, temperature=1.0, seed=5)
    assert isinstance(a, str) and a.startswith("the")
    assert a == model.generate("the", 6, temperature=1.0, seed=5)
    samples = {model.generate("the", 6, temperature=2.0, seed=s) for s in range(6)}
    assert len(samples) > 1, "different seeds should give different samples"


def test_top_k_1_is_greedy():
    model = model_with_tokenizer()
    prompt = model.to_tokens("the")
    assert torch.equal(generate(model, prompt, 4, top_k=1, seed=0), generate(model, prompt, 4, temperature=0))


def test_generation_stops_at_n_ctx():
    model = model_with_tokenizer()  # n_ctx = 12
    prompt = model.to_tokens("the cat")  # 8 tokens with <bos>
    with pytest.warns(UserWarning, match="n_ctx"):
        out = generate(model, prompt, max_new_tokens=10, temperature=0)
    assert out.shape == (1, 12)


@pytest.mark.parametrize("kwargs", [dict(temperature=-1), dict(top_k=0), dict(max_new_tokens=-1)])
def test_bad_sampling_arguments(kwargs):
    model = model_with_tokenizer()
    with pytest.raises(ValueError):
        generate(model, model.to_tokens("a"), **{"max_new_tokens": 2, **kwargs})


def test_to_string_of_a_string_says_what_to_pass():
    from models.transformer import CharTokenizer, Transformer, TransformerConfig

    tokenizer = CharTokenizer.from_corpus("hello world")
    model = Transformer(TransformerConfig(d_model=8, n_layers=1, n_heads=2, d_mlp=16, d_vocab=tokenizer.d_vocab,
                                          n_ctx=16), tokenizer=tokenizer)
    with pytest.raises(ValueError, match="token ids"):
        model.to_string("text")
    assert model.to_string(model.to_tokens("hello")[0]) == "hello"
