"""Statistics of a run and their presentation: leaderboard, Elo, critical differences, curves, plots, report,
regress."""
