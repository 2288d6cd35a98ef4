"""Fitting adapters as packs: what NeuralAdapter.fit_pack runs (bench.adapters.framework.contract.Adapter.fit_pack).

The tuner hands over K adapters (one per trial, each with its own params and FitContext). They are split
into packs that can train together, and each pack is trained with train_packed:
  * members must share the batch size (one batch order for the pack), the device and thread count;
  * members of very different size are not padded into one pack: on CPU a pack costs about what its
    widest, deepest member costs times K, so trials are grouped (largest first) while the padded pack
    costs at most MAX_PADDING[device type] times its members' own parameters, or pads at most what the
    per-step fixed cost a member saves by joining buys (FREE_PARAMETER_ROWS, nets.group_by_cost): small
    networks of different shapes share a pack, a large one trains with those of similar size only.
    On a GPU a step is launch-bound, so padding is nearly free and the ratio limit is higher;
  * a family whose packs are slower than its members alone on a device type trains in packs of one there
    (SLOWER_PACKED: TabM on CPU).
The packs of one call advance in lockstep, one epoch of each in turn (train_packs); their order does not
change any member's result (each member's initial weights and batch order come from its own seed,
training.PackedRun), and a deadline they share cuts them all at the same moment.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from bench.adapters.framework.context import TaskInfo
from bench.adapters.framework.neural_base import TrainConfig, auto_batch_size
from bench.adapters.framework.packed.layers import PackMode
from bench.adapters.framework.packed.nets import can_pack, group_by_cost, packer
from bench.adapters.framework.packed.tabm import PackedTabM
from bench.adapters.framework.packed.training import MemberResult, PackedRun, PackMember, start_pack
from bench.adapters.framework.torch_training import Arrays, output_dim

# The largest padded-pack cost (parameters of the padded pack over its members' own) per device type.
# CPU: measured with scripts/perf_pack.py (`make perf-pack`, README); CUDA: a step is launch-bound.
MAX_PADDING = {"cpu": 1.25, "cuda": 4.0}
# CPU: a step's fixed cost (the optimizer's and autograd's per-tensor work, the Python around them) is
# about the compute of 1.6e7 parameter-rows (one thread: 3.9 ms per step of a 64- or 128-wide MLP alone,
# and 4.2 ms of matrix products per step of a 256-wide one at batch 128, measured with
# scripts/perf_pack.py's fits). A member joining a pack saves one such cost per step, so its pack may
# pad up to half of it (the other half is the gain): FREE_PARAMETER_ROWS / batch size parameters.
FREE_PARAMETER_ROWS = {"cpu": 8e6}
# Packers whose packs are slower than their members trained one after another on a device type: members
# train in packs of one there (unless the caller groups by padding cost alone, max_padding, or asks for
# mode "exact", which compares packs with single fits). TabM on CPU: a trial is already a batch of k = 32
# networks per row, so there is no per-step fixed cost to share, and K x 32 activations per layer no longer
# stay in cache: 4 or 8 TabM trials packed took 1.8x and 1.7x the CPU time per trial (README, perf-pack).
SLOWER_PACKED = {"cpu": (PackedTabM,)}


def packs(members: Sequence[PackMember], task: TaskInfo, n_train: int,
          max_padding: float | None = None, mode: PackMode = "fast") -> list[list[int]]:
    """Positions of `members` split into packs that can train together (module docstring, SLOWER_PACKED);
    n_train: training rows (the batch size "auto" depends on them)."""
    by_setting: dict[tuple, list[int]] = defaultdict(list)
    for i, m in enumerate(members):
        by_setting[(str(m.cfg.batch_size), str(m.ctx.device), int(m.ctx.threads))].append(i)
    out: list[list[int]] = []
    for group in by_setting.values():
        with torch.device("meta"):  # shapes only: nothing allocated, no random numbers drawn
            nets = [members[i].build(output_dim(task)) for i in group]
        if not all(can_pack(n) for n in nets):
            out += [[i] for i in group]  # a network no packer knows trains alone (a pack of one)
            continue
        first = members[group[0]]
        device = torch.device(first.ctx.device).type
        if max_padding is None and mode == "fast" and packer(nets[0]) in SLOWER_PACKED.get(device, ()):
            out += [[i] for i in group]
            continue
        limit = max_padding if max_padding is not None else MAX_PADDING.get(device, MAX_PADDING["cpu"])
        batch = auto_batch_size(n_train) if first.cfg.batch_size == "auto" else int(first.cfg.batch_size)
        free = 0.0 if max_padding is not None else FREE_PARAMETER_ROWS.get(device, 0.0) / max(1, batch)
        out += [[group[j] for j in pack] for pack in group_by_cost(nets, limit, free)]
    return out


def train_packs(members: Sequence[PackMember], task: TaskInfo, X_train: Arrays, y_train: np.ndarray,
                X_val: Arrays, y_val: np.ndarray, *, mode: PackMode = "fast",
                max_padding: float | None = None) -> list[MemberResult]:
    """Train `members` in as few packs as `packs` allows; one MemberResult per member, in order.

    The packs advance in lockstep, one epoch of each in turn, as K trials running side by side would: a
    deadline the members share (the tuning clock's end) cuts every pack at the same moment, instead of
    leaving the packs trained last only what is left after the first. A pack whose set-up or step fails
    (not one member's report) fails its members only. max_padding: group by that padding cost alone
    (default: MAX_PADDING and FREE_PARAMETER_ROWS of the members' device)."""
    results: list[MemberResult | None] = [None] * len(members)
    runs: list[tuple[list[int], PackedRun]] = []
    for pack in packs(members, task, len(np.asarray(y_train)), max_padding, mode):
        try:
            runs.append((pack, start_pack([members[i] for i in pack], task, X_train, y_train, X_val, y_val, mode)))
        except Exception as exc:  # noqa: BLE001 - this pack's members fail, the other packs go on
            for i in pack:
                results[i] = MemberResult(None, exc, members[i].ctx.info)
    while any(run.live for _, run in runs):
        for _, run in runs:
            if run.live:
                try:
                    run.next_epoch()
                except Exception as exc:  # noqa: BLE001
                    run.fail(exc)
    for pack, run in runs:
        for i, result in zip(pack, run.outcome()):
            results[i] = result
    return [r for r in results if r is not None]


def pack_members(models: Sequence[Any], X_train: Arrays) -> list[PackMember]:
    """A PackMember per neural adapter (bench.adapters.framework.neural_base.NeuralAdapter): its network
    factory, training settings, FitContext and param groups, as its own fit would use them."""
    members = []
    for m in models:
        if m.training_loss() is not None:
            raise ValueError(f"{m.name}: a model with its own training loss cannot be packed")
        members.append(PackMember(functools.partial(_build, m, X_train), TrainConfig.from_params(m.params), m.ctx,
                                  m.param_groups))
    return members


def _build(model: Any, X_train: Arrays, d_out: int) -> nn.Module:
    return model.build_network(X_train, d_out)
