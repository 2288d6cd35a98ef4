"""Packed training: K trials' networks of one architecture family trained as one model (issue 23).

One optimizer step advances K trials: the members' weights are stacked on a leading K axis
(bench.adapters.framework.packed.nets, .layers), a batch goes through all members as batched matrix
products, the loss is the sum of the members' own mean losses (so member k's gradient is exactly its
single fit's), and PackedAdamW steps every member with its own learning rate and weight decay.

What each member keeps of a single fit (bench.adapters.framework.torch_training.train_network):
  * its network, built by its own factory after torch.manual_seed(its seed), so its initial weights are
    those of its single fit; at the end its kept weights go back into that network, wrapped in a
    TrainedNet like a single fit's;
  * its own StoppingMonitor (bench.adapters.framework.early_stopping, the one stopping protocol): early stopping,
    the epoch cap, its pruning reports through its own FitContext.report (a TrialPruned ends that member
    only), its own deadline (ctx.deadline, time_limit_s, checked before every batch but an epoch's first:
    a member whose clock runs out stops updating for the rest of the epoch, is scored on the state it
    had then, and ends `deadline`), divergence, the kept best epoch and how the fit ended, recorded in its
    ctx.info exactly as a single fit records them;
  * its own hyperparameters: lr and weight decay (PackedAdamW), lr schedule, dropout rate, gradient
    clipping, patience, max_epochs, and its architecture (width and depth: padded, see nets.py).
A member that ends leaves the pack at the end of that epoch: its parameters, optimizer moments and
per-member settings are sliced out (layers.select_members), so it neither moves nor costs
compute afterwards. When no member is left, training ends.

Shared by all members (and checked to agree): the data and its preprocessing, the batch size and the
batch order (one permutation per epoch from a generator seeded with the first member's seed, exactly
the order a single fit with that seed draws; the harness gives every trial of a job the job's seed, so
every member sees the batches of its own single fit), the device and thread count.

Mode "fast" (default) or "exact" (layers.PackMode): "exact" reproduces each member's single fit
bit for bit on CPU when the members share the seed; "fast" batches everything and draws dropout masks
for the whole pack at once (same distribution, other masks). Each member's validation predictions and
best_val_score come from its unpacked TrainedNet (one validation pass per member when it ends), so
they are exactly what that predictor gives.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.framework.early_stopping import StoppingMonitor
from bench.adapters.framework.packed.layers import PackMode, select_members
from bench.adapters.framework.packed.nets import decay_flags, load_member, pack_networks, store_member
from bench.adapters.framework.packed.optim import PackedAdamW, clip_member_grads
from bench.adapters.framework.torch_training import (
    Arrays,
    TrainConfig,
    TrainedNet,
    _tensors,
    auto_batch_size,
    autocast_cuda_bf16,
    default_param_groups,
    output_dim,
    target_scaling,
)
from bench.seeding import derive_seed

ParamGroups = Callable[[nn.Module, float], list[dict]]
_PROBE_DECAY = 1.0  # param groups are asked with this weight decay to learn which parameters decay


@dataclass
class PackMember:
    """One trial of a pack: its network factory (called with the output width right after
    torch.manual_seed(ctx.seed), as train_network calls it), its training settings, its own FitContext
    (seed, threads, device, report -> its trial's pruner, deadline, info) and its param groups."""

    build: Callable[[int], nn.Module]
    cfg: TrainConfig
    ctx: FitContext
    param_groups: ParamGroups = default_param_groups


@dataclass
class MemberResult:
    """What a single fit gives, per member. `trained`: the TrainedNet (val_predictions set) train_network
    would return, or None with `error`: optuna.TrialPruned when its pruner stopped it, FloatingPointError
    when it diverged before any usable epoch, or what its report callback raised. `info` is the member's
    ctx.info (stopped_by, iterations, best_iteration, best_val_score, ... as StoppingMonitor.finish
    records them, plus `pack`: size, position and mode)."""

    trained: TrainedNet | None
    error: BaseException | None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def stopped_by(self) -> str | None:
        return self.info.get("stopped_by")

    @property
    def iterations(self) -> int | None:
        return self.info.get("iterations")

    @property
    def best_iteration(self) -> int | None:
        return self.info.get("best_iteration")

    @property
    def best_val_score(self) -> float | None:
        return self.info.get("best_val_score")


def packed_loss(out: torch.Tensor, target: torch.Tensor, task: TaskInfo) -> torch.Tensor:
    """The sum over members of each member's mean batch loss (out: (K, batch, d_out), or (K, batch, k, d_out)
    for members that are ensembles trained jointly, TabM: every ensemble member on the same target); member
    K's gradient is exactly that of its single fit's loss (bench.adapters.framework.torch_training.batch_loss)."""
    out, k = out.float(), out.shape[0]
    targets = target.view(1, -1, *([1] * (out.ndim - 3))).expand(out.shape[:-1])  # (K, batch[, k])
    if task.is_classification:
        rows = F.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1), reduction="none")
    else:
        rows = F.mse_loss(out.squeeze(-1), targets, reduction="none")
    return rows.reshape(k, -1).mean(1).sum()  # rows may follow a transposed output's strides (TabM's head)


