"""The report's runs: the plan of every question's store entries, training what is missing, and
each question's result object built from the store.

Data flows one way: ``params.Params`` -> ``plan`` (every training run and the BoVW baseline) ->
``train_missing`` (``Store.run_all`` computes what the store lacks) -> ``q1`` ... ``q6``,
``failures`` (read the store, return ``results`` objects). Nothing here knows of plots or cells.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data, numerics, results, stats, study
from .bovw import BovwConfig
from .config import RunConfig, device_name, resolve_device
from .errors import ConfigError
from .files import atomic_write_text
from .params import QUESTIONS, Params
from .store import Store
from .trainer import predict

CNNS = ("lenet", "double_conv_lenet")


# ---------------------------------------------------------------- parameters


def check(params: Params) -> Params:
    """``params`` once every run and the baseline of every question has been built from them (each
    value checked by its config's own rules); raises ConfigError naming the first fault."""
    plan(params)
    return params


def load_params(path=None, overrides: dict | None = None) -> Params:
    """The report's parameters: the schema's defaults, then a YAML file, then ``overrides``, checked
    as the notebook checks them; a bad key or value raises ConfigError before any work."""
    params = Params.from_yaml(path, overrides) if path is not None else Params.from_dict(overrides or {})
    return check(params)


# ---------------------------------------------------------------- the plan


def _config(name: str, **values) -> RunConfig:
    """A RunConfig whose errors name the parameter by its path in the parameter file."""
    try:
        return RunConfig.from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"{name}.{err.name}", err.value, err.allowed) from None


def _base(params: Params, name: str, **values) -> RunConfig:
    values.setdefault("subset", params.train_subset)
    return _config(name, device=params.device, validation=params.validation, **values)


def _sized(params: Params, name: str, size, seed: int, **values) -> RunConfig:
    """A run on ``size`` balanced images (subset drawn with ``seed``), or on the full set for None."""
    size = params.train_subset if size is None else size
    return _base(params, name, subset=size, subset_seed=seed if size is not None else 0, seed=seed, **values)


def _q2_values(params: Params, number: int) -> dict:
    """Setting ``number`` (from 1) of question 2 as RunConfig values, its epochs filled in."""
    values = {k: v for k, v in params.q2.settings[number - 1].items() if k != "reported"}
    values.setdefault("epochs", params.q2.epochs)
    return values


def q2_settings(params: Params):
    """``(setting number from 1, reported accuracy, config)`` for every setting and seed of question 2."""
    for number, setting in enumerate(params.q2.settings, start=1):
        for seed in params.seeds:
            yield number, setting.get("reported"), _base(params, f"q2.settings[{number - 1}]", seed=seed,
                                                         **_q2_values(params, number))


def q2_retrained(params: Params, number: int) -> list:
    """Question 2's selected setting (``number``, from 1) retrained on the whole training set, the
    validation images included, one run per seed; none under the assignment's protocol, whose runs
    trained on all of it already."""
    if not params.validation:
        return []
    return [_config(f"q2.settings[{number - 1}]", device=params.device, validation=0, subset=params.train_subset,
                    seed=seed, **_q2_values(params, number)) for seed in params.seeds]


def q2_study(params: Params):
    """``(drawn setting, config)`` for every trial of question 2's random search (``study.draw``)."""
    q = params.q2.study
    for i, setting in enumerate(study.draw(q.trials, q.seed)):
        yield setting, _base(params, f"q2.study (trial {i})", epochs=q.epochs, seed=q.seed, **setting)


def full_size(params: Params) -> int:
    """How many images 'the full training set' holds: 60,000 less the validation split, or the stand-in subset."""
    return params.train_subset or data.TRAIN_SIZE - params.validation


def _count(params: Params, size) -> int:
    return full_size(params) if size is None else size


