"""Hugging Face Llama as the reference for our Llama family (shared by tests; not a test module)."""

import contextlib

import torch
from transformers.models.llama import modeling_llama


@contextlib.contextmanager
def hf_llama_in_model_dtype():
    """Run Hugging Face's Llama without its float32 casts, so a float64 model is float64 throughout.

    ``LlamaRMSNorm`` and ``eager_attention_forward`` compute in float32 whatever the model's
    dtype (a precaution for bfloat16), so a float64 Llama agrees with exact arithmetic only to
    ~1e-6. Inside this context both compute the same formulas in the input's dtype; nothing
    else changes (the rotary angles stay float32, as ours do). In float32 the two are identical.
    """
    norm, attention = modeling_llama.LlamaRMSNorm.forward, modeling_llama.eager_attention_forward

    def rms_norm(self, hidden_states):
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        return self.weight * (hidden_states * torch.rsqrt(variance + self.variance_epsilon))

    def eager(module, query, key, value, attention_mask, scaling, dropout=0.0, **kwargs):
        key = modeling_llama.repeat_kv(key, module.num_key_value_groups)
        value = modeling_llama.repeat_kv(value, module.num_key_value_groups)
        weights = torch.matmul(query, key.transpose(2, 3)) * scaling
        if attention_mask is not None:
            weights = weights + attention_mask
        weights = weights.softmax(dim=-1)
        return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights

    modeling_llama.LlamaRMSNorm.forward, modeling_llama.eager_attention_forward = rms_norm, eager
    try:
        yield
    finally:
        modeling_llama.LlamaRMSNorm.forward, modeling_llama.eager_attention_forward = norm, attention


def hf_llama_activations(hf, tokens):
    """Logits and, by our hook names, the residual stream, patterns and gated-MLP activations of a
    ``LlamaForCausalLM``, captured with torch hooks."""
    acts, handles = {}, []
    for L, layer in enumerate(hf.model.layers):
        def pre(module, args, kwargs, L=L):
            acts[f"blocks.{L}.hook_resid_pre"] = (args[0] if args else kwargs["hidden_states"]).detach()

        def post(module, args, kwargs, output, L=L):
            acts[f"blocks.{L}.hook_resid_post"] = (output[0] if isinstance(output, tuple) else output).detach()

        def mlp_post(module, args, L=L):
            acts[f"blocks.{L}.mlp.hook_post"] = args[0].detach()

        handles += [layer.register_forward_pre_hook(pre, with_kwargs=True),
                    layer.register_forward_hook(post, with_kwargs=True),
                    layer.mlp.down_proj.register_forward_pre_hook(mlp_post)]
    try:
        with torch.no_grad():
            out = hf(tokens, output_attentions=True)
    finally:
        for handle in handles:
            handle.remove()
    for L, pattern in enumerate(out.attentions):
        acts[f"blocks.{L}.attn.hook_pattern"] = pattern.detach()
    return out.logits.detach(), acts
