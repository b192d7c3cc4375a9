"""One result object per question: its numbers, the statistics derived from them, every verdict the
report states, and the report's text, tables and figure descriptions rendered from them.

The objects are plain data (frames and numbers, built by ``experiments`` from the run store, or by
hand in the tests), so each verdict can be checked against inputs whose right answer is known.
Frames hold fractions with snake_case columns for the figures; ``table()`` gives what a reader sees:
formatted values under human column names with units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import pandas as pd

from . import stats
from .data import TRAIN_SIZE, VALIDATION_SIZE

# What the assignment printed for the same questions: the figures to beat.
ASSIGNMENT = {"q1": 0.990, "q2": 0.9905, "q3": "~80%", "q5": {600: 0.8183, 60_000: 0.9867},
              "q6_vit": {6_000: 0.9429, 60_000: 0.9744}}
GOALS = {6_000: 0.95, 60_000: 0.98}  # this report's goals for the ViT (question 6)
OPTIMIZER_NAMES = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}


def size_key(size: int) -> str:
    """summary.json's name for a training-set size: the number of images, except that the whole
    training set is ``"60000"`` under either protocol, also when its 5,000 validation images were
    held out and 55,000 trained on (summary.json's ``validation`` says how many were)."""
    return str(TRAIN_SIZE if size == TRAIN_SIZE - VALIDATION_SIZE else size)


def pct(x: float, digits: int = 2) -> str:
    return f"{100 * x:.{digits}f}%"


def pm(mean: float, std: float, digits: int = 2) -> str:
    """``mean ± std`` in percent, never broken across lines; the mean alone where there is no spread
    (a single seed)."""
    if std is None or pd.isna(std):
        return pct(mean, digits)
    return f"{100 * mean:.{digits}f}\u00a0±\u00a0{100 * std:.{digits}f}%"  # no line break inside


def points(x: float, digits: int = 2) -> str:
    """A difference of accuracies in percentage points, with its sign."""
    return f"{100 * x:+.{digits}f}"


def plural(n: int, word: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def training_set(train_subset: int | None, validation: int = 0) -> str:
    """What "the full training set" is in this report: 60,000 images (less the validation split),
    or a subset standing in."""
    if train_subset is not None:
        return f"{train_subset:,} (standing in for 60,000)"
    return "60,000" if not validation else f"{60_000 - validation:,} (60,000 less the {validation:,} validation images)"


SELECTED_BY = {"val_acc": "validation", "test_acc": "test"}


def interval(d: stats.Difference, digits: int = 2) -> str:
    """A difference over seeds in points with its 95% interval: ``+0.21 points (95% CI −0.05 to +0.47)``."""
    if math.isnan(d.lo):
        return f"{points(d.diff, digits)} points (no interval: one run a side)"
    return f"{points(d.diff, digits)} points (95% interval {points(d.lo, digits)} to {points(d.hi, digits)})"


def setting_label(s: dict) -> str:
    """A hyperparameter setting in a few words: ``adam lr=0.002 bs=64 cosine``."""
    parts = [s["optimizer"], f"lr={s['lr']:g}", f"bs={s['batch_size']}"]
    if s.get("momentum"):
        parts.append(f"m={s['momentum']:g}")
    if s.get("weight_decay"):
        parts.append(f"wd={s['weight_decay']:g}")
    if s.get("schedule", "constant") != "constant":
        parts.append(s["schedule"])
    return " ".join(parts)


def _mean_std_column(frame: pd.DataFrame) -> list[str]:
    return [pm(m, s) for m, s in zip(frame["mean"], frame["std"])]


# ---------------------------------------------------------------- 1


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
cross-entropy per image."""

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
            "seconds": h.seconds.map("{:.1f}".format),
        })

    def analysis(self) -> str:
        h, last, best = self.history, self.last, self.lowest_test_loss
        tail = ", so the last epochs mostly fit the training set more tightly" if self.overfits else ""
        return f"""After {plural(len(h), 'epoch')} LeNet reaches **{pct(last.test_acc)}** on the test set (the assignment
reported {pct(ASSIGNMENT['q1'], 1)} after 10 epochs). Training loss goes from {h.train_loss.iloc[0]:.4f} to
{last.train_loss:.4f}; test loss is lowest at epoch {int(best.epoch)} ({best.test_loss:.4f}) and ends at
{last.test_loss:.4f}{tail}. Train accuracy ends at {pct(last.train_acc)} against {pct(last.test_acc)} on the
test set."""

    def summary(self) -> dict:
        return {"test_acc": float(self.last.test_acc), "test_loss": float(self.last.test_loss),
                "best_test_acc": float(self.history.test_acc.max()), "epochs": len(self.history)}


# ---------------------------------------------------------------- 2


STUDY_PARAMETERS = ("lr", "batch_size", "optimizer", "weight_decay")


@dataclass
class Q2Result:
    """LeNet under several settings (each over seeds), and a random-search study of the space."""

    runs: pd.DataFrame  # one row per run: setting (1, 2, ...), label, reported, seed, test_acc, val_acc, seconds
    study: pd.DataFrame  # one row per trial: optimizer, lr, batch_size, weight_decay, momentum (NaN), test_acc, val_acc
    epochs: int
    study_epochs: int
    seeds: list
    selected_by: str = "val_acc"  # the accuracy that chooses the best setting: val_acc or test_acc
    train_size: int = 60_000
    train_subset: int | None = None
    validation: int = 0  # images held out of every run to choose on
    retrained: pd.DataFrame | None = None  # the best setting retrained on all the images: seed, test_acc, train_images

    @property
    def decider(self) -> str:
        """'validation' or 'test': which images chose the best setting."""
        return SELECTED_BY[self.selected_by]

    @property
    def accuracy_label(self) -> str:
        return f"{self.decider} accuracy (%)"

    @cached_property
    def settings(self) -> pd.DataFrame:
        """One row per setting, in order: setting, label, mean and std (test), val_mean, val_std,
        count, reported, seconds (mean per run)."""
        return (self.runs.groupby(["setting", "label"], sort=False)
                .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), val_mean=("val_acc", "mean"),
                     val_std=("val_acc", "std"), count=("test_acc", "count"), reported=("reported", "first"),
                     seconds=("seconds", "mean"))
                .reset_index())

    @cached_property
    def ranked(self) -> pd.DataFrame:
        """The settings by the deciding accuracy's mean, highest first (the first of equals first)."""
        column = "val_mean" if self.selected_by == "val_acc" else "mean"
        return self.settings.sort_values(column, ascending=False, kind="stable")

    @property
    def best(self) -> pd.Series:
        return self.ranked.iloc[0]

    @property
    def second(self) -> pd.Series:
        return self.ranked.iloc[1]

    @property
    def weakest(self) -> pd.Series:
        return self.ranked.iloc[-1]

    @property
    def scored(self) -> pd.Series:
        """The best setting's test accuracies, one per seed, as the report scores it: those of its runs
        retrained on the whole training set where there are any, else those of its runs."""
        if self.retrained is not None:
            return self.retrained.test_acc
        return self.runs.loc[self.runs.setting == self.best.setting, "test_acc"]

    def _accs(self, setting, column: str) -> list:
        return list(self.runs.loc[self.runs.setting == setting, column])

    def margin(self, column: str | None = None) -> stats.Difference:
        """The best setting minus the second best over seeds, in ``column`` (default: the deciding one)."""
        column = column or self.selected_by
        return stats.difference(self._accs(self.best.setting, column), self._accs(self.second.setting, column))

    @cached_property
    def importance(self) -> dict:
        """fANOVA importance of each searched hyperparameter for the deciding accuracy (summing to 1),
        then momentum's within the SGD trials (``study.importances``)."""
        from . import study

        settings = [{k: (r[k] if k != "momentum" else r.get("momentum")) for k in (*STUDY_PARAMETERS, "momentum")
                     if not (k == "momentum" and pd.isna(r.get("momentum")))}
                    for r in self.study.to_dict("records")]
        for s in settings:
            s["batch_size"] = int(s["batch_size"])
        return study.importances(settings, list(self.study[self.selected_by]))

    @property
    def ranked_parameters(self) -> list:
        """The searched hyperparameters, most important first."""
        return sorted(STUDY_PARAMETERS, key=lambda k: -self.importance[k])

    def protocol(self) -> str:
        if self.decider == "validation":
            rule = (f"The best setting is chosen by its mean accuracy on the {self.validation:,}-image validation split "
                    "(held out of every run's training images; the same for every run).")
            if self.retrained is not None:
                n = int(self.retrained.train_images.iloc[0])
                where = ("all 60,000 training images, validation images included" if n == 60_000 else
                         f"{n:,} images drawn afresh from all 60,000, validation images among them (the stand-in "
                         "for all of them)")
                rule += (f" It is then retrained on {where}, over the same seeds, and "
                         "the test images score those runs once; the table's test column is of the runs that chose "
                         "it, for comparison.")
            else:
                rule += (" The selected setting is not retrained on all 60,000 images: the runs trained on the "
                         "training part are the ones scored.")
        else:
            rule = "Under the assignment's protocol the best setting is chosen by test accuracy, the number it then reports."
        return f"""## 2. Hyperparameters

**Protocol.** LeNet trained with {len(self.settings)} settings of batch size, learning rate, optimizer,
momentum, weight decay and schedule ({plural(self.epochs, 'epoch')} each, on {training_set(self.train_subset) if self.train_subset else f'{self.train_size:,}'} images),
every setting over seeds {self.seeds}: bars show mean ± std of the final test accuracy, crosses the
single-run accuracy the assignment reported for its settings. {rule}"""

    def alt_settings(self) -> str:
        s = self.settings
        return (f"Horizontal bar chart of mean test accuracy for {len(s)} settings with error bars of one "
                f"standard deviation, from {pct(s['mean'].min())} to {pct(s['mean'].max())}; the setting chosen "
                f"on {self.decider} accuracy is {self.best.label}; crosses mark the assignment's single runs.")

    def table(self) -> pd.DataFrame:
        s = self.settings
        columns = {"#": s.setting.astype(int), "setting": s.label}
        if self.decider == "validation":
            columns["validation accuracy, mean ± std"] = [pm(m, d) for m, d in zip(s.val_mean, s.val_std)]
        columns.update({
            "test accuracy, mean ± std": _mean_std_column(s),
            "the assignment (1 run)": s.reported.map(lambda v: "" if pd.isna(v) else pct(v)),
            "seconds per run": s.seconds.map("{:.1f}".format),
        })
        return pd.DataFrame(columns)

    def analysis(self) -> str:
        best, second, margin = self.best, self.second, self.margin()
        test_margin = self.margin("test_acc")
        deciding = "val_mean" if self.decider == "validation" else "mean"
        clear = {"better": "a clear margin: the interval lies above zero",
                 "level": "not a clear margin: the interval includes zero, so the two are level within the seed noise",
                 "worse": "an interval below zero"}[margin.verdict]
        scored = pm(self.scored.mean(), self.scored.std())
        if self.retrained is not None:
            n = int(self.retrained.train_images.iloc[0])
            where = "all 60,000 images" if n == 60_000 else f"{n:,} images drawn from all 60,000"
            shown = (f"validation {pct(best['val_mean'])}; retrained on {where}, test **{scored}**; the runs that "
                     f"chose it scored {pct(best['mean'])}")
        elif self.decider == "validation":
            shown = f"validation {pct(best['val_mean'])}, test **{scored}**"
        else:
            shown = f"test **{scored}**"
        return f"""Chosen by **{self.decider}** accuracy, the best setting is **{best.label}** ({shown}).
Against the second best ({second.label}, {pct(second[deciding])} on {self.decider}) it leads by {interval(margin)}
on {self.decider} accuracy over {len(self.seeds)} seeds, {clear}; on the test images the same two differ by {interval(test_margin)}.
The weakest is {self.weakest.label} at {pct(self.weakest['mean'])} on the test set. The assignment's best was
{pct(ASSIGNMENT['q2'])} from one run of Adam lr 0.001, batch 64, weight decay 1e-4, chosen on the test set."""

    def study_protocol(self) -> str:
        t = self.study
        counts = t.optimizer.value_counts()
        return f"""**Which hyperparameters matter most?** A random search (Optuna's random sampler, seeded) draws
{len(t)} configurations over the whole space: learning rate 1e-4 to 1e-1 and weight decay 1e-6 to 1e-2
(log scales), batch size 32 to 512 (log scale), the optimizer ({', '.join(f'{OPTIMIZER_NAMES[o]} {n}' for o, n in counts.items())} draws)
and, for SGD, momentum 0.5 to 0.99. Each is one LeNet run of {plural(self.study_epochs, 'epoch')}. Functional
ANOVA (Hutter, Hoos and Leyton-Brown, 2014; Optuna's evaluator) fits a random forest to the
{self.decider} accuracies and splits their variance into the share each hyperparameter explains
on its own; momentum's share is computed among the SGD trials."""

    def alt_curves(self) -> str:
        t = self.study
        best = t.loc[t[self.selected_by].idxmax()]
        return (f"Scatter plots of {self.decider} accuracy against learning rate on a log axis, one panel per optimizer, "
                f"points coloured by batch size; {len(t)} trials from {pct(t[self.selected_by].min(), 1)} to "
                f"{pct(t[self.selected_by].max(), 1)} (best: {best.optimizer} lr {best.lr:.2g}, batch {int(best.batch_size)}).")

    def alt_importance(self) -> str:
        return "Bar chart of fANOVA importance: " + "; ".join(f"{k} {pct(v, 1)}" for k, v in self.importance.items()) + "."

    def best_lr(self) -> pd.DataFrame:
        """Per optimizer: trials, the best trial's learning rate and accuracy, and the accuracy range."""
        t, col = self.study, self.selected_by
        rows = []
        for opt, group in t.groupby("optimizer", sort=False):
            top = group.loc[group[col].idxmax()]
            rows.append({"optimizer": opt, "trials": len(group), "best_lr": float(top.lr), "best": float(top[col]),
                         "worst": float(group[col].min())})
        return pd.DataFrame(rows)

    def study_analysis(self) -> str:
        ranked = self.ranked_parameters
        imp = self.importance
        lines = "\n".join(f"- **{OPTIMIZER_NAMES[r.optimizer]}** ({plural(r.trials, 'trial')}): best at lr {r.best_lr:.2g} "
                          f"({pct(r.best)}), worst {pct(r.worst)}" for r in self.best_lr().itertuples())
        within = imp.get("momentum (within SGD)")
        momentum = "" if within is None else f" Among the SGD trials, momentum explains {pct(within, 1)}."
        return f"""**{ranked[0]}** matters most here: it explains **{pct(imp[ranked[0]], 1)}** of the variance of the
{self.decider} accuracy, then {ranked[1]} ({pct(imp[ranked[1]], 1)}), {ranked[2]} ({pct(imp[ranked[2]], 1)}) and
{ranked[3]} ({pct(imp[ranked[3]], 1)}).{momentum} Per optimizer:

{lines}

The curves show why a single share hides an interaction: each optimizer has its own good range
of learning rates. Adaptive optimizers (Adam, RMSprop) rescale each parameter's step, so their
good range sits lower; momentum SGD moves as far as the raw gradient times the learning rate and
needs a larger one. With a fixed number of epochs a larger batch means fewer updates, so batch
size and learning rate act together through the size and number of steps."""

    def summary(self) -> dict:
        best = self.best
        return {"best_setting": best.label, "selected_by": self.decider,
                "best_val_acc_mean": float(best["val_mean"]) if self.decider == "validation" else None,
                "best_test_acc_mean": float(self.scored.mean()), "best_test_acc_std": float(self.scored.std()),
                "best_retrained": self.retrained is not None,
                "seeds": len(self.seeds), "trials": len(self.study),
                "importance": {k: float(self.importance[k]) for k in STUDY_PARAMETERS},
                "momentum_importance_within_sgd": self.importance.get("momentum (within SGD)"),
                "best_minus_second": self.margin().diff, "best_minus_second_ci95": self.margin().ci95}


# ---------------------------------------------------------------- 3


@dataclass
class Method:
    """One side of question 3's comparison, as measured on this machine."""

    name: str  # as in summary.json: the CNN's with its setting
    short: str  # a column name for tables and figures
    test_acc: float
    test_acc_std: float  # NaN: one run
    runs: int
    train_seconds: float  # mean per run
    inference_ms_per_image: float
    learned_parameters: int
    feature_dim: int  # features before the classifier


@dataclass
class Q3Result:
    """The best setting of question 2 against the SIFT-BoVW-SVM baseline."""

    cnn: Method
    bovw: Method
    cnn_accs: list  # the CNN's test accuracy for each seed
    mcnemar: stats.McNemar | None  # the first seed's CNN against the baseline on the test images; None: no predictions stored
    per_class: pd.DataFrame  # digit, then one column of test accuracy per method (its short name)
    bovw_config: dict
    bovw_seconds: float
    train_size: int
    device_name: str

    @property
    def gap(self) -> stats.Difference:
        """CNN minus baseline with a 95% interval over the CNN's seeds (the deterministic baseline is
        one run: the CNN's seed variance stands in for its spread, ``stats.difference``)."""
        return stats.difference(self.cnn_accs, [self.bovw.test_acc])

    @property
    def error_ratio(self) -> float:
        """Test errors of the baseline per test error of the CNN."""
        return (1 - self.bovw.test_acc) / max(1e-9, 1 - self.cnn.test_acc)

    @property
    def hardest_digit(self) -> int:
        """The digit the baseline gets wrong most often."""
        return int(self.per_class.set_index("digit")[self.bovw.short].idxmin())

    def protocol(self) -> str:
        c = self.bovw_config
        retrained = (" (the runs that chose the setting, not those retrained with the validation images, so that "
                     "both methods see the same data)" if c.get("validation") else "")
        return f"""## 3. The best CNN against SIFT bag-of-visual-words + SVM

**Protocol.** The best setting of section 2 ({self.cnn.runs} seeds; inference timed with the first seed's
model on the 10,000 test images) against the classical pipeline, trained on the same {self.train_size:,}
images{retrained}: dense SIFT on a grid every {c['step']} px of the digit upscaled ×{c['upscale']} (keypoint size
{c['patch']:g}, RootSIFT), a vocabulary of {c['words']:,} visual words (k-means on {c['kmeans_sample']:,}
sampled descriptors), a spatial-pyramid histogram of word counts per image ({c['levels']} levels,
{self.bovw.feature_dim:,} features, square-rooted and L2-normalized) and a linear SVM. Learned
parameters: the vocabulary ({c['words']:,} × 128) and the SVM's weights. Times are wall-clock seconds on
this machine ({self.device_name}); the CNN's training time includes its per-epoch test pass."""

    def table(self) -> pd.DataFrame:
        """One row per measure, one column per method: narrow enough for a page."""
        rows = {
            "test accuracy": lambda m: pm(m.test_acc, m.test_acc_std),
            "runs (seeds)": lambda m: f"{m.runs}",
            "training time, seconds per run": lambda m: f"{m.train_seconds:.1f}",
            "inference, ms per image": lambda m: f"{m.inference_ms_per_image:.3f}",
            "learned parameters": lambda m: f"{m.learned_parameters:,}",
            "features before the classifier": lambda m: f"{m.feature_dim:,}",
        }
        return pd.DataFrame({"measure": list(rows),
                             **{m.short: [fmt(m) for fmt in rows.values()] for m in (self.cnn, self.bovw)}})

    def alt(self) -> str:
        pc = self.per_class.set_index("digit")
        return (f"Grouped bar chart of test accuracy per digit 0 to 9 for {self.cnn.short} and {self.bovw.short}; "
                f"the baseline's lowest is digit {self.hardest_digit} at {pct(pc[self.bovw.short].min())}, "
                f"the CNN's lowest {pct(pc[self.cnn.short].min())}.")

    def analysis(self) -> str:
        cnn, base, gap, c = self.cnn, self.bovw, self.gap, self.bovw_config
        if gap.verdict == "better":
            verdict = (f"The CNN is more accurate: {pct(cnn.test_acc)} against {pct(base.test_acc)}, {interval(gap)} "
                       f"over {len(self.cnn_accs)} seeds; the baseline makes {self.error_ratio:.1f}× as many test errors.")
        elif gap.verdict == "worse":
            verdict = (f"The baseline is more accurate: {pct(base.test_acc)} against {pct(cnn.test_acc)} for the CNN, "
                       f"{interval(gap)} over {len(self.cnn_accs)} seeds; the CNN makes {1 / self.error_ratio:.1f}× as "
                       f"many test errors.")
        else:
            verdict = (f"The two are level: {pct(cnn.test_acc)} for the CNN against {pct(base.test_acc)} for the "
                       f"baseline, {interval(gap)} over {len(self.cnn_accs)} seeds, an interval that includes zero.")
        if self.mcnemar is not None:
            m = self.mcnemar
            verdict += (f" On the same 10,000 test images, the first seed's CNN alone is right on {m.only_a} that the "
                        f"baseline gets wrong, the baseline alone on {m.only_b}: McNemar's exact test gives p {'< 0.0001' if m.p < 1e-4 else f'= {m.p:.2g}'} "
                        f"({'a significant' if m.significant else 'no significant'} difference at the 5% level).")
        slower = base.inference_ms_per_image / cnn.inference_ms_per_image
        return f"""{verdict} The baseline's hardest digit is {self.hardest_digit}. The CNN trains in
{cnn.train_seconds:.0f} s against {base.train_seconds:.0f} s for the baseline, and classifies an image in
{cnn.inference_ms_per_image:.3f} ms against {base.inference_ms_per_image:.3f} ms ({slower:.0f}× longer); it has
{cnn.learned_parameters:,} learned parameters against {base.learned_parameters:,}.

The two differ in what is learned. SIFT describes local gradient orientations with a fixed,
hand-designed recipe; k-means learns a vocabulary of those patterns without labels, the pyramid
keeps roughly where each occurs, and the SVM is the only stage that sees a label. The CNN learns
its filters, their combinations and the classifier together from the labels, so its features are
shaped to separate exactly these ten classes, with {cnn.feature_dim} features before its last layer
against the baseline's {base.feature_dim:,}. A dense grid of small SIFT windows on MNIST's clean,
centred digits is a strong representation, which is why a careful baseline comes so much closer
than the keypoint-based versions often reported (70-80%). At test time the baseline must compute
{c['upscale'] // c['step']}² descriptors per image and encode them against the vocabulary, which is where
its inference time goes; the CNN needs a few small convolutions and matrix products."""

    def summary(self) -> dict:
        cnn, base = self.cnn, self.bovw
        gap = self.gap
        return {"cnn_setting": cnn.name, "cnn_test_acc": float(cnn.test_acc),
                "cnn_minus_bovw": gap.diff, "cnn_minus_bovw_ci95": gap.ci95,
                "mcnemar_p": None if self.mcnemar is None else self.mcnemar.p,
                "cnn_train_seconds": float(cnn.train_seconds),
                "cnn_inference_ms_per_image": float(cnn.inference_ms_per_image),
                "bovw_test_acc": float(base.test_acc), "bovw_seconds": float(self.bovw_seconds),
                "bovw_train_seconds": float(base.train_seconds),
                "bovw_inference_ms_per_image": float(base.inference_ms_per_image),
                "bovw_feature_dim": int(base.feature_dim)}


# ---------------------------------------------------------------- 4


MODEL_NAMES = {"lenet": "LeNet", "double_conv_lenet": "doubled conv layers", "vit": "ViT"}


@dataclass
class Q4Result:
    """LeNet against the same network with its conv layers doubled, over seeds."""

    runs: pd.DataFrame  # one row per run: model, seed, test_acc, parameters, seconds
    curves: pd.DataFrame  # per epoch and run: model, seed, epoch, test_acc, ...
    epochs: int
    seeds: list
    train_subset: int | None = None
    validation: int = 0

    @cached_property
    def models(self) -> pd.DataFrame:
        """One row per model (index: its name): mean, std, count, parameters, seconds_per_epoch."""
        return (self.runs.groupby("model", sort=False)
                .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), count=("test_acc", "count"),
                     parameters=("parameters", "first"), seconds=("seconds", "mean"))
                .assign(seconds_per_epoch=lambda f: f.seconds / self.epochs))

    @property
    def gap(self) -> stats.Difference:
        """Doubled minus plain LeNet over seeds, with its 95% Welch interval."""
        r = self.runs
        return stats.difference(r.loc[r.model == "double_conv_lenet", "test_acc"], r.loc[r.model == "lenet", "test_acc"])

    def protocol(self) -> str:
        return f"""## 4. Doubling the convolutional layers

**Protocol.** LeNet against the same network with a second 5×5 convolution (padding 2, ReLU) after
each of its two convolutions, trained identically: Adam lr 0.001, batch 64, {plural(self.epochs, 'epoch')},
{training_set(self.train_subset, self.validation)} images, seeds {self.seeds}. Lines are the mean test accuracy per epoch,
bands ±1 std."""

    def alt(self) -> str:
        m = self.models
        return ("Line chart of mean test accuracy per epoch with ±1 std bands: " + "; ".join(
            f"{MODEL_NAMES[name]} ends at {pct(row['mean'])}" for name, row in m.iterrows()) + ".")

    def table(self) -> pd.DataFrame:
        m = self.models.reset_index()
        return pd.DataFrame({
            "model": m.model.map(MODEL_NAMES),
            "test accuracy, mean ± std": _mean_std_column(m),
            "seeds": m["count"].astype(int),
            "parameters": m.parameters.map("{:,}".format),
            "seconds per epoch": m.seconds_per_epoch.map("{:.2f}".format),
        })

    def analysis(self) -> str:
        m, gap = self.models, self.gap
        a, d = m.loc["lenet"], m.loc["double_conv_lenet"]
        within = ("an interval that excludes zero" if gap.verdict != "level"
                  else "an interval that includes zero, so not a clear difference")
        reading = {
            "better": "Here that extra depth pays off: the deeper network finds features that separate the "
                      "digits better within the same number of epochs.",
            "level": "On MNIST, where LeNet already separates the classes almost perfectly, there is little "
                     "left for them to fix: most remaining errors are ambiguous or badly written digits (see "
                     "the gallery at the end), and the added capacity mostly costs time.",
            "worse": "Here the deeper network does worse: more layers to fit in the same number of epochs, "
                     "with the same learning rate, leave it less converged.",
        }[gap.verdict]
        return f"""Doubling the conv layers changes the final test accuracy by **{interval(gap)}** over
{len(self.seeds)} seeds ({pm(a['mean'], a['std'])} → {pm(d['mean'], d['std'])}), {within}.
It adds {int(d.parameters - a.parameters):,} parameters ({100 * (d.parameters / a.parameters - 1):.0f}% more)
and makes an epoch {d.seconds_per_epoch / a.seconds_per_epoch:.2f}× as long
({a.seconds_per_epoch:.2f} s → {d.seconds_per_epoch:.2f} s).

The extra layers deepen the feature hierarchy and widen each unit's receptive field without
shrinking the maps (padding 2), while the classifier head stays the same. {reading}"""

    def summary(self) -> dict:
        m = self.models
        a, d = m.loc["lenet"], m.loc["double_conv_lenet"]
        return {"lenet_test_acc_mean": float(a["mean"]), "lenet_test_acc_std": float(a["std"]),
                "double_conv_test_acc_mean": float(d["mean"]), "double_conv_test_acc_std": float(d["std"]),
                "double_minus_lenet": self.gap.diff, "double_minus_lenet_ci95": self.gap.ci95,
                "lenet_parameters": int(a.parameters), "double_conv_parameters": int(d.parameters),
                "lenet_seconds_per_epoch": float(a.seconds_per_epoch),
                "double_conv_seconds_per_epoch": float(d.seconds_per_epoch)}


