"""One function per question of the assignment: list its runs, fetch them from the store, return frames.

``load_params`` validates a whole parameter set (every run of every question is built and
checked) before anything trains. ``train_missing`` trains what the store lacks, in parallel.
The question functions then only read the store and return pandas DataFrames; they know
nothing of plots.
"""

from __future__ import annotations

import dataclasses
import json
import time
from itertools import product
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import data
from .config import RunConfig, device_name, resolve_device
from .errors import ConfigError
from . import tracking
from .files import atomic_write_text, read_yaml
from .store import Store
from .trainer import predict

QUESTIONS = ("q1", "q2", "q3", "q4", "q5", "q6")
RUN_FIELDS = [f.name for f in dataclasses.fields(RunConfig)]
TOP_KEYS = ("profile", "only", "jobs", "device", "seeds", "train_subset", "figures_dir", "progress", "tracker",
            *QUESTIONS)
NOTEBOOK = Path(__file__).resolve().parents[1] / "report.ipynb"
SECTION_KEYS = {
    "q1": ("epochs", "seed"),
    "q2": ("epochs", "settings", "factorial"),
    "q3": ("bovw",),
    "q4": ("epochs",),
    "q5": ("sizes", "epochs"),
    "q6": ("sizes", "epochs", "seeds", "recipes"),
}
FACTORS = ("optimizer", "lr", "batch_size")
CNNS = ("lenet", "double_conv_lenet")


# ---------------------------------------------------------------- parameters


def _keys(name: str, value, allowed) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(name, value, f"must be a mapping with keys from {list(allowed)}")
    for key in value:
        if key not in allowed:
            raise ConfigError(f"{name}.{key}" if name else key, value[key],
                              f"is not a parameter; allowed here: {list(allowed)}")
    return value


def _config(name: str, **values) -> RunConfig:
    """A RunConfig whose errors name the parameter by its path in the parameter file."""
    try:
        return RunConfig.from_dict(values)
    except ConfigError as err:
        raise ConfigError(f"{name}.{err.name}", err.value, err.allowed) from None


def _seeds(name, value) -> list:
    if not isinstance(value, list) or not value or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           and s >= 0 for s in value):
        raise ConfigError(name, value, "must be a non-empty list of integers >= 0")
    return value


