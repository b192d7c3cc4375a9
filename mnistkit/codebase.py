"""The codebase as question 1 shows it: its layers, the source of the parts the assignment names,
what is seeded, and a rerun that proves the seeds.

The excerpts are read from the installed package when the report is built (``inspect``), so the
page shows the code that computed it. ``LAYERS`` is also the rule ``tests/test_layers.py`` checks:
a module imports its own layer and those below it, never one above.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass

from . import data, models, trainer
from .config import RunConfig
from .errors import ReproducibilityError

LAYERS = (  # bottom up: (name, modules, what they hold)
    ("foundations", ("errors", "files", "paths", "numerics", "progress", "tracking"),
     "errors, atomic files, where files live, the pinned CPU kernels, progress bars, run logs"),
    ("portable arithmetic", ("gemm", "optim"), "products and RMSprop's square root with the same bits on every CPU"),
    ("data and models", ("data", "models"), "the datasets as normalized tensors, subsets and batches; the networks"),
    ("configurations", ("config", "params", "stats", "study", "architecture"),
     "a run's identity, the report's parameters, intervals and tests, the random search, layer tables"),
    ("fitting", ("trainer", "ensemble", "bovw"), "one training loop for every run; the SIFT bag-of-words baseline"),
    ("the run store", ("runs", "store"), "one verified folder per configuration"),
    ("execution", ("executor",), "training what the store lacks, in parallel (Dask)"),
    ("questions", ("questions",), "one module per question: its runs, its reader, its result and text"),
    ("the report", ("report", "codebase", "plots", "pipelines", "bench", "kernel", "__main__", "__init__"),
     "what the notebook calls, the figures, the benchmark, the command line"),
)

EXCERPTS = (  # what question 1 names: (title, the functions and classes shown)
    ("Data: the batch iterator over the images held as one tensor (`mnistkit/data.py`)", (data.batches,)),
    ("Model: LeNet as an `nn.Module` (`mnistkit/models.py`)", (models.LeNet,)),
    ("Trainer: the train and test epoch loops (`mnistkit/trainer.py`)",
     (trainer.train_step, trainer.epoch_loop, trainer.train_epoch, trainer.evaluate)),
)

RERUN = dict(model="lenet", epochs=1, subset=2_000)  # the rerun's configuration, but for its seed and device

SEEDED = (  # every random source of a run, and what fixes it
    "Python's, NumPy's and torch's global generators, from the run's seed (`trainer.seed_everything`)",
    "the batch order and the shift augmentation, from a torch generator of the same seed",
    "dropout masks, drawn by NumPy's SFC64 from a seed that torch's generator gives each call",
    "the balanced subsets, from the run's subset seed: every method trained at one seed sees the same images",
    f"the held-out validation images, drawn once with seed {data.VALIDATION_SEED:,}",
    "the order of additions: each library's CPU code path pinned before it starts, one thread per run",
)


def source(obj) -> str:
    """The source of a function or class, dedented, without its docstrings (the page shows the code)."""
    text = textwrap.dedent(inspect.getsource(obj))
    tree = ast.parse(text)
    drop = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            drop.update(range(body[0].lineno, body[0].end_lineno + 1))
    return "\n".join(line for i, line in enumerate(text.splitlines(), 1) if i not in drop).rstrip()


def excerpts() -> list[tuple[str, str]]:
    """``(title, Python source)`` for each part question 1 names."""
    return [(title, "\n\n".join(source(obj) for obj in objs)) for title, objs in EXCERPTS]


def address() -> str:
    """Where the code lives: the repository the package's metadata names, else its folder in this checkout."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        urls = metadata("mnistkit").get_all("Project-URL") or []
    except PackageNotFoundError:
        urls = []
    return urls[0].split(",", 1)[-1].strip() if urls else "the `mnistkit/` folder beside `report.ipynb`"


@dataclass
class Rerun:
    """Two trainings of one configuration from scratch: each one's weights' sha256 and test metrics."""

    config: RunConfig
    trainings: list[dict]

    @property
    def equal(self) -> bool:
        return all(t == self.trainings[0] for t in self.trainings[1:])

    def text(self) -> str:
        """The two trainings side by side, in a block narrow enough to print."""
        c = self.config
        lines = []
        for name, t in zip(("first", "second", "third"), self.trainings):
            lines += [f"{name} training: test accuracy {t['test_acc']:.2%}, test loss {t['test_loss']!r}",
                      f"  weights' sha256 {t['weights_sha256']}"]
        block = "\n".join(lines)
        return f"""**Running it again gives the same numbers.** LeNet was trained twice from scratch for this check,
outside the run store ({c.epochs} epoch, {c.subset:,} training images, seed {c.seed}), and the sha256 of the
trained weights, all 64 hexadecimal digits, and the test numbers were compared. They are equal, bit for bit;
a difference stops the report with an error:

```
{block}
```

Equal on other machines too: `tests/golden/` holds such numbers (every epoch's losses and accuracies
and the weights' sha256 of short runs of every model and optimizer, written once), and `./build.sh
test` requires them exactly on any machine."""


def rerun(config: RunConfig, times: int = 2) -> Rerun:
    """Train ``config`` ``times`` times from scratch, outside the run store; raise ``ReproducibilityError``
    unless every training gives the same weights (bit for bit) and the same test numbers."""
    trainings = []
    try:
        for _ in range(times):
            model, history = trainer.fit(config, progress=False)
            last = history.final
            trainings.append({"weights_sha256": trainer.weights_sha256(model), "test_acc": last["test_acc"],
                              "test_loss": last["test_loss"]})
    finally:
        trainer.set_deterministic(False)  # the process's default again, whatever the config asked for
    result = Rerun(config, trainings)
    if not result.equal:
        raise ReproducibilityError(f"two trainings of {config.label()} from scratch differ: {trainings}")
    return result
