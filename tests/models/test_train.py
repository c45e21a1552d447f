"""The training loop: config checks, schedule shape, exact resume, safe interrupts."""

import dataclasses

import pytest
import safetensors.torch
import torch
from torch import nn

from models import checkpoint as ckpt
from models.schedules import cosine_annealing, learning_rate
from models.train import TrainConfig, latest_checkpoint, train

D_VOCAB = 11


class Bigram(nn.Module):
    """A toy next-token model with dropout, so resuming must restore the RNG too."""

    def __init__(self):
        super().__init__()
        self.W_E = nn.Embedding(D_VOCAB, 16)
        self.drop = nn.Dropout(0.1)
        self.W_U = nn.Linear(16, D_VOCAB)

    def forward(self, tokens):
        return self.W_U(self.drop(self.W_E(tokens)))


def batches(step):
    # Data is a function of the step: token t is followed by (3t + 1) mod d_vocab.
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randint(0, D_VOCAB, (16,), generator=g)
    return x, (3 * x + 1) % D_VOCAB


def loss_fn(model, batch):
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def accuracy(model):
    x = torch.arange(D_VOCAB)
    return {"acc": (model(x).argmax(-1) == (3 * x + 1) % D_VOCAB).float().mean()}


CFG = TrainConfig(steps=20, lr=3e-2, warmup_steps=3, checkpoint_every=5, eval_every=10, seed=3)


def fresh_model():
    torch.manual_seed(0)
    return Bigram()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"steps": 0}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": -1.0}, "weight_decay"),
        ({"betas": (0.9, 1.0)}, "betas"),
        ({"warmup_steps": 21}, "warmup_steps"),
        ({"min_lr_ratio": 1.5}, "min_lr_ratio"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"eval_every": 0}, "eval_every"),
        ({"checkpoint_every": 2.5}, "checkpoint_every"),
        ({"keep_last": 0}, "keep_last"),
        ({"batch_size": 0}, "batch_size"),
    ],
)
def test_bad_configs_are_refused_naming_the_field(change, field):
    with pytest.raises(ValueError, match=rf"{field} must"):
        dataclasses.replace(CFG, **change)


def test_config_survives_json():
    assert TrainConfig(**ckpt.config_dict(CFG)) == CFG


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_the_floor():
    cfg = TrainConfig(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    lrs = [learning_rate(s, cfg) for s in range(cfg.steps)]
    assert lrs[:10] == pytest.approx([(s + 1) / 10 for s in range(10)])
    assert max(lrs) == lrs[9] == 1.0
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # never rises after the peak
    assert lrs[-1] == pytest.approx(0.1)
    assert lrs[9 + 45] == pytest.approx(0.55, abs=0.01)  # half way down: the mean
    to_zero = dataclasses.replace(cfg, min_lr_ratio=0.0)
    assert learning_rate(99, to_zero) == 0.0


def test_training_learns_and_records_history():
    result = train(fresh_model(), batches, loss_fn, CFG, eval_fn=accuracy, progress=False)
    h = result.history
    assert [r["step"] for r in h] == list(range(1, 21))
    assert h[-1]["loss"] < h[0]["loss"]
    assert "acc" in h[9] and "acc" in h[19] and "acc" not in h[10]
    assert {"loss", "lr", "grad_norm"} <= h[0].keys()
    assert result.model.training  # evaluation put the model back in train mode


def test_interrupted_and_resumed_run_ends_bit_identical(tmp_path):
    straight = train(fresh_model(), batches, loss_fn, CFG, eval_fn=accuracy, progress=False)

    def crashing(step):
        if step == 13:
            raise RuntimeError("simulated crash")
        return batches(step)

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(fresh_model(), crashing, loss_fn, CFG, eval_fn=accuracy, checkpoint_dir=tmp_path, progress=False)
    assert latest_checkpoint(tmp_path).name == "step-00000010"

    torch.manual_seed(12345)  # whatever the global RNG is now, resuming restores it
    resumed = train(fresh_model(), batches, loss_fn, CFG, eval_fn=accuracy, checkpoint_dir=tmp_path, progress=False)
    assert resumed.resumed_from == 10
    for (name, a), b in zip(straight.model.named_parameters(), resumed.model.parameters()):
        assert torch.equal(a, b), name
    assert resumed.history == straight.history
    # The final checkpoint is a loadable model folder; only the newest keep_last stay.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000015", "step-00000020"]
    again = ckpt.load_weights(Bigram(), resumed.checkpoint)
    assert torch.equal(again.W_E.weight, straight.model.W_E.weight)


def test_a_finished_run_resumes_as_a_no_op(tmp_path):
    first = train(fresh_model(), batches, loss_fn, CFG, checkpoint_dir=tmp_path, progress=False)
    second = train(fresh_model(), lambda s: 1 / 0, loss_fn, CFG, checkpoint_dir=tmp_path, progress=False)
    assert second.resumed_from == 20 and second.history == first.history
    assert torch.equal(second.model.W_U.weight, first.model.W_U.weight)


def test_iterable_batches_resume_exactly(tmp_path):
    data = [batches(s) for s in range(CFG.steps)]
    straight = train(fresh_model(), data, loss_fn, CFG, progress=False)
    def crashing():
        yield from data[:13]
        raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(fresh_model(), crashing(), loss_fn, CFG, checkpoint_dir=tmp_path, progress=False)
    resumed = train(fresh_model(), data, loss_fn, CFG, checkpoint_dir=tmp_path, progress=False)
    assert resumed.resumed_from == 10
    assert all(torch.equal(a, b) for a, b in zip(straight.model.parameters(), resumed.model.parameters()))


def test_keyboard_interrupt_leaves_the_last_good_checkpoint(tmp_path, capsys):
    def interrupted(step):
        if step == 13:
            raise KeyboardInterrupt
        return batches(step)

    with pytest.raises(KeyboardInterrupt):
        train(fresh_model(), interrupted, loss_fn, CFG, checkpoint_dir=tmp_path, progress=False)
    assert "last checkpoint (step 10)" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step-00000005", "step-00000010"]
    ckpt.load_weights(Bigram(), tmp_path / "step-00000010")


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    real_save = safetensors.torch.save_file
    calls = []

    def save_then_crash(tensors, filename, metadata=None):
        calls.append(filename)
        if len(calls) > 3:  # the second checkpoint's first file (3 files per checkpoint)
            raise OSError("disk full")
        real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        train(fresh_model(), batches, loss_fn, CFG, checkpoint_dir=tmp_path, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["step-00000005"]
    ckpt.load_weights(Bigram(), tmp_path / "step-00000005")


def test_resuming_with_a_different_config_is_refused(tmp_path):
    cfg = dataclasses.replace(CFG, steps=10)
    train(fresh_model(), batches, loss_fn, cfg, checkpoint_dir=tmp_path, progress=False, model_config={"d": 16})
    with pytest.raises(ValueError, match=r"lr: saved 0.03, expected 0.1"):
        train(fresh_model(), batches, loss_fn, dataclasses.replace(cfg, lr=0.1), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"d: saved 16, expected 32"):
        train(fresh_model(), batches, loss_fn, cfg, checkpoint_dir=tmp_path, progress=False, model_config={"d": 32})
    # How often to save does not change the weights, so it may differ.
    train(fresh_model(), batches, loss_fn, dataclasses.replace(cfg, checkpoint_every=2), checkpoint_dir=tmp_path,
          progress=False, model_config={"d": 16})


def test_a_nan_loss_stops_with_a_clear_error():
    with pytest.raises(FloatingPointError, match="lower lr"):
        train(fresh_model(), batches, lambda m, b: loss_fn(m, b) * float("nan"), CFG, progress=False)


def test_two_runs_on_two_threads_end_bit_identical():
    # index backward (the embedding lookup) accumulates in parallel on several threads,
    # in an order that changes from run to run unless deterministic kernels are on
    from models.transformer import Transformer, TransformerConfig

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        runs = []
        for _ in range(2):
            model = Transformer(TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_mlp=64, d_vocab=20, n_ctx=32,
                                                  seed=0))
            cfg = TrainConfig(steps=40, batch_size=64, lr=3e-3, warmup_steps=5, seed=0)

            def batches(step):
                return torch.randint(0, 20, (64, 32), generator=torch.Generator().manual_seed(step))

            train(model, batches, lambda m, tokens: m(tokens, return_type="loss"), cfg, progress=False)
            runs.append({k: v.detach().clone() for k, v in model.state_dict().items()})
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0]), (
        "same seed, different weights: a kernel in the training step is not deterministic")
    assert not torch.are_deterministic_algorithms_enabled(), "train must restore the caller's setting"


