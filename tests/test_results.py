"""Each question's result object on inputs whose right answer is known, without training."""

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mnistkit import data, stats, study
from mnistkit.questions import headlines, plan, q3, text
from mnistkit.questions.q1 import Q1Result
from mnistkit.questions.q2 import Q2Result
from mnistkit.questions.q2_study import StudyResult
from mnistkit.questions.q3 import Method, Q3Result
from mnistkit.questions.q4 import Q4Result
from mnistkit.questions.q5 import Q5Result
from mnistkit.questions.q6 import Q6Result
from mnistkit.questions.text import reported

ROOT = Path(__file__).resolve().parents[1]


def q2_result(selected_by="val_acc") -> Q2Result:
    """Setting 3 is best on the test set, setting 1 on the validation split."""
    runs = pd.DataFrame([
        {"setting": 1, "label": "adam lr=0.001 bs=64", "reported": 0.99, "seed": 0, "test_acc": 0.980, "val_acc": 0.995, "seconds": 4.0},
        {"setting": 1, "label": "adam lr=0.001 bs=64", "reported": 0.99, "seed": 1, "test_acc": 0.984, "val_acc": 0.996, "seconds": 4.2},
        {"setting": 1, "label": "adam lr=0.001 bs=64", "reported": 0.99, "seed": 2, "test_acc": 0.982, "val_acc": 0.997, "seconds": 4.2},
        {"setting": 2, "label": "sgd lr=0.01 bs=128 m=0.9", "reported": None, "seed": 0, "test_acc": 0.950, "val_acc": 0.95, "seconds": 3.0},
        {"setting": 2, "label": "sgd lr=0.01 bs=128 m=0.9", "reported": None, "seed": 1, "test_acc": 0.954, "val_acc": 0.95, "seconds": 3.0},
        {"setting": 2, "label": "sgd lr=0.01 bs=128 m=0.9", "reported": None, "seed": 2, "test_acc": 0.952, "val_acc": 0.95, "seconds": 3.0},
        {"setting": 3, "label": "adam lr=0.002 bs=64 cosine", "reported": None, "seed": 0, "test_acc": 0.990, "val_acc": 0.990, "seconds": 4.0},
        {"setting": 3, "label": "adam lr=0.002 bs=64 cosine", "reported": None, "seed": 1, "test_acc": 0.992, "val_acc": 0.991, "seconds": 4.0},
        {"setting": 3, "label": "adam lr=0.002 bs=64 cosine", "reported": None, "seed": 2, "test_acc": 0.991, "val_acc": 0.992, "seconds": 4.0},
    ])
    runs = runs.join(runs.setting.map(HYPER).apply(pd.Series))
    return Q2Result(runs=runs, epochs=5, seeds=[0, 1, 2], selected_by=selected_by, train_size=55_000, validation=5_000)


HYPER = {1: {"optimizer": "adam", "lr": 0.001, "batch_size": 64, "momentum": 0.0, "weight_decay": 0.0,
             "schedule": "constant", "warmup_epochs": 0.0},
         2: {"optimizer": "sgd", "lr": 0.01, "batch_size": 128, "momentum": 0.9, "weight_decay": 0.0,
             "schedule": "constant", "warmup_epochs": 0.0},
         3: {"optimizer": "adam", "lr": 0.002, "batch_size": 64, "momentum": 0.0, "weight_decay": 0.0,
             "schedule": "cosine", "warmup_epochs": 0.0},
         4: {"optimizer": "adam", "lr": 0.002, "batch_size": 64, "momentum": 0.0, "weight_decay": 0.0,
             "schedule": "constant", "warmup_epochs": 0.0}}


def test_q2_single_changes_are_pairs_of_settings_that_differ_in_one_hyperparameter_only():
    r = q2_result()
    assert r.single_changes().empty  # 1 and 3 differ in learning rate and schedule
    fourth = pd.DataFrame([{"setting": 4, "label": "adam lr=0.002 bs=64", "reported": None, "seed": s,
                            "test_acc": 0.985, "val_acc": v, "seconds": 4.0, **HYPER[4]}
                           for s, v in enumerate((0.986, 0.987, 0.988))])
    r = Q2Result(runs=pd.concat([r.runs, fourth], ignore_index=True), epochs=5, seeds=[0, 1, 2], validation=5_000)
    changes = r.single_changes()
    assert changes[["hyperparameter", "first", "second"]].values.tolist() == [["lr", 1, 4], ["schedule", 3, 4]]
    assert changes["diff"].tolist() == pytest.approx([-0.009, -0.004])  # on validation: 0.987 - 0.996, 0.987 - 0.991
    assert changes.change.iloc[0] == "0.001 to 0.002, settings 1 to 4"
    text = " ".join(r.analysis().split())
    assert "- **learning rate**, 0.001 to 0.002, settings 1 to 4: -0.90 points (95% interval" in text
    assert "a cosine that falls from 1 to 0 over the run's steps, with no warm-up" in text
    r.study = study_result()
    answer = r.answer()
    assert "the largest change that one hyperparameter makes alone is the learning rate's (0.001 to 0.002" in answer
    assert answer.index("Among the settings") < answer.index("Of 4 settings")


def study_result() -> StudyResult:
    """24 trials whose accuracy depends on the learning rate only (peaked at 1e-2.5), not on the rest."""
    trials = []
    for i in range(24):
        opt = ("adam", "sgd", "rmsprop")[i % 3]
        lr = 10 ** (-4 + 3 * ((i * 7) % 24) / 23)
        acc = 0.99 - 0.1 * (math.log10(lr) + 2.5) ** 2
        trials.append({"optimizer": opt, "lr": lr, "batch_size": (32, 64, 128, 256, 512)[i % 5],
                       "weight_decay": 10 ** (-6 + 4 * ((i * 5) % 24) / 23), "momentum": 0.9 if opt == "sgd" else math.nan,
                       "test_acc": acc, "val_acc": acc, "peak_loss": 0.6})
    frame = pd.DataFrame(trials)
    importance = study.frame_importances(frame, "val_acc")
    return StudyResult(trials=frame, importance=importance, resampled=resampled(importance), epochs=2)


def resampled(centre: dict, spread: float = 0.01, n: int = 40) -> pd.DataFrame:
    """Resamples whose importances spread evenly by +-``spread`` around ``centre``."""
    offsets = [spread * (2 * i / (n - 1) - 1) for i in range(n)]
    return pd.DataFrame([{k: v + o * (1 if j % 2 else -1) for j, (k, v) in enumerate(centre.items())} for o in offsets])


