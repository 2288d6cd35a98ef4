"""Statistics of a run and their presentation: leaderboard, Elo, critical differences, curves, plots, report.
Pure functions of a run folder's records: nothing here runs a sweep (that is bench.execution, and
bench.workflows for the sweeps that compare: regress, reproduce)."""
