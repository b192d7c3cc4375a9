"""The report's parameters: one typed schema, from which everything else about them comes.

``Params`` (and one dataclass per question) holds each parameter's type, its interactive default
and a help line. From it come the notebook's parameters cell (``notebook_cell``, checked against
``report.ipynb`` by the tests), the validation of YAML files and of the values papermill injects
(``Params.from_dict``), ``python -m mnistkit params`` and build.sh's check before a run.

A mapping that names a key the schema does not have is refused with ``ConfigError``, naming the
key and the allowed ones. Sections may leave keys out: they keep their defaults. Run-level values
(a setting's optimizer, a recipe's learning rate) are checked when the plan builds their
``RunConfig``s (``questions.plan``).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
import typing
from dataclasses import dataclass, field


from .errors import ConfigError, check_number

QUESTIONS = ("q1", "q2", "q3", "q4", "q5", "q6")
PROGRESS = ("notebook", "terminal", "none")
PROTOCOLS = ("validation", "assignment")
CLUSTER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")  # a Dask scheduler's address
INJECTED = "# Parameters"  # the first line of the cell papermill injects after the parameters cell
CELL_HEADER = "# The report's parameters (mnistkit.params.Params): a YAML file or papermill -p overrides them."


def param(default, help: str):
    """A schema field: its default (copied for a list or dict) and its one help line."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def _seeds(name: str, value) -> None:
    if not isinstance(value, list) or not value or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise ConfigError(name, value, "must be a non-empty list of integers >= 0")
    if len(set(value)) < len(value):
        raise ConfigError(name, value, "must not repeat a seed (an interval over copies of one run would be too "
                                       "narrow)")


def _sizes(name: str, value, dataset: str | None = None) -> None:
    """A non-empty list of subset sizes; with ``dataset``, each one that dataset's balanced sizes allow
    (``Params`` checks them again once it knows its dataset)."""
    from .data import check_subset

    if not isinstance(value, list) or not value:
        raise ConfigError(name, value, "must be a non-empty list of subset sizes")
    for i, size in enumerate(value):
        try:
            if dataset is not None:
                check_subset(dataset, size)
            elif size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 10 or size % 10):
                raise ConfigError("subset", size, "a positive multiple of 10, or null for the whole training set")
        except ConfigError as err:
            raise ConfigError(f"{name}[{i}]", size, err.allowed) from None


def check_cluster(cluster) -> None:
    """``None`` (a LocalCluster) or a scheduler address such as ``tcp://host:8786``; else ConfigError."""
    if cluster is not None and not (isinstance(cluster, str) and CLUSTER.match(cluster)):
        raise ConfigError("cluster", cluster, "must be null (a local cluster) or a Dask scheduler address "
                                              "such as tcp://host:8786")


def _mapping(name: str, value) -> None:
    if not isinstance(value, dict):
        raise ConfigError(name, value, "must be a mapping")


@dataclass(frozen=True)
class Q1:
    """Question 1: LeNet logged at every epoch (Adam 1e-3, batch 64), over the report's seeds."""

    epochs: int = param(2, "training epochs")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)


@dataclass(frozen=True)
class Study:
    """A random search (Optuna's RandomSampler) over learning rate, batch size, optimizer, weight
    decay and SGD's momentum (``mnistkit.study.SPACE``), one run per drawn configuration."""

    trials: int = param(8, "configurations drawn (fANOVA needs a few dozen for a stable answer)")
    epochs: int = param(1, "training epochs of every trial")
    seed: int = param(0, "the sampler's seed and every trial run's seed")
    resamples: int = param(20, "bootstrap resamples of the trials behind the importances' 95% intervals")

    def __post_init__(self):
        check_number("trials", self.trials, 4, integer=True)
        check_number("epochs", self.epochs, 1, integer=True)
        check_number("seed", self.seed, 0, integer=True)
        check_number("resamples", self.resamples, 10, 10_000, integer=True)


@dataclass(frozen=True)
class Q2:
    """Question 2: LeNet under several hyperparameter settings, and a random-search study."""

    epochs: int = param(1, "training epochs of every setting")
    settings: list[dict] = param([{"batch_size": 64, "lr": 0.001, "optimizer": "adam"},
                            {"batch_size": 128, "lr": 0.01, "optimizer": "sgd", "momentum": 0.9}],
                           "run parameters of each setting; 'reported': the assignment's accuracy")
    study: Study = param(Study(), "the random search behind 'which hyperparameters matter most'")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)
        if not isinstance(self.settings, list) or len(self.settings) < 2:
            raise ConfigError("settings", self.settings, "must be a list of at least two settings")
        for i, setting in enumerate(self.settings):
            _mapping(f"settings[{i}]", setting)
            if "reported" in setting and setting["reported"] is not None:
                check_number(f"settings[{i}].reported", setting["reported"], 0, 1)


