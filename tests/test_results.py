"""The result objects and statistics on inputs whose right answer is known, without training."""

import math
from itertools import product

import pandas as pd
import pytest

from mnistkit import results, stats
from mnistkit.results import Method, Q1Result, Q2Result, Q3Result, Q4Result, Q5Result, Q6Result


# ---------------------------------------------------------------- a balanced factorial


def factorial(a=0.02, b=0.01, c=0.0, ab=0.01, noise=0.005, base=0.9):
    """A 2 x 2 x 2 design, 2 seeds per cell, orthogonal +-1 effects: each source's sum of squares is
    16 x its effect squared, so the shares are known exactly."""
    rows = []
    for (opt, sa), (lr, sb), (bs, sc), (seed, se) in product(
            [("adam", 1), ("sgd", -1)], [(0.001, 1), (0.01, -1)], [(64, 1), (128, -1)], [(0, 1), (1, -1)]):
        rows.append({"optimizer": opt, "lr": lr, "batch_size": bs, "seed": seed,
                     "test_acc": base + a * sa + b * sb + c * sc + ab * sa * sb + noise * se})
    return pd.DataFrame(rows)


def test_variance_shares_of_a_balanced_factorial_are_the_known_ones():
    shares = stats.variance_shares(factorial(), ("optimizer", "lr", "batch_size")).set_index("source")["share"]
    total = 0.02**2 + 0.01**2 + 0.01**2 + 0.005**2
    expected = {"optimizer": 0.02**2 / total, "lr": 0.01**2 / total, "batch_size": 0.0,
                "interactions": 0.01**2 / total, "seed (noise)": 0.005**2 / total}
    for source, share in expected.items():
        assert shares[source] == pytest.approx(share, abs=1e-9), source
    assert shares.sum() == pytest.approx(1.0)


def q2_result(**effects) -> Q2Result:
    runs = pd.DataFrame([
        {"setting": 1, "label": "adam lr=0.001 bs=64", "reported": 0.99, "seed": 0, "test_acc": 0.980, "seconds": 4.0},
        {"setting": 1, "label": "adam lr=0.001 bs=64", "reported": 0.99, "seed": 1, "test_acc": 0.984, "seconds": 4.2},
        {"setting": 2, "label": "sgd lr=0.01 bs=128 m=0.9", "reported": None, "seed": 0, "test_acc": 0.950, "seconds": 3.0},
        {"setting": 2, "label": "sgd lr=0.01 bs=128 m=0.9", "reported": None, "seed": 1, "test_acc": 0.954, "seconds": 3.0},
        {"setting": 3, "label": "adam lr=0.002 bs=64 cosine", "reported": None, "seed": 0, "test_acc": 0.990, "seconds": 4.0},
        {"setting": 3, "label": "adam lr=0.002 bs=64 cosine", "reported": None, "seed": 1, "test_acc": 0.992, "seconds": 4.0},
    ])
    return Q2Result(runs=runs, factorial=factorial(**effects), epochs=5, factorial_epochs=2, momentum=0.9,
                    seeds=[0, 1])


def test_q2_names_the_best_and_weakest_setting_and_the_factor_that_matters_most():
    r = q2_result()
    assert r.best.setting == 3 and r.best["mean"] == pytest.approx(0.991)
    assert r.weakest.setting == 2
    assert list(r.ranked_factors.source) == ["optimizer", "lr", "batch_size"]
    summary = r.summary()
    assert summary["most_important"] == "optimizer" and summary["best_setting"] == "adam lr=0.002 bs=64 cosine"
    assert summary["best_test_acc_mean"] == pytest.approx(0.991)
    assert summary["variance_share"]["interactions"] == pytest.approx(0.01**2 / 6.25e-4)
    text = r.factorial_analysis()
    assert "**optimizer** matters most: it explains **64.0%**" in text
    assert "interactions explain 16.0%" in text and "seed-to-seed noise 4.0%" in text
    assert "the batch sizes scored alike, within the seed noise" in text  # no effect, no claim
    table = r.table()
    assert list(table.columns) == ["#", "setting", "test accuracy, mean ± std", "the assignment (1 run)",
                                   "seconds per run"]
    assert table["the assignment (1 run)"].tolist() == ["99.00%", "", ""]


def test_q2_batch_size_trend_follows_the_data():
    assert q2_result(c=0.01).batch_size_gap.verdict == "higher"  # 64 (+1) beats 128 by 0.02, noise ~0.004
    assert q2_result(c=-0.01).batch_size_gap.verdict == "lower"
    assert q2_result(c=0.001).batch_size_gap.verdict == "level"  # 0.002 apart: inside the seed noise
    assert "smaller batches scored higher here" in q2_result(c=0.01).factorial_analysis()
    assert "larger batches scored higher here" in q2_result(c=-0.01).factorial_analysis()


