"""The fast path of the shared training loop (TrainConfig.fast_path "eager" | "graph" | "compile").

Why: on a GPU the eager loop is launch-bound. An MLP step at batch 256 needs microseconds of
arithmetic but ~2 ms of Python, autograd bookkeeping and ~50 kernel launches, so the GPU mostly waits
and tuning budgets run out (issue 12). What this loop does differently from the eager loop
(bench.adapters.framework.torch_training._eager_epochs), and nothing else:

  * Batches are gathered on the device from the training tensors that live there (the eager loop
    does that too); on CUDA the epoch permutation is drawn on the device from a CUDA generator
    seeded with the fit's seed (no host-to-device copy, which synchronises).
  * Fused AdamW on CUDA (one kernel per parameter group instead of a dozen per step).
  * Nothing inside an epoch waits for the device: the training loss is summed on the device
    (read once, at the end: ctx.info["train_loss"], the mean over the last epoch's batches); pruning,
    early stopping and divergence are decided once per epoch, after the validation pass, as in the
    eager loop. The deadline is still checked before every step but an epoch's first, with a host
    clock read that never synchronises. The host may run ahead of the device by what the CUDA launch queue
    holds (about a thousand launches; with graphs one launch is one step), so a deadline can be
    overrun by that much device work plus the epoch's validation pass.
  * Validation passes run in batches of FAST_EVAL_BATCH rows on CUDA (fewer launches).
  * "graph": the whole full-batch train step (gather, forward, loss, backward, gradient clipping,
    optimizer step, loss sum) is captured once as a CUDA graph after WARMUP_STEPS eager steps on a
    side stream (what torch's CUDA-graph recipe asks for), then replayed: one launch per step.
    The batch's row indices reach the graph through a static index buffer. The last, smaller batch
    of an epoch runs eagerly (its shape differs); a one-row batch is skipped, as in the eager loop.
  * "compile": the network's training forward (and its backward) through
    torch.compile(mode="reduce-overhead"), which uses CUDA graphs on CUDA; one compilation per batch
    shape.

Fallback: a capture or compilation that fails (an operation that synchronises, a missing compiler,
no CUDA device for "graph") restores the weights and optimizer state saved just before, records the
reason in ctx.info["fast_path_fallback"], sets ctx.info["fast_path"] to "eager" and continues
eagerly, so a trial never fails because of the fast path.

Results. On CPU, "eager" (and "graph", which falls back to it) computes exactly what "off" computes:
same permutations, same kernels, same order, bit-identical weights (tests/test_fast_path.py). On CUDA
the device permutation, the fused optimizer and the graph's dropout stream differ from the eager loop,
so the same seed gives a different (equally valid) run: metrics agree within seed noise.
"""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import nn

from bench.adapters.framework.torch_training import TrainingRun

WARMUP_STEPS = 3  # eager steps before capture: cuBLAS handles, optimizer state, autograd streams exist
FAST_EVAL_BATCH = 16_384  # validation rows per forward pass on CUDA


class FastPathUnavailable(RuntimeError):
    """The requested capture / compilation cannot run here; the loop falls back to eager."""


def fast_epochs(t: TrainingRun, mode: str) -> None:
    """Train like _eager_epochs, through the fast path `mode` ("eager", "graph" or "compile")."""
    on_cuda = t.device.type == "cuda"
    steps = {"eager": EagerSteps, "graph": GraphSteps, "compile": CompiledSteps}[mode](t)
    generator = torch.Generator(device=t.device).manual_seed(t.ctx.seed) if on_cuda else t.generator
    eval_batch = max(t.trained.eval_batch_size, FAST_EVAL_BATCH) if on_cuda else None
    n, batch_size = t.n, t.batch_size
    for epoch in range(1, int(t.cfg.max_epochs) + 1):
        t.begin_epoch(epoch)
        t.net.train()
        order = torch.randperm(n, generator=generator, device=generator.device)
        steps.begin_epoch()
        interrupted = False
        for start in range(0, n, batch_size):
            size = min(batch_size, n - start)
            if size == 1 and n > 1:
                continue  # as in the eager loop: a one-row batch breaks BatchNorm
            if start and t.monitor.time_up():  # as in the eager loop: before every batch but the first
                interrupted = True
                break
            steps.step(order, start, size)
        if t.end_epoch(epoch, interrupted, eval_batch):
            break
    if steps.batches:
        t.ctx.info["train_loss"] = float(steps.loss_sum) / steps.batches


