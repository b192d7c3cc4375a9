"""The three networks of the study; each returns logits for 10 classes from ``[B, 1, 28, 28]``."""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import gemm
from .errors import ConfigError


class LeNet(nn.Module):
    """LeNet-5 as in the assignment: two 5x5 convs with max-pooling, then 256 -> 120 -> 84 -> 10."""

    title = "LeNet"  # its name in the report (every model of MODELS states its own)
    work = 1  # its training and test work per image, in LeNet units: the progress bar's ETA and the run order

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        # relu(max_pool(x)) == max_pool(relu(x)), values and gradients alike, with a quarter of the relu work
        x = F.relu(self.pool1(self.conv1(x)))
        x = F.relu(self.pool2(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class DoubleConvLeNet(LeNet):
    """Question 4's LeNet with twice the conv layers: a 5x5 conv (padding 2) after each conv."""

    title = "doubled-conv LeNet"
    work = 2

    def __init__(self):
        super().__init__()
        self.conv1_1 = nn.Conv2d(6, 6, 5, padding=2)
        self.conv2_1 = nn.Conv2d(16, 16, 5, padding=2)

    def forward(self, x):
        x = F.relu(self.conv1_1(F.relu(self.pool1(self.conv1(x)))))
        x = F.relu(self.conv2_1(F.relu(self.pool2(self.conv2(x)))))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Dropout(nn.Module):
    """``nn.Dropout`` whose CPU mask is drawn five times faster than PyTorch's Bernoulli sampler.

    On a 2-core CPU, dropout (its ``bernoulli_`` masks) took 40% of a ViT training step. Here each
    element is kept when a 32-bit integer from NumPy's SFC64 generator is at least ``p * 2**32``
    (so it is dropped with probability ``p``, to 2**-32), and kept elements are scaled by
    ``1 / (1 - p)``, as in ``nn.Dropout``. The generator is seeded for every call from torch's global generator: one
seed
    (``torch.manual_seed``) fixes every mask, and a checkpoint of torch's RNG state resumes them.
    On other devices this is ``F.dropout``.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x):
        if x.device.type != "cpu":
            return F.dropout(x, self.p, training=self.training)
        mask = self.mask(x)
        return x if mask is None else x * mask

    def mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """The CPU mask for ``x``: ``1 / (1 - p)`` where kept, 0 where dropped; None where nothing is dropped."""
        if not self.training or self.p == 0:
            return None
        seed = int(torch.randint(2**63 - 1, (), dtype=torch.int64))
        bits = np.random.SFC64(seed).random_raw(-(-x.numel() // 2)).view(np.uint32)[: x.numel()]
        scale = torch.ones((), dtype=x.dtype).div_(1 - self.p).numpy()  # as torch divides: one rounding
        threshold = np.uint32(min(round(self.p * 2**32), 2**32 - 1))
        return torch.from_numpy(np.multiply(bits >= threshold, scale, dtype=scale.dtype)).view(x.shape)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class SelfAttention(nn.Module):
    """``nn.MultiheadAttention(batch_first=True)`` as self-attention: the same parameters, drawn in
    the same order, and the same mathematics; on CPU, ``Dropout`` drops attention weights."""

    def __init__(self, dim, heads, dropout):
        super().__init__()
        self.heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * dim, dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * dim))
        self.out_proj = gemm.Linear(dim, dim)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)
        self.dropout = Dropout(dropout)

    def forward(self, x):
        b, n, dim = x.shape
        qkv = gemm.linear(x, self.in_proj_weight, self.in_proj_bias)
        if gemm.routed(x):
            return self.out_proj(gemm.attention(qkv, self.heads, self.dropout))
        q, k, v = qkv.view(b, n, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        if self.training and self.dropout.p and x.device.type == "cpu":
            weights = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)
            out = self.dropout(weights) @ v
        else:  # PyTorch's fused attention, as nn.MultiheadAttention runs it (with its dropout off the CPU)
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout.p if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, dim))


class EncoderLayer(nn.Module):
    """``nn.TransformerEncoderLayer(batch_first=True)`` with ReLU: the same parameters, drawn in
    the same order, and the same mathematics (post-norm, or pre-norm with ``norm_first``), with
    this module's ``Dropout``."""

    def __init__(self, dim, heads, mlp_dim, dropout, norm_first):
        super().__init__()
        self.self_attn = SelfAttention(dim, heads, dropout)
        self.linear1 = gemm.Linear(dim, mlp_dim)
        self.dropout = Dropout(dropout)
        self.linear2 = gemm.Linear(mlp_dim, dim)
        self.norm_first = norm_first
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.dropout1, self.dropout2 = Dropout(dropout), Dropout(dropout)

    def forward(self, x):
        if self.norm_first:
            x = x + self._attend(self.norm1(x))
            return x + self._feed_forward(self.norm2(x))
        x = self.norm1(x + self._attend(x))
        return self.norm2(x + self._feed_forward(x))

    def _attend(self, x):
        return self.dropout1(self.self_attn(x))

    def _feed_forward(self, x):
        return self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x)))))