@dataclass(frozen=True)
class BovwSearch:
    """The baseline's random search (Optuna's RandomSampler): ``trials`` settings, each one choice of every
    setting ``space`` lists, trained on ``images`` balanced training images and scored on the validation
    images; the most accurate (the cheapest of equals) is the baseline."""

    trials: int = param(2, "settings drawn")
    seed: int = param(0, "the sampler's seed and every trial's seed")
    images: int = param(1000, "training images of each trial (a balanced subset)")
    space: dict = param({"step": [4, 7]}, "each searched setting of mnistkit.bovw.BovwConfig, with its choices")

    def __post_init__(self):
        check_number("trials", self.trials, 1, integer=True)
        check_number("seed", self.seed, 0, integer=True)
        check_number("images", self.images, 10, integer=True)
        _mapping("space", self.space)
        for name, choices in self.space.items():
            if not isinstance(choices, list) or not choices:
                raise ConfigError(f"space.{name}", choices, "must be a list of at least one choice")
            if len({repr(c) for c in choices}) < len(choices):
                raise ConfigError(f"space.{name}", choices, "must not repeat a choice")
        settings = math.prod(len(choices) for choices in self.space.values())
        if self.trials > settings:
            raise ConfigError("trials", self.trials, f"must be at most {settings:,}: the distinct settings space holds")


BASELINE_SETS = ("dataset", "subset", "subset_seed", "seed", "validation", "scored_on")  # q3's images, seeds, scoring


@dataclass(frozen=True)
class Q3:
    """Question 3: the best setting of question 2 against the SIFT-BoVW-SVM baseline."""

    bovw: dict = param({"words": 64}, "the baseline's fixed settings (mnistkit.bovw.BovwConfig); the search sets "
                                      "the rest")
    search: BovwSearch = param(BovwSearch(), "the random search on the validation images that chooses the "
                                             "baseline's setting (on the test images under the assignment's "
                                             "protocol)")

    def __post_init__(self):
        _mapping("bovw", self.bovw)
        set_here = sorted(set(self.bovw) & set(BASELINE_SETS))
        if set_here:
            raise ConfigError(f"bovw.{set_here[0]}", self.bovw[set_here[0]],
                              f"is not a setting of q3.bovw: the search and the report set {', '.join(BASELINE_SETS)}")
        fixed = sorted(set(self.bovw) & set(self.search.space))
        if fixed:
            raise ConfigError("search.space", fixed[0], "must not name a setting that q3.bovw fixes")


@dataclass(frozen=True)
class Q4:
    """Question 4: LeNet against DoubleConvLeNet, over the seeds."""

    epochs: int = param(2, "training epochs")

    def __post_init__(self):
        check_number("epochs", self.epochs, 1, integer=True)


@dataclass(frozen=True)
class Q5:
    """Question 5: LeNet trained on balanced subsets of several sizes, over the seeds."""

    sizes: list[typing.Optional[int]] = param([200, 1000, None], "training-set sizes (None: the full set)")
    epochs: int = param(2, "training epochs of the largest size (and of every size under equal epochs)")
    smallest_seeds: int = param(4, "seeds of the smallest size under equal epochs (its spread is the widest)")

    def __post_init__(self):
        _sizes("sizes", self.sizes)
        check_number("epochs", self.epochs, 1, integer=True)
        check_number("smallest_seeds", self.smallest_seeds, 1, integer=True)


@dataclass(frozen=True)
class Q6:
    """Question 6: a 2-layer ViT against LeNet, at each size, under each recipe."""

    sizes: list[typing.Optional[int]] = param([1000, None], "training-set sizes (None: the full set)")
    epochs: int = param(2, "training epochs of both models")
    seeds: list[int] = param([0], "seeds of this question (a 60,000-image ViT run costs minutes on a CPU)")
    recipes: dict[str, dict] = param({"assignment": {"optimizer": "adam", "lr": 0.001, "batch_size": 64}},
                          "name: run parameters; 'vit' and 'lenet' hold each model's own keyword arguments")
    ablation: dict[str, list[str]] = param({}, "name: settings of the last recipe put back as the first recipe has "
                                               "them, one group at a time (the ViT at the first size)")

    def __post_init__(self):
        _sizes("sizes", self.sizes)
        check_number("epochs", self.epochs, 1, integer=True)
        _seeds("seeds", self.seeds)
        _mapping("recipes", self.recipes)
        if not self.recipes:
            raise ConfigError("recipes", self.recipes, "must name at least one recipe")
        for name, recipe in self.recipes.items():
            _mapping(f"recipes.{name}", recipe)
        _mapping("ablation", self.ablation)
        if self.ablation and len(self.recipes) < 2:
            raise ConfigError("ablation", self.ablation, "needs two recipes: the last one, and the first to put back")
        changed = list(self.recipes.values())[-1]
        for name, keys in self.ablation.items():
            if not isinstance(keys, list) or not keys or any(k not in changed for k in keys):
                raise ConfigError(f"ablation.{name}", keys, f"must list settings the last recipe sets: {list(changed)}")


