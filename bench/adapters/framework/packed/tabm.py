"""K TabM networks (tabm.TabM, arch "tabm", as bench.adapters.models.tabm builds them) as one packed module.

A TabM already holds k ensemble members (BatchEnsemble: a shared weight W per layer, and per ensemble
member the scalings r, s and a bias); a pack of K TabM trials holds K x k of them: every parameter gets a
leading K axis, activations are (K, batch, k, width). The layers follow tabm 0.0.3 as installed
(tabm.py: LinearBatchEnsemble.forward is x * r -> x @ W^T -> * s -> + bias; LinearEnsemble.forward is
x.transpose(0, 1) @ W -> transpose back -> + bias; the backbone's blocks are LinearBatchEnsemble -> ReLU ->
Dropout), operation by operation in that order.

Per-trial hyperparameters. n_blocks and d_block are padded, as for the rtdl MLP (nets.py): a member's
weights sit in the leading block, zeros elsewhere; padded units stay exactly zero (x * r with r = 0 at a
padded input, zero rows of W, s and bias at a padded output: zero activations and zero gradients for every
padded entry), a shallower member skips the extra blocks (torch.where). Dropout and the optimizer's
settings are per member (layers.PackedDropout, optim.PackedAdamW). The ensemble size k must be equal in a
pack (the adapter fixes it; it is not tuned). Numeric embeddings (TabM's num_embeddings) are not packed:
the adapter uses none.

Mode "exact" computes each member on its own unpadded slices with the single layers' operations
(bit-identical on CPU, tests/test_packed_tabm.py); "fast" batches them (torch.bmm / batched matmul).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from tabm import LinearBatchEnsemble, LinearEnsemble, TabM
from torch import nn

from bench.adapters.framework.nn_modules import NumCatAdapter, none_if_empty
from bench.adapters.framework.packed.layers import PackMode
from bench.adapters.framework.packed.nets import Pairs, _dropout, _present


class PackedBatchEnsembleLinear(nn.Module):
    """K LinearBatchEnsemble layers: weight (K, out, in), r (K, k, in), s (K, k, out), bias (K, k, out);
    input (K, batch, k, in) or a shared (batch, in) -> (K, batch, k, out). shapes[m]: member m's (in, out)."""

    def __init__(self, in_features: int, out_features: int, k: int, shapes: Sequence[tuple[int, int]],
                 per_member: bool):
        super().__init__()
        n = len(shapes)
        self.shapes, self.per_member = [(int(i), int(o)) for i, o in shapes], bool(per_member)
        self.out_features = int(out_features)
        self.weight = nn.Parameter(torch.zeros(n, out_features, in_features))
        self.r = nn.Parameter(torch.zeros(n, k, in_features))
        self.s = nn.Parameter(torch.zeros(n, k, out_features))
        self.bias = nn.Parameter(torch.zeros(n, k, out_features))

    def select_extra(self, index: list[int]) -> None:
        self.shapes = [self.shapes[i] for i in index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, k = self.r.shape[:2]
        if x.ndim == 2:  # the shared input rows (TabM's EnsembleView: the same rows for all k)
            x = x[None, :, None, :]
        if self.per_member:
            return torch.stack([self._member(m, x[m if x.shape[0] > 1 else 0]) for m in range(n)])
        h = x * self.r.unsqueeze(1)  # (K, batch, k, in)
        batch = h.shape[1]
        h = torch.bmm(h.reshape(n, batch * k, -1), self.weight.transpose(1, 2)).view(n, batch, k, -1)
        return h * self.s.unsqueeze(1) + self.bias.unsqueeze(1)

    def _member(self, m: int, x: torch.Tensor) -> torch.Tensor:
        """Member m as LinearBatchEnsemble.forward computes it, on its unpadded slices, padded after."""
        i, o = self.shapes[m]
        x = x[..., :i].expand(x.shape[0], self.r.shape[1], i) * self.r[m, :, :i]
        x = x @ self.weight[m, :o, :i].T
        x = x * self.s[m, :, :o]
        return F.pad(x + self.bias[m, :, :o], (0, self.out_features - o))

    @torch.no_grad()
    def load_member(self, m: int, layer: LinearBatchEnsemble) -> None:
        if layer.bias is None:
            raise ValueError("packing supports LinearBatchEnsemble layers with a bias only")
        o, i = layer.weight.shape
        for name in ("weight", "r", "s", "bias"):
            getattr(self, name)[m].zero_()
        self.weight[m, :o, :i].copy_(layer.weight)
        self.r[m, :, :i].copy_(layer.r)
        self.s[m, :, :o].copy_(layer.s)
        self.bias[m, :, :o].copy_(layer.bias)

    @torch.no_grad()
    def store_member(self, m: int, layer: LinearBatchEnsemble) -> None:
        o, i = layer.weight.shape
        assert layer.bias is not None
        layer.weight.copy_(self.weight[m, :o, :i])
        layer.r.copy_(self.r[m, :, :i])
        layer.s.copy_(self.s[m, :, :o])
        layer.bias.copy_(self.bias[m, :, :o])


class PackedEnsembleHead(nn.Module):
    """K LinearEnsemble heads: weight (K, k, in, out), bias (K, k, out); (K, batch, k, in) -> (K, batch, k, out)."""

    def __init__(self, in_features: int, out_features: int, k: int, widths: Sequence[int], per_member: bool):
        super().__init__()
        self.widths, self.per_member = [int(w) for w in widths], bool(per_member)
        self.weight = nn.Parameter(torch.zeros(len(widths), k, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(len(widths), k, out_features))

    def select_extra(self, index: list[int]) -> None:
        self.widths = [self.widths[i] for i in index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_member:  # LinearEnsemble.forward on member m's unpadded input
            return torch.stack([(x[m, :, :, :w].transpose(0, 1) @ self.weight[m, :, :w]).transpose(0, 1) + self.bias[m]
                                for m, w in enumerate(self.widths)])
        return (x.transpose(1, 2) @ self.weight).transpose(1, 2) + self.bias.unsqueeze(1)

    @torch.no_grad()
    def load_member(self, m: int, head: LinearEnsemble) -> None:
        if head.bias is None:
            raise ValueError("packing supports LinearEnsemble heads with a bias only")
        self.weight[m].zero_()
        self.weight[m, :, :head.in_features].copy_(head.weight)
        self.bias[m].copy_(head.bias)

    @torch.no_grad()
    def store_member(self, m: int, head: LinearEnsemble) -> None:
        assert head.bias is not None
        head.weight.copy_(self.weight[m, :, :head.in_features])
        head.bias.copy_(self.bias[m])


def _tabm(net: nn.Module) -> TabM:
    inner = net.inner if isinstance(net, NumCatAdapter) else net
    if not isinstance(inner, TabM) or inner.output is None or inner.num_module is not None:
        raise TypeError("packing supports TabM networks with an output head and without numeric embeddings")
    return inner


class PackedTabM(nn.Module):
    """K TabM networks (each a NumCatAdapter around tabm.TabM, arch "tabm") of any depths and widths, one k."""

    def __init__(self, members: Sequence[nn.Module], mode: PackMode, generators: list[torch.Generator]):
        super().__init__()
        nets = [_tabm(m) for m in members]
        if len({net.k for net in nets}) != 1:
            raise ValueError(f"members of a TabM pack must share k; got {sorted({net.k for net in nets})}")
        if not all(isinstance(b[0], LinearBatchEnsemble) for net in nets for b in net.backbone.blocks):
            raise TypeError("packing supports TabM's 'tabm' architecture (LinearBatchEnsemble blocks) only")
        k, exact = nets[0].k, mode == "exact"
        self.cat_module = nets[0].cat_module  # no parameters: shared
        self.depths = [len(net.backbone.blocks) for net in nets]
        widths = [net.backbone.blocks[0][0].out_features for net in nets]
        width = max(widths)
        layers = [[net.backbone.blocks[i] if i < len(net.backbone.blocks) else None for net in nets]
                  for i in range(max(self.depths))]
        d_in = nets[0].backbone.blocks[0][0].in_features
        self.linears = nn.ModuleList([
            PackedBatchEnsembleLinear(width if i else d_in, width, k,
                                      [(width if i else d_in, width) if b is None else
                                       (b[0].in_features, b[0].out_features) for b in layer], exact)
            for i, layer in enumerate(layers)])
        self.dropouts = nn.ModuleList([_dropout([None if b is None else b[2] for b in layer], widths, mode,
                                                generators) for layer in layers])
        assert nets[0].output is not None
        self.output = PackedEnsembleHead(width, nets[0].output.out_features, k, widths, exact)
        for i in range(len(self.linears)):
            self.register_buffer(f"present{i}", _present(self.depths, i).view(-1, 1, 1, 1))

    def select_extra(self, index: list[int]) -> None:
        self.depths = [self.depths[i] for i in index]

    def pairs(self, m: int, net: nn.Module) -> Pairs:
        inner = _tabm(net)
        assert inner.output is not None
        return [*((self.linears[i], b[0]) for i, b in enumerate(inner.backbone.blocks)), (self.output, inner.output)]

    def forward(self, x_num: torch.Tensor | None, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        num, cat = none_if_empty(x_num), none_if_empty(x_cat)  # as NumCatAdapter passes them to TabM
        parts = [] if num is None else [num]
        if cat is not None:
            assert self.cat_module is not None
            parts.append(self.cat_module(cat))
        h = torch.column_stack([p.flatten(1, -1) for p in parts])  # (batch, d_in), as TabM.forward
        for i, (linear, dropout) in enumerate(zip(self.linears, self.dropouts)):
            out = F.relu(linear(h))
            out = dropout(out.flatten(1, 2)).view_as(out)  # (K, batch * k, width): a member's draws as its own
            h = out if i == 0 or min(self.depths) > i else torch.where(getattr(self, f"present{i}"), out, h)
        return self.output(h)
