"""Question 4: LeNet against the same network with its convolutional layers doubled, over seeds."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import check_number
from ..params import Base as Params
from ..params import param
from ..store import Store
from . import comparison
from .common import Question
from .text import plural, question, recipe, training_set


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
    title = "4. Doubling the convolutional layers"

    def protocol(self) -> str:
        return f"""LeNet against the same network with a second 5×5 convolution (padding 2, ReLU) after
each of its two convolutions, trained identically: {recipe(self.runs)}, {plural(self.epochs, 'epoch')},
{training_set(self.train_subset, self.validation)} images, seeds {self.seeds}. Lines are the mean test error per epoch
on a log axis, bands ±1 std."""

    def analysis(self) -> str:
        reading = {"better": "Here that extra depth pays off within the same number of epochs.",
                   "level": self.level_reading(),
                   "worse": "Here the deeper network does worse within the same number of epochs."}[self.gap.verdict]
        return f"""Doubling the conv layers {self.measured()}

The extra layers deepen the feature hierarchy and widen each unit's receptive field without
shrinking the maps (padding 2), while the classifier head stays the same. {reading}{self.slow_start()}"""


def runs(params: Params) -> list:
    return comparison.runs(params, "q4", Q4Result.models, params.q4.epochs)


def result(params: Params, store: Store, needed: dict | None = None) -> Q4Result:
    return comparison.result(Q4Result, params, store, "q4", params.q4.epochs)


QUESTION = Question("q4", 4, question("q4"), Section, runs, result)
