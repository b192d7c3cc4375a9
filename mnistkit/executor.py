"""Everything that computes store entries: training runs as Dask tasks, on a LocalCluster started for the
occasion or on an existing scheduler, and the BoVW baseline in this process.

``run_all(store, specs)`` is THE place where the report's entries are computed: it submits one task per
missing run (``train_task``, or ``ensemble_task`` for the seeds of one configuration trained as ensemble
members, an opt-in on CUDA) to a Dask client. Without ``cluster``, that client is a ``LocalCluster`` of
``jobs`` worker processes with one thread each, closed afterwards; with ``cluster="tcp://host:8786"``,
the scheduler there. Workers write into the run store themselves: ``root`` must be the same path on
every machine (a shared filesystem); the store's lock per key keeps two trainings of one key from
writing one entry (see NOTES.md). A task lost with its worker is run again elsewhere (Dask reschedules
it; ``retries`` covers errors raised by a task), and resumes from the run's checkpoint in the store.
Workers report every finished epoch as a Dask event (``TOPIC``); the client turns them and finished
tasks into one progress bar, weighted by the work of each run.
"""

from __future__ import annotations

import logging
import os
import queue
import uuid
from contextlib import ExitStack, contextmanager
from pathlib import Path

from . import data, runs, tracking
from .config import RunConfig
from .ensemble import fit_ensemble
from .errors import ConfigError
from .files import atomic_write_text
from .models import MODELS
from .params import check_cluster
from .progress import bar as progress_bar
from .store import Store

TOPIC = "mnistkit-epoch"
RETRIES = 2  # a task that raises is tried this many more times; a lost worker does not count
ALLOWED_FAILURES = 5  # workers a task may take down with it (LocalCluster) before it is given up
STORE_ID = ".store-id"


def local_jobs(jobs: int) -> int:
    """The training processes a LocalCluster starts for ``jobs``: at most one per CPU core here."""
    return max(1, min(jobs, os.cpu_count() or 1))


def make(store: Store, spec, progress: bool = True, tracker: str = "none", on_epoch=None):
    """The finished result for ``spec`` (a ``RunConfig`` or another store entry): from the store if
    there, else computed now in this process.

    The one sequence for every kind of entry: lock, load, compute (a training run resumes from its
    checkpoint), write the files and then the manifest, remove what computing left behind.
    ``on_epoch(row)`` hears of every epoch a training run trains; ``tracker`` (``none``, ``wandb``,
    ``tensorboard``) logs them, and a result found in the store is not logged again.
    """
    tracking.check(tracker)
    item = runs.Training(spec, tracker, on_epoch) if isinstance(spec, RunConfig) else spec
    with store.lock(item):
        found = store.load(item)
        return found if found is not None else _compute(store, item, progress)


def _compute(store: Store, item, progress: bool):
    """Compute ``item`` into its folder (kept for a checkpoint) and write it; the caller holds its lock."""
    folder = store.folder(item)
    folder.mkdir(parents=True, exist_ok=True)
    return store.write(item, item.compute(folder, progress))


def run_all(store: Store, specs: list, jobs: int = 1, progress: bool = True, cluster: str | None = None,
            tracker: str = "none") -> list:
    """Every result of ``specs`` (in order), computing the missing ones. Training runs are Dask
    tasks (a LocalCluster of ``jobs`` processes, or the scheduler at ``cluster``); other entries
    (the BoVW baseline, which starts worker processes of its own) then run one at a time in this
    process, once the training workers are gone, so that their memory never adds up."""
    results: list = [store.load(runs.entry(s)) for s in specs]
    todo = [i for i, found in enumerate(results) if found is None]
    training = [i for i in todo if isinstance(specs[i], RunConfig)]
    trained = train(store.root, [specs[i] for i in training], jobs=jobs, cluster=cluster,
                    progress=progress, tracker=tracker) if training else {}
    for i in todo:
        if i in training:
            results[i] = store.load(runs.entry(specs[i]))
            results[i].reused = not trained[specs[i].key()]
        else:
            results[i] = make(store, specs[i], progress=progress)
    return results