class Encoder(nn.Module):
    """``depth`` copies of one layer, as ``nn.TransformerEncoder`` makes them (so all start equal)."""

    def __init__(self, layer: nn.Module, depth: int):
        super().__init__()
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(depth))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class ViT(nn.Module):
    """A small Vision Transformer: 7x7 patches, a CLS token, learned positions, ``depth`` layers.

    The assignment's architecture with ``depth=2`` (question 6 asks for a 2-layer encoder). Its
    encoder is PyTorch's ``nn.TransformerEncoder`` written out (``EncoderLayer``), so that dropout
    can use the faster CPU mask of ``Dropout`` and its linear layers and attention can multiply
    through the pinned OpenBLAS (``gemm``); parameter names, initial values and mathematics are
    those of the built-in modules.
    """

    title = "ViT"
    work = 8

    def __init__(self, patch_size=7, dim=128, depth=2, heads=8, mlp_dim=256, dropout=0.1, norm_first=False):
        super().__init__()
        for name, value in (("depth", depth), ("dim", dim), ("heads", heads), ("mlp_dim", mlp_dim)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"model_kw.{name}", value, "must be an integer >= 1")
        if not 0 <= dropout < 1:
            raise ConfigError("model_kw.dropout", dropout, "must be a number in [0, 1)")
        if 28 % patch_size:
            raise ConfigError("model_kw.patch_size", patch_size, "must divide 28 (1, 2, 4, 7, 14 or 28)")
        if dim % heads:
            raise ConfigError("model_kw.heads", heads, f"must divide dim={dim}")
        self.patch_size = patch_size
        num_patches = (28 // patch_size) ** 2
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))  # the assignment's order
        self.patch_to_embedding = gemm.Linear(patch_size * patch_size, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.transformer = Encoder(EncoderLayer(dim, heads, mlp_dim, dropout, norm_first), depth)
        self.mlp_head = nn.Sequential(gemm.Linear(dim, mlp_dim), nn.ReLU(), gemm.Linear(mlp_dim, 10))

    def forward(self, img):
        b, p = img.shape[0], self.patch_size
        patches = img.unfold(2, p, p).unfold(3, p, p).reshape(b, -1, p * p)
        x = torch.cat([self.cls_token.expand(b, -1, -1), self.patch_to_embedding(patches)], dim=1)
        x = self.transformer(x + self.pos_embedding)
        return self.mlp_head(x[:, 0])


MODELS = {"lenet": LeNet, "double_conv_lenet": DoubleConvLeNet, "vit": ViT}  # every list of models reads it
DECLARED = ("title", "work")  # what each model states in its own class, never inherited


def check_model(name, kw: dict) -> None:
    """Raise ``ConfigError`` for an unknown model name, keyword argument or bad value.

    The model is built on the meta device: no memory, no random numbers drawn.
    """
    if name not in MODELS:
        raise ConfigError("model", name, f"must be one of {sorted(MODELS)}")
    accepted = list(inspect.signature(MODELS[name]).parameters)
    for key in kw:
        if key not in accepted:
            raise ConfigError(f"model_kw.{key}", kw[key], f"{name} accepts {accepted or 'no arguments'}")
    try:
        with torch.device("meta"):
            MODELS[name](**kw)
    except ConfigError:
        raise
    except Exception as err:
        raise ConfigError("model_kw", kw, f"{name} cannot be built with these arguments ({err})") from err


def ensemblable(name: str, kw: dict | None = None) -> bool:
    """Whether model ``name`` can train as a member of a vmapped ensemble and match its single runs: not where
    it keeps running statistics (batch norm), which the members would have to update apart."""
    with torch.device("meta"):
        model = MODELS[name](**(kw or {}))
    return not any(isinstance(m, nn.modules.batchnorm._NormBase) and m.track_running_stats for m in model.modules())


def build_model(name: str, **kw) -> nn.Module:
    """Instantiate a model by its name in ``MODELS`` with its keyword arguments."""
    check_model(name, kw)
    return MODELS[name](**kw)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


VIT_SHAPE = ("patch_size", "dim", "depth", "heads", "mlp_dim", "norm_first")


def vit_shape(kw: dict) -> dict:
    """The ViT's shape under its keyword arguments ``kw``: the constructor's defaults, then ``kw``."""
    defaults = {k: p.default for k, p in inspect.signature(ViT.__init__).parameters.items() if k in VIT_SHAPE}
    return {**defaults, **{k: v for k, v in kw.items() if k in VIT_SHAPE}}
