"""Generation speed with a key/value cache on SmolLM2-135M: our ``generate`` against Hugging Face's.

Same weights (the zoo's conversion of the same GGUF file), same prompts, greedy, the same
number of new tokens (no early stop at EOS), in the same process; one warm-up run each, then
``repeats`` rounds with each contender once a round in a shuffled order. Printed as the best new
tokens per second and as the median over rounds of the paired ratios with a 95% distribution-free
interval (>1 means ours is faster). Hugging Face runs with eager attention (materialised
patterns, as ours) and, for reference, with SDPA (its default, a fused kernel).
Run: ``python benchmarks/bench_generate.py``.

One torch thread by default, for both: a step's matmuls are a few rows tall, and on a shared
two-core machine a two-thread team stalls whenever another process holds a core (8 tokens of
ours took 39 s on two threads against 0.7 s on one while another worker's tests ran).
"""

import argparse
import json

import torch

from interp.timing import interleaved_times, paired_speedup
from models import smollm2, zoo
from models.transformer import generate

PROMPTS = [
    "Explain in a few sentences why the sky is blue.",
    "Write a short poem about the sea.",
    "What is the capital of France?",
    "List three uses of a paperclip, and say which is the most surprising.",
]


def prompt_batch(model, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` chat prompts of different lengths, left-padded, with their attention mask."""
    if not 1 <= batch <= len(PROMPTS):
        raise ValueError(f"batch must lie in [1, {len(PROMPTS)}] (one prompt per row), got {batch}.")
    texts = [model.tokenizer.chat_prompt([{"role": "user", "content": p}]) for p in PROMPTS[:batch]]
    return model.tokenizer.batch(texts, padding_side="left")


def benchmark(new_tokens: int = 64, batches: tuple[int, ...] = (1, 4), repeats: int = 9,
              threads: int | None = 1) -> dict[str, float]:
    if threads is not None:
        torch.set_num_threads(threads)
    ours = zoo.load("smollm2")
    hf = smollm2.load_hf()
    # no stop at EOS, so both generate every token: transformers fills a None in the config passed to
    # generate() from the model's own generation config, so the EOS token is unset there
    hf.generation_config.eos_token_id, hf.generation_config.pad_token_id = None, ours.tokenizer.pad_token_id
    result: dict[str, float] = {}
    for batch in batches:
        # the mask goes to both, also unpadded: with the EOS token unset transformers would otherwise
        # infer one that hides the prompt's pad tokens (SmolLM2 pads with <|im_end|>); ours drops an all-ones mask
        tokens, mask = prompt_batch(ours, batch)

        def run_ours() -> torch.Tensor:
            return generate(ours, tokens, new_tokens, temperature=0, attention_mask=mask, stop_at_eos=False)

        def run_hf() -> torch.Tensor:
            return hf.generate(tokens, attention_mask=mask, max_new_tokens=new_tokens, do_sample=False)

        expected, out = run_hf(), run_ours()  # also the warm-ups
        assert out.shape == expected.shape == (batch, tokens.shape[1] + new_tokens), "both generate every token"
        # equal in the tests; a near-tie flipped by float rounding in a padded batch would show here
        result[f"tokens_equal_batch{batch}"] = float(torch.equal(out, expected))

        def run_hf_sdpa() -> torch.Tensor:
            hf.set_attn_implementation("sdpa")
            try:
                return run_hf()
            finally:
                hf.set_attn_implementation("eager")

        times = interleaved_times({"ours": run_ours, "hf_eager": run_hf, "hf_sdpa": run_hf_sdpa}, repeats)
        for name, seconds in times.items():
            result[f"{name}_batch{batch}"] = batch * new_tokens / min(seconds)
        for peer in ("hf_eager", "hf_sdpa"):
            median, low, high = paired_speedup(times["ours"], times[peer])
            result[f"ratio_ours_over_{peer}_batch{batch}"] = median
            result[f"ratio_ours_over_{peer}_batch{batch}_low"] = low
            result[f"ratio_ours_over_{peer}_batch{batch}_high"] = high
    result["rounds"] = repeats
    result["threads"] = torch.get_num_threads()
    result["new_tokens"] = new_tokens
    return result


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    result = benchmark(args.new_tokens, tuple(args.batches), args.repeats, args.threads or None)
    if args.json:
        print(json.dumps(result, indent=1))
        return result
    print(f"SmolLM2-135M, greedy, {args.new_tokens} new tokens, {args.repeats} rounds, CPU, "
          f"{result['threads']} threads")
    for batch in args.batches:
        print(f"batch {batch} (same tokens as HF: {bool(result[f'tokens_equal_batch{batch}'])}):")
        for name in ("ours", "hf_eager", "hf_sdpa"):
            print(f"  {name:<9} {result[f'{name}_batch{batch}']:>8.1f} new tokens/s (best round)")
        for peer, goal in (("hf_eager", " (goal >= 1)"), ("hf_sdpa", "")):
            key = f"ratio_ours_over_{peer}_batch{batch}"
            print(f"  ours / {peer} = {result[key]:.3f}x [95% {result[key + '_low']:.3f}, "
                  f"{result[key + '_high']:.3f}]{goal}")
    return result


if __name__ == "__main__":
    main()
