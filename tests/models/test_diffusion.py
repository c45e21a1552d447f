"""DDPM: schedules and add_noise against the paper's closed forms, samplers against oracle
denoisers with known answers, guidance against its formula, hooks, errors."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from models.diffusion import (
    DDPM, Denoiser, DiffusionConfig, check_guidance, cosine_beta_schedule, extract, linear_beta_schedule, train_ddpm,
)

TINY = dict(height=4, width=4, d_cond=3, d_model=16, d_mlp=32, n_layers=2, d_time=8, n_steps=50)


def test_linear_schedule_is_ho_et_al_at_1000_steps():
    betas = linear_beta_schedule(1000)
    assert float(betas[0]) == pytest.approx(1e-4) and float(betas[-1]) == pytest.approx(0.02)


def test_cosine_schedule_matches_nichol_dhariwal_alpha_bar():
    T, s = 100, 0.008
    f = lambda t: math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2  # noqa: E731
    alpha_bar = np.cumprod(1 - cosine_beta_schedule(T).numpy())
    expected = np.array([f(t) / f(0) for t in range(1, T + 1)])
    # betas are clipped at 0.999, which only touches the very last step
    np.testing.assert_allclose(alpha_bar[:-1], expected[:-1], rtol=1e-10)


def test_add_noise_is_exactly_the_closed_form():
    ddpm = DDPM(DiffusionConfig(**TINY))
    generator = torch.Generator().manual_seed(0)
    x0 = torch.rand(32, 1, 4, 4, generator=generator, dtype=torch.float64) * 2 - 1
    eps = torch.randn(32, 1, 4, 4, generator=generator, dtype=torch.float64)
    t = torch.randint(0, 50, (32,), generator=generator)
    alpha_bar, running = [], 1.0
    for beta in ddpm.betas.tolist():  # the textbook product, left to right
        running *= 1.0 - beta
        alpha_bar.append(running)
    alpha_bar = np.array(alpha_bar)[t.numpy()][:, None, None, None]
    closed = np.sqrt(alpha_bar) * x0.numpy() + np.sqrt(1.0 - alpha_bar) * eps.numpy()
    np.testing.assert_array_equal(ddpm.add_noise(x0, t, eps).numpy(), closed)


def test_extract_broadcasts_per_example():
    a = torch.tensor([10.0, 20.0, 30.0])
    out = extract(a, torch.tensor([2, 0]), (2, 1, 4, 4))
    assert out.shape == (2, 1, 1, 1) and out.flatten().tolist() == [30.0, 10.0]


def test_posterior_mean_equals_eq_11_mean():
    """coef1 x0 + coef2 x_t (eq. 7) equals 1/sqrt(alpha_t) (x_t - beta_t/sqrt(1-alpha_bar_t) eps) (eq. 11)."""
    ddpm = DDPM(DiffusionConfig(**{**TINY, "schedule": "linear"}))
    x0, eps = torch.randn(50, 1, 4, 4, dtype=torch.float64), torch.randn(50, 1, 4, 4, dtype=torch.float64)
    t = torch.arange(1, 50)
    x0, eps = x0[1:], eps[1:]
    x_t = ddpm.add_noise(x0, t, eps)
    shape = x_t.shape
    betas, alpha_bar = extract(ddpm.betas, t, shape), extract(ddpm.alphas_cumprod, t, shape)
    eq11 = (x_t - betas / (1 - alpha_bar).sqrt() * eps) / (1 - betas).sqrt()
    eq7 = extract(ddpm.posterior_mean_coef1, t, shape) * x0 + extract(ddpm.posterior_mean_coef2, t, shape) * x_t
    torch.testing.assert_close(eq7, eq11, rtol=1e-10, atol=1e-10)


class GaussianOracle(nn.Module):
    """The exact E[eps | x_t] when the data are N(mu, s^2 I): a known-answer denoiser."""

    def __init__(self, ddpm_alpha_bar: torch.Tensor, mu: float, s: float):
        super().__init__()
        self.alpha_bar, self.mu, self.s = ddpm_alpha_bar.float(), mu, s

    def forward(self, x_t, t, cond):
        ab = extract(self.alpha_bar, t, x_t.shape)
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * self.mu) / (ab * self.s**2 + 1 - ab)


@pytest.fixture(scope="module")
def gaussian_samples():
    cfg = DiffusionConfig(**{**TINY, "n_steps": 100})
    ddpm = DDPM(cfg)
    ddpm.denoiser = GaussianOracle(ddpm.alphas_cumprod, mu=0.3, s=0.2)
    cond = torch.zeros(2000, 3)
    return {k: ddpm.sample(cond, sampler=k, seed=1, clip_denoised=False) for k in ("ddpm", "ddpm_no_noise", "ddim")}


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_samplers_with_exact_noise_recover_the_data_distribution(gaussian_samples, sampler):
    x = gaussian_samples[sampler]
    assert float(x.mean()) == pytest.approx(0.3, abs=0.01)
    assert float(x.std()) == pytest.approx(0.2, rel=0.1), f"{sampler} should reproduce the data's spread"


def test_sampling_without_noise_collapses_toward_the_mean(gaussian_samples):
    """The seed's claim, with the exact denoiser: no fresh noise -> samples shrink onto the mean."""
    x = gaussian_samples["ddpm_no_noise"]
    assert float(x.mean()) == pytest.approx(0.3, abs=0.01)
    assert float(x.std()) < 0.25 * float(gaussian_samples["ddpm"].std())


