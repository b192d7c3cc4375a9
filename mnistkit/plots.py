"""Figures for the report: each function takes a DataFrame and returns a matplotlib Figure."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
from . import stats
from .data import MEAN, STD
from .questions.text import MODEL_NAMES, OPTIMIZER_NAMES, PARAMETER_NAMES
from .study import FAILED, WITHIN_SGD

sns.set_theme(style="whitegrid", context="notebook")

# How the figures name the frames' columns (values: questions.text's names of models, optimizers, parameters).
COLUMNS = {"run": "model / recipe", "model": "model", "recipe": "recipe", "size": "training images",
           "seed": "seed", "optimizer": "optimizer", "protocol": "protocol"}
BATCH_TICKS = (32, 64, 128, 256, 512)
PRINT_WIDTH = 7.0  # inches: the widest a figure is printed
PRINT_SCALE = 0.55  # in print a figure takes this share of its size in inches (the report's print CSS)
MIN_PRINTED_PT = 8.0  # the smallest caption size, in points, once printed


def printed_scale(width: float) -> float:
    """The share of its size a figure ``width`` inches wide is printed at."""
    return min(PRINT_SCALE, PRINT_WIDTH / width)


def legible(width: float) -> float:
    """The font size, in points, that prints at ``MIN_PRINTED_PT`` or more in a figure ``width`` inches wide."""
    return max(10.0, math.ceil(2 * MIN_PRINTED_PT / printed_scale(width)) / 2)


def _words(value):
    """A frame's value as the figures name it: known names mapped, any other underscore a space."""
    if not isinstance(value, str):
        return value
    return MODEL_NAMES.get(value, OPTIMIZER_NAMES.get(value, value.replace("_", " ")))


def _column(name: str) -> str:
    return COLUMNS.get(name, PARAMETER_NAMES.get(name, name.replace("_", " ")))


def _fit(low: float, high: float, share: float = 0.06, least: float = 0.2) -> tuple[float, float]:
    """``(low, high)`` widened by a margin of ``share`` of the span (at least ``least``)."""
    margin = max(share * (high - low), least)
    return low - margin, high + margin


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


def settings_dots(summary: pd.DataFrame, chosen: int | None = None, title: str = "Accuracy of each setting"):
    """Per setting (one row each): the mean validation accuracy, which chooses, and the mean test accuracy
    beside it, each with its 95% t interval over seeds; the assignment's reported single-run accuracy as
    a cross; the ``chosen`` setting's label marked. Without validation accuracies, test accuracy alone."""
    n = len(summary)
    fig, ax = plt.subplots(figsize=(7, 0.32 * n + 1.4), layout="constrained")
    y = np.arange(n)
    counts = summary["count"] if "count" in summary else pd.Series([math.nan] * n)
    validated = "val_mean" in summary and summary["val_mean"].notna().any()
    series = ([("validation", "val_mean", "val_std", "tab:blue", -0.17)] if validated else [])
    series.append(("test", "mean", "std", "tab:orange" if validated else "tab:blue", 0.17 if validated else 0.0))
    ends = []
    for name, mean_col, std_col, colour, shift in series:
        mean = 100 * summary[mean_col].to_numpy(dtype=float)
        half = 100 * np.array([stats.t_interval(s, c) for s, c in zip(summary[std_col], counts)], dtype=float)
        has = ~np.isnan(half)
        dots = dict(color=colour, markersize=7, zorder=3)
        if has.any():
            ax.errorbar(mean[has], y[has] + shift, xerr=half[has], fmt="o", capsize=4, elinewidth=1.6,
                        label=f"{name}: mean, 95% interval over seeds", **dots)
        if (~has).any():
            ax.plot(mean[~has], y[~has] + shift, "o", label=None if has.any() else f"{name}: mean over seeds", **dots)
        ends += [*(mean - np.where(has, half, 0)), *(mean + np.where(has, half, 0))]
    reported = summary["reported"].to_numpy(dtype=float) if "reported" in summary else np.full(n, np.nan)
    shown = ~np.isnan(reported)
    if shown.any():
        ax.scatter(100 * reported[shown], y[shown] + series[-1][-1], marker="x", s=60, linewidths=2, color="black",
                   zorder=4, label="the assignment (one run, test)")
        ends += list(100 * reported[shown])
    ax.set_xlim(*_fit(min(ends), max(ends), share=0.08, least=0.1))
    labels = [f"{int(s)}. {label}" + (" (chosen)" if chosen is not None and int(s) == chosen else "")
              for s, label in zip(summary["setting"], summary["label"])]
    ax.set_yticks(y, labels)
    for tick, s in zip(ax.get_yticklabels(), summary["setting"]):
        if chosen is not None and int(s) == chosen:
            tick.set_fontweight("bold")
    ax.set_ylim(n - 0.5, -0.5)
    ax.set(xlabel="accuracy (%)" if validated else "test accuracy (%)")
    ax.grid(axis="y", visible=False)
    handles, names = ax.get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: names[i].startswith("the assignment"))
    fig.legend([handles[i] for i in order], [names[i] for i in order], loc="outside lower center", ncol=2,
               frameon=False)
    fig.suptitle(title)
    return fig


