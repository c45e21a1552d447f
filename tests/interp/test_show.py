"""interp.show: each view's data against the direct computation, the HTML's self-containment,
and the views rendered by a real browser (Debian's chromium through Playwright) with every
network request refused."""

import json
import os
import re
import time

import numpy as np
import pandas as pd
import pytest
import torch

from interp import lens, show
from interp.patching import activation_patching, causal_trace
from interp.show import View
from models.transformer import Transformer, TransformerConfig
from models.transformer.tokenizer import CharTokenizer

PROMPT = "hello <world> & o"
BREAKOUT = "</script><b>&"


@pytest.fixture(scope="module")
def model():
    tokenizer = CharTokenizer.from_corpus("hello world <>&")
    # a large init range, so patterns and lens probabilities are far from uniform
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_mlp=32, d_vocab=tokenizer.d_vocab, n_ctx=24,
                            init_range=0.4)
    return Transformer(cfg, tokenizer=tokenizer).eval()


def close(a, b, rtol=1e-6):
    return abs(a - b) <= rtol * max(abs(a), abs(b), 1e-30)


def embedded_json(fragment: str) -> str:
    """The data argument of the call at the end of a view's script."""
    match = re.search(r"window\.interpViews\.\w+\(el, (.*)\); \}\)\(\);\n</script>", fragment, re.S)
    assert match, "the view's call was not found"
    return match.group(1)


# ----------------------------------------------------------------------------- data


def test_attention_holds_run_with_cache_patterns(model):
    tokens = model.to_tokens(PROMPT)
    _, cache = model.run_with_cache(tokens)
    view = show.attention(model, PROMPT)
    assert view.kind == "attention"
    assert view.data["tokens"] == model.to_str_tokens(PROMPT)
    assert view.data["layer_labels"] == ["0", "1"]
    for layer in range(2):
        expected = cache[f"blocks.{layer}.attn.hook_pattern"][0]
        torch.testing.assert_close(torch.tensor(view.data["patterns"][layer]), expected, rtol=1e-6, atol=0)
    one = show.attention(model, tokens[0], layers=[1])  # token ids [pos], one layer
    assert one.data["layer_labels"] == ["1"]
    torch.testing.assert_close(torch.tensor(one.data["patterns"][0]), cache["blocks.1.attn.hook_pattern"][0],
                               rtol=1e-6, atol=0)


def test_token_values_are_the_neuron_or_the_projection(model):
    tokens = model.to_tokens(PROMPT)
    _, cache = model.run_with_cache(tokens)
    post = cache["blocks.0.mlp.hook_post"][0]
    neuron = show.token_values(model, PROMPT, "blocks.0.mlp.hook_post", index=5)
    assert neuron.data["tokens"] == model.to_str_tokens(PROMPT)
    torch.testing.assert_close(torch.tensor(neuron.data["values"]), post[:, 5], rtol=1e-6, atol=0)
    direction = torch.randn(16, generator=torch.Generator().manual_seed(0))
    resid = cache["blocks.1.hook_resid_post"][0]
    projected = show.token_values(model, tokens, "blocks.1.hook_resid_post", direction=direction)
    torch.testing.assert_close(torch.tensor(projected.data["values"]), resid @ direction, rtol=1e-6, atol=1e-7)


def test_logit_lens_holds_the_lens(model):
    tokens = model.to_tokens(PROMPT)
    probs = lens.logit_lens(model, tokens)
    top = lens.lens_top(probs, k=3)
    view = show.logit_lens(model, PROMPT, k=3)
    assert view.data["layer_labels"] == lens.lens_labels(2)
    torch.testing.assert_close(torch.tensor(view.data["probs"]), top.values[:, :, 0], rtol=1e-6, atol=0)
    vocab = model.tokenizer.vocab
    assert view.data["top_tokens"] == [[vocab[i] for i in row] for row in top.indices[:, :, 0].tolist()]
    assert view.data["top_k_tokens"][2][4] == [vocab[i] for i in top.indices[2, 4].tolist()]
    torch.testing.assert_close(torch.tensor(view.data["top_k_probs"]), top.values, rtol=1e-6, atol=0)
    assert "top_k_tokens" not in show.logit_lens(model, PROMPT).data


