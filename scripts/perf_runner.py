"""Runner benchmarks, measured side by side in one run (`make perf`). Numbers, not pass/fail.

1. Harness overhead: `bench run --jobs 1 --trials 1` on many small default-only jobs versus a bare
   Python loop making the same library calls with the same parameters, seeds, threads and data.
   Both sides read the same materialized datasets and frozen splits; both fit the adapter's
   preprocessing on the training part, fit the model with early stopping on the validation part,
   score validation and test. The harness adds on top: a worker process, an Optuna study with the
   defaults trial, per-job log capture, record JSON written atomically with fsync, and the bookkeeping.
   Reported twice: end to end (whole process: imports, suite loading, leaderboard) and for the job
   loop alone (the executor's time versus the bare loop's time).
2. Scaling: the same CPU-bound jobs (1 thread each) with --jobs 1 and --jobs 2: throughput ratio.
3. With a visible NVIDIA GPU: GPU-capable models next to CPU-only ones; where each job ran (from the
   records), how much GPU jobs and CPU jobs overlapped in time, and sampled GPU utilization.

The machine may be shared: the load average is printed with every measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OVERHEAD = dict(datasets="breast_cancer,wine,diabetes,cpu,penguins", models="linear,lightgbm,xgboost")
SCALING = dict(datasets="digits,kr-vs-kp,breast_cancer", models="lightgbm,xgboost,random_forest")
GPU = dict(datasets="digits,kr-vs-kp,titanic,cpu", models="xgboost,catboost,mlp,linear,random_forest")


def load() -> str:
    one, five, _ = os.getloadavg()
    return f"load avg {one:.1f} (1 min) {five:.1f} (5 min) on {os.cpu_count()} cores"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench_run(out: Path, datasets: str, models: str, jobs: int, threads: int, extra=()) -> dict:
    # --inner-folds 1: the bare loop fits each model once on the split's training part, as a holdout does
    # (the demo protocol would cross-fit its small datasets three times)
    cmd = [sys.executable, "-m", "bench.cli", "run", "--suite", "demo", "--datasets", datasets, "--models",
           models, "--trials", "1", "--inner-folds", "1", "--jobs", str(jobs), "--threads", str(threads),
           "--out", str(out), "--quiet", *extra]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    text = " ".join(proc.stdout.split())
    found = re.search(r"(\d+) jobs run, (\d+) already done, in ([\d.]+)s \(worker start-up ([\d.]+)s, "
                      r"first to last job ([\d.]+)s\)", text)
    if proc.returncode != 0 or not found:
        raise SystemExit(f"bench run failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return {"wall": wall, "cpu": cpu, "loop": float(found.group(3)), "startup": float(found.group(4)),
            "steady": float(found.group(5)), "jobs": int(found.group(1))}


def bare_loop(run_dir: Path, datasets: str, models: str, threads: int) -> dict:
    """Run in a fresh process (see --bare): the same calls the harness makes, nothing else."""
    cmd = [sys.executable, __file__, "--bare", str(run_dir), datasets, models, str(threads)]
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if proc.returncode != 0:
        raise SystemExit(f"bare loop failed:\n{proc.stderr[-3000:]}")
    return {"wall": wall, "cpu": cpu, **json.loads(proc.stdout.strip().splitlines()[-1])}


def _bare_main(run_dir: str, datasets: str, models: str, threads: str) -> None:
    from bench.execution.resources import worker_environment

    os.environ.update(worker_environment(int(threads)))  # the caps a harness worker gets
    from bench.adapters import FitContext, TaskInfo, get_adapter, resolve_models
    from bench.datasets import load_cached_dataset
    from bench.metrics import objective_value, score_predictions
    from bench.splits import load_frozen

    adapters = resolve_models(models.split(","))
    # the harness's plan: datasets in suite order x splits x models; data and splits as it froze them
    records = [json.loads(p.read_text()) for p in sorted((Path(run_dir) / "records").rglob("*.json"))]
    jobs = sorted({(r["dataset"], r["split"]["index"], r["split"]["hash"], r["model"], r["seed"]) for r in records})
    wanted = set(datasets.split(","))
    start = time.perf_counter()
    done_at = []
    for dataset, index, split_hash, model, seed in jobs:
        if dataset not in wanted or model not in {a.name for a in adapters}:
            continue
        ds = load_cached_dataset(Path(run_dir) / "data" / dataset)
        split = next(s[index] for f in (Path(run_dir) / "splits").glob(f"{dataset}-*.npz")
                     if (s := load_frozen(f)) and len(s) > index and s[index].hash == split_hash)
        cls = get_adapter(model)
        task = TaskInfo(ds.task_type, ds.n_classes)
        X = ds.X.iloc
        Xtr, Xva, Xte = (X[rows].reset_index(drop=True) for rows in (split.train, split.val, split.test))
        ytr, yva, yte = ds.y[split.train], ds.y[split.val], ds.y[split.test]
        m = cls(task, dict(cls.defaults_for(ds.task_type)), FitContext(seed=seed * 1_000 + index, threads=int(threads)))
        pre = m.make_preprocessor()
        pre.fit(Xtr)
        Xva_t = pre.transform(Xva)
        m.fit(pre.transform(Xtr), ytr, Xva_t, yva)
        objective_value(task.task_type, yva, m.validation_predictions(Xva_t), task.n_classes)
        score_predictions(task.task_type, yte, m.predictions(pre.transform(Xte)), task.n_classes)
        done_at.append(time.perf_counter())
    print(json.dumps({"loop": time.perf_counter() - start, "steady": done_at[-1] - done_at[0], "jobs": len(done_at)}))


def overhead(tmp: Path, repeats: int) -> None:
    print(f"\n== 1. harness overhead: {OVERHEAD['models']} on {OVERHEAD['datasets']} (demo, 3 folds), "
          "defaults only, 1 worker, 1 thread")
    rows = []
    for r in range(repeats):
        out = tmp / f"overhead-{r}"
        h = bench_run(out, **OVERHEAD, jobs=1, threads=1)
        b = bare_loop(out, **OVERHEAD, threads=1)
        rows.append((h, b))
        print(f"  rep {r}: bench run {h['wall']:.1f}s end to end, job loop {h['loop']:.1f}s (worker start-up "
              f"{h['startup']:.1f}s, first to last job {h['steady']:.1f}s) | bare loop {b['wall']:.1f}s end to end, "
              f"loop {b['loop']:.1f}s (first to last job {b['steady']:.1f}s) | {load()}")
    best = lambda key, side: min(row[side][key] for row in rows)  # noqa: E731
    n = rows[0][0]["jobs"]
    print(f"  best of {repeats}, {n} jobs:")
    print(f"    end to end (imports, suite loading, start-up, jobs, leaderboard): "
          f"{best('wall', 0):.1f}s vs {best('wall', 1):.1f}s = {best('wall', 0) / best('wall', 1):.2f}x")
    print(f"    steady state (first to last job, {n - 1} jobs): {best('steady', 0):.1f}s vs "
          f"{best('steady', 1):.1f}s = {best('steady', 0) / best('steady', 1):.2f}x   (goal <= 1.05x); "
          f"{(best('steady', 0) - best('steady', 1)) / (n - 1) * 1000:+.0f} ms per job")
    print(f"    CPU seconds, whole process tree (steadier than wall time on a loaded machine; leaves out "
          f"waits such as fsync): {best('cpu', 0):.1f}s vs {best('cpu', 1):.1f}s = "
          f"{best('cpu', 0) / best('cpu', 1):.2f}x")
    print(f"    fixed cost: one worker start-up, {best('startup', 0):.1f}s (a fresh process importing the "
          "harness; paid once per worker, and again after a crash, timeout or memory kill)")


def scaling(tmp: Path) -> None:
    print(f"\n== 2. scaling: {SCALING['models']} on {SCALING['datasets']} (demo, 3 folds), defaults only, "
          "1 thread per job")
    runs = {}
    for jobs in (1, 2):
        r = runs[jobs] = bench_run(tmp / f"scale-{jobs}", **SCALING, jobs=jobs, threads=1)
        print(f"  --jobs {jobs}: {r['jobs']} jobs, job loop {r['loop']:.1f}s "
              f"({r['jobs'] / r['loop']:.2f} jobs/s; worker start-up {r['startup']:.1f}s), "
              f"first to last job {r['steady']:.1f}s | {load()}")
    one, two = runs[1], runs[2]
    print(f"  throughput 2 workers / 1 worker: job loop {one['loop'] / two['loop']:.2f}x, steady state "
          f"{one['steady'] / two['steady']:.2f}x   (goal >= 1.8x; needs 2 otherwise idle cores)")
    # On a shared machine the scheduler's autogroups give one session one share, whatever its number of
    # workers: the wall-clock ratio then says little. CPU seconds say whether 2 workers do more work for
    # the same jobs (oversubscribed threads, spinning, contention): equal CPU means ~2x on idle cores.
    print(f"  CPU seconds of the whole run: --jobs 1 {one['cpu']:.1f}s, --jobs 2 {two['cpu']:.1f}s "
          f"({two['cpu'] / one['cpu']:.2f}x; each worker's start-up is in it)")


def _sample_gpu(samples: list, stop: threading.Event) -> None:
    while not stop.wait(0.5):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=index,utilization.gpu,memory.used",
                                  "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return
        for line in out.stdout.strip().splitlines():
            index, util, mem = (x.strip() for x in line.split(","))
            samples.append((index, float(util), float(mem)))


def gpu(tmp: Path, gpus: list[str]) -> None:
    print(f"\n== 3. GPU placement: {GPU['models']} on {GPU['datasets']} (demo), GPUs {','.join(gpus)}, "
          "2 CPU workers + 1 worker per GPU")
    samples, stop = [], threading.Event()
    sampler = threading.Thread(target=_sample_gpu, args=(samples, stop), daemon=True)
    sampler.start()
    out = tmp / "gpu"
    run = bench_run(out, **GPU, jobs=2, threads=max(1, (os.cpu_count() or 2) // (2 + len(gpus))))
    stop.set()
    sampler.join()
    records = [json.loads(p.read_text()) for p in (out / "records").rglob("*.default.json")]
    spans = {"cuda": [], "cpu": []}
    for r in records:
        end = datetime.fromisoformat(r["finished_at"]).timestamp()
        spans[r["device"]].append((end - (r.get("job_seconds") or 0), end))
        by = f"{r['model']:>14} {r['device']:>4} {r['status']}"
        print(f"  {r['dataset']:>14} {by} fit {r.get('fit_seconds') or 0:.1f}s", flush=False)
    gpu_time = sum(b - a for a, b in spans["cuda"])
    beside = sum(max(0.0, min(b, d) - max(a, c)) for a, b in spans["cuda"] for c, d in spans["cpu"])
    print(f"  {len(spans['cuda'])} jobs on GPU, {len(spans['cpu'])} on CPU in {run['loop']:.1f}s; CPU jobs ran "
          f"during {beside / gpu_time:.0%} of GPU job time" if gpu_time else "  no job ran on the GPU")
    if samples:
        utils = [u for _, u, _ in samples]
        print(f"  GPU utilization: mean {sum(utils) / len(utils):.0f}%, max {max(utils):.0f}%, "
              f"max memory {max(m for _, _, m in samples):.0f} MiB ({len(samples)} samples)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--bare":
        return _bare_main(*sys.argv[2:6])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="overhead measurements (best is reported)")
    p.add_argument("--only", choices=("overhead", "scaling", "gpu"), default=None)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    from bench.execution.resources import visible_gpus

    print(f"runner benchmarks; {load()}")
    with tempfile.TemporaryDirectory(prefix="bench-perf-") as tmp:
        tmp = Path(tmp)
        os.environ.setdefault("BENCH_CACHE_DIR", str(tmp / "cache"))
        if args.only in (None, "overhead"):
            overhead(tmp, args.repeats)
        if args.only in (None, "scaling"):
            scaling(tmp)
        if args.only in (None, "gpu"):
            gpus = visible_gpus("auto")
            if gpus:
                gpu(tmp, gpus)
            else:
                print("\n== 3. GPU placement: no NVIDIA GPU visible here; skipped")


if __name__ == "__main__":
    main()