def work(config: RunConfig) -> float:
    """A run's work per epoch, in LeNet-image units: what the progress bar's ETA and the order use."""
    return (config.train_images + data.TEST_SIZE) * MODELS[config.model].work  # each epoch also tests


@contextmanager
def client(cluster: str | None = None, jobs: int = 1):
    """A Dask client: on ``cluster``, or on a LocalCluster of ``jobs`` processes (1 thread each).

    The LocalCluster's dashboard is off unless ``$MNISTKIT_DASHBOARD`` names an address (``:8787``).
    """
    import dask
    from distributed import Client, LocalCluster

    check_cluster(cluster)
    if cluster is not None:
        try:
            c = Client(cluster, timeout="10s")
        except (OSError, TimeoutError) as err:
            raise ConfigError("cluster", cluster, f"no Dask scheduler answered there ({err})") from None
        with c:
            yield c
        return
    with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
        dashboard = os.environ.get("MNISTKIT_DASHBOARD")
        local = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, memory_limit=0,
                             dashboard_address=dashboard, silence_logs=logging.ERROR,
                             # the dashboard's HTTP server: any free port unless one is asked for
                             scheduler_kwargs={"dashboard_address": dashboard or ":0"})
    with local, Client(local) as c:
        yield c


def store_id(root: Path) -> str:
    """The store's identity, written on first use: a worker checks it sees the client's store."""
    path = Path(root) / STORE_ID
    if not path.exists():
        Path(root).mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, uuid.uuid4().hex)
    return path.read_text()


def check_store(root: str, ident: str) -> None:
    """Raise unless ``root`` on this machine is the client's run store (a shared path)."""
    path = Path(root) / STORE_ID
    if not path.exists() or path.read_text() != ident:
        import socket

        raise RuntimeError(f"the run store {root} on worker host {socket.gethostname()} is not the client's: "
                           "workers need the store at the same path on a shared filesystem")


def reporter(key: str, epochs: int):
    """``on_epoch`` for a run on a Dask worker: each finished epoch becomes an event for the client."""
    from distributed import get_worker

    worker = get_worker()

    def on_epoch(row: dict) -> None:
        worker.log_event(TOPIC, {"key": key, "epoch": int(row["epoch"]), "epochs": epochs,
                                 "test_acc": float(row["test_acc"])})

    return on_epoch


def train_task(root: str, ident: str, config: RunConfig, key: str, tracker: str = "none") -> dict:
    """On a worker: the run ``config`` trained into (or found in) the store at ``root``."""
    check_store(root, ident)
    check_keys([config], [key])
    run = make(Store(root), config, progress=False, tracker=tracker, on_epoch=reporter(key, config.epochs))
    return {"keys": [run.key], "trained": [not run.reused]}


def ensemble_task(root: str, ident: str, configs: list[RunConfig], keys: list[str]) -> dict:
    """On a Dask worker: the runs ``configs`` (one configuration, several seeds) trained as one
    ensemble (``ensemble.fit_ensemble``) into the store at ``root``, each under its own lock (taken
    in key order); runs found stored are not trained again."""
    check_store(root, ident)
    check_keys(configs, keys)
    store = Store(root)
    with ExitStack() as locks:
        for c in sorted(configs, key=RunConfig.key):
            locks.enter_context(store.lock(runs.Training(c)))
        todo = [c for c in configs if store.load(runs.Training(c)) is None]
        if todo:  # a lone member too: its key says it trained as one
            reports = [reporter(c.key(), c.epochs) for c in todo]
            for c, (model, history) in zip(todo, fit_ensemble(todo, on_epoch=lambda i, row: reports[i](row))):
                store.write(runs.Training(c), runs.files(c, model, history))
    return {"keys": keys, "trained": [c in todo for c in configs]}