def test_ids_the_tokenizer_lacks_and_a_model_without_tokenizer():
    tokenizer = CharTokenizer.from_corpus("ab")  # 5 strings for 30 ids
    cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_mlp=32, d_vocab=30, n_ctx=16, init_range=0.4)
    padded = Transformer(cfg, tokenizer=tokenizer)
    top = lens.lens_top(lens.logit_lens(padded, padded.to_tokens("abba")), k=1).indices[:, :, 0]
    view = show.logit_lens(padded, "abba")
    assert view.data["top_tokens"] == [[tokenizer.vocab[i] if i < 5 else f"[{i}]" for i in row] for row in top.tolist()]
    bare = Transformer(cfg)
    assert show.attention(bare, torch.tensor([3, 17, 29])).data["tokens"] == ["3", "17", "29"]
    with pytest.raises(ValueError, match="no tokenizer"):
        show.attention(bare, "abba")


def test_views_of_a_transformer_lens_bridge():
    from tests.interp._bridges import tiny_bridge

    bridge = tiny_bridge()
    tokens = torch.tensor([[1, 5, 7, 9, 3]])
    _, cache = bridge.run_with_cache(tokens)
    view = show.attention(bridge, tokens)
    assert view.data["tokens"] == ["1", "5", "7", "9", "3"]  # no tokenizer: the ids
    for layer in range(2):
        torch.testing.assert_close(torch.tensor(view.data["patterns"][layer]),
                                   cache[f"blocks.{layer}.attn.hook_pattern"][0], rtol=1e-6, atol=0)
    neuron = show.token_values(bridge, tokens, "blocks.1.mlp.hook_post", index=7)
    torch.testing.assert_close(torch.tensor(neuron.data["values"]), cache["blocks.1.mlp.hook_post"][0, :, 7],
                               rtol=1e-6, atol=0)
    probs = lens.logit_lens(bridge, tokens)
    torch.testing.assert_close(torch.tensor(show.logit_lens(bridge, tokens).data["probs"]),
                               probs.max(-1).values, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="blocks.0.mlp.hook_post"):
        show.token_values(bridge, tokens, "blocks.0.mlp.hook_pots", index=3)


def test_patching_and_tracing_views_hold_the_instruments_results(model):
    clean = model.to_tokens("hello world")
    corrupted = model.to_tokens("hello <orld")

    def metric(logits):
        return logits[:, -1, 7].mean() - logits[:, -1, 8].mean()

    effect = activation_patching(model, clean, corrupted, metric, "resid_pre")
    names = model.to_str_tokens(clean)
    view = show.patching(effect, names, title="resid_pre")
    assert view.data["rows"] == ["layer 0", "layer 1"] and view.data["cols"] == names
    torch.testing.assert_close(torch.tensor(view.data["values"]), effect.float(), rtol=1e-6, atol=0)

    df = causal_trace(model, clean, subject=(1, 3), noise_std=0.5, answer=7, samples=2, window=1)
    mlp = show.tracing(df, kind="mlp", tokens=names)
    expected = df[df.kind == "mlp"].pivot(index="layer", columns="pos", values="indirect_effect")
    np.testing.assert_array_equal(np.array(mlp.data["values"]), expected.to_numpy())
    assert mlp.data["rows"] == ["0", "1"] and mlp.data["cols"] == names
    plain = show.tracing(df[df.kind == "resid"])  # one kind: no kind= needed; columns are positions
    assert plain.data["cols"] == [str(p) for p in range(clean.shape[1])]
    with pytest.raises(ValueError, match="pick one with kind="):
        show.tracing(df)
    with pytest.raises(ValueError, match="several rows"):
        show.tracing(pd.concat([df, df]), kind="mlp")