def _decayed_names(member: PackMember, net: nn.Module) -> set[str]:
    """Names of the parameters member's param groups decay; packing supports groups that decay with the
    member's weight decay or not at all, and no per-group learning rate."""
    names = {id(p): n for n, p in net.named_parameters()}
    decayed: set[str] = set()
    for group in member.param_groups(net, _PROBE_DECAY):
        if "lr" in group or group.get("weight_decay", 0.0) not in (0.0, _PROBE_DECAY):
            raise ValueError("packed training supports param groups that only switch weight decay on or off")
        if group.get("weight_decay", 0.0):
            decayed |= {names[id(p)] for p in group["params"]}
    return decayed


def _check_members(members: Sequence[PackMember], mode: PackMode) -> None:
    if not members:
        raise ValueError("a pack needs at least one member")
    for name, values in (("device", {m.ctx.device for m in members}), ("threads", {m.ctx.threads for m in members}),
                         ("batch_size", {str(m.cfg.batch_size) for m in members})):
        if len(values) != 1:
            raise ValueError(f"members of a pack must share {name}; got {sorted(map(str, values))}")
    if mode == "exact" and torch.device(members[0].ctx.device).type != "cpu":
        raise ValueError("pack mode 'exact' reproduces CPU single fits; use mode 'fast' on "
                         f"{members[0].ctx.device}")
    for m in members:
        if int(m.cfg.max_epochs) < 1:
            raise ValueError(f"max_epochs must be at least 1, got {m.cfg.max_epochs}")


