"""The report's architecture tables: each network's layers, output shapes and parameters, from torchinfo.

``table(model, model_kw)`` builds the network as a run does (``build_model``, on the CPU) and
traces one ``[1, 1, 28, 28]`` image through it with ``torchinfo.summary``. Rows are its layers in
the order the forward pass runs them, down to ``DEPTH`` levels of modules: every layer of the two
LeNets, their pooling included, and one row per encoder layer of the ViT (its attention, MLP and
norms together). The activations, applied as functions, are not modules and have no row.
"""

from __future__ import annotations

import pandas as pd
import torch
import torchinfo

from . import gemm
from .models import build_model

DEPTH = 3  # the ViT's transformer.layers.N: one row per encoder layer
NONE = "—"


def _count(n: int) -> str:
    return f"{n:,}" if n else NONE


def table(model_name: str, model_kw: dict | None = None) -> pd.DataFrame:
    """Columns "layer", "output shape" (without the batch dimension) and "parameters" (trainable),
    one row per layer, then a "total" row: every trainable parameter of the model."""
    with torch.random.fork_rng(devices=[]):  # the global random state is left as it was
        model = build_model(model_name, **(model_kw or {}))
        with gemm.plain():  # shapes only: no need for the pinned products
            stats = torchinfo.summary(model, input_size=(1, 1, 28, 28), depth=DEPTH, device="cpu",
                                      mode="eval", verbose=0)
    names = {id(m): name for name, m in model.named_modules()}
    rows = []
    for info in stats.summary_list:
        if info.depth <= DEPTH and (info.is_leaf_layer or info.depth == DEPTH):
            shape = " × ".join(str(n) for n in info.output_size[1:]) or NONE
            rows.append((f"{names[id(info.module)]} ({info.class_name})", shape, _count(info.trainable_params)))
        elif info.depth < DEPTH:  # a container's own parameters (the ViT's CLS token and positions)
            own = [(n, p) for n, p in info.module.named_parameters(recurse=False) if p.requires_grad]
            if own:
                label = ", ".join(n for n, _ in own) + f" ({info.class_name})"
                rows.append((label, NONE, _count(sum(p.numel() for _, p in own))))
    rows.append(("total", "", f"{stats.trainable_params:,}"))
    return pd.DataFrame(rows, columns=["layer", "output shape", "parameters"])
