"""Benchmarks: each bench_*.py module has main(argv) and prints its figures; run.py runs them all."""
