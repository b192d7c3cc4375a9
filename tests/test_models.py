"""Models: output shapes, parameter counts, construction errors, the ViT against PyTorch's encoder."""

import pytest
import torch
import torch.nn.functional as F

from mnistkit.pipelines import AssignmentViT
from mnistkit.errors import ConfigError
from mnistkit.models import MODELS, Dropout, build_model, count_parameters


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


# --- the ViT's encoder is PyTorch's, written out for a faster CPU dropout -------------------------

@pytest.mark.parametrize("norm_first", [False, True])
def test_vit_matches_the_assignment_vit_built_on_pytorch_modules(norm_first):
    torch.manual_seed(0)
    ours = build_model("vit", norm_first=norm_first)
    torch.manual_seed(0)
    reference = AssignmentViT()
    for layer in reference.transformer.layers:
        layer.norm_first = norm_first
    # the same parameter names and the same initial values from the same seed
    mine, theirs = ours.state_dict(), reference.state_dict()
    assert list(mine) == list(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    x = torch.randn(8, 1, 28, 28)
    ours.eval(), reference.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-5)
    # training mathematics: dropout off in the reference; in ours a p so small that every element
    # is kept with scale 1, so that the explicit attention of the dropout path is what is compared
    ours.train(), reference.train()
    for module in reference.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        if isinstance(module, torch.nn.MultiheadAttention):
            module.dropout = 0.0
    for module in ours.modules():
        if isinstance(module, Dropout):
            module.p = 1e-12  # below 2**-33: the integer threshold is 0
    out_ours, out_ref = ours(x), reference(x)
    torch.testing.assert_close(out_ours, out_ref, rtol=0, atol=1e-5)
    out_ours.square().sum().backward()
    out_ref.square().sum().backward()
    for (name, a), b in zip(ours.named_parameters(), reference.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-5, msg=name)


def test_dropout_drops_with_probability_p_and_scales_the_rest():
    p, n = 0.1, 1_000_000
    x = torch.ones(n, requires_grad=True)
    torch.manual_seed(0)
    out = Dropout(p)(x)
    kept = out != 0
    # binomial: the kept fraction within 5 standard deviations of 1 - p
    assert abs(kept.float().mean().item() - (1 - p)) < 5 * (p * (1 - p) / n) ** 0.5
    assert torch.equal(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    out.sum().backward()
    assert torch.equal(x.grad, out.detach())  # the gradient is the same mask, scaled alike


def test_dropout_is_fixed_by_the_torch_seed_and_off_in_eval():
    x = torch.randn(64, 17, 128)
    layer = Dropout(0.3)
    torch.manual_seed(5)
    a, b = layer(x), layer(x)
    torch.manual_seed(5)
    assert torch.equal(layer(x), a) and torch.equal(layer(x), b)
    assert not torch.equal(a, b)  # each call draws a new mask
    layer.eval()
    assert layer(x) is x
    assert Dropout(0.0)(x) is x


def test_lenet_pools_before_relu_with_the_textbook_order_s_values_and_gradients():
    torch.manual_seed(0)
    model = build_model("lenet")
    x = torch.randn(16, 1, 28, 28)
    x[:, :, :12] = -0.4242  # flat background: windows of equal values, where tie-breaking shows

    def textbook(m, x):
        x = F.max_pool2d(F.relu(m.conv1(x)), 2)
        x = F.max_pool2d(F.relu(m.conv2(x)), 2)
        return m.fc3(F.relu(m.fc2(F.relu(m.fc1(torch.flatten(x, 1))))))

    grads = []
    for forward in (model, lambda x: textbook(model, x)):
        model.zero_grad()
        out = forward(x)
        out.square().sum().backward()
        grads.append((out.detach(), [p.grad.clone() for p in model.parameters()]))
    assert torch.equal(grads[0][0], grads[1][0])
    assert all(torch.equal(a, b) for a, b in zip(grads[0][1], grads[1][1]))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_states_its_name_and_work_in_its_own_class(name):
    """Whatever lists models (the report's names, the executor's order and ETA, the bench's and the command
    line's choices, the architecture tables) reads MODELS: a new model states each fact, never inheriting one."""
    from mnistkit.models import DECLARED

    missing = [fact for fact in DECLARED if fact not in vars(MODELS[name])]
    assert not missing, f"{MODELS[name].__name__} must state {missing}"
    assert isinstance(MODELS[name].title, str) and MODELS[name].work > 0
