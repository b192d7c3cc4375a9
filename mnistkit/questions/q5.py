"""Question 5: test accuracy against training-set size, at equal epochs and at equal steps."""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from .. import data, stats
from ..errors import check_number
from ..params import Base as Params
from ..params import check_sizes, param
from ..store import Store
from .common import Question, distinct_sizes, full_size, read, row, sized
from .text import NA, captioned, mean_std_column, pct, pm, recipe, record, reported, say


def _count(params: Params, size) -> int:
    return full_size(params) if size is None else size


def labelled_runs(params: Params):
    """``(protocol, config)`` for every run: every size over the seeds for ``q5.epochs`` epochs
    ("equal epochs"; the smallest size over ``smallest_seeds`` seeds at least), and every size
    smaller than the largest for as many optimization steps as the largest gets ("equal steps",
    scored once, after the last epoch)."""
    q = params.q5
    largest = max(_count(params, s) for s in q.sizes)
    smallest = min(_count(params, s) for s in q.sizes)
    for size in q.sizes:
        seeds = params.seeds
        if _count(params, size) == smallest:
            seeds = list(dict.fromkeys([*params.seeds, *range(q.smallest_seeds)]))
        for s in seeds:
            yield "equal_epochs", sized(params, "q5", size, s, epochs=q.epochs)
    batch = sized(params, "q5", None, 0, epochs=q.epochs).batch_size
    steps = q.epochs * math.ceil(largest / batch)
    for size in q.sizes:
        n = _count(params, size)
        if n == largest:
            continue
        epochs = math.ceil(steps / math.ceil(n / batch))
        for s in params.seeds:
            yield "equal_steps", sized(params, "q5", size, s, epochs=epochs, evaluate_every=epochs)


@dataclass(frozen=True)
class Section:
    """training-set sizes (None: all) and epochs"""

    sizes: list[typing.Optional[int]] = param([200, 1000, None], "training-set sizes (None: the full set)")
    epochs: int = param(2, "training epochs of the largest size (and of every size under equal epochs)")
    smallest_seeds: int = param(4, "seeds of the smallest size under equal epochs (its spread is the widest)")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)
        check_number("smallest_seeds", self.smallest_seeds, 1, integer=True)

    def check(self, params) -> None:
        """The sizes against the report's dataset."""
        check_sizes("sizes", self.sizes, params.dataset)


def runs(params: Params) -> list:
    return [c for _, c in labelled_runs(params)]


def result(params: Params, store: Store, needed: dict | None = None) -> "Q5Result":
    items = list(labelled_runs(params))
    fetched = read(store, [c for _, c in items], "q5")
    frame = pd.DataFrame([row(r, protocol=protocol, size=r.config.train_images, full=r.config.subset is None)
                          for (protocol, _), r in zip(items, fetched)])
    full = [r.config for r in fetched if r.config.subset is None]
    counts = data.class_counts(full[0].dataset, full[0].validation) if full else []  # from the labels
    return Q5Result(runs=frame, epochs=params.q5.epochs, seeds=params.seeds,
                    full_counts=counts, reported=reported("q5", params.dataset) or {}, dataset=params.dataset,
                    margin=params.equivalence)


def per_class_counts(size: int, full: bool, counts: list) -> str:
    """Images of each class in a training set of ``size`` (``full``: the whole set, whose ``counts`` may differ)."""
    if full and min(counts) != max(counts):
        return f"{min(counts):,} to {max(counts):,} (unbalanced)"
    return f"{size // len(counts or range(10)):,} each"


def size_table(runs: pd.DataFrame, protocol: str, seeds: list, counts: list) -> pd.DataFrame:
    """One row per size, ascending: size, per_class, mean, std, count, epochs of the runs under
    ``protocol``; under equal steps the largest size is its own reference (its equal-epoch runs);
    ``counts``: the whole set's images per class."""
    r = runs
    if protocol == "equal_steps":
        largest = r["size"].max()
        r = pd.concat([r[r.protocol == "equal_steps"],
                       r[(r.protocol == "equal_epochs") & (r["size"] == largest) & r.seed.isin(seeds)]])
    else:
        r = r[r.protocol == protocol]
    return (r.assign(per_class=[per_class_counts(n, f, counts) for n, f in zip(r["size"], r.full)])
            .groupby(["size", "per_class"], sort=True)
            .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), count=("test_acc", "count"),
                 epochs=("epochs", "first"))
            .reset_index())