def q5_runs(params: Params):
    """``(protocol, config)`` for question 5: every size over the seeds for ``q5.epochs`` epochs
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
            yield "equal_epochs", _sized(params, "q5", size, s, epochs=q.epochs)
    batch = _sized(params, "q5", None, 0, epochs=q.epochs).batch_size
    steps = q.epochs * math.ceil(largest / batch)
    for size in q.sizes:
        n = _count(params, size)
        if n == largest:
            continue
        epochs = math.ceil(steps / math.ceil(n / batch))
        for s in params.seeds:
            yield "equal_steps", _sized(params, "q5", size, s, epochs=epochs, evaluate_every=epochs)


def q6_runs(params: Params):
    """``(recipe, model, config)`` for every recipe, model, size and seed of question 6."""
    q = params.q6
    for name, recipe in q.recipes.items():
        values = {k: v for k, v in recipe.items() if k not in ("vit", "lenet")}
        values.setdefault("epochs", q.epochs)
        for model, size, seed in product(("vit", "lenet"), q.sizes, q.seeds):
            yield name, model, _sized(params, f"q6.recipes.{name}", size, seed, model=model,
                                      model_kw=recipe.get(model) or {}, **values)


def bovw_config(params: Params) -> BovwConfig:
    """The baseline's config: the parameter file's ``q3.bovw`` on the report's training set."""
    try:
        return BovwConfig.from_dict({"subset": params.train_subset, "validation": params.validation, **params.q3.bovw})
    except ConfigError as err:
        raise ConfigError(f"q3.bovw.{err.name}", err.value, err.allowed) from None


def plan(params: Params) -> dict:
    """Every store entry of every question, by question: the training runs (``RunConfig``) and the
    BoVW baseline (``BovwConfig``) the report reads. Not listed: question 2's selected setting
    retrained on the whole training set (``q2_retrained``), which ``train_missing`` adds once
    question 2's runs are stored, since they decide which setting it is."""
    q2 = [c for *_, c in q2_settings(params)]
    runs = {
        "q1": [_base(params, "q1", epochs=params.q1.epochs, seed=params.q1.seed)],
        "q2": q2 + [c for _, c in q2_study(params)],
        "q3": q2 + [bovw_config(params)],
        "q4": [_base(params, "q4", model=m, epochs=params.q4.epochs, seed=s) for m in CNNS for s in params.seeds],
        "q5": [c for _, c in q5_runs(params)],
        "q6": [c for *_, c in q6_runs(params)],
    }
    return runs


def _key(spec) -> str:
    return spec.folder_name() if isinstance(spec, BovwConfig) else spec.key()


def train_missing(params: Params, store: Store | None = None, progress: bool = True) -> dict:
    """Compute every entry the selected questions need that the store lacks (``Store.run_all``).

    Returns the training runs needed (``runs``) and trained now (``trained``), the same for the
    baselines (``baselines``, ``baselines_computed``), the seconds it took, and the training
    seconds of every run needed as stored (``runs_seconds``: what they cost, trained now or read).
    The question functions then only read the store.
    """
    store = store or Store()
    wanted = plan(params)
    questions = [params.only] if params.only else QUESTIONS
    specs = list({_key(c): c for q in questions for c in wanted[q]}.values())
    missing = [c for c in specs if store.load(c) is None]  # the executor orders them, longest first
    start = time.perf_counter()
    jobs = 1 if resolve_device(params.device).startswith("cuda") else params.jobs
    store.run_all(missing, jobs=jobs, progress=progress, cluster=params.cluster, tracker=params.tracker)
    if "q2" in questions and params.validation:  # the second stage: the chosen setting, retrained on all images
        retrained = q2_retrained(params, int(q2(params, store, settings_only=True).best.setting))
        new = [c for c in retrained if store.load(c) is None]
        store.run_all(new, jobs=jobs, progress=progress, cluster=params.cluster, tracker=params.tracker)
        specs, missing = specs + retrained, missing + new

    seconds = time.perf_counter() - start
    training = [c for c in specs if isinstance(c, RunConfig)]
    return {"runs": len(training), "trained": sum(isinstance(c, RunConfig) for c in missing),
            "baselines": len(specs) - len(training), "baselines_computed": sum(isinstance(c, BovwConfig) for c in missing),
            "seconds": seconds, "runs_seconds": sum(float(run.history["seconds"].sum())
                                                    for run in map(store.load, training) if run is not None)}


# ---------------------------------------------------------------- reading the store


def _read(store: Store, specs: list) -> list:
    """The stored results of ``specs``; a missing one is computed (``train_missing`` normally did)."""
    return store.run_all(specs, progress=False)


def _row(run, **extra) -> dict:
    c, final = run.config, run.final
    return {**extra, "model": c.model, "optimizer": c.optimizer, "lr": c.lr, "batch_size": c.batch_size,
            "momentum": c.momentum, "weight_decay": c.weight_decay, "schedule": c.schedule,
            "seed": c.seed, "epochs": len(run.history), "train_images": c.train_images, "test_acc": final["test_acc"],
            "val_acc": final.get("val_acc", math.nan),
            "test_loss": final["test_loss"], "train_acc": final["train_acc"],
            "seconds": float(run.history["seconds"].sum()), "parameters": run.info["parameters"],
            "run": run.key}


