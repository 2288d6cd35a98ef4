"""K MLP-PLR networks (bench.adapters.models.mlp_plr.network.MLPPLR) as one packed module (issue 23).

The layers follow rtdl_num_embeddings 0.0.12 (PeriodicEmbeddings with lite=False: _Periodic, then
_NLinear, then ReLU) and tabm 0.0.3 (MLPBackbone: Linear -> ReLU -> Dropout blocks), as installed; the
backbone and head are bench.adapters.framework.packed.nets.PackedBlocks, the packed rtdl MLP's.

Per-member hyperparameters. n_frequencies, d_embedding, n_blocks and d_block are padded, not grouped: the
trials of a pack draw them independently (the MLP-PLR space has 81 x 49 embedding shapes alone), so equal
shapes would almost never meet, and the packer's grouping by padding cost (fitting.packs) already keeps
networks of very different size apart. frequency_init_scale (sigma) only sets the initial frequencies,
which come from each member's own single network: nothing to pad. Layout of member k (F_k frequencies,
d_k embedding width) in a pack of F and d:
  * frequencies (K, n, F): member k's in [:, :F_k], zeros after;
  * the periodic features are [cos(2 pi c x) for the F frequencies, sin(... ) for the F]: a padded
    frequency 0 gives cos = 1, not 0, so a mask (K, 1, 1, 2F) zeroes member k's padded features (their
    weights and frequencies then get zero gradients and stay zero);
  * the per-feature linear (K, n, 2F, d): member k's rows are its cos rows at [:F_k] and sin rows at
    [F:F + F_k], its columns [:d_k]; padded outputs are 0 (zero weights and bias), ReLU(0) = 0;
  * the flattened embeddings (K, batch, n * d) hold feature j of member k at [j * d : j * d + d_k]: the
    backbone's first layer (ColumnMappedLinear) keeps member k's input columns at those positions, so the
    padding costs no copy per step (one-hot categoricals follow at n * d, as in the single network).
Mode "exact" computes each member's embeddings and first layer on its own unpadded slices with exactly
the single network's operations (bit-identical on CPU, tests/test_packed_plr.py); "fast" batches them.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from bench.adapters.framework.packed.layers import PackedLinear, PackMode
from bench.adapters.framework.packed.nets import PackedBlocks, Pairs
from bench.adapters.models.mlp_plr.network import MLPPLR


class PackedFrequencies(nn.Module):
    """The frequencies of K rtdl_num_embeddings._Periodic layers: weight (K, n, F), member k's in [:, :F_k]."""

    def __init__(self, n_features: int, frequencies: Sequence[int]):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(len(frequencies), n_features, max(frequencies)))

    @torch.no_grad()
    def load_member(self, k: int, periodic: Any) -> None:
        self.weight[k].zero_()
        self.weight[k, :, :periodic.weight.shape[1]].copy_(periodic.weight)

    @torch.no_grad()
    def store_member(self, k: int, periodic: Any) -> None:
        periodic.weight.copy_(self.weight[k, :, :periodic.weight.shape[1]])


