"""The results store: one JSON record per job and variant (bench.records.store)."""