class EagerSteps:
    """One optimizer step per call, queued on the device without waiting for it."""

    def __init__(self, t: TrainingRun):
        if t.optimizer is None:  # train_network runs stage-wise training (a stage hook) on the eager loop
            raise ValueError("the fast path trains one network with one optimizer; a stage hook has none")
        self.t, self.optimizer = t, t.optimizer
        self.module: nn.Module = t.net  # what the training forward calls (a compiled wrapper for "compile")
        self.params = [p for p in t.net.parameters() if p.requires_grad]
        self.loss_sum = torch.zeros((), device=t.device)
        self.batches = 0

    def begin_epoch(self) -> None:
        self.loss_sum.zero_()
        self.batches = 0

    def body(self, idx: torch.Tensor) -> None:
        """Gather, forward, loss, backward, clip, step: the part a CUDA graph captures."""
        t = self.t
        loss = t.loss(self.module, idx, cache=False)
        self.loss_sum += loss.detach()
        loss.backward()
        if t.cfg.grad_clip:
            nn.utils.clip_grad_norm_(self.params, t.cfg.grad_clip)
        self.optimizer.step()

    def step(self, order: torch.Tensor, start: int, size: int) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        self.body(order[start:start + size])
        self.batches += 1

    def save(self) -> tuple:
        """Weights, buffers, optimizer state, the loss sum and the random generators' states, copied
        before a capture or compilation that may fail half-way."""
        t = self.t
        cuda_rng = torch.cuda.get_rng_state(t.device) if t.device.type == "cuda" else None
        return ({k: v.detach().clone() for k, v in t.net.state_dict().items()},
                copy.deepcopy(self.optimizer.state_dict()), self.loss_sum.clone(), torch.get_rng_state(), cuda_rng)

    def restore(self, saved: tuple) -> None:
        state, optimizer_state, loss_sum, rng, cuda_rng = saved
        self.t.net.load_state_dict(state)
        self.optimizer.load_state_dict(optimizer_state)
        self.loss_sum.copy_(loss_sum)
        torch.set_rng_state(rng)  # dropout masks continue as if the attempt never happened
        if cuda_rng is not None:
            try:
                torch.cuda.set_rng_state(cuda_rng, self.t.device)
            except RuntimeError:
                pass  # a generator still registered with the aborted graph: only reproducibility suffers

    def fall_back(self, reason: str, saved: tuple | None) -> None:
        """Continue eagerly from the state saved before the failed attempt, and say why."""
        if saved is not None:
            self.restore(saved)
        self.optimizer.zero_grad(set_to_none=True)
        self.module = self.t.net
        self.t.ctx.info.update(fast_path="eager", fast_path_fallback=reason[:500])


class GraphSteps(EagerSteps):
    """Full batches replay one captured CUDA graph; everything else runs as EagerSteps."""

    def __init__(self, t: TrainingRun):
        super().__init__(t)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.failed = False
        self.warm = 0
        self.static_idx = torch.zeros(t.batch_size, dtype=torch.long, device=t.device)

    def step(self, order: torch.Tensor, start: int, size: int) -> None:
        if self.failed or size != self.t.batch_size:
            return super().step(order, start, size)
        if self.graph is None and self.warm < WARMUP_STEPS:
            self.warm += 1
            with _side_stream(self.t.device):
                return super().step(order, start, size)
        if self.graph is None:
            saved = self.save()
            try:
                self.graph = self.capture()
            except Exception as exc:  # noqa: BLE001 - any failure means: train eagerly instead
                self.failed = True
                self.fall_back(f"graph capture failed: {type(exc).__name__}: {exc}", saved)
                return super().step(order, start, size)
        self.static_idx.copy_(order[start:start + size])
        self.graph.replay()
        self.batches += 1

    def capture(self) -> torch.cuda.CUDAGraph:
        """Record one train step reading its rows from static_idx (nothing runs during capture)."""
        if self.t.device.type != "cuda":
            raise FastPathUnavailable("CUDA graphs need a CUDA device")
        torch.cuda.synchronize(self.t.device)
        graph = torch.cuda.CUDAGraph()
        # Gradients allocated inside the capture live in the graph's private memory pool; every
        # replay writes them afresh (the first accumulation of a None gradient is an assignment).
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            self.body(self.static_idx)
        return graph


class CompiledSteps(EagerSteps):
    """The training forward through torch.compile(mode="reduce-overhead"); eager after a failure."""

    def __init__(self, t: TrainingRun):
        super().__init__(t)
        self.compiled = torch.compile(t.net, mode="reduce-overhead", dynamic=False)
        self.module = cast(nn.Module, self.compiled)  # an OptimizedModule wrapping t.net
        self.shapes_done: set[int] = set()  # batch sizes compiled and run once without error
        self.failed = False

    def step(self, order: torch.Tensor, start: int, size: int) -> None:
        if self.failed:
            return super().step(order, start, size)
        if self.t.device.type == "cuda":
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's graph outputs are consumed
        if size in self.shapes_done:
            return super().step(order, start, size)
        saved = self.save()
        try:
            super().step(order, start, size)  # compiles for this shape, then runs
            self.shapes_done.add(size)
        except Exception as exc:  # noqa: BLE001 - a compiler or backend failure: train eagerly instead
            self.failed = True
            self.fall_back(f"torch.compile failed: {type(exc).__name__}: {exc}", saved)
            super().step(order, start, size)


class _side_stream:
    """Run the block on a side CUDA stream joined to the current one (no-op off CUDA)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.stream = None

    def __enter__(self):
        if self.device.type == "cuda":
            self.stream = torch.cuda.Stream(self.device)
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            self._ctx = torch.cuda.stream(self.stream)
            self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        if self.stream is not None:
            self._ctx.__exit__(*exc)
            torch.cuda.current_stream(self.device).wait_stream(self.stream)
        return False
