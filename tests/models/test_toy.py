import pytest
import torch

from models.toy import ToyConfig, FeatureSampler, ToyModel, loss_and_grads, evaluate_loss, generate_batch, toy_loss, train_toy


def test_forward_matches_the_paper_formula_per_instance():
    torch.manual_seed(0)
    model = ToyModel(ToyConfig(n_features=5, n_hidden=2, n_instances=3))
    x = torch.rand(4, 3, 5)
    out = model(x)
    for k in range(3):
        W, b = model.W[k], model.b[k]  # [hidden features], [features]
        torch.testing.assert_close(out[:, k], torch.relu(x[:, k] @ W.T @ W + b))
    linear = ToyModel(ToyConfig(5, 2, 3, relu=False))
    torch.testing.assert_close(linear(x)[:, 0], x[:, 0] @ linear.W[0].T @ linear.W[0] + linear.b[0])


def test_hooks_and_cache():
    model = ToyModel(ToyConfig(6, 2, 4))
    _, cache = model.run_with_cache(torch.rand(8, 4, 6))
    assert list(cache.keys()) == ["hook_hidden", "hook_out"]
    assert cache["hook_hidden"].shape == (8, 4, 2)


def test_batch_sparsity_and_range():
    probability = torch.tensor([[1.0] * 3, [0.1] * 3])
    x = generate_batch(probability, 20_000, seed=0)
    assert x.shape == (20_000, 2, 3) and x.min() >= 0 and x.max() <= 1
    assert (x[:, 0] > 0).float().mean() == pytest.approx(1.0, abs=1e-3)
    assert (x[:, 1] > 0).float().mean() == pytest.approx(0.1, abs=0.01)
    present = x[:, 1][x[:, 1] > 0]  # uniform on (0, 1] given present: mean 1/2, variance 1/12
    assert present.mean() == pytest.approx(0.5, abs=0.02) and present.var() == pytest.approx(1 / 12, abs=0.01)
    assert x[:, 0].mean() == pytest.approx(0.5, abs=0.01)


def test_five_in_two_dense_keeps_two_sparse_keeps_all():
    # Paper, "Demonstrating Superposition": with no sparsity the ReLU model behaves like PCA
    # (the two most important features, orthogonal, the rest dropped); at S = 0.99 it
    # stores all five in superposition. One instance each, trained together.
    model = train_toy(5, 2, [1.0, 0.01], importance=0.9 ** torch.arange(5.0), n_instances=2, steps=1200, lr=3e-2)
    norms = model.W.detach().norm(dim=1)
    assert (norms[0, :2] > 0.9).all() and (norms[0, 2:] < 0.2).all(), norms
    assert (norms[1] > 0.5).all(), norms
    assert evaluate_loss(model).shape == (2,)


def test_same_seed_same_weights():
    a = train_toy(4, 2, 0.3, steps=20, seed=5)
    b = train_toy(4, 2, 0.3, steps=20, seed=5)
    torch.testing.assert_close(a.W, b.W)


@pytest.mark.parametrize("probability", [0.0, -0.1, 1.5])
def test_sparsity_outside_range_is_refused(probability):
    with pytest.raises(ValueError, match="sparsity"):
        train_toy(3, 2, probability, steps=1)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError):
        ToyConfig(0, 2)
    with pytest.raises(ValueError):
        train_toy(3, 2, [0.5, 0.5], n_instances=3, steps=1)


@pytest.mark.parametrize("relu", [True, False])
def test_hand_written_gradient_matches_autograd(relu):
    torch.manual_seed(0)
    model = ToyModel(ToyConfig(7, 3, 4, relu=relu))
    with torch.no_grad():
        model.b.normal_()
    x = FeatureSampler(torch.rand(4, 7) * 0.9 + 0.05, seed=0).draw(64)  # [instances features batch]
    importance = torch.rand(4, 7)
    batch_first = x.permute(2, 0, 1)
    loss = toy_loss(model(batch_first), batch_first, importance).sum()
    loss.backward()
    ours, grad_W, grad_b = loss_and_grads(model.W.detach(), model.b.detach(), x, importance, relu)
    torch.testing.assert_close(ours, loss.detach())
    torch.testing.assert_close(grad_W, model.W.grad)
    torch.testing.assert_close(grad_b, model.b.grad)


@pytest.mark.parametrize("relu", [True, False])
def test_training_through_the_loop_equals_the_plain_loop(relu):
    # The weights train_toy gave before it ran through models.train.train, bit for bit: the
    # superposition analysis's figures are compared across runs.
    kwargs = dict(n_instances=3, steps=60, seed=4, relu=relu, batch_size=256, lr=3e-2)
    probability = torch.tensor([[1.0], [0.3], [0.05]]).expand(3, 5)
    importance = torch.rand(3, 5, generator=torch.Generator().manual_seed(0))
    ours = train_toy(5, 2, probability, importance, **kwargs)
    torch.manual_seed(4)
    model = ToyModel(ToyConfig(5, 2, 3, relu))
    sampler = FeatureSampler(probability.clone(), 4)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-2, weight_decay=0.0, fused=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=60)
    for _ in range(60):
        _, model.W.grad, model.b.grad = loss_and_grads(
            model.W.detach(), model.b.detach(), sampler.draw(256), importance, relu)
        optimizer.step()
        scheduler.step()
    assert torch.equal(ours.W, model.W) and torch.equal(ours.b, model.b), "the loop changed the toy models' weights"


def test_the_zoo_subject_is_train_toy_bit_for_bit(tmp_path, monkeypatch):
    import torch

    from models import zoo
    from models.toy import evaluate_loss, train_toy

    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    options = dict(n_features=5, n_hidden=2, feature_probability=[[1.0], [0.3], [0.05]],
                   importance=[[0.9 ** i for i in range(5)]], n_instances=3, steps=60, batch_size=128, lr=3e-2)
    direct = train_toy(**options, seed=7)
    trained = zoo.load("toy_model", seed=7, **options)  # trained on first use
    cached = zoo.load("toy_model", seed=7, **options)   # read back
    for model in (trained, cached):
        assert torch.equal(model.W, direct.W) and torch.equal(model.b, direct.b)
        assert torch.equal(model.feature_probability, direct.feature_probability)
        assert torch.equal(evaluate_loss(model), evaluate_loss(direct))
    assert not torch.equal(zoo.load("toy_model", seed=8, **options).W, direct.W), "the seed is part of the key"