# ---------------------------------------------------------------- 5


def per_class_counts(size: int, full: bool) -> str:
    """Images of each digit in a training set of ``size`` (``full``: all 60,000, unbalanced)."""
    return "5,421 to 6,742 (unbalanced)" if full else f"{size // 10:,} each"


@dataclass
class Q5Result:
    """Test accuracy against training-set size, at equal epochs and at equal optimization steps."""

    runs: pd.DataFrame  # one row per run: protocol (equal_epochs, equal_steps), size, full, seed, epochs, test_acc
    epochs: int
    seeds: list

    def _table(self, protocol: str) -> pd.DataFrame:
        r = self.runs
        if protocol == "equal_steps":  # the largest size is its own reference: its equal-epoch runs
            largest = r["size"].max()
            r = pd.concat([r[r.protocol == "equal_steps"],
                           r[(r.protocol == "equal_epochs") & (r["size"] == largest) & r.seed.isin(self.seeds)]])
        else:
            r = r[r.protocol == protocol]
        return (r.assign(per_class=[per_class_counts(n, f) for n, f in zip(r["size"], r.full)])
                .groupby(["size", "per_class"], sort=True)
                .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), count=("test_acc", "count"),
                     epochs=("epochs", "first"))
                .reset_index())

    @property
    def epoch_runs(self) -> pd.DataFrame:
        """The runs at equal epochs."""
        return self.runs[self.runs.protocol == "equal_epochs"]

    @cached_property
    def sizes(self) -> pd.DataFrame:
        """Equal epochs: one row per size, ascending: size, per_class, mean, std, count, epochs."""
        return self._table("equal_epochs")

    @cached_property
    def steps(self) -> pd.DataFrame:
        """Equal steps: the same, every size trained for as many steps as the largest."""
        return self._table("equal_steps")

    @property
    def gains(self) -> list[float]:
        s = self.sizes
        return stats.gains_per_tenfold(list(s["size"]), list(s["mean"]))

    @property
    def saturates(self) -> bool:
        s = self.sizes
        return stats.saturates(list(s["size"]), list(s["mean"]))

    @property
    def spread_shrinks(self) -> bool:
        """Whether the seeds agree more at the largest size than at the smallest."""
        s = self.sizes
        return bool(s["std"].iloc[-1] < s["std"].iloc[0])

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
        return f"""## 5. Training-set size

**Protocol.** LeNet, Adam lr 0.001, batch 64, trained on balanced subsets (the same number of images
of every digit, drawn with the run's seed) and on the full set, seeds {self.seeds}, under two protocols
side by side. **Equal epochs** (the assignment's): every size for {plural(self.epochs, 'epoch')}, so a smaller set
also gets fewer updates. **Equal steps**: every size for as many optimization steps as the largest
set's {plural(self.epochs, 'epoch')} ({', '.join(f'{int(r.size):,} images: {int(r.epochs):,} epochs' for r in self.steps.itertuples())}),
scored on the test set after the last. The full set is not balanced: its digits have 5,421 (five)
to 6,742 (one) images each."""

    def alt(self) -> str:
        e, q = self.sizes, self.steps
        return ("Line chart of test accuracy against training-set size on a log axis, mean ± std with one dot per "
                "seed, one line per protocol. Equal epochs: " + ", ".join(f"{n:,} {pct(m)}" for n, m in zip(e["size"], e["mean"]))
                + ". Equal steps: " + ", ".join(f"{n:,} {pct(m)}" for n, m in zip(q["size"], q["mean"])) + ".")

    def table(self) -> pd.DataFrame:
        e, q = self.sizes, self.steps.set_index("size")
        return pd.DataFrame({
            "training images": e["size"].map("{:,}".format),
            "images per digit": e.per_class,
            "equal epochs: test accuracy": _mean_std_column(e),
            "seeds": e["count"].astype(int),
            "equal steps: epochs": [f"{int(q.loc[n, 'epochs']):,}" if n in q.index else "" for n in e["size"]],
            "equal steps: test accuracy": [pm(q.loc[n, "mean"], q.loc[n, "std"]) if n in q.index else "" for n in e["size"]],
        })

    def assignment_sentence(self) -> str:
        """Where the assignment's single 600-image run falls among this report's seeds (measured)."""
        small = self.smallest_runs()
        size = int(self.sizes["size"].iloc[0])
        if size not in ASSIGNMENT["q5"]:
            return ""
        theirs = ASSIGNMENT["q5"][size]
        reach = int((small >= theirs).sum())
        where = ("inside the range of our seeds, so the luck of one draw of images and initial weights can explain the difference"
                 if small.min() <= theirs <= small.max() else
                 "outside the range of our seeds, so more than the luck of one draw separates the two")
        return (f" At {size:,} images and equal epochs, {len(small)} seeds range from {pct(small.min())} to "
                f"{pct(small.max())} (mean {pct(small.mean())}); {reach} of {len(small)} reach the assignment's single run "
                f"of {pct(theirs)}, which lies {where}.")

    def analysis(self) -> str:
        s, q = self.sizes, self.steps
        first, last = s.iloc[0], s.iloc[-1]
        steps = [f"{s['size'].iloc[i]:,} → {s['size'].iloc[i + 1]:,}: {points(s['mean'].iloc[i + 1] - s['mean'].iloc[i])} "
                 f"points ({100 * g:+.1f} per tenfold)" for i, g in enumerate(self.gains)]
        shape = ("The gain per tenfold more data shrinks as the set grows: accuracy saturates, each new image "
                 "being more likely to repeat a writing style the network has already seen. " if self.saturates else
                 "Here the gain per tenfold more data does not shrink: the network is still far from saturated. ")
        seeds = ("The spread between seeds shrinks too: " if self.spread_shrinks
                 else "The spread between seeds does not shrink here, but ")
        reference = ", ".join(f"{n:,} {pct(v)}" for n, v in ASSIGNMENT["q5"].items())
        kind = (" The largest set also differs in kind: it is all the data, with its uneven class counts."
                if self.runs.loc[self.runs["size"] == last["size"], "full"].all() else "")
        share = self.steps_share()
        split = (f"Trained for as many steps as the largest set, {first['size']:,} images reach "
                 f"**{pm(q['mean'].iloc[0], q['std'].iloc[0])}** instead of {pct(first['mean'])}: equal steps close "
                 f"{pct(share, 0)} of the gap to {last['size']:,} images, so that much of the small-set gap at equal epochs "
                 f"is too few updates, and the rest is too little data.") if not math.isnan(share) else ""
        return f"""At equal epochs, accuracy grows from **{pm(first['mean'], first['std'])}** with {first['size']:,} images to
**{pm(last['mean'], last['std'])}** with {last['size']:,} (the assignment, one run each: {reference}).
Gain per step: {'; '.join(steps)}. {shape}{seeds}with few images the network sees few writing styles
per digit and, at a fixed number of epochs, takes few optimization steps, so which images were drawn
and how the weights started matter more.{kind}

{split}{self.assignment_sentence()}"""

    def summary(self) -> dict:
        e, q = self.sizes, self.steps
        small = self.smallest_runs()
        return {"equal_epochs": {"test_acc_mean": {size_key(r.size): float(r.mean) for r in e.itertuples()},
                                 "test_acc_std": {size_key(r.size): float(r.std) for r in e.itertuples()},
                                 "seeds": {size_key(r.size): int(r.count) for r in e.itertuples()}},
                "equal_steps": {"test_acc_mean": {size_key(r.size): float(r.mean) for r in q.itertuples()},
                                "test_acc_std": {size_key(r.size): float(r.std) for r in q.itertuples()},
                                "epochs": {size_key(r.size): int(r.epochs) for r in q.itertuples()}},
                "smallest_test_acc_min": float(small.min()), "smallest_test_acc_max": float(small.max())}