def notebook_defaults(notebook: Path = NOTEBOOK) -> dict:
    """The values of the report's cell tagged ``parameters``: what papermill starts from."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c["metadata"].get("tags", []))
    namespace: dict = {}
    exec(source, {}, namespace)
    return namespace


def load_params(path=None, overrides: dict | None = None) -> dict:
    """The report's parameters: the notebook's defaults, then a YAML file, then ``overrides``,
    validated as papermill would see them; a bad key or value raises ConfigError."""
    params = notebook_defaults()
    if path is not None:
        values = read_yaml(path)
        _keys("", values, TOP_KEYS)
        params.update(values)
    params.update(overrides or {})
    return validate(params)


def validate(params: dict) -> dict:
    """Check every key and value and build every run config; raise ConfigError naming the first fault."""
    _keys("", params, TOP_KEYS)
    missing = [k for k in TOP_KEYS if k not in params]
    if missing:
        raise ConfigError(missing[0], None, "is missing from the parameters")
    if params["only"] is not None and params["only"] not in QUESTIONS:
        raise ConfigError("only", params["only"], f"must be null or one of {list(QUESTIONS)}")
    if isinstance(params["jobs"], bool) or not isinstance(params["jobs"], int) or params["jobs"] < 1:
        raise ConfigError("jobs", params["jobs"], "must be an integer >= 1")
    if params["progress"] not in ("notebook", "terminal", "none"):
        raise ConfigError("progress", params["progress"], "must be 'notebook', 'terminal' or 'none'")
    if params["figures_dir"] is not None and not isinstance(params["figures_dir"], str):
        raise ConfigError("figures_dir", params["figures_dir"], "must be a folder path or null")
    tracking.check(params["tracker"])
    if not isinstance(params["profile"], str):
        raise ConfigError("profile", params["profile"], "must be a name")
    resolve_device(params["device"])
    _seeds("seeds", params["seeds"])
    try:
        data.check_subset(params["train_subset"])
    except ConfigError as err:
        raise ConfigError("train_subset", err.value, err.allowed) from None
    for q in QUESTIONS:
        _keys(q, params[q], SECTION_KEYS[q])
        for key in SECTION_KEYS[q]:
            if key not in params[q]:
                raise ConfigError(f"{q}.{key}", None, "is missing from the parameters")
    for q in ("q5", "q6"):
        sizes = params[q]["sizes"]
        if not isinstance(sizes, list) or not sizes:
            raise ConfigError(f"{q}.sizes", sizes, "must be a non-empty list of subset sizes")
        for i, size in enumerate(sizes):
            try:
                data.check_subset(size)
            except ConfigError as err:
                raise ConfigError(f"{q}.sizes[{i}]", size, err.allowed) from None
    _seeds("q6.seeds", params["q6"]["seeds"])
    _keys("q2.factorial", params["q2"]["factorial"], ("epochs", "momentum", *FACTORS))
    for factor in FACTORS:
        levels = params["q2"]["factorial"].get(factor)
        if not isinstance(levels, list) or len(levels) < 2:
            raise ConfigError(f"q2.factorial.{factor}", levels, "must be a list of at least two levels")
    if not isinstance(params["q2"]["settings"], list) or not params["q2"]["settings"]:
        raise ConfigError("q2.settings", params["q2"]["settings"], "must be a non-empty list of settings")
    for i, setting in enumerate(params["q2"]["settings"]):
        _keys(f"q2.settings[{i}]", setting, (*RUN_FIELDS, "reported"))
    for name, recipe in _keys("q6.recipes", params["q6"]["recipes"], params["q6"]["recipes"]).items():
        _keys(f"q6.recipes.{name}", recipe, (*RUN_FIELDS, "vit", "lenet"))
    plan(params)
    from .bovw import BovwConfig

    try:
        bovw_config(params, BovwConfig)
    except ConfigError as err:
        raise ConfigError(f"q3.bovw.{err.name}", err.value, err.allowed) from None
    return params


def bovw_config(params: dict, cls=None):
    """The baseline's config: the parameter file's ``q3.bovw`` on the report's training set."""
    if cls is None:
        from .bovw import BovwConfig as cls
    values = {"subset": params["train_subset"], **(params["q3"]["bovw"] or {})}
    return cls.from_dict(values)


# ---------------------------------------------------------------- the runs of each question


def _base(params, name, **values) -> RunConfig:
    values.setdefault("subset", params["train_subset"])
    return _config(name, device=params["device"], **values)


def _sized(params, name, size, seed, **values) -> RunConfig:
    """A run on ``size`` balanced images (subset drawn with ``seed``), or on the full set for None."""
    size = params["train_subset"] if size is None else size
    return _base(params, name, subset=size, subset_seed=seed if size is not None else 0, seed=seed, **values)


def _q2_settings(params):
    q = params["q2"]
    for i, setting in enumerate(q["settings"]):
        values = {k: v for k, v in setting.items() if k != "reported"}
        values.setdefault("epochs", q["epochs"])
        for seed in params["seeds"]:
            yield i, setting.get("reported"), _base(params, f"q2.settings[{i}]", seed=seed, **values)


def _q2_factorial(params):
    f = params["q2"]["factorial"]
    for opt, lr, bs in product(f["optimizer"], f["lr"], f["batch_size"]):
        momentum = f.get("momentum", 0.0) if opt == "sgd" else 0.0
        for seed in params["seeds"]:
            yield _base(params, "q2.factorial", optimizer=opt, lr=lr, batch_size=bs, momentum=momentum,
                        epochs=f["epochs"], seed=seed)