def _batch_colorbar(fig, points, axes, norm):
    """The batch-size colorbar: ticks at the usual batch sizes within its range, as plain integers."""
    bar = fig.colorbar(points, ax=axes, label="batch size")
    ticks = [t for t in BATCH_TICKS if norm.vmin <= t <= norm.vmax] or [norm.vmin, norm.vmax]
    bar.ax.yaxis.set_major_locator(FixedLocator(ticks))
    bar.ax.yaxis.set_ticklabels([f"{t:g}" for t in ticks])
    bar.ax.yaxis.set_minor_locator(NullLocator())
    bar.ax.yaxis.set_minor_formatter(NullFormatter())
    return bar


def lr_curves(study: pd.DataFrame, value: str = "val_acc", label: str = "validation accuracy (%)",
              title: str = "Accuracy against learning rate, per optimizer"):
    """Each trial's ``value`` against its learning rate (log axis), one panel per optimizer,
    coloured by batch size (log colour scale), so the optimizer x learning-rate interaction shows.
    The y range fits the trials that trained; those that failed (below 20%) are drawn as
    triangles at its bottom edge."""
    optimizers = list(dict.fromkeys(study["optimizer"]))
    fig, axes = plt.subplots(1, len(optimizers), figsize=(3.6 * len(optimizers) + 1.2, 3.6), squeeze=False,
                             sharey=True, layout="constrained")
    low, high = study["batch_size"].min(), study["batch_size"].max()
    # the colour scale spans the usual batch sizes around the drawn ones, so its ticks reach both ends
    low = max([t for t in BATCH_TICKS if t <= low] or [low])
    high = min([t for t in BATCH_TICKS if t >= high] or [high])
    norm = plt.matplotlib.colors.LogNorm(low, max(high, low + 1))
    pct = 100 * study[value].astype(float)
    failed = pct < 100 * FAILED
    trained = pct[~failed]
    bottom = top = None
    if len(trained) and failed.any():
        bottom, top = _fit(trained.min(), trained.max(), share=0.08, least=0.3)
    style = dict(cmap="viridis", norm=norm, s=40, edgecolor="black", linewidth=0.4)
    for ax, opt in zip(axes[0], optimizers):
        rows = (study.optimizer == opt).to_numpy()
        keep, out = rows & ~failed.to_numpy(), rows & failed.to_numpy()
        if bottom is None:  # nothing failed, or every trial did: one scale for all
            keep, out = rows, np.zeros_like(rows)
        ax.scatter(study["lr"][keep], pct[keep], c=study["batch_size"][keep], **style)
        if out.any():
            edge = bottom + 0.045 * (top - bottom)
            ax.scatter(study["lr"][out], np.full(out.sum(), edge), c=study["batch_size"][out], marker="v",
                       clip_on=False, zorder=3, **{**style, "s": 55})
        ax.set_xscale("log")
        ax.set(title=_words(opt), xlabel="learning rate")
    if bottom is not None:
        axes[0][0].set_ylim(bottom, top)
    axes[0][0].set(ylabel=label)
    _batch_colorbar(fig, plt.matplotlib.cm.ScalarMappable(norm=norm, cmap="viridis"), axes[0].tolist(), norm)
    if bottom is not None:
        marker = Line2D([], [], marker="v", linestyle="none", markersize=8, markerfacecolor="lightgray",
                        markeredgecolor="black", label=f"failed (below {100 * FAILED:.0f}%), drawn at the edge")
        fig.legend(handles=[marker], loc="outside lower center", frameon=False)
    fig.suptitle(title)
    return fig