def test_q2_selects_on_validation_and_states_both_accuracies():
    r = q2_result()
    assert r.best.setting == 1 and r.second.setting == 3 and [s.setting for s in r.lowest] == [2]
    assert "The lowest is sgd lr=0.01 bs=128 m=0.9 at 95.20% on the test set, below every other" in r.analysis()
    assert r.lead().verdict == "ahead"  # 0.996 vs 0.991 on validation, tight seeds
    assert r.lead("test_acc").verdict == "behind"  # the test set would have chosen setting 3
    text = r.analysis()
    assert "Chosen by **validation** accuracy, the best setting is **adam lr=0.001 bs=64**" in text
    assert "95% interval" in text
    assert list(r.table().columns)[2:4] == ["validation accuracy, mean ± std", "test accuracy, mean ± std"]
    summary = r.summary()
    assert summary["selected_by"] == "validation" and summary["best_val_acc_mean"] == pytest.approx(0.996)
    assert summary["best_test_acc_mean"] == pytest.approx(0.982)
    assert "not retrained on all 60,000" in r.protocol()
    on_test = q2_result("test_acc")
    assert on_test.best.setting == 3 and on_test.summary()["best_val_acc_mean"] is None
    assert "validation accuracy, mean ± std" not in on_test.table().columns


def test_settings_level_at_the_bottom_are_not_ranked():
    r = q2_result()
    runs = r.runs.copy()
    runs.loc[runs.setting == 1, "test_acc"] = [0.951, 0.955, 0.953]  # level with setting 2's 0.950-0.954
    level = Q2Result(runs=runs, epochs=5, seeds=[0, 1, 2], validation=5_000)
    assert [s.setting for s in level.lowest] == [2, 1]
    assert "At the bottom, the lowest and 1 setting not detectably above it" in level.analysis()
    assert "The lowest is" not in level.analysis() and "level" not in level.analysis()


def test_q2_scores_the_selected_setting_retrained_with_the_validation_images():
    r = q2_result()
    retrained = pd.DataFrame({"seed": [0, 1, 2], "test_acc": [0.986, 0.988, 0.990], "train_images": 60_000})
    again = dataclasses.replace(r, retrained=retrained)
    assert again.best.setting == 1  # chosen as before, on validation
    summary = again.summary()
    assert summary["best_test_acc_mean"] == pytest.approx(0.988) and summary["best_retrained"] is True
    assert summary["best_test_acc_std"] == pytest.approx(0.002)
    assert summary["best_val_acc_mean"] == pytest.approx(0.996)
    assert "retrained on all 60,000 images, test **98.80\u00a0±\u00a00.20%**" in again.analysis()
    assert "the runs that chose it scored 98.20%" in again.analysis()
    text = " ".join(dataclasses.replace(again, train_size=55_000).analysis().split())
    assert "Retraining on all 60,000 images (5,000 more) changes test accuracy by +0.60 points" in text
    assert "the retrained runs ahead" in text
    assert "These retrained runs are question 2's best CNN" in text
    assert "It is then retrained on all 60,000 training images" in again.protocol() and "not retrained" not in again.protocol()
    assert r.summary()["best_retrained"] is False


def test_q2_importance_finds_the_one_parameter_that_matters():
    r = study_result()
    assert r.summary()["trials"] == 24
    importance = r.summary()["importance"]
    assert set(importance) == {"lr", "batch_size", "optimizer", "weight_decay"}
    assert sum(importance.values()) == pytest.approx(1.0, abs=1e-6)
    assert r.ranked_parameters[0] == "lr" and importance["lr"] > 0.8
    assert r.leaders == ["lr"] and r.answer().startswith("Within the ranges searched, the learning rate ranks first")
    assert "which separate it from every other" in r.answer()
    assert "its main effect is 95% [" in r.answer() and r.conclusion().endswith("learning rate matters most among LeNet's "
                                                                       "hyperparameters.")
    assert r.summary()["importance_ci95"]["lr"] == study.interval(r.resampled, "lr")
    assert r.summary()["failed_trials"] == {"diverged": 0, "stalled": 0}
    assert r.summary()["importance_without_failed"] is None


def test_q2_importances_that_the_resamples_do_not_separate_are_named_together():
    r = study_result()
    close = {"lr": 0.39, "optimizer": 0.36, "batch_size": 0.15, "weight_decay": 0.10}
    tied = dataclasses.replace(r, importance=close, resampled=resampled(close, spread=0.1))
    assert tied.leaders == ["lr", "optimizer"]
    assert tied.answer().startswith("Within the ranges searched, the learning rate ranks first in a random search of 24 "
                                    "trials: its main effect is 39% [")
    assert tied.answer().endswith("yet the resamples do not separate it from the optimizer, so whether it matters more "
                                  "is undecided.")
    assert "matters most" not in tied.conclusion() and "not separated from the optimizer" in tied.conclusion()
    first = tied.first
    assert sum(first.values()) == pytest.approx(1) and first["lr"] > first["optimizer"] > 0
    assert tied.summary()["importance_first_probability"] == first
    shuffled = pd.DataFrame({k: np.random.default_rng(i).permutation(np.linspace(0, 1, 40)) for i, k in enumerate(close)})
    every = dataclasses.replace(r, importance=close, resampled=shuffled)
    assert every.answer().startswith("In a random search of 24 trials, no hyperparameter stands out: the bootstrap "
                                     "resamples separate none of them, and rank first ")
    assert "matters most" not in tied.analysis()


def test_q2_failed_trials_are_told_apart_by_their_losses_and_left_out_of_the_second_importances():
    r = study_result()
    trials = r.trials.copy()
    trials.loc[[0, 5, 10], ["val_acc", "test_acc"]] = 0.098
    trials.loc[0, "peak_loss"] = math.inf  # a loss that stopped being a number
    trials.loc[5, "peak_loss"] = 41.0  # far above a uniform guess's 2.30: steps that blew up
    trials.loc[10, "peak_loss"] = 2.31  # about a uniform guess's, all along
    failed = dataclasses.replace(r, trials=trials)
    assert list(failed.failed.kind) == ["diverged", "diverged", "stalled"]
    assert set(failed.importance_without_failed) >= set(study.PARAMETERS)
    text = failed.analysis()
    assert "3 trials failed to learn (below 20%, chance is 10%): 2 diverged (their train loss rose above" in text
    assert "Adam at learning rate" in text and "and 1 stalled (their train loss stayed near" in text
    assert failed.summary()["failed_trials"] == {"diverged": 2, "stalled": 1}
    assert study.failure(0.5, math.inf) is None  # it learned: no failure, whatever its loss did
    assert r.best_lr().optimizer.tolist() == ["adam", "sgd", "rmsprop"]