class PackedFeatureLinear(nn.Module):
    """K rtdl_num_embeddings._NLinear layers (one linear map per feature): weight (K, n, 2F, d), bias (K, n, d),
    member k's rows at [:F_k] (cos) and [F:F + F_k] (sin), its columns at [:d_k] (module docstring)."""

    def __init__(self, n_features: int, frequencies: Sequence[int], widths: Sequence[int]):
        super().__init__()
        self.frequencies = max(frequencies)
        k, d = len(widths), max(widths)
        self.weight = nn.Parameter(torch.zeros(k, n_features, 2 * self.frequencies, d))
        self.bias = nn.Parameter(torch.zeros(k, n_features, d))

    def member_weight(self, k: int, n_frequencies: int, width: int) -> torch.Tensor:
        """Member k's (n, 2 F_k, d_k) weight in its single layer's layout (a contiguous copy: autograd
        scatters its gradient back)."""
        return torch.cat([self.weight[k, :, :n_frequencies, :width],
                          self.weight[k, :, self.frequencies:self.frequencies + n_frequencies, :width]], dim=1)

    @torch.no_grad()
    def load_member(self, k: int, linear: Any) -> None:
        n_freq, width = linear.weight.shape[1] // 2, linear.weight.shape[2]
        self.weight[k].zero_()
        self.bias[k].zero_()
        self.weight[k, :, :n_freq, :width].copy_(linear.weight[:, :n_freq])
        self.weight[k, :, self.frequencies:self.frequencies + n_freq, :width].copy_(linear.weight[:, n_freq:])
        self.bias[k, :, :width].copy_(linear.bias)

    @torch.no_grad()
    def store_member(self, k: int, linear: Any) -> None:
        n_freq, width = linear.weight.shape[1] // 2, linear.weight.shape[2]
        linear.weight.copy_(self.member_weight(k, n_freq, width))
        linear.bias.copy_(self.bias[k, :, :width])


