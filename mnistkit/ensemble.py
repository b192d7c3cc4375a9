"""The seeds of one configuration trained together: one vmapped ensemble (``torch.func``).

A small network leaves a GPU idle between kernel launches; training M seeds as one network with
stacked parameters (``stack_module_state``, ``functional_call``, ``vmap``) launches each kernel
once for all of them. Every member keeps what its own seed gives a single run: its initial values
(``seed_everything`` then ``build_model``, as ``trainer.fit`` does), its training subset
(``subset_seed``), its batch order and its shift augmentation (its own generator, drawn in the
same order as a single run). The loss is the sum of the members' mean losses, so each member's
gradient is its own; Adam, AdamW, SGD and RMSprop update element by element, so one optimizer
over the stacked tensors updates each member as its own would. It supplies its step
(``ensemble_step``) to the trainer's one epoch loop (``trainer.epoch_loop``). The executor uses it for runs
that ask (``RunConfig.ensemble``, an opt-in on CUDA, keyed apart from single runs); a model that keeps
batch statistics is never ensembled (``models.ensemblable``). ``tests/test_ensemble.py`` checks that an
ensemble on the CPU matches single runs to float tolerance.

Not covered: dropout. Under ``vmap`` the CPU ``models.Dropout`` cannot draw its NumPy mask, and
on CUDA the masks come from the one CUDA generator (``randomness="different"``), seeded by the
first member: different for every member, but not the masks a single run of that seed would draw.
Ensembles do not checkpoint: a task lost with its worker trains its group again.
"""

from __future__ import annotations

import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from . import data
from .config import RunConfig, resolve_device
from .models import build_model, ensemblable
from .trainer import (History, augmented, epoch_loop, epoch_row, held_out, keep_freed_memory, lr_factor,
                      make_optimizer, make_step, scored, seed_everything, set_deterministic)


class Ensemble(nn.Module):
    """M networks of one architecture, parameters stacked on a first dimension of size M.

    ``forward`` takes ``[M, B, ...]`` (member i's batch at i) and returns ``[M, B, classes]``.
    """

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        params, buffers = stack_module_state(models)
        self.names, self.buffer_names = list(params), list(buffers)
        self.stacked = nn.ParameterList(nn.Parameter(params[n].detach().clone()) for n in self.names)
        for i, name in enumerate(self.buffer_names):
            self.register_buffer(f"buffer{i}", buffers[name])
        self._base = [copy.deepcopy(models[0]).to("meta")]  # in a list: not a submodule

    def train(self, mode: bool = True):
        self._base[0].train(mode)
        return super().train(mode)

    def forward(self, x):
        base, names, buffer_names = self._base[0], self.names, self.buffer_names

        def one(params, buffers, x):
            return functional_call(base, (dict(zip(names, params)), dict(zip(buffer_names, buffers))), (x,))

        buffers = [getattr(self, f"buffer{i}") for i in range(len(buffer_names))]
        return vmap(one, randomness="different")(list(self.stacked), buffers, x)

    def copy_into(self, models: list[nn.Module]) -> None:
        """Member i's current values into ``models[i]``."""
        with torch.no_grad():
            for i, model in enumerate(models):
                state = model.state_dict()
                for name, p in zip(self.names, self.stacked):
                    state[name].copy_(p[i])
                for j, name in enumerate(self.buffer_names):
                    state[name].copy_(getattr(self, f"buffer{j}")[i])


def ensemble_step(model: Ensemble, optimizer, x, y, config: RunConfig, sums) -> torch.Tensor:
    """``trainer.train_step`` for an ensemble: every member's loss, its gradient, one update."""
    logits = model(x)
    losses = vmap(lambda out, t: F.cross_entropy(out, t, label_smoothing=config.label_smoothing))(logits, y)
    optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    optimizer.step()
    sums[0] += losses.detach() * y.shape[-1]
    sums[1] += (logits.argmax(-1) == y).sum(-1)
    return losses


def check_group(configs: list[RunConfig]) -> None:
    if len({c.replace(seed=0, subset_seed=0).key() for c in configs}) != 1:
        raise ValueError("an ensemble's runs must differ only in seed and subset_seed")
    if not ensemblable(configs[0].model, configs[0].model_kw):
        raise ValueError(f"{configs[0].model} keeps batch statistics, which members cannot keep apart: train it alone")


def fit_ensemble(configs: list[RunConfig], on_epoch=None) -> list:
    """Train the runs ``configs`` (one configuration, several seeds) together; returns
    ``[(model, History)]`` in their order. ``on_epoch(i, row)`` hears of member i's epochs; a
    row's ``seconds`` is the member's share (1/M) of the ensemble's epoch."""
    check_group(configs)
    config = configs[0]
    device = resolve_device(config.device)
    keep_freed_memory()
    set_deterministic(config.deterministic)
    models, generators, splits = [], [], []
    for c in configs:
        generators.append(seed_everything(c.seed))
        models.append(build_model(c.model, **c.model_kw).to(device))
        splits.append(data.train_split(c.dataset, c.subset, c.subset_seed, device, validation=c.validation))
    torch.manual_seed(config.seed)  # the global generator draws dropout masks on CUDA
    ensemble = Ensemble(models).to(device)
    optimizer = make_optimizer(config, ensemble.parameters(), device)
    n = len(splits[0][1])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config, math.ceil(n / config.batch_size)))
    test, validation = held_out(config, device)
    histories = [History() for _ in configs]
    for epoch in range(config.epochs):
        start = time.perf_counter()
        ensemble.train()
        sums = [torch.zeros(len(configs), device=device), torch.zeros(len(configs), device=device, dtype=torch.long)]
        step = make_step(ensemble, optimizer, config, sums, torch.device(device), step_fn=ensemble_step)
        members = [augmented(data.batches(x, y, config.batch_size, g), config, g)
                   for (x, y), g in zip(splits, generators)]
        epoch_loop(step, ((torch.stack([x for x, _ in parts]), torch.stack([y for _, y in parts]))
                          for parts in zip(*members)), scheduler)
        losses, hits = sums[0].tolist(), sums[1].tolist()
        ensemble.copy_into(models)
        seconds = (time.perf_counter() - start) / len(configs)
        for i, (model, history) in enumerate(zip(models, histories)):
            row = epoch_row(epoch + 1, {"train_loss": losses[i] / n, "train_acc": hits[i] / n},
                            scored(model, epoch + 1, config, test, validation), seconds)
            history.rows.append(row)
            if on_epoch is not None:
                on_epoch(i, row)
    return list(zip(models, histories))
