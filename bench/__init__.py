"""Benchmarks, run by hand: python -m bench.NAME. Each prints ratios against a baseline run alongside."""