def q3_result(cnn_accs, bovw_accs, mcnemar=()) -> Q3Result:
    bovw_accs = [bovw_accs] * len(cnn_accs) if isinstance(bovw_accs, float) else bovw_accs
    cnn = Method("LeNet (adam)", "LeNet", float(np.mean(cnn_accs)), pd.Series(cnn_accs).std(), len(cnn_accs), 14.0,
                 0.02, 44_426, 84)
    bovw = Method("SIFT-BoVW-SVM", "SIFT-BoVW-SVM", float(np.mean(bovw_accs)), pd.Series(bovw_accs).std(),
                  len(bovw_accs), 70.0, 1.0, 346_122, 21_504)
    per_class = pd.DataFrame({"class": range(10), "LeNet": [0.99] * 10,
                              "SIFT-BoVW-SVM": [0.99, 0.99, 0.98, 0.97, 0.99, 0.99, 0.99, 0.95, 0.99, 0.99]})
    config = {"step": 4, "upscale": 56, "patch": 4.0, "words": 1024, "kmeans_sample": 100_000, "levels": 3,
              "power": 0.5, "feature_map": "linear", "C": 1.0}
    search = pd.DataFrame({"trial": [1, 2, 3, 4], "step": [4, 5, 5, 5], "words": [1024, 1024, 512, 256],
                           "accuracy": [0.981, 0.983, 0.983, 0.982], "cost": [200_704, 123_904, 61_952, 30_976],
                           "seconds": [30.0, 20.0, 30.0, 10.0]})
    return Q3Result(cnn, bovw, list(cnn_accs), list(bovw_accs), list(mcnemar), per_class, config,
                    list(range(len(cnn_accs))), "a CPU", search, {"step": [3, 4, 5], "words": [256, 512, 1024]}, 10_000)


def test_q3_the_search_chooses_on_validation_the_cheapest_of_the_most_accurate():
    r = q3_result([0.99, 0.991], 0.99)
    assert q3.chosen(r.search) == 3 and r.tied == [2]  # trials 2 and 3 tie; trial 3 costs less
    protocol = " ".join(r.protocol().split())
    assert "**The baseline's setting was chosen by a random search on the 5,000 validation images alone.**" in protocol
    assert "drew 4 settings, one choice of each of: grid step 3, 4 or 5; words 256, 512 or 1,024." in protocol
    assert "trial 3 (grid step 5 px, 512 words, 98.30%), is the baseline. Trial 2 scored the same" in protocol
    assert "test image" not in protocol
    table = r.search_table(top=3)
    assert table.trial.tolist() == [3, 2, 4] and table["chosen"].tolist() == ["yes", "", ""]
    assert list(table.columns) == ["trial", "step, px", "words", "validation accuracy", "seconds", "chosen"]
    assert "The 3 most accurate of the 4 settings" in table.attrs["caption"]
    s = r.summary()["search"]
    assert s["best"] == 3 and s["best_setting"] == {"step": 5, "words": 512} and s["tied"] == [2]
    assert s["trials"] == 4 and s["scored_on"] == "validation"
    assert q3.setting_words({"step": 3, "words": 2048}) == "grid step 3 px, 2,048 words"


def test_q3_trials_are_drawn_from_the_space_seeded_and_the_baseline_trains_on_all_images_once_per_seed():
    params = plan.load_params(ROOT / "parameters" / "full.yaml")
    items = q3.trials(params)
    assert items == q3.trials(params) and len(items) == params.q3.search.trials  # the same draws every time
    space = params.q3.search.space
    assert all(set(drawn) == set(space) and all(drawn[k] in space[k] for k in space) for drawn, _ in items)
    assert {(c.scored_on, c.validation, c.subset, c.seed) for _, c in items} == {("validation", data.VALIDATION_SIZE, 10_000, 0)}
    assert any(drawn["patch"] == 12 for drawn, _ in items)  # settings far from the defaults are tried
    found = q3.baselines(params, items[0][0])
    assert [c.seed for c in found] == params.seeds and {(c.validation, c.subset, c.scored_on) for c in found} == {
        (0, None, "test")}


def test_q3_gap_whose_interval_includes_zero_is_undecided_or_equivalent_by_the_margin():
    r = q3_result([0.9905, 0.9915, 0.9910], 0.9912)
    assert r.gap.verdict == "undecided" and r.gap.lo < 0 < r.gap.hi
    text = " ".join(r.analysis().split())
    assert "Undecided: 99.10% for the CNN against 99.12% for the baseline" in text
    assert "neither is detectably ahead" in text and "more accurate" not in text
    assert r.hardest == "7"
    conditions = "the 10,000 test images; the CNN in batches of 2,000 on one process"  # a time ratio with its conditions
    assert "the CNN's time to classify an image on this machine" in r.answer()
    assert conditions in " ".join(r.analysis().split())
    same = dataclasses.replace(r, margin=0.01)
    assert same.gap.verdict == "equivalent" and same.answer().startswith("The two are equivalent within ±1 points")
    assert "not read as a pattern" in same.analysis() and "hypothesis" not in same.analysis()


def test_q3_classes_with_the_same_accuracy_on_both_sides_are_ties_however_they_were_summed():
    r = q3_result([0.9905, 0.9915, 0.9910], 0.9912)
    r.per_class["LeNet"] = [0.99, 0.99 + 4e-9, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99, 0.99]  # float32 vs float64 sums
    text = " ".join(r.analysis().split())
    assert "the CNN on 3 of 10 digits, most on 7 (+4.00), 3 (+2.00), 2 (+1.00); the baseline on none; they tie on 0, 1, " \
           "4, 5, 6, 8, 9 (points of per-digit accuracy)" in text


