"""`bench explain`: prints what bench.explain.run.explain computed and wrote (the work is there)."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from bench.cli.commands import _run_store


def cmd_explain(args, console) -> int:
    from bench.explain.run import ExplainRequest, explain

    store = _run_store(args.run_dir)
    request = ExplainRequest(store.run_dir, args.dataset, args.model, split=args.split, top=args.top,
                             background=args.background, max_rows=args.rows, seed=args.seed, threads=args.threads)
    with console.status(f"refitting {args.model} on {args.dataset} and explaining it"):
        result = explain(request)
    s = result.summary
    console.print(escape(s["refit_note"]), soft_wrap=True)
    features = Table(title=f"{args.model} on {args.dataset}: top features ({escape(s['method'])}, "
                           f"{s['rows_explained']} test rows)")
    for column in ("rank", "feature", "share of mean |SHAP|"):
        features.add_column(column, justify="left" if column == "feature" else "right")
    for rank, (feature, share) in enumerate(result.importance.head(10).items(), 1):
        features.add_row(str(rank), escape(str(feature)), f"{share:.1%}")
    console.print(features)
    if result.influence is not None:
        rows = Table(title=f"training rows with the largest influence on the test loss ({s['influence_method']})")
        for column in result.influence.columns:
            rows.add_column(str(column), justify="right")
        for values in result.influence.head(10).itertuples(index=False):
            rows.add_row(*(f"{v:.4g}" if isinstance(v, float) else escape(str(v)) for v in values))
        console.print(rows)
        console.print("removal_effect < 0: harmful (removing the row would lower the test loss); > 0: helpful",
                      soft_wrap=True)
    console.print(f"[dim]wrote {len(result.files)} files into {escape(str(result.files[-1].parent))}; "
                  "`bench report` shows them[/]", soft_wrap=True)
    return 0
