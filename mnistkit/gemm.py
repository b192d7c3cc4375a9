"""The ViT's matrix products on a CPU: fast, and the same bits on every vendor's CPU.

Pinned to ``MKL_CBWR=COMPATIBLE`` (``numerics``), MKL multiplies matrices on its SSE path on every
processor: the same on Intel and AMD, but 2.5x (AMD EPYC) to 7x (an AVX-512 Xeon) slower than its
native path, and most of a ViT's work is matrix products. MKL's faster branches apply on Intel
processors only. OpenBLAS's Haswell kernel, forced by ``OPENBLAS_CORETYPE=Haswell``, is AVX2 and
FMA assembly whose blocking is fixed when it is compiled, so one build gives one result on any
x86-64 CPU with AVX2; NumPy's wheel carries one (``OPENBLAS``, pinned by requirements.lock).

``linear(x, weight, bias)`` computes ``F.linear``'s forward and both gradients (dX = dY W,
dW = dY^T X, db = the sum of dY) with NumPy's ``matmul`` on zero-copy views, on one thread;
``attention(qkv, heads, dropout)`` does the same for self-attention's two batched products.
Before the first product, ``check()`` makes sure that OpenBLAS is the pinned build with the
Haswell kernel and that it still computes a fixed product to the same bits (``CANARY``); any other
answer refuses to train with ``KernelError`` and one line that says why. The route is taken for
float32 tensors on an x86-64 CPU, with the pins on (not under ``MNISTKIT_KERNELS=native``) and
outside torch.func transforms (the CPU ensemble's ``vmap``); everything else is ``F.linear`` and
the callers' own attention (``models.SelfAttention``).
"""

from __future__ import annotations

import contextlib
import hashlib
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import numerics
from .errors import KernelError

OPENBLAS = "0.3.31.188.0"  # NumPy 2.4.6's scipy-openblas64
# sha256 of the float32 product of the two matrices of ``_canary_inputs``, as this build computes it
CANARY = "afae2f66d3351f31ed15c8d834ca2ec88b1f4e654873e5832a4352914ae29245"


def _canary_inputs() -> tuple[np.ndarray, np.ndarray]:
    """A fixed 64 x 6272 and 6272 x 64 pair: 6,272 is deep enough to cross OpenBLAS's blocks."""
    rng = np.random.default_rng(20_261_130)
    return (rng.standard_normal((64, 6272), dtype=np.float32), rng.standard_normal((6272, 64), dtype=np.float32))


def canary() -> str:
    """The sha256 of the canary product, as this process computes it on one thread."""
    a, b = _canary_inputs()
    return hashlib.sha256(np.ascontiguousarray(_matmul(a, b)).tobytes()).hexdigest()


def _openblas() -> dict:
    from threadpoolctl import threadpool_info

    found = [i for i in threadpool_info() if i["internal_api"] == "openblas" and "numpy" in i["filepath"]]
    return found[0] if found else {}


@cache
def _single_thread():
    """NumPy's OpenBLAS limited to one thread for the rest of the process (a run computes on one)."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(numerics.RUN_THREADS, user_api="blas")


def _matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``a @ b`` on one thread, written into ``out`` if given, whose rows must be contiguous: NumPy
    multiplies into anything else with a loop of its own, not OpenBLAS."""
    _single_thread()
    return np.matmul(a, b, out=out)


@cache
def check() -> None:
    """Raise ``KernelError`` unless NumPy's OpenBLAS is the pinned build, runs its Haswell kernel and
    gives the canary product its pinned bits. Checked once per process."""
    blas = _openblas()
    if blas.get("version") != OPENBLAS:
        raise KernelError(f"NumPy's OpenBLAS is {blas.get('version', 'missing')}, not the pinned {OPENBLAS}: "
                          "reinstall from requirements.lock (./build.sh does)")
    if blas.get("architecture") != "Haswell":
        raise KernelError(f"NumPy's OpenBLAS runs its {blas.get('architecture')} kernel, not Haswell: import "
                          "mnistkit before NumPy, or set OPENBLAS_CORETYPE=Haswell")
    found = canary()
    if found != CANARY:
        raise KernelError(f"NumPy's OpenBLAS gives the canary product other bits on this CPU ({found[:12]}, "
                          f"pinned {CANARY[:12]}): its matrix products would not reproduce the stored runs")


_plain = [False]


@contextlib.contextmanager
def plain():
    """Torch's own products everywhere meanwhile: for tools that must see them (a FLOP counter)."""
    before, _plain[0] = _plain[0], True
    try:
        yield
    finally:
        _plain[0] = before


def active() -> bool:
    """Whether this process routes CPU products through OpenBLAS: where ``numerics`` pins OpenBLAS's
    kernel (x86-64, not ``MNISTKIT_KERNELS=native``), outside ``plain()``."""
    return "OPENBLAS_CORETYPE" in numerics.wanted() and not _plain[0]


