"""The report's parameters: one typed schema, from which everything else about them comes.

``Base`` holds the report-wide parameters; each question declares its own section (a dataclass
in its module), and ``schema`` joins them into the report's ``Params`` class (which
``mnistkit.questions.parameters`` builds from the registry). Each parameter has its type, its
interactive default and a help line. From it come the notebook's parameters cell (``notebook_cell``, checked against
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
import re
import typing
from dataclasses import dataclass, field


from .data import DEFAULT, TRAIN_SIZE, VALIDATION_SIZE
from .errors import ConfigError, check_flag, check_number

PROGRESS = ("text", "notebook", "terminal", "none")
PROTOCOLS = ("validation", "assignment")
CLUSTER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")  # a Dask scheduler's address
INJECTED = "# Parameters"  # the first line of the cell papermill injects after the parameters cell
CELL_HEADER = "# The report's parameters (mnistkit.questions.Params): a YAML file or papermill -p overrides them."


def param(default, help: str):
    """A schema field: its default (copied for a list or dict) and its one help line."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: json.loads(json.dumps(default)), metadata={"help": help})
    return field(default=default, metadata={"help": help})


def check_seeds(name: str, value) -> None:
    if not isinstance(value, list) or not value or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in value):
        raise ConfigError(name, value, "must be a non-empty list of integers >= 0")
    if len(set(value)) < len(value):
        raise ConfigError(name, value, "must not repeat a seed (an interval over copies of one run would be too "
                                       "narrow)")


def check_sizes(name: str, value, dataset: str) -> None:
    """A non-empty list of subset sizes, each one that ``dataset``'s balanced sizes allow (a section's
    ``check``, which ``Base`` calls once the dataset is known)."""
    from .data import check_subset

    if not isinstance(value, list) or not value:
        raise ConfigError(name, value, "must be a non-empty list of subset sizes")
    for i, size in enumerate(value):
        try:
            check_subset(dataset, size)
        except ConfigError as err:
            raise ConfigError(f"{name}[{i}]", size, err.allowed) from None


def check_cluster(cluster) -> None:
    """``None`` (a LocalCluster) or a scheduler address such as ``tcp://host:8786``; else ConfigError."""
    if cluster is not None and not (isinstance(cluster, str) and CLUSTER.match(cluster)):
        raise ConfigError("cluster", cluster, "must be null (a local cluster) or a Dask scheduler address "
                                              "such as tcp://host:8786")


def check_mapping(name: str, value) -> None:
    if not isinstance(value, dict):
        raise ConfigError(name, value, "must be a mapping")