# ---------------------------------------------------------------- 6


VIT_SHAPE = ("patch_size", "dim", "depth", "heads", "mlp_dim", "norm_first")


def vit_shape(kw: dict) -> dict:
    """The ViT's shape under ``kw``: its constructor's defaults, then ``kw``."""
    import inspect

    from .models import ViT

    defaults = {k: p.default for k, p in inspect.signature(ViT.__init__).parameters.items() if k in VIT_SHAPE}
    return {**defaults, **{k: v for k, v in kw.items() if k in VIT_SHAPE}}


def describe_vit(shape: dict) -> str:
    p = shape["patch_size"]
    return (f"the image cut into {(28 // p) ** 2} patches of {p}×{p} pixels, each embedded linearly into "
            f"{shape['dim']} dimensions, a learned CLS token and learned position embeddings, an encoder of "
            f"**{shape['depth']} layers** ({shape['heads']} heads, MLP {shape['mlp_dim']}, "
            f"{'pre' if shape['norm_first'] else 'post'}-norm) and an MLP head on the CLS token")


@dataclass
class Q6Result:
    """The ViT against LeNet on the same data and epochs, under each recipe."""

    runs: pd.DataFrame  # one row per run: recipe, model, size, seed, test_acc, parameters, seconds
    curves: pd.DataFrame  # per epoch and run: recipe, model, size, seed, epoch, test_acc
    recipes: dict  # name -> run parameters (and 'vit'/'lenet' keyword arguments)
    epochs: int
    seeds: list
    selected_by: str = "val_acc"  # the accuracy that chooses the better recipe: val_acc or test_acc

    @property
    def decider(self) -> str:
        return SELECTED_BY[self.selected_by]

    @cached_property
    def table_frame(self) -> pd.DataFrame:
        """One row per recipe, model and size: mean, std (test), val_mean, count, parameters, seconds (mean per run)."""
        return (self.runs.groupby(["recipe", "model", "size"], sort=False)
                .agg(mean=("test_acc", "mean"), std=("test_acc", "std"), val_mean=("val_acc", "mean"),
                     count=("test_acc", "count"), parameters=("parameters", "first"), seconds=("seconds", "mean"))
                .reset_index())

    def accs(self, recipe: str, model: str, size: int, column: str = "test_acc") -> list:
        r = self.runs
        return list(r.loc[(r.recipe == recipe) & (r.model == model) & (r["size"] == size), column])

    def vit_minus_lenet(self, size: int, recipe: str | None = None) -> stats.Difference:
        """ViT minus LeNet in test accuracy over seeds at ``size`` under ``recipe`` (default: the better one)."""
        recipe = recipe or self.best_recipe
        return stats.difference(self.accs(recipe, "vit", size), self.accs(recipe, "lenet", size))

    @cached_property
    def sizes(self) -> list[int]:
        return sorted(int(s) for s in self.runs["size"].unique())

    def acc(self, recipe: str, model: str, size: int) -> float:
        return float(self.table_frame.set_index(["recipe", "model", "size"]).loc[(recipe, model, size), "mean"])

    @property
    def best_recipe(self) -> str:
        """The recipe under which the ViT's mean deciding accuracy (validation, or test under the
        assignment's protocol) is highest on the largest set (the first of equals)."""
        return max(self.recipes, key=lambda n: sum(self.accs(n, "vit", self.sizes[-1], self.selected_by)))

    def lenet_lead(self, size: int, recipe: str | None = None) -> float:
        recipe = recipe or self.best_recipe
        return self.acc(recipe, "lenet", size) - self.acc(recipe, "vit", size)

    @property
    def lead_shrinks(self) -> bool:
        """Whether LeNet's lead over the ViT (best recipe) is smaller on the largest set than on the smallest."""
        return self.lenet_lead(self.sizes[-1]) < self.lenet_lead(self.sizes[0])

    @property
    def goals_met(self) -> bool:
        """Whether the ViT under its best recipe reaches this report's goals at both sizes (the largest
        set against the 60,000-image goal, the smallest against the 6,000-image one)."""
        r = self.best_recipe
        return (self.acc(r, "vit", self.sizes[-1]) >= GOALS[60_000]
                and self.acc(r, "vit", self.sizes[0]) >= GOALS[6_000])

    def protocol(self) -> str:
        shapes = {name: vit_shape(recipe.get("vit") or {}) for name, recipe in self.recipes.items()}
        first = next(iter(shapes.values()))
        differ = [k for k in VIT_SHAPE if len({s[k] for s in shapes.values()}) > 1]
        shape = describe_vit(first)
        if differ:
            shape += " (the recipes differ in " + "; ".join(
                f"{k}: " + ", ".join(f"{s[k]} under {n}" for n, s in shapes.items()) for k in differ) + ")"
        vit = self.table_frame[self.table_frame.model == "vit"]
        parameters = " or ".join(f"{p:,}" for p in dict.fromkeys(vit.parameters))
        recipes = "\n".join(f"- **{name}**: " + ", ".join(f"{k}={v}" for k, v in recipe.items())
                            for name, recipe in self.recipes.items())
        depths = "/".join(str(d) for d in sorted({s["depth"] for s in shapes.values()}))
        return f"""## 6. A {depths}-layer Transformer (ViT) against LeNet

**Protocol.** A Vision Transformer: {shape} ({parameters} parameters). It is compared with LeNet on
the same data ({' and '.join(f'{s:,}' for s in self.sizes)} training images), for the same
{plural(self.epochs, 'epoch')}, under the same recipe, seeds {self.seeds}. The recipes (the model's own keyword arguments under
its name):

{recipes}

The assignment compared 10 ViT epochs with 5 LeNet epochs and ran a 6-layer encoder; here both
models get identical budgets."""

    def curves_at(self, size: int) -> pd.DataFrame:
        """The per-epoch curves of the runs on ``size`` images, ``run`` naming model and recipe."""
        c = self.curves[self.curves["size"] == size]
        return c.assign(run=c.model.map(MODEL_NAMES) + " / " + c.recipe)

    def alt(self, size: int) -> str:
        t = self.table_frame[self.table_frame["size"] == size]
        return (f"Line chart of test accuracy per epoch on {size:,} training images, one line per model and recipe: "
                + "; ".join(f"{MODEL_NAMES[r.model]} / {r.recipe} ends at {pct(r.mean)}" for r in t.itertuples()) + ".")

    def table(self) -> pd.DataFrame:
        t = self.table_frame
        return pd.DataFrame({
            "recipe": t.recipe,
            "model": t.model.map(MODEL_NAMES),
            "training images": t["size"].map("{:,}".format),
            **({"validation accuracy (mean)": t.val_mean.map(pct)} if self.decider == "validation" else {}),
            "test accuracy, mean ± std": _mean_std_column(t),
            "seeds": t["count"].astype(int),
            "parameters": t.parameters.map("{:,}".format),
            "seconds per run": t.seconds.map("{:.0f}".format),
        })

    def analysis(self) -> str:
        best, small, large = self.best_recipe, self.sizes[0], self.sizes[-1]
        words = {"better": "ViT ahead", "worse": "LeNet ahead", "level": "level"}
        lines = "\n".join(
            f"- **{name}**: " + "; ".join(
                f"{s:,} images: ViT {pct(self.acc(name, 'vit', s))} vs LeNet {pct(self.acc(name, 'lenet', s))}, "
                f"{interval(self.vit_minus_lenet(s, name))}: {words[self.vit_minus_lenet(s, name).verdict]}"
                for s in self.sizes)
            for name in self.recipes)
        vit_val = {n: sum(self.accs(n, "vit", large, "val_acc")) / max(1, len(self.accs(n, "vit", large))) for n in self.recipes}
        chosen = (f"chosen by the ViT's mean validation accuracy on {large:,} images ("
                  + ", ".join(f"{n} {pct(v)}" for n, v in vit_val.items()) + "); it is not retrained with the validation "
                  "images (its ViT runs are the report's costliest), so the test images score, once, the runs "
                  "trained without them"
                  if self.decider == "validation" else f"chosen by the ViT's test accuracy on {large:,} images, as the assignment chose")
        lead = {s: self.lenet_lead(s) for s in (small, large)}
        if lead[small] > 0 and lead[large] > 0:
            trend = (f"LeNet stays ahead under the {best} recipe, by {100 * lead[small]:.2f} points on {small:,} images "
                     f"and {100 * lead[large]:.2f} on {large:,}: "
                     + ("its lead shrinks as the data grows." if self.lead_shrinks
                        else "its lead does not shrink with more data here."))
        else:
            trend = (f"Under the {best} recipe the ViT is level with or ahead of LeNet at some size "
                     f"({points(-lead[small])} points on {small:,} images, {points(-lead[large])} on {large:,}).")
        reference = ASSIGNMENT["q6_vit"]
        return f"""{lines}

Each difference is over {len(self.seeds)} seeds with its 95% interval; "level" means the interval includes zero.

The better recipe for the ViT is **{best}**, {chosen}: test {pct(self.acc(best, 'vit', large))} on {large:,} images and
{pct(self.acc(best, 'vit', small))} on {small:,} (the assignment: {pct(reference[60_000])} and
{pct(reference[6_000])} with its 6-layer encoder on 60,000 and 6,000; goals for this report: at least
{pct(GOALS[60_000], 1)} on 60,000 and {pct(GOALS[6_000], 1)} on 6,000; {'met' if self.goals_met else 'not both met'} here).

{trend}

A convolution builds in what a Transformer must learn: that nearby pixels belong together
(locality) and that a stroke means the same thing wherever it appears (translation equivariance,
with pooling adding some invariance). The ViT sees patch vectors whose spatial relations it has to
infer from position embeddings learned from the data itself, so with {small:,} images it has little
evidence to learn them, and it needs more epochs to converge. Augmentation (small random shifts),
label smoothing, weight decay and a warm-up with cosine decay help the ViT because they supply some
of the invariance and regularization that the CNN gets from its architecture."""

    def summary(self) -> dict:
        best = self.best_recipe
        t = self.table_frame.set_index(["recipe", "model", "size"])
        out = {"recipe": best, "selected_by": self.decider, "epochs": self.epochs, "seeds": len(self.seeds),
               "recipes": {n: {f"{m}_{size_key(s)}_test_acc_mean": self.acc(n, m, s) for m in ("vit", "lenet")
                               for s in self.sizes} for n in self.recipes}}
        for m in ("vit", "lenet"):
            for s in self.sizes:
                out[f"{m}_{size_key(s)}_test_acc_mean"] = self.acc(best, m, s)
                out[f"{m}_{size_key(s)}_test_acc_std"] = float(t.loc[(best, m, s), "std"])
        for s in self.sizes:
            d = self.vit_minus_lenet(s)
            out[f"vit_minus_lenet_{size_key(s)}"], out[f"vit_minus_lenet_{size_key(s)}_ci95"] = d.diff, d.ci95
        return out


