"""The catalogue verbs: `bench suites list|show`, `bench models list|show`, `bench fetch` (argument parsing
lives in bench.cli.main)."""

from __future__ import annotations

from dataclasses import asdict

from rich import box
from rich.markup import escape
from rich.table import Table

from bench.errors import plural


def cmd_suites(args, console) -> int:
    from bench.suites import list_suites, load_suite, materialize

    if args.action == "list":
        t = Table(title="Suites")
        for col in ("name", "datasets", "protocol", "description"):
            t.add_column(col)
        for s in list_suites():
            n = f"OpenML suite {s.openml_suite_id}" if s.openml_suite_id else _dataset_count(s)
            p = s.protocol
            split = "predefined" if p.splits == "predefined" else "OpenML task splits" \
                if p.use_task_splits and s.openml_suite_id else f"{p.folds}-fold x{p.repeats}"
            t.add_row(s.name, n, split, s.description or "")
        console.print(t)
        return 0
    suite = load_suite(args.name)
    console.print(f"[bold]{escape(suite.name)}[/] ({suite.path})", soft_wrap=True)
    if suite.description:
        console.print(escape(suite.description), soft_wrap=True)
    console.print(_settings_table("Split protocol", asdict(suite.protocol)))
    filters = {k: v for k, v in asdict(suite.filters).items() if v is not None}
    console.print(_settings_table("Filters", filters) if filters else "Filters: none")
    if not args.load:
        if suite.openml_suite_id is not None:
            console.print(f"datasets: the tasks of OpenML suite {suite.openml_suite_id} "
                          f"(`bench suites show {escape(suite.name)} --load` lists them; needs the OpenML cache)")
            return 0
        _print_listed(suite, console)
        return 0
    loaded, excluded = materialize(suite)
    t = Table()
    for col in ("dataset", "task", "rows", "features", "categorical", "classes", "hash", "openml"):
        t.add_column(col)
    for item in loaded:
        d = item.dataset
        ids = ", ".join(f"{k.removeprefix('openml_')}={v}" for k, v in d.source.items()
                        if k.startswith("openml_") and v is not None)
        t.add_row(d.name, d.task_type, str(d.n_rows), str(d.n_features), str(len(d.categorical)),
                  str(d.n_classes or ""), d.content_hash, ids)
    console.print(t)
    for ex in excluded:
        console.print(f"excluded {ex.name}: {ex.reason}")
    return 0


def _dataset_count(suite) -> str:
    """`bench suites list`'s datasets cell: a local folder counts its manifest's datasets."""
    from bench.suites.registry import listed_datasets

    entries, problems = listed_datasets(suite)
    missing = "folder not found" if problems else ""
    return f"{len(entries)} + {missing}" if entries and missing else missing or str(len(entries))


def _print_listed(suite, console) -> None:
    """`bench suites show` without --load: the datasets the suite lists; what loading decides stays empty."""
    from bench.suites.registry import listed_datasets

    entries, problems = listed_datasets(suite)
    t = Table(title=f"Datasets ({plural(len(entries), 'dataset')}; --load for rows, features, hashes)",
              title_justify="left", box=box.SIMPLE_HEAD)
    for col in ("#", "source", "name", "target", "task type", "notes"):
        t.add_column(col, overflow="fold")
    for i, e in enumerate(entries, 1):
        notes = "; ".join(part for part in (
            f"drop {', '.join(e.drop)}" if e.drop else "",
            f"categorical {', '.join(e.categorical)}" if e.categorical else "") if part)
        t.add_row(str(i), escape(e.describe()), escape(e.name or ""), escape(e.target or ""), e.task_type or "",
                  escape(notes))
    console.print(t)
    if any(not (e.name and e.target and e.task_type) for e in entries):
        console.print("[dim]Empty name, target or task type: the data's own, known once it loads (--load).[/]")
    for problem in problems:
        console.print(f"[yellow]not found:[/] {escape(problem)}", soft_wrap=True)


def _settings_table(title: str, values: dict) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_header=False)
    t.add_column("setting")
    t.add_column("value")
    for key, value in values.items():
        t.add_row(key.replace("_", " "), escape(str(value)))
    return t


def cmd_models(args, console) -> int:
    from bench.adapters import get_adapter, load_adapters
    from bench.adapters.space import describe

    if args.action == "list":
        t = Table(title="Models")
        for col in ("name", "family", "extra", "task types", "gpu", "tuned params", "libraries", "available"):
            t.add_column(col)
        missing = {}
        for name, cls in sorted(load_adapters().items()):
            caps = cls.capabilities
            missing[name] = cls.unavailable_reason()
            t.add_row(name, cls.family, cls.extra or "-", ", ".join(caps.task_types), caps.gpu,
                      str(len(cls.search_space)), ", ".join(cls.libraries), "no" if missing[name] else "yes")
        console.print(t)
        for name, reason in missing.items():
            if reason:
                console.print(f"[yellow]{name}[/] unavailable: {escape(reason)}", soft_wrap=True)
        return 0
    cls = get_adapter(args.name)
    console.print(f"[bold]{cls.name}[/] ({cls.family}) from {cls.__module__}"
                  + (f", optional extra '{cls.extra}'" if cls.extra else ""))
    console.print(f"capabilities: {escape(cls.capabilities.describe())}", soft_wrap=True)
    reason = cls.unavailable_reason()
    console.print(f"unavailable here: {escape(reason)}" if reason else "available: yes", soft_wrap=True)
    console.print("defaults:", cls.defaults)
    for task_type in cls.capabilities.task_types:
        differ = {k: v for k, v in cls.defaults_for(task_type).items() if cls.defaults.get(k, object()) != v}
        if differ:
            console.print(f"defaults for {task_type} differ in:", differ)
    for name, text in describe(cls.search_space).items():
        console.print(f"  {name}: {text}")
    return 0


def cmd_fetch(args, console) -> int:
    from bench.suites import load_suite, materialize

    suite = load_suite(args.suite)
    with console.status(f"fetching suite '{suite.name}'"):
        loaded, excluded = materialize(suite, refresh=args.refresh)
    console.print(f"{plural(len(loaded), 'dataset')} cached, {len(excluded)} excluded by filters")
    return 0