def test_heatmap_from_arrays_and_nonfinite_values_become_null():
    values = np.array([[1.0, -2.5, np.nan], [np.inf, 0.0, 3.0]])
    view = show.heatmap(values, ["a", "b"], ["x", "y", "z"], title="t", value_name="v")
    assert view.data["values"] == [[1.0, -2.5, None], [None, 0.0, 3.0]]
    json.loads(view.to_json(), parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}"))
    half = show.heatmap(torch.tensor([[0.1, 0.2]], dtype=torch.float16))  # default labels: indices
    assert half.data["rows"] == ["0"] and half.data["cols"] == ["0", "1"]
    assert close(half.data["values"][0][0], float(torch.tensor(0.1, dtype=torch.float16)))
    assert show.heatmap(torch.tensor([[0.1]])).data["values"] == [[0.1]]  # float32 written short, as 0.1


@pytest.mark.parametrize("call, match", [
    (lambda m: show.token_values(m, PROMPT, "blocks.0.mlp.hook_post"), "exactly one"),
    (lambda m: show.token_values(m, PROMPT, "blocks.0.mlp.hook_post", index=1, direction=torch.ones(32)),
     "exactly one"),
    (lambda m: show.token_values(m, PROMPT, "blocks.0.mlp.hook_pots", index=1), "blocks.0.mlp.hook_post"),
    (lambda m: show.token_values(m, PROMPT, "blocks.0.attn.hook_pattern", index=1), "one vector per position"),
    (lambda m: show.token_values(m, PROMPT, "blocks.0.mlp.hook_post", index=32), "use 0 to 31"),
    (lambda m: show.token_values(m, PROMPT, "blocks.0.mlp.hook_post", direction=torch.ones(16)), r"\[32\]"),
    (lambda m: show.attention(m, PROMPT, layers=[2]), "use 0 to 1"),
    (lambda m: show.attention(m, torch.ones(2, 3, dtype=torch.long)), "one prompt"),
    (lambda m: show.logit_lens(m, PROMPT, k=0), "positive integer"),
    (lambda m: show.heatmap(torch.zeros(2, 3), ["a"], ["x", "y", "z"]), "one label per row"),
    (lambda m: show.heatmap(torch.zeros(2), ["a", "b"], ["x"]), "2-D"),
    (lambda m: show.heatmap(torch.zeros(1, 1), ["a"], ["x"], colour="red"), "unknown heatmap labels"),
    (lambda m: show.patching(torch.zeros(2, 3), ["a", "b"]), "3 positions"),
    (lambda m: View("attention", {"tokens": ["a", "b"], "patterns": [[[[1.0]]]]}), "query_pos x key_pos"),
    (lambda m: View("lens", {"tokens": ["a"], "layer_labels": ["e"], "top_tokens": [["a"]], "probs": [[]]}),
     "1 entries"),
    (lambda m: View("pie", {}), "unknown view kind"),
])
def test_bad_input_says_what_to_change(model, call, match):
    with pytest.raises(ValueError, match=match):
        call(model)


# ----------------------------------------------------------------------------- HTML


def views(model):
    return {
        "attention": show.attention(model, PROMPT),
        "tokens": show.token_values(model, PROMPT, "blocks.0.mlp.hook_post", index=3),
        "lens": show.logit_lens(model, PROMPT, k=3),
        "heatmap": show.heatmap(torch.randn(5, 7, generator=torch.Generator().manual_seed(1)),
                                [f"layer {i}" for i in range(5)], list("abcdefg"), title="random", value_name="z"),
    }