def _q6_runs(params):
    q = params["q6"]
    for name, recipe in q["recipes"].items():
        values = {k: v for k, v in recipe.items() if k not in ("vit", "lenet")}
        values.setdefault("epochs", q["epochs"])
        for model, size, seed in product(("vit", "lenet"), q["sizes"], q["seeds"]):
            kw = recipe.get(model) or {}
            yield name, model, size, _sized(params, f"q6.recipes.{name}", size, seed, model=model,
                                            model_kw=kw, **values)


def plan(params: dict) -> dict:
    """Every run config of every question, by question: what the report needs from the store."""
    runs = {
        "q1": [_base(params, "q1", epochs=params["q1"]["epochs"], seed=params["q1"]["seed"])],
        "q2": [c for _, _, c in _q2_settings(params)] + list(_q2_factorial(params)),
        "q4": [_base(params, "q4", model=m, epochs=params["q4"]["epochs"], seed=s)
               for m in CNNS for s in params["seeds"]],
        "q5": [_sized(params, "q5", size, s, epochs=params["q5"]["epochs"])
               for size in params["q5"]["sizes"] for s in params["seeds"]],
        "q6": [c for *_, c in _q6_runs(params)],
    }
    runs["q3"] = runs["q2"]
    return runs


def _cost(config: RunConfig) -> float:
    """Rough relative cost, to start the longest runs first."""
    size = data.TRAIN_SIZE if config.subset is None else config.subset
    return size * config.epochs * (8 if config.model == "vit" else 2 if config.model != "lenet" else 1)


def train_missing(params: dict, store: Store | None = None, progress: bool = True) -> dict:
    """Train every run the selected questions need that the store lacks; returns counts."""
    store = store or Store()
    wanted = plan(params)
    questions = [params["only"]] if params["only"] else QUESTIONS
    configs = list({c.key(): c for q in questions for c in wanted[q]}.values())
    missing = sorted((c for c in configs if store.load(c) is None), key=_cost, reverse=True)
    start = time.perf_counter()
    jobs = 1 if resolve_device(params["device"]).startswith("cuda") else params["jobs"]
    store.run_all(missing, jobs=jobs, progress=progress, tracker=params["tracker"])
    return {"runs": len(configs), "trained": len(missing), "seconds": time.perf_counter() - start}


# ---------------------------------------------------------------- frames


def _row(run, **extra) -> dict:
    c = run.config
    final = run.final
    return {**extra, "model": c.model, "optimizer": c.optimizer, "lr": c.lr, "batch_size": c.batch_size,
            "momentum": c.momentum, "weight_decay": c.weight_decay, "schedule": c.schedule,
            "seed": c.seed, "epochs": len(run.history), "test_acc": final["test_acc"],
            "test_loss": final["test_loss"], "train_acc": final["train_acc"],
            "seconds": float(run.history["seconds"].sum()), "parameters": run.info["parameters"],
            "run": run.key}


def _curves(runs, **labels) -> pd.DataFrame:
    frames = []
    for run, extra in runs:
        h = run.history.copy()
        for k, v in {**labels, **extra}.items():
            h[k] = v
        h["seed"] = run.config.seed
        frames.append(h)
    return pd.concat(frames, ignore_index=True)


def mean_std(frame: pd.DataFrame, by, value="test_acc") -> pd.DataFrame:
    """Mean, std (ddof=1; NaN for a single seed) and count of ``value`` per group, in group order."""
    return frame.groupby(by, sort=False)[value].agg(["mean", "std", "count"]).reset_index()


def setting_label(s: dict) -> str:
    parts = [s["optimizer"], f"lr={s['lr']:g}", f"bs={s['batch_size']}"]
    if s.get("momentum"):
        parts.append(f"m={s['momentum']:g}")
    if s.get("weight_decay"):
        parts.append(f"wd={s['weight_decay']:g}")
    if s.get("schedule", "constant") != "constant":
        parts.append(s["schedule"])
    return " ".join(parts)


