"""Where the models fail: the test-set mistakes of question 2's best CNN and question 6's ViT."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from .. import data
from ..params import Base as Params
from ..store import Store
from ..trainer import predict
from . import q6
from .common import read
from .q2 import Q2Result
from .q3 import cnn_runs
from .text import say


def mistakes(run, name: str, what: str, device: str = "cpu") -> "Mistakes":
    """The test set's confusion matrix and the misclassified images of ``run``'s model; ``what`` says which
    model it is, in words."""
    x, y = run.test_set(device)
    pred = predict(run.model(device), x)
    y = y.cpu()
    classes = data.dataset(run.config.dataset).classes
    matrix = pd.crosstab(pd.Series(y.numpy(), name="true"), pd.Series(pred.numpy(), name="predicted"))
    matrix = matrix.reindex(index=range(len(classes)), columns=range(len(classes)), fill_value=0)
    wrong = (pred != y).nonzero().squeeze(1)
    errors = pd.DataFrame({"index": wrong.numpy(), "true": y[wrong].numpy(), "predicted": pred[wrong].numpy()})
    return Mistakes(name=name, matrix=matrix, errors=errors, images=x[wrong].cpu(), classes=classes,
                    what=f"{what}, seed {run.config.seed}, trained on {run.config.train_images:,} images")


def result(params: Params, store: Store, q2_result: Q2Result, q6_result: q6.Q6Result) -> "Failures":
    """The mistakes of question 2's best CNN (first seed) and of the ViT trained on question 6's
    largest set under its better recipe (first seed)."""
    cnn = cnn_runs(params, q2_result, store, "the failures")[0]
    recipe, size = q6_result.best_recipe, q6_result.sizes[-1]
    vit_config = next(c for name, model, c in q6.labelled_runs(params) if name == recipe and model == "vit"
                      and c.train_images == size and c.seed == params.q6.seeds[0])
    vit = read(store, [vit_config], "the failures")[0]
    return Failures([mistakes(cnn, "CNN", f"the best CNN of section 2 ({q2_result.best.label})"),
                     mistakes(vit, "ViT", f"the ViT of section 6 under its {recipe} recipe")])


@dataclass
class Mistakes:
    """One model's test-set confusion matrix and misclassified images."""

    name: str
    matrix: pd.DataFrame  # true (rows) x predicted (columns), counts
    errors: pd.DataFrame  # index, true, predicted of every misclassified test image
    images: object  # [errors, 1, 28, 28] tensor of those images
    what: str = ""  # which model, in words: its section, recipe, seed and training set
    shown: int = 16  # mistakes its gallery shows, the first in test-set order
    classes: tuple = tuple(str(d) for d in range(10))  # the classes' names, by label

    @property
    def named(self) -> pd.DataFrame:
        """The confusion matrix with the classes' names on both axes."""
        return self.matrix.set_axis(self.classes, axis=0).set_axis(self.classes, axis=1)

    def confusions(self, n: int = 3) -> list[tuple[int, int, int]]:
        """The ``n`` most frequent mistakes as ``(true, predicted, count)``, most frequent first (ties: by true,
        then predicted class)."""
        m = self.matrix
        pairs = [(t, p, int(m.iat[t, p])) for t in range(len(m)) for p in range(len(m)) if t != p and m.iat[t, p]]
        return sorted(pairs, key=lambda c: (-c[2], c[0], c[1]))[:n]

    def hardest(self) -> tuple[str, int]:
        """``(class, errors)``: the true class this model gets wrong most often, by name."""
        counts = self.errors.true.value_counts()
        return self.classes[int(counts.index[0])], int(counts.iloc[0])

    def alt_confusion(self) -> str:
        true, predicted, count = self.confusions(1)[0]
        return say("failures", "alt_confusion", m=self, total=int(self.matrix.values.sum()),
                   truth=self.classes[true], prediction=self.classes[predicted], count=count)

    def captions(self) -> list[str]:
        """Its gallery's captions, true → predicted, the first ``shown`` mistakes in test-set order."""
        shown = self.errors.head(self.shown)
        apart = "\n" if max(map(len, self.classes)) > 2 else ""  # names on two lines, digits on one
        return [f"{self.classes[t]}{apart}→{self.classes[p]}" for t, p in zip(shown.true, shown.predicted)]

    def figure_name(self) -> str:
        """Its gallery's file name in the figures folder."""
        return f"errors_{self.name.lower()}"

    def title_gallery(self) -> str:
        return say("failures", "title_gallery", m=self)

    def caption_gallery(self) -> str:
        return say("failures", "caption_gallery", m=self)

    def alt_gallery(self) -> str:
        return say("failures", "alt_gallery", m=self, captions=[c.replace("\n", "") for c in self.captions()])


@dataclass
class Failures:
    """Where the best CNN of question 2 and the ViT of question 6 go wrong."""

    models: list = field(default_factory=list)  # Mistakes, CNN first

    def matrices(self) -> dict:
        """Each model's confusion matrix, under a title with its error count."""
        return {f"{m.name}: {len(m.errors)} errors in {int(m.matrix.values.sum()):,}": m.named for m in self.models}

    def caption_confusions(self) -> str:
        return say("failures", "caption_confusions")

    def alt_confusions(self) -> str:
        return " ".join(m.alt_confusion() for m in self.models)

    def text(self) -> str:
        """The models shown, their most frequent confusions and hardest digits, what the galleries show."""
        rows = [(m, [(m.classes[t], m.classes[p], c) for t, p, c in m.confusions()], *m.hardest())
                for m in self.models]
        shared = sorted(set.intersection(*({(t, p) for t, p, _ in m.confusions()} for m in self.models)))
        name = self.models[0].classes
        return say("failures", "text", rows=rows, shared=[(name[t], name[p]) for t, p in shared],
                   shown=list(dict.fromkeys(m.shown for m in self.models)),
                   total=int(self.models[0].matrix.values.sum()))