# ---------------------------------------------------------------- a gap inside and outside the noise


def test_gap_verdicts():
    assert stats.Gap(a=0.98, b=0.99, noise=0.001).verdict == "higher"
    assert stats.Gap(a=0.99, b=0.98, noise=0.001).verdict == "lower"
    assert stats.Gap(a=0.98, b=0.9815, noise=0.001).verdict == "level"  # 1.5 noise: inside twice the noise
    assert stats.Gap(a=0.98, b=0.99, noise=math.nan).verdict == "level"  # no spread, no claim
    assert stats.spread(0.001, math.nan, 0.002) == 0.002 and math.isnan(stats.spread(math.nan))
    assert stats.binomial_se(0.99) == pytest.approx(math.sqrt(0.99 * 0.01 / 10_000))


def q3_result(cnn_acc, cnn_std, bovw_acc) -> Q3Result:
    cnn = Method("LeNet (adam)", "LeNet", cnn_acc, cnn_std, 3, 14.0, 0.02, 44_426, 84)
    bovw = Method("SIFT-BoVW-SVM", "SIFT-BoVW-SVM", bovw_acc, math.nan, 1, 70.0, 1.0, 346_122, 21_504)
    per_class = pd.DataFrame({"digit": range(10), "LeNet": [0.99] * 10,
                              "SIFT-BoVW-SVM": [0.99, 0.99, 0.98, 0.97, 0.99, 0.99, 0.99, 0.95, 0.99, 0.99]})
    config = {"step": 4, "upscale": 56, "patch": 4.0, "words": 1024, "kmeans_sample": 100_000, "levels": 3}
    return Q3Result(cnn, bovw, per_class, config, 80.0, 60_000, "a CPU")


def test_q3_gap_inside_the_noise_is_level():
    # 0.06 points apart; the baseline's sampling error (0.09 points) is the larger noise
    r = q3_result(0.9910, 0.0005, 0.9916)
    assert r.gap.noise == pytest.approx(stats.binomial_se(0.9916))
    assert r.gap.verdict == "level"
    assert "The two are level: 99.10% for the CNN against 99.16%" in r.analysis()
    assert r.hardest_digit == 7


def test_q3_gap_outside_the_noise_names_the_better_method():
    r = q3_result(0.995, 0.0005, 0.980)
    assert r.gap.verdict == "higher" and r.error_ratio == pytest.approx(4.0)
    assert "The CNN is **1.50 points** more accurate" in r.analysis()
    assert "4.0× as many test errors" in r.analysis()
    worse = q3_result(0.95, 0.002, 0.99)
    assert worse.gap.verdict == "lower" and "The baseline is **4.00 points** more accurate" in worse.analysis()
    assert list(r.table().columns) == ["measure", "LeNet", "SIFT-BoVW-SVM"]
    assert r.summary()["cnn_test_acc"] == 0.995 and r.summary()["bovw_feature_dim"] == 21_504


def q4_result(lenet, double) -> Q4Result:
    rows = [{"model": m, "seed": s, "test_acc": acc, "parameters": p, "seconds": 10.0 * k}
            for m, accs, p, k in (("lenet", lenet, 44_426, 1), ("double_conv_lenet", double, 51_748, 1.5))
            for s, acc in enumerate(accs)]
    return Q4Result(runs=pd.DataFrame(rows), curves=pd.DataFrame(), epochs=5, seeds=[0, 1, 2])


def test_q4_verdict_against_the_seed_spread():
    level = q4_result([0.988, 0.989, 0.987], [0.9875, 0.9885, 0.9880])
    assert level.gap.verdict == "level" and "not a clear difference" in level.analysis()
    worse = q4_result([0.988, 0.9885, 0.9875], [0.980, 0.9805, 0.9795])
    assert worse.gap.verdict == "lower" and "the deeper network does worse" in worse.analysis()
    assert worse.gap.difference == pytest.approx(-0.008)
    better = q4_result([0.980, 0.9805, 0.9795], [0.988, 0.9885, 0.9875])
    assert better.gap.verdict == "higher" and "extra depth pays off" in better.analysis()
    s = better.summary()
    assert s["lenet_seconds_per_epoch"] == pytest.approx(2.0) and s["double_conv_seconds_per_epoch"] == pytest.approx(3.0)
    assert s["double_conv_parameters"] - s["lenet_parameters"] == 7_322


# ---------------------------------------------------------------- saturating and non-saturating size curves


def q5_result(means, spreads=(0.02, 0.01, 0.001)) -> Q5Result:
    sizes = [600, 6000, 60_000]
    rows = [{"size": n, "full": n == 60_000, "seed": s, "test_acc": m + d * (1 if s == 0 else -1)}
            for n, m, d in zip(sizes, means, spreads) for s in (0, 1)]
    return Q5Result(runs=pd.DataFrame(rows), epochs=5, seeds=[0, 1])


