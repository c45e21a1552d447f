import pytest
import torch

from interp.sae import SparseAutoencoder, max_cosine_similarity, recovery_score, train_sae


def test_recovery_score_known_answers():
    features = torch.eye(3)
    assert recovery_score(torch.cat([features, torch.ones(1, 3)]), features) == pytest.approx(1.0)
    # A dictionary with one direction at 45 degrees to both of two features scores cos 45.
    score = recovery_score(torch.tensor([[1.0, 1.0]]), torch.eye(2))
    assert score == pytest.approx(2**-0.5)
    torch.testing.assert_close(max_cosine_similarity(2 * torch.eye(2), torch.eye(2)), torch.ones(2))


def test_topk_keeps_exactly_k_latents():
    sae = SparseAutoencoder(4, 10, k=3)
    latents = sae.encode(torch.randn(5, 4, generator=torch.Generator().manual_seed(0)))
    assert ((latents > 0).sum(-1) <= 3).all()
    assert latents.shape == (5, 10)


@pytest.mark.parametrize("penalty", ["l1", "topk"])
def test_sae_recovers_planted_features(penalty):
    generator = torch.Generator().manual_seed(0)
    true = torch.nn.functional.normalize(torch.randn(6, 3, generator=generator), dim=1)  # 6 features in 3 dims
    codes = torch.rand(2048, 6, generator=generator) * (torch.rand(2048, 6, generator=generator) < 0.1)
    sae = train_sae(codes @ true, d_sae=12, penalty=penalty, k=1, steps=800, batch_size=256)
    assert recovery_score(sae.W_dec, true) >= 0.9
    random = torch.randn(12, 3, generator=generator)
    assert recovery_score(random, true) < recovery_score(sae.W_dec, true), "should beat a random dictionary"


def test_bad_input_is_refused():
    with pytest.raises(ValueError):
        train_sae(torch.randn(10, 3), 6, penalty="l2")
    with pytest.raises(ValueError):
        SparseAutoencoder(3, 4, k=5)
    with pytest.raises(ValueError):
        max_cosine_similarity(torch.randn(4, 3), torch.randn(2, 5))


@pytest.mark.parametrize("penalty", ["l1", "topk"])
def test_training_through_the_loop_equals_the_plain_loop(penalty):
    # The weights train_sae gave before it ran through models.train.train, bit for bit.
    activations = torch.rand(500, 3, generator=torch.Generator().manual_seed(1))
    ours = train_sae(activations, 8, penalty=penalty, k=2, steps=50, batch_size=64, seed=2)
    torch.manual_seed(2)
    sae = SparseAutoencoder(3, 8, k=2 if penalty == "topk" else None)
    with torch.no_grad():
        sae.b_dec.copy_(activations.median(dim=0).values)
    optimizer = torch.optim.Adam(sae.parameters(), lr=3e-3)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=50)
    generator = torch.Generator().manual_seed(2)
    for _ in range(50):
        x = activations[torch.randint(0, 500, (64,), generator=generator)]
        reconstruction, latents = sae(x)
        loss = ((reconstruction - x) ** 2).sum(-1).mean()
        if penalty == "l1":
            loss = loss + 3e-3 * (latents * sae.W_dec.norm(dim=1)).sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
    for (name, a), b in zip(ours.named_parameters(), sae.parameters()):
        assert torch.equal(a, b), f"{name}: the loop changed the sparse autoencoder's weights"