def routed(x: torch.Tensor, weight: torch.Tensor | None = None) -> bool:
    """Whether ``x``'s products (``linear``, ``attention``) go through OpenBLAS: float32 on a CPU,
    ``active``, outside torch.func transforms."""
    return (x.device.type == "cpu" and x.dtype == torch.float32 and (weight is None or weight.dtype == x.dtype)
            and active() and torch._C._functorch.peek_interpreter_stack() is None)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias):
        flat = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(flat, weight)
        ctx.shape, ctx.has_bias = x.shape, bias is not None
        out = torch.from_numpy(_matmul(_np(flat), _np(weight).T))
        if bias is not None:
            out += bias
        return out.view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad):
        flat, weight = ctx.saved_tensors
        g = grad.reshape(-1, weight.shape[0])
        gn = _np(g)
        dx = torch.from_numpy(_matmul(gn, _np(weight))).view(ctx.shape) if ctx.needs_input_grad[0] else None
        dw = torch.from_numpy(_matmul(gn.T, _np(flat))) if ctx.needs_input_grad[1] else None
        db = g.sum(0) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return dx, dw, db


def _heads(t: np.ndarray, parts: int, heads: int) -> tuple[np.ndarray, ...]:
    """``parts`` views ``[B, heads, n, d]`` of ``t`` ``[B, n, parts * heads * d]``: each head a strided
    matrix whose row stride NumPy hands to OpenBLAS, so no head is copied."""
    b, n, width = t.shape
    return tuple(np.reshape(t, (b, n, parts, heads, width // parts // heads), copy=False).transpose(2, 0, 3, 1, 4))


class _Attention(torch.autograd.Function):
    """Self-attention from the fused projection ``qkv`` ``[B, n, 3 dim]`` to ``[B, n, dim]``, heads
    side by side: ``dropout(softmax(q k^T / sqrt(d))) v``, each step torch's operation or the
    product its autograd would take, so values and gradients are those of the composition. The
    products read q, k and v where they lie in ``qkv`` and write the output, dq and dv where
    their consumers want them (dk, taken as k^T's gradient, is copied into place): no gather, no
    stack of the three gradients, no transpose of the output."""

    @staticmethod
    def forward(ctx, qkv, heads, dropout):
        b, n, width = qkv.shape
        q, k, v = _heads(_np(qkv), 3, heads)
        scale = q.shape[-1] ** -0.5
        weights = torch.softmax(torch.from_numpy(_matmul(q, k.swapaxes(-1, -2))) * scale, dim=-1)
        mask = dropout.mask(weights)
        dropped = weights if mask is None else weights * mask
        out = qkv.new_empty(b, n, width // 3)
        _matmul(_np(dropped), v, out=_heads(_np(out), 1, heads)[0])
        ctx.save_for_backward(qkv, weights, dropped, mask)
        ctx.heads, ctx.scale = heads, scale
        return out

    @staticmethod
    def backward(ctx, grad):
        qkv, weights, dropped, mask = ctx.saved_tensors
        q, k, v = _heads(_np(qkv), 3, ctx.heads)
        (g,) = _heads(_np(grad.contiguous()), 1, ctx.heads)
        dqkv = qkv.new_empty(qkv.shape)
        dq, dk, dv = _heads(_np(dqkv), 3, ctx.heads)
        d_dropped = torch.from_numpy(_matmul(g, v.swapaxes(-1, -2)))
        _matmul(_np(dropped).swapaxes(-1, -2), g, out=dv)
        d_weights = d_dropped if mask is None else d_dropped * mask
        d_scores = torch._softmax_backward_data(d_weights, weights, -1, weights.dtype) * ctx.scale
        _matmul(_np(d_scores), k, out=dq)
        dk[...] = _matmul(q.swapaxes(-1, -2), _np(d_scores)).swapaxes(-1, -2)  # k^T's gradient, as autograd takes it
        return dqkv, None, None


def attention(qkv: torch.Tensor, heads: int, dropout) -> torch.Tensor:
    """Multi-head self-attention of the fused projection ``qkv`` (``[B, n, 3 dim]``: q, k, v side by side,
    each ``heads`` heads wide) through the pinned OpenBLAS; ``dropout`` (``models.Dropout``) gives the
    attention weights' mask. Only where ``routed``: the caller computes other tensors itself."""
    check()
    return _Attention.apply(qkv, heads, dropout)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, its products through the pinned OpenBLAS where ``routed``."""
    if not routed(x, weight):
        return F.linear(x, weight, bias)
    check()
    return _Linear.apply(x, weight, bias)


class Linear(nn.Linear):
    """``nn.Linear`` (the same parameters, drawn the same way) computed by ``linear``."""

    def forward(self, x):
        return linear(x, self.weight, self.bias)
