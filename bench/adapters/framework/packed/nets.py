"""Packed versions of the reference architectures: K member networks of one family as one module
(a model's own network can name its packed version: `packer`).

A pack is built from the members' own single networks (rtdl_revisiting_models.MLP / ResNet, each
built by its adapter under its own seed), so member k starts from exactly the weights its single fit
starts from; at the end its weights go back into that single network (store_member), which then
predicts like any single fit's network.

Members may differ in width and depth (padding, not grouping: the Optuna trials of one pack draw
their architecture independently, so equal shapes would almost never meet, and forcing them equal
would change what is searched). Width: see layers.py (padded units stay exactly zero). Depth: a
member with fewer blocks than the pack skips the extra blocks, which come after its own: an MLP block
passes its input through unchanged for that member and a residual block adds nothing (torch.where, so
the skipped block gives that member no gradient and its dropout draws nothing). Padding costs compute:
`padding_cost` says how much, so that a caller can split trials of very different size into packs of
similar size (`group_by_cost`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from rtdl_revisiting_models import MLP, ResNet
from tabm import TabM
from torch import nn

from bench.adapters.framework.nn_modules import NumCatAdapter
from bench.adapters.framework.packed.layers import PackedBatchNorm, PackedDropout, PackedLinear, PackMode

# (packed layer, member k's single layer) pairs that exist for member k
Pairs = list[tuple[nn.Module, nn.Module]]


def _linear(layers: Sequence[nn.Linear | None], mode: PackMode, d_in: int, d_out: int) -> PackedLinear:
    """The packed (d_in -> d_out) layer for member k's layers[k] (None: member k has no such layer, its
    share is computed at the pack's shape and discarded)."""
    shapes = [(d_in, d_out) if m is None else (m.in_features, m.out_features) for m in layers]
    per_member = mode == "exact"  # bit-identical to the single layer's F.linear (layers.PackMode)
    return PackedLinear(d_in, d_out, shapes, per_member)


def _dropout(layers: Sequence[nn.Dropout | None], widths: Sequence[int], mode: PackMode,
             generators: list[torch.Generator]) -> PackedDropout:
    return PackedDropout([0.0 if d is None else float(d.p) for d in layers], widths,
                         [d is not None for d in layers], mode, generators)


def _present(depths: Sequence[int], block: int) -> torch.Tensor:
    return torch.tensor([block < d for d in depths]).view(-1, 1, 1)