class PackedRun:
    """One packed fit: the pack, its optimizer, one StoppingMonitor per member, and which members are
    still in the pack (`live`: member numbers, in pack order)."""

    def __init__(self, members: Sequence[PackMember], task: TaskInfo, X_train: Arrays, y_train: np.ndarray,
                 X_val: Arrays, y_val: np.ndarray, mode: PackMode):
        _check_members(members, mode)
        self.members, self.task, self.mode, self.X_val = list(members), task, mode, X_val
        first = members[0]
        torch.set_num_threads(max(1, int(first.ctx.threads)))
        self.device = device = torch.device(first.ctx.device)
        self.nets, generators = self._build(device)
        if mode == "fast":
            generators = [torch.Generator(device).manual_seed(derive_seed(first.ctx.seed, "pack-dropout"))]
        self.packed = pack_networks(self.nets, mode, generators)
        self.xs_train, self.xs_val = _tensors(X_train, device), _tensors(X_val, device)
        self.n, self.n_val = len(self.xs_train[0]), len(np.asarray(y_val))
        y_train = np.array(y_train)  # a private, writable copy (torch refuses read-only buffers)
        y_mean, y_std = target_scaling(task, y_train)
        self.target = (torch.as_tensor(y_train, dtype=torch.long, device=device) if task.is_classification else
                       torch.as_tensor((y_train - y_mean) / y_std, dtype=torch.float32, device=device))
        self.trained = [TrainedNet(net, task, device, int(m.cfg.eval_batch_size), y_mean, y_std)
                        for net, m in zip(self.nets, members)]
        self.batch_size = auto_batch_size(self.n) if first.cfg.batch_size == "auto" else int(first.cfg.batch_size)
        self.monitors = [StoppingMonitor(m.ctx, task, y_val, int(m.cfg.patience), unit="epochs",
                                         max_iterations=int(m.cfg.max_epochs), time_limit_s=m.cfg.time_limit_s)
                         for m in members]
        decay = decay_flags(self.packed, self.nets, [_decayed_names(m, n) for m, n in zip(members, self.nets)])
        self.optimizer = PackedAdamW(list(self.packed.parameters()), decay, [m.cfg.lr for m in members],
                                     [m.cfg.weight_decay for m in members], exact=mode == "exact")
        self.clip = torch.tensor([float(m.cfg.grad_clip or math.inf) for m in members], device=device)
        self.clipping = any(m.cfg.grad_clip for m in members)  # a Python flag: no device read per step
        self.generator = torch.Generator().manual_seed(first.ctx.seed)  # the batch order (module docstring)
        self.live = list(range(len(members)))
        self.best_state: list[dict | None] = [None] * len(members)
        self.results: list[MemberResult | None] = [None] * len(members)
        self.epoch = 0
        self.shares = [0.0] * len(members)  # seconds of the pack's wall time charged to each member
        for i, m in enumerate(members):
            m.ctx.info.update(batch_size=self.batch_size, fast_path="packed",
                              pack={"size": len(members), "position": i, "mode": mode})

    def _build(self, device: torch.device) -> tuple[list[nn.Module], list[torch.Generator]]:
        """Each member's single network, built as train_network builds it, and (mode "exact") a generator in
        the state the global one has after that build: the single fit's dropout draws start there."""
        nets, generators = [], []
        for m in self.members:
            torch.manual_seed(m.ctx.seed)
            nets.append(m.build(output_dim(self.task)).to(device))
            generator = torch.Generator()
            generator.set_state(torch.get_rng_state())
            generators.append(generator)
        return nets, generators

    # --- one epoch -------------------------------------------------------------------------------

    def begin_epoch(self, epoch: int) -> None:
        """The epoch's learning rates (TrainConfig.lr_schedule), computed as the single loop does."""
        cfgs = [self.members[m].cfg for m in self.live]
        if all(c.lr_schedule == "constant" for c in cfgs):
            return
        self.optimizer.set_lr([c.lr * (c.lr_at_epoch(epoch) / c.lr) if c.lr else 0.0 for c in cfgs])

    def train_epoch(self) -> set[int]:
        """One pass over the training rows; returns the members whose clock interrupted it (they were
        taken back to their state at that moment)."""
        self.packed.train()
        interrupted: set[int] = set()
        first = True
        order = torch.randperm(self.n, generator=self.generator).to(self.device)
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            if len(idx) == 1 and self.n != 1:  # as the single loop: a one-row batch is skipped
                continue
            if not first:
                for pos, m in enumerate(self.live):
                    if m not in interrupted and self.monitors[m].time_up():
                        store_member(self.packed, pos, self.nets[m])  # its state when its clock ran out
                        interrupted.add(m)
                if len(interrupted) == len(self.live):
                    break
            first = False
            self.step(idx)
        for pos, m in enumerate(self.live):
            if m in interrupted:
                load_member(self.packed, pos, self.nets[m])
        return interrupted

    def step(self, idx: torch.Tensor) -> None:
        batch = tuple(x[idx] for x in self.xs_train)
        with autocast_cuda_bf16(self.device):
            out = self.packed(*batch)
        loss = packed_loss(out, self.target[idx], self.task)
        self.optimizer.zero_grad()
        loss.backward()
        if self.clipping:
            clip_member_grads(list(self.packed.parameters()), self.clip)
        self.optimizer.step()

    @torch.inference_mode()
    def validation_outputs(self) -> torch.Tensor:
        """(live members, validation rows, d_out) float64 outputs, in eval batches of the first member's size."""
        self.packed.eval()
        step, outs = int(self.members[0].cfg.eval_batch_size), []
        for start in range(0, self.n_val, step):
            with autocast_cuda_bf16(self.device):
                outs.append(self.packed(*(x[start:start + step] for x in self.xs_val)).double())
        return torch.cat(outs, dim=1)

    def end_epoch(self, epoch: int, interrupted: set[int]) -> None:
        """Score every live member, run its stopping protocol, finish the members that ended and take
        them out of the pack."""
        start = time.perf_counter()
        outs = self.validation_outputs()
        # A pack ends its members together under a shared deadline, and then all of them predict: each
        # member reserves the time of the whole pack's pass (StoppingMonitor.reserve).
        seconds = time.perf_counter() - start
        ended = []
        for pos, m in enumerate(self.live):
            monitor = self.monitors[m]
            monitor.note_prediction_cost(seconds, self.n_val)
            pred = self.trained[m].outputs_to_predictions(outs[pos])
            try:
                done = monitor.after_predictions(epoch, pred, keep=functools.partial(self.keep, pos, m),
                                                 interrupted=m in interrupted)
            except Exception as exc:  # optuna.TrialPruned from its report, or its report's own failure
                self.results[m], done = MemberResult(None, exc, self.members[m].ctx.info), True
            if done:
                ended.append(m)
        for m in ended:
            if self.results[m] is None:
                self.results[m] = self.finish(m)
        if ended:
            self.drop([pos for pos, m in enumerate(self.live) if m not in ended])

    def keep(self, pos: int, m: int) -> None:
        """Member m's best state so far (in its single network's form), as TrainingRun._keep."""
        store_member(self.packed, pos, self.nets[m])
        self.best_state[m] = {k: v.detach().clone() for k, v in self.nets[m].state_dict().items()}

    def finish(self, m: int) -> MemberResult:
        monitor, ctx, state = self.monitors[m], self.members[m].ctx, self.best_state[m]
        if state is None:
            return MemberResult(None, FloatingPointError(
                f"training diverged after {monitor.iterations} {monitor.unit} (non-finite outputs) before any "
                f"usable one; lr={self.members[m].cfg.lr} is likely too high"), ctx.info)
        self.nets[m].load_state_dict(state)
        trained = self.trained[m]
        trained.val_predictions = trained.predict(self.X_val)  # exactly what its predictor gives
        if self.device.type == "cuda":
            ctx.info["cuda_peak_bytes"] = int(torch.cuda.max_memory_allocated(self.device))
        monitor.finish(best_val_score=monitor.stopping_value(trained.val_predictions))
        return MemberResult(trained, None, ctx.info)

    def drop(self, keep: list[int]) -> None:
        """Only the members at pack positions `keep` go on."""
        self.live = [self.live[pos] for pos in keep]
        if not self.live:
            return
        select_members(self.packed, keep)
        self.optimizer.select_members(keep, list(self.packed.parameters()))
        self.clip = self.clip[torch.tensor(keep, device=self.clip.device)]
        self.clipping = any(self.members[m].cfg.grad_clip for m in self.live)

    def next_epoch(self) -> None:
        """One epoch of the live members and its bookkeeping; its wall time is split among them (`shares`)."""
        began, live = time.perf_counter(), list(self.live)
        self.epoch += 1
        self.begin_epoch(self.epoch)
        self.end_epoch(self.epoch, self.train_epoch())
        for m in live:
            self.shares[m] += (time.perf_counter() - began) / len(live)

    def fail(self, exc: BaseException) -> None:
        """The pack itself failed (not one member's report): every member still in it ends with `exc`."""
        for m in self.live:
            self.results[m] = MemberResult(None, exc, self.members[m].ctx.info)
        self.live = []

    def outcome(self) -> list[MemberResult]:
        """One MemberResult per member; each member's ctx.info["pack"]["share_s"] is its share of the pack's
        wall time: the set-up split evenly, every epoch split among the members still in the pack then
        (what a tuner charges its trial)."""
        for member, share in zip(self.members, self.shares):
            member.ctx.info["pack"]["share_s"] = round(share, 4)
        return [r if r is not None else MemberResult(None, RuntimeError("member never ended"), {})
                for r in self.results]

    def member_state(self, m: int) -> dict[str, torch.Tensor]:
        """Member m's current weights in its single network's form (a live member: as the pack holds them;
        an ended one: what it returned)."""
        if m in self.live:
            store_member(self.packed, self.live.index(m), self.nets[m])
        return {k: v.detach().clone() for k, v in self.nets[m].state_dict().items()}


