"""The ViT's products through the pinned OpenBLAS: F.linear's and attention's values and gradients, one
thread, refused where the kernel is not the pinned one."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mnistkit import gemm
from mnistkit.__main__ import main
from mnistkit.errors import KernelError


@pytest.fixture
def fresh_check():
    gemm.check.cache_clear()
    yield
    gemm.check.cache_clear()


def _inputs(bias=True):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 17, 64, generator=g, requires_grad=True)
    w = torch.randn(96, 64, generator=g, requires_grad=True)
    b = torch.randn(96, generator=g, requires_grad=True) if bias else None
    return x, w, b


@pytest.mark.parametrize("bias", [True, False])
def test_linear_gives_f_linears_values_and_gradients(bias):
    x, w, b = _inputs(bias)
    assert gemm.routed(x)
    out = gemm.linear(x, w, b)
    grad = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    out.backward(grad)
    ours = [x.grad, w.grad] + ([b.grad] if bias else [])
    x2, w2, b2 = (t.detach().clone().requires_grad_() if t is not None else None for t in (x, w, b))
    ref = F.linear(x2, w2, b2)
    ref.backward(grad)
    theirs = [x2.grad, w2.grad] + ([b2.grad] if bias else [])
    assert torch.allclose(out, ref, atol=1e-4)
    assert all(torch.allclose(a, c, atol=1e-3) for a, c in zip(ours, theirs))
    # and bit for bit what NumPy's OpenBLAS computes, one thread
    flat = x.detach().reshape(-1, 64).numpy()
    product = gemm._matmul(flat, w.detach().numpy().T) + (b.detach().numpy() if bias else 0)
    assert np.array_equal(out.detach().reshape(-1, 96).numpy(), product)
    assert np.array_equal(w.grad.numpy(), gemm._matmul(grad.reshape(-1, 96).numpy().T, flat))


def test_the_route_is_only_for_pinned_float32_cpu_tensors_outside_vmap(monkeypatch):
    x, w, b = _inputs()
    assert not gemm.routed(x.double())
    seen = []
    torch.func.vmap(lambda t: seen.append(gemm.routed(t)) or t)(x.detach())
    assert seen == [False]
    with gemm.plain():
        assert not gemm.routed(x)
    assert gemm.routed(x)
    monkeypatch.setenv("MNISTKIT_KERNELS", "native")
    assert not gemm.routed(x)


def test_the_canary_is_this_builds_and_checked(fresh_check):
    assert gemm.canary() == gemm.CANARY
    gemm.check()  # the pinned build, its Haswell kernel, the pinned bits


@pytest.mark.parametrize("change, words", [
    ({"CANARY": "0" * 64}, "other bits on this CPU"),
    ({"OPENBLAS": "0.3.33.0.0"}, "not the pinned 0.3.33.0.0"),
])
def test_another_kernel_refuses_to_train_with_one_line(fresh_check, monkeypatch, tmp_path, capsys, change, words):
    for name, value in change.items():
        monkeypatch.setattr(gemm, name, value)
    with pytest.raises(KernelError, match=words):
        gemm.linear(*_inputs())
    args = ["train", "--model", "vit", "--subset", "100", "--epochs", "1", "--device", "cpu", "--quiet",
            "--store", str(tmp_path / "runs")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_a_kernel_other_than_haswell_is_refused(fresh_check, monkeypatch):
    monkeypatch.setattr(gemm, "_openblas", lambda: {"version": gemm.OPENBLAS, "architecture": "SkylakeX"})
    with pytest.raises(KernelError, match="SkylakeX kernel, not Haswell"):
        gemm.check()


def _attention_by_steps(qkv, heads, dropout, product):
    """Self-attention as the composition that ``gemm.attention`` fuses, each product by ``product``."""
    b, n, width = qkv.shape
    q, k, v = qkv.view(b, n, 3, heads, width // 3 // heads).permute(2, 0, 3, 1, 4)
    weights = torch.softmax(product(q, k.transpose(-2, -1)) * q.shape[-1] ** -0.5, dim=-1)
    mask = dropout.mask(weights)
    out = product(weights if mask is None else weights * mask, v)
    return out.transpose(1, 2).reshape(b, n, width // 3)


def _numpy_product(a, b):
    """A product through the same NumPy call as the route's, with torch's autograd around it."""
    class Product(torch.autograd.Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return torch.from_numpy(gemm._matmul(a.detach().numpy(), b.detach().numpy()))

        @staticmethod
        def backward(ctx, g):
            a, b = ctx.saved_tensors
            g = g.numpy()
            return (torch.from_numpy(gemm._matmul(g, b.numpy().swapaxes(-1, -2))),
                    torch.from_numpy(gemm._matmul(a.numpy().swapaxes(-1, -2), g)))

    return Product.apply(a, b)


@pytest.mark.parametrize("p", [0.0, 0.3])
def test_attention_gives_the_compositions_values_and_gradients(p):
    from mnistkit.models import Dropout

    dropout = Dropout(p)
    qkv = torch.randn(4, 17, 3 * 64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    grad = torch.randn(4, 17, 64, generator=torch.Generator().manual_seed(1))
    results = []
    for attend in (lambda t: gemm.attention(t, 8, dropout),
                   lambda t: _attention_by_steps(t, 8, dropout, _numpy_product),
                   lambda t: _attention_by_steps(t, 8, dropout, torch.matmul)):
        x = qkv.detach().clone().requires_grad_()
        torch.manual_seed(2)  # the same dropout mask for each
        out = attend(x)
        out.backward(grad)
        results.append((out.detach(), x.grad))
    (fused, fused_grad), (steps, steps_grad), (torch_out, torch_grad) = results
    assert torch.equal(fused, steps) and torch.equal(fused_grad, steps_grad)  # the same operations, bit for bit
    assert torch.allclose(fused, torch_out, atol=1e-5) and torch.allclose(fused_grad, torch_grad, atol=1e-4)
    if p:
        assert (fused_grad != torch.zeros_like(fused_grad)).any()


def test_the_attention_route_is_checked_like_the_linear_one(fresh_check, monkeypatch):
    from mnistkit.models import Dropout

    monkeypatch.setattr(gemm, "CANARY", "0" * 64)
    with pytest.raises(KernelError, match="other bits on this CPU"):
        gemm.attention(torch.randn(2, 5, 24), 2, Dropout(0.1))


def test_attention_takes_any_gradient_layout_and_drops_nothing_in_eval():
    from mnistkit.models import Dropout

    dropout = Dropout(0.5).eval()
    qkv = torch.randn(2, 5, 48, generator=torch.Generator().manual_seed(0), requires_grad=True)
    out = gemm.attention(qkv, 4, dropout)
    reference = _attention_by_steps(qkv.detach(), 4, dropout, _numpy_product)
    assert torch.equal(out, reference)  # eval: no mask, nothing dropped
    out.sum().backward()  # an expanded gradient (stride 0)
    expanded = qkv.grad.clone()
    qkv.grad = None
    gemm.attention(qkv, 4, dropout).backward(torch.ones(2, 5, 16))
    assert torch.equal(qkv.grad, expanded)
