"""Experiment tracking: every epoch of a run that is trained, logged to Weights & Biases or TensorBoard.

``tracker`` is ``none``, ``wandb`` or ``tensorboard``. A tracker logs the run's config and, after
each finished epoch, its metrics at step = epoch number. Only runs that train log: a run served
from the store logged when it was trained. A resumed run continues its own log:

- TensorBoard writes under ``<store>/tensorboard/<run key>/``; a resumed run opens the same folder
  with ``purge_step`` at its first epoch, so an epoch logged before the interruption but not
  checkpointed is replaced, not doubled. ``tensorboard --logdir <store>/tensorboard`` shows them.
- W&B's run id is the run's key, resumed with ``resume="allow"``; runs are offline unless
  ``$WANDB_MODE`` says otherwise (no account needed), with their files under ``<store>/wandb/``.

``check`` says, before any work, whether a tracker can run here; a missing package is a ConfigError.
"""

from __future__ import annotations

import json
import os
from importlib import util as importlib_util
from pathlib import Path

from .errors import ConfigError

TRACKERS = ("none", "wandb", "tensorboard")
METRICS = ("train_loss", "train_acc", "test_loss", "test_acc", "seconds")


def installed(package: str) -> bool:
    return importlib_util.find_spec(package) is not None


def check(name) -> str:
    """``name`` if it is a tracker whose package is installed; else ``ConfigError``."""
    if name not in TRACKERS:
        raise ConfigError("tracker", name, f"must be one of {list(TRACKERS)}")
    if name != "none" and not installed(name):
        raise ConfigError("tracker", name, f"needs the {name} package: pip install 'mnistkit[{name}]' "
                                           f"(or pip install {name}), or use 'none'")
    return name


class Tracker:
    """Logs nothing: ``tracker: none``. Subclasses open their log at the first epoch they see."""

    def __init__(self, config, root: Path | str):
        self.config, self.root = config, Path(root)

    def log(self, row: dict) -> None:
        """Log one finished epoch's row (``epoch`` and the metrics)."""

    def close(self) -> None:
        """Flush and close the log."""


class TensorBoard(Tracker):
    def __init__(self, config, root):
        super().__init__(config, root)
        self.folder = self.root / "tensorboard" / config.key()
        self.writer = None

    def log(self, row):
        if self.writer is None:
            from torch.utils.tensorboard import SummaryWriter

            # purge_step drops what an interrupted attempt logged from this epoch on
            self.writer = SummaryWriter(str(self.folder), purge_step=row["epoch"])
            if row["epoch"] == 1:
                text = json.dumps({"key": self.config.key(), **self.config.to_dict()}, indent=2, default=str)
                self.writer.add_text("config", f"```\n{text}\n```", global_step=0)
        for name in METRICS:
            if name in row:
                self.writer.add_scalar(name, row[name], global_step=row["epoch"])
        self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()


class WandB(Tracker):
    def __init__(self, config, root):
        super().__init__(config, root)
        self.run = None

    def log(self, row):
        if self.run is None:
            import wandb

            self.root.mkdir(parents=True, exist_ok=True)
            self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "mnistkit"), id=self.config.key(),
                                  name=self.config.label(), config=self.config.to_dict(), dir=str(self.root),
                                  resume="allow", mode=os.environ.get("WANDB_MODE", "offline"))
        self.run.log({name: row[name] for name in METRICS if name in row}, step=row["epoch"])

    def close(self):
        if self.run is not None:
            self.run.finish()


def start(name: str, config, root: Path | str) -> Tracker:
    """The tracker ``name`` for ``config``'s run, writing under the run store ``root``."""
    check(name)
    return {"none": Tracker, "tensorboard": TensorBoard, "wandb": WandB}[name](config, root)
