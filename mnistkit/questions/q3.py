"""Question 3: the best setting of question 2 against the SIFT bag-of-visual-words + SVM baseline, whose
setting a seeded random search chooses on the validation images; both sides over the report's seeds."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import bovw, data, stats, study
from ..config import device_name, resolve_device
from ..errors import ConfigError, check_number
from ..params import Base as Params
from ..params import check_mapping, param
from ..store import Store
from ..trainer import EVAL_BATCH, predict
from . import q2
from .common import Question, Stage, read
from .text import bracketed, captioned, judged, pct, pm, record, reported, say, times


@dataclass(frozen=True)
class BovwSearch:
    """The baseline's random search (Optuna's RandomSampler): ``trials`` settings, each one choice of every
    setting ``space`` lists, trained on ``images`` balanced training images and scored on the validation
    images; the most accurate (the cheapest of equals) is the baseline."""

    trials: int = param(2, "settings drawn")
    seed: int = param(0, "the sampler's seed and every trial's seed")
    images: int = param(1000, "training images of each trial (a balanced subset)")
    space: dict = param({"step": [4, 7]}, "each searched setting of mnistkit.bovw.BovwConfig, with its choices")

    def __post_init__(self):
        check_number("trials", self.trials, 1, integer=True)
        check_number("seed", self.seed, 0, integer=True)
        check_number("images", self.images, 10, integer=True)
        check_mapping("space", self.space)
        for name, choices in self.space.items():
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"space.{name}", choices, "must be a list of at least one choice")
            if len({repr(c) for c in choices}) < len(choices):
                raise ConfigError(f"space.{name}", choices, "must not repeat a choice")
        settings = math.prod(len(choices) for choices in self.space.values())
        if self.trials > settings:
            raise ConfigError("trials", self.trials, f"must be at most {settings:,}: the distinct settings space holds")


BASELINE_SETS = ("dataset", "subset", "subset_seed", "seed", "validation", "scored_on")  # q3's images, seeds, scoring


@dataclass(frozen=True)
class Section:
    """best CNN vs the SIFT-BoVW-SVM baseline"""

    bovw: dict = param({"words": 64}, "the baseline's fixed settings (mnistkit.bovw.BovwConfig); the search sets "
                                      "the rest")
    search: BovwSearch = param(BovwSearch(), "the random search on the validation images that chooses the "
                                             "baseline's setting (on the test images under the assignment's "
                                             "protocol)")

    def __post_init__(self):
        check_mapping("bovw", self.bovw)
        set_here = sorted(set(self.bovw) & set(BASELINE_SETS))
        if set_here:
            raise ConfigError(f"bovw.{set_here[0]}", self.bovw[set_here[0]],
                              f"is not a setting of q3.bovw: the search and the report set {', '.join(BASELINE_SETS)}")
        fixed = sorted(set(self.bovw) & set(self.search.space))
        if fixed:
            raise ConfigError("search.space", fixed[0], "must not name a setting that q3.bovw fixes")


def _bovw(params: Params, values: dict, images: str) -> bovw.BovwConfig:
    """``q3.bovw`` with ``values``; an error names the parameter it comes from: a searched setting
    (``q3.search.space``), the parameter ``images`` that set the training images, or a fixed one (``q3.bovw``)."""
    try:
        return bovw.BovwConfig.from_dict({**params.q3.bovw, **values, "dataset": params.dataset})
    except ConfigError as err:
        where = (f"q3.search.space.{err.name}" if err.name in params.q3.search.space
                 else images if err.name == "subset" else f"q3.bovw.{err.name}")
        raise ConfigError(where, err.value, err.allowed) from None


def trials(params: Params) -> list[tuple[dict, bovw.BovwConfig]]:
    """``(drawn setting, config)`` for every trial of the baseline's search: ``q3.bovw`` with one choice of
    each of ``q3.search.space`` drawn by Optuna's sampler (``study.draw_choices``), trained on ``images``
    balanced training images and scored on the validation images (the test images under the assignment's
    protocol, which selects by test accuracy); the search's seed seeds every trial."""
    s = params.q3.search
    for name in s.space:
        if name not in SETTING:
            raise ConfigError("q3.search.space", name, f"must name settings among {list(SETTING)}")
    scored_on = "validation" if params.validation else "test"
    fixed = {"subset": s.images, "subset_seed": s.seed, "seed": s.seed, "validation": params.validation,
             "scored_on": scored_on}
    return [(drawn, _bovw(params, {**drawn, **fixed}, "q3.search.images"))
            for drawn in study.draw_choices(s.space, s.trials, s.seed)]