def _bars(ax, names, values, ci95, labels):
    """Horizontal bars of ``values`` (fractions) in percent, with their intervals and text labels."""
    pct = np.array([100 * values[k] for k in names], dtype=float)
    y = np.arange(len(names))
    xerr = None
    if ci95 is not None:
        lo = np.array([100 * ci95[k][0] if k in ci95 else np.nan for k in names])
        hi = np.array([100 * ci95[k][1] if k in ci95 else np.nan for k in names])
        xerr = np.nan_to_num(np.clip(np.vstack([pct - lo, hi - pct]), 0, None))
    ax.barh(y, pct, xerr=xerr, color="tab:blue", alpha=0.85, capsize=3 if xerr is not None else 0,
            error_kw={"elinewidth": 1.2})
    ax.set_yticks(y, [labels(k) for k in names])
    ax.set_ylim(len(names) - 0.5, -0.5)
    ax.grid(axis="y", visible=False)
    texts = []
    for i, k in enumerate(names):
        end = pct[i] + (xerr[1][i] if xerr is not None else 0)
        text = f"{pct[i]:.1f}%"
        if ci95 is not None and k in ci95:
            text += f" [{100 * ci95[k][0]:.1f}, {100 * ci95[k][1]:.1f}]"
        texts.append(ax.text(end + 1, i, text, va="center", fontsize=10))
    return texts


def importances(importance: dict, ci95: dict | None = None,
                title: str = "Which hyperparameters matter: fANOVA importance"):
    """fANOVA importance of each searched hyperparameter, as horizontal bars, most important first;
    momentum's share within the SGD trials, not comparable with the others, in its own panel below.
    ``ci95`` maps the same keys to ``[low, high]`` (fractions), drawn as error bars."""
    ranked = sorted((k for k in importance if k != WITHIN_SGD), key=lambda k: -importance[k])
    within = WITHIN_SGD in importance
    heights = [len(ranked), 1] if within else [len(ranked)]
    fig, axes = plt.subplots(len(heights), 1, figsize=(7, 0.45 * sum(heights) + 1.3), sharex=True,
                             gridspec_kw={"height_ratios": heights}, squeeze=False, layout="constrained")
    axes = axes[:, 0]
    texts = _bars(axes[0], ranked, importance, ci95, lambda k: PARAMETER_NAMES.get(k, _words(k)))
    if within:
        texts += _bars(axes[1], [WITHIN_SGD], importance, ci95, lambda k: "momentum (within SGD trials only)")
        axes[1].set_facecolor("#f4f4f4")
    axes[-1].set(xlabel="fANOVA importance: normalized main effect (%)")
    ends = [100 * max([importance[k], *(ci95.get(k, ()) if ci95 else ())]) for k in importance]
    axes[0].set_xlim(0, max(max(ends) + 1, 5))
    # widen the axis so that every text label fits inside it
    fig.canvas.draw()
    for _ in range(2):
        inverse = axes[0].transData.inverted()
        right = max(inverse.transform(t.get_window_extent().get_points())[1][0] for t in texts)
        axes[0].set_xlim(0, max(axes[0].get_xlim()[1], right * 1.03))
        fig.canvas.draw()
    axes[-1].set_xticks([t for t in axes[-1].get_xticks() if 0 <= t <= 100])  # room for labels, no share past 100%
    fig.suptitle(title)
    return fig