def test_html_is_self_contained(model, tmp_path):
    for kind, view in views(model).items():
        for text in (view._repr_html_(), view.to_html(title="x")):
            assert not re.search(r"https?://|//cdn|\burl\(|@import", text, re.I), kind
            for src in re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]*)""", text, re.I):
                pytest.fail(f"{kind} view loads {src!r}")
        path = view.save(tmp_path / f"{kind}.html")
        assert path.read_text(encoding="utf-8") .startswith("<!doctype html>")
    assert "</script" not in show.views_js().lower()
    assert "</style" not in show.views_css().lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention.html", "heatmap.html", "lens.html", "tokens.html"]


def test_a_token_cannot_break_out_of_the_script():
    tokens = ["<bos>", BREAKOUT, "'\"", "\u2028", " a  "]
    view = View("tokens", {"tokens": tokens, "values": [0.0, 1.0, -1.0, 0.5, float("nan")]})
    fragment = view._repr_html_()
    assert fragment.count("</script>") == 1 and "<b>" not in fragment
    assert json.loads(embedded_json(fragment)) == {"tokens": tokens, "values": [0.0, 1.0, -1.0, 0.5, None]}


def test_save_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "view.html"
    old = show.heatmap(np.ones((1, 1)))
    old.save(path)
    before = path.read_text()
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        show.heatmap(np.zeros((2, 2))).save(path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["view.html"]


# ----------------------------------------------------------------------------- in a browser


# the browser fixture: tests/interp/conftest.py (Debian's chromium, launched as tests/browser.py says)


class Page:
    """A page that refuses (and counts) every request not to file://, and records errors."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1100, "height": 800})
        self.network, self.errors = [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.network.append(route.request.url)
            route.abort()

    def open(self, path):
        self.page.goto(path.resolve().as_uri())
        return self.page

    def cells(self):
        return self.page.eval_on_selector_all(
            ".iv-cell", "els => els.map(e => [+e.dataset.row, +e.dataset.col, e.dataset.value])")

    def hover_check(self, selector, value):
        """Hover ``selector``; the tooltip shows ``value`` to 4 significant digits and data-value is ``value``."""
        self.page.hover(selector)
        tip = self.page.locator(".iv-tooltip")
        assert tip.is_visible()
        text = tip.inner_text()
        assert format(value, ".4g") in text, text
        assert close(float(self.page.get_attribute(selector, "data-value")), value)
        assert self.page.get_attribute(selector, "title") == text
        return text

    def close(self):
        assert self.network == [], f"requests left the page: {self.network}"
        assert self.errors == [], f"errors in the page: {self.errors}"
        self.context.close()


@pytest.fixture
def page(browser):
    opened = Page(browser)
    yield opened
    opened.close()


def check_grid(cells, values):
    """Every cell present once, its data-value the view's number."""
    assert len(cells) == sum(len(row) for row in values)
    for row, col, text in cells:
        expected = values[row][col]
        assert (text == "null") if expected is None else close(float(text), expected), (row, col, text)


def test_attention_in_a_browser(model, page, tmp_path):
    view = show.attention(model, PROMPT)
    n_pos = len(view.data["tokens"])
    p = page.open(view.save(tmp_path / "attention.html"))
    check_grid(page.cells(), view.data["patterns"][0][0])
    assert len(page.cells()) == n_pos * n_pos
    assert p.locator(".iv-rowlabel").all_text_contents() == [show_visible(t) for t in view.data["tokens"]]
    text = page.hover_check(".iv-cell[data-row='5'][data-col='2']", view.data["patterns"][0][0][5][2])
    assert text.startswith("layer 0, head 0, query 5 'o', key 2 'e': ")
    p.screenshot(path=tmp_path / "attention-0-0.png", full_page=True)
    p.select_option(".iv-layer", "1")
    p.select_option(".iv-head", "1")
    check_grid(page.cells(), view.data["patterns"][1][1])
    text = page.hover_check(".iv-cell[data-row='9'][data-col='9']", view.data["patterns"][1][1][9][9])
    assert text.startswith("layer 1, head 1, query 9 ")
    assert view.data["patterns"][1][1] != view.data["patterns"][0][0]
    p.screenshot(path=tmp_path / "attention-1-1.png", full_page=True)


def test_tokens_in_a_browser(model, page, tmp_path):
    view = show.token_values(model, PROMPT, "blocks.0.mlp.hook_post", index=3)
    p = page.open(view.save(tmp_path / "tokens.html"))
    spans = p.locator(".iv-token")
    assert spans.count() == len(view.data["tokens"])
    assert [float(v) for v in p.eval_on_selector_all(".iv-token", "els => els.map(e => e.dataset.value)")] == \
        pytest.approx(view.data["values"], rel=1e-6)
    i = int(np.argmax(np.abs(view.data["values"])))
    text = page.hover_check(f".iv-token >> nth={i}", view.data["values"][i])
    assert text.startswith(f"blocks.0.mlp.hook_post[3], pos {i} ")
    # the strongest token is the most saturated: blue or red, not white
    assert p.locator(f".iv-token >> nth={i}").evaluate("e => getComputedStyle(e).backgroundColor") != "rgb(255, 255, 255)"
    p.screenshot(path=tmp_path / "tokens.png", full_page=True)


def test_hostile_tokens_render_as_text(page, tmp_path):
    tokens = ["<bos>", BREAKOUT, " a", "\n", ""]
    view = View("tokens", {"tokens": tokens, "values": [0.0, 1.0, -1.0, float("inf"), 0.25], "label": "<i>x</i>"})
    p = page.open(view.save(tmp_path / "hostile.html"))
    assert p.locator(".iv-token").all_text_contents() == ["<bos>", BREAKOUT, "\u00b7a", "\u21b5", "\u2205"]
    assert p.locator(".iv-root b, .iv-root i").count() == 0
    assert p.locator(".iv-token >> nth=3").get_attribute("data-value") == "null"
    assert p.locator(".iv-title").inner_text() == "<i>x</i>"
    page.hover_check(".iv-token >> nth=1", 1.0)
    assert p.title() == "<i>x</i>"


def test_lens_in_a_browser(model, page, tmp_path):
    view = show.logit_lens(model, PROMPT, k=3)
    n_rows, n_pos = len(view.data["layer_labels"]), len(view.data["tokens"])
    p = page.open(view.save(tmp_path / "lens.html"))
    cells = page.cells()
    assert len(cells) == (model.cfg.n_layers + 1) * n_pos == n_rows * n_pos
    check_grid(cells, view.data["probs"])
    cell = ".iv-cell[data-row='2'][data-col='4']"
    assert p.inner_text(cell) == show_visible(view.data["top_tokens"][2][4])
    text = page.hover_check(cell, view.data["probs"][2][4])
    assert text.startswith(f"layer 1, pos 4 'l' \u2192 '{view.data['top_tokens'][2][4]}': ")
    assert "; top 3: " in text
    p.screenshot(path=tmp_path / "lens.png", full_page=True)


def test_heatmap_in_a_browser(model, page, tmp_path):
    view = views(model)["heatmap"]
    view.data["values"][1][3] = None  # a missing value: grey, "null"
    view = View("heatmap", view.data)
    p = page.open(view.save(tmp_path / "heatmap.html"))
    cells = page.cells()
    assert len(cells) == 5 * 7
    check_grid(cells, view.data["values"])
    text = page.hover_check(".iv-cell[data-row='2'][data-col='6']", view.data["values"][2][6])
    assert text == f"layer 2, g: z {format(view.data['values'][2][6], '.4g')}"
    finite = [v for row in view.data["values"] for v in row if v is not None]
    assert p.inner_text(".iv-legend-min") == format(-max(map(abs, finite)), ".4g")  # diverging: symmetric
    assert p.inner_text(".iv-legend-range") == f"(values {min(finite):.4g} to {max(finite):.4g})"
    p.screenshot(path=tmp_path / "heatmap.png", full_page=True)
    positive = show.heatmap(np.array([[1.0, 2.0], [3.0, 4.0]]))
    page.open(positive.save(tmp_path / "positive.html"))
    assert (p.inner_text(".iv-legend-min"), p.inner_text(".iv-legend-max")) == ("1", "4")  # sequential: min..max
    assert p.locator(".iv-legend-range").count() == 0


def test_tracing_view_in_a_browser(model, page, tmp_path):
    tokens = model.to_tokens("hello world")
    df = causal_trace(model, tokens, subject=(1, 3), noise_std=0.5, answer=7, samples=2, window=1)
    view = show.tracing(df[df.pos != 4], kind="resid", tokens=model.to_str_tokens(tokens))  # a hole at pos 4
    p = page.open(view.save(tmp_path / "tracing.html"))
    check_grid(page.cells(), view.data["values"])
    assert p.locator(".iv-cell.iv-null").count() == model.cfg.n_layers
    p.screenshot(path=tmp_path / "tracing.png", full_page=True)


def test_views_twice_in_one_page_and_python_formatting(model, page, tmp_path):
    first, second = show.heatmap(np.eye(2)), show.attention(model, PROMPT, layers=[1])
    html = first.to_html().replace("</body>", second._repr_html_() + first._repr_html_() + "</body>")
    (tmp_path / "twice.html").write_text(html)
    p = page.open(tmp_path / "twice.html")
    assert p.locator(".iv-root").count() == 3
    n_pos = len(second.data["tokens"])
    assert p.locator(".iv-cell").count() == 4 + n_pos * n_pos + 4
    numbers = [0.0, -0.0, 1.0, 0.5, 0.12345, -0.12345, 1234.5, 12345.0, 99999.0, 0.00012345, 1.5e-5, 1e-10,
               -3.2e22, 0.1 + 0.2, 1 / 3, 9.9995, 0.00099995, 123456789.0, 5e-324, 1.0625, 1.1875, -12345.0, 9999.5,
               0.00012345, 2.0 ** -20, 1e16, 0.5 ** 1074 * 3]
    assert p.evaluate("xs => xs.map(interpViews.format)", numbers) == [format(x, ".4g") for x in numbers]


def test_a_smollm2_sized_attention_view_stays_fast(page, tmp_path):
    n_layers, n_heads, n_pos = 30, 9, 64
    patterns = torch.rand(n_layers, n_heads, n_pos, n_pos, generator=torch.Generator().manual_seed(0)).tril()
    patterns = patterns / patterns.sum(-1, keepdim=True)
    view = View("attention", {"tokens": [f" t{i}" for i in range(n_pos)], "patterns": patterns})
    path = view.save(tmp_path / "big.html")
    assert path.stat().st_size < 16e6
    start = time.perf_counter()
    p = page.open(path)
    assert p.locator(".iv-cell").count() == n_pos * n_pos
    loaded = time.perf_counter() - start
    start = time.perf_counter()
    p.select_option(".iv-layer", "29")
    p.select_option(".iv-head", "8")
    switched = time.perf_counter() - start
    assert p.get_attribute(".iv-cell[data-row='63'][data-col='0']", "data-value") == \
        str(view.data["patterns"][29][8][63][0])
    assert loaded < 10 and switched < 2, (loaded, switched)
    p.screenshot(path=tmp_path / "big.png", full_page=True)


def show_visible(token: str) -> str:
    """What views.js draws for a token label (see its header comment)."""
    if token == "":
        return "\u2205"
    token = token.replace("\n", "\u21b5").replace("\t", "\u21e5")
    lead = len(token) - len(token.lstrip(" "))
    trail = len(token) - len(token.rstrip(" ")) if token.strip(" ") else 0
    return "\u00b7" * lead + token[lead:len(token) - trail] + "\u00b7" * trail


def test_heatmap_scale_is_passed_on_and_checked():
    from interp import show

    view = show.heatmap(torch.tensor([[-0.01, 0.5], [0.2, 0.9]]), scale="sequential")
    assert view.data["scale"] == "sequential"
    with pytest.raises(ValueError, match="scale must be 'diverging' or 'sequential'"):
        show.heatmap(torch.zeros(2, 2), scale="rainbow")