def test_q3_interval_above_zero_names_the_better_method_and_mcnemar_is_reported():
    paired = [stats.mcnemar([1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1])] * 3
    r = q3_result([0.9950, 0.9952, 0.9948], [0.980, 0.981, 0.979], paired)
    assert r.gap.verdict == "ahead" and r.error_ratio == pytest.approx(4.0)
    text = r.analysis()
    assert "The CNN is more accurate: 99.50% against 98.00%, +1.50 points (95% interval" in text
    assert "features learned together with the classifier" in text and "local texture" not in text
    assert "4.0× as many test errors" in text and "the CNN alone is right on 2, 2 and 2 images" in text
    assert f"gives p = {paired[0].p:.2g}, p = {paired[0].p:.2g} and p = {paired[0].p:.2g}, a significant" in text
    assert "in 0 of 3 pairs" in text and r.summary()["mcnemar_p"] == [paired[0].p] * 3  # 2 against 0: p = 0.5
    worse = q3_result([0.95, 0.952, 0.948], 0.99)
    assert worse.gap.verdict == "behind" and "The baseline is more accurate" in worse.analysis()
    assert "local texture" in worse.analysis() and "features learned together" not in worse.analysis()
    assert list(r.table().columns) == ["measure", "LeNet", "SIFT-BoVW-SVM"]
    slow = q3_result([0.9950, 0.9952, 0.9948], 0.980, paired)
    assert slow.table().set_index("measure").loc["training images", "LeNet"] == "60,000"
    slow.cnn.train_seconds = 1459.24
    assert slow.table().set_index("measure").loc["training time, seconds per run", "LeNet"] == "1,459.2"
    s = r.summary()
    assert s["cnn_minus_bovw"] == pytest.approx(0.015) and s["cnn_minus_bovw_ci95"][0] > 0
    assert s["bovw_feature_dim"] == 21_504


def text_points(x):
    return text.points(x)


def q4_result(lenet, double, seconds=(10.0, 15.0), first=(0.97, 0.96)) -> Q4Result:
    """Each model's runs take ``seconds`` (+-0.2 s by seed) and reach ``first`` after epoch 1."""
    models = (("lenet", lenet, 44_426, seconds[0], first[0]), ("double_conv_lenet", double, 51_748, seconds[1], first[1]))
    rows = [{"model": m, "seed": s, "test_acc": acc, "parameters": p, "seconds": t + 0.2 * (s - 1), "train_images": 60_000,
             "optimizer": "adam", "lr": 0.001, "batch_size": 64} for m, accs, p, t, _ in models for s, acc in enumerate(accs)]
    curves = pd.DataFrame([{"model": m, "seed": s, "epoch": 1, "test_acc": f} for m, _, _, _, f in models
                           for s in range(3)])
    return Q4Result(runs=pd.DataFrame(rows), curves=curves, epochs=5, seeds=[0, 1, 2])


def test_q4_verdict_from_the_interval_over_seeds():
    level = q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.9880])
    assert level.gap.verdict == "undecided" and "cannot tell a small effect either way from none" in level.analysis()
    assert level.answer().startswith("Undecided: ")
    same = dataclasses.replace(level, margin=0.005)
    assert same.gap.verdict == "equivalent" and "two one-sided tests" in same.analysis()
    assert same.answer().startswith("The two are equivalent within ±0.5 points")
    worse = q4_result([0.988, 0.9885, 0.9875], [0.980, 0.9805, 0.9795])
    assert worse.gap.verdict == "behind" and "the deeper network does worse" in worse.analysis()
    assert worse.gap.diff == pytest.approx(-0.008) and "95% interval" in worse.analysis()
    better = q4_result([0.980, 0.9805, 0.9795], [0.988, 0.9885, 0.9875])
    assert better.gap.verdict == "ahead" and "the deeper network does better" in better.analysis()
    assert "may favour" not in better.analysis() + worse.analysis() + level.analysis()
    s = better.summary()
    assert s["double_minus_lenet"] == pytest.approx(0.008) and s["double_minus_lenet_ci95"][0] > 0
    assert s["lenet_seconds_per_epoch"] == pytest.approx(2.0) and s["double_conv_seconds_per_epoch"] == pytest.approx(3.0)
    assert s["double_conv_parameters"] - s["lenet_parameters"] == 7_322


def test_q4_says_what_its_interval_excludes_and_claims_a_time_ratio_only_beyond_the_runs_spread():
    level = q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.9880])
    text = " ".join(level.analysis().split())
    assert f"allows a loss of up to {-100 * level.gap.lo:.2f} points or a gain of up to {100 * level.gap.hi:.2f}," in text
    assert "little left for them to fix" not in text and "gallery" not in text
    assert "learns more slowly" not in text  # a budget's effect is not guessed at
    assert level.slower == pytest.approx(1.5) and "1.5× the time per epoch" in level.answer()
    close = q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.9880], seconds=(10.0, 10.3), first=(0.96, 0.97))
    assert close.slower is None and "no time ratio is claimed" in close.answer()  # 9.8-10.2 s against 10.1-10.5 s
    assert "learns more slowly" not in close.analysis()


# ---------------------------------------------------------------- saturating and non-saturating size curves


def q5_result(means, spreads=(0.02, 0.01, 0.001), steps=(0.90, 0.97), small_extra=()) -> Q5Result:
    sizes = [600, 6000, 60_000]
    rows = [{"protocol": "equal_epochs", "size": n, "full": n == sizes[-1], "seed": s, "epochs": 5,
             "test_acc": m + d * (1 if s == 0 else -1)} for n, m, d in zip(sizes, means, spreads) for s in (0, 1)]
    rows += [{"protocol": "equal_epochs", "size": 600, "full": False, "seed": 2 + i, "epochs": 5, "test_acc": a}
             for i, a in enumerate(small_extra)]
    rows += [{"protocol": "equal_steps", "size": n, "full": False, "seed": s, "epochs": e, "test_acc": m}
             for n, m, e in zip(sizes, steps, (470, 47)) for s in (0, 1)]
    counts = [5_923, 6_742, 5_958, 6_131, 5_842, 5_421, 5_918, 6_265, 5_851, 5_949]  # made up like the whole set's
    rows = [{**r, "optimizer": "adam", "lr": 0.001, "batch_size": 64} for r in rows]
    return Q5Result(runs=pd.DataFrame(rows), epochs=5, seeds=[0, 1], full_counts=counts, reported=reported("q5", "mnist"))


