"""Command line: ``mnistkit {train,bovw,bench,params,tidy}`` (or ``python -m mnistkit ...``).

Every command ends with one line of ``key=value`` pairs that scripts and tests read.
Bad input exits with status 2 and one line naming the parameter, before any work starts and
with nothing written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from . import paths, tracking
from .errors import ConfigError, DataError, KernelError
from .params import check_cluster


def _kv(pairs: dict) -> str:
    def fmt(v):
        if isinstance(v, bool):
            return str(v).lower()
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"
        return str(v)

    return " ".join(f"{k}={fmt(v)}" for k, v in pairs.items())


def _model_kw(items: list[str], option: str = "--model-kw") -> dict:
    """``["dim=64", "norm_first=true"]`` -> ``{"dim": 64, "norm_first": True}`` (values parsed as YAML)."""
    import yaml

    kw = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(option, item, "must look like NAME=VALUE, e.g. dim=64")
        try:
            kw[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(option, item, "its value is not valid YAML (e.g. 64, true, [1, 2], null)") from None
    return kw


def _store(args) -> Path:
    """The run store this command uses, made and proven writable, or ``ConfigError``; said on stderr."""
    if args.store is not None:
        root, chosen_by = paths.check_writable(args.store, "--store"), "--store"
    else:
        root = paths.check_store()
        chosen_by = "$MNISTKIT_STORE" if os.environ.get("MNISTKIT_STORE") else "default"
    if not args.quiet:
        print(f"store: {root} ({chosen_by}); data: {paths.data_root()}", file=sys.stderr, flush=True)
    return root


def _subset(value: str):
    return None if value.lower() in ("full", "none", "60000") else int(value)


def cmd_train(args) -> dict:
    from . import executor
    from .config import RunConfig, resolve_device
    from .store import Store

    config = RunConfig(
        dataset=args.dataset, model=args.model, model_kw=_model_kw(args.model_kw), optimizer=args.optimizer, lr=args.lr,
        momentum=args.momentum, weight_decay=args.weight_decay, batch_size=args.batch_size,
        epochs=args.epochs, subset=args.subset, subset_seed=args.subset_seed, seed=args.seed,
        schedule=args.schedule, warmup_epochs=args.warmup_epochs, label_smoothing=args.label_smoothing,
        augment=args.augment, device=args.device, deterministic=args.deterministic,
    )
    tracking.check(args.tracker)
    if config.model == "vit" and resolve_device(config.device) == "cpu":
        from . import gemm

        if gemm.active():
            gemm.check()  # before anything is written: the products it would compute with are the pinned ones
    store = Store(_store(args))
    if args.cluster:  # trained by a worker of that scheduler, into the same (shared) store
        check_cluster(args.cluster)
        run = executor.run_all(store, [config], cluster=args.cluster, progress=not args.quiet, tracker=args.tracker)[0]
    else:
        run = executor.make(store, config, progress=not args.quiet, tracker=args.tracker)
    if not args.quiet:
        print(run.history.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    final = run.final
    return {"test_acc": final["test_acc"], "test_loss": final["test_loss"], "train_acc": final["train_acc"],
            "train_loss": final["train_loss"], "epochs": len(run.history),
            "seconds": float(run.history["seconds"].sum()), "parameters": run.info["parameters"],
            "device": run.info["device"], "run": run.key, "reused": run.reused}


def cmd_bovw(args) -> dict:
    from . import bovw, executor
    from .store import Store

    config = bovw.BovwConfig.from_dict({k: v for k, v in vars(args).items()
                                        if k in bovw.BovwConfig.__dataclass_fields__ and v is not None})
    result = executor.make(Store(_store(args)), config, progress=not args.quiet)
    return {"test_acc": result.test_acc, "seconds": result.seconds, "train_seconds": result.train_seconds,
            "inference_ms_per_image": result.inference_ms_per_image, "feature_dim": result.feature_dim,
            "train_size": result.train_size, "reused": result.reused}


def cmd_bench(args) -> dict:
    from . import bench
    from .config import RunConfig

    RunConfig(model=args.model, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed, device=args.device)
    if args.threads is not None and args.threads < 1:
        raise ConfigError("--threads", args.threads, "must be an integer >= 1")
    args.out = str(paths.check_writable(Path(args.out).expanduser().absolute().parent, "--out") / Path(args.out).name)
    return bench.main(args)  # each side's worker process runs args.threads threads


def cmd_tidy(args) -> dict:
    from .store import Store

    gone = Store(_store(args)).tidy()
    return {"removed": len(gone)}


def cmd_params(args) -> dict:
    from .params import notebook_cell
    from .questions import parameters
    from .questions.plan import load_params

    params = load_params(args.file, overrides=_model_kw(args.set, "--set"))
    store = _store(args)  # the store a report with these parameters would write to takes files
    if args.cell:
        print(notebook_cell(parameters()), end="")
    return {"file": args.file or "none", "profile": params.profile, "only": params.only or "all", "store": str(store),
            "valid": True}


class Parser(argparse.ArgumentParser):
    """argparse, with its refusals on one line (no usage block), exit status 2 as before."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def parser() -> argparse.ArgumentParser:
    from .config import AUGMENTS, OPTIMIZERS, SCHEDULES
    from .data import DATASETS, DEFAULT
    from .models import MODELS

    prog = "python -m mnistkit" if sys.argv[0].endswith("__main__.py") else "mnistkit"
    p = Parser(prog=prog, description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one run (or reuse it from the store) and print its history")
    t.add_argument("--dataset", default=DEFAULT, choices=list(DATASETS))
    t.add_argument("--model", default="lenet", choices=sorted(MODELS))
    t.add_argument("--model-kw", nargs="*", default=[], metavar="NAME=VALUE", help="model keyword arguments")
    t.add_argument("--optimizer", default="adam", choices=OPTIMIZERS)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--momentum", type=float, default=0.0, help="SGD and RMSprop only")
    t.add_argument("--weight-decay", type=float, default=0.0)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--epochs", type=int, default=10, help="1 to 1000")
    t.add_argument("--subset", type=_subset, default=None, help="balanced subset size, or 'full' (default)")
    t.add_argument("--subset-seed", type=int, default=0)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--schedule", default="constant", choices=SCHEDULES)
    t.add_argument("--warmup-epochs", type=float, default=0.0)
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--augment", default="none", choices=AUGMENTS)
    t.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (Apple silicon)")
    t.add_argument("--deterministic", action="store_true", help="deterministic kernels (slower on CUDA)")
    t.add_argument("--tracker", default="none", choices=tracking.TRACKERS,
                   help="also log every trained epoch to Weights & Biases (offline unless $WANDB_MODE says "
                        "otherwise) or to TensorBoard files under the store")
    t.add_argument("--cluster", default=None, metavar="ADDR",
                   help="train on the Dask scheduler at ADDR (tcp://host:8786); the store must be shared")
    t.set_defaults(func=cmd_train)

    b = sub.add_parser("bovw", help="the SIFT bag-of-visual-words + SVM baseline (stored like a run)")
    b.add_argument("--dataset", default=DEFAULT, choices=list(DATASETS))
    b.add_argument("--subset", type=_subset, default=None, help="balanced training subset, or 'full'")
    b.add_argument("--words", type=int, help="vocabulary size")
    b.add_argument("--seed", type=int)
    b.add_argument("--jobs", type=int, help="processes for descriptor extraction")
    b.set_defaults(func=cmd_bovw)

    m = sub.add_parser("bench", help="the assignment's training pipeline (native kernels) against mnistkit's "
                                     "(pinned and native), side by side in worker processes")
    m.add_argument("--model", default="lenet", choices=sorted(MODELS))
    m.add_argument("--batch-size", type=int, default=64)
    m.add_argument("--epochs", type=int, default=2, help="timed epochs per pipeline, after a warm-up")
    m.add_argument("--device", default="auto")
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--threads", type=int, default=None,
                   help="intra-op threads of each side's worker (default 1, as a stored run; efficiency is "
                        "against this many times the one-thread sgemm peak)")
    m.add_argument("--out", default=str(paths.build_dir() / "bench.json"))
    m.set_defaults(func=cmd_bench)

    v = sub.add_parser("params", help="validate a report parameter file without running anything")
    v.add_argument("file", nargs="?", help="a YAML file (default: none, the schema's defaults)")
    v.add_argument("--cell", action="store_true", help="also print report.ipynb's parameters cell, made from the "
                                                       "schema")
    v.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE")
    v.set_defaults(func=cmd_params)

    y = sub.add_parser("tidy", help="remove what a stopped build left in the run store: dead locks, empty folders")
    y.set_defaults(func=cmd_tidy)

    for s in (t, b, m, v, y):
        s.add_argument("--store", default=None, help="run store folder (default $MNISTKIT_STORE, else the "
                                                     "checkout's build/runs, else ~/.cache/mnistkit/runs)")
        s.add_argument("--quiet", action="store_true", help="no progress bars or tables")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    start = time.perf_counter()
    try:
        pairs = args.func(args)
    except (ConfigError, DataError, KernelError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last finished epoch", file=sys.stderr)
        return 130
    pairs.setdefault("wall_seconds", time.perf_counter() - start)
    print(_kv(pairs), flush=True)
    return 0


def console() -> None:
    """The ``mnistkit`` console command."""
    sys.exit(main())


if __name__ == "__main__":
    console()