def accuracy_by_class(per_class: pd.DataFrame, images=None, names=None, kind: str = "digit"):
    """Test accuracy per class, one marker per method (every column but ``class``), side by side;
    with ``images`` (test images per class), each with its 95% Wilson interval; ``names`` label the classes
    (else their numbers), ``kind`` is the word for one."""
    methods = [c for c in per_class.columns if c != "class"]
    digits = per_class["class"].to_numpy()
    fig, ax = plt.subplots(figsize=(8, 3.6), layout="constrained")
    offsets = np.linspace(-0.16, 0.16, len(methods)) if len(methods) > 1 else [0.0]
    colours = sns.color_palette(n_colors=max(len(methods), 1))
    markers = ["o", "s", "D", "^", "v", "P", "X"]
    ends = []
    for i, (method, offset) in enumerate(zip(methods, offsets)):
        acc = per_class[method].to_numpy(dtype=float)
        yerr = None
        if images is not None:
            nobs = np.asarray(images, dtype=float)
            low, high = stats.wilson(np.round(acc * nobs), nobs)
            yerr = 100 * np.clip(np.vstack([acc - low, high - acc]), 0, None)
            ends += [*(100 * low), *(100 * high)]
        ends += list(100 * acc)
        ax.errorbar(digits + offset, 100 * acc, yerr=yerr, fmt=markers[i % len(markers)], color=colours[i],
                    markersize=7, capsize=3 if yerr is not None else 0, elinewidth=1.2, label=_words(method))
    long = names is not None and max(map(len, names)) > 2
    ax.set_xticks(digits, names if names is not None else digits, rotation=30 if long else 0)
    low, high = _fit(min(ends), max(ends), share=0.08, least=0.2)
    ax.set(xlabel=kind, ylabel="test accuracy (%)", ylim=(max(low, 0), min(high, 100.5)))
    ax.grid(axis="x", visible=False)
    fig.legend(loc="outside lower center", ncol=len(methods), frameon=False,
               title="method, 95% Wilson interval" if images is not None else None)
    fig.suptitle(f"Test accuracy per {kind}")
    return fig


def error_curves(curves: pd.DataFrame, hue: str, style: str | None = None, title: str = "",
                 panel: str | None = None):
    """Test error (100 - accuracy, %) per epoch on a log axis, one line per ``hue`` (mean over seeds, band:
    +-1 std), one panel per value of ``panel`` (titled with it) where given. The log axis shows every
    epoch, the first one's high error too, and still separates the last epochs' tenths of a point; the
    legend sits under the panels, off the curves."""
    groups = list(dict.fromkeys(curves[panel])) if panel else [None]
    fig, axes = plt.subplots(1, len(groups), figsize=(7 if panel is None else 5.5 * len(groups), 4.2), squeeze=False,
                             layout="constrained")
    for ax, group in zip(axes[0], groups):
        part = curves if group is None else curves[curves[panel] == group]
        _error_axis(ax, part, hue, style, title if group is None else str(group))
    handles, labels = axes[0][-1].get_legend_handles_labels()
    for ax in axes[0]:
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(4, max(1, len(labels))), frameon=False,
               title=None if style else _column(hue))
    if panel is not None and title:
        fig.suptitle(title)
    return fig


ERROR_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)  # a log axis' labels; the dense ones where they fit
ERROR_TICKS_DENSE = (0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 15, 20, 30, 50, 70, 100)


