"""The CLI verbs about published results and other benchmarks' data: `bench reproduce`, `bench import`."""

from __future__ import annotations

import textwrap

import pandas as pd
from rich import box
from rich.markup import escape
from rich.table import Table

from bench.cli.commands import _runner_options, _sweep
from bench.errors import BenchError


def cmd_reproduce(args, console) -> int:
    from bench.analysis import reproduction
    from bench.published.table import load_table, table_names
    from bench.workflows.reproduce import finish, reproduction_config

    if args.list or not args.table:
        if not args.list:
            raise BenchError("name a published table (bench reproduce TABLE), or --list them")
        for name in table_names():
            table = load_table(name)
            console.print(f"{name}: {len(table.cells)} cells, {len(table.models())} models, "
                          f"datasets {', '.join(table.datasets())} ({escape(str(table.path))})", soft_wrap=True)
        return 0
    table = load_table(args.table)
    config = reproduction_config(table, models=args.models.split(",") if args.models else None, trials=args.trials,
                                 seeds=args.seeds, out=args.out, **_runner_options(args))
    console.print(f"reproducing [bold]{escape(table.name)}[/] ({len(table.cells)} cells, source "
                  f"{escape(table.repository)} @ {escape(table.version)}): models {', '.join(config.models)}, "
                  f"trials={config.trials}, seeds={config.seeds}", soft_wrap=True)
    store, _ = _sweep(config, args, console)
    result = finish(table, store, config.models)
    header, rows = reproduction.rows(pd.DataFrame([r.as_dict(table.decimals) for r in result.rows]))
    out = Table(title=f"Reproduction of {table.name}", title_justify="left", box=box.SIMPLE_HEAD)
    for col in header:
        out.add_column(col, overflow="fold", justify="left" if col in ("dataset", "model", "variant", "verdict",
                                                                        "our budget vs the source's") else "right")
    colors = {"agrees": "green", "better": "cyan", "worse": "red", "missing": "yellow"}
    for row, r in zip(rows, result.rows):
        out.add_row(*[escape(c) for c in row[:8]], f"[{colors[r.verdict]}]{escape(row[8])}[/]",
                    *[escape(c) for c in row[9:]])
    console.print(out)
    for line in textwrap.wrap(reproduction.NOTE, width=min(console.width, 120)):
        console.print(f"[dim]{escape(line)}[/]")
    console.print(f"verdicts: {result.counts()}; written: " + ", ".join(str(p) for p in result.paths))
    if args.strict and result.worse:
        console.print(f"[red]--strict: {len(result.worse)} cell(s) worse than published[/]")
        return 1
    return 0


def cmd_import(args, console) -> int:
    from bench.suites.talent_source import import_folders

    entries = import_folders(args.source, args.out)
    for e in entries:
        console.print(f"{e['name']}: {e['task_type']}, split column '{e['split_column']}' -> {args.out / e['file']}")
    console.print(f"written: {args.out / 'manifest.json'}; run it with `bench run --suite {args.out}` "
                  f"(each dataset's own split)")
    return 0
