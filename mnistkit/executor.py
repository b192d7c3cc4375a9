"""Trainings as Dask tasks: on a LocalCluster started for the occasion, or on an existing scheduler.

One code path for one machine and many: ``train(root, configs, jobs, cluster)`` submits one task
per run (``train_task``, or ``ensemble.train_task`` for the seeds of one configuration on CUDA)
to a Dask client. Without ``cluster``, that client is a ``LocalCluster`` of ``jobs`` worker
processes with one thread each, closed afterwards; with ``cluster="tcp://host:8786"``, the
scheduler there. Workers write into the run store themselves: ``root`` must be the same path on
every machine (a shared filesystem); the store's lock per key keeps two trainings of one key from
writing one entry (see NOTES.md). A task lost with its worker is run again elsewhere (Dask
reschedules it; ``retries`` covers errors raised by a task), and resumes from the run's
checkpoint in the store. Workers report every finished epoch as a Dask event (``TOPIC``); the
client turns them and finished tasks into one progress bar, weighted by the work of each run.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import uuid
from contextlib import contextmanager
from pathlib import Path

from .config import RunConfig, resolve_device
from .errors import ConfigError
from .files import atomic_write_text
from .progress import bar as progress_bar

TOPIC = "mnistkit-epoch"
RETRIES = 2  # a task that raises is tried this many more times; a lost worker does not count
ALLOWED_FAILURES = 5  # workers a task may take down with it (LocalCluster) before it is given up
STORE_ID = ".store-id"
CLUSTER = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://\S+$")


def check_cluster(cluster) -> None:
    """``None`` (a LocalCluster) or a scheduler address such as ``tcp://host:8786``; else ConfigError."""
    if cluster is not None and not (isinstance(cluster, str) and CLUSTER.match(cluster)):
        raise ConfigError("cluster", cluster, "must be null (a local cluster) or a Dask scheduler address "
                                              "such as tcp://host:8786")


def work(config: RunConfig) -> float:
    """A run's work per epoch, in LeNet-image units: what the progress bar's ETA and the order use."""
    size = 60_000 if config.subset is None else config.subset
    factor = {"lenet": 1, "double_conv_lenet": 2, "vit": 8}.get(config.model, 1)
    return (size + 10_000) * factor  # every epoch also evaluates the 10,000 test images


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
                             scheduler_kwargs={"dashboard_address": dashboard or ":0"})  # its HTTP server: any free port
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
    from .store import Store

    check_store(root, ident)
    if config.key() != key:
        raise RuntimeError(f"the worker's mnistkit gives run {config.label()} the key {config.key()}, the "
                           f"client's {key}: run the same mnistkit version everywhere")
    run = Store(root).run(config, progress=False, tracker=tracker, on_epoch=reporter(key, config.epochs))
    return {"keys": [run.key], "trained": [not run.reused]}


def _tasks(configs: list[RunConfig]) -> list[list[RunConfig]]:
    """The runs grouped into tasks: the seeds of one configuration together on CUDA, else one each."""
    from . import ensemble

    cuda = [c for c in configs if resolve_device(c.device).startswith("cuda")]
    single = [[c] for c in configs if not resolve_device(c.device).startswith("cuda")]
    return ensemble.groups(cuda) + single


def train(root, configs: list[RunConfig], jobs: int = 1, cluster: str | None = None, progress: bool = True,
          retries: int = RETRIES, tracker: str = "none") -> dict:
    """Train every run of ``configs`` the store lacks, as Dask tasks, longest first; returns
    ``{key: trained}`` (False where a worker found the run already stored). ``tracker`` logs each
    single run's epochs (``mnistkit.tracking``); ensembles are not tracked."""
    from . import ensemble

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
            if len(group) == 1:
                f = c.submit(train_task, root, ident, group[0], group[0].key(), tracker,
                             key=f"train-{group[0].key()}", retries=retries, priority=priority)
            else:
                f = c.submit(ensemble.train_task, root, ident, group, [g.key() for g in group],
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
