"""Packed training (K trials as one model) against the same trials one after another (`make perf-pack`).

    python scripts/perf_pack.py [--datasets cpu_act,adult] [--models mlp,resnet,mlp_plr] [--ks 1,4,8,16]
                                [--shapes shared,search] [--epochs 2] [--repeats 2] [--device auto]

For every dataset (offline-20's cpu_act: 5,242 training rows, regression; adult: 31,258 rows, binary), model
and K, the same K configurations are trained (a) one after another with the shared loop
(bench.adapters.framework.torch_training.train_network, what a trial runs today; on CUDA its default fast
path) and (b) packed as `--pack K` tuning packs them (bench.adapters.framework.packed.fitting.train_packs,
mode "fast"), at equal epochs (no early stopping: patience beyond the epochs), each fit timed whole (set-up
included), the faster of `--repeats` runs counting. Printed per K: seconds per trial sequential and packed,
their ratio (the goal on CPU: <= 0.35 for 8 MLP trials on cpu_act), and the members' validation scores against
the same configurations trained alone: the median and largest relative difference, next to the median
difference between two single fits of one configuration with different seeds (the noise any rerun has). Mode
"fast" draws other dropout masks than a single fit, so its members differ from their single fits by about that
noise; mode "exact" reproduces them bit for bit (tests/test_packed_training.py).

Configurations: `shared` draws learning rate, weight decay and dropout at random from the model's search
space with the default architecture (one pack of equal shapes); `search` draws everything, the
architecture too, and packs them as tuning does (fitting.packs: by padding cost and the per-step cost a
member saves; --max-padding X: by padding cost <= X alone; printed: how many packs the K trials made).

Without the suite (a clone without ../shared/data) the script says so and exits 0.

On CPU the script runs with one thread (torch.set_num_threads(1)) and prints the load average with
every line: the machine is shared, so compare ratios of runs taken close together.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import torch
from perf_data import first_split_parts  # (scripts/: the running script's folder is on sys.path)

from bench.adapters import get_adapter
from bench.adapters.framework.context import FitContext, TaskInfo
from bench.adapters.framework.packed.fitting import packs, train_packs
from bench.adapters.framework.packed.training import PackMember
from bench.adapters.framework.torch_training import TrainConfig, train_network
from bench.adapters.space import suggest_params
from bench.tuning import Parts

# The architecture keys of each model's space (`--shapes shared` keeps their defaults). MLP-PLR's
# frequency_init_scale only sets the initial frequencies: drawn like the optimizer's settings.
ARCHITECTURE = {"mlp": ("n_blocks", "d_block"), "resnet": ("n_blocks", "d_block", "d_hidden_multiplier"),
                "mlp_plr": ("n_blocks", "d_block", "d_embedding", "n_frequencies"), "tabm": ("n_blocks", "d_block")}
DEFAULT_SUITE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "suites" / "offline-20"


def draw_configs(model: str, task: TaskInfo, n: int, shapes: str, epochs: int, seed: int = 0) -> list[dict]:
    adapter = get_adapter(model)
    space = adapter.search_space_for(task.task_type)
    if shapes == "shared":
        space = {k: v for k, v in space.items() if k not in ARCHITECTURE[model]}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [{**adapter.defaults_for(task.task_type), **suggest_params(study.ask(), space),
             "max_epochs": epochs, "patience": epochs + 1} for _ in range(n)]


@dataclass(frozen=True)
class Seconds:
    """Wall-clock and process CPU seconds (one thread: the CPU seconds are the work itself, which the
    load of other processes on the machine does not stretch)."""

    wall: float
    cpu: float

    @staticmethod
    def now() -> "Seconds":
        return Seconds(time.perf_counter(), time.process_time())

    def __sub__(self, other: "Seconds") -> "Seconds":
        return Seconds(self.wall - other.wall, self.cpu - other.cpu)


def fastest(runs: list[Seconds]) -> Seconds:
    return Seconds(min(r.wall for r in runs), min(r.cpu for r in runs))


class Bench:
    """One dataset and model: preprocessed data, and timed single and packed fits."""

    def __init__(self, model: str, task: TaskInfo, parts: Parts, device: str, threads: int):
        self.adapter, self.task, self.device, self.threads = get_adapter(model), task, device, threads
        self.y_train, self.y_val = parts.y_train, parts.y_val
        pre = self.adapter(task, {}, FitContext()).make_preprocessor().fit(parts.X_train)
        self.X_train, self.X_val = pre.transform(parts.X_train), pre.transform(parts.X_val)

    def member(self, params: dict, seed: int) -> PackMember:
        ad = self.adapter(self.task, params, FitContext())
        return PackMember(lambda d: ad.build_network(self.X_train, d), TrainConfig.from_params(ad.params),
                          FitContext(seed=seed, threads=self.threads, device=self.device), ad.param_groups)

    def single(self, params: dict, seed: int = 0) -> tuple[Seconds, float]:
        """(wall and CPU seconds, best validation score) of one trial on the shared loop."""
        m = self.member(params, seed)
        start = Seconds.now()
        train_network(m.build, self.task, m.ctx, self.X_train, self.y_train, self.X_val, self.y_val, m.cfg,
                      param_groups=m.param_groups)
        self.sync()
        return Seconds.now() - start, float(m.ctx.info["best_val_score"])

    def packed(self, configs: list[dict], max_padding: float | None) -> tuple[Seconds, list[float], int]:
        """(wall and CPU seconds, members' best validation scores, number of packs) of the configurations
        packed as tuning packs them (bench.adapters.framework.packed.fitting.train_packs)."""
        members = [self.member(c, 0) for c in configs]
        n_packs = len(packs(members, self.task, len(self.y_train), max_padding))
        start = Seconds.now()
        results = train_packs(members, self.task, self.X_train, self.y_train, self.X_val, self.y_val,
                              max_padding=max_padding)
        self.sync()
        seconds = Seconds.now() - start
        for r in results:
            if r.error is not None:
                raise r.error
        return seconds, [float(r.best_val_score or float("nan")) for r in results], n_packs

    def sync(self) -> None:
        if self.device == "cuda":
            torch.cuda.synchronize()


def relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def load_avg() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def measure(bench: Bench, configs: list[dict], ks: list[int], repeats: int, max_padding: float | None) -> None:
    bench.single(configs[0])  # warm-up (not timed): first-call costs of torch and MKL
    bench.packed(configs[:1], max_padding)
    singles: list[list[Seconds]] = [[] for _ in configs]
    single_scores: list[float] = []
    packed: dict[int, list[Seconds]] = {k: [] for k in ks}
    packed_scores: dict[int, list[float]] = {}
    packs: dict[int, int] = {}
    for _ in range(repeats):  # alternate the sides so that drifting load hits both alike
        single_scores = []
        for i, c in enumerate(configs):
            seconds, score = bench.single(c)
            singles[i].append(seconds)
            single_scores.append(score)
        for k in ks:
            seconds, packed_scores[k], packs[k] = bench.packed(configs[:k], max_padding)
            packed[k].append(seconds)
    noise = [relative(bench.single(c, seed=1)[1], s) for c, s in zip(configs[:4], single_scores)]
    for k in ks:
        seq = [fastest(t) for t in singles[:k]]
        seq_wall, seq_cpu = sum(t.wall for t in seq) / k, sum(t.cpu for t in seq) / k
        pk = fastest(packed[k])
        diffs = [relative(p, s) for p, s in zip(packed_scores[k], single_scores)]
        print(f"  K={k:2d} packs={packs[k]:2d}  wall s/trial: sequential {seq_wall:7.3f} packed {pk.wall / k:7.3f} "
              f"ratio {pk.wall / k / seq_wall:5.2f} (runs {', '.join(f'{t.wall / k:.3f}' for t in packed[k])})  "
              f"CPU-time ratio {pk.cpu / k / seq_cpu:5.2f}  val score vs alone: median "
              f"{statistics.median(diffs):.1%} max {max(diffs):.1%}  {load_avg()}", flush=True)
    print(f"  seed noise (a single fit vs the same configuration with another seed): median "
          f"{statistics.median(noise):.1%}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default=str(DEFAULT_SUITE))
    ap.add_argument("--datasets", default="cpu_act,adult")
    ap.add_argument("--models", default="mlp,resnet,mlp_plr")
    ap.add_argument("--ks", default="1,4,8,16")
    ap.add_argument("--shapes", default="shared,search")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--max-padding", type=float, default=None,
                    help="pack by padded cost / members' own <= X only (default: as tuning packs)")
    ap.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    args = ap.parse_args()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    threads = 1
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    max_padding = args.max_padding
    if not Path(args.suite, "manifest.json").exists():
        print(f"perf-pack skipped: no suite at {args.suite} (offline-20 lives in ../shared/data)")
        return
    ks = sorted(int(k) for k in args.ks.split(","))
    print(f"device {device}{' (' + torch.cuda.get_device_name() + ')' if device == 'cuda' else ''}, "
          f"{threads} thread, {args.epochs} epochs per fit, best of {args.repeats} runs, packs "
          f"{'as tuning packs' if max_padding is None else f'by padding cost <= {max_padding}'}; {load_avg()}",
          flush=True)
    names = args.datasets.split(",")
    data = first_split_parts(args.suite, names)
    for name in names:
        task, parts = data[name]
        for model in args.models.split(","):
            bench = Bench(model, task, parts, device, threads)
            for shapes in args.shapes.split(","):
                print(f"{name} ({len(parts.y_train)} training rows) {model} {shapes} shapes", flush=True)
                configs = draw_configs(model, task, max(ks), shapes, args.epochs)
                measure(bench, configs, ks, args.repeats, max_padding)


if __name__ == "__main__":
    main()
