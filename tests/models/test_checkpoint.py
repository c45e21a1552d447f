"""Safetensors save/load: round trips, refusals with clear messages, atomic writes."""

import pickle
from dataclasses import dataclass

import pytest
import safetensors.torch
import torch
from torch import nn

from models import checkpoint as ckpt


@dataclass(frozen=True)
class TinyConfig:
    d_vocab: int = 7
    d_model: int = 4


class Tiny(nn.Module):
    """Embedding and unembedding with tied weights, to exercise shared storage."""

    def __init__(self, cfg: TinyConfig):
        super().__init__()
        self.embed = nn.Embedding(cfg.d_vocab, cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, cfg.d_vocab)
        self.unembed.weight = self.embed.weight

    def forward(self, tokens):
        return self.unembed(self.embed(tokens))


def build(c: dict) -> Tiny:
    return Tiny(TinyConfig(**c))


def test_round_trip_keeps_every_tensor_and_the_config(tmp_path):
    torch.manual_seed(0)
    model = Tiny(TinyConfig())
    ckpt.save_model(model, tmp_path, TinyConfig())
    assert ckpt.read_config(tmp_path) == {"d_vocab": 7, "d_model": 4}
    again = ckpt.load_model(tmp_path, build, expected_config=TinyConfig())
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert again.unembed.weight is again.embed.weight  # tying survives loading


def test_a_differing_config_is_refused_naming_the_keys(tmp_path):
    ckpt.save_model(Tiny(TinyConfig()), tmp_path, TinyConfig())
    with pytest.raises(ValueError, match=r"d_model: saved 4, expected 8"):
        ckpt.load_weights(Tiny(TinyConfig(d_model=8)), tmp_path, expected_config=TinyConfig(d_model=8))


def test_a_shape_mismatch_is_refused_naming_the_tensors(tmp_path):
    ckpt.save_model(Tiny(TinyConfig()), tmp_path, TinyConfig())
    with pytest.raises(ValueError, match=r"embed.weight: checkpoint shape \(7, 4\), model shape \(7, 8\)"):
        ckpt.load_weights(Tiny(TinyConfig(d_model=8)), tmp_path)
    with pytest.raises(ValueError, match=r"not in model: unembed.bias"):
        ckpt.load_weights(nn.Module().requires_grad_(), tmp_path)


@pytest.mark.parametrize(
    "write, what",
    [
        (lambda obj, path: torch.save(obj, path), "zip archive"),
        (lambda obj, path: path.write_bytes(pickle.dumps(obj)), "pickle"),
        (lambda obj, path: path.write_text('{"not": "safetensors"}'), "header"),
    ],
)
def test_files_that_are_not_safetensors_are_refused_without_unpickling(tmp_path, monkeypatch, write, what):
    def no_torch_load(*args, **kwargs):
        raise AssertionError("torch.load must never be called")

    monkeypatch.setattr(torch, "load", no_torch_load)
    model = Tiny(TinyConfig())
    write(model.state_dict(), tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match=rf"not a safetensors file \(.*{what}.*never loads pickles"):
        ckpt.load_weights(model, tmp_path)


def test_a_crash_mid_save_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    first = Tiny(TinyConfig())
    ckpt.save_model(first, tmp_path, TinyConfig())
    before = (tmp_path / "model.safetensors").read_bytes()

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:  # half a file, then the crash
            f.write(b"\x00" * 10)
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_model(Tiny(TinyConfig()), tmp_path, TinyConfig())
    assert (tmp_path / "model.safetensors").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]


def test_optimizer_and_rng_state_round_trip(tmp_path):
    model = Tiny(TinyConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, betas=(0.8, 0.9))
    model(torch.arange(7)).sum().backward()
    opt.step()
    ckpt.save_optimizer(opt, tmp_path / "opt.safetensors")
    fresh = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ckpt.load_optimizer(fresh, tmp_path / "opt.safetensors")
    a, b = opt.state_dict(), fresh.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for i, state in a["state"].items():
        for k, v in state.items():
            assert torch.equal(v, b["state"][i][k]), (i, k)

    saved = ckpt.rng_state()
    x = torch.rand(3)
    ckpt.set_rng_state(saved)
    assert torch.equal(torch.rand(3), x)


def test_a_mismatch_in_many_tensors_is_a_short_message(tmp_path):
    wide = nn.Sequential(*[nn.Linear(4, 4) for _ in range(30)])
    ckpt.save_model(wide, tmp_path, {"width": 4})
    with pytest.raises(ValueError) as error:
        ckpt.load_weights(nn.Sequential(*[nn.Linear(8, 8) for _ in range(30)]), tmp_path)
    message = str(error.value)
    assert len(message.splitlines()) <= ckpt.MAX_PROBLEMS_SHOWN + 3, f"a 60-tensor mismatch printed:\n{message}"
    assert "60 tensor(s) differ" in message and "... and 56 more" in message, message
