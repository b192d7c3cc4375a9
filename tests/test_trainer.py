"""Trainer: learns, is deterministic, every optimizer and recipe option trains."""

import pytest
import torch

from mnistkit import data, trainer
from mnistkit.config import RunConfig
from mnistkit.trainer import METRICS, fit

SMALL = RunConfig(subset=6000, epochs=2, device="cpu")


def test_short_fit_is_well_above_chance():
    _, history = fit(SMALL, progress=False)
    frame = history.frame()
    assert list(frame.columns) == ["epoch", *METRICS, "seconds"]
    assert frame["epoch"].tolist() == [1, 2]
    assert frame["test_acc"].iloc[-1] > 0.9
    assert frame["train_loss"].iloc[1] < frame["train_loss"].iloc[0]


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
    x, _ = data.load(False)
    x = x[:64]
    shifted = trainer.random_shift(x, torch.Generator().manual_seed(0))
    assert shifted.shape == x.shape
    assert not torch.equal(shifted, x)
    # digits sit in the middle 20x20 of the 28x28 frame: a shift of up to 2 pixels keeps nearly all ink
    ink = lambda t: (t + 1).sum(dim=(1, 2, 3))
    kept = torch.isclose(ink(shifted), ink(x), rtol=1e-5)
    assert kept.float().mean() > 0.9


def test_predict_returns_one_class_per_image():
    model, _ = fit(SMALL.replace(epochs=1), progress=False)
    x, y = data.load(False)
    predictions = trainer.predict(model, x[:500])
    assert predictions.shape == (500,) and predictions.dtype == torch.int64
    assert (predictions == y[:500]).float().mean() > 0.8
