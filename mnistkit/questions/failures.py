"""Where the models fail: the test-set mistakes of question 2's best CNN and question 6's ViT."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .. import data
from ..params import Params
from ..store import Store
from ..trainer import predict
from . import q6
from .common import read
from .q2 import Q2Result
from .q3 import best_setting_runs


def mistakes(run, name: str, device: str = "cpu") -> "Mistakes":
    """The test set's confusion matrix and the misclassified images of ``run``'s model."""
    x, y = data.load(False, device)
    pred = predict(run.model(device), x)
    y = y.cpu()
    matrix = pd.crosstab(pd.Series(y.numpy(), name="true"), pd.Series(pred.numpy(), name="predicted"))
    matrix = matrix.reindex(index=range(10), columns=range(10), fill_value=0)
    wrong = (pred != y).nonzero().squeeze(1)
    errors = pd.DataFrame({"index": wrong.numpy(), "true": y[wrong].numpy(), "predicted": pred[wrong].numpy()})
    return Mistakes(name=name, matrix=matrix, errors=errors, images=x[wrong].cpu())


def result(params: Params, store: Store, q2_result: Q2Result, q6_result: q6.Q6Result) -> "Failures":
    """The mistakes of question 2's best CNN (first seed) and of the ViT trained on question 6's
    largest set under its better recipe (first seed)."""
    cnn = best_setting_runs(params, q2_result, store, "the failures")[0]
    recipe, size = q6_result.best_recipe, q6_result.sizes[-1]
    vit_config = next(c for name, model, c in q6.labelled_runs(params) if name == recipe and model == "vit"
                      and c.train_images == size and c.seed == params.q6.seeds[0])
    vit = read(store, [vit_config], "the failures")[0]
    return Failures([mistakes(cnn, "CNN"), mistakes(vit, "ViT")])


@dataclass
class Mistakes:
    """One model's test-set confusion matrix and misclassified images."""

    name: str
    matrix: pd.DataFrame  # true (rows) x predicted (columns), counts
    errors: pd.DataFrame  # index, true, predicted of every misclassified test image
    images: object  # [errors, 1, 28, 28] tensor of those images

    def alt_confusion(self) -> str:
        m = self.matrix.copy()
        for i in range(len(m)):
            m.iat[i, i] = 0
        true, predicted = divmod(int(m.to_numpy().argmax()), len(m))
        return (f"Confusion matrix of {self.name} on the 10,000 test images with the diagonal blank: "
                f"{len(self.errors)} errors; the most frequent is a true {true} predicted as {predicted} "
                f"({int(m.iat[true, predicted])} times).")

    def alt_gallery(self, n: int = 16) -> str:
        shown = self.errors.head(n)
        return (f"The first {len(shown)} misclassified test digits of {self.name}, each captioned true → predicted: "
                + ", ".join(f"{t}→{p}" for t, p in zip(shown.true, shown.predicted)) + ".")


@dataclass
class Failures:
    """Where the best CNN of question 2 and the ViT of question 6 go wrong."""

    models: list = field(default_factory=list)  # Mistakes, CNN first

    def matrices(self) -> dict:
        """Each model's confusion matrix, under a title with its error count."""
        return {f"{m.name}: {len(m.errors)} errors in 10,000": m.matrix for m in self.models}

    def alt_confusions(self) -> str:
        return " ".join(m.alt_confusion() for m in self.models)

    @staticmethod
    def text() -> str:
        return """## Where the models fail

Confusion matrices (correct predictions on the diagonal left blank) and the first misclassified
test digits, captioned *true → predicted*, for the best CNN of section 2 (first seed) and the ViT
trained on the largest set with its better recipe."""
