"""Fixtures shared by the instrument tests."""

import pytest

from tests.browser import launched_chromium


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium through Playwright (tests/browser.py); skipped when absent, except in CI."""
    yield from launched_chromium()


@pytest.fixture(scope="module")
def smollm2_and_its_bridge(tmp_path_factory):
    """Our SmolLM2 from the zoo, and TransformerLens's bridge over the Hugging Face model it was converted from."""
    from transformer_lens.model_bridge import TransformerBridge

    from models import smollm2, zoo

    folder = tmp_path_factory.mktemp("smollm2-hf")
    bridge = TransformerBridge.boot_transformers(str(folder), hf_model=smollm2.load_hf(),
                                                 tokenizer=smollm2.load_hf_tokenizer())
    return zoo.load("smollm2"), bridge.eval()