def q1(params: dict, store: Store | None = None) -> dict:
    """The LeNet run: its per-epoch history and final numbers."""
    run = (store or Store()).run_all(plan(params)["q1"], progress=False)[0]
    return {"history": run.history, "run": run, "final": run.final}


def variance_shares(frame: pd.DataFrame, factors=FACTORS, value="test_acc") -> pd.DataFrame:
    """Share of the variance of ``value`` explained by each factor's main effect, by their
    interactions, and by the seed (within-cell noise), for a balanced full-factorial frame."""
    y = frame[value]
    total = ((y - y.mean()) ** 2).sum()
    rows = []
    for f in factors:
        means = frame.groupby(f)[value].transform("mean")
        rows.append((f, ((means - y.mean()) ** 2).sum()))
    cell = frame.groupby(list(factors))[value].transform("mean")
    within = ((y - cell) ** 2).sum()
    rows.append(("interactions", total - sum(ss for _, ss in rows) - within))
    rows.append(("seed (noise)", within))
    out = pd.DataFrame(rows, columns=["source", "sum_sq"])
    out["share"] = out["sum_sq"] / total if total > 0 else 0.0
    return out


def q2(params: dict, store: Store | None = None) -> dict:
    """The hyperparameter study: per-seed runs, per-setting mean +- std, the factorial sweep and
    the share of variance each factor explains."""
    store = store or Store()
    items = list(_q2_settings(params))
    fetched = store.run_all([config for *_, config in items], progress=False)
    runs = pd.DataFrame([_row(run, setting=i + 1, label=setting_label(config.to_dict()), reported=reported)
                         for (i, reported, config), run in zip(items, fetched)])
    summary = mean_std(runs, ["setting", "label"])
    summary["reported"] = [runs.loc[runs.setting == s, "reported"].iloc[0] for s in summary.setting]
    summary["seconds"] = runs.groupby("setting", sort=False)["seconds"].mean().values
    best = summary.loc[summary["mean"].idxmax()]
    factorial = pd.DataFrame([_row(r) for r in store.run_all(list(_q2_factorial(params)), progress=False)])
    return {"runs": runs, "summary": summary, "best": best, "factorial": factorial,
            "variance": variance_shares(factorial)}


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


def q3(params: dict, store: Store | None = None, progress: bool = True) -> dict:
    """The best setting of q2 against the SIFT-BoVW-SVM baseline, measured on this machine."""
    from . import bovw

    store = store or Store()
    best = q2(params, store)
    setting = best["best"]["setting"]
    cnn_runs = best["runs"][best["runs"].setting == setting]
    first = store.load(setting_config(params, setting - 1))
    result = bovw.run(bovw_config(params), root=store.root, progress=progress)
    table = pd.DataFrame([
        {"method": f"LeNet ({best['best']['label']})", "test_acc": cnn_runs["test_acc"].mean(),
         "test_acc_std": cnn_runs["test_acc"].std(ddof=1) if len(cnn_runs) > 1 else 0.0,
         "train_seconds": cnn_runs["seconds"].mean(), "inference_ms_per_image": inference_ms_per_image(first),
         "learned_parameters": int(cnn_runs["parameters"].iloc[0]), "feature_dim": 84},
        {"method": "SIFT-BoVW-SVM", "test_acc": result.test_acc, "test_acc_std": np.nan,
         "train_seconds": result.train_seconds, "inference_ms_per_image": result.inference_ms_per_image,
         "learned_parameters": result.config["words"] * 128 + result.feature_dim * 10 + 10,
         "feature_dim": result.feature_dim},
    ])
    per_class = pd.DataFrame({"digit": range(10), "SIFT-BoVW-SVM": result.per_class_acc,
                              "LeNet": _per_class(first)})
    return {"table": table, "bovw": result, "per_class": per_class, "cnn_runs": cnn_runs}


def setting_config(params, index) -> RunConfig:
    """The first-seed run config of q2's setting number ``index`` (0-based)."""
    return next(c for i, _, c in _q2_settings(params) if i == index)


