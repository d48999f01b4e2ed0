"""Benchmarks; results and the commands that produced them are in BENCHMARKS.md."""