class PackedBlocks(nn.Module):
    """K stacks of Linear -> ReLU -> Dropout blocks and a linear head, of any widths and depths: the rtdl MLP,
    and the backbone + head of networks built on tabm.MLPBackbone (bench.adapters.models.mlp_plr).

    blocks[k]: member k's (linear, dropout) per block; heads[k]: its head. `first`: a packed first layer
    the caller built (an input laid out otherwise than one leading block per member, e.g. the padded
    embeddings of MLP-PLR); by default the first layer is a PackedLinear on a shared (batch, d_in) input."""

    def __init__(self, blocks: Sequence[Sequence[tuple[nn.Linear, nn.Dropout]]], heads: Sequence[nn.Linear],
                 mode: PackMode, generators: list[torch.Generator], first: PackedLinear | None = None):
        super().__init__()
        self.depths = [len(b) for b in blocks]
        widths = [b[0][0].out_features for b in blocks]
        if len({h.out_features for h in heads}) != 1:
            raise ValueError("packed networks need the same output head in every member")
        layers = [[b[i] if i < len(b) else None for b in blocks] for i in range(max(self.depths))]
        d_in, width = blocks[0][0][0].in_features, max(widths)
        self.linears = nn.ModuleList([
            first if i == 0 and first is not None else
            _linear([None if b is None else b[0] for b in layer], mode, width if i else d_in, width)
            for i, layer in enumerate(layers)])
        self.dropouts = nn.ModuleList([_dropout([None if b is None else b[1] for b in layer], widths, mode,
                                                generators) for layer in layers])
        self.output = _linear(heads, mode, width, heads[0].out_features)
        for i in range(len(self.linears)):
            self.register_buffer(f"present{i}", _present(self.depths, i))

    def select_extra(self, index: list[int]) -> None:
        self.depths = [self.depths[i] for i in index]

    def block_pairs(self, linears: Sequence[nn.Linear], head: nn.Linear) -> Pairs:
        """(packed, single) layer pairs of one member with these block linears and head."""
        return [*zip(self.linears, linears), (self.output, head)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (linear, dropout) in enumerate(zip(self.linears, self.dropouts)):
            out = dropout(F.relu(linear(h)))
            h = out if i == 0 or min(self.depths) > i else torch.where(getattr(self, f"present{i}"), out, h)
        return self.output(h)


class PackedMLP(PackedBlocks):
    """K rtdl MLPs (Linear -> ReLU -> Dropout blocks, linear head) of any widths and depths."""

    def __init__(self, members: Sequence[MLP], mode: PackMode, generators: list[torch.Generator]):
        if any(m.output is None for m in members):
            raise ValueError("packed MLPs need the same output head in every member")
        super().__init__([[(b.linear, b.dropout) for b in m.blocks] for m in members],
                         [m.output for m in members if m.output is not None], mode, generators)

    def pairs(self, k: int, net: nn.Module) -> Pairs:
        assert isinstance(net, MLP) and net.output is not None
        return self.block_pairs([block.linear for block in net.blocks], net.output)


class PackedResNet(nn.Module):
    """K rtdl ResNets (BatchNorm -> Linear -> ReLU -> Dropout -> Linear -> Dropout residual blocks)."""

    def __init__(self, members: Sequence[ResNet], mode: PackMode, generators: list[torch.Generator]):
        super().__init__()
        k, self.depths = len(members), [len(m.blocks) for m in members]
        widths = [m.input_projection.out_features for m in members]
        hidden = [m.blocks[0].linear1.out_features for m in members]
        if any(m.output is None for m in members) or len({m.output.linear.out_features for m in members}) != 1:
            raise ValueError("packed ResNets need the same output head in every member")
        bn, width, d_hidden = members[0].blocks[0].normalization, max(widths), max(hidden)
        self.input_projection = _linear([m.input_projection for m in members], mode,
                                        members[0].input_projection.in_features, width)
        self.norms = nn.ModuleList()
        self.linear1, self.linear2 = nn.ModuleList(), nn.ModuleList()
        self.dropout1, self.dropout2 = nn.ModuleList(), nn.ModuleList()
        for i in range(max(self.depths)):
            blocks = [m.blocks[i] if i < len(m.blocks) else None for m in members]
            self.norms.append(PackedBatchNorm(width, k, eps=bn.eps, momentum=bn.momentum))
            self.linear1.append(_linear([None if b is None else b.linear1 for b in blocks], mode, width, d_hidden))
            self.linear2.append(_linear([None if b is None else b.linear2 for b in blocks], mode, d_hidden, width))
            self.dropout1.append(_dropout([None if b is None else b.dropout1 for b in blocks], hidden, mode,
                                          generators))
            self.dropout2.append(_dropout([None if b is None else b.dropout2 for b in blocks], widths, mode,
                                          generators))
            self.register_buffer(f"present{i}", _present(self.depths, i))
        self.output_norm = PackedBatchNorm(width, k, eps=bn.eps, momentum=bn.momentum)
        self.output = _linear([m.output.linear for m in members], mode, width, members[0].output.linear.out_features)

    def select_extra(self, index: list[int]) -> None:
        self.depths = [self.depths[i] for i in index]

    def pairs(self, k: int, net: nn.Module) -> Pairs:
        assert isinstance(net, ResNet) and net.output is not None
        out: Pairs = [(self.input_projection, net.input_projection)]
        for i, block in enumerate(net.blocks):
            out += [(self.norms[i], block.normalization), (self.linear1[i], block.linear1),
                    (self.linear2[i], block.linear2)]
        return [*out, (self.output_norm, net.output.normalization), (self.output, net.output.linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.input_projection(x)
        for i in range(len(self.norms)):
            y = self.dropout1[i](F.relu(self.linear1[i](self.norms[i](h))))
            y = self.dropout2[i](self.linear2[i](y))
            h = h + y if min(self.depths) > i else torch.where(getattr(self, f"present{i}"), h + y, h)
        return self.output(F.relu(self.output_norm(h)))


PACKERS: dict[type, Callable[..., nn.Module]] = {MLP: PackedMLP, ResNet: PackedResNet}


def packer(net: nn.Module) -> Callable[..., nn.Module] | None:
    """What packs networks like `net`, called as packer(nets, mode, generators): PACKERS' entry for the rtdl
    architectures, PackedTabM for a tabm.TabM (bench.adapters.framework.packed.tabm; also wrapped in a
    NumCatAdapter, as the TabM adapter builds it), or the network class's own `packer` (a model's own
    network names its packed version there, e.g. bench.adapters.models.mlp_plr.network.MLPPLR: the
    framework imports no model). The packed module has a `pairs(k, net)` method: member k's (packed layer,
    single layer) pairs, each packed layer with load_member / store_member and the single layer's
    parameter names."""
    if isinstance(net.inner if isinstance(net, NumCatAdapter) else net, TabM):
        from bench.adapters.framework.packed.tabm import PackedTabM  # it builds on this module

        return PackedTabM
    return PACKERS.get(type(net)) or getattr(type(net), "packer", None)


def can_pack(net: nn.Module) -> bool:
    return packer(net) is not None


def pack_networks(nets: Sequence[nn.Module], mode: PackMode, generators: list[torch.Generator]) -> nn.Module:
    """One packed module for single networks of one supported family (PACKERS), on their device, with
    member k's weights and buffers copied from nets[k]."""
    kinds = {type(n) for n in nets}
    make = packer(nets[0])
    if len(kinds) != 1 or make is None:
        names = ", ".join(sorted(t.__name__ for t in kinds))
        raise TypeError(f"cannot pack networks of type(s) {names}: all members must be of one type that packs "
                        f"({', '.join(t.__name__ for t in PACKERS)}, TabM or a network class with a `packer`)")
    packed = make(nets, mode, generators).to(next(nets[0].parameters()).device)
    for k, net in enumerate(nets):
        load_member(packed, k, net)
    return packed


def load_member(packed: nn.Module, k: int, net: nn.Module) -> None:
    """Member k of the pack := the single network `net` (its padding zeroed)."""
    for layer, single in packed.pairs(k, net):  # type: ignore[operator]
        layer.load_member(k, single)


def store_member(packed: nn.Module, k: int, net: nn.Module) -> None:
    """The single network `net` := member k of the pack."""
    for layer, single in packed.pairs(k, net):  # type: ignore[operator]
        layer.store_member(k, single)


def decay_flags(packed: nn.Module, nets: Sequence[nn.Module], decayed: Sequence[set[str]]) -> list[bool]:
    """Per packed parameter: whether weight decay applies, from each member's param groups (`decayed[k]`:
    the names of net k's parameters in a group with weight decay > 0). Members must agree."""
    flags: dict[int, bool] = {}
    for k, net in enumerate(nets):
        names = {id(p): n for n, p in net.named_parameters()}
        for layer, single in packed.pairs(k, net):  # type: ignore[operator]
            for attr, param in single.named_parameters(recurse=False):
                key, value = id(getattr(layer, attr)), names[id(param)] in decayed[k]
                if flags.setdefault(key, value) != value:
                    raise ValueError(f"members decay {names[id(param)]} differently; they cannot share a pack")
    return [flags.get(id(p), False) for p in packed.parameters()]


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def padded_parameters(nets: Sequence[nn.Module]) -> int:
    """Parameters of the padded pack of `nets` (shapes only: nothing allocated, no random numbers drawn)."""
    with torch.device("meta"):
        make = packer(nets[0])
        assert make is not None, f"{type(nets[0]).__name__} does not pack"
        return parameter_count(make(nets, "fast", [torch.Generator()]))


def padding_cost(nets: Sequence[nn.Module]) -> float:
    """Parameters of the padded pack over the members' own parameters (1.0: no padding). A network's
    compute per row is about proportional to its parameter count for these architectures."""
    if not nets:
        return 1.0
    return padded_parameters(nets) / max(1, sum(parameter_count(n) for n in nets))


def group_by_cost(nets: Sequence[nn.Module], max_cost: float, free_parameters: float = 0.0) -> list[list[int]]:
    """Positions of `nets` split into packs (largest first): a network joins the current pack while the
    padded pack's padding_cost stays <= max_cost, or while its padding (padded parameters less the members'
    own) stays <= free_parameters per member beyond the first: what a step's fixed cost, saved once per
    member a pack takes in, buys in computation (bench.adapters.framework.packed.fitting)."""
    if max_cost < 1.0:
        raise ValueError(f"max_cost must be >= 1.0 (1.0: equal shapes only), got {max_cost}")
    order = sorted(range(len(nets)), key=lambda i: -parameter_count(nets[i]))
    groups: list[list[int]] = []
    for i in order:
        candidate = [nets[j] for j in (*groups[-1], i)] if groups else []
        if candidate:
            try:
                padded = padded_parameters(candidate)
            except (TypeError, ValueError):  # networks that cannot share a pack (TabMs of another k)
                groups.append([i])
                continue
            own = sum(parameter_count(n) for n in candidate)
            if padded <= max_cost * own or padded - own <= free_parameters * (len(candidate) - 1):
                groups[-1].append(i)
                continue
        groups.append([i])
    return groups
