"""Question 1: LeNet logged at every epoch, over the report's seeds."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .. import data
from ..errors import check_number
from ..params import param
from .common import Question, read, whole
from .text import captioned, pct, plural, pm, reported, say, training_set

METRICS = ["train_loss", "train_acc", "test_loss", "test_acc", "seconds"]


@dataclass(frozen=True)
class Section:
    """LeNet logged per epoch, over the seeds: epochs"""

    epochs: int = param(2, "training epochs")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)


def runs(params) -> list:
    """The question's runs: LeNet (Adam 1e-3, batch 64) once per seed. Under the full profile they
    are question 6's assignment-recipe LeNet runs on all the training images: the same configs,
    stored once. They choose nothing, so they train on the whole training set (``whole``)."""
    return [whole(params, "q1", epochs=params.q1.epochs, seed=seed) for seed in params.seeds]


def result(params, store, needed: dict | None = None) -> "Q1Result":
    """The question's result, from its runs in the store."""
    fetched = read(store, runs(params), "q1")
    c = fetched[0].config
    histories = pd.concat([run.history.assign(seed=run.config.seed) for run in fetched], ignore_index=True)
    return Q1Result(histories=histories, lr=c.lr, optimizer=c.optimizer, batch_size=c.batch_size, epochs=c.epochs,
                    parameters=fetched[0].info["parameters"], train_subset=params.train_subset,
                    validation=c.validation, reported=reported("q1", params.dataset))


@dataclass
class Q1Result:
    """LeNet's per-epoch histories, one per seed."""

    histories: pd.DataFrame  # seed, epoch, train_loss, train_acc, test_loss, test_acc, seconds
    lr: float
    optimizer: str
    batch_size: int
    epochs: int
    parameters: int
    train_subset: int | None = None
    validation: int = 0
    reported: float | None = None  # what the assignment printed, where it studied the same dataset

    @property
    def seeds(self) -> list:
        return sorted(self.histories.seed.unique())

    @property
    def history(self) -> pd.DataFrame:
        """The mean over seeds at each epoch."""
        return self.histories.groupby("epoch", as_index=False)[METRICS].mean()

    @property
    def finals(self) -> pd.Series:
        """Each seed's test accuracy after the last epoch."""
        return self.histories[self.histories.epoch == self.histories.epoch.max()].set_index("seed").test_acc

    @property
    def test_acc_std(self) -> float:
        return float(self.finals.std(ddof=1)) if len(self.finals) > 1 else float("nan")

    @property
    def last(self) -> pd.Series:
        return self.history.iloc[-1]

    @property
    def lowest_test_loss(self) -> pd.Series:
        """The epoch whose mean test loss is lowest."""
        return self.history.loc[self.history.test_loss.idxmin()]

    @property
    def overfits(self) -> bool:
        """Whether the mean test loss rose after its lowest epoch: the last epochs fit the training set tighter."""
        return bool(self.last.test_loss > self.lowest_test_loss.test_loss)

    title = "LeNet, logged at every epoch"

    def _runs(self) -> str:
        return plural(len(self.seeds), "seed")

    def protocol(self) -> str:
        return say("q1", "protocol", r=self, training_set=training_set(self.train_subset, self.validation),
                   test_size=data.TEST_SIZE)

    def answer(self) -> str:
        return say("q1", "answer", r=self)

    def caption(self) -> str:
        return say("q1", "caption")

    def alt(self) -> str:
        h = self.history
        return say("q1", "alt", r=self, first=h.iloc[0], epochs=len(h))

    def table(self) -> pd.DataFrame:
        h = self.history
        spread = self.histories.groupby("epoch")[["train_acc", "test_acc"]].std(ddof=1).reindex(h.epoch)
        return captioned(pd.DataFrame({
            "epoch": h.epoch.astype(int),
            "train loss": h.train_loss.map("{:.4f}".format),
            "test loss": h.test_loss.map("{:.4f}".format),
            "train accuracy": [pm(m, s) for m, s in zip(h.train_acc, spread.train_acc)],
            "test accuracy": [pm(m, s) for m, s in zip(h.test_acc, spread.test_acc)],
            "seconds per epoch": h.seconds.map("{:,.1f}".format),
        }), say("q1", "table_caption", r=self))

    def analysis(self) -> str:
        return say("q1", "analysis", r=self, first=self.history.iloc[0], best=self.lowest_test_loss)

    def headlines(self) -> list[tuple]:
        return [(f"LeNet, {plural(self.epochs, 'epoch')} (mean of {self._runs()})", pct(self.last.test_acc),
                 pct(self.reported, 1) if self.reported else "")]

    def summary(self) -> dict:
        return {"test_acc_mean": float(self.last.test_acc), "test_acc_std": self.test_acc_std,
                "test_loss_mean": float(self.last.test_loss), "best_epoch": int(self.lowest_test_loss.epoch),
                "epochs": len(self.history), "seeds": len(self.seeds),
                "train_images": data.train_images(self.train_subset, self.validation)}


QUESTION = Question("q1", Section, runs, result)
