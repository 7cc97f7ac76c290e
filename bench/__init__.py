"""Benchmarks: `python -m bench` runs every `bench_*.py` and writes `bench/RESULTS.md`."""