@dataclass(frozen=True)
class Params:
    """Every parameter of the report. ``Params()`` holds the interactive defaults: seconds per run."""

    profile: str = param("interactive", "name recorded in summary.json")
    dataset: str = param("mnist", "the images every question studies: mnist or fashion_mnist (mnistkit.data.DATASETS)")
    protocol: str = param("validation", "validation: 5,000 training images held out decide every selection; "
                                        "assignment: test accuracy does")
    only: typing.Optional[str] = param(None, "one question (q1 ... q6), or None for all six")
    jobs: int = param(1, "training processes on a CPU (a GPU always uses 1)")
    cluster: typing.Optional[str] = param(None, "None: a local Dask cluster of jobs processes; or a scheduler, "
                                                "tcp://host:8786")
    device: str = param("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    seeds: list[int] = param([0, 1], "seeds behind every mean and std")
    train_subset: typing.Optional[int] = param(
        2000, "None: all 60,000 training images; else a balanced subset in their place")
    figures_dir: typing.Optional[str] = param(None, "folder for the PNG figures and summary.json; None: none")
    progress: str = param("notebook", "progress bars: notebook, terminal or none")
    tracker: str = param("none", "log every trained run's epochs: none, wandb or tensorboard")
    q1: Q1 = param(Q1(), "LeNet logged per epoch, over the seeds: epochs")
    q2: Q2 = param(Q2(), "hyperparameters: settings, random-search study")
    q3: Q3 = param(Q3(), "best CNN vs the SIFT-BoVW-SVM baseline")
    q4: Q4 = param(Q4(), "LeNet vs doubled conv layers: epochs")
    q5: Q5 = param(Q5(), "training-set sizes (None: all) and epochs")
    q6: Q6 = param(Q6(), "ViT vs LeNet: sizes, epochs, seeds, recipes, ablation of the last recipe")

    def __post_init__(self):
        from .config import resolve_device
        from .data import check_subset, dataset

        if not isinstance(self.profile, str) or not self.profile:
            raise ConfigError("profile", self.profile, "must be a name")
        dataset(self.dataset)
        if self.protocol not in PROTOCOLS:
            raise ConfigError("protocol", self.protocol, f"must be one of {list(PROTOCOLS)}")
        if self.only is not None and self.only not in QUESTIONS:
            raise ConfigError("only", self.only, f"must be None (null) or one of {list(QUESTIONS)}")
        check_number("jobs", self.jobs, 1, integer=True)
        check_cluster(self.cluster)
        resolve_device(self.device)
        _seeds("seeds", self.seeds)
        try:
            check_subset(self.dataset, self.train_subset, self.validation)
        except ConfigError as err:
            raise ConfigError("train_subset", err.value, err.allowed) from None
        for name in ("q5", "q6"):
            _sizes(f"{name}.sizes", getattr(self, name).sizes, self.dataset)
        if self.figures_dir is not None and not (isinstance(self.figures_dir, str) and self.figures_dir.strip()):
            raise ConfigError("figures_dir", self.figures_dir, "must be a folder path or None (null)")
        if self.progress not in PROGRESS:
            raise ConfigError("progress", self.progress, f"must be one of {list(PROGRESS)}")
        from .tracking import check

        check(self.tracker)

    @classmethod
    def from_dict(cls, values: dict) -> "Params":
        """Parameters from a mapping (a YAML file, papermill's values); the rest keep their defaults."""
        return build(cls, values, "")

    @classmethod
    def from_yaml(cls, path, overrides: dict | None = None) -> "Params":
        """Parameters from a YAML file, then ``overrides`` (``--set``, ``-p``), as papermill applies them."""
        from .files import read_yaml

        values = read_yaml(path)
        return cls.from_dict({**values, **(overrides or {})})

    def to_dict(self) -> dict:
        """Plain values (what a YAML file or papermill holds), sections as mappings."""
        return dataclasses.asdict(self)

    @property
    def validation(self) -> int:
        """Training images held out for selection: ``data.VALIDATION_SIZE`` under the validation protocol, else 0."""
        from .data import VALIDATION_SIZE

        return VALIDATION_SIZE if self.protocol == "validation" else 0

    @property
    def selected_by(self) -> str:
        """The accuracy that decides every selection: ``val_acc`` or, under the assignment's protocol, ``test_acc``."""
        return "val_acc" if self.protocol == "validation" else "test_acc"

    def selected(self, question: str) -> bool:
        """Whether the report shows ``question``."""
        return self.only in (None, question)


def names(cls=Params) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def build(cls, values, path: str):
    """``cls(**values)`` for a schema dataclass, sections built the same way; a ``ConfigError``
    names its key by the path from the top (``q2.study.trials``)."""
    if isinstance(values, cls):
        return values
    allowed = names(cls)
    if not isinstance(values, dict):
        raise ConfigError(path or "parameters", values, f"must be a mapping with keys from {allowed}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in values.items():
        where = f"{path}.{key}" if path else key
        if key not in allowed:
            raise ConfigError(where, value, f"is not a parameter; allowed{' in ' + path if path else ''}: {allowed}")
        section = hints[key]
        kwargs[key] = build(section, value, where) if dataclasses.is_dataclass(section) else value
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{path}.{err.name}" if path else err.name, err.value, err.allowed) from None


# ---------------------------------------------------------------- the notebook's parameters cell


def annotation(tp) -> str:
    """The type as the parameters cell writes it, in a form papermill's ``--help-notebook`` reads."""
    if dataclasses.is_dataclass(tp):
        return "dict"
    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Union:
        return f"Optional[{annotation(next(a for a in args if a is not type(None)))}]"
    if args:
        return f"{typing.get_origin(tp).__name__}[{', '.join(annotation(a) for a in args)}]"
    return tp.__name__


def literal(value, indent: int = 0, width: int = 100) -> str:
    """A Python literal for a parameter value (strings in double quotes, as papermill writes them),
    broken after each item of a mapping or list that would not fit in ``width`` from column ``indent``."""
    if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        items = [(f"{json.dumps(k)}: ", v) for k, v in value.items()]
        ends = "{}"
    elif isinstance(value, list):
        items, ends = [("", v) for v in value], "[]"
    elif isinstance(value, str):
        return json.dumps(value)
    else:
        return repr(value)
    flat = ends[0] + ", ".join(key + literal(v, width=10**6) for key, v in items) + ends[1]
    if indent + len(flat) <= width or not items:
        return flat
    parts = [key + literal(v, indent + 1 + len(key), width) for key, v in items]
    return ends[0] + (",\n" + " " * (indent + 1)).join(parts) + ends[1]


def notebook_cell(width: int = 100) -> str:
    """The source of report.ipynb's cell tagged ``parameters``: one typed assignment per parameter,
    ending with its help as a comment (papermill's ``--help-notebook`` reads the comment on a
    value's last line)."""
    defaults = Params()
    hints = typing.get_type_hints(Params)
    lines = [CELL_HEADER, "from typing import Optional", ""]
    for f in dataclasses.fields(Params):
        head = f"{f.name}: {annotation(hints[f.name])} = "
        comment = f"  # {f.metadata['help']}"
        value = literal(getattr(defaults, f.name), len(head), width)
        lines.append(head + value + comment)
    return "\n".join(lines) + "\n"


def injected_names(history: list[str]) -> list[str]:
    """The names that papermill's injected-parameters cell assigned, if it ran since the parameters
    cell last did: ``history`` is the kernel's cell inputs, oldest first, without the current one.

    Looking back from the newest input, the first cell that is papermill's (first line
    ``# Parameters``) counts; reaching the parameters cell first (its header line) means the
    values now in force are that cell's own, all known names.
    """
    for source in reversed(history):
        first = source.lstrip().split("\n", 1)[0].strip()
        if first == INJECTED:
            tree = ast.parse(source)
            return [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(t, ast.Name)]
        if first == CELL_HEADER:
            return []
    return []


def from_notebook(namespace: dict) -> Params:
    """The parameters as the notebook holds them now: the known names' values in ``namespace``
    (the notebook's globals), after refusing any name papermill injected that is not a parameter.

    It reads nothing else from ``namespace``, so it gives the same answer on a second Run All, after
    a parameter was edited and its cell re-run, and after Restart & Run All.
    """
    try:
        from IPython import get_ipython

        shell = get_ipython()
        history = list(shell.history_manager.input_hist_raw[:-1]) if shell is not None else []
    except ImportError:
        history = []
    allowed = names()
    for name in injected_names(history):
        if name not in allowed:
            raise ConfigError(name, namespace.get(name), f"is not a parameter; allowed: {allowed}")
    return Params.from_dict({name: namespace[name] for name in allowed if name in namespace})
