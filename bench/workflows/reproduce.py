"""`bench reproduce TABLE`: run the harness with a published table's protocol on its datasets and split,
then compare every cell (bench.published.compare) and write reproduce.csv / reproduce.md into the run
folder (shown by `bench report` too, bench.analysis.reproduction).

    table = load_table("talent")
    config = reproduction_config(table, models=["dummy", "knn"], trials=5, seeds=3)
    result = reproduce(table, config)          # the sweep (resumable: finished jobs are kept) + comparison
    result.rows, result.paths, result.worse

The sweep is an ordinary one (bench.execution.sweep: same records, resume, integrity checks, leaderboard);
its budget defaults to the source's: the largest trial count of the selected tuned cells and the largest
number of seeds. Smaller budgets are allowed and named in every row they affect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.analysis import reproduction
from bench.errors import BenchError
from bench.execution.sweep import Progress, SweepConfig, execute_sweep, prepare_sweep
from bench.published.compare import Row, compare, counts
from bench.published.table import PublishedTable, load_table
from bench.records.store import ResultStore
from bench.safe_files import write_text_atomic
from bench.vocabulary import TUNING_VARIANTS


@dataclass
class Reproduction:
    table: PublishedTable
    rows: list[Row]
    paths: list[Path] = field(default_factory=list)
    summary: object = None  # bench.execution.runner.SweepSummary of the sweep, when one ran

    @property
    def worse(self) -> list[Row]:
        return [r for r in self.rows if r.verdict == "worse"]

    def counts(self) -> dict[str, int]:
        return counts(self.rows)


def reproduction_config(table: PublishedTable, *, models: list[str] | None = None, trials: int | None = None,
                        seeds: int | None = None, out: Path | None = None, **runner) -> SweepConfig:
    """The sweep that reproduces `table`: its suite and datasets, the selected models (default: all the
    table has), the source's trials and seeds unless given; `runner` are SweepConfig's other options
    (workers, threads, time_limit, device, tune_seconds, sampler, retry_failed, ...)."""
    names = table.models()
    chosen = names if models is None else [m.strip() for m in models if m.strip()]
    unknown = [m for m in chosen if m not in names]
    if unknown:
        raise BenchError(f"--models: table '{table.name}' has no cells for {', '.join(unknown)}; its models: "
                         f"{', '.join(names)}")
    cells = [c for c in table.cells if c.model in chosen]
    if trials is None:
        tuned = [c.protocol.trials for c in cells if c.variant in TUNING_VARIANTS and c.protocol.trials]
        trials = max(tuned, default=1)
    if seeds is None:
        seeds = max(c.protocol.seeds for c in cells)
    # One folder per budget: a run folder refuses another budget, and a smaller check must not block the full one.
    out = out or Path("results") / f"reproduce-{table.name}-{trials}t-{seeds}s"
    return SweepConfig(suite=table.suite, models=chosen, datasets=list(dict.fromkeys(c.dataset for c in cells)),
                       trials=trials, seeds=seeds, out=out, **runner)


def finish(table: PublishedTable, store: ResultStore, models: list[str] | None = None) -> Reproduction:
    """Compare the run folder's records with the table and write reproduce.csv and reproduce.md."""
    rows = compare(table, store.load_all(), models,
                   record_path=lambda r: store.path_for(r["job_id"], r["variant"]).relative_to(store.run_dir))
    frame = pd.DataFrame([r.as_dict(table.decimals) for r in rows])
    csv_path, md_path = store.run_dir / reproduction.FILE, store.run_dir / "reproduce.md"
    try:  # inside the run folder, atomically, never through a link (bench.safe_files)
        write_text_atomic(csv_path, frame.to_csv(index=False), root=store.run_dir)
        write_text_atomic(md_path, reproduction.markdown(frame, f"Reproduction of {table.name}: {table.description}"),
                          root=store.run_dir)
    except OSError as exc:
        raise BenchError(f"cannot write {csv_path} / {md_path}: {exc}") from None
    return Reproduction(table, rows, [csv_path, md_path])


def reproduce(table: PublishedTable | str, config: SweepConfig | None = None,
              progress: Progress | None = None) -> Reproduction:
    """Run (or resume) the reproduction sweep and compare; `config` defaults to reproduction_config(table)."""
    table = load_table(table) if isinstance(table, str) else table
    config = config or reproduction_config(table)
    result = execute_sweep(prepare_sweep(config), progress)  # names datasets the suite lacks
    out = finish(table, result.store, config.models)
    out.summary = result.summary
    return out
