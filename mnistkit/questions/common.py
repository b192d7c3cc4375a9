"""What the questions share: building their runs' configs from the parameters, reading runs from
the store (never training them), and turning runs into frames."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from .. import data, runs
from ..config import FUSED, OPT_IN, RunConfig, resolve_device
from ..errors import ConfigError
from ..models import ensemblable
from ..params import Base as Params
from ..store import Store
from .text import say


@dataclass(frozen=True)
class Stage:
    """One stage of the plan: ``entries(params, store)`` gives the entries (``RunConfig`` or ``BovwConfig``)
    that ``questions`` need, reading only what earlier stages stored."""

    name: str
    questions: tuple
    entries: Callable


@dataclass(frozen=True)
class Question:
    """One question of the report, declared once as its module's ``QUESTION``: the registry
    (``mnistkit.questions.registry``) gives it its parameter section, its plan entries, its result and
    its place in the answers, the summary and the headlines."""

    name: str  # its module, its template, its parameter section, its notebook cell and its summary key: "q4"
    section: type  # its parameters: a dataclass of ``params.param`` fields, its docstring's first line their help
    runs: Callable  # params -> the entries known from the parameters alone
    result: Callable  # (params, store, results of ``needs`` by name) -> its result
    needs: tuple = ()  # the questions whose results its own reads
    stages: tuple = ()  # later ``Stage``s: entries known once earlier ones are stored
    check: Callable | None = None  # params -> None, raising ConfigError: what only the whole plan can check

    @property
    def number(self) -> int:
        """Its place among the answers: the number in its name."""
        return int(self.name.lstrip("q"))

    @property
    def question(self) -> str:
        """The question, as its section restates it (its template's ``question``)."""
        return say(self.name, "question")


class MissingRun(LookupError):
    """A question asked for an entry the store does not hold: the report trains before it reads."""

    def __init__(self, question: str, spec, root):
        label = spec.label() if isinstance(spec, RunConfig) else f"the entry {spec.folder_name()}"
        super().__init__(f"{question}: {label} is not in the run store {root}; build the report "
                         "(./build.sh, or Report.start in the notebook), which trains what is missing first")


def read(store: Store, specs: list, question: str) -> list:
    """The stored results of ``specs``, in order; ``MissingRun`` names the first one not there."""
    found = []
    for spec in specs:
        result = store.load(runs.entry(spec))
        if result is None:
            raise MissingRun(question, spec, store.root)
        found.append(result)
    return found


REPORT_WIDE = ("dataset", "device", "validation", *OPT_IN)  # set by the report for every run, never by a section


def config(name: str, **values) -> RunConfig:
    """A RunConfig whose errors name the parameter by its path in the parameter file."""
    try:
        return RunConfig.from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"{name}.{err.name}", err.value, err.allowed) from None


def _report_wide(name: str, values: dict) -> dict:
    """``values``, after refusing a setting the report sets for every run (``REPORT_WIDE``)."""
    for key in REPORT_WIDE:
        if key in values:
            raise ConfigError(f"{name}.{key}", values[key], f"is set for every run by the report's {key} parameter, "
                                                            "not by a section")
    return values


def _opted_in(params: Params, values: dict) -> dict:
    """The GPU paths the report's parameters ask for, where the run can take them: on CUDA, ensembles only for
    a model that keeps no batch statistics, CUDA graphs only for a fused optimizer."""
    if not resolve_device(params.device).startswith("cuda"):
        return {}
    model = values.get("model", RunConfig.model)
    return {"ensemble": params.ensemble and ensemblable(model, values.get("model_kw")),
            "cuda_graph": params.cuda_graph and values.get("optimizer", RunConfig.optimizer) in FUSED}


def base(params: Params, name: str, **values) -> RunConfig:
    """A run of the report: its device, its validation split and, unless given, its training set."""
    values.setdefault("subset", params.train_subset)
    return config(name, **_report_wide(name, values), dataset=params.dataset, device=params.device,
                  validation=params.validation, **_opted_in(params, values))


def whole(params: Params, name: str, **values) -> RunConfig:
    """A run that chooses nothing and is scored on the test set: trained on the whole training set,
    the validation images included (all 60,000, or the stand-in ``train_subset``). Validation images
    serve selections only."""
    values.setdefault("subset", params.train_subset)
    return config(name, **_report_wide(name, values), dataset=params.dataset, device=params.device, validation=0,
                  **_opted_in(params, values))


def distinct_sizes(params: Params, name: str) -> None:
    """Raise ``ConfigError`` where question ``name``'s sizes name one training set twice."""
    sizes = getattr(params, name).sizes
    sets = [subset(params, s) for s in sizes]
    if len(set(sets)) < len(sets):
        null = f" (null is the train_subset of {params.train_subset:,} here)" if params.train_subset else ""
        raise ConfigError(f"{name}.sizes", sizes, f"must not repeat a training set{null}")


def subset(params: Params, size: int | None) -> int | None:
    """The subset a size of the parameter file stands for: null is the training set, which is the
    stand-in ``train_subset`` where there is one."""
    return params.train_subset if size is None else size


def sized(params: Params, name: str, size, seed: int, **values) -> RunConfig:
    """A run on ``size`` balanced images (subset drawn with ``seed``, outside the validation split), or on
    the whole training set (``whole``) for None."""
    if size is None:
        return whole(params, name, seed=seed, **values)
    return base(params, name, subset=size, subset_seed=seed, seed=seed, **values)


def full_size(params: Params) -> int:
    """How many images 'the full training set' holds: 60,000, or the stand-in subset."""
    return data.train_images(params.train_subset, 0)


def row(run, **extra) -> dict:
    """One run as a frame row: its labels, settings and final numbers."""
    c, final = run.config, run.final
    return {**extra, "model": c.model, "optimizer": c.optimizer, "lr": c.lr, "batch_size": c.batch_size,
            "momentum": c.momentum, "weight_decay": c.weight_decay, "schedule": c.schedule,
            "warmup_epochs": c.warmup_epochs,
            "seed": c.seed, "epochs": len(run.history), "train_images": c.train_images, "test_acc": final["test_acc"],
            "val_acc": final.get("val_acc", math.nan),
            "test_loss": final["test_loss"], "train_acc": final["train_acc"],
            "seconds": float(run.history["seconds"].sum()), "parameters": run.info["parameters"],
            "run": run.key}


def curves(labelled) -> pd.DataFrame:
    """Every run's history, one row per epoch, with the run's labels and seed as columns."""
    return pd.concat([run.history.assign(**labels, seed=run.config.seed) for run, labels in labelled],
                     ignore_index=True)
