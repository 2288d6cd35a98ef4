"""Layers of a pack: K member networks of one architecture with every weight stacked on a leading K axis.

Layout. Activations are member-major, (K, batch, features): member k's rows are one contiguous matrix,
so a packed linear layer is one batched matrix product (torch.baddbmm) and a member's slice is exactly
the matrix its single network would see. Every parameter and buffer of a packed layer is per member
(leading K axis); `select_members` relies on that to drop members that have ended.

Exactness. A packed layer computes for member k what the single layer computes, operation by operation:
PackedLinear is baddbmm(bias, x, weight^T) with the weight in nn.Linear's layout, (K, out, in) (the
single layer's addmm(bias, x, weight^T) batched; tabm.LinearEnsemble stores (K, in, out) and adds the
bias separately, which on CPU rounds differently in most shapes we tried, so it is not used);
PackedBatchNorm runs F.batch_norm on the (batch, K * features) view, one channel per member and
feature, as BatchNorm1d does (tabm.BatchNorm1dEnsemble applies its affine scale as a second operation,
which rounds differently); PackedDropout in mode "exact" draws each member's mask as F.dropout does on
CPU (bernoulli_(1 - p) from the member's own generator, at the member's own width, divided by 1 - p).
See PackMode for what "fast" gives up.

Padding. Members may differ in width: a layer is as wide as the pack's widest member and member k's
weights sit in the leading [:in_k, :out_k] block, zeros elsewhere. Padded units stay exactly zero
without masks: their incoming and outgoing weights are zero, so their activations, and the gradients of
those weights, are zero (AdamW moves a parameter with a zero gradient and zero moments by 0 / eps = 0,
and decay keeps zero at zero); a padded BatchNorm channel is constant zero, so (x - mean) is 0 and its
scale and shift get zero gradients. Depth differences are the networks' business (nets.py).
"""

from __future__ import annotations

from typing import Literal, Sequence, get_args

import torch
import torch.nn.functional as F
from torch import nn

# "fast" (the default): one batched product per layer; dropout masks for the whole pack from one draw of
#   16-bit random integers per layer, compared with per-member thresholds (a dropout rate is rounded to
#   a multiple of 2**-16 and the kept units are scaled by the inverse of that rounded rate, so the layer
#   stays unbiased): the same distribution as a single fit's masks, not the same masks, and ~3x cheaper
#   on CPU than one bernoulli_ per member. Results equal a single fit's within float tolerance only.
# "exact": member k computes bit for bit what its single fit computes on CPU (same seed, hence same batch
#   order): its dropout masks come from its own generator (the single fit's global generator state after
#   building its network), drawn as F.dropout draws them; every product runs per member on the unpadded
#   slice (F.linear), as the batched one may round differently: MKL picks its kernel by shape, and a
#   padded reduction, a narrow side (the 1- or 2-wide head, a 4-column input) and even equal 16-wide
#   hidden layers at batch 32 (bench.testing.pack_contract's ResNet) differ in the last bits batched.
#   For tests and for checking a pack against single fits (Adapter.fit_pack(exact=True)).
PackMode = Literal["fast", "exact"]