@dataclass(frozen=True)
class Base:
    """The report-wide parameters; ``schema`` adds one section per question. ``Params()`` holds the
    interactive defaults: seconds per run."""

    profile: str = param("interactive", "name recorded in summary.json")
    dataset: str = param(DEFAULT, "the images every question studies: mnist or fashion_mnist (mnistkit.data.DATASETS)")
    protocol: str = param("validation", f"validation: {VALIDATION_SIZE:,} training images held out decide every "
                                        "selection; "
                                        "assignment: test accuracy does")
    only: typing.Optional[str] = param(None, "one question's section (q1, q2, ...), or None for every question")
    jobs: int = param(1, "training processes on a CPU (a GPU always uses 1)")
    cluster: typing.Optional[str] = param(None, "None: a local Dask cluster of jobs processes; or a scheduler, "
                                                "tcp://host:8786")
    device: str = param("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    ensemble: bool = param(False, "on CUDA, train each configuration's seeds as one vmapped network (opt-in: not "
                                  "yet run on a GPU)")
    cuda_graph: bool = param(False, "on CUDA, replay each training step as a CUDA graph (opt-in: not yet run on a "
                                    "GPU)")
    seeds: list[int] = param([0, 1], "seeds behind every mean and std")
    train_subset: typing.Optional[int] = param(
        2000, f"None: all {TRAIN_SIZE:,} training images; else a balanced subset in their place")
    figures_dir: typing.Optional[str] = param(None, "folder for the PNG figures and summary.json; None: none")
    progress: str = param("text", "progress: text (one bar, redrawn in the cell), notebook (widgets), terminal or none")
    tracker: str = param("none", "log every trained run's epochs: none, wandb or tensorboard")
    margin: typing.Optional[float] = param(None, "equivalence margin in accuracy (0.002: 0.2 points): a difference "
                                                 "whose 95% interval lies inside it is equivalent; None: the dataset's")
    reference: typing.Optional[str] = param(None, "summary.json of another build whose conclusions this report sets "
                                                  "its own beside (the transfer table); None: none")

    def __post_init__(self):
        from .config import OPT_IN, resolve_device
        from .data import check_subset, dataset

        if not isinstance(self.profile, str) or not self.profile:
            raise ConfigError("profile", self.profile, "must be a name")
        dataset(self.dataset)
        if self.protocol not in PROTOCOLS:
            raise ConfigError("protocol", self.protocol, f"must be one of {list(PROTOCOLS)}")
        if self.only is not None and self.only not in self.questions():
            raise ConfigError("only", self.only, f"must be None (null) or one of {self.questions()}")
        check_number("jobs", self.jobs, 1, integer=True)
        check_cluster(self.cluster)
        resolve_device(self.device)
        for name in OPT_IN:
            check_flag(name, getattr(self, name))
        check_seeds("seeds", self.seeds)
        try:
            check_subset(self.dataset, self.train_subset, self.validation)
        except ConfigError as err:
            raise ConfigError("train_subset", err.value, err.allowed) from None
        for name in self.questions():  # what a section can check only with the rest of the parameters
            section = getattr(self, name)
            if hasattr(section, "check"):
                try:
                    section.check(self)
                except ConfigError as err:
                    raise ConfigError(f"{name}.{err.name}", err.value, err.allowed) from None
        if self.margin is not None:
            check_number("margin", self.margin, 0, 1, low_open=True)
        if self.figures_dir is not None and not (isinstance(self.figures_dir, str) and self.figures_dir.strip()):
            raise ConfigError("figures_dir", self.figures_dir, "must be a folder path or None (null)")
        if self.reference is not None and not (isinstance(self.reference, str) and self.reference.strip()):
            raise ConfigError("reference", self.reference, "must be the path of a summary.json, or None (null)")
        if self.progress not in PROGRESS:
            raise ConfigError("progress", self.progress, f"must be one of {list(PROGRESS)}")
        from .tracking import check

        check(self.tracker)

    @classmethod
    def from_dict(cls, values: dict) -> "Base":
        """Parameters from a mapping (a YAML file, papermill's values); the rest keep their defaults."""
        return build(cls, values, "")

    @classmethod
    def from_yaml(cls, path, overrides: dict | None = None) -> "Base":
        """Parameters from a YAML file, then ``overrides`` (``--set``, ``-p``), as papermill applies them."""
        from .files import read_yaml

        values = read_yaml(path)
        return cls.from_dict({**values, **(overrides or {})})

    def to_dict(self) -> dict:
        """Plain values (what a YAML file or papermill holds), sections as mappings."""
        return dataclasses.asdict(self)

    def questions(self) -> list[str]:
        """The questions' section names, in the report's order."""
        return [f.name for f in dataclasses.fields(self) if dataclasses.is_dataclass(getattr(self, f.name))]

    @property
    def validation(self) -> int:
        """Training images held out for selection: ``data.VALIDATION_SIZE`` under the validation protocol, else 0."""
        return VALIDATION_SIZE if self.protocol == "validation" else 0

    @property
    def selected_by(self) -> str:
        """The accuracy that decides every selection: ``val_acc`` or, under the assignment's protocol, ``test_acc``."""
        return "val_acc" if self.protocol == "validation" else "test_acc"

    @property
    def equivalence(self) -> float:
        """The margin every verdict uses: ``margin``, else the dataset's (``data.Dataset.margin``)."""
        from .data import dataset

        return self.margin if self.margin is not None else dataset(self.dataset).margin

    def selected(self, question: str) -> bool:
        """Whether the report shows ``question``."""
        return self.only in (None, question)