def start_pack(members: Sequence[PackMember], task: TaskInfo, X_train: Arrays, y_train: np.ndarray,
               X_val: Arrays, y_val: np.ndarray, mode: PackMode = "fast") -> PackedRun:
    """A PackedRun ready for its first epoch, its set-up time charged to its members evenly."""
    start = time.perf_counter()
    run = PackedRun(members, task, X_train, y_train, X_val, y_val, mode)
    if run.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(run.device)
    run.shares = [(time.perf_counter() - start) / len(members)] * len(members)
    return run


def train_packed(members: Sequence[PackMember], task: TaskInfo, X_train: Arrays, y_train: np.ndarray,
                 X_val: Arrays, y_val: np.ndarray, *, mode: PackMode = "fast",
                 on_epoch: Callable[[int, PackedRun], None] | None = None) -> list[MemberResult]:
    """Train the members' networks as one pack (module docstring); one MemberResult per member, in order.

    A member's pruning (optuna.TrialPruned from its ctx.report) or failure ends that member only; the
    others go on. `on_epoch(epoch, run)` is called after every epoch's bookkeeping (tests, progress)."""
    run = start_pack(members, task, X_train, y_train, X_val, y_val, mode)
    while run.live:
        run.next_epoch()
        if on_epoch is not None:
            on_epoch(run.epoch, run)
    return run.outcome()
