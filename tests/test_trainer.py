"""Trainer: learns, is deterministic, every optimizer and recipe option trains."""

import pytest
import torch

from mnistkit import data, trainer
from mnistkit.config import RunConfig
from mnistkit.errors import ConfigError
from mnistkit.trainer import METRICS, VALIDATION, fit

SMALL = RunConfig(subset=6000, epochs=2, device="cpu")


@pytest.mark.slow
def test_short_fit_is_well_above_chance():
    _, history = fit(SMALL, progress=False)
    frame = history.frame()
    assert list(frame.columns) == ["epoch", *METRICS, *VALIDATION, "seconds"]
    assert frame["val_acc"].isna().all()  # no validation split
    assert frame["epoch"].tolist() == [1, 2]
    assert frame["test_acc"].iloc[-1] > 0.9
    assert frame["train_loss"].iloc[1] < frame["train_loss"].iloc[0]


@pytest.mark.slow
def test_same_config_gives_identical_history():
    a = fit(SMALL, progress=False)[1].frame()[list(METRICS)]
    b = fit(SMALL, progress=False)[1].frame()[list(METRICS)]
    assert a.equals(b)
    c = fit(SMALL.replace(seed=1), progress=False)[1].frame()[list(METRICS)]
    assert not a.equals(c)


@pytest.mark.parametrize("changes", [
    dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4),
    dict(optimizer="rmsprop", lr=1e-3),
    dict(optimizer="adamw", lr=2e-3, weight_decay=0.05, schedule="cosine", warmup_epochs=0.5,
         label_smoothing=0.1, augment="shift"),
    dict(model="double_conv_lenet"),
    dict(model="vit", lr=1e-3, batch_size=128),
])
@pytest.mark.slow
def test_every_optimizer_and_option_trains(changes):
    _, history = fit(SMALL.replace(epochs=1, **changes), progress=False)
    assert history.final["test_acc"] > 0.3


def test_cosine_schedule_warms_up_then_decays_to_zero():
    factor = trainer.lr_factor(RunConfig(epochs=4, schedule="cosine", warmup_epochs=1), steps_per_epoch=10)
    values = [factor(s) for s in range(40)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[9:], values[10:]))
    assert values[-1] < 0.01
    assert trainer.lr_factor(RunConfig(), 10)(5) == 1.0


def test_random_shift_moves_digits_and_keeps_background():
    x, _ = data.load("mnist", False)
    x = x[:64]
    shifted = trainer.random_shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    assert not torch.equal(shifted, x)
    # digits sit in the middle 20x20 of the 28x28 frame: a shift of up to 2 pixels keeps nearly all ink
    ink = lambda t: (t + 1).sum(dim=(1, 2, 3))
    kept = torch.isclose(ink(shifted), ink(x), rtol=1e-5)
    assert kept.float().mean() > 0.9


@pytest.mark.slow
def test_predict_returns_one_class_per_image():
    model, _ = fit(SMALL.replace(epochs=1), progress=False)
    x, y = data.load("mnist", False)
    predictions = trainer.predict(model, x[:500])
    assert predictions.shape == (500,) and predictions.dtype == torch.int64
    assert (predictions == y[:500]).float().mean() > 0.8


@pytest.mark.slow
def test_validation_split_is_scored_every_epoch_and_left_out_of_training():
    _, history = fit(SMALL.replace(validation=1000, subset=None, epochs=1, evaluate_every=1), progress=False)
    frame = history.frame()
    assert frame["val_acc"].notna().all() and 0.9 < frame["val_acc"].iloc[-1] <= 1
    held = set(data.validation_indices("mnist", 1000).tolist())
    assert len(held) == 1000
    images, labels = data.train_split("mnist", None, 0, validation=1000)
    assert len(labels) == 59_000
    assert torch.bincount(data.load("mnist", True)[1][list(held)]).tolist() == [100] * 10
    # a subset is drawn from the training part only: no held-out image is in it
    sub, _ = data.train_split("mnist", 500, 3, validation=1000)
    val, _ = data.validation_split("mnist", 1000)
    assert not any(torch.equal(s, v) for s in sub[:50] for v in val)


@pytest.mark.slow
def test_evaluate_every_scores_the_last_epoch_and_keeps_the_numbers():
    every = fit(SMALL.replace(subset=500, epochs=3), progress=False)[1].frame()
    sparse = fit(SMALL.replace(subset=500, epochs=3, evaluate_every=2), progress=False)[1].frame()
    assert sparse["test_acc"].isna().tolist() == [True, False, False]
    assert sparse["test_acc"].iloc[-1] == every["test_acc"].iloc[-1]
    assert sparse["train_loss"].equals(every["train_loss"])


def test_bad_validation_and_subset_beside_it_name_the_parameter():
    with pytest.raises(ConfigError, match="validation"):
        SMALL.replace(validation=15)
    with pytest.raises(ConfigError, match="subset.*4,921 per class"):
        SMALL.replace(validation=5000, subset=54_210)
    with pytest.raises(ConfigError, match="evaluate_every"):
        SMALL.replace(evaluate_every=0)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.9, 1e-4)])