def test_a_size_curve_saturates_only_where_its_last_step_gains_nothing_that_matters():
    r = q5_result([0.80, 0.95, 0.99])  # the last step's 2 seeds are too spread to tell
    assert r.gains == pytest.approx([0.15, 0.04])
    assert r.returns == "undecided" and r.last_step.verdict == "undecided"
    text = " ".join(r.analysis().split())
    assert "Whether accuracy still grows at the last step is undecided" in text
    assert "hypothesis" not in text and "saturat" not in text and "is undecided" in r.answer()
    flat = dataclasses.replace(q5_result([0.80, 0.95, 0.951], spreads=(0.02, 0.001, 0.001)), margin=0.01)
    assert flat.returns == "saturating" and flat.last_step.verdict == "equivalent"
    assert "Accuracy saturates here: the last step gains nothing that matters." in flat.analysis()
    assert "and saturates" in flat.answer()
    diminishing = q5_result([0.80, 0.95, 0.99], spreads=(0.02, 0.001, 0.001))
    assert diminishing.returns == "diminishing" and diminishing.last_step.verdict == "ahead"
    text = " ".join(diminishing.analysis().split())
    assert "The returns diminish" in text and "has not saturated at 60,000 images" in text
    assert "saturates here" not in text and "with diminishing returns" in diminishing.answer()
    assert diminishing.summary()["returns"] == "diminishing"
    assert diminishing.summary()["last_step"]["sizes"] == [6000, 60000]
    assert "2 seeds at\n600 images" in r.protocol()
    assert "it is all the data" in text
    # equal steps: the last step's gain measured without its extra updates, which bounds what data alone is said to add
    assert diminishing.last_step_at_equal_steps.verdict == "ahead" and "not shown to come from the data" not in text
    assert "at equal steps" not in diminishing.conclusion()
    updates = q5_result([0.80, 0.95, 0.99], spreads=(0.02, 0.001, 0.001), steps=(0.90, 0.989))
    assert updates.returns == "diminishing" and updates.last_step_at_equal_steps.verdict == "undecided"
    text = " ".join(updates.analysis().split())
    assert "At equal steps, where both sets get the same number of updates, the last step gains +0.10 points" in text
    assert "is not shown to come from the data rather than from the extra updates" in text
    assert updates.conclusion().endswith("; at equal steps, the last step's gain is undecided.")
    s = r.summary()
    assert s["equal_epochs"]["test_acc_mean"] == {"600": pytest.approx(0.80), "6000": pytest.approx(0.95),
                                                  "60000": pytest.approx(0.99)}
    assert s["equal_steps"]["test_acc_mean"] == {"600": pytest.approx(0.90), "6000": pytest.approx(0.97),
                                                 "60000": pytest.approx(0.99)}
    assert s["equal_steps"]["epochs"] == {"600": 470, "6000": 47, "60000": 5}


def test_the_seeds_spread_is_not_read_for_a_trend_it_cannot_carry():
    # the full profile's stds were 3.26, 0.27, 0.44, 0.12 and 0.45 points over 3 to 10 seeds
    r = q5_result([0.80, 0.95, 0.99], spreads=(0.02, 0.001, 0.005))
    text = " ".join(r.analysis().split())
    assert "with 2 seeds a standard deviation is itself uncertain by about ±71%, so they are not read for a trend" in text
    assert "shrinks at every step" not in text


def test_equal_steps_split_the_small_set_gap_into_steps_and_data():
    r = q5_result([0.80, 0.95, 0.99], steps=(0.90, 0.97))
    assert r.steps_share() == pytest.approx(0.10 / 0.19)
    assert "equal steps close 53% of the gap" in r.analysis()
    assert list(r.table().columns)[-2:] == ["equal steps: epochs", "equal steps: test accuracy"]


def test_the_assignments_600_image_run_is_placed_among_the_seeds():
    inside = q5_result([0.80, 0.95, 0.99], small_extra=(0.83, 0.76))  # seeds 0.82, 0.78, 0.83, 0.76
    assert "2 of 4 reach the assignment's single run of 81.83%, which lies inside the range" in inside.analysis()
    outside = q5_result([0.70, 0.95, 0.99], spreads=(0.01, 0.01, 0.001))
    assert "0 of 2 reach" in outside.analysis() and "outside the range of our seeds" in outside.analysis()


def test_a_log_linear_size_curve_shows_no_diminishing_returns():
    r = q5_result([0.50, 0.60, 0.75], spreads=(0.001, 0.001, 0.001))
    assert r.gains == pytest.approx([0.10, 0.15])
    assert r.returns == "steady"
    assert "does not shrink: no sign of diminishing returns" in r.analysis() and "saturat" not in r.analysis()
    assert r.table()["images per digit"].tolist() == ["60 each", "600 each", "5,421 to 6,742 (unbalanced)"]
    assert "its digits have 5,421 (digit 5) to 6,742 (digit 1) images each" in r.protocol()  # from full_counts
    other = dataclasses.replace(r, full_counts=[100 + i for i in range(10)])
    assert "100 (digit 0) to 109 (digit 9)" in other.protocol() and "5,421" not in other.protocol()


# ---------------------------------------------------------------- questions 1 and 6, and the headlines


def q1_result(test_acc=(0.97, 0.985, 0.984), test_loss=(0.1, 0.05, 0.07), seeds=(0, 1)) -> Q1Result:
    """Seed s adds 0.002 * s to every test accuracy."""
    n = len(test_acc)
    histories = pd.concat([pd.DataFrame({
        "epoch": range(1, n + 1), "train_loss": [0.3, 0.1, 0.05][:n], "train_acc": [0.9, 0.97, 0.99][:n],
        "test_loss": list(test_loss), "test_acc": [a + 0.002 * s for a in test_acc], "seconds": [2.0] * n,
        "seed": s}) for s in seeds], ignore_index=True)
    return Q1Result(histories, lr=0.001, optimizer="adam", batch_size=64, epochs=n, parameters=44_426)


def test_q1_is_the_mean_over_seeds_and_sees_when_the_test_loss_turns_up():
    r = q1_result()
    assert r.overfits and int(r.lowest_test_loss.epoch) == 2 and r.seeds == [0, 1]
    assert r.last.test_acc == pytest.approx(0.985) and r.test_acc_std == pytest.approx(0.002 / 2**0.5)
    assert "LeNet reaches 98.50\u00a0±\u00a00.14% test accuracy after 3 epochs (mean ± std over 2 seeds" in r.answer()
    assert "fit the training set more tightly" in r.analysis() and "98.40%, 98.60%" in r.analysis()
    assert not q1_result((0.97, 0.985), (0.1, 0.05)).overfits
    assert list(r.table().columns) == ["epoch", "train loss", "test loss", "train accuracy", "test accuracy",
                                       "seconds per epoch"]
    assert r.table()["test accuracy"].iloc[-1] == "98.50\u00a0±\u00a00.14%"
    assert "running means over the epoch's batches" in r.protocol() and "2 seeds: 0, 1" in r.protocol()
    s = r.summary()
    assert s["test_acc_mean"] == pytest.approx(0.985) and s["seeds"] == 2 and s["best_epoch"] == 2
    one = q1_result(seeds=(0,))
    assert math.isnan(one.test_acc_std) and one.summary()["seeds"] == 1