@pytest.mark.parametrize("steps", [1, 2, 7, 500])
def test_cosine_annealing_gives_torchs_cosine_annealing_rates_exactly(steps):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.03)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    rates = []
    for _ in range(steps):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert cosine_annealing(0.03, steps) == rates, "should repeat torch's recursion float for float"


def test_hand_gradients_train_as_autograd_does():
    # loss_fn writes each .grad itself (here with torch.autograd.grad) and returns the loss:
    # the loop must then neither zero nor overwrite those gradients.
    def by_hand(model, batch):
        loss = loss_fn(model, batch)
        for p, g in zip(model.parameters(), torch.autograd.grad(loss, list(model.parameters()))):
            p.grad = g
        return loss.detach()

    autograd = train(fresh_model(), batches, loss_fn, CFG, progress=False)
    hand = train(fresh_model(), batches, by_hand, CFG, hand_gradients=True, progress=False)
    for (name, a), b in zip(autograd.model.named_parameters(), hand.model.parameters()):
        assert torch.equal(a, b), f"{name}: hand-written gradients should give the same update as backward()"
    assert hand.history == autograd.history


def test_a_given_optimizer_and_learning_rates_are_used():
    cfg = TrainConfig(steps=5, lr=0.1, grad_clip=None)
    rates = [0.1, 0.05, 0.0, 0.2, 0.01]
    model = fresh_model()
    ours = train(model, batches, loss_fn, cfg, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
                 learning_rates=rates, progress=False)
    reference = fresh_model()
    torch.manual_seed(cfg.seed)  # as train does, for the dropout
    sgd = torch.optim.SGD(reference.parameters(), lr=1.0)
    for step, lr in enumerate(rates):
        sgd.param_groups[0]["lr"] = lr
        sgd.zero_grad()
        loss_fn(reference, batches(step)).backward()
        sgd.step()
    assert [row["lr"] for row in ours.history] == rates
    for (name, a), b in zip(ours.model.named_parameters(), reference.parameters()):
        assert torch.equal(a, b), f"{name}: train should step the optimizer it was given at the given rates"
    with pytest.raises(ValueError, match="one per step"):
        train(fresh_model(), batches, loss_fn, cfg, learning_rates=rates[:4], progress=False)
