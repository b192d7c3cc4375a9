"""The report's plan: every store entry of every question, in stages, and the training of what the
store lacks.

Data flows one way: ``params.Params`` -> ``plan`` (stages of entries, by question) ->
``train_missing`` (``executor.run_all`` computes what the store lacks, stage by stage) -> each
question's ``result`` (reads the store, never trains). A later stage may depend on an earlier
one's results: question 2's chosen setting, retrained on all the training images, is known only
once the settings' runs are stored, and the baseline only once its search's trials are.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from .. import data, executor, gemm, paths, runs
from ..config import RunConfig, resolve_device
from ..errors import ConfigError
from ..params import Base as Params
from ..store import Store
from . import parameters, registry
from .common import Stage


def first_stage(params: Params) -> dict[str, list]:
    """Every entry known from the parameters alone, by question (each value checked by its
    config's own rules: a bad one raises ConfigError naming it)."""
    return {name: q.runs(params) for name, q in registry().items()}


def plan(params: Params) -> list[Stage]:
    """The stages in order: the entries the parameters name, then each question's later stages (question 2's
    chosen setting retrained on all the training images, which question 3 scores too; the baseline's chosen
    setting once per seed). Each stage's ``entries(params, store)`` gives its entries by question."""
    def by_question(stage: Stage) -> Stage:
        return Stage(stage.name, stage.questions,
                     lambda params, store: dict.fromkeys(stage.questions, stage.entries(params, store)))

    first = Stage("runs", tuple(registry()), lambda params, store: first_stage(params))
    return [first] + [by_question(s) for q in registry().values() for s in q.stages]


def check(params: Params) -> Params:
    """``params`` once every entry of the first stage has been built from them and the figures
    folder is known to take files; raises ConfigError naming the first fault."""
    entries = first_stage(params)
    for name, q in registry().items():
        if params.selected(name) and q.check is not None:
            q.check(params)
    selected = [c for q, specs in entries.items() if params.selected(q) for c in specs]
    if gemm.active() and any(getattr(c, "model", None) == "vit" and resolve_device(c.device) == "cpu"
                             for c in selected):
        gemm.check()  # the ViT's products on this CPU are the pinned ones, or nothing is trained
    if params.figures_dir is not None:
        paths.check_creatable(params.figures_dir, "figures_dir")
        held = figures_dataset(params.figures_dir)
        if held not in (None, params.dataset):
            raise ConfigError("figures_dir", params.figures_dir,
                              f"holds {data.dataset(held).title}'s figures (its summary.json), which "
                              f"{data.dataset(params.dataset).title}'s would overwrite: choose another folder, "
                              f"e.g. figures/{params.dataset}")
    data.check_available(params.dataset)  # its files in place and verified, or one line on how to get them
    if params.reference is not None and not Path(params.reference).expanduser().is_file():
        raise ConfigError("reference", params.reference, "must be an existing summary.json: build that report first")
    return params


def figures_dataset(folder) -> str | None:
    """The dataset whose figures ``folder`` holds, by its summary.json; None where it holds none."""
    try:
        return json.loads((Path(folder).expanduser() / "summary.json").read_text()).get("dataset")
    except (OSError, ValueError, AttributeError):
        return None


def load_params(path=None, overrides: dict | None = None) -> Params:
    """The report's parameters: the schema's defaults, then a YAML file, then ``overrides``, checked
    as the notebook checks them; a bad key or value raises ConfigError before any work."""
    cls = parameters()
    params = cls.from_yaml(path, overrides) if path is not None else cls.from_dict(overrides or {})
    return check(params)


def _key(spec) -> str:
    return runs.entry(spec).folder_name()


def train_missing(params: Params, store: Store, progress: bool = True) -> dict:
    """Compute, stage by stage, every entry the selected questions need that the store lacks.

    Returns the training runs needed (``runs``) and trained now (``trained``), the same for the
    baselines (``baselines``, ``baselines_computed``), the seconds it took, and the training
    seconds of every run needed as stored (``runs_seconds``: what they cost, trained now or read).
    """
    questions = [params.only] if params.only else list(registry())
    jobs = 1 if resolve_device(params.device).startswith("cuda") else params.jobs
    if params.cluster is None and executor.local_jobs(jobs) < jobs:
        capped = executor.local_jobs(jobs)
        print(f"jobs: {jobs:,} is more than the {capped} CPU cores of this machine; training with {capped} processes",
              file=sys.stderr, flush=True)
        jobs = capped
    start = time.perf_counter()
    specs, missing = {}, []
    for stage in plan(params):
        if not set(stage.questions) & set(questions):
            continue
        wanted = stage.entries(params, store)
        new = {_key(c): c for q in questions for c in wanted.get(q, []) if _key(c) not in specs}
        todo = [c for c in new.values() if store.load(runs.entry(c)) is None]  # the executor orders them
        executor.run_all(store, todo, jobs=jobs, progress=progress, cluster=params.cluster, tracker=params.tracker)
        specs.update(new)
        missing += todo
    seconds = time.perf_counter() - start
    training = [c for c in specs.values() if isinstance(c, RunConfig)]
    return {"runs": len(training), "jobs": jobs, "trained": sum(isinstance(c, RunConfig) for c in missing),
            "baselines": len(specs) - len(training), "baselines_computed": len(missing) - sum(
                isinstance(c, RunConfig) for c in missing),
            "seconds": seconds, "runs_seconds": sum(float(run.history["seconds"].sum())
                                                    for run in (store.load(runs.Training(c)) for c in training)
                                                    if run is not None)}
