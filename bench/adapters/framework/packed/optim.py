"""AdamW for a pack: stacked parameters (members on the leading axis), a learning rate and a weight decay
per member, one optimizer state per member (the moments are stacked like the parameters).

It computes for member k, operation by operation and rounding by rounding, what torch.optim.AdamW (the
CPU implementation the shared loop runs, `_single_tensor_adam`, decoupled decay) computes for k's own
network with lr_k and weight_decay_k: param *= 1 - lr_k * wd_k (only parameters the member's param
groups decay); exp_avg.lerp_(grad, 1 - beta1); exp_avg_sq = beta2 * exp_avg_sq + (1 - beta2) grad^2;
denom = sqrt(exp_avg_sq) / sqrt(1 - beta2^t) + eps; param += (-lr_k / (1 - beta1^t)) * exp_avg / denom,
the last line as three roundings in that order, as addcdiv's CPU kernel rounds it
(tests/test_packed_training.py checks equality with torch.optim.AdamW member by member).

exact=False computes the same update with the per-member step size folded into the denominator,
param.addcdiv_(exp_avg, denom / step_size_k) (two passes fewer over every parameter; the rounding
differs in the last bits, as that of torch's own capturable AdamW does). Scratch buffers are kept
between steps (no per-step allocation).

All live members have taken the same number of steps (a member that ends leaves the pack, see
select_members), so the bias corrections are shared. The per-member scalars stay on the parameters'
device: a step never synchronises with the host.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _per_member(values: Sequence[float], device: torch.device) -> torch.Tensor:
    return torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)


class PackedAdamW:
    """params: the pack's parameters (leading K axis); decay[i]: whether params[i] is weight-decayed
    (by the members' param groups); lr, weight_decay: one value per member."""

    def __init__(self, params: Sequence[nn.Parameter], decay: Sequence[bool], lr: Sequence[float],
                 weight_decay: Sequence[float], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 exact: bool = True):
        self.params = list(params)
        if len(decay) != len(self.params):
            raise ValueError(f"decay has {len(decay)} flags for {len(self.params)} parameters")
        k = self.params[0].shape[0]
        if len(lr) != k or len(weight_decay) != k:
            raise ValueError(f"lr and weight_decay need one value per member ({k}), got {len(lr)} and "
                             f"{len(weight_decay)}")
        for name, values in (("lr", lr), ("weight_decay", weight_decay)):
            if any(float(v) < 0 for v in values):
                raise ValueError(f"{name} must be >= 0 for every member, got {list(values)}")
        self.decay = [bool(d) for d in decay]
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        device = self.params[0].device
        self.lr, self.weight_decay = _per_member(lr, device), _per_member(weight_decay, device)
        self.steps, self.exact = 0, bool(exact)
        self._scratch: dict[tuple[int, str], torch.Tensor] = {}
        self.decays = any(float(w) != 0 for w in weight_decay)  # a Python flag: no device read per step
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]

    def set_lr(self, lr: Sequence[float]) -> None:
        """The members' learning rates from now on (a schedule sets them once per epoch)."""
        self.lr = _per_member(lr, self.lr.device)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @staticmethod
    def _shaped(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return values.view(-1, *([1] * (like.ndim - 1)))

    @torch.no_grad()
    def step(self) -> None:
        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        self.steps += 1
        bias1, bias2 = 1 - self.beta1 ** self.steps, 1 - self.beta2 ** self.steps
        neg_step = -(self.lr / bias1)  # float64, per member
        params: list[torch.Tensor] = [self.params[i] for i in live]
        avgs, sqs = [self.exp_avg[i] for i in live], [self.exp_avg_sq[i] for i in live]
        grads = [p.grad for p in params if p.grad is not None]  # all of them (live)
        decayed = [p for i, p in zip(live, params) if self.decay[i]]
        if decayed and self.decays:
            factor = (1 - self.lr * self.weight_decay).float()
            torch._foreach_mul_(decayed, [self._shaped(factor, p) for p in decayed])
        torch._foreach_lerp_(avgs, grads, 1 - self.beta1)
        torch._foreach_mul_(sqs, self.beta2)
        torch._foreach_addcmul_(sqs, grads, grads, 1 - self.beta2)
        denoms = self._sqrt(live, sqs)
        torch._foreach_div_(denoms, bias2 ** 0.5)
        torch._foreach_add_(denoms, self.eps)
        if self.exact:  # param.addcdiv_(avg, denom, value=-step_size), rounded as its CPU kernel rounds
            scale = neg_step.float()
            for i, param, avg, denom in zip(live, params, avgs, denoms):
                update = torch.mul(avg, self._shaped(scale, param), out=self._buffer(i, "update"))
                param.add_(update.div_(denom))
        else:  # the step size folded into the denominator (> 0 before, so lr 0 gives -inf: no move)
            scale = (1 / neg_step).float()
            torch._foreach_mul_(denoms, [self._shaped(scale, p) for p in params])
            torch._foreach_addcdiv_(params, avgs, denoms)

    def _sqrt(self, live: list[int], sqs: list[torch.Tensor]) -> list[torch.Tensor]:
        if sqs[0].device.type != "cpu":  # the caching allocator makes a fresh result cheap: one fused call
            return list(torch._foreach_sqrt(sqs))
        return [torch.sqrt(sq, out=self._buffer(i, "denom")) for i, sq in zip(live, sqs)]

    def _buffer(self, i: int, role: str) -> torch.Tensor:
        """A scratch tensor shaped like params[i], kept between steps: on CPU a fresh one per step costs
        page faults that cost more than the arithmetic."""
        buf = self._scratch.get((i, role))
        if buf is None or buf.shape != self.params[i].shape:
            buf = self._scratch[(i, role)] = torch.empty_like(self.params[i])
        return buf

    def select_members(self, index: list[int], params: Sequence[nn.Parameter]) -> None:
        """Keep the members at positions `index`; `params`: the pack's new parameters (same order),
        after layers.select_members replaced them."""
        at = torch.tensor(index, dtype=torch.long, device=self.lr.device)
        self.params = list(params)
        self.exp_avg = [m[at] for m in self.exp_avg]
        self.exp_avg_sq = [m[at] for m in self.exp_avg_sq]
        self.lr, self.weight_decay = self.lr[at], self.weight_decay[at]
        self.decays = bool((self.weight_decay != 0).any())
        self._scratch.clear()


def clip_member_grads(params: Sequence[nn.Parameter], max_norms: torch.Tensor) -> None:
    """torch.nn.utils.clip_grad_norm_ per member: each member's gradient (its slices of every parameter)
    is scaled by min(1, max_norm_k / (norm_k + 1e-6)). max_norms: (K,), inf where a member does not clip."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    squares = torch.stack([g.float().pow(2).flatten(1).sum(1) for g in grads]).sum(0)
    coef = (max_norms.to(squares) / (squares.sqrt() + 1e-6)).clamp(max=1.0)
    torch._foreach_mul_(grads, [coef.view(-1, *([1] * (g.ndim - 1))).to(g.dtype) for g in grads])