class PackedPeriodicEmbeddings(nn.Module):
    """K PeriodicEmbeddings(lite=False): (batch, n) numerics -> (K, batch, n, d) embeddings, member k's in
    [..., :d_k], zeros after. shapes[k] = (F_k, d_k)."""

    mask: torch.Tensor

    def __init__(self, n_features: int, shapes: Sequence[tuple[int, int]], per_member: bool):
        super().__init__()
        self.shapes, self.per_member = [(int(f), int(d)) for f, d in shapes], bool(per_member)
        frequencies, widths = [f for f, _ in self.shapes], [d for _, d in self.shapes]
        self.periodic = PackedFrequencies(n_features, frequencies)
        self.linear = PackedFeatureLinear(n_features, frequencies, widths)
        top = max(frequencies)
        rows = [[1.0 if i % top < f else 0.0 for i in range(2 * top)] for f in frequencies]
        self.register_buffer("mask", torch.tensor(rows).view(len(rows), 1, 1, 2 * top))
        self.padded = any(f < top for f in frequencies)  # a Python flag: no mask product when none is padded

    def select_extra(self, index: list[int]) -> None:
        self.shapes = [self.shapes[i] for i in index]
        self.padded = any(f < self.linear.frequencies for f, _ in self.shapes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_member:
            return torch.stack([self._member(m, x) for m in range(len(self.shapes))])
        z = (2 * math.pi * self.periodic.weight).unsqueeze(1) * x[None, :, :, None]  # (K, batch, n, F)
        features = torch.cat([torch.cos(z), torch.sin(z)], -1)
        if self.padded:
            features = features * self.mask
        out = torch.matmul(features.transpose(1, 2), self.linear.weight).transpose(1, 2)  # (K, batch, n, d)
        return F.relu(out + self.linear.bias.unsqueeze(1))

    def _member(self, m: int, x: torch.Tensor) -> torch.Tensor:
        """Member m's embeddings, operation by operation as PeriodicEmbeddings computes them, padded to d."""
        n_freq, width = self.shapes[m]
        z = 2 * math.pi * self.periodic.weight[m, :, :n_freq] * x[..., None]
        features = torch.cat([torch.cos(z), torch.sin(z)], -1)
        out = features.transpose(0, 1) @ self.linear.member_weight(m, n_freq, width)
        out = out.transpose(0, 1) + self.linear.bias[m, :, :width]
        return F.pad(F.relu(out), (0, self.linear.weight.shape[-1] - width))


class ColumnMappedLinear(PackedLinear):
    """A PackedLinear whose member k reads its input columns at positions columns[k] of the packed input
    (its own layer's column i at columns[k][i]); the other columns' weights are zero. Mode "exact" gathers
    member k's columns and computes F.linear on them, the single layer's call."""

    def __init__(self, in_features: int, out_features: int, shapes: Sequence[tuple[int, int]],
                 columns: Sequence[Sequence[int]], per_member: bool):
        super().__init__(in_features, out_features, shapes, per_member)
        self.columns = [list(c) for c in columns]

    def select_extra(self, index: list[int]) -> None:
        super().select_extra(index)
        self.columns = [self.columns[i] for i in index]

    def _at(self, k: int) -> torch.Tensor:
        return torch.tensor(self.columns[k], dtype=torch.long, device=self.weight.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.per_member:
            return super().forward(x)
        outs = []
        for m, (_, o) in enumerate(self.shapes):
            at = self._at(m)
            outs.append(F.pad(F.linear(x[m][:, at], self.weight[m, :o][:, at], self.bias[m, :o]),
                              (0, self.out_features - o)))
        return torch.stack(outs)

    @torch.no_grad()
    def load_member(self, k: int, linear: nn.Linear) -> None:
        d_out = linear.weight.shape[0]
        self.weight[k].zero_()
        self.bias[k].zero_()
        self.weight[k][:d_out, self._at(k)] = linear.weight  # weight[k] first: (out, in) indexing
        self.bias[k, :d_out].copy_(linear.bias)

    @torch.no_grad()
    def store_member(self, k: int, linear: nn.Linear) -> None:
        d_out = linear.weight.shape[0]
        linear.weight.copy_(self.weight[k][:d_out, self._at(k)])
        linear.bias.copy_(self.bias[k, :d_out])


class PackedMLPPLR(nn.Module):
    """K MLPPLR networks of any n_frequencies, d_embedding, depths and widths (module docstring)."""

    def __init__(self, members: Sequence[MLPPLR], mode: PackMode, generators: list[torch.Generator]):
        super().__init__()
        first = members[0]
        self.one_hot = first.one_hot  # no parameters: shared
        blocks = [[(b[0], b[2]) for b in m.backbone.blocks] for m in members]
        self.embeddings: PackedPeriodicEmbeddings | None = None
        first_layer = None
        if first.num_embeddings is not None:
            n = first.num_embeddings.periodic.weight.shape[0]
            shapes = [(m.num_embeddings.periodic.weight.shape[1], m.num_embeddings.linear.weight.shape[2])
                      for m in members if m.num_embeddings is not None]
            self.embeddings = PackedPeriodicEmbeddings(n, shapes, mode == "exact")
            d = max(w for _, w in shapes)
            one_hot = self.one_hot.width if self.one_hot is not None else 0
            columns = [[j * d + e for j in range(n) for e in range(w)] + [n * d + c for c in range(one_hot)]
                       for _, w in shapes]
            widths = [b[0][0].out_features for b in blocks]
            first_layer = ColumnMappedLinear(n * d + one_hot, max(widths),
                                             [(len(c), o) for c, o in zip(columns, widths)], columns,
                                             mode == "exact")
        self.backbone = PackedBlocks(blocks, [m.head for m in members], mode, generators, first=first_layer)

    def pairs(self, k: int, net: nn.Module) -> Pairs:
        assert isinstance(net, MLPPLR)
        out: Pairs = []
        if self.embeddings is not None and net.num_embeddings is not None:
            out += [(self.embeddings.periodic, net.num_embeddings.periodic),
                    (self.embeddings.linear, net.num_embeddings.linear)]
        return [*out, *self.backbone.block_pairs([b[0] for b in net.backbone.blocks], net.head)]

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        parts = []
        if self.embeddings is not None:
            parts.append(self.embeddings(x_num).flatten(2))  # (K, batch, n * d)
        if self.one_hot is not None:
            one_hot = self.one_hot(x_cat)
            parts.append(one_hot if not parts else one_hot.expand(parts[0].shape[0], *one_hot.shape))
        return self.backbone(torch.cat(parts, dim=-1) if len(parts) > 1 else parts[0])