def q6_result(vit, lenet, vit_val=None, seeds=(0, 1, 2)) -> Q6Result:
    """Accuracies per recipe at (6,000, 60,000); each seed adds -0.001, 0, +0.001 around them."""
    recipes = {"assignment": {"optimizer": "adam"}, "improved": {"optimizer": "adamw", "vit": {"norm_first": True}}}
    vit_val = vit_val or vit
    rows = [{"recipe": r, "model": m, "size": n, "seed": s, "test_acc": acc[r][i] + 0.001 * (s - 1),
             "val_acc": val[r][i] + 0.001 * (s - 1), "parameters": 1, "seconds": 13.0 if m == "vit" else 1.0,
             "epochs": 10, "train_images": n}
            for r in recipes for m, acc, val in (("vit", vit, vit_val), ("lenet", lenet, lenet))
            for i, n in enumerate((6000, 60_000)) for s in seeds]
    return Q6Result(runs=pd.DataFrame(rows), curves=pd.DataFrame(), recipes=recipes, epochs=10, seeds=list(seeds),
                    reported=reported("q6", "mnist"), setup=text.setup("q6", "mnist"))


def test_q6_picks_the_recipe_by_validation_and_compares_over_seeds():
    r = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.990]},
                  lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]})
    assert r.best_recipe == "improved" and "goal" not in r.analysis()  # no test-set targets
    assert r.vit_minus_lenet(6000).verdict == "behind" and r.vit_minus_lenet(6000, "assignment").diff == pytest.approx(-0.031)
    assert r.vit_minus_lenet(60_000).verdict == "undecided"  # -0.20 points, an interval that includes zero
    text = " ".join(r.analysis().split())
    assert r.gap_change().verdict == "ahead" and "in the ViT's favour" in text
    assert "locality" in text and "LeNet's lead grows" not in text
    assert "from 6,000 to 60,000 images the ViT gains +2.80 points and LeNet +1.60" in text
    stays = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.980]},
                      lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]})
    text = " ".join(stays.analysis().split())
    assert stays.gap_change().verdict == "undecided" and "no explanation of a trend is offered" in text
    assert "locality" not in text
    widens = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.970]},
                       lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]})
    text = " ".join(widens.analysis().split())
    assert widens.gap_change().verdict == "behind" and "in LeNet's favour" in text
    assert "contradicts the idea that the ViT mainly lacks images" in text and "A hypothesis consistent" not in text
    s = r.summary()
    assert s["vit_60000_test_acc_mean"] == pytest.approx(0.990) and s["vit_60000_test_acc_std"] == pytest.approx(0.001)
    assert s["seeds"] == 3 and s["selected_by"] == "validation"
    lo, hi = s["vit_minus_lenet_60000_ci95"]
    assert s["vit_minus_lenet_60000"] == pytest.approx(-0.002) and lo < -0.002 < hi < 0.001  # level: spans 0
    assert s["recipes"]["assignment"]["vit_6000_test_acc_mean"] == pytest.approx(0.942)
    assert "normalization: post-norm under assignment, pre-norm under improved" in r.protocol()
    assert "- **improved**: AdamW, ViT with pre-norm encoder layers" in r.protocol() and "_" not in r.protocol()
    assert "the choice between the two is made on validation" in r.analysis()
    assert r.time_ratio(6000, "improved") == pytest.approx(13.0)
    assert "a ViT run takes about 13× as long as LeNet's on 6,000 images and 13× on 60,000 under the improved recipe" in r.answer()
    assert s["vit_over_lenet_seconds"]["assignment"]["6000"] == pytest.approx(13.0)
    assert s["comparisons"]["improved"]["6000"]["verdict"] == "LeNet ahead"
    # validation decides even where the test set would choose the other recipe
    chosen = q6_result(vit={"assignment": [0.97, 0.99], "improved": [0.96, 0.98]},
                       lenet={"assignment": [0.97, 0.99], "improved": [0.97, 0.99]},
                       vit_val={"assignment": [0.95, 0.97], "improved": [0.96, 0.985]})
    assert chosen.best_recipe == "improved" and "chosen by the ViT's mean validation accuracy" in chosen.analysis()
    missed = q6_result(vit={"assignment": [0.97, 0.95], "improved": [0.96, 0.96]},
                       lenet={"assignment": [0.97, 0.99], "improved": [0.97, 0.99]})
    assert missed.best_recipe == "assignment"


def test_words_are_left_aligned_and_numbers_right():
    frame = q5_result([0.80, 0.95, 0.99]).table()
    assert text.text_columns(frame) == ["images per digit"]  # "60 each", "5,421 to 6,742 (unbalanced)"
    assert text.text_columns(headlines.table([(4, q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.988]))])) == [
        "result", "this report"]  # "+0.10 points [...]" holds a word


def test_headline_labels_come_from_the_results():
    parts = [q1_result((0.97, 0.985, 0.989)),
             q2_result(), q3_result([0.9905, 0.9915, 0.9910], 0.99), q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.9880]),
             q5_result([0.73, 0.95, 0.988]),
             q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.96, 0.99]},
                       lenet={"assignment": [0.973, 0.990], "improved": [0.97, 0.991]})]
    table = headlines.table(list(enumerate(parts, start=1)))
    assert list(table.columns) == ["result", "this report", "the assignment"]
    assert table.result.iloc[0] == "1. LeNet, 3 epochs (mean of 2 seeds)" and table["this report"].iloc[0] == "99.00%"
    assert table.result.iloc[1] == "2. best of 3 settings, chosen on validation: adam lr=0.001 bs=64 (mean of 3 seeds)"
    assert "6. ViT, 60,000 images (improved recipe, mean of 3 seeds)" in table.result.tolist()
    assert table["the assignment"][table.result.str.startswith("6. ViT, 60,000")].item() == "97.44% (6 layers)"
    assert "6. ViT, 6,000 images (improved recipe, mean of 3 seeds)" in table.result.tolist()
    assert table["the assignment"][table.result == "5. 600 training images, equal epochs (mean)"].item() == "81.83%"
    assert [r for r in table.result if "equal epochs" in r] == [
        "5. 600 training images, equal epochs (mean)", "5. 6,000 training images, equal epochs (mean)",
        "5. 60,000 training images, equal epochs (mean)"]
    gap = parts[2].gap
    assert table["this report"][table.result == "3. CNN minus BoVW, 95% interval"].item() == (
        f"{text.points(gap.diff)} points [{text.points(gap.lo)}, {text.points(gap.hi)}]: undecided")
    retrained = q2_result()
    retrained.retrained = pd.DataFrame({"seed": [0, 1, 2], "test_acc": [0.99] * 3, "train_images": 60_000})
    assert "(retrained with the validation images, mean of 3 seeds)" in headlines.table([(2, retrained)]).result.item()