def search_frame(params: Params, store: Store) -> pd.DataFrame:
    """One row per trial, in order: trial (from 1), each searched setting, accuracy on the images it is
    scored on, cost (``bovw.cost``), seconds."""
    items = trials(params)
    found = read(store, [c for _, c in items], "q3")
    return pd.DataFrame([{"trial": i, **drawn, "accuracy": r.test_acc, "cost": bovw.cost(c), "seconds": r.seconds}
                         for i, ((drawn, c), r) in enumerate(zip(items, found), start=1)])


def chosen(frame: pd.DataFrame) -> int:
    """The trial (from 1) with the highest accuracy; of those tied, the cheapest (``bovw.cost``), then the first."""
    best = frame[frame.accuracy == frame.accuracy.max()]
    return int(best.sort_values(["cost", "trial"], kind="stable").iloc[0].trial)


def baselines(params: Params, drawn: dict) -> list:
    """The baseline: ``q3.bovw`` with the setting ``drawn``, once per report seed (the seed draws the
    descriptors k-means sees, starts k-means and orders the SVM's passes), trained on the whole training
    set, validation images included (it chooses nothing), and scored on the test images."""
    return [_bovw(params, {**drawn, "subset": params.train_subset, "seed": seed, "validation": 0, "scored_on": "test"},
                  "train_subset") for seed in params.seeds]


def chosen_setting(params: Params, search: pd.DataFrame) -> dict:
    """The searched values of the trial ``chosen`` picks from the search's frame (``search_frame``)."""
    return trials(params)[chosen(search) - 1][0]


def second_stage(params: Params, store: Store) -> list:
    """The plan's stage after the search's: the chosen setting's baselines (``baselines``)."""
    return baselines(params, chosen_setting(params, search_frame(params, store)))


def check(params: Params) -> None:
    """Each trial's setting as the baseline, on the whole training set: valid there too (else ConfigError)."""
    for drawn, _ in trials(params):
        baselines(params, drawn)


def runs(params: Params) -> list:
    """The question's first-stage entries: question 2's settings (its best one's runs are the CNN) and the
    baseline's search."""
    return q2.runs(params) + [c for _, c in trials(params)]


SETTING = ("upscale", "step", "patch", "words", "kmeans_sample", "levels", "power", "feature_map", "C")
NAMES = {"upscale": "resized to {} px", "step": "grid step {} px", "patch": "keypoint size {:g}",
         "words": "{:,} words", "kmeans_sample": "k-means on {:,} descriptors", "levels": "{} pyramid levels",
         "power": "power {:g}", "feature_map": "{} feature map", "C": "C = {:g}"}


def setting_words(setting: dict) -> str:
    """Baseline settings in words: ``grid step 3 px, 2,048 words``."""
    return ", ".join(NAMES.get(k, k + " {}").format(v) for k, v in setting.items())


def cnn_runs(params: Params, q2_result: q2.Q2Result, store: Store, question: str = "q3") -> list:
    """The runs that score question 2's best setting, one per seed in order: those retrained on the whole
    training set, or, under the assignment's protocol (which retrains nothing), those that chose it."""
    number = int(q2_result.best.setting)  # chosen by q2_result.selected_by
    again = q2.retrained(params, number)
    return read(store, again or [c for n, _, c in q2.settings(params) if n == number], question)


def inference_ms_per_image(run, repeats: int = 3) -> float:
    """Median wall time to classify the 10,000 test images with ``run``'s model, per image."""
    device = resolve_device(run.config.device)
    model = run.model(device)
    x, _ = run.test_set(device)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        predict(model, x)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[1:])) / len(x)


def _per_class(run) -> list:
    x, y = run.test_set()
    pred = predict(run.model("cpu"), x)
    return [float((pred[y == c] == c).float().mean()) for c in range(10)]