def _per_class(run) -> list:
    x, y = data.load(False)
    pred = predict(run.model("cpu"), x)
    return [float((pred[y == c] == c).float().mean()) for c in range(10)]


def q4(params: dict, store: Store | None = None) -> dict:
    """LeNet against DoubleConvLeNet: per-epoch curves, and accuracy, parameters, seconds per epoch."""
    runs = (store or Store()).run_all(plan(params)["q4"], progress=False)
    curves = _curves([(r, {"model": r.config.model}) for r in runs])
    rows = pd.DataFrame([_row(r) for r in runs])
    summary = mean_std(rows, ["model"])
    summary["parameters"] = rows.groupby("model", sort=False)["parameters"].first().values
    summary["seconds_per_epoch"] = (rows.groupby("model", sort=False)["seconds"].mean()
                                    / params["q4"]["epochs"]).values
    return {"curves": curves, "runs": rows, "summary": summary}


def per_class_counts(size) -> str:
    if size is None:
        return "5,421 to 6,742 (unbalanced)"
    return f"{size // 10:,} each"


def q5(params: dict, store: Store | None = None) -> dict:
    """Test accuracy against training-set size, per seed and as mean +- std."""
    runs = (store or Store()).run_all(plan(params)["q5"], progress=False)
    rows = pd.DataFrame([_row(r, size=r.config.subset or data.TRAIN_SIZE,
                              per_class=per_class_counts(r.config.subset)) for r in runs])
    summary = mean_std(rows, ["size", "per_class"])
    return {"runs": rows, "summary": summary}


def q6(params: dict, store: Store | None = None) -> dict:
    """ViT against LeNet on the same data and epochs, under each recipe: curves and final table."""
    store = store or Store()
    items = list(_q6_runs(params))
    runs = store.run_all([c for *_, c in items], progress=False)
    labelled = [(run, {"recipe": name, "model": model, "size": run.config.subset or data.TRAIN_SIZE})
                for (name, model, _, _), run in zip(items, runs)]
    curves = _curves(labelled)
    rows = pd.DataFrame([_row(run, **extra) for run, extra in labelled])
    summary = mean_std(rows, ["recipe", "model", "size"])
    summary["parameters"] = rows.groupby(["recipe", "model", "size"], sort=False)["parameters"].first().values
    summary["seconds"] = rows.groupby(["recipe", "model", "size"], sort=False)["seconds"].mean().values
    return {"curves": curves, "runs": rows, "summary": summary, "labelled": labelled}


def mistakes(run, device: str = "cpu") -> dict:
    """The test set's confusion matrix and the misclassified images of ``run``'s model."""
    x, y = data.load(False, device)
    pred = predict(run.model(device), x)
    y = y.cpu()
    matrix = pd.crosstab(pd.Series(y.numpy(), name="true"), pd.Series(pred.numpy(), name="predicted"))
    matrix = matrix.reindex(index=range(10), columns=range(10), fill_value=0)
    wrong = (pred != y).nonzero().squeeze(1)
    errors = pd.DataFrame({"index": wrong.numpy(), "true": y[wrong].numpy(), "predicted": pred[wrong].numpy()})
    return {"matrix": matrix, "errors": errors, "images": x[wrong].cpu(), "test_acc": float((pred == y).float().mean())}


# ---------------------------------------------------------------- summary


def write_summary(path, summary: dict) -> None:
    """Write ``summary`` (nested dict, accuracies as fractions) as JSON, atomically."""
    atomic_write_text(Path(path), json.dumps(summary, indent=2, sort_keys=True) + "\n")


def environment(params: dict) -> dict:
    """Where and with what the report ran: profile, device, torch version, threads, jobs."""
    device = resolve_device(params["device"])
    name = device_name(device)
    return {"profile": params["profile"], "device": device, "device_name": name, "torch": torch.__version__,
            "threads": torch.get_num_threads(), "jobs": params["jobs"]}
