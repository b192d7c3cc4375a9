"""Question 4: LeNet against the same network with its convolutional layers doubled, over seeds."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import check_number
from ..params import Base as Params
from ..params import param
from ..store import Store
from . import comparison
from .common import Question
from .text import recipe, say, training_set


@dataclass(frozen=True)
class Section:
    """LeNet vs doubled conv layers: epochs"""

    epochs: int = param(2, "training epochs")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)


@dataclass
class Q4Result(comparison.Comparison):
    """LeNet against the same network with its conv layers doubled, over seeds."""

    models = ("lenet", "double_conv_lenet")
    keys = ("lenet", "double_conv", "double_minus_lenet")
    title = "Doubling the convolutional layers"

    def protocol(self) -> str:
        return say("q4", "protocol", r=self, recipe=recipe(self.runs),
                   training_set=training_set(self.train_subset, self.validation))

    def caption(self) -> str:
        return say("q4", "caption")

    def analysis(self) -> str:
        return say("q4", "analysis", r=self, measured=self.measured(), reading=self.reading())


def runs(params: Params) -> list:
    return comparison.runs(params, "q4", Q4Result.models, params.q4.epochs)


def result(params: Params, store: Store, needed: dict | None = None) -> Q4Result:
    return comparison.result(Q4Result, params, store, "q4", params.q4.epochs)


QUESTION = Question("q4", Section, runs, result)