def schema(sections: dict) -> type:
    """The report's ``Params`` class: ``Base``'s parameters, then one section per question (name: the
    section's dataclass, whose docstring's first line is its help)."""
    fields = [(name, cls, param(cls(), cls.__doc__.strip().split("\n")[0])) for name, cls in sections.items()]
    return dataclasses.make_dataclass("Params", fields, bases=(Base,), frozen=True,
                                      namespace={"__doc__": Base.__doc__})


def names(cls) -> list[str]:
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


def notebook_cell(cls, width: int = 100, only: list | None = None) -> str:
    """The source of report.ipynb's cell tagged ``parameters``: one typed assignment per parameter (or
    per name in ``only``), ending with its help as a comment (papermill's ``--help-notebook`` reads the
    comment on a value's last line)."""
    defaults = cls()
    hints = typing.get_type_hints(cls)
    lines = [CELL_HEADER, "from typing import Optional", ""]
    for f in dataclasses.fields(cls):
        if only is not None and f.name not in only:
            continue
        head = f"{f.name}: {annotation(hints[f.name])} = "
        comment = f"  # {f.metadata['help']}"
        value = literal(getattr(defaults, f.name), len(head), width)
        lines.append(head + value + comment)
    return "\n".join(lines) + "\n"


def _assigned(source: str) -> list[str]:
    """The names a cell's top-level statements assign (``x = ...``, ``x: T = ...``, ``x += ...``)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a cell IPython rewrote (a magic): it assigns no parameter
        return []
    targets = [t for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign))
               for t in (node.targets if isinstance(node, ast.Assign) else [node.target])]

    def names(t) -> list[str]:  # ``a``, ``a, b``, ``*a``: not the names inside ``d[key]`` or ``x.y``
        if isinstance(t, ast.Name):
            return [t.id]
        if isinstance(t, (ast.Tuple, ast.List)):
            return [n for e in t.elts for n in names(e)]
        return names(t.value) if isinstance(t, ast.Starred) else []

    return [n for t in targets for n in names(t)]


def assigned_names(history: list[str]) -> list[str]:
    """The names that the parameters cell and papermill's injected cell after it assigned, as last run:
    ``history`` is the kernel's cell inputs, oldest first, without the current one.

    Looking back from the newest input, papermill's cell (first line ``# Parameters``) counts where it
    comes before the parameters cell (its header line) is reached; the parameters cell always counts.
    """
    found = []
    for source in reversed(history):
        first = source.lstrip().split("\n", 1)[0].strip()
        if first == INJECTED and not found:
            found += _assigned(source)
        elif first == CELL_HEADER:
            return found + _assigned(source)
    return found


def from_notebook(namespace: dict, cls):
    """The parameters as the notebook holds them now: the known names' values in ``namespace``
    (the notebook's globals), after refusing any name that the parameters cell or papermill's injected
    cell assigns and that is not a parameter (a misspelt one, say).

    It reads nothing else from ``namespace``, so it gives the same answer on a second Run All, after
    a parameter was edited and its cell re-run, and after Restart & Run All.
    """
    try:
        from IPython import get_ipython

        shell = get_ipython()
        history = list(shell.history_manager.input_hist_raw[:-1]) if shell is not None else []
    except ImportError:
        history = []
    allowed = names(cls)
    for name in assigned_names(history):
        if name not in allowed:
            raise ConfigError(name, namespace.get(name), f"is not a parameter; allowed: {allowed}")
    return cls.from_dict({name: namespace[name] for name in allowed if name in namespace})