def _curves(labelled) -> pd.DataFrame:
    """Every run's history, one row per epoch, with the run's labels and seed as columns."""
    return pd.concat([run.history.assign(**labels, seed=run.config.seed) for run, labels in labelled],
                     ignore_index=True)


def q1(params: Params, store: Store | None = None) -> results.Q1Result:
    run = _read(store or Store(), plan(params)["q1"])[0]
    c = run.config
    return results.Q1Result(history=run.history, lr=c.lr, optimizer=c.optimizer, batch_size=c.batch_size,
                            epochs=c.epochs, seed=c.seed, parameters=run.info["parameters"],
                            train_subset=params.train_subset, validation=params.validation)


def q2(params: Params, store: Store | None = None, settings_only: bool = False) -> results.Q2Result:
    """Question 2's settings, study and the selected setting's runs on the whole training set
    (``q2_retrained``, which score it) from the store; with ``settings_only``, the settings alone
    (all that choosing the setting needs, and all that question 3 and the failures read)."""
    store = store or Store()
    items = list(q2_settings(params))
    fetched = _read(store, [c for *_, c in items])
    runs = pd.DataFrame([_row(run, setting=number, label=results.setting_label(config.to_dict()), reported=reported)
                         for (number, reported, config), run in zip(items, fetched)])
    trials = [] if settings_only else list(q2_study(params))
    searched = pd.DataFrame([{**_row(run), "momentum": setting.get("momentum", math.nan)}
                             for (setting, _), run in zip(trials, _read(store, [c for _, c in trials]))])
    result = results.Q2Result(runs=runs, study=searched, epochs=params.q2.epochs, study_epochs=params.q2.study.epochs,
                              seeds=params.seeds, selected_by=params.selected_by, train_size=full_size(params),
                              train_subset=params.train_subset, validation=params.validation)
    configs = [] if settings_only else q2_retrained(params, int(result.best.setting))
    if not configs:
        return result
    return dataclasses.replace(result, retrained=pd.DataFrame([_row(run) for run in _read(store, configs)]))


def best_setting_runs(params: Params, q2_result: results.Q2Result, store: Store | None = None) -> list:
    """The runs (one per seed, seeds in order) of question 2's best setting."""
    number = int(q2_result.best.setting)  # chosen by q2_result.selected_by
    return _read(store or Store(), [c for n, _, c in q2_settings(params) if n == number])


def inference_ms_per_image(run, repeats: int = 3) -> float:
    """Median wall time to classify the 10,000 test images with ``run``'s model, per image."""
    device = resolve_device(run.config.device)
    model = run.model(device)
    x, _ = data.load(False, device)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        predict(model, x)
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[1:])) / len(x)


def _per_class(run) -> list:
    x, y = data.load(False)
    pred = predict(run.model("cpu"), x)
    return [float((pred[y == c] == c).float().mean()) for c in range(10)]


def q3(params: Params, store: Store | None = None, q2_result: results.Q2Result | None = None) -> results.Q3Result:
    """The best setting of question 2 (its runs, and the first seed's model timed here) against the
    stored BoVW baseline."""
    store = store or Store()
    q2_result = q2_result or q2(params, store)
    cnn_runs = best_setting_runs(params, q2_result, store)
    first = cnn_runs[0]
    accs = pd.Series([r.final["test_acc"] for r in cnn_runs])
    base = _read(store, [bovw_config(params)])[0]
    x, y = data.load(False)
    paired = stats.mcnemar(predict(first.model("cpu"), x).numpy(), base.predictions, y.numpy()) if base.predictions else None
    cnn = results.Method(
        name=f"LeNet ({q2_result.best.label})", short="LeNet", test_acc=accs.mean(),
        test_acc_std=accs.std(ddof=1) if len(accs) > 1 else float("nan"), runs=len(cnn_runs),
        train_seconds=float(np.mean([r.history["seconds"].sum() for r in cnn_runs])),
        inference_ms_per_image=inference_ms_per_image(first), learned_parameters=int(first.info["parameters"]),
        feature_dim=84)
    bovw = results.Method(
        name="SIFT-BoVW-SVM", short="SIFT-BoVW-SVM", test_acc=base.test_acc, test_acc_std=float("nan"), runs=1,
        train_seconds=base.train_seconds, inference_ms_per_image=base.inference_ms_per_image,
        learned_parameters=base.config["words"] * 128 + base.feature_dim * 10 + 10, feature_dim=base.feature_dim)
    per_class = pd.DataFrame({"digit": range(10), cnn.short: _per_class(first), bovw.short: base.per_class_acc})
    return results.Q3Result(cnn=cnn, bovw=bovw, cnn_accs=list(accs), mcnemar=paired, per_class=per_class,
                            bovw_config=base.config,
                            bovw_seconds=base.seconds, train_size=base.train_size,
                            device_name=device_name(resolve_device(params.device)))


