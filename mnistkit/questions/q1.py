"""Question 1: one LeNet run, logged at every epoch."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..params import Params
from ..store import Store
from .common import base, read
from .text import ASSIGNMENT, OPTIMIZER_NAMES, pct, plural, training_set


def runs(params: Params) -> list:
    """The question's one run."""
    return [base(params, "q1", epochs=params.q1.epochs, seed=params.q1.seed)]


def result(params: Params, store: Store) -> "Q1Result":
    """The question's result, from its run in the store."""
    run = read(store, runs(params), "q1")[0]
    c = run.config
    return Q1Result(history=run.history, lr=c.lr, optimizer=c.optimizer, batch_size=c.batch_size,
                    epochs=c.epochs, seed=c.seed, parameters=run.info["parameters"],
                    train_subset=params.train_subset, validation=params.validation)


@dataclass
class Q1Result:
    """One LeNet run's per-epoch history."""

    history: pd.DataFrame  # epoch, train_loss, train_acc, test_loss, test_acc, seconds
    lr: float
    optimizer: str
    batch_size: int
    epochs: int
    seed: int
    parameters: int
    train_subset: int | None = None
    validation: int = 0

    @property
    def last(self) -> pd.Series:
        return self.history.iloc[-1]

    @property
    def lowest_test_loss(self) -> pd.Series:
        """The epoch whose test loss is lowest."""
        return self.history.loc[self.history.test_loss.idxmin()]

    @property
    def overfits(self) -> bool:
        """Whether the test loss rose after its lowest epoch: the last epochs fit the training set tighter."""
        return bool(self.last.test_loss > self.lowest_test_loss.test_loss)

    def protocol(self) -> str:
        return f"""## 1. LeNet, logged at every epoch

**Protocol.** LeNet-5 (conv 1→6 5×5, max-pool, conv 6→16 5×5, max-pool, 256→120→84→10, ReLU;
{self.parameters:,} parameters), {OPTIMIZER_NAMES[self.optimizer]} lr {self.lr:g}, batch {self.batch_size},
{plural(self.epochs, 'epoch')}, seed {self.seed}, on {training_set(self.train_subset, self.validation)} training images normalized to
[-1, 1]. After every epoch the model is evaluated on the 10,000 test images; losses are mean
cross-entropy per image. The train loss and accuracy are running means over the epoch's batches,
taken while the network still learns, so the first epoch's train loss sits well above its test
loss, which is measured after the epoch."""

    def alt(self) -> str:
        h = self.history
        return (f"Two line charts over {plural(len(h), 'epoch')}, train and test. Left: cross-entropy loss, train from "
                f"{h.train_loss.iloc[0]:.3f} to {self.last.train_loss:.3f}, test from {h.test_loss.iloc[0]:.3f} "
                f"to {self.last.test_loss:.3f}. Right: accuracy, test from {pct(h.test_acc.iloc[0])} to "
                f"{pct(self.last.test_acc)}.")

    def table(self) -> pd.DataFrame:
        h = self.history
        return pd.DataFrame({
            "epoch": h.epoch.astype(int),
            "train loss": h.train_loss.map("{:.4f}".format),
            "test loss": h.test_loss.map("{:.4f}".format),
            "train accuracy": h.train_acc.map(pct),
            "test accuracy": h.test_acc.map(pct),
            "seconds": h.seconds.map("{:,.1f}".format),
        })

    def analysis(self) -> str:
        h, last, best = self.history, self.last, self.lowest_test_loss
        tail = ", so the last epochs mostly fit the training set more tightly" if self.overfits else ""
        return f"""After {plural(len(h), 'epoch')} LeNet reaches **{pct(last.test_acc)}** on the test set (the assignment
reported {pct(ASSIGNMENT['q1'], 1)} after 10 epochs). Training loss goes from {h.train_loss.iloc[0]:.4f} to
{last.train_loss:.4f}; test loss is lowest at epoch {int(best.epoch)} ({best.test_loss:.4f}) and ends at
{last.test_loss:.4f}{tail}. Train accuracy ends at {pct(last.train_acc)} against {pct(last.test_acc)} on the
test set."""

    def headlines(self) -> list[tuple]:
        return [(f"1. LeNet, {plural(self.epochs, 'epoch')}", pct(self.last.test_acc), pct(ASSIGNMENT['q1'], 1))]

    def summary(self) -> dict:
        return {"test_acc": float(self.last.test_acc), "test_loss": float(self.last.test_loss),
                "best_test_acc": float(self.history.test_acc.max()), "epochs": len(self.history)}
