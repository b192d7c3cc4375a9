"""RMSprop whose square root is the same on every CPU.

On a CPU, float32 ``torch.sqrt`` runs MKL's vector math (``vmsSqrt``). Under ``MKL_CBWR=COMPATIBLE``
MKL picks a kernel that starts from the processor's approximate reciprocal square root
(``RSQRTPS``), refines it and still misses the correctly rounded root for about 1 input in 6; and
``RSQRTPS`` gives other bits on Intel than on AMD. ``torch.optim.RMSprop`` takes that root every
step, so its runs differed between vendors (the golden ``lenet_rmsprop`` case did, on an Intel
Xeon). Adam, AdamW and SGD use fused kernels with an exact ``sqrtps`` and are not affected.
``RMSprop`` below is torch's update rule (not centered, alpha 0.99, eps 1e-8), with the root from
NumPy, which is correctly rounded on every CPU, and torch's own on a GPU.
"""

from __future__ import annotations

import numpy as np
import torch


def sqrt(t: torch.Tensor) -> torch.Tensor:
    """The correctly rounded square root of ``t``, a new tensor (NumPy's on a CPU)."""
    if t.device.type != "cpu":
        return t.sqrt()
    return torch.from_numpy(np.sqrt(t.numpy()))


class RMSprop(torch.optim.Optimizer):
    """``torch.optim.RMSprop(params, lr, alpha=0.99, eps=1e-8, weight_decay, momentum)``, step for step,
    with a portable square root."""

    def __init__(self, params, lr: float, weight_decay: float = 0.0, momentum: float = 0.0, alpha: float = 0.99,
                 eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, alpha=alpha, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                state = self.state[p]
                if not state:
                    state["step"], state["square_avg"] = 0, torch.zeros_like(p)
                    if group["momentum"] > 0:
                        state["momentum_buffer"] = torch.zeros_like(p)
                state["step"] += 1
                square_avg = state["square_avg"].mul_(group["alpha"]).addcmul_(grad, grad, value=1 - group["alpha"])
                avg = sqrt(square_avg).add_(group["eps"])
                if group["momentum"] > 0:
                    buffer = state["momentum_buffer"].mul_(group["momentum"]).addcdiv_(grad, avg)
                    p.add_(buffer, alpha=-group["lr"])
                else:
                    p.addcdiv_(grad, avg, value=-group["lr"])
        return loss
