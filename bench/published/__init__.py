"""Published result tables: does the harness score what the field reports on the same data and split?

    table.py      the table file format (cells, sources, the source's protocol) and its strict parser
    compare.py    ours vs published per cell: mean ± std, difference, z on the combined spread, verdict

`bench reproduce` itself (the sweep, then reproduce.csv / .md) is bench.workflows.reproduce.
"""