def test_summary_keys_name_the_images_trained_on():
    r = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.990]},
                  lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]})
    s = r.summary()
    assert s["vit_60000_test_acc_mean"] == pytest.approx(0.990) and "vit_minus_lenet_60000_ci95" in s
    assert s["train_images"] == {"vit": [6000, 60_000], "lenet": [6000, 60_000]}
    q5 = q5_result([0.73, 0.95, 0.988]).summary()
    assert set(q5["equal_epochs"]["seeds"]) == {"600", "6000", "60000"} and q5["train_images"] == [600, 6000, 60_000]


def test_the_answers_open_the_report_one_per_question_from_the_results():
    r1, r2, r3 = q1_result((0.97, 0.985, 0.989)), q2_result(), q3_result([0.9905, 0.9915, 0.9910], 0.9912)
    r4 = q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.9880])
    r6 = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.990]},
                   lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]})
    r2.study = study_result()
    text = headlines.answers(list(enumerate([r1, r2, r3, r4, q5_result([0.80, 0.95, 0.99]), r6], start=1)))
    lines = text.splitlines()
    assert lines[0] == "## Answers" and [line[:3] for line in lines[2:]] == ["1. ", "2. ", "3. ", "4. ", "5. ", "6. "]
    assert ("Of 3 settings, validation accuracy chooses adam lr=0.001 bs=64 (against the second best on validation: "
            "this setting ahead)") in lines[3]
    assert "learning rate ranks first" in lines[3]  # the study's answer, as a sentence
    assert lines[2].startswith("1. The code is a package") and "seeded" in lines[2] and "logs" in lines[2]
    assert lines[4].startswith("3. Undecided: LeNet reaches 99.10% and SIFT-BoVW-SVM 99.12%")
    assert lines[5].startswith("4. Undecided: the doubled-conv LeNet reaches 98.80% against LeNet's 98.80%")
    assert all(len([s for s in line.split(". ") if s]) <= 4 for line in lines[2:])  # "N. " and three sentences
    assert lines[6].startswith("5. At equal epochs (") and "epochs), test accuracy grows from 80.00" in lines[6]
    assert f"against LeNet's 98.80% after {r4.epochs} epochs," in lines[5]
    assert "the ViT reaches 96.20% on 6,000 images (-1.40 points [" in lines[7] and "LeNet ahead)" in lines[7]
    assert "**" not in text


def test_every_table_of_a_result_carries_the_caption_the_report_numbers():
    from mnistkit.report import Report

    tables = [q1_result((0.97, 0.985, 0.989)).table(), q2_result().table(),
              q3_result([0.9905, 0.9915, 0.9910], 0.99).table(), q3_result([0.9905, 0.9915, 0.9910], 0.99).search_table(),
              q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.988]).table(), q5_result([0.80, 0.95, 0.99]).table(),
              q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.96, 0.99]},
                        lenet={"assignment": [0.973, 0.990], "improved": [0.97, 0.991]}).table(),
              Report.architecture("lenet")]
    for frame in tables:
        assert len(frame.attrs.get("caption", "")) > 20, list(frame.columns)
    with pytest.raises(ValueError, match="without a caption"):
        Report.table(None, pd.DataFrame({"a": [1]}))


def test_q6_ablation_credits_only_what_its_intervals_support_and_names_the_model_apart():
    r = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.990]},
                  lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]})
    assert "not measured in this build" in r.analysis() and r.ablation_table() is None
    assert "ablation" not in r.summary()
    r.recipes["improved"]["augment"] = "shift"
    # the improved ViT scores 0.961, 0.962, 0.963 on 6,000 images; put back one group at a time:
    effects = {"shift augmentation": (0.950, 0.951, 0.952), "optimizer": (0.9615, 0.9625, 0.9620),
               "pre-norm": (0.964, 0.965, 0.966)}
    ablation = pd.DataFrame([{"group": g, "size": 6000, "test_acc": a} for g, accs in effects.items() for a in accs])
    ablated = {"shift augmentation": ["augment"], "optimizer": ["optimizer"], "pre-norm": ["vit"]}
    done = dataclasses.replace(r, ablation=ablation, ablated=ablated)
    assert done.ablation_effect("shift augmentation").verdict == "ahead"
    assert done.ablation_effect("optimizer").verdict == "undecided"
    assert done.ablation_effect("pre-norm").verdict == "behind"
    text = done.analysis()
    credits = ("Of the training recipe's changes on 6,000 images (the ablation's table above), the ablation credits "
               "shift augmentation (+1.10 points")
    assert credits in text
    assert "optimizer (+0.00 points" in text and "is undecided" in text
    assert "Of the model's changes on 6,000 images (the ablation's table above), pre-norm (-0.30 points" in text
    assert "costs accuracy on this dataset, and this report does not test why" in text
    assert "is equivalent within the margin" in dataclasses.replace(done, margin=0.01).analysis()
    table = done.ablation_table()
    assert list(table["put back"]) == list(ablated) and table.attrs["caption"].startswith("The ViT on 6,000 images")
    assert table["as"].tolist() == ["no augmentation", "Adam", "ViT with post-norm encoder layers"]
    groups = done.summary()["ablation"]["groups"]
    assert groups["shift augmentation"]["verdict"] == "improved recipe ahead" and groups["pre-norm"]["put_back"] == ["vit"]
    assert groups["optimizer"]["full_minus_this"] == pytest.approx(0.0, abs=1e-9)
    single = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.990]},
                       lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]}, seeds=(1,))
    one_seed = dataclasses.replace(single, ablation=ablation.groupby("group").head(1), ablated=ablated)  # no interval
    assert "ran on one seed here, which gives no interval: none of its changes is credited" in one_seed.analysis()


