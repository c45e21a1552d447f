"""The explorer's response times, through a real uvicorn server on loopback.

For a 20-token prompt (tokens, top-k, every attention pattern and the logit lens: ``POST /api/prompt``)
on the ``facts`` subject (its context holds 19 tokens: 19 there) and on SmolLM2: the median over 20 requests (goal for SmolLM2 on two cores:
under 1 s), beside the same computation called directly in Python (the ratio is what HTTP and JSON
cost). And a ``resid_pre`` patching heatmap for a 12-token prompt pair on SmolLM2 (goal: under 5 s).

    python benchmarks/bench_explore.py [--repeats 20] [--quick-facts]
"""

import argparse
import json
import socket
import statistics
import threading
import time
import urllib.request

import torch

from interp.explore import Entry, Limits, Registry, create_app
from interp.explore import queries
from models import zoo

SMOLLM2_PROMPT = "The Eiffel Tower is in the city of Paris, and the Colosseum is in the city"  # 20 tokens
CLEAN = "The official capital of the country of France is the city of"  # 12 tokens each
CORRUPTED = "The official capital of the country of Italy is the city of"


def facts_prompt(model, n_tokens: int = 20) -> str:
    """A prompt of ``n_tokens`` words the subject knows (at most its context, 19 tokens)."""
    n_tokens = min(n_tokens, model.cfg.n_ctx)
    people = model.corpus.people
    words = []
    for person in people:
        words += f"question : which sport does {person.name} play ? answer :".split()
        if len(words) >= n_tokens:
            break
    return " ".join(words[: n_tokens - 1])  # the tokenizer prepends <bos>


def start(app):
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, f"http://127.0.0.1:{port}"


def post(base: str, path: str, body: dict) -> tuple[float, dict]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    started = time.perf_counter()
    with urllib.request.urlopen(request) as response:
        data = json.loads(response.read())
    return time.perf_counter() - started, data


def timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--quick-facts", action="store_true", help="the quick facts subject (the full one trains "
                                                                   "for about 11 minutes on first use)")
    args = parser.parse_args()
    models = {"facts": zoo.load("facts", quick=args.quick_facts), "smollm2": zoo.load("smollm2")}
    registry = Registry({name: Entry(lambda m=m: m) for name, m in models.items()})
    limits = Limits()
    server, base = start(create_app(registry, limits))
    print(f"torch threads {torch.get_num_threads()}; median over {args.repeats} requests, after one warm-up")
    prompts = {"facts": facts_prompt(models["facts"]), "smollm2": SMOLLM2_PROMPT}
    for name, prompt in prompts.items():
        n = models[name].to_tokens(prompt).shape[1]
        body = {"model": name, "prompt": prompt, "k": 10}
        post(base, "/api/prompt", body)
        served = [post(base, "/api/prompt", body)[0] for _ in range(args.repeats)]
        subject = registry.get(name)
        direct = timed(lambda: queries.prompt_view(subject, prompt, 10, limits), args.repeats)
        size = len(json.dumps(post(base, "/api/prompt", body)[1]))
        print(f"{name:8s} {n} tokens: /api/prompt median {statistics.median(served):.3f} s "
              f"(min {min(served):.3f}, max {max(served):.3f}); direct call {statistics.median(direct):.3f} s; "
              f"server/direct {statistics.median(served) / statistics.median(direct):.2f}x; response {size / 1e6:.2f} MB")
    body = {"model": "smollm2", "clean": CLEAN, "corrupted": CORRUPTED, "activation": "resid_pre"}
    n = models["smollm2"].to_tokens(CLEAN).shape[1]
    first, _ = post(base, "/api/patch", body)
    patch = [post(base, "/api/patch", body)[0] for _ in range(max(3, args.repeats // 4))]
    print(f"smollm2  resid_pre patching, {n}-token pair (30 x {n} sites): first request {first:.2f} s "
          f"(runs the shortcut checks), then median {statistics.median(patch):.2f} s over {len(patch)}")
    server.should_exit = True


if __name__ == "__main__":
    main()