class _PackedProduct(torch.autograd.Function):
    """baddbmm(bias, x, weight^T) whose backward writes the weight gradient straight in the weight's
    (K, out, in) layout (grad^T @ x, as nn.Linear's backward computes it): autograd's own baddbmm backward
    computes x^T @ grad for the transposed view and then copies it into the parameter's layout, a full
    extra pass over every weight per step."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda")
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad_x = torch.bmm(grad, weight.to(grad.dtype)) if ctx.needs_input_grad[0] else None
        grad_w = torch.bmm(grad.transpose(1, 2), x.to(grad.dtype)) if ctx.needs_input_grad[1] else None
        grad_b = grad.sum(1) if ctx.needs_input_grad[2] else None
        return grad_x, grad_w, grad_b


class PackedLinear(nn.Module):
    """K linear layers: weight (K, out, in) and bias (K, out), nn.Linear's layout per member, on
    member-major input (K, batch, in) or a shared (batch, in) -> (K, batch, out).

    `shapes[k]`: member k's own (in, out) (its single layer's). `per_member`: compute each member on its
    unpadded slice with F.linear, exactly the single layer's call (mode "exact": a batched product is not
    always bit-identical, see PackMode); otherwise one baddbmm for the pack."""

    def __init__(self, in_features: int, out_features: int, shapes: Sequence[tuple[int, int]], per_member: bool):
        super().__init__()
        k = len(shapes)
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.shapes, self.per_member = [(int(i), int(o)) for i, o in shapes], bool(per_member)
        self.weight = nn.Parameter(torch.zeros(k, self.out_features, self.in_features))
        self.bias = nn.Parameter(torch.zeros(k, self.out_features))

    def select_extra(self, index: list[int]) -> None:
        self.shapes = [self.shapes[i] for i in index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.weight.shape[0]
        if x.ndim == 2:  # the same input rows for every member (the first layer): a stride-0 view
            x = x.expand(k, *x.shape)
        if not self.per_member:
            out = _PackedProduct.apply(x, self.weight, self.bias)
            assert isinstance(out, torch.Tensor)
            return out
        return torch.stack([
            F.pad(F.linear(x[m, :, :i], self.weight[m, :o, :i], self.bias[m, :o]), (0, self.out_features - o))
            for m, (i, o) in enumerate(self.shapes)])

    @torch.no_grad()
    def load_member(self, k: int, linear: nn.Linear) -> None:
        """Member k's weights from its single layer; its padding is zeroed."""
        d_out, d_in = linear.weight.shape
        self.weight[k].zero_()
        self.bias[k].zero_()
        self.weight[k, :d_out, :d_in].copy_(linear.weight)
        self.bias[k, :d_out].copy_(linear.bias)

    @torch.no_grad()
    def store_member(self, k: int, linear: nn.Linear) -> None:
        """Member k's weights into its single layer (the padding dropped)."""
        d_out, d_in = linear.weight.shape
        linear.weight.copy_(self.weight[k, :d_out, :d_in])
        linear.bias.copy_(self.bias[k, :d_out])


