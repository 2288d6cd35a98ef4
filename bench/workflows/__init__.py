"""Workflows that run sweeps and compare their numbers with a reference: the top floor, above execution
(sweeps), analysis (statistics) and published (tables as data).

    regress.py    `bench regress`: the pinned smoke sweep vs the committed baseline (CI)
    reproduce.py  `bench reproduce`: a published table's sweep vs the published numbers
"""
