"""Architecture tables: torchinfo's layers, shapes and parameter counts for the three networks."""

import pytest
import torch

from mnistkit.architecture import table
from mnistkit.errors import ConfigError
from mnistkit.models import build_model


def trainable(name, **kw) -> int:
    return sum(p.numel() for p in build_model(name, **kw).parameters() if p.requires_grad)


def number(text: str) -> int:
    return 0 if text == "—" else int(text.replace(",", ""))


@pytest.mark.parametrize("name, kw", [("lenet", {}), ("double_conv_lenet", {}), ("vit", {}),
                                      ("vit", {"depth": 3, "dim": 64, "mlp_dim": 96})])
def test_the_total_row_counts_every_trainable_parameter_and_the_rows_add_up_to_it(name, kw):
    frame = table(name, kw)
    assert list(frame.columns) == ["layer", "output shape", "parameters"]
    assert frame["layer"].iloc[-1] == "total"
    assert number(frame["parameters"].iloc[-1]) == trainable(name, **kw)
    assert sum(map(number, frame["parameters"].iloc[:-1])) == trainable(name, **kw)


def test_lenet_has_one_row_per_layer_with_its_shapes():
    frame = table("lenet").set_index("layer")
    assert list(frame.index) == ["conv1 (Conv2d)", "pool1 (MaxPool2d)", "conv2 (Conv2d)", "pool2 (MaxPool2d)",
                                 "fc1 (Linear)", "fc2 (Linear)", "fc3 (Linear)", "total"]
    # 5x5 convs without padding, each followed by its 2x2 pooling: the shapes do not jump
    assert list(frame["output shape"].iloc[:-1]) == ["6 × 24 × 24", "6 × 12 × 12", "16 × 8 × 8", "16 × 4 × 4",
                                                     "120", "84", "10"]
    assert frame.loc["conv1 (Conv2d)", "parameters"] == f"{6 * 25 + 6:,}"
    assert frame.loc["fc1 (Linear)", "parameters"] == f"{16 * 4 * 4 * 120 + 120:,}"


def test_the_double_conv_lenet_has_twice_the_conv_rows_and_keeps_their_size():
    def convs(name):
        frame = table(name)
        return frame[frame["layer"].str.endswith("(Conv2d)")]

    lenet, double = convs("lenet"), convs("double_conv_lenet")
    assert len(double) == 2 * len(lenet) == 4
    assert list(double["output shape"]) == ["6 × 24 × 24", "6 × 12 × 12", "16 × 8 × 8", "16 × 4 × 4"]
    rows = list(table("double_conv_lenet")["layer"])  # each added conv right after its pooling
    assert rows[rows.index("pool1 (MaxPool2d)") + 1] == "conv1_1 (Conv2d)"
    assert rows[rows.index("pool2 (MaxPool2d)") + 1] == "conv2_1 (Conv2d)"


@pytest.mark.parametrize("depth", [2, 3])
def test_the_vit_has_one_row_per_encoder_layer(depth):
    frame = table("vit", {"depth": depth})
    blocks = frame[frame["layer"].str.endswith("(EncoderLayer)")]
    assert list(blocks["layer"]) == [f"transformer.layers.{i} (EncoderLayer)" for i in range(depth)]
    assert set(blocks["output shape"]) == {"17 × 128"}  # 16 patches of 7x7 and the CLS token
    assert not frame["layer"].str.contains("linear1|self_attn|Dropout").any()
    own = frame[frame["layer"].str.contains("cls_token")]
    assert len(own) == 1 and number(own["parameters"].iloc[0]) == 17 * 128 + 128


def test_the_global_random_state_is_left_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    table("vit")
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("name, kw, param", [("resnet", None, "'model'"), ("vit", {"depth": 0}, "'model_kw.depth'")])
def test_a_bad_model_raises_config_error_naming_the_parameter(name, kw, param):
    with pytest.raises(ConfigError, match=param):
        table(name, kw)
