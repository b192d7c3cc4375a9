"""Question 6: a small Vision Transformer against LeNet on the same data and epochs, under each recipe."""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields
from functools import cached_property
from itertools import product

import pandas as pd

from .. import models, stats
from ..config import RunConfig
from ..errors import ConfigError, check_number
from ..params import Base as Params
from ..params import check_mapping, check_seeds, check_sizes, param
from ..store import Store
from .common import Question, distinct_sizes, curves, full_size, read, row, sized
from .text import (MODEL_NAMES, NA, SELECTED_BY, bracketed, captioned, judged, mean_std_column, pct, pm,
                   recipe_words, record, reported, say, setup)


def _run_values(recipe: dict, epochs: int) -> dict:
    """A recipe's run parameters (its models' own arguments apart), with the question's epochs unless it sets them."""
    return {"epochs": epochs, **{k: v for k, v in recipe.items() if k not in ("vit", "lenet")}}


def labelled_runs(params: Params):
    """``(recipe, model, config)`` for every recipe, model, size and seed."""
    q = params.q6
    for name, recipe in q.recipes.items():
        for model, size, seed in product(("vit", "lenet"), q.sizes, q.seeds):
            yield name, model, sized(params, f"q6.recipes.{name}", size, seed, model=model,
                                     model_kw=recipe.get(model) or {}, **_run_values(recipe, q.epochs))


def ablation_runs(params: Params):
    """``(group, config)``: the ViT under the last recipe with one group of its settings put back as the first
    recipe has them (a setting the first recipe leaves out falls back to the run's default), at the first
    size, once per seed."""
    q = params.q6
    first, last = list(q.recipes.values())[0], list(q.recipes.values())[-1]
    smallest = min(q.sizes, key=lambda s: full_size(params) if s is None else s)
    for group, keys in q.ablation.items():
        recipe = {k: v for k, v in last.items() if k not in keys} | {k: first[k] for k in keys if k in first}
        for seed in q.seeds:
            yield group, sized(params, f"q6.ablation.{group}", smallest, seed, model="vit",
                               model_kw=recipe.get("vit") or {}, **_run_values(recipe, q.epochs))


@dataclass(frozen=True)
class Section:
    """ViT vs LeNet: sizes, epochs, seeds, recipes, ablation of the last recipe"""

    sizes: list[typing.Optional[int]] = param([1000, None], "training-set sizes (None: the full set)")
    epochs: int = param(2, "training epochs of both models")
    seeds: list[int] = param([0], "seeds of this question (a 60,000-image ViT run costs minutes on a CPU)")
    recipes: dict[str, dict] = param({"assignment": {"optimizer": "adam", "lr": 0.001, "batch_size": 64}},
                          "name: run parameters; 'vit' and 'lenet' hold each model's own keyword arguments")
    ablation: dict[str, list[str]] = param({}, "name: settings of the last recipe put back as the first recipe has "
                                               "them, one group at a time (the ViT at the first size)")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)
        check_seeds("seeds", self.seeds)
        check_mapping("recipes", self.recipes)
        if not self.recipes:
            raise ConfigError("recipes", self.recipes, "must name at least one recipe")
        for name, recipe in self.recipes.items():
            check_mapping(f"recipes.{name}", recipe)
        check_mapping("ablation", self.ablation)
        if self.ablation and len(self.recipes) < 2:
            raise ConfigError("ablation", self.ablation, "needs two recipes: the last one, and the first to put back")
        changed = list(self.recipes.values())[-1]
        for name, keys in self.ablation.items():
            if not isinstance(keys, list) or not keys or any(k not in changed for k in keys):
                raise ConfigError(f"ablation.{name}", keys, f"must list settings the last recipe sets: {list(changed)}")

    def check(self, params) -> None:
        """The sizes against the report's dataset."""
        check_sizes("sizes", self.sizes, params.dataset)


def runs(params: Params) -> list:
    return [c for *_, c in labelled_runs(params)] + [c for _, c in ablation_runs(params)]