def q4(params: Params, store: Store | None = None) -> results.Q4Result:
    runs = _read(store or Store(), plan(params)["q4"])
    return results.Q4Result(runs=pd.DataFrame([_row(r) for r in runs]),
                            curves=_curves([(r, {"model": r.config.model}) for r in runs]),
                            epochs=params.q4.epochs, seeds=params.seeds, train_subset=params.train_subset,
                            validation=params.validation)


def q5(params: Params, store: Store | None = None) -> results.Q5Result:
    items = list(q5_runs(params))
    runs = _read(store or Store(), [c for _, c in items])
    frame = pd.DataFrame([_row(r, protocol=protocol, size=r.config.train_images, full=r.config.subset is None)
                          for (protocol, _), r in zip(items, runs)])
    return results.Q5Result(runs=frame, epochs=params.q5.epochs, seeds=params.seeds)


def q6(params: Params, store: Store | None = None) -> results.Q6Result:
    items = list(q6_runs(params))
    runs = _read(store or Store(), [c for *_, c in items])
    labelled = [(run, {"recipe": name, "model": model, "size": run.config.train_images})
                for (name, model, _), run in zip(items, runs)]
    return results.Q6Result(runs=pd.DataFrame([_row(run, **labels) for run, labels in labelled]),
                            curves=_curves(labelled), recipes=params.q6.recipes, epochs=params.q6.epochs,
                            seeds=params.q6.seeds, selected_by=params.selected_by)


def mistakes(run, name: str, device: str = "cpu") -> results.Mistakes:
    """The test set's confusion matrix and the misclassified images of ``run``'s model."""
    x, y = data.load(False, device)
    pred = predict(run.model(device), x)
    y = y.cpu()
    matrix = pd.crosstab(pd.Series(y.numpy(), name="true"), pd.Series(pred.numpy(), name="predicted"))
    matrix = matrix.reindex(index=range(10), columns=range(10), fill_value=0)
    wrong = (pred != y).nonzero().squeeze(1)
    errors = pd.DataFrame({"index": wrong.numpy(), "true": y[wrong].numpy(), "predicted": pred[wrong].numpy()})
    return results.Mistakes(name=name, matrix=matrix, errors=errors, images=x[wrong].cpu())


def failures(params: Params, store: Store | None = None, q2_result: results.Q2Result | None = None,
             q6_result: results.Q6Result | None = None) -> results.Failures:
    """The mistakes of question 2's best CNN (first seed) and of the ViT trained on question 6's
    largest set under its better recipe (first seed)."""
    store = store or Store()
    q2_result = q2_result or q2(params, store)
    q6_result = q6_result or q6(params, store)
    cnn = best_setting_runs(params, q2_result, store)[0]
    recipe, size = q6_result.best_recipe, q6_result.sizes[-1]
    vit_config = next(c for name, model, c in q6_runs(params) if name == recipe and model == "vit"
                      and c.train_images == size and c.seed == params.q6.seeds[0])
    vit = _read(store, [vit_config])[0]
    return results.Failures([mistakes(cnn, "CNN"), mistakes(vit, "ViT")])


# ---------------------------------------------------------------- summary


def write_summary(path, summary: dict) -> None:
    """Write ``summary`` (nested dict, accuracies as fractions) as JSON, atomically."""
    atomic_write_text(Path(path), json.dumps(summary, indent=2, sort_keys=True) + "\n")


def environment(params: Params) -> dict:
    """Where and with what the report ran: profile, device, torch version, threads per run, jobs and,
    on a CPU, the pinned kernels (``numerics.fingerprint``)."""
    device = resolve_device(params.device)
    env = {"profile": params.profile, "device": device, "device_name": device_name(device), "torch": torch.__version__,
           "threads": numerics.RUN_THREADS if device == "cpu" else torch.get_num_threads(), "jobs": params.jobs}
    if device == "cpu":
        env["kernels"] = {k: v for k, v in numerics.fingerprint().items() if k != "threads"}
    return env
