"""Epoch time of the harness's training loop against a bare torch loop of the same model and batch.

    python scripts/perf_nn.py [--rows 20000] [--features 20] [--epochs 5] [--device auto]

For every neural adapter: the network is built once per side from the same seed; the harness side is
bench.adapters.torch_training.train_network (AdamW param groups, per-epoch validation scoring for
early stopping, best-state copy, pruning report hook, bf16 autocast on CUDA); the bare side is the
textbook loop: randperm, forward, loss, backward, step, plus one validation forward pass per epoch
(any early-stopping loop needs it). Both run the same number of epochs with no early stop.
Printed: seconds per epoch for each and the ratio (goal <= 1.1x). Run on a GPU machine for the GPU
numbers (`make perf-gpu`); on CPU it measures the same overhead with CPU kernels.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from bench.adapters import get_adapter
from bench.adapters.base import FitContext, TaskInfo
from bench.adapters.torch_training import TrainConfig, output_dim, train_network

MODELS = ["mlp", "resnet", "ft_transformer", "mlp_plr", "tabm"]


def make_frame(rows: int, features: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, features)), columns=[f"x{i}" for i in range(features)])
    X["cat"] = pd.Categorical(rng.choice(list("abcdefgh"), rows))
    y = ((X.x0 + X.x1 * X.x2 + (X.cat == "a")) > 0.5).astype(int).to_numpy()
    return X, y


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bare_loop(adapter, Xtr, ytr, Xva, epochs: int, batch: int, device: torch.device) -> float:
    """Seconds per epoch of a minimal loop over the same network, optimizer and batch size."""
    torch.manual_seed(0)
    net = adapter.build_network(Xtr, 2).to(device)
    opt = torch.optim.AdamW(adapter.param_groups(net, adapter.params["weight_decay"]), lr=adapter.params["lr"])
    as_tuple = lambda X: X if isinstance(X, tuple) else (X,)  # noqa: E731
    xs = [torch.as_tensor(a).to(device) for a in as_tuple(Xtr)]
    xv = [torch.as_tensor(a).to(device) for a in as_tuple(Xva)]
    y = torch.as_tensor(np.array(ytr)).to(device)
    amp = dict(device_type="cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(y), device=device)
        for i in range(0, len(y), batch):
            idx = order[i:i + batch]
            with torch.autocast(**amp):
                out = net(*(x[idx] for x in xs))
            out = out.float()
            if out.ndim == 3:  # TabM: every member gets the loss
                loss = F.cross_entropy(out.flatten(0, 1), y[idx].repeat_interleave(out.shape[1]))
            else:
                loss = F.cross_entropy(out, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        net.eval()
        with torch.inference_mode(), torch.autocast(**amp):
            for i in range(0, len(xv[0]), 4096):
                net(*(x[i:i + 4096] for x in xv))
    sync(device)
    return (time.perf_counter() - start) / epochs


def harness_loop(adapter, Xtr, ytr, Xva, yva, epochs: int, batch: int, device: torch.device) -> float:
    ctx = FitContext(seed=0, threads=torch.get_num_threads(), device=device.type)
    cfg = TrainConfig.from_params({**adapter.params, "max_epochs": epochs, "patience": epochs + 1,
                                   "batch_size": batch})
    sync(device)
    start = time.perf_counter()
    train_network(lambda d: adapter.build_network(Xtr, d), adapter.task, ctx, Xtr, ytr, Xva, yva, cfg,
                  param_groups=adapter.param_groups)
    sync(device)
    return (time.perf_counter() - start) / epochs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--features", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--models", default=",".join(MODELS))
    args = ap.parse_args()
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    X, y = make_frame(args.rows, args.features)
    n_tr = int(0.8 * len(X))
    name_of = torch.cuda.get_device_name(0) if device.type == "cuda" else f"cpu x{torch.get_num_threads()} threads"
    print(f"device: {name_of}; {n_tr} training rows, {args.features}+1 features, batch {args.batch}, "
          f"{args.epochs} epochs per side (after one warm-up epoch)")
    print(f"{'model':16s} {'harness s/epoch':>16s} {'bare s/epoch':>13s} {'ratio':>7s}")
    for name in args.models.split(","):
        cls = get_adapter(name)
        adapter = cls(TaskInfo("binary", 2), {}, FitContext(seed=0))
        assert output_dim(adapter.task) == 2
        pre = adapter.make_preprocessor().fit(X.iloc[:n_tr])
        Xtr, Xva = pre.transform(X.iloc[:n_tr]), pre.transform(X.iloc[n_tr:])
        bare_loop(adapter, Xtr, y[:n_tr], Xva, 1, args.batch, device)  # warm-up (allocator, kernels)
        # Alternate the sides so that drifting machine load hits both alike.
        h1 = harness_loop(adapter, Xtr, y[:n_tr], Xva, y[n_tr:], args.epochs, args.batch, device)
        b1 = bare_loop(adapter, Xtr, y[:n_tr], Xva, args.epochs, args.batch, device)
        h2 = harness_loop(adapter, Xtr, y[:n_tr], Xva, y[n_tr:], args.epochs, args.batch, device)
        b2 = bare_loop(adapter, Xtr, y[:n_tr], Xva, args.epochs, args.batch, device)
        h, b = min(h1, h2), min(b1, b2)
        print(f"{name:16s} {h:16.4f} {b:13.4f} {h / b:6.2f}x")


if __name__ == "__main__":
    main()