def check_keys(configs: list[RunConfig], keys: list[str]) -> None:
    """Raise unless this worker's mnistkit gives ``configs`` the client's ``keys``."""
    for config, key in zip(configs, keys, strict=True):
        if config.key() != key:
            raise RuntimeError(f"the worker's mnistkit gives run {config.label()} the key {config.key()}, the "
                               f"client's {key}: run the same mnistkit version everywhere")


def groups(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """``configs`` grouped by everything but ``seed`` and ``subset_seed``, in first-seen order."""
    by: dict[str, list[RunConfig]] = {}
    for c in configs:
        by.setdefault(c.replace(seed=0, subset_seed=0).key(), []).append(c)
    return list(by.values())


def _tasks(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """The runs grouped into tasks: the seeds of one configuration together where they are ensemble members
    (``RunConfig.ensemble``, opt-in, on CUDA), else one each."""
    return groups([c for c in configs if c.ensemble]) + [[c] for c in configs if not c.ensemble]


def train(root, configs: list[RunConfig], jobs: int = 1, cluster: str | None = None, progress: bool = True,
          retries: int = RETRIES, tracker: str = "none") -> dict:
    """Train every run of ``configs`` the store lacks, as Dask tasks, longest first; returns
    ``{key: trained}`` (False where a worker found the run already stored). ``tracker`` logs each
    single run's epochs (``mnistkit.tracking``); ensembles are not tracked."""
    configs = list({c.key(): c for c in configs}.values())
    if not configs:
        return {}
    root = str(Path(root).resolve())
    ident = store_id(Path(root))
    tasks = sorted(_tasks(configs), key=lambda g: -sum(work(c) * c.epochs for c in g))
    per_key = {c.key(): c for c in configs}
    total = sum(work(c) * c.epochs for c in configs)
    done_epochs = dict.fromkeys(per_key, 0)
    bar = progress_bar(total=total, desc="runs", disable=not progress, mininterval=0.5,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}{postfix}]")
    finished: dict[str, bool] = {}
    events: queue.SimpleQueue = queue.SimpleQueue()

    def advance(key: str, epoch: int, note: str = "") -> None:
        config = per_key[key]
        if epoch > done_epochs[key]:
            bar.update(work(config) * (epoch - done_epochs[key]))
            done_epochs[key] = epoch
        bar.set_postfix_str(f"{len(finished)}/{len(configs)} runs{note}", refresh=False)

    with client(cluster, jobs) as c:
        c.subscribe_topic(TOPIC, lambda event: events.put(event[1]))
        futures = []
        for i, group in enumerate(tasks):
            priority = len(tasks) - i  # Dask runs higher priorities first
            if not group[0].ensemble:
                f = c.submit(train_task, root, ident, group[0], group[0].key(), tracker,
                             key=f"train-{group[0].key()}", retries=retries, priority=priority)
            else:
                f = c.submit(ensemble_task, root, ident, group, [g.key() for g in group],
                             key=f"ensemble-{group[0].key()}", retries=retries, priority=priority)
            futures.append(f)
        pending = set(futures)
        try:
            while pending:
                try:
                    event = events.get(timeout=0.25)
                    label = per_key[event["key"]].label()
                    advance(event["key"], event["epoch"],
                            f"; {label} epoch {event['epoch']}/{event['epochs']} test_acc={event['test_acc']:.4f}")
                    continue
                except queue.Empty:
                    pass
                for f in [f for f in pending if f.done()]:
                    pending.discard(f)
                    result = f.result()  # a task that failed after its retries raises here
                    for key, trained in zip(result["keys"], result["trained"]):
                        finished[key] = trained
                        advance(key, per_key[key].epochs)
        finally:
            for f in pending:
                f.cancel()
            c.unsubscribe_topic(TOPIC)
    bar.close()
    return finished