class PointOracle(nn.Module):
    """The exact noise when every training image is the same image ``x_star``."""

    def __init__(self, alpha_bar, x_star):
        super().__init__()
        self.alpha_bar, self.x_star = alpha_bar.float(), x_star

    def forward(self, x_t, t, cond):
        ab = extract(self.alpha_bar, t, x_t.shape)
        return (x_t - ab.sqrt() * self.x_star) / (1 - ab).sqrt()


@pytest.mark.parametrize("sampler", ["ddpm", "ddpm_no_noise", "ddim"])
def test_every_sampler_lands_on_a_single_point_dataset(sampler):
    ddpm = DDPM(DiffusionConfig(**TINY))
    x_star = torch.linspace(-0.9, 0.9, 16).reshape(1, 1, 4, 4)
    ddpm.denoiser = PointOracle(ddpm.alphas_cumprod, x_star)
    out = ddpm.sample(torch.zeros(5, 3), sampler=sampler, seed=0)
    torch.testing.assert_close(out, x_star.expand(5, -1, -1, -1), atol=1e-4, rtol=0)


def test_guidance_is_cond_plus_alpha_times_difference():
    ddpm = DDPM(DiffusionConfig(**TINY))
    with torch.no_grad():
        for p in ddpm.parameters():
            p.add_(torch.randn_like(p) * 0.1)  # W_U starts at zero; make the outputs non-trivial
    x, t, cond = torch.randn(6, 1, 4, 4), torch.randint(0, 50, (6,)), torch.eye(3)[[0, 1, 2, 0, 1, 2]]
    eps_c, eps_u = ddpm.denoiser(x, t, cond), ddpm.denoiser(x, t, torch.zeros_like(cond))
    torch.testing.assert_close(ddpm.predict_noise(x, t, cond, 3.5), eps_c + 3.5 * (eps_c - eps_u))
    torch.testing.assert_close(ddpm.predict_noise(x, t, cond, 0), eps_c)


@pytest.mark.parametrize("bad", ["2", None, True, float("nan"), [1.0]])
def test_guidance_that_is_not_a_number_is_a_clear_error(bad):
    with pytest.raises(ValueError, match="guidance scale must be a finite number"):
        check_guidance(bad)
    with pytest.raises(ValueError, match="guidance"):
        DDPM(DiffusionConfig(**TINY)).sample(torch.zeros(1, 3), guidance=bad)


