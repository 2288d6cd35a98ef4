"""Published result tables and `bench reproduce`: does the harness score what the field reports on the
same data and split?

    table.py      the table file format (cells, sources, the source's protocol) and its strict parser
    compare.py    ours vs published per cell: mean ± std, difference, z on the combined spread, verdict
    reproduce.py  the reproduction sweep (an ordinary bench.execution sweep) and reproduce.csv / .md
"""
