"""A training run as a store entry: ``Training`` fits a ``RunConfig`` into files, ``Run`` is what is
read back. The store itself knows only entries (``store.Entry``); this is the kind that trains."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import data, numerics, tracking
from .config import RunConfig, resolve_device
from .models import build_model, count_parameters
from .trainer import fit


@dataclass
class Run:
    """A finished run: its config, per-epoch history and where its files lie."""

    config: RunConfig
    folder: Path
    history: pd.DataFrame
    info: dict
    reused: bool

    @property
    def key(self) -> str:
        return self.folder.name

    @property
    def final(self) -> dict:
        return self.history.iloc[-1].to_dict()

    def test_set(self, device: str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
        """The test images and labels of the run's own dataset: the only way a reader gets test data."""
        return data.load(self.config.dataset, False, device)

    def model(self, device: str = "cpu") -> torch.nn.Module:
        """The trained network, loaded from ``model.pt``."""
        model = build_model(self.config.model, **self.config.model_kw)
        model.load_state_dict(torch.load(self.folder / "model.pt", map_location=device, weights_only=True))
        return model.to(device).eval()


@dataclass(frozen=True)
class Training:
    """The store entry of a training run: ``fit(config)``, stored as its config, history and weights."""

    config: RunConfig
    tracker: str = "none"
    on_epoch: object = None  # called with each epoch's row (progress reports from workers)

    def folder_name(self) -> str:
        return self.config.key()

    def compute(self, folder: Path, progress: bool) -> dict[str, bytes]:
        model, history = fit(self.config, checkpoint=folder / "checkpoint.pt", progress=progress,
                             tracker=tracking.start(self.tracker, self.config, folder.parent), on_epoch=self.on_epoch)
        return files(self.config, model, history)

    def read(self, folder: Path, stored: dict[str, bytes]) -> Run:
        info = json.loads(stored["config.json"])
        history = pd.read_csv(io.BytesIO(stored["history.csv"]), float_precision="round_trip")
        return Run(self.config, folder, history, info, reused=True)


def files(config: RunConfig, model, history) -> dict[str, bytes]:
    """A finished run's files, for a trained ``model`` and its ``History`` (a single run's or an
    ensemble member's)."""
    info = {
        "key": config.key(),
        "config": config.to_dict(),
        "parameters": count_parameters(model),
        "device": torch.device(resolve_device(config.device)).type,
        "torch": torch.__version__,
    }
    if info["device"] == "cpu":
        info["numerics"] = numerics.fingerprint()
    weights = io.BytesIO()
    torch.save({k: v.cpu() for k, v in model.state_dict().items()}, weights)
    return {
        "config.json": json.dumps(info, indent=2, sort_keys=True).encode(),
        "history.csv": history.frame().to_csv(index=False).encode(),
        "model.pt": weights.getvalue(),
    }


def entry(spec):
    """The store entry of ``spec``: a ``RunConfig`` becomes a ``Training``; anything else (the BoVW
    baseline's ``BovwConfig``) is its own entry."""
    return Training(spec) if isinstance(spec, RunConfig) else spec
