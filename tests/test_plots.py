"""The report's figures, drawn from small frames shaped like the questions' ones: what they show,
and that no snake_case name reaches a label, title, tick label or legend."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from scipy import stats  # noqa: E402

from mnistkit import plots  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def texts(fig) -> list[str]:
    """Every non-empty text the figure draws (labels, titles, tick labels, legends, annotations)."""
    fig.canvas.draw()
    return [t.get_text() for t in fig.findobj(Text) if t.get_text() and t.get_visible()]


def no_snake_case(fig):
    found = [t for t in texts(fig) if "_" in t]
    assert found == []


def summary_frame():
    return pd.DataFrame({
        "setting": [1, 2, 3], "label": ["adam lr 0.001 batch 64", "sgd lr 0.01 m 0.9 batch 128", "adam lr 0.01 batch 32"],
        "mean": [0.989, 0.987, 0.95], "std": [0.001, float("nan"), 0.004], "count": [3, 1, 3],
        "val_mean": [0.99, 0.98, 0.95], "val_std": [0.001, float("nan"), 0.003],
        "reported": [0.9905, float("nan"), 0.96], "seconds": [10.0, 9.0, 11.0]})


def trials_frame(diverged=True):
    rng = np.random.default_rng(0)
    n = 18
    acc = 0.9 + 0.08 * rng.random(n)
    if diverged:
        acc[[1, 5]] = [0.098, 0.1135]
    return pd.DataFrame({"optimizer": ["adam", "sgd", "rmsprop"] * 6, "lr": 10 ** rng.uniform(-4, -1, n),
                         "batch_size": [40, 100, 300, 480, 64, 200] * 3, "weight_decay": 1e-4, "momentum": float("nan"),
                         "val_acc": acc, "test_acc": acc})


def curves_frame(models=("lenet", "double_conv_lenet")):
    rows = [{"model": m, "seed": s, "epoch": e, "test_acc": 0.99 - 0.02 * k / 10 - (0.3 if e == 1 else 0.01 / e)}
            for k, m in enumerate(models) for s in range(2) for e in range(1, 5)]
    return pd.DataFrame(rows)


def test_settings_dots_draw_validation_and_test_with_t_intervals_and_mark_the_chosen_one():
    summary = summary_frame()
    fig = plots.settings_dots(summary, chosen=1)
    ax = fig.axes[0]
    assert not [p for p in ax.patches if isinstance(p, Rectangle)]
    segments = [s for c in ax.collections if isinstance(c, LineCollection) for s in c.get_segments()]
    assert len(segments) == 4  # validation and test of settings 1 and 3; setting 2 has a single seed: no interval
    first_val = min(segments, key=lambda s: abs(s[0][1] + 0.17))  # validation sits above its row (y = -0.17)
    half = 100 * stats.t.ppf(0.975, 2) * 0.001 / math.sqrt(3)
    assert sorted(first_val[:, 0]) == pytest.approx([99.0 - half, 99.0 + half])
    first_test = min(segments, key=lambda s: abs(s[0][1] - 0.17))
    assert sorted(first_test[:, 0]) == pytest.approx([98.9 - half, 98.9 + half])
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["1. adam lr 0.001 batch 64 (chosen)", "2. sgd lr 0.01 m 0.9 batch 128", "3. adam lr 0.01 batch 32"]
    assert ax.get_yticklabels()[0].get_fontweight() == "bold"
    low, high = ax.get_xlim()
    assert 90 < low < 95 - 100 * stats.t.ppf(0.975, 2) * 0.004 / math.sqrt(3) and 99.05 < high < 100
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["validation: mean, 95% interval over seeds", "test: mean, 95% interval over seeds",
                      "the assignment (one run, test)"]
    assert ax.get_xlabel() == "accuracy (%)"
    no_snake_case(fig)


def test_settings_dots_without_validation_reported_or_second_seed():
    summary = summary_frame().drop(columns=["reported", "val_mean"]).assign(count=1, std=float("nan"))
    fig = plots.settings_dots(summary)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["test: mean over seeds"]
    assert fig.axes[0].get_xlabel() == "test accuracy (%)"


def test_accuracy_by_class_dots_with_wilson_intervals():
    per_class = pd.DataFrame({"class": range(10), "LeNet": np.linspace(0.98, 0.995, 10),
                              "SIFT-BoVW-SVM": np.linspace(0.9, 0.97, 10)})
    images = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    fig = plots.accuracy_by_class(per_class, images)
    ax = fig.axes[0]
    assert not [p for p in ax.patches if isinstance(p, Rectangle)]
    assert ax.get_ylabel() == "test accuracy (%)"
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["LeNet", "SIFT-BoVW-SVM"]
    bars = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(bars) == 2
    segment = bars[1].get_segments()[0]  # the baseline's interval at digit 0
    x = round(0.9 * 980)
    p, z = x / 980, stats.norm.ppf(0.975)
    centre = (p + z ** 2 / (2 * 980)) / (1 + z ** 2 / 980)
    half = z * math.sqrt(p * (1 - p) / 980 + z ** 2 / (4 * 980 ** 2)) / (1 + z ** 2 / 980)
    assert sorted(segment[:, 1]) == pytest.approx([100 * (centre - half), 100 * (centre + half)], abs=1e-6)
    assert segment[0, 0] > 0  # dodged to the right of digit 0
    no_snake_case(fig)


def test_accuracy_by_class_without_images_has_no_intervals():
    per_class = pd.DataFrame({"class": range(10), "LeNet": np.linspace(0.98, 0.995, 10)})
    fig = plots.accuracy_by_class(per_class)
    assert not [c for c in fig.axes[0].collections if isinstance(c, LineCollection)]


IMPORTANCE = {"lr": 0.55, "batch_size": 0.22, "weight_decay": 0.15, "optimizer": 0.08, "momentum (within SGD)": 0.6}


def test_importances_ranked_with_momentum_apart():
    shuffled = {k: IMPORTANCE[k] for k in ("optimizer", "momentum (within SGD)", "lr", "weight_decay", "batch_size")}
    fig = plots.importances(shuffled)
    top, bottom = fig.axes
    ranked = [t.get_text() for t in top.get_yticklabels()]
    assert ranked == ["learning rate", "batch size", "weight decay", "optimizer"]
    assert not any("momentum" in label for label in ranked)
    assert [t.get_text() for t in bottom.get_yticklabels()] == ["momentum (within SGD trials only)"]
    widths = [p.get_width() for p in top.patches]
    assert widths == sorted(widths, reverse=True) == pytest.approx([55, 22, 15, 8])
    assert bottom.get_xlabel() == "fANOVA importance: normalized main effect (%)"
    assert max(bottom.get_xticks()) <= 100  # the axis may run on for the labels, its ticks not
    assert "55.0%" in texts(fig)
    no_snake_case(fig)


def test_importances_with_intervals_label_and_fit_them():
    ci95 = {k: [v - 0.05, v + 0.1] for k, v in IMPORTANCE.items()}
    fig = plots.importances(IMPORTANCE, ci95)
    shown = texts(fig)
    assert "55.0% [50.0, 65.0]" in shown and "60.0% [55.0, 70.0]" in shown
    ax = fig.axes[0]
    fig.canvas.draw()
    right = ax.get_window_extent().x1
    assert all(t.get_window_extent().x1 <= right + 1 for t in ax.texts)
    assert [c for c in ax.collections if isinstance(c, LineCollection)]  # the error bars


def test_importances_without_momentum():
    fig = plots.importances({k: v for k, v in IMPORTANCE.items() if k != "momentum (within SGD)"})
    assert len(fig.axes) == 1


def test_lr_curves_fit_the_trained_and_pin_the_diverged():
    study = trials_frame()
    fig = plots.lr_curves(study, "val_acc", "validation accuracy (%)")
    panels = fig.axes[:3]
    assert [ax.get_title() for ax in panels] == ["Adam", "SGD", "RMSprop"]
    low, high = panels[0].get_ylim()
    assert low > 11.35 and low > 85 and high < 100
    pinned = [c for ax in panels for c in ax.collections if c.get_paths()
              and len(c.get_offsets()) and np.all(c.get_offsets()[:, 1] < low + 0.1 * (high - low))]
    assert sum(len(c.get_offsets()) for c in pinned) == 2
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["failed (below 20%), drawn at the edge"]
    colorbar = fig.axes[-1]
    ticks = [t.get_text() for t in colorbar.get_yticklabels()]
    assert ticks == ["32", "64", "128", "256", "512"]
    no_snake_case(fig)


def test_lr_curves_without_divergence_add_no_legend():
    study = trials_frame(diverged=False).assign(batch_size=[64, 128, 256] * 6)
    fig = plots.lr_curves(study, "val_acc", "validation accuracy (%)")
    assert not fig.legends
    assert fig.axes[0].get_ylim()[0] > 85
    assert [t.get_text() for t in fig.axes[-1].get_yticklabels()] == ["64", "128", "256"]


def test_error_curves_show_every_epoch_on_a_log_axis_with_the_legend_off_the_curves():
    curves = curves_frame()
    fig = plots.error_curves(curves, hue="model", title="Test error per epoch")
    ax = fig.axes[0]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "test error (%, log scale)"
    error = 100 * (1 - curves.groupby(["model", "epoch"])["test_acc"].mean())
    low, high = ax.get_ylim()
    assert low < error.min() and error.max() < high  # the first epoch's points too: nothing cut off
    assert ax.get_legend() is None and len(fig.legends) == 1  # under the axes, not over a curve
    legend = fig.legends[0]
    assert {"doubled-conv LeNet", "LeNet"} <= {t.get_text() for t in legend.get_texts()}
    assert legend.get_title().get_text() == "model"
    no_snake_case(fig)


def test_error_curves_by_run_and_a_single_epoch():
    curves = curves_frame(("vit", "lenet")).assign(recipe="improved")
    runs = curves.assign(run=curves.model.map({"vit": "ViT", "lenet": "LeNet"}) + " / " + curves.recipe)
    fig = plots.error_curves(runs, hue="run")
    assert fig.legends[0].get_title().get_text() == "model / recipe"
    no_snake_case(fig)
    one = curves[curves.epoch == 1]
    fig = plots.error_curves(one, hue="model", style="recipe")
    assert "ViT" in texts(fig)
    no_snake_case(fig)


def test_training_history_size_curve_and_confusion_have_human_labels():
    history = pd.DataFrame([{"epoch": e, "seed": s, "train_loss": 1 / e, "test_loss": 1.1 / e,
                             "train_acc": 1 - 0.1 / e, "test_acc": 1 - 0.12 / e} for e in range(1, 4) for s in range(2)])
    no_snake_case(plots.training_history(history, "LeNet: loss and accuracy per epoch"))
    runs = pd.DataFrame([{"size": s, "seed": k, "test_acc": 1 - 30 / s ** 0.8 + 0.001 * k}
                         for s in (600, 6000, 60000) for k in range(3)])
    steps = runs.groupby("size")["test_acc"].agg(["mean", "std"]).reset_index()
    no_snake_case(plots.size_curve(runs, steps))
    matrix = pd.DataFrame(np.arange(100).reshape(10, 10), index=pd.Index(range(10), name="true"),
                          columns=pd.Index(range(10), name="predicted"))
    fig = plots.confusion({"CNN: 12 errors in 10,000": matrix, "ViT: 30 errors in 10,000": matrix})
    assert [ax.get_title() for ax in fig.axes] == ["CNN: 12 errors in 10,000", "ViT: 30 errors in 10,000"]
    annotations = fig.axes[0].texts
    assert len(annotations) == 90
    assert min(t.get_fontsize() for t in annotations) * plots.printed_scale(fig.get_size_inches()[0]) >= 8
    no_snake_case(fig)


def test_gallery_captions_print_at_8_points_or_more():
    images = torch.zeros(30, 1, 28, 28)
    for columns in (8, 12):
        fig = plots.gallery(images, ["3→5"] * 16, columns=columns, title="CNN: misclassified test digits")
        width = fig.get_size_inches()[0]
        captions = [ax.title for ax in fig.axes if ax.title.get_text()]
        assert len(captions) == 16 and captions[0].get_text() == "3→5"
        assert min(c.get_fontsize() for c in captions) * plots.printed_scale(width) >= 8
        assert fig._suptitle.get_text() == "CNN: misclassified test digits"
        no_snake_case(fig)


def test_error_curves_one_panel_per_training_set_with_one_legend():
    curves = pd.concat([curves_frame().assign(images="6,000 training images"),
                        curves_frame().assign(images="55,000 training images", test_acc=lambda f: f.test_acc - 0.05)])
    fig = plots.error_curves(curves, hue="model", panel="images")
    assert [ax.get_title() for ax in fig.axes] == ["6,000 training images", "55,000 training images"]
    assert all(ax.get_legend() is None for ax in fig.axes) and len(fig.legends) == 1
    assert fig.axes[1].get_ylim()[1] > fig.axes[0].get_ylim()[1]  # each panel fits its own curves
    no_snake_case(fig)


def test_every_figure_has_a_title():
    per_class = pd.DataFrame({"class": range(10), "LeNet": [0.99] * 10, "SIFT-BoVW-SVM": [0.98] * 10})
    runs = pd.DataFrame([{"size": s, "seed": k, "test_acc": 0.9 + 0.001 * k} for s in (600, 6000) for k in range(2)])
    figures = [plots.settings_dots(summary_frame()), plots.lr_curves(trials_frame()),
               plots.importances({"lr": 0.5, "optimizer": 0.3, "batch_size": 0.1, "weight_decay": 0.1}),
               plots.accuracy_by_class(per_class), plots.size_curve(runs)]
    for fig in figures:
        titled = (fig._suptitle is not None and fig._suptitle.get_text()) or any(ax.get_title() for ax in fig.axes)
        assert titled, fig
        plt.close(fig)


def test_an_importance_near_100_percent_keeps_its_label_inside_and_no_tick_past_100():
    fig = plots.importances({"lr": 0.95, "optimizer": 0.03, "batch_size": 0.01, "weight_decay": 0.01},
                            ci95={"lr": (0.8, 1.0)})
    axis = fig.axes[0]
    assert axis.get_xlim()[1] > 100 and max(axis.get_xticks()) == 100