def _error_axis(ax, curves: pd.DataFrame, hue: str, style: str | None, title: str) -> None:
    names = {c: _column(c) for c in (hue, style) if c is not None}
    frame = curves.assign(**{"test error (%)": 100 * (1 - curves["test_acc"])})
    for column in names:
        frame[column] = frame[column].map(_words)
    frame = frame.rename(columns=names)
    sns.lineplot(frame, x="epoch", y="test error (%)", hue=names[hue], style=names.get(style) if style else None,
                 errorbar="sd", marker="o", ax=ax, legend="auto")
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    dense = [t for t in ERROR_TICKS_DENSE if low <= t <= high]
    ax.yaxis.set_major_locator(plt.matplotlib.ticker.FixedLocator(dense if len(dense) <= 8 else ERROR_TICKS))
    ax.yaxis.set_major_formatter(plt.matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(plt.matplotlib.ticker.NullFormatter())
    ax.set(ylabel="test error (%, log scale)", title=title)
    ax.set_xticks(sorted(frame["epoch"].unique()))


def size_curve(runs: pd.DataFrame, steps: pd.DataFrame | None = None,
               title: str = "Test accuracy against training-set size"):
    """Test accuracy against training-set size (log axis): seeds as dots, mean +- std as a line,
    one line per protocol (``runs`` at equal epochs; ``steps``, the summary at equal steps)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    summary = runs.groupby("size")["test_acc"].agg(["mean", "std"]).fillna(0).reset_index()
    ax.errorbar(summary["size"], 100 * summary["mean"], yerr=100 * summary["std"], fmt="-o", capsize=4,
                label="equal epochs, mean ± std")
    if steps is not None:
        ax.errorbar(steps["size"], 100 * steps["mean"], yerr=100 * steps["std"].fillna(0), fmt="--s", capsize=4,
                    label="equal steps, mean ± std")
    ax.scatter(runs["size"], 100 * runs["test_acc"], color="gray", s=12, alpha=0.7, label="one seed (equal epochs)")
    ax.set_xscale("log")
    ax.set_xticks(summary["size"], [f"{s:,}" for s in summary["size"]])
    ax.minorticks_off()
    ax.set(xlabel="training images", ylabel="test accuracy (%)", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def confusion(matrices: dict):
    """One confusion matrix per title of ``matrices``, side by side, the diagonal masked so the
    mistakes stand out."""
    fig, axes = plt.subplots(1, len(matrices), figsize=(5.2 * len(matrices), 4.6), squeeze=False)
    for ax, (title, matrix) in zip(axes[0], matrices.items()):
        mask = np.eye(len(matrix), dtype=bool)
        sns.heatmap(matrix, mask=mask, annot=True, fmt="d", cmap="Reds", cbar=False, ax=ax,
                    linewidths=0.5, linecolor="lightgray", annot_kws={"fontsize": legible(5.2 * len(matrices))})
        ax.set(title=title, xlabel="predicted", ylabel="true")
        ax.grid(False)
        ax.tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


def gallery(images, captions: list, columns: int = 8, title: str = ""):
    """Misclassified test images, each with its caption ('true -> predicted'), in captions that print at
    8 pt or more (``legible``)."""
    n = min(len(captions), len(images))
    lines = [line for caption in captions[:n] for line in caption.split("\n")]
    longest = max(map(len, lines), default=1)
    fontsize = legible(columns * 0.9)
    column = max(0.9, 0.6 * longest * fontsize / 72 + 0.1)  # a caption's widest line, at about 0.6 em a letter
    while columns > 2 and columns * column > 2 * PRINT_WIDTH:  # long class names: fewer, wider columns
        columns //= 2
    rows = max(1, -(-n // columns))
    width = columns * column
    fontsize = legible(width)
    tall = max(caption.count("\n") + 1 for caption in captions[:n]) if n else 1
    fig, axes = plt.subplots(rows, columns, figsize=(width, rows * (0.9 + fontsize / 72 * (0.6 + tall)) + 0.4),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i, 0] * STD + MEAN, cmap="gray_r", vmin=0, vmax=1)
            ax.set_title(captions[i], fontsize=fontsize, pad=3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
