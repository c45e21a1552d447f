"""The explorer end to end in Debian's chromium (driven by Playwright): the page served by uvicorn, a model
chosen, a prompt typed, the logit lens and a patching sweep drawn with one cell per (layer, position), each
hovered value equal to the JSON API's, no console errors, screenshots under the test's folder."""

import json
import socket
import threading
import time
import urllib.request

import pytest

from interp.explore import Entry, Limits, Registry, create_app
from tests.interp.test_explore import tiny

@pytest.fixture(scope="module")
def server():
    import uvicorn

    models = {"gpt": tiny("LN"), "llama": tiny("RMS", seed=1)}
    app = create_app(Registry({name: Entry(lambda m=m: m) for name, m in models.items()}), Limits(max_tokens=24))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        assert time.time() < deadline, "uvicorn did not start in 30 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", models
    server.should_exit = True
    thread.join(timeout=10)


def api(base: str, path: str, body: dict) -> dict:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


@pytest.fixture
def page(browser, server):
    base, _ = server
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems, outside = [], []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(base) else None)
    page.problems = problems  # a test that provokes an error on purpose takes its own message off
    page.goto(base + "/")
    page.wait_for_selector("#model option", state="attached")
    yield page
    assert problems == [], f"the browser console shows errors: {problems}"
    assert outside == [], f"the page fetched from outside the server: {outside}"
    page.close()


def hovered_value(page, selector: str, cell) -> str:
    cell.hover()
    tooltip = page.locator(f"{selector} .iv-tooltip")
    tooltip.wait_for(state="visible")
    return tooltip.text_content()


def check_hover(page, selector: str, row: int, col: int, expected: float) -> None:
    cell = page.locator(f'{selector} .iv-cell[data-row="{row}"][data-col="{col}"]')
    assert float(cell.get_attribute("data-value")) == expected, "the cell holds another value than the API's"
    shown = hovered_value(page, selector, cell)
    assert f"{expected:.4g}" in shown or f"{expected:.3e}" in shown or str(float(f"{expected:.4g}")) in shown, (
        f"hovering shows {shown!r}, not the API's {expected}")


@pytest.mark.parametrize("name", ["gpt", "llama"])
def test_prompt_lens_and_patching_in_a_real_browser(page, server, tmp_path, name):
    base, models = server
    model = models[name]
    page.select_option("#model", name)
    prompt = "the cat sat"
    page.fill("#prompt", prompt)
    page.click("#run")
    n_pos, n_layers = len(model.to_str_tokens(prompt)), model.cfg.n_layers
    page.wait_for_function(f"document.querySelectorAll('#lens .iv-cell').length === {(n_layers + 1) * n_pos}")
    expected = api(base, "/api/prompt", {"model": name, "prompt": prompt, "k": 5})
    assert page.locator("#tokens button").count() == n_pos
    assert page.locator("#attention .iv-cell").count() == n_pos * n_pos
    check_hover(page, "#lens", 2, 4, expected["lens"]["probs"][2][4])
    check_hover(page, "#attention", 5, 3, expected["attention"]["patterns"][0][0][5][3])
    page.locator("#tokens button").nth(3).click()
    assert page.locator("#topk tr").count() == 1 + 5
    page.screenshot(path=str(tmp_path / f"prompt-{name}.png"), full_page=True)

    page.fill("#clean", "the cat")
    page.fill("#corrupted", "the dog")
    page.select_option("#activation", "resid_pre")
    page.click("#patch-run")
    n_patch = len(model.to_str_tokens("the cat"))
    page.wait_for_function(f"document.querySelectorAll('#patch .iv-cell').length === {n_layers * n_patch}")
    patched = api(base, "/api/patch", {"model": name, "clean": "the cat", "corrupted": "the dog",
                                       "activation": "resid_pre"})
    for layer in range(n_layers):
        for pos in range(n_patch):
            value = patched["values"][layer][pos]
            cell = page.locator(f'#patch .iv-cell[data-row="{layer}"][data-col="{pos}"]')
            assert float(cell.get_attribute("data-value")) == value
    check_hover(page, "#patch", 1, n_patch - 1, patched["values"][1][n_patch - 1])
    page.screenshot(path=str(tmp_path / f"patch-{name}.png"), full_page=True)
    assert page.locator("#error").is_hidden()


def test_neurons_tracing_and_an_error_in_a_real_browser(page, server, tmp_path):
    base, models = server
    page.select_option("#model", "gpt")
    page.fill("#prompt", "the cat sat")
    page.click("#run")
    page.wait_for_selector("#lens .iv-cell")
    page.click("#neurons-run")
    page.wait_for_selector("#neurons tr td")
    rows = page.locator("#neurons tr").count() - 1
    n_pos = len(models["gpt"].to_str_tokens("the cat sat"))
    expected = api(base, "/api/neurons", {"model": "gpt", "prompt": "the cat sat", "position": n_pos - 1, "k": 10})
    assert rows == len(expected["neurons"]) == 10
    first = page.locator("#neurons tr").nth(1).locator("td")
    assert int(first.nth(0).text_content()) == expected["neurons"][0]["layer"]
    assert int(first.nth(1).text_content()) == expected["neurons"][0]["neuron"]

    page.fill("#trace-subject", "cat")
    page.fill("#trace-samples", "2")
    page.click("#trace-run")
    page.wait_for_function(f"document.querySelectorAll('#trace .iv-cell').length === {3 * n_pos}")
    traced = api(base, "/api/trace", {"model": "gpt", "prompt": "the cat sat", "subject": "cat", "kind": "mlp",
                                      "samples": 2})
    check_hover(page, "#trace", 2, 7, traced["values"][2][7])
    page.screenshot(path=str(tmp_path / "trace.png"), full_page=True)

    page.fill("#trace-subject", "dog")
    page.click("#trace-run")
    page.wait_for_selector("#error:not([hidden])")
    assert "'dog' does not occur" in page.locator("#error").text_content()
    page.screenshot(path=str(tmp_path / "error.png"), full_page=True)
    provoked = [p for p in page.problems if "status of 422" in p]
    assert len(provoked) == 1, page.problems  # the browser logs the refused request itself
    page.problems.remove(provoked[0])