@dataclass
class Q5Result:
    """Test accuracy against training-set size, at equal epochs and at equal optimization steps."""

    runs: pd.DataFrame  # one row per run: protocol (equal_epochs, equal_steps), size, full, seed, epochs, test_acc
    epochs: int
    seeds: list
    reported: dict = field(default_factory=dict)  # the assignment's accuracy by training images, on its dataset
    full_counts: list = field(default_factory=list)  # the whole training set's images of each class, from the data
    dataset: str = "mnist"  # a name of data.DATASETS: the classes' names and the text's word for them
    margin: float = math.nan  # the verdicts' equivalence margin (params.Base.equivalence)

    @property
    def epoch_runs(self) -> pd.DataFrame:
        """The runs at equal epochs."""
        return self.runs[self.runs.protocol == "equal_epochs"]

    @cached_property
    def sizes(self) -> pd.DataFrame:
        """Equal epochs: one row per size, ascending: size, per_class, mean, std, count, epochs."""
        return size_table(self.runs, "equal_epochs", self.seeds, self.full_counts)

    @cached_property
    def steps(self) -> pd.DataFrame:
        """Equal steps: the same, every size trained for as many steps as the largest."""
        return size_table(self.runs, "equal_steps", self.seeds, self.full_counts)

    @property
    def gains(self) -> list[float]:
        s = self.sizes
        return stats.gains_per_tenfold(list(s["size"]), list(s["mean"]))

    @property
    def last_step(self) -> stats.Difference:
        """The largest size minus the one before it at equal epochs, over seeds: what the last step still gains."""
        r, sizes = self.epoch_runs, self.sizes["size"]
        return stats.difference(r.loc[r["size"] == sizes.iloc[-1], "test_acc"],
                                r.loc[r["size"] == sizes.iloc[-2], "test_acc"], margin=self.margin)

    @property
    def last_step_at_equal_steps(self) -> stats.Difference | None:
        """The same step with both sizes trained for the same number of updates (the largest size's runs are its
        own reference): what the data adds without the extra updates; None where the step was not run so."""
        r, sizes = self.runs, self.sizes["size"]
        larger = r.loc[(r.protocol == "equal_epochs") & (r["size"] == sizes.iloc[-1]) & r.seed.isin(self.seeds),
                       "test_acc"]
        smaller = r.loc[(r.protocol == "equal_steps") & (r["size"] == sizes.iloc[-2]), "test_acc"]
        return stats.difference(larger, smaller, margin=self.margin) if len(larger) and len(smaller) else None

    @property
    def returns(self) -> str:
        """"saturating", "diminishing" or "steady" (``stats.returns``)."""
        s = self.sizes
        return stats.returns(list(s["size"]), list(s["mean"]), self.last_step)

    def smallest_runs(self) -> pd.Series:
        """Test accuracies of every equal-epoch seed at the smallest size."""
        r = self.runs[self.runs.protocol == "equal_epochs"]
        return r.loc[r["size"] == r["size"].min(), "test_acc"]

    def steps_share(self) -> float:
        """Of the smallest size's gap to the largest at equal epochs, the share that equal steps close."""
        e, q = self.sizes, self.steps
        gap = e["mean"].iloc[-1] - e["mean"].iloc[0]
        closed = q["mean"].iloc[0] - e["mean"].iloc[0]
        return closed / gap if gap else math.nan

    def protocol(self) -> str:
        kind, seeds = data.dataset(self.dataset).kind, len(self.smallest_runs())
        return say("q5", "protocol", r=self, kind=kind, recipe=recipe(self.runs), seeds=seeds,
                   smallest=int(self.sizes["size"].iloc[0]), unbalanced=self._unbalanced())

    def _unbalanced(self) -> str:
        """What the whole training set holds per class, counted from its labels."""
        c, facts = self.full_counts, data.dataset(self.dataset)
        if not c:
            return ""
        return " " + say("q5", "unbalanced", kind=facts.kind, kinds=facts.kinds, fewest=min(c), most=max(c),
                         balanced=min(c) == max(c), fewest_class=facts.classes[c.index(min(c))],
                         most_class=facts.classes[c.index(max(c))])

    title = "Training-set size"

    def answer(self) -> str:
        s, q = self.sizes, self.steps
        share = self.steps_share()
        return say("q5", "answer", r=self, first=s.iloc[0], last=s.iloc[-1],
                   share=None if math.isnan(share) else share, steps_mean=q["mean"].iloc[0])

    def conclusion(self) -> str:
        share = self.steps_share()
        return say("q5", "conclusion", r=self, share=None if math.isnan(share) else share,
                   steps_step=self.last_step_at_equal_steps)

    def caption(self) -> str:
        return say("q5", "caption")

    def alt(self) -> str:
        e, q = self.sizes, self.steps
        return say("q5", "alt", epochs=list(zip(e["size"], e["mean"])), steps=list(zip(q["size"], q["mean"])))

    def table(self) -> pd.DataFrame:
        e, q = self.sizes, self.steps.set_index("size")
        frame = pd.DataFrame({
            "training images": e["size"].map("{:,}".format),
            f"images per {data.dataset(self.dataset).kind}": e.per_class,
            "equal epochs: test accuracy": mean_std_column(e),
            "seeds": e["count"].astype(int),
            "equal steps: epochs": [f"{int(q.loc[n, 'epochs']):,}" if n in q.index else NA for n in e["size"]],
            "equal steps: test accuracy": [pm(q.loc[n, "mean"], q.loc[n, "std"]) if n in q.index else NA
                                           for n in e["size"]],
        })
        return captioned(frame, say("q5", "table_caption"))

    def analysis(self) -> str:
        s, q = self.sizes, self.steps
        last = s.iloc[-1]
        gains = [(s["size"].iloc[i], s["size"].iloc[i + 1], s["mean"].iloc[i + 1] - s["mean"].iloc[i], g)
                 for i, g in enumerate(self.gains)]
        fewest = int(s["count"].min())
        uneven = bool(self.full_counts) and min(self.full_counts) != max(self.full_counts)
        share = self.steps_share()
        return say("q5", "analysis", r=self, first=s.iloc[0], last=last, gains=gains, stds=list(s["std"]),
                   fewest=fewest, uncertainty=100 / math.sqrt(2 * (fewest - 1)) if fewest > 1 else None,
                   all_data=uneven and self.runs.loc[self.runs["size"] == last["size"], "full"].all(),
                   share=None if math.isnan(share) else share, steps_mean=q["mean"].iloc[0],
                   steps_std=q["std"].iloc[0], assignment=assignment_sentence(self), last_step=self.last_step,
                   before=int(s["size"].iloc[-2]), steps_step=self.last_step_at_equal_steps)

    def headlines(self) -> list[tuple]:
        rows = []
        for protocol, table in (("equal epochs", self.sizes), ("equal steps", self.steps)):
            for r in table.itertuples():
                reference = self.reported.get(r.size) if protocol == "equal epochs" else None
                rows.append((f"{r.size:,} training images, {protocol} (mean)", pct(r.mean),
                             "" if reference is None else pct(reference)))
        return rows

    def summary(self) -> dict:
        e, q = self.sizes, self.steps
        small = self.smallest_runs()

        return {"equal_epochs": {"test_acc_mean": {str(r.size): float(r.mean) for r in e.itertuples()},
                                 "test_acc_std": {str(r.size): float(r.std) for r in e.itertuples()},
                                 "seeds": {str(r.size): int(r.count) for r in e.itertuples()}},
                "equal_steps": {"test_acc_mean": {str(r.size): float(r.mean) for r in q.itertuples()},
                                "test_acc_std": {str(r.size): float(r.std) for r in q.itertuples()},
                                "epochs": {str(r.size): int(r.epochs) for r in q.itertuples()}},
                "train_images": [int(n) for n in e["size"]], "returns": self.returns,
                "gain_per_tenfold": [float(g) for g in self.gains],
                "last_step": {"sizes": [int(n) for n in e["size"].iloc[-2:]],
                              **record(self.last_step, "the larger set", "the smaller")},
                "smallest_test_acc_min": float(small.min()), "smallest_test_acc_max": float(small.max())}


def assignment_sentence(r: Q5Result) -> str:
    """Where the assignment's single 600-image run falls among this report's seeds (measured)."""
    small = r.smallest_runs()
    size = int(r.sizes["size"].iloc[0])
    if size not in r.reported:
        return ""
    theirs = r.reported[size]
    reach = int((small >= theirs).sum())
    return " " + say("q5", "assignment", size=size, small=small, theirs=theirs, reach=reach,
                     inside=small.min() <= theirs <= small.max())


QUESTION = Question("q5", Section, runs, result,
                    check=lambda params: distinct_sizes(params, "q5"))