def test_wrong_image_size_and_condition_width_are_clear_errors():
    ddpm = DDPM(DiffusionConfig(**TINY))
    with pytest.raises(ValueError, match=r"expected images of shape \[batch 1 4 4\]"):
        ddpm.add_noise(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), torch.zeros(2, 1, 8, 8))
    with pytest.raises(ValueError, match="expected images"):
        ddpm.denoiser(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.long), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="condition"):
        ddpm.denoiser(torch.zeros(2, 1, 4, 4), torch.zeros(2, dtype=torch.long), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="sampler"):
        ddpm.sample(torch.zeros(1, 3), sampler="euler")
    with pytest.raises(ValueError, match="d_time"):
        DiffusionConfig(d_time=7)


def test_hooks_have_stable_names_and_an_identity_hook_changes_nothing():
    model = Denoiser(DiffusionConfig(**TINY))
    x, t, cond = torch.randn(3, 1, 4, 4), torch.tensor([0, 10, 49]), torch.eye(3)
    out, cache = model.run_with_cache(x, t, cond)
    assert list(cache.keys()) == [
        "hook_embed", "hook_time_embed", "hook_cond_embed",
        "blocks.0.hook_resid_pre", "blocks.0.ln1.hook_scale", "blocks.0.ln1.hook_normalized", "blocks.0.mlp.hook_pre",
        "blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out", "blocks.0.hook_resid_post",
        "blocks.1.hook_resid_pre", "blocks.1.ln1.hook_scale", "blocks.1.ln1.hook_normalized", "blocks.1.mlp.hook_pre",
        "blocks.1.mlp.hook_post", "blocks.1.hook_mlp_out", "blocks.1.hook_resid_post",
        "ln_final.hook_scale", "ln_final.hook_normalized", "hook_noise_pred",
    ]
    assert cache["blocks.0.mlp.hook_post"].shape == (3, 32)
    same = model.run_with_hooks(x, t, cond, fwd_hooks=[("blocks.1.hook_resid_post", lambda act, hook: act)])
    torch.testing.assert_close(same, out, rtol=0, atol=0)
    assert not any(hp._forward_hooks for hp in model.hook_dict.values()), "hooks must be removed afterwards"


def test_condition_dropout_zeroes_the_condition_at_its_rate():
    ddpm = DDPM(DiffusionConfig(**{**TINY, "p_uncond": 0.5}))
    seen = []
    ddpm.denoiser.hook_cond_embed.add_hook(lambda act, hook: seen.append(act.detach()))
    ddpm.loss(torch.zeros(4000, 1, 4, 4), torch.eye(3)[torch.arange(4000) % 3], torch.Generator().manual_seed(0))
    ddpm.denoiser.reset_hooks()
    dropped = (seen[0] == ddpm.denoiser.b_cond).all(-1).float().mean()
    assert float(dropped) == pytest.approx(0.5, abs=0.03)


def test_training_is_seeded_and_reduces_the_loss():
    images = (torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0)) > 0.5).float() * 2 - 1
    cond = torch.eye(3)[torch.arange(64) % 3]
    runs = []
    for _ in range(2):
        ddpm = DDPM(DiffusionConfig(**TINY))
        runs.append((train_ddpm(ddpm, images, cond, steps=30, batch_size=16, lr=3e-3, warmup=5, seed=4), ddpm))
    (loss_a, model_a), (loss_b, model_b) = runs
    assert loss_a["loss"].tolist() == loss_b["loss"].tolist(), "same seed must give the same run"
    for (name, p), q in zip(model_a.named_parameters(), model_b.parameters()):
        assert torch.equal(p, q), name
    assert loss_a["loss"].tail(5).mean() < 0.8 * loss_a["loss"].head(5).mean()