def result(params: Params, store: Store, needed: dict | None = None) -> "Q6Result":
    items, ablated = list(labelled_runs(params)), list(ablation_runs(params))
    fetched = read(store, [c for *_, c in items], "q6")
    labelled = [(run, {"recipe": name, "model": model, "size": run.config.train_images})
                for (name, model, _), run in zip(items, fetched)]
    ablation = pd.DataFrame([{"group": group, "size": run.config.train_images, "test_acc": run.final["test_acc"]}
                             for (group, _), run in zip(ablated, read(store, [c for _, c in ablated], "q6"))],
                            columns=["group", "size", "test_acc"])
    return Q6Result(runs=pd.DataFrame([row(run, **labels) for run, labels in labelled]),
                    curves=curves(labelled), recipes=params.q6.recipes, epochs=params.q6.epochs,
                    seeds=params.q6.seeds, selected_by=params.selected_by,
                    ablation=ablation, ablated=params.q6.ablation, reported=reported("q6", params.dataset) or {},
                    setup=setup("q6", params.dataset), margin=params.equivalence)


def describe_vit(shape: dict) -> str:
    return say("q6", "describe_vit", shape=shape, patches=(28 // shape["patch_size"]) ** 2)


def describe_vits(shapes: dict) -> str:
    """The ViT of the first recipe in words, and how the others' shapes differ from it."""
    differ = [k for k in models.VIT_SHAPE if len({s[k] for s in shapes.values()}) > 1]
    return say("q6", "describe_vits", shape=describe_vit(next(iter(shapes.values()))), differ=differ, shapes=shapes)


# what a setting the first recipe leaves out falls back to: the run's default (RunConfig), post-norm for the ViT
PUT_BACK_DEFAULTS = {**{f.name: f.default for f in fields(RunConfig)}, "vit": {"norm_first": False}}


@dataclass
class Q6Result:
    """The ViT against LeNet on the same data and epochs, under each recipe."""

    runs: pd.DataFrame  # one row per run: recipe, model, size, seed, test_acc, parameters, seconds
    curves: pd.DataFrame  # per epoch and run: recipe, model, size, seed, epoch, test_acc
    recipes: dict  # name -> run parameters (and 'vit'/'lenet' keyword arguments)
    epochs: int
    seeds: list
    selected_by: str = "val_acc"  # the accuracy that chooses the better recipe: val_acc or test_acc
    ablation: pd.DataFrame | None = None  # one row per ablation run: group, size, test_acc (the ViT, smallest size)
    ablated: dict = field(default_factory=dict)  # group -> the last recipe's settings it puts back
    reported: dict = field(default_factory=dict)  # the assignment's ViT by training images, on its dataset
    setup: dict = field(default_factory=dict)  # how the assignment trained them (text.setup), on its dataset
    margin: float = math.nan  # the verdicts' equivalence margin (params.Base.equivalence)

    @property
    def changed(self) -> str:
        """The recipe the ablation takes apart: the last one."""
        return list(self.recipes)[-1]

    @property
    def ablation_size(self) -> int:
        """The training set of the ablation's runs (the question's smallest)."""
        return int(self.ablation["size"].iloc[0])

    def ablation_effect(self, group: str) -> stats.Difference:
        """The last recipe's ViT minus the same with ``group`` put back, in test accuracy over seeds on the
        ablation's training set: above zero where the group's change helps."""
        a = self.ablation[self.ablation.group == group]
        return stats.difference(self.accs(self.changed, "vit", int(a["size"].iloc[0])), list(a.test_acc),
                                margin=self.margin)

    def ablation_table(self) -> pd.DataFrame | None:
        """One row per group: what it puts back, the ViT's test accuracy, and the full recipe minus it."""
        if not self.ablated:
            return None
        first = self.recipes[list(self.recipes)[0]]
        accs = {group: self.ablation.test_acc[self.ablation.group == group] for group in self.ablated}
        rows = [{"put back": group, "as": recipe_words({k: first.get(k, PUT_BACK_DEFAULTS.get(k)) for k in keys}),
                 "test accuracy, mean ± std": pm(accs[group].mean(), accs[group].std()),
                 f"{self.changed} recipe minus this": bracketed(self.ablation_effect(group))}
                for group, keys in self.ablated.items()]
        return captioned(pd.DataFrame(rows), say("q6", "ablation_caption", size=self.ablation_size,
                                                 changed=self.changed, first=list(self.recipes)[0], seeds=self.seeds))

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
        return stats.difference(self.accs(recipe, "vit", size), self.accs(recipe, "lenet", size), margin=self.margin)

    def gap_change(self, recipe: str | None = None) -> stats.Difference:
        """How ViT minus LeNet changes from the smallest set to the largest under ``recipe`` (default: the better
        one), with its interval: above zero where the ViT closes on LeNet (or pulls ahead) with more data."""
        return stats.change(self.vit_minus_lenet(self.sizes[-1], recipe), self.vit_minus_lenet(self.sizes[0], recipe))

    def gain(self, model: str, recipe: str | None = None) -> float:
        """What ``model`` gains in mean test accuracy from the smallest set to the largest."""
        recipe = recipe or self.best_recipe
        return self.acc(recipe, model, self.sizes[-1]) - self.acc(recipe, model, self.sizes[0])

    @cached_property
    def sizes(self) -> list[int]:
        return sorted(int(s) for s in self.runs["size"].unique())

    def acc(self, recipe: str, model: str, size: int) -> float:
        return float(self.table_frame.set_index(["recipe", "model", "size"]).loc[(recipe, model, size), "mean"])

    @property
    def best_recipe(self) -> str:
        """The recipe under which the ViT's mean deciding accuracy (validation, or test under the
        assignment's protocol) is highest on the smallest set, whose runs hold the validation images out
        (the first of equals); the runs on the whole set choose nothing."""
        return max(self.recipes, key=lambda n: sum(self.accs(n, "vit", self.sizes[0], self.selected_by)))

    def protocol(self) -> str:
        shapes = {name: models.vit_shape(recipe.get("vit") or {}) for name, recipe in self.recipes.items()}
        shape = describe_vits(shapes)
        vit = self.table_frame[self.table_frame.model == "vit"]
        return say("q6", "protocol", shape=shape, parameters=list(dict.fromkeys(vit.parameters)), sizes=self.sizes,
                   epochs=self.epochs, seeds=self.seeds, setup=self.setup, fewer=self.sizes[-1] / self.sizes[0],
                   recipes=[(name, recipe_words(recipe)) for name, recipe in self.recipes.items()])

    @property
    def title(self) -> str:
        depths = sorted({models.vit_shape(r.get("vit") or {})["depth"] for r in self.recipes.values()})
        return say("q6", "title", depths=depths)

    def answer(self) -> str:
        best, small, large = self.best_recipe, self.sizes[0], self.sizes[-1]
        at = [(self.acc(best, "vit", s), s, self.vit_minus_lenet(s)) for s in (small, large)]
        return say("q6", "answer", r=self, best=best, decider=self.decider, small=at[0], large=at[1],
                   seeds=self.seeds, time_ratios=self.time_ratios(best))

    def conclusion(self) -> str:
        small, large = self.sizes[0], self.sizes[-1]
        return say("q6", "conclusion", small=(small, self.vit_minus_lenet(small)),
                   large=(large, self.vit_minus_lenet(large)), ratio=self.time_ratio(large, self.best_recipe))

    @property
    def best_vit(self) -> dict:
        """The ViT's own keyword arguments under the better recipe."""
        return self.recipes[self.best_recipe].get("vit") or {}

    def time_ratio(self, size: int, recipe: str) -> float:
        """Mean seconds of a ViT run over those of a LeNet run on ``size`` images under ``recipe``."""
        t = self.table_frame
        t = t[(t["size"] == size) & (t.recipe == recipe)].groupby("model")["seconds"].mean()
        return float(t["vit"] / t["lenet"])

    def time_ratios(self, recipe: str) -> str:
        """The ViT's time over LeNet's at each size under ``recipe``, in words (the ratio differs between sizes)."""
        return say("q6", "time_ratios", recipe=recipe, ratios=[(s, self.time_ratio(s, recipe)) for s in self.sizes])

    def curves_at(self, size: int) -> pd.DataFrame:
        """The per-epoch curves of the runs on ``size`` images, ``run`` naming model and recipe."""
        c = self.curves[self.curves["size"] == size]
        return c.assign(run=c.model.map(MODEL_NAMES) + " / " + c.recipe)

    def panels(self) -> pd.DataFrame:
        """Every size's curves (``curves_at``), ``images`` naming the size: one panel each."""
        return pd.concat([self.curves_at(s).assign(images=f"{s:,} training images") for s in self.sizes],
                         ignore_index=True)

    def caption_panels(self) -> str:
        return say("q6", "caption_panels")

    def alt_panels(self) -> str:
        return " ".join(self.alt(s) for s in self.sizes)

    def alt(self, size: int) -> str:
        t = self.table_frame[self.table_frame["size"] == size]
        return say("q6", "alt", size=size, lines=[(r.model, r.recipe, r.mean) for r in t.itertuples()])

    def table(self) -> pd.DataFrame:
        t = self.table_frame
        frame = pd.DataFrame({
            "recipe": t.recipe,
            "model": t.model.map(MODEL_NAMES),
            "training images": t["size"].map("{:,}".format),
            **({"validation accuracy (mean)": t.val_mean.map(lambda v: NA if pd.isna(v) else pct(v))}
               if self.decider == "validation" else {}),
            "test accuracy, mean ± std": mean_std_column(t),
            "seeds": t["count"].astype(int),
            "parameters": t.parameters.map("{:,}".format),
            "seconds per run": t.seconds.map("{:,.0f}".format),
        })
        return captioned(frame, say("q6", "table_caption"))

    def analysis(self) -> str:
        best, small, large = self.best_recipe, self.sizes[0], self.sizes[-1]
        return say("q6", "analysis", comparisons=_comparisons(self), seeds=self.seeds, decider=self.decider,
                   best=best, chosen=_chosen(self), small=small, large=large,
                   reported=sorted(self.reported.items(), reverse=True),
                   trend=_trend(self), credits=_credits(self), setup=self.setup,
                   ratios=[(n, self.time_ratios(n)) for n in self.recipes])

    def headlines(self) -> list[tuple]:
        rows = []
        for s in self.sizes:
            reference = self.reported.get(s)
            rows.append((f"ViT, {s:,} images ({self.best_recipe} recipe, mean of "
                         f"{len(self.seeds)} seeds)", pct(self.acc(self.best_recipe, "vit", s)),
                         "" if reference is None else f"{pct(reference)} ({self.setup['encoder_layers']} layers)"))
        rows += [(f"ViT minus LeNet, {s:,} images, 95% interval",
                  f"{bracketed(self.vit_minus_lenet(s))}: {judged(self.vit_minus_lenet(s), 'ViT', 'LeNet')}", "")
                 for s in self.sizes]
        return rows

    def summary(self) -> dict:
        best = self.best_recipe
        t = self.table_frame.set_index(["recipe", "model", "size"])

        out = {"recipe": best, "selected_by": self.decider,
               "train_images": {m: sorted(int(n) for n in self.runs.train_images[self.runs.model == m].unique())
                                for m in ("vit", "lenet")}, "epochs": self.epochs, "seeds": len(self.seeds),
               "recipes": {n: {f"{m}_{str(s)}_test_acc_mean": self.acc(n, m, s) for m in ("vit", "lenet")
                               for s in self.sizes} for n in self.recipes}}
        for m in ("vit", "lenet"):
            for s in self.sizes:
                out[f"{m}_{str(s)}_test_acc_mean"] = self.acc(best, m, s)
                out[f"{m}_{str(s)}_test_acc_std"] = float(t.loc[(best, m, s), "std"])
        for s in self.sizes:
            d = self.vit_minus_lenet(s)
            out[f"vit_minus_lenet_{str(s)}"], out[f"vit_minus_lenet_{str(s)}_ci95"] = d.diff, d.ci95
        out["comparisons"] = {n: {str(s): record(self.vit_minus_lenet(s, n), "ViT", "LeNet") for s in self.sizes}
                              for n in self.recipes}
        out["vit_over_lenet_seconds"] = {n: {str(s): self.time_ratio(s, n) for s in self.sizes} for n in self.recipes}
        if self.ablated:
            a, effects = self.ablation, {g: self.ablation_effect(g) for g in self.ablated}
            out["ablation"] = {"recipe": self.changed, "images": str(self.ablation_size), "groups": {
                g: {"put_back": keys, "test_acc_mean": float(a.test_acc[a.group == g].mean()),
                    "full_minus_this": effects[g].diff, "full_minus_this_ci95": effects[g].ci95,
                    "verdict": judged(effects[g], f"{self.changed} recipe", f"{list(self.recipes)[0]} setting")}
                for g, keys in self.ablated.items()}}
        return out


def _comparisons(r: Q6Result) -> str:
    """One line per recipe: the ViT against LeNet at every size, with the interval and its verdict."""
    return say("q6", "comparisons", recipes=[
        (name, [(s, r.acc(name, "vit", s), r.acc(name, "lenet", s), r.vit_minus_lenet(s, name)) for s in r.sizes])
        for name in r.recipes])


def _chosen(r: Q6Result) -> str:
    """How the better recipe was chosen, with the deciding accuracies."""
    small = r.sizes[0]
    if r.decider != "validation":
        return say("q6", "chosen", small=small, vit_val=None)
    vit_val = {n: sum(r.accs(n, "vit", small, "val_acc")) / max(1, len(r.accs(n, "vit", small))) for n in r.recipes}
    return say("q6", "chosen", small=small, vit_val=vit_val)


def _credits(r: Q6Result) -> str:
    """What the ablation supports about the last recipe's parts: those whose removal costs accuracy (an
    interval above zero), the rest with no detectable effect or a cost, and none where one seed gives no
    interval; a change of the model (its 'vit' arguments, pre-norm) is named apart from the training recipe."""
    if not r.ablated:
        return say("q6", "no_ablation", changed=r.changed)
    effects = {g: r.ablation_effect(g) for g in r.ablated}
    if all(math.isnan(d.lo) for d in effects.values()):
        return say("q6", "one_seed_ablation", changed=r.changed)
    model = [g for g, keys in r.ablated.items() if "vit" in keys]

    def groups(verdict: str, of_model: bool) -> list:
        """``(group, the settings it puts back, its effect)`` of the groups with ``verdict``."""
        return [(g, r.ablated[g], d) for g, d in effects.items() if d.verdict == verdict and (g in model) == of_model]

    kinds = [(of_model, *(groups(v, of_model) for v in ("ahead", "equivalent", "undecided", "behind")))
             for of_model in (False, True)]
    return say("q6", "credits", size=r.ablation_size, kinds=[k for k in kinds if any(k[1:])])


def _trend(r: Q6Result) -> str:
    """How the ViT's gap to LeNet (better recipe) changes from the smallest set to the largest, with its interval,
    and the explanation that pattern allows."""
    return say("q6", "trend", r=r, best=r.best_recipe, small=r.sizes[0], large=r.sizes[-1], change=r.gap_change(),
               vit_gain=r.gain("vit"), lenet_gain=r.gain("lenet"),
               behind=r.vit_minus_lenet(r.sizes[0]).verdict == "behind")



QUESTION = Question("q6", Section, runs, result,
                    check=lambda params: distinct_sizes(params, "q6"))