def test_rmsprop_follows_torchs_rule_but_for_the_last_bit_of_a_root(momentum, weight_decay):
    from mnistkit import optim

    g = torch.Generator().manual_seed(1)
    ours = torch.nn.Parameter(torch.randn(1000, generator=g))
    start = ours.detach().clone()
    theirs = torch.nn.Parameter(start.clone())
    a = optim.RMSprop([ours], lr=1e-2, momentum=momentum, weight_decay=weight_decay)
    b = torch.optim.RMSprop([theirs], lr=1e-2, momentum=momentum, weight_decay=weight_decay)
    for _ in range(20):
        grad = torch.randn(1000, generator=g)
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        a.step()
        b.step()
    assert torch.allclose(ours, theirs, rtol=0, atol=1e-6) and (ours - start).abs().mean() > 1e-2
    assert set(a.state[ours]) == ({"step", "square_avg", "momentum_buffer"} if momentum else {"step", "square_avg"})


FASHION = data.DATASETS["fashion_mnist"]


@pytest.mark.slow
@pytest.mark.skipif(FASHION.local() is None and not (data.data_root() / FASHION.folder / "t10k-labels-idx1-ubyte.gz").exists(),
                    reason=f"Fashion-MNIST is not on this machine: {FASHION.get}")
def test_a_fashion_mnist_run_trains_on_its_own_images_and_is_keyed_apart():
    config = SMALL.replace(dataset="fashion_mnist", subset=2000, validation=500)
    assert config.key() != SMALL.replace(validation=500).key() and config.label().startswith("fashion_mnist ")
    model, history = fit(config, progress=False)
    final = history.frame().iloc[-1]
    assert final.test_acc > 0.5 and final.val_acc > 0.5  # ten classes: chance is 0.1
    x, y = data.load("fashion_mnist", False)
    assert (trainer.predict(model, x) == y).float().mean().item() == pytest.approx(final.test_acc, abs=1e-6)
    mnist_x, mnist_y = data.load("mnist", False)
    assert (trainer.predict(model, mnist_x) == mnist_y).float().mean().item() < final.test_acc - 0.2


def _fake_cuda_streams(monkeypatch):
    """CudaGraphStep's streams on a machine without CUDA: steps outside a graph run as they would there."""
    import contextlib

    class Stream:
        def wait_stream(self, other):
            pass

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda stream: contextlib.nullcontext())


def test_cuda_graphs_are_opt_in(monkeypatch):
    _fake_cuda_streams(monkeypatch)
    model = trainer.build_model("lenet")
    optimizer = trainer.make_optimizer(SMALL, model.parameters(), "cpu")  # fused, as on CUDA
    sums = [torch.zeros(()), torch.zeros((), dtype=torch.long)]
    cuda = torch.device("cuda")
    assert not isinstance(trainer.make_step(model, optimizer, SMALL, sums, cuda), trainer.CudaGraphStep)
    step = trainer.make_step(model, optimizer, SMALL.replace(cuda_graph=True), sums, cuda)
    assert isinstance(step, trainer.CudaGraphStep) and step.step_fn is trainer.train_step


def test_a_step_that_cannot_be_captured_trains_eagerly_after_one_warning(monkeypatch):
    """A failed capture leaves the step eager for the rest of the run: the same numbers as eager steps."""
    import copy

    _fake_cuda_streams(monkeypatch)
    attempts = []

    def refuse():
        attempts.append(1)
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "CUDAGraph", refuse)
    config = SMALL.replace(cuda_graph=True)
    torch.manual_seed(0)
    graphed = trainer.build_model("lenet")
    eager = copy.deepcopy(graphed)
    sides = []
    for model in (graphed, eager):
        sides.append((model, trainer.make_optimizer(config, model.parameters(), "cpu"),
                      [torch.zeros(()), torch.zeros((), dtype=torch.long)]))
    step = trainer.CudaGraphStep(*sides[0][:2], config, sides[0][2])
    x, y = data.load("mnist", True)
    with pytest.warns(UserWarning, match=r"CUDA graph capture failed \(RuntimeError: operation not permitted"
                                          r".*\); training eagerly") as caught:
        for xb, yb in data.batches(x[:64 * 8], y[:64 * 8], 64, torch.Generator().manual_seed(0)):
            step(xb, yb)
            trainer.train_step(sides[1][0], sides[1][1], xb, yb, config, sides[1][2])
    assert len(caught) == 1 and len(attempts) == 1 and step.failed and step.graph is None and step.done == 8
    assert all(torch.equal(p, q) for p, q in zip(graphed.parameters(), eager.parameters()))
    assert torch.equal(sides[0][2][1], sides[1][2][1])
    # the next epoch's step of the same run is eager from the start: no second capture, no second warning
    assert not isinstance(trainer.make_step(*sides[0][:2], config, sides[0][2], torch.device("cuda")),
                          trainer.CudaGraphStep)
    other = trainer.make_optimizer(config, eager.parameters(), "cpu")  # another run still tries
    assert isinstance(trainer.make_step(eager, other, config, sides[1][2], torch.device("cuda")), trainer.CudaGraphStep)