def result(params: Params, store: Store, q2_result: q2.Q2Result) -> "Q3Result":
    """The best setting of question 2 (its scored runs, the first seed's model timed here) against the
    stored baselines of the search's choice, seed by seed."""
    cnn_found = cnn_runs(params, q2_result, store)
    first = cnn_found[0]
    accs = [r.final["test_acc"] for r in cnn_found]
    search = search_frame(params, store)
    configs = baselines(params, chosen_setting(params, search))
    bases = read(store, configs, "q3")
    x, y = first.test_set()
    paired = [stats.mcnemar(predict(r.model("cpu"), x).numpy(), b.predictions, y.numpy())
              for r, b in zip(cnn_found, bases)] if all(b.predictions for b in bases) else []
    cnn = Method(
        name=f"LeNet ({q2_result.best.label})", short="LeNet", test_acc=float(np.mean(accs)),
        test_acc_std=float(np.std(accs, ddof=1)) if len(accs) > 1 else float("nan"), runs=len(accs),
        train_seconds=float(np.mean([r.history["seconds"].sum() for r in cnn_found])),
        inference_ms_per_image=inference_ms_per_image(first), learned_parameters=int(first.info["parameters"]),
        feature_dim=84, train_images=first.config.train_images)
    base_accs = [b.test_acc for b in bases]
    baseline_method = Method(
        name="SIFT-BoVW-SVM", short="SIFT-BoVW-SVM", test_acc=float(np.mean(base_accs)),
        test_acc_std=float(np.std(base_accs, ddof=1)) if len(bases) > 1 else float("nan"), runs=len(bases),
        train_seconds=float(np.mean([b.train_seconds for b in bases])),
        inference_ms_per_image=float(np.mean([b.inference_ms_per_image for b in bases])),
        learned_parameters=bovw.learned_parameters(configs[0]), feature_dim=bases[0].feature_dim,
        train_images=bases[0].train_size)
    per_class = pd.DataFrame({"class": range(10), cnn.short: _per_class(first),
                              baseline_method.short: bases[0].per_class_acc})
    s = params.q3.search
    return Q3Result(cnn=cnn, bovw=baseline_method, cnn_accs=accs, bovw_accs=base_accs, mcnemar=paired,
                    per_class=per_class, bovw_config=bases[0].config, seeds=list(params.seeds),
                    device_name=device_name(resolve_device(params.device)), search=search, space=s.space,
                    search_images=s.images, search_seed=s.seed,
                    search_scored_on="validation" if params.validation else "test",
                    class_counts=[int((y == c).sum()) for c in range(10)], validation_images=params.validation,
                    dataset=params.dataset, margin=params.equivalence,
                    reported=reported("q3", params.dataset))


@dataclass
class Method:
    """One side of question 3's comparison, as measured on this machine."""

    name: str  # as in summary.json: the CNN's with its setting
    short: str  # a column name for tables and figures
    test_acc: float  # mean over the runs
    test_acc_std: float  # NaN: one run
    runs: int
    train_seconds: float  # mean per run
    inference_ms_per_image: float
    learned_parameters: int
    feature_dim: int  # features before the classifier
    train_images: int = 60_000