class PackedBatchNorm(nn.Module):
    """K independent BatchNorm1d layers (own statistics and affine), input (K, batch, features)."""

    running_mean: torch.Tensor
    running_var: torch.Tensor
    num_batches_tracked: torch.Tensor

    def __init__(self, features: int, k: int, *, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.eps, self.momentum = float(eps), float(momentum)
        self.weight = nn.Parameter(torch.zeros(k, features))
        self.bias = nn.Parameter(torch.zeros(k, features))
        self.register_buffer("running_mean", torch.zeros(k, features))
        self.register_buffer("running_var", torch.ones(k, features))
        self.register_buffer("num_batches_tracked", torch.zeros(k, dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, batch, features = x.shape
        flat = x.transpose(0, 1).reshape(batch, k * features)
        # The running statistics are updated in place through these views (contiguous buffers).
        out = F.batch_norm(flat, self.running_mean.view(-1), self.running_var.view(-1), self.weight.view(-1),
                           self.bias.view(-1), self.training, self.momentum, self.eps)
        if self.training:
            self.num_batches_tracked.add_(1)
        return out.view(batch, k, features).transpose(0, 1)

    @torch.no_grad()
    def load_member(self, k: int, bn: nn.BatchNorm1d) -> None:
        if bn.momentum is None or not bn.affine or not bn.track_running_stats:
            raise ValueError("packing supports BatchNorm1d with momentum, affine and running statistics only")
        if (bn.momentum, bn.eps) != (self.momentum, self.eps):
            raise ValueError(f"members' BatchNorm1d settings differ: momentum {bn.momentum} / eps {bn.eps} vs "
                             f"{self.momentum} / {self.eps}")
        n = bn.num_features
        for name, fill in (("weight", 0.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            packed = getattr(self, name)[k]
            packed.fill_(fill)
            packed[:n].copy_(getattr(bn, name))
        assert bn.num_batches_tracked is not None
        self.num_batches_tracked[k] = bn.num_batches_tracked

    @torch.no_grad()
    def store_member(self, k: int, bn: nn.BatchNorm1d) -> None:
        n = bn.num_features
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(bn, name).copy_(getattr(self, name)[k, :n])
        tracked = bn.num_batches_tracked
        assert tracked is not None  # load_member refused BatchNorms without running statistics
        tracked.copy_(self.num_batches_tracked[k])


class PackedDropout(nn.Module):
    """Dropout with a rate per member. rates[k]: member k's rate; widths[k]: its width in this layer
    (mode "exact" draws exactly that many columns); present[k]: False where member k's network has no
    such layer (a depth-padded block: nothing is drawn for it). The per-member settings are Python
    lists (no device synchronisation per step); select_extra slices them with the members."""

    thresholds: torch.Tensor
    scales: torch.Tensor

    def __init__(self, rates: Sequence[float], widths: Sequence[int], present: Sequence[bool], mode: PackMode,
                 generators: list[torch.Generator]):
        super().__init__()
        if mode not in get_args(PackMode):
            raise ValueError(f"pack mode must be one of {', '.join(get_args(PackMode))}, got {mode!r}")
        if any(not 0.0 <= float(p) <= 1.0 for p in rates):
            raise ValueError(f"dropout rates must lie in [0, 1], got {list(rates)}")
        self.mode: PackMode = mode
        self.rates, self.widths = [float(p) for p in rates], [int(w) for w in widths]
        self.present = [bool(p) for p in present]
        # mode "exact": one generator per member; "fast": one for the pack (shared, never sliced)
        self.generators = generators
        # mode "fast": member k keeps a unit when its 16-bit draw is >= thresholds[k]
        kept = torch.round((1.0 - torch.tensor(self.rates, dtype=torch.float64)) * 65536)
        self.register_buffer("thresholds", (32768 - kept).clamp(max=32767).to(torch.int16).view(-1, 1, 1))
        self.register_buffer("scales", torch.where(kept > 0, 65536 / kept.clamp(min=1), 0.0).float().view(-1, 1, 1))

    def select_extra(self, index: list[int]) -> None:
        self.rates = [self.rates[i] for i in index]
        self.widths = [self.widths[i] for i in index]
        self.present = [self.present[i] for i in index]
        if self.mode == "exact":
            self.generators = [self.generators[i] for i in index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or not any(p > 0 and on for p, on in zip(self.rates, self.present)):
            return x
        return x * (self._member_noise(x) if self.mode == "exact" else self._packed_noise(x))

    def _member_noise(self, x: torch.Tensor) -> torch.Tensor:
        noise = torch.ones_like(x)
        for k, (p, width, present) in enumerate(zip(self.rates, self.widths, self.present)):
            if not present or p == 0.0:  # F.dropout returns its input untouched at p = 0 (no draw)
                continue
            noise[k].zero_()
            if p < 1.0:
                part = noise[k, :, :width]
                part.bernoulli_(1.0 - p, generator=self.generators[k])
                part.div_(1.0 - p)
        return noise

    def _packed_noise(self, x: torch.Tensor) -> torch.Tensor:
        n = x.numel()
        words = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device)
        words.random_(-2 ** 63, None, generator=self.generators[0])  # the full 64-bit range: four 16-bit draws
        bits = words.view(torch.int16)[:n].view(x.shape)
        return (bits >= self.thresholds) * self.scales.to(x.dtype)  # bool * float: one pass, no cast copy


@torch.no_grad()
def select_members(module: nn.Module, index: list[int]) -> None:
    """Keep only the members at positions `index` (in that order) in every packed layer of `module`:
    every parameter and buffer has the members on its leading axis. Parameters are replaced (the
    optimizer must be re-pointed, PackedAdamW.select_members)."""
    at = torch.tensor(index, dtype=torch.long)
    for sub in module.modules():
        for name, param in list(sub.named_parameters(recurse=False)):
            setattr(sub, name, nn.Parameter(param.detach()[at.to(param.device)].clone(),
                                            requires_grad=param.requires_grad))
        for name, buf in list(sub.named_buffers(recurse=False)):
            if buf is not None:
                sub.register_buffer(name, buf[at.to(buf.device)].clone())
        select_extra = getattr(sub, "select_extra", None)
        if callable(select_extra):
            select_extra(index)