def test_where_the_models_fail_names_each_models_seed_and_its_most_frequent_confusions():
    from mnistkit.questions.failures import Failures, Mistakes

    def made_up(name, counts):
        matrix = pd.DataFrame(np.diag([900] * 10), index=pd.Index(range(10), name="true"),
                              columns=pd.Index(range(10), name="predicted"))
        rows = []
        for (true, predicted), n in counts.items():
            matrix.iat[true, predicted] = n
            rows += [{"index": len(rows) + i, "true": true, "predicted": predicted} for i in range(n)]
        return Mistakes(name, matrix, pd.DataFrame(rows), None, what=f"the {name} of a section, seed 2, trained on 600 images")

    cnn = made_up("CNN", {(9, 4): 7, (5, 3): 4, (2, 7): 4, (4, 9): 2})
    vit = made_up("ViT", {(5, 3): 9, (7, 2): 8, (9, 4): 3})
    assert cnn.confusions() == [(9, 4, 7), (2, 7, 4), (5, 3, 4)] and vit.hardest() == ("5", 9)
    text = Failures([cnn, vit]).text()
    assert "**CNN**, the CNN of a section, seed 2, trained on 600 images: 17 errors; most often 9 read as 4 (7 times)" in text
    assert "it gets 5 wrong most (9 of its errors)" in text
    assert "Both models' three most frequent mistakes include 5 read as 3, 9 read as 4." in text
    assert "first 16 mistakes in test-set order" in text and cnn.alt_gallery().startswith("The first 16 misclassified")
    apart = Failures([cnn, made_up("ViT", {(1, 7): 2})]).text()
    assert "Their three most frequent mistakes have none in common." in apart
    clothes = dataclasses.replace(vit, classes=data.DATASETS["fashion_mnist"].classes)
    assert "it gets Sandal wrong most (9 of its errors)" in Failures([clothes]).text()
    assert "Sandal→Dress" in clothes.alt_gallery() and "on the 9,020 test images" in clothes.alt_confusion()
    assert list(clothes.named.columns[:2]) == ["T-shirt/top", "Trouser"]


def test_the_assignments_figures_come_from_its_file_and_only_for_its_dataset():
    assert reported("q1", "mnist") == 0.990 and reported("q6", "mnist")[60_000] == 0.9744
    assert reported("q1", "fashion_mnist") is None and reported("q5", "fashion_mnist") is None
    assert text.reported_setting({"batch_size": 32, "lr": 0.001, "optimizer": "adam", "epochs": 5}, "mnist") == 0.9875
    assert text.reported_setting({"batch_size": 32, "lr": 0.001, "optimizer": "adam"}, "fashion_mnist") is None
    assert text.reported_setting({"batch_size": 64, "lr": 0.002, "optimizer": "adam", "schedule": "cosine"},
                                 "mnist") is None  # this report's own setting
    theirs = q1_result((0.97, 0.985, 0.989))
    assert "the assignment reported" not in theirs.answer()
    theirs.reported = reported("q1", "mnist")
    assert "the assignment reported 99.0% from one run" in theirs.answer()


def test_the_transfer_table_tests_each_change_with_its_own_interval():
    from mnistkit.questions import transfer

    def summary(cnn, double, vit_small, margin):
        r3, r4 = q3_result(cnn, 0.9912), q4_result([0.988, 0.989, 0.987], double)
        r3, r4 = dataclasses.replace(r3, margin=margin), dataclasses.replace(r4, margin=margin)
        r6 = dataclasses.replace(q6_result(vit={"assignment": [vit_small, 0.980], "improved": [0.962, 0.990]},
                                           lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]}),
                                 margin=margin)
        r5 = dataclasses.replace(q5_result([0.80, 0.95, 0.99], spreads=(0.02, 0.001, 0.001)), margin=margin)
        study = study_result()
        return {"q1": q1_result().summary(), "q2": study.summary(), "q3": r3.summary(), "q4": r4.summary(),
                "q5": r5.summary(), "q6": r6.summary(), "margin": margin}

    mnist = summary([0.9905, 0.9915, 0.9910], [0.9875, 0.9885, 0.9880], 0.942, 0.002)
    clothes = summary([0.9405, 0.9415, 0.9410], [0.9875, 0.9885, 0.9880], 0.932, 0.02)
    table = transfer.table(mnist, clothes, ("MNIST", "Fashion-MNIST")).set_index("compared")
    change = table["the change"]
    assert change["the best CNN minus SIFT-BoVW-SVM"] == "fell"  # about -5 points, beyond the 2-point margin
    assert change["doubled-conv LeNet minus LeNet"] == "unchanged within ±2 points"  # the larger margin of the two
    assert change["ViT minus LeNet on 6,000 images, assignment recipe"] == "fell, by less than ±2 points"
    assert change["ViT minus LeNet on 6,000 images, improved recipe (validation chose it in both)"].startswith(
        "unchanged")  # both recipes are compared, each with itself
    assert table.loc["the best CNN minus SIFT-BoVW-SVM", "change, 95% interval"].startswith("-5.00 [")
    assert table.loc["the best CNN minus SIFT-BoVW-SVM", "Fashion-MNIST"].endswith(": SIFT-BoVW-SVM ahead")
    first = [c for c in table.index if c.startswith("the hyperparameter ranked first")][0]
    assert change[first] == "the same first" and table.loc[first, "MNIST"] == "learning rate (100%)"
    assert [c for c in table.index if c.startswith("what the last step")]
    discussion = transfer.discussion(mnist, clothes, ("MNIST", "Fashion-MNIST"))
    assert "**What did not transfer.**" in discussion and "the best CNN minus SIFT-BoVW-SVM (-5.00)" in discussion
    # the ViT behind LeNet in both, by another size: the conclusion held, its size did not
    assert ("**The same verdict, another size.** Both studies reach the same verdict, yet the difference's size changed "
            "beyond its interval, for ViT minus LeNet on 6,000 images, assignment recipe (-1.00).") in discussion
    assert "**What transferred.** The change lies within ±2 points for doubled-conv LeNet minus LeNet" in discussion
    # inside ±2 points, but its interval is wider than MNIST's ±0.2: said so
    assert "judged by the finer study's ±0.2 points, it is undecided for doubled-conv LeNet minus LeNet (+0.00)" in discussion
    old = json.loads(json.dumps(mnist))  # a summary written before the records: no change is tested
    for q, key in (("q3", "cnn_minus_bovw_record"), ("q4", "double_minus_lenet_record"), ("q5", "last_step"),
                   ("q6", "comparisons")):
        del old[q][key]
    assert (transfer.table(old, clothes, ("MNIST", "Fashion-MNIST"))["change, 95% interval"] == text.NA).all()


def test_the_references_cite_a_dataset_only_where_the_report_uses_it():
    mnist, both = text.say("report", "references", datasets={"mnist"}), text.say("report", "references",
                                                                                  datasets={"mnist", "fashion_mnist"})
    assert "Fashion-MNIST" not in mnist and "Fashion-MNIST: H. Xiao" in both and "Optuna" in mnist