def test_a_saturating_size_curve_is_called_saturating():
    r = q5_result([0.80, 0.95, 0.99])
    assert r.gains == pytest.approx([0.15, 0.04])
    assert r.saturates and r.spread_shrinks
    text = r.analysis()
    assert "shrinks as the set grows" in text and "The spread between seeds shrinks too" in text
    assert "it is all the data" in text
    assert r.summary()["test_acc_mean"] == {"600": pytest.approx(0.80), "6000": pytest.approx(0.95),
                                            "60000": pytest.approx(0.99)}


def test_a_log_linear_size_curve_is_not_saturating():
    r = q5_result([0.50, 0.60, 0.75], spreads=(0.001, 0.01, 0.02))
    assert r.gains == pytest.approx([0.10, 0.15])
    assert not r.saturates and not r.spread_shrinks
    assert "does not shrink: the network is still far from saturated" in r.analysis()
    assert r.table()["images per digit"].tolist() == ["60 each", "600 each", "5,421 to 6,742 (unbalanced)"]


# ---------------------------------------------------------------- questions 1 and 6, and the headlines


def test_q1_sees_when_the_test_loss_turns_up():
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [0.3, 0.1, 0.05], "train_acc": [0.9, 0.97, 0.99],
                            "test_loss": [0.1, 0.05, 0.07], "test_acc": [0.97, 0.985, 0.984], "seconds": [2.0] * 3})
    r = Q1Result(history, lr=0.001, optimizer="adam", batch_size=64, epochs=3, seed=42, parameters=44_426)
    assert r.overfits and int(r.lowest_test_loss.epoch) == 2
    assert "After 3 epochs LeNet reaches **98.40%**" in r.analysis() and "fit the training set more tightly" in r.analysis()
    assert not Q1Result(history.iloc[:2], 0.001, "adam", 64, 2, 42, 44_426).overfits
    assert list(r.table().columns) == ["epoch", "train loss", "test loss", "train accuracy", "test accuracy", "seconds"]


def q6_result(vit, lenet) -> Q6Result:
    recipes = {"assignment": {"optimizer": "adam"}, "improved": {"optimizer": "adamw", "vit": {"norm_first": True}}}
    rows = [{"recipe": r, "model": m, "size": n, "seed": 0, "test_acc": acc[r][i], "parameters": 1, "seconds": 1.0}
            for r in recipes for m, acc in (("vit", vit), ("lenet", lenet)) for i, n in enumerate((6000, 60_000))]
    return Q6Result(runs=pd.DataFrame(rows), curves=pd.DataFrame(), recipes=recipes, epochs=10, seeds=[0])


def test_q6_picks_the_recipe_by_the_vit_on_the_largest_set_and_checks_the_goals():
    r = q6_result(vit={"assignment": [0.942, 0.980], "improved": [0.962, 0.990]},
                  lenet={"assignment": [0.973, 0.990], "improved": [0.976, 0.992]})
    assert r.best_recipe == "improved" and r.goals_met
    assert r.lenet_lead(6000) == pytest.approx(0.014) and r.lenet_lead(60_000) == pytest.approx(0.002)
    assert r.lead_shrinks and "its lead shrinks as the data grows" in r.analysis()
    assert r.summary()["vit_60000_test_acc"] == 0.990 and r.summary()["recipes"]["assignment"]["vit_6000_test_acc"] == 0.942
    assert "norm_first: False under assignment, True under improved" in r.protocol()
    missed = q6_result(vit={"assignment": [0.90, 0.97], "improved": [0.96, 0.96]},
                       lenet={"assignment": [0.97, 0.99], "improved": [0.97, 0.99]})
    assert missed.best_recipe == "assignment" and not missed.goals_met and "not both met" in missed.analysis()


def test_headline_labels_come_from_the_parameters():
    summary = {"q1": {"test_acc": 0.99}, "q2": {"best_setting": "adam", "best_test_acc_mean": 0.991, "seeds": 3},
               "q3": {"bovw_test_acc": 0.99}, "q4": {"lenet_test_acc_mean": 0.988, "double_conv_test_acc_mean": 0.986},
               "q5": {"test_acc_mean": {"600": 0.73, "60000": 0.988}},
               "q6": {"recipe": "improved", "vit_6000_test_acc": 0.96, "vit_60000_test_acc": 0.99,
                      "lenet_6000_test_acc": 0.97, "lenet_60000_test_acc": 0.99}}
    table = results.headlines(summary, q1_epochs=3, q2_settings=12)
    assert table.result.iloc[0] == "1. LeNet, 3 epochs"
    assert table.result.iloc[1] == "2. best of 12 settings, adam (mean of 3 seeds)"
    assert "6. ViT, 60,000 images (improved recipe)" in table.result.tolist()
    assert table["the assignment"][table.result == "5. 600 training images (mean)"].item() == "81.83%"