@dataclass
class Q3Result:
    """The best setting of question 2 against the SIFT-BoVW-SVM baseline, each over the report's seeds."""

    cnn: Method
    bovw: Method
    cnn_accs: list  # the CNN's test accuracy for each seed
    bovw_accs: list  # the baseline's test accuracy for each seed
    mcnemar: list  # stats.McNemar of each seed's CNN against the same seed's baseline (empty: no predictions)
    per_class: pd.DataFrame  # class, then one column of test accuracy per method (its short name), first seed
    bovw_config: dict  # the first seed's baseline
    seeds: list
    device_name: str
    search: pd.DataFrame  # trial, the searched settings, accuracy (on search_scored_on's images), cost, seconds
    space: dict  # each searched setting's choices
    search_images: int
    search_seed: int = 0
    search_scored_on: str = "validation"  # or test, under the assignment's protocol
    class_counts: list | None = None  # test images of each class
    validation_images: int = data.VALIDATION_SIZE  # the selection runs hold them out; the search scores on them
    reported: str | None = None  # the assignment's baseline, where it studied the same dataset
    dataset: str = "mnist"  # a name of data.DATASETS: the classes' names and the text's word for them
    margin: float = float("nan")  # the verdict's equivalence margin (params.Base.equivalence)

    title = "The best CNN against SIFT bag-of-visual-words + SVM"

    @property
    def chosen(self) -> pd.Series:
        """The search's trial that became the baseline."""
        return self.search.loc[self.search.trial == chosen(self.search)].iloc[0]

    @property
    def tied(self) -> list[int]:
        """The other trials as accurate as the chosen one (it is the cheapest of them)."""
        best = self.chosen
        return [int(t) for t in self.search.trial[self.search.accuracy == best.accuracy] if t != best.trial]

    def setting(self, trial: int) -> dict:
        """The searched values of ``trial``, each as drawn (a row of mixed types would turn them into floats)."""
        return {k: self.search[k][self.search.trial == trial].item() for k in self.space}

    def search_table(self, top: int = 6) -> pd.DataFrame:
        """The ``top`` trials by accuracy (the cheaper first among equals), one column per searched setting."""
        ranked = self.search.sort_values(["accuracy", "cost", "trial"], ascending=[False, True, True], kind="stable")
        shown = ranked.head(top)
        scored = self.search_scored_on
        frame = pd.DataFrame({"trial": shown.trial,
                              **{COLUMNS.get(k, k): shown[k].map(lambda v: f"{v:g}" if isinstance(v, float) else v)
                                 for k in self.space},
                              f"{scored} accuracy": shown.accuracy.map(pct),
                              "seconds": shown.seconds.map("{:,.0f}".format),
                              "chosen": ["yes" if t == self.chosen.trial else "" for t in shown.trial]})
        return captioned(frame, say("q3", "search_caption", shown=len(shown), trials=len(self.search),
                                    images=self.search_images, scored_on=scored))

    def answer(self) -> str:
        return say("q3", "answer", r=self, slower=self.slower, conditions=self.inference_conditions)

    def conclusion(self) -> str:
        return say("q3", "conclusion", r=self)

    @property
    def inference_conditions(self) -> str:
        """How the inference times were measured: what a time ratio holds under."""
        return say("q3", "inference_conditions", test_images=data.TEST_SIZE, batch=EVAL_BATCH,
                   jobs=self.bovw_config.get("jobs", 1))

    @property
    def slower(self) -> float:
        """How many times as long the baseline takes to classify an image as the CNN."""
        return self.bovw.inference_ms_per_image / self.cnn.inference_ms_per_image

    @property
    def gap(self) -> stats.Difference:
        """CNN minus baseline with a 95% interval over the seeds of both."""
        return stats.difference(self.cnn_accs, self.bovw_accs, margin=self.margin)

    @property
    def error_ratio(self) -> float:
        """Test errors of the baseline per test error of the CNN."""
        return (1 - self.bovw.test_acc) / max(1e-9, 1 - self.cnn.test_acc)

    @property
    def hardest(self) -> str:
        """The class the baseline gets wrong most often, by name."""
        return self.facts.classes[int(self.per_class.set_index("class")[self.bovw.short].idxmin())]

    @property
    def facts(self) -> data.Dataset:
        return data.dataset(self.dataset)

    def protocol(self) -> str:
        c, best = self.bovw_config, self.chosen
        space = "; ".join(f"{SPACE_WORDS.get(k, k)} " + _choices(v, "or") for k, v in self.space.items())
        return say("q3", "protocol", r=self, c=c, zoom=c["upscale"] / 28, trial=int(best.trial), accuracy=best.accuracy,
                   setting=setting_words(self.setting(best.trial)), space=space,
                   tied=_choices(self.tied) if self.tied else "", scored_words=self._scored_words,
                   search_pool=self._search_pool)

    @property
    def keypoints(self) -> int:
        """The dense keypoints, and so descriptors, of one image at the baseline's setting."""
        return len(bovw.grid(bovw.BovwConfig.from_dict(self.bovw_config)))

    @property
    def _search_pool(self) -> str:
        return say("q3", "search_pool", scored_on=self.search_scored_on)

    @property
    def _scored_words(self) -> str:
        return say("q3", "scored_words", scored_on=self.search_scored_on, validation_images=self.validation_images)

    def table(self) -> pd.DataFrame:
        """One row per measure, one column per method: narrow enough for a page."""
        rows = {
            "test accuracy, mean ± std": lambda m: pm(m.test_acc, m.test_acc_std),
            "runs (seeds)": lambda m: f"{m.runs}",
            "training images": lambda m: f"{m.train_images:,}",
            "training time, seconds per run": lambda m: f"{m.train_seconds:,.1f}",
            "inference, ms per image": lambda m: f"{m.inference_ms_per_image:.3f}",
            "learned parameters": lambda m: f"{m.learned_parameters:,}",
            "features before the classifier": lambda m: f"{m.feature_dim:,}",
        }
        frame = pd.DataFrame({"measure": list(rows),
                              **{m.short: [fmt(m) for fmt in rows.values()] for m in (self.cnn, self.bovw)}})
        return captioned(frame, say("q3", "table_caption"))

    def caption(self) -> str:
        return say("q3", "caption", kind=self.facts.kind)

    def alt(self) -> str:
        pc = self.per_class
        return say("q3", "alt", r=self, kind=self.facts.kind, classes=self.facts.classes,
                   bovw_lowest=pc[self.bovw.short].min(), cnn_lowest=pc[self.cnn.short].min())

    def class_gaps(self) -> list[tuple]:
        """``(class name, CNN minus baseline)`` of every class on the test set (first seed of each, as the
        per-class figure shows), the CNN's largest lead first."""
        pc = self.per_class
        gaps = pc[self.cnn.short] - pc[self.bovw.short]
        # rounded far below one image in a class, so that the same count of errors is a tie however it was summed
        return sorted(((self.facts.classes[int(c)], round(float(g), 6)) for c, g in zip(pc["class"], gaps)),
                      key=lambda t: -t[1])

    def analysis(self) -> str:
        verdict, m = self.gap.verdict, self.mcnemar
        # test errors of the less accurate side per test error of the more accurate one
        errors = self.error_ratio if verdict == "ahead" else 1 / self.error_ratio if verdict == "behind" else None
        paired = {"only_a": _choices([x.only_a for x in m]), "only_b": _choices([x.only_b for x in m]),
                  "p": _choices([f"p {_p(x.p)}" for x in m]), "significant": sum(x.significant for x in m),
                  "pairs": len(m)} if m else None
        return say("q3", "analysis", r=self, verdict=verdict, errors=errors, paired=paired,
                   test_images=data.TEST_SIZE, slower=self.slower, conditions=self.inference_conditions,
                   keypoints=self.keypoints, theirs=self._theirs(), gaps=self.class_gaps())

    def _theirs(self) -> str:
        return say("q3", "theirs", reported=self.reported, search=self.search)

    def headlines(self) -> list[tuple]:
        n = len(self.seeds)
        return [(f"LeNet, best setting of 2, {self.cnn.train_images:,} images (mean of {n} seeds)",
                 pct(self.cnn.test_acc), ""),
                (f"SIFT-BoVW-SVM, {self.bovw.train_images:,} images (mean of {n} seeds)", pct(self.bovw.test_acc),
                 self.reported or ""),
                ("CNN minus BoVW, 95% interval", f"{bracketed(self.gap)}: {self.verdict}", "")]

    @property
    def verdict(self) -> str:
        return judged(self.gap, self.cnn.short, self.bovw.short)

    def summary(self) -> dict:
        cnn, base, gap, best = self.cnn, self.bovw, self.gap, self.chosen
        return {"cnn_setting": cnn.name, "cnn_test_acc_mean": cnn.test_acc, "cnn_test_acc_std": cnn.test_acc_std,
                "cnn_minus_bovw": gap.diff, "cnn_minus_bovw_ci95": gap.ci95,
                "cnn_minus_bovw_record": record(gap, self.cnn.short, self.bovw.short),
                "cnn_test_accs": [float(a) for a in self.cnn_accs],
                "mcnemar_p": [m.p for m in self.mcnemar],
                "cnn_train_seconds": float(cnn.train_seconds),
                "cnn_inference_ms_per_image": float(cnn.inference_ms_per_image),
                "bovw_test_acc_mean": base.test_acc, "bovw_test_acc_std": base.test_acc_std,
                "bovw_test_accs": [float(a) for a in self.bovw_accs],
                "bovw_train_seconds": float(base.train_seconds),
                "bovw_inference_ms_per_image": float(base.inference_ms_per_image),
                "bovw_feature_dim": int(base.feature_dim), "bovw_setting": {k: self.bovw_config[k] for k in SETTING},
                "train_images": {"cnn": int(cnn.train_images), "bovw": int(base.train_images)},
                "search": {"trials": len(self.search), "seed": self.search_seed, "images": self.search_images,
                           "scored_on": self.search_scored_on, "space": self.space, "best": int(best.trial),
                           "best_setting": self.setting(best.trial), "best_accuracy": float(best.accuracy),
                           "tied": self.tied, "accuracies": [float(a) for a in self.search.accuracy]}}


# the searched settings as table columns, and in the protocol's list of choices
COLUMNS = {"upscale": "size, px", "step": "step, px", "patch": "keypoint", "words": "words", "levels": "levels",
           "kmeans_sample": "k-means sample", "power": "power", "feature_map": "map", "C": "C"}
SPACE_WORDS = {"upscale": "the image resized to", "step": "grid step", "patch": "keypoint size", "words": "words",
               "levels": "pyramid levels", "kmeans_sample": "k-means sample", "power": "power",
               "feature_map": "feature map", "C": "SVM C"}


def _choices(values, last: str = "and") -> str:
    """``3, 4 and 5`` (``last``: the word before the last value)."""
    words = [f"{v:,}" if isinstance(v, int) else f"{v:g}" if isinstance(v, float) else str(v) for v in values]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + f" {last} " + words[-1]


def _p(p: float) -> str:
    return "< 0.0001" if p < 1e-4 else f"= {p:.2g}"


QUESTION = Question("q3", Section, runs,
                    lambda params, store, needed: result(params, store, needed["q2"]), needs=("q2",),
                    stages=(Stage("q3 baseline", ("q3",), second_stage),), check=check)
