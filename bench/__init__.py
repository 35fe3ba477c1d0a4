"""Benchmarks: one script per measure; `python -m bench` runs them and rewrites docs/benchmarks.md."""
