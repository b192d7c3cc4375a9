"""Models: output shapes, parameter counts, construction errors."""

import pytest
import torch

from mnistkit.errors import ConfigError
from mnistkit.models import MODELS, build_model, count_parameters


@pytest.mark.parametrize("name", sorted(MODELS))
def test_logits_shape(name):
    model = build_model(name)
    assert model(torch.zeros(5, 1, 28, 28)).shape == (5, 10)


def test_parameter_counts():
    lenet = count_parameters(build_model("lenet"))
    assert lenet == (6 * 25 + 6) + (16 * 6 * 25 + 16) + (256 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    extra = (6 * 6 * 25 + 6) + (16 * 16 * 25 + 16)
    assert count_parameters(build_model("double_conv_lenet")) == lenet + extra


def test_vit_has_two_encoder_layers_by_default():
    vit = build_model("vit")
    assert len(vit.transformer.layers) == 2
    assert count_parameters(build_model("vit", depth=3)) > count_parameters(vit)


@pytest.mark.parametrize("name, kw, param", [
    ("resnet", {}, "'model'"),
    ("lenet", {"dim": 4}, "'model_kw.dim'"),
    ("vit", {"patch_size": 5}, "'model_kw.patch_size'"),
    ("vit", {"dim": 100, "heads": 8}, "'model_kw.heads'"),
])
def test_construction_errors_name_the_parameter(name, kw, param):
    with pytest.raises(ConfigError, match=param):
        build_model(name, **kw)