# ---------------------------------------------------------------- where the models fail


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

    def alt_gallery(self, n: int = 24) -> str:
        shown = self.errors.head(n)
        return (f"The first {len(shown)} misclassified test digits of {self.name}, each captioned true → predicted: "
                + ", ".join(f"{t}→{p}" for t, p in zip(shown.true, shown.predicted)) + ".")


@dataclass
class Failures:
    """Where the best CNN of question 2 and the ViT of question 6 go wrong."""

    models: list = field(default_factory=list)  # Mistakes, CNN first

    @staticmethod
    def text() -> str:
        return """## Where the models fail

Confusion matrices (correct predictions on the diagonal left blank) and the first misclassified
test digits, captioned *true → predicted*, for the best CNN of section 2 (first seed) and the ViT
trained on the largest set with its better recipe."""


# ---------------------------------------------------------------- headline numbers


def headlines(summary: dict, q1_epochs: int, q2_settings: int) -> pd.DataFrame:
    """The summary table: one row per headline number of ``summary`` (summary.json's content),
    labelled from the parameters that produced it, with the assignment's figure where it printed one."""
    q2, q3, q4, q5, q6 = (summary[q] for q in ("q2", "q3", "q4", "q5", "q6"))
    sizes = sorted({int(k.split("_")[1]) for k in q6 if k.startswith("vit_") and k.endswith("_test_acc_mean")})
    held_out = summary.get("validation", 0)

    def images(size) -> str:
        n = int(size)
        return f"{n:,} ({n - held_out:,} trained on, {held_out:,} held out)" if n == TRAIN_SIZE and held_out else f"{n:,}"

    def ci(d, lo_hi) -> str:
        return f"{points(d)} points [{points(lo_hi[0])}, {points(lo_hi[1])}]" if lo_hi[0] is not None and not pd.isna(lo_hi[0]) else points(d)

    rows = [(f"1. LeNet, {plural(q1_epochs, 'epoch')}", pct(summary["q1"]["test_acc"]), pct(ASSIGNMENT["q1"], 1)),
            (f"2. best of {q2_settings} settings, chosen on {q2['selected_by']}: {q2['best_setting']} "
             f"({'retrained with the validation images, ' if q2.get('best_retrained') else ''}mean of {q2['seeds']} seeds)",
             pct(q2["best_test_acc_mean"]), pct(ASSIGNMENT["q2"])),
            ("3. SIFT-BoVW-SVM", pct(q3["bovw_test_acc"]), ASSIGNMENT["q3"]),
            ("3. CNN minus BoVW, 95% interval", ci(q3["cnn_minus_bovw"], q3["cnn_minus_bovw_ci95"]), ""),
            ("4. LeNet (mean)", pct(q4["lenet_test_acc_mean"]), ""),
            ("4. doubled conv layers minus LeNet, 95% interval", ci(q4["double_minus_lenet"], q4["double_minus_lenet_ci95"]), ""),
            *[(f"5. {images(k)} training images, equal epochs (mean)", pct(v),
               pct(ASSIGNMENT["q5"][int(k)]) if int(k) in ASSIGNMENT["q5"] else "")
              for k, v in sorted(q5["equal_epochs"]["test_acc_mean"].items(), key=lambda kv: int(kv[0]))],
            *[(f"5. {images(k)} training images, equal steps (mean)", pct(v), "")
              for k, v in sorted(q5["equal_steps"]["test_acc_mean"].items(), key=lambda kv: int(kv[0]))],
            *[(f"6. ViT, {images(s)} images ({q6['recipe']} recipe, mean of {q6['seeds']} seeds)", pct(q6[f"vit_{s}_test_acc_mean"]),
               pct(ASSIGNMENT["q6_vit"][s]) + " (6 layers)" if s in ASSIGNMENT["q6_vit"] else "") for s in sizes],
            *[(f"6. ViT minus LeNet, {images(s)} images, 95% interval", ci(q6[f"vit_minus_lenet_{s}"], q6[f"vit_minus_lenet_{s}_ci95"]), "")
              for s in sizes]]
    return pd.DataFrame(rows, columns=["result", "mnistkit", "the assignment"])


def markdown(frame: pd.DataFrame) -> str:
    """``frame`` as a GitHub Markdown table (the README's results table is ``headlines`` through this)."""
    def row(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([row(frame.columns), row(["---"] * len(frame.columns)), *map(row, frame.itertuples(index=False))])
