"""Figures for the report: each function takes a DataFrame and returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .data import MEAN, STD

sns.set_theme(style="whitegrid", context="notebook")


def training_history(histories: pd.DataFrame, title: str = ""):
    """Train and test loss (left) and accuracy (right) per epoch: the mean over the ``seed`` column's
    runs, with a band of one standard deviation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
    frame = histories.assign(train_pct=100 * histories["train_acc"], test_pct=100 * histories["test_acc"])
    for split, marker in (("train", "o"), ("test", "s")):
        for ax, y in ((left, f"{split}_loss"), (right, f"{split}_pct")):
            sns.lineplot(frame, x="epoch", y=y, errorbar="sd", marker=marker, label=split, ax=ax)
    left.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    right.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (left, right):
        ax.set_xticks(sorted(histories["epoch"].unique()))
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def settings_bars(summary: pd.DataFrame):
    """Mean test accuracy per setting with +-1 std error bars, and the assignment's reported figure."""
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(summary) + 1.2))
    y = np.arange(len(summary))
    ax.barh(y, 100 * summary["mean"], xerr=100 * summary["std"].fillna(0), color="tab:blue", alpha=0.8,
            capsize=3, label="mnistkit (mean +- std over seeds)")
    if "reported" in summary and summary["reported"].notna().any():
        ax.scatter(100 * summary["reported"], y, marker="x", color="black", zorder=3, label="assignment (1 run)")
    ax.set_yticks(y, [f"{s}. {label}" for s, label in zip(summary["setting"], summary["label"])])
    ax.invert_yaxis()
    low = 100 * min(summary["mean"].min(), summary.get("reported", summary["mean"]).min())
    ax.set_xlim(max(0, low - 1), 100)
    ax.set(xlabel="test accuracy (%)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.5 / len(summary) - 0.08), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def lr_curves(study: pd.DataFrame, value: str = "val_acc", label: str = "validation accuracy (%)"):
    """Each trial's ``value`` against its learning rate (log axis), one panel per optimizer,
    coloured by batch size (log colour scale), so the optimizer x learning-rate interaction shows."""
    optimizers = list(dict.fromkeys(study["optimizer"]))
    fig, axes = plt.subplots(1, len(optimizers), figsize=(3.8 * len(optimizers), 3.4), squeeze=False, sharey=True)
    norm = plt.matplotlib.colors.LogNorm(study["batch_size"].min(), max(study["batch_size"].max(), study["batch_size"].min() + 1))
    for ax, opt in zip(axes[0], optimizers):
        t = study[study.optimizer == opt].sort_values("lr")
        points = ax.scatter(t["lr"], 100 * t[value], c=t["batch_size"], cmap="viridis", norm=norm, s=36,
                            edgecolor="black", linewidth=0.4)
        ax.set_xscale("log")
        ax.set(title=opt, xlabel="learning rate")
    axes[0][0].set(ylabel=label)
    fig.colorbar(points, ax=axes[0].tolist(), label="batch size")
    return fig


def importances(importance: dict):
    """fANOVA importance of each hyperparameter, as horizontal bars."""
    names = list(importance)
    fig, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 0.9))
    ax.barh(names, [100 * importance[n] for n in names], color="tab:blue")
    for i, n in enumerate(names):
        ax.text(100 * importance[n] + 0.5, i, f"{100 * importance[n]:.1f}%", va="center")
    ax.invert_yaxis()
    ax.set(xlabel="fANOVA importance (%)", xlim=(0, 110))
    fig.tight_layout()
    return fig


def accuracy_by_class(per_class: pd.DataFrame):
    """Test accuracy per digit, one bar per method (every column but ``digit``)."""
    long = per_class.melt(id_vars="digit", var_name="method", value_name="accuracy")
    fig, ax = plt.subplots(figsize=(8, 3.2))
    sns.barplot(long.assign(accuracy=100 * long["accuracy"]), x="digit", y="accuracy", hue="method", ax=ax)
    ax.set(ylabel="test accuracy (%)", ylim=(max(0, 100 * long["accuracy"].min() - 2), 100))
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    fig.tight_layout()
    return fig


def accuracy_curves(curves: pd.DataFrame, hue: str, style: str | None = None, title: str = ""):
    """Test accuracy per epoch, one line per ``hue`` (mean over seeds, band: +-1 std)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    frame = curves.assign(test_acc_pct=100 * curves["test_acc"])
    sns.lineplot(frame, x="epoch", y="test_acc_pct", hue=hue, style=style, errorbar="sd", marker="o", ax=ax)
    ax.set(ylabel="test accuracy (%)", title=title)
    ax.set_xticks(sorted(frame["epoch"].unique()))
    fig.tight_layout()
    return fig


def size_curve(runs: pd.DataFrame, steps: pd.DataFrame | None = None):
    """Test accuracy against training-set size (log axis): seeds as dots, mean +- std as a line,
    one line per protocol (``runs`` at equal epochs; ``steps``, the summary at equal steps)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    summary = runs.groupby("size")["test_acc"].agg(["mean", "std"]).fillna(0).reset_index()
    ax.errorbar(summary["size"], 100 * summary["mean"], yerr=100 * summary["std"], fmt="-o", capsize=4,
                label="equal epochs, mean +- std")
    if steps is not None:
        ax.errorbar(steps["size"], 100 * steps["mean"], yerr=100 * steps["std"].fillna(0), fmt="--s", capsize=4,
                    label="equal steps, mean +- std")
    ax.scatter(runs["size"], 100 * runs["test_acc"], color="gray", s=12, alpha=0.7, label="one seed (equal epochs)")
    ax.set_xscale("log")
    ax.set_xticks(summary["size"], [f"{s:,}" for s in summary["size"]])
    ax.minorticks_off()
    ax.set(xlabel="training images", ylabel="test accuracy (%)")
    ax.legend()
    fig.tight_layout()
    return fig


def confusion(matrix: pd.DataFrame, title: str = ""):
    """The confusion matrix with the diagonal masked, so the mistakes stand out."""
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    mask = np.eye(len(matrix), dtype=bool)
    sns.heatmap(matrix, mask=mask, annot=True, fmt="d", cmap="Reds", cbar=False, ax=ax,
                linewidths=0.5, linecolor="lightgray")
    ax.set(title=title, xlabel="predicted", ylabel="true")
    fig.tight_layout()
    return fig


def gallery(images, errors: pd.DataFrame, n: int = 24, columns: int = 12, title: str = ""):
    """The first ``n`` misclassified test digits, each captioned 'true -> predicted'."""
    n = min(n, len(errors))
    rows = max(1, -(-n // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 0.8, rows * 1.0), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, 0] * STD + MEAN, cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(f"{errors['true'].iloc[i]}→{errors['predicted'].iloc[i]}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
