"""The three networks of the study; each returns logits for 10 classes from ``[B, 1, 28, 28]``."""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError


class LeNet(nn.Module):
    """LeNet-5 as in the assignment: two 5x5 convs with max-pooling, then 256 -> 120 -> 84 -> 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class DoubleConvLeNet(LeNet):
    """Question 4's LeNet with twice the conv layers: a 5x5 conv (padding 2) after each conv."""

    def __init__(self):
        super().__init__()
        self.conv1_1 = nn.Conv2d(6, 6, 5, padding=2)
        self.conv2_1 = nn.Conv2d(16, 16, 5, padding=2)

    def forward(self, x):
        x = F.relu(self.conv1_1(F.max_pool2d(F.relu(self.conv1(x)), 2)))
        x = F.relu(self.conv2_1(F.max_pool2d(F.relu(self.conv2(x)), 2)))
        x = torch.flatten(x, 1)
        return self.fc3(F.relu(self.fc2(F.relu(self.fc1(x)))))


class ViT(nn.Module):
    """A small Vision Transformer: 7x7 patches, a CLS token, learned positions, ``depth`` layers.

    The assignment's architecture with ``depth=2`` (question 6 asks for a 2-layer encoder).
    """

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
        self.patch_to_embedding = nn.Linear(patch_size * patch_size, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, num_patches + 1, dim))
        layer = nn.TransformerEncoderLayer(
            dim, heads, mlp_dim, dropout, batch_first=True, norm_first=norm_first
        )
        self.transformer = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.mlp_head = nn.Sequential(nn.Linear(dim, mlp_dim), nn.ReLU(), nn.Linear(mlp_dim, 10))

    def forward(self, img):
        b, p = img.shape[0], self.patch_size
        patches = img.unfold(2, p, p).unfold(3, p, p).reshape(b, -1, p * p)
        x = torch.cat([self.cls_token.expand(b, -1, -1), self.patch_to_embedding(patches)], dim=1)
        x = self.transformer(x + self.pos_embedding)
        return self.mlp_head(x[:, 0])


MODELS = {"lenet": LeNet, "double_conv_lenet": DoubleConvLeNet, "vit": ViT}


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


def build_model(name: str, **kw) -> nn.Module:
    """Instantiate a model by name ("lenet", "double_conv_lenet", "vit") with its keyword arguments."""
    check_model(name, kw)
    return MODELS[name](**kw)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
